//! Test harness: real `gyre up` processes on loopback, real guests.
//!
//! Guests are built by `tests/apps/build.sh` into `target/guests/`; a
//! missing guest fails the test with the command that builds it. Every
//! server listens on port 0 and is killed when its handle drops.

#![allow(dead_code, unreachable_pub)]

pub mod servers;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// Absolute path of a built guest.
pub fn guest(name: &str) -> String {
    let dir = std::env::var_os("GYRE_GUESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/guests"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "guest {} is missing: build the test guests with `tests/apps/build.sh` (or run `.ci/run`)",
        path.display()
    );
    path.display().to_string()
}

/// An application in a temporary directory.
pub struct TestApp {
    pub dir: tempfile::TempDir,
}

impl TestApp {
    /// Writes `spin.toml`; `{guest:NAME}` becomes the guest's absolute path.
    pub fn new(manifest: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut text = manifest.to_string();
        while let Some(start) = text.find("{guest:") {
            let end = start + text[start..].find('}').expect("closing brace");
            let name = text[start + 7..end].to_string();
            text.replace_range(start..=end, &guest(&name));
        }
        std::fs::write(dir.path().join("spin.toml"), text).expect("write manifest");
        TestApp { dir }
    }

    pub fn write(&self, rel: &str, contents: &[u8]) {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, contents).expect("write");
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Runs `gyre up` for an app that must fail to load; asserts exit code 1
/// and returns stderr.
pub fn up_fails(app: &TestApp, args: &[&str]) -> String {
    let output = gyre_command()
        .current_dir(app.path())
        .args(["up", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("SPIN_VARIABLE_API_TOKEN")
        .output()
        .expect("run gyre");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    stderr
}

/// Compiled code shared by every test of a run, so each guest compiles once.
pub fn shared_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("compile-cache")
}

pub struct Gyre {
    child: Child,
    pub base: String,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

pub fn gyre_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gyre"))
}

fn drain(reader: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut line = String::new();
        while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            into.lock().expect("lock").push_str(&line);
            line.clear();
        }
    });
}

impl Gyre {
    /// `gyre up` in the app's directory with the shared compile cache.
    pub fn up(app: &TestApp, args: &[&str]) -> Gyre {
        let cache = shared_cache_dir();
        Gyre::up_with(
            app,
            args,
            &[("GYRE_CACHE_DIR", cache.to_str().expect("utf8"))],
        )
    }

    pub fn up_with(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Gyre {
        let mut full = vec!["up", "--listen", "127.0.0.1:0"];
        full.extend_from_slice(args);
        Gyre::start(app.path(), &full, env)
    }

    /// Runs `gyre ARGS` in `dir` and waits for its `Serving` line.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Gyre {
        Gyre::start_program(Path::new(env!("CARGO_BIN_EXE_gyre")), dir, args, env)
    }

    /// `gyre up` for an app without HTTP triggers: ready once stdout shows
    /// `marker` (its base URL is then empty).
    pub fn up_until(app: &TestApp, args: &[&str], marker: &str) -> Gyre {
        let cache = shared_cache_dir();
        let env = [("GYRE_CACHE_DIR", cache.to_str().expect("utf8"))];
        Gyre::up_until_with(app, args, &env, marker)
    }

    /// [`Gyre::up_until`] with this environment.
    pub fn up_until_with(app: &TestApp, args: &[&str], env: &[(&str, &str)], marker: &str) -> Gyre {
        let mut full = vec!["up"];
        full.extend_from_slice(args);
        let marker = marker.to_string();
        Gyre::spawn(
            Path::new(env!("CARGO_BIN_EXE_gyre")),
            app.path(),
            &full,
            env,
            move |stdout| stdout.contains(&marker).then(String::new),
        )
    }

    /// Runs `PROGRAM ARGS` (a gyre, however started) in `dir` and waits for
    /// its `Serving` line.
    pub fn start_program(program: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Gyre {
        Gyre::spawn(program, dir, args, env, serving_url)
    }

    /// Runs `PROGRAM ARGS` in `dir` until `ready` finds the base URL in
    /// its stdout.
    fn spawn(
        program: &Path,
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        ready: impl Fn(&str) -> Option<String>,
    ) -> Gyre {
        let mut cmd = Command::new(program);
        cmd.current_dir(dir)
            .args(args)
            .env_remove("SPIN_HTTP_LISTEN_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn gyre");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stdout.take().expect("stdout"), stdout.clone());
        drain(child.stderr.take().expect("stderr"), stderr.clone());
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let found = ready(&stdout.lock().expect("lock"));
            if let Some(base) = found {
                return Gyre {
                    child,
                    base,
                    stdout,
                    stderr,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "gyre up exited with {status} before serving\nstdout:\n{}\nstderr:\n{}",
                    stdout.lock().expect("lock"),
                    stderr.lock().expect("lock")
                );
            }
            assert!(
                Instant::now() < deadline,
                "gyre up did not start serving in time\nstderr:\n{}",
                stderr.lock().expect("lock")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("lock").clone()
    }

    pub fn get(&self, path: &str) -> Resp {
        request("GET", &self.url(path), &[], None)
    }

    /// Sends SIGKILL: the process gets no chance to flush anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn post(&self, path: &str, body: &[u8]) -> Resp {
        request("POST", &self.url(path), &[], Some(body))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "gyre did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gyre {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `gyre up --metrics-listen` serves, scraped once.
pub fn metrics_text(gyre: &Gyre) -> String {
    let stdout = gyre.stdout();
    let url = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Metrics: "))
        .unwrap_or_else(|| panic!("no metrics address in:\n{stdout}"))
        .to_string();
    request("GET", &url, &[], None).text()
}

/// The value of one series in Prometheus' text format (0 if absent).
pub fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// `http://…` from the `Serving http://…` line.
pub fn serving_url(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Serving "))
        .map(|s| s.trim().to_string())
        .or_else(|| {
            stdout.lines().find_map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| {
                        v.get("base_url")
                            .and_then(|b| b.as_str())
                            .map(str::to_string)
                    })
            })
        })
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .headers
            .iter()
            .map(|(k, _)| k.to_ascii_lowercase())
            .collect();
        names.sort();
        names
    }
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(120))
        .redirects(0)
        .build()
}

pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Resp {
    let mut req = agent().request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url} failed: {e}"),
    };
    into_resp(response)
}

pub fn into_resp(response: ureq::Response) -> Resp {
    let status = response.status();
    let mut names = response.headers_names();
    // ureq lists a name once per occurrence; each name's values once.
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    let headers = names
        .into_iter()
        .flat_map(|n| {
            response
                .all(&n)
                .into_iter()
                .map(|v| (n.clone(), v.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut body = Vec::new();
    response
        .into_reader()
        .read_to_end(&mut body)
        .expect("read body");
    Resp {
        status,
        headers,
        body,
    }
}

/// Peak resident memory of a process, in KiB (Linux).
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// A command running in a detached tmux session: a real terminal to type
/// into and read the screen of. The session is killed on drop.
pub struct Tmux {
    session: String,
}

impl Tmux {
    /// Starts `command` (a shell command line) in a `width`×`height` terminal.
    pub fn start(name: &str, width: u16, height: u16, command: &str) -> Tmux {
        let tmux = Tmux {
            session: format!("{name}-{}", std::process::id()),
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            &tmux.session,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux is installed (apt-get install tmux)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `keys` (tmux key names, e.g. "Enter", "C-u", or text).
    pub fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Waits until the screen shows `text` (up to `within`); returns the screen.
    pub fn screen_shows(&self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.run(&["capture-pane", "-p", "-t", &self.session]);
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {text:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}
