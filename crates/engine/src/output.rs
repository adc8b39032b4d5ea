//! Where guest stdout and stderr go.
//!
//! Each line a component writes is appended to its log file
//! (`<log_dir>/<id>_stdout.txt`, `_stderr.txt`) and, when the user wants it,
//! echoed by the CLI with the component id in front. Guests write into a
//! bounded channel drained by one writer thread, so a guest never blocks the
//! async executor on file I/O and a flood of output is dropped and counted
//! rather than buffered without limit.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::task::{Context, Poll};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Shows guest output to the user (implemented by the CLI).
pub trait OutputEcho: Send + Sync {
    /// One complete line from `component`, without its newline.
    fn line(&self, component: &str, stream: StreamKind, line: &[u8]);
}

/// Records the writer thread handles; ~32 MiB of output may be in flight.
const CHANNEL_RECORDS: usize = 8192;

enum Record {
    Register {
        key: usize,
        component: Arc<str>,
        files: Option<(File, File)>,
    },
    Write {
        key: usize,
        stream: StreamKind,
        bytes: Bytes,
    },
}

/// A registered component: its id and, when logging to files, its stdout
/// and stderr files.
type Sink = (Arc<str>, Option<(File, File)>);

/// The process's guest-output writer.
pub struct OutputHub {
    tx: SyncSender<Record>,
    next_key: AtomicU64,
    dropped: Arc<AtomicU64>,
}

impl OutputHub {
    /// Starts the writer thread. `echo` shows lines to the user, if set.
    pub fn new(echo: Option<Arc<dyn OutputEcho>>) -> Result<Self> {
        let (tx, rx) = sync_channel::<Record>(CHANNEL_RECORDS);
        std::thread::Builder::new()
            .name("gyre-guest-output".into())
            .spawn(move || {
                let mut sinks: HashMap<usize, Sink> = HashMap::new();
                let mut partial: HashMap<(usize, StreamKind), Vec<u8>> = HashMap::new();
                while let Ok(record) = rx.recv() {
                    match record {
                        Record::Register {
                            key,
                            component,
                            files,
                        } => {
                            sinks.insert(key, (component, files));
                        }
                        Record::Write { key, stream, bytes } => {
                            let Some((component, files)) = sinks.get_mut(&key) else {
                                continue;
                            };
                            if let Some((out, err)) = files {
                                let file = match stream {
                                    StreamKind::Stdout => out,
                                    StreamKind::Stderr => err,
                                };
                                let _ = file.write_all(&bytes);
                            }
                            if let Some(echo) = &echo {
                                let buf = partial.entry((key, stream)).or_default();
                                buf.extend_from_slice(&bytes);
                                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                                    let line: Vec<u8> = buf.drain(..=pos).collect();
                                    let line = line.strip_suffix(b"\n").unwrap_or(&line);
                                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                                    echo.line(component, stream, line);
                                }
                                // Keep a partial line bounded.
                                if buf.len() > 64 * 1024 {
                                    echo.line(component, stream, buf);
                                    buf.clear();
                                }
                            }
                        }
                    }
                }
            })
            .context("cannot start the guest output thread")?;
        Ok(OutputHub {
            tx,
            next_key: AtomicU64::new(0),
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Output of one component; files go to `log_dir` when given.
    pub fn component(
        &self,
        component: &str,
        log_dir: Option<&Path>,
        truncate: bool,
    ) -> Result<GuestOutput> {
        let key =
            usize::try_from(self.next_key.fetch_add(1, Ordering::Relaxed)).unwrap_or(usize::MAX);
        let files = match log_dir {
            None => None,
            Some(dir) => {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!("cannot create the log directory {}", dir.display())
                })?;
                let safe: String = component
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let open = |suffix: &str| -> Result<File> {
                    let path = dir.join(format!("{safe}_{suffix}.txt"));
                    let mut o = OpenOptions::new();
                    o.create(true);
                    if truncate {
                        o.write(true).truncate(true);
                    } else {
                        o.append(true);
                    }
                    o.open(&path)
                        .with_context(|| format!("cannot open log file {}", path.display()))
                };
                Some((open("stdout")?, open("stderr")?))
            }
        };
        let component: Arc<str> = Arc::from(component);
        self.tx
            .send(Record::Register {
                key,
                component,
                files,
            })
            .context("guest output thread has stopped")?;
        Ok(GuestOutput {
            key,
            tx: self.tx.clone(),
            dropped: self.dropped.clone(),
        })
    }

    /// Bytes of guest output dropped because the writer fell behind.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// One component's output handle; cheap to clone into each store.
#[derive(Clone)]
pub struct GuestOutput {
    key: usize,
    tx: SyncSender<Record>,
    dropped: Arc<AtomicU64>,
}

impl GuestOutput {
    /// Output that goes nowhere (tests, tools).
    pub fn discard() -> Self {
        let (tx, rx) = sync_channel(1);
        drop(rx);
        GuestOutput {
            key: usize::MAX,
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(crate) fn stdout(&self, budget: &Arc<OutputBudget>) -> GuestStream {
        GuestStream {
            output: self.clone(),
            stream: StreamKind::Stdout,
            budget: budget.clone(),
        }
    }

    pub(crate) fn stderr(&self, budget: &Arc<OutputBudget>) -> GuestStream {
        GuestStream {
            output: self.clone(),
            stream: StreamKind::Stderr,
            budget: budget.clone(),
        }
    }

    fn send(&self, stream: StreamKind, bytes: Bytes) {
        let len = bytes.len() as u64;
        match self.tx.try_send(Record::Write {
            key: self.key,
            stream,
            bytes,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(len, Ordering::Relaxed);
            }
        }
    }
}

/// How much more output one instance may write in the current request.
pub(crate) struct OutputBudget {
    component: Arc<str>,
    limit: u64,
    remaining: AtomicU64,
    warned: std::sync::atomic::AtomicBool,
}

impl OutputBudget {
    pub(crate) fn new(component: Arc<str>, limit: u64) -> Arc<Self> {
        Arc::new(OutputBudget {
            component,
            limit,
            remaining: AtomicU64::new(limit),
            warned: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A new request: the full budget again.
    pub(crate) fn refill(&self) {
        self.remaining.store(self.limit, Ordering::Relaxed);
        self.warned.store(false, Ordering::Relaxed);
    }

    /// How many of `len` bytes may be written.
    fn take(&self, len: u64) -> u64 {
        let mut granted = 0;
        let _ = self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                granted = left.min(len);
                Some(left - granted)
            });
        if granted < len && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                component = %self.component,
                "component `{}` wrote more than {} bytes of output in one request (`max_output`); the rest is dropped",
                self.component,
                self.limit
            );
        }
        granted
    }
}

/// A guest's stdout or stderr.
#[derive(Clone)]
pub(crate) struct GuestStream {
    output: GuestOutput,
    stream: StreamKind,
    budget: Arc<OutputBudget>,
}

impl GuestStream {
    fn write_bounded(&self, mut bytes: Bytes) {
        let len = bytes.len() as u64;
        let granted = self.budget.take(len);
        if granted < len {
            self.output
                .dropped
                .fetch_add(len - granted, Ordering::Relaxed);
            bytes.truncate(usize::try_from(granted).unwrap_or(0));
        }
        if !bytes.is_empty() {
            self.output.send(self.stream, bytes);
        }
    }
}

impl IsTerminal for GuestStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestStream {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bounded(bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for GuestStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write_bounded(Bytes::copy_from_slice(buf));
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
