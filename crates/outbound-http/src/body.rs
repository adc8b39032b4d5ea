//! Request bodies the guest is still writing while its request is handled.
//!
//! SDKs write an outgoing request's body while the request is in flight
//! (Python SDK 3 writes even an empty one after sending). Whoever reads that
//! body — hyper, or a chained component — may be done with it before the
//! guest is done writing, and the guest would then see its stream closed
//! (`StreamError::Closed`) on its next `check-write` or `flush`, although
//! nothing went wrong. The types here keep the body's receiving end open,
//! and read to its end, for as long as the guest may still write.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

/// Most request-body bytes read and discarded once nobody wants them.
pub(crate) const MAX_DRAIN: usize = 16 << 20;

/// Reads a body to its end (at most [`MAX_DRAIN`] bytes), discarding it.
pub(crate) async fn drain(mut body: impl Body<Data = Bytes> + Unpin) {
    use http_body_util::BodyExt as _;
    let mut drained = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        drained += frame.data_ref().map_or(0, |d| d.len());
        if drained > MAX_DRAIN {
            break;
        }
    }
}

/// A request body read through one of several handles; the body itself
/// lives as long as any handle does.
///
/// hyper drops a request body as soon as it has sent `content-length`
/// bytes, so the handle hyper reads through is not the last one: the
/// response body holds another until the guest is done with the response.
pub(crate) struct SharedBody {
    body: Arc<Mutex<WasiBody>>,
}

impl SharedBody {
    pub(crate) fn new(body: WasiBody) -> Self {
        SharedBody {
            body: Arc::new(Mutex::new(body)),
        }
    }

    /// Another handle to the same body.
    pub(crate) fn handle(&self) -> SharedBody {
        SharedBody {
            body: Arc::clone(&self.body),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut WasiBody) -> T) -> T {
        let mut body = match self.body.lock() {
            Ok(body) => body,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut body)
    }
}

impl Body for SharedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        self.with(|body| Pin::new(body).poll_frame(cx))
    }

    fn is_end_stream(&self) -> bool {
        self.with(|body| body.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.with(|body| body.size_hint())
    }
}

/// A chained component's request body: when the component drops it before
/// its end (a handler that never reads the body), the rest is read and
/// discarded on a task of its own, so the calling guest can finish writing.
pub(crate) struct DrainedWhenDropped {
    body: WasiBody,
    ended: bool,
}

impl DrainedWhenDropped {
    pub(crate) fn wrap(body: WasiBody) -> WasiBody {
        use http_body_util::BodyExt as _;
        DrainedWhenDropped { body, ended: false }.boxed_unsync()
    }
}

impl Body for DrainedWhenDropped {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for DrainedWhenDropped {
    fn drop(&mut self) {
        if self.is_end_stream() {
            return;
        }
        // Dropped inside the chained component's store, on the runtime.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let body = std::mem::replace(&mut self.body, empty());
            runtime.spawn(drain(body));
        }
    }
}

fn empty() -> WasiBody {
    use http_body_util::BodyExt as _;
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}
