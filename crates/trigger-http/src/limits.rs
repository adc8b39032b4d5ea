//! Bodies that enforce limits while they stream.
//!
//! [`LimitedBody`] ends a request body with `HTTP-request-body-size` once a
//! client sends more than the component's `max_request_body` (a
//! `Content-Length` over it is refused with 413 before the guest runs), and
//! trips its [`BodyLimitTrip`]: not every SDK tells a failed body read from
//! the end of the body (WASI 0.3 reports it in the trailers future, which
//! the Python SDK never reads), so the server does not trust the guest to
//! notice — a request whose body tripped gets 413, or, when the response
//! has already started, a body cut short.
//! [`GovernedBody`] wraps every guest response: it holds the request's
//! admission slot until the body is done — the guest may still be running
//! while it writes the body — and cuts the body short at the request's
//! wall-clock deadline, dropping the guest with it.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tokio::sync::OwnedSemaphorePermit;

use crate::body::{BoxError, ResponseBody};

/// Set when a request body went over its limit.
#[derive(Default)]
pub(crate) struct BodyLimitTrip {
    tripped: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl BodyLimitTrip {
    pub(crate) fn is_tripped(&self) -> bool {
        self.tripped.load(std::sync::atomic::Ordering::Acquire)
    }

    fn trip(&self) {
        self.tripped
            .store(true, std::sync::atomic::Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Resolves once the body went over its limit.
    pub(crate) async fn tripped(&self) {
        loop {
            let notified = self.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.is_tripped() {
                return;
            }
            notified.await;
        }
    }
}

/// A request body that fails once more than `max` bytes arrived.
pub(crate) struct LimitedBody<B> {
    inner: B,
    remaining: Option<u64>,
    max: u64,
    trip: std::sync::Arc<BodyLimitTrip>,
}

impl<B> LimitedBody<B> {
    pub(crate) fn new(inner: B, max: Option<u64>, trip: std::sync::Arc<BodyLimitTrip>) -> Self {
        LimitedBody {
            inner,
            remaining: max,
            max: max.unwrap_or(u64::MAX),
            trip,
        }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    wasmtime_wasi_http::Error: From<B::Error>,
{
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let (Some(remaining), Some(data)) = (self.remaining, frame.data_ref()) {
            let len = data.len() as u64;
            if len > remaining {
                tracing::info!(
                    "request body cut off: more than {} bytes (`max_request_body`)",
                    self.max
                );
                self.remaining = Some(0);
                self.trip.trip();
                return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpRequestBodySize(
                    Some(self.max),
                ))));
            }
            self.remaining = Some(remaining - len);
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A guest's response body, governed by the request's slot and deadline.
pub(crate) struct GovernedBody {
    inner: ResponseBody,
    _slot: OwnedSemaphorePermit,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    timeout: Option<Duration>,
    component: std::sync::Arc<str>,
    trip: std::sync::Arc<BodyLimitTrip>,
}

impl GovernedBody {
    pub(crate) fn new(
        inner: ResponseBody,
        slot: OwnedSemaphorePermit,
        deadline: Option<tokio::time::Instant>,
        timeout: Option<Duration>,
        component: std::sync::Arc<str>,
        trip: std::sync::Arc<BodyLimitTrip>,
    ) -> Self {
        GovernedBody {
            inner,
            _slot: slot,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
            timeout,
            component,
            trip,
        }
    }

    fn cut_short(&mut self, why: BodyCut) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.deadline = None;
        // Dropping the inner body drops the guest still writing it.
        self.inner = http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed_unsync();
        Poll::Ready(Some(Err(Box::new(why))))
    }
}

/// Why a response body was cut short.
#[derive(Debug)]
enum BodyCut {
    Deadline(Duration),
    RequestBodyTooLarge,
}

impl std::fmt::Display for BodyCut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyCut::Deadline(d) => write!(f, "response body not finished within {d:?}"),
            BodyCut::RequestBodyTooLarge => f.write_str("the request body went over its limit"),
        }
    }
}

impl std::error::Error for BodyCut {}

impl Body for GovernedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.trip.is_tripped() {
            return this.cut_short(BodyCut::RequestBodyTooLarge);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            let timeout = this.timeout.unwrap_or_default();
            tracing::warn!(
                component = %this.component,
                "component `{}` was still writing its response body after {timeout:?} (`request_timeout`); the body is cut short and the instance torn down",
                this.component
            );
            return this.cut_short(BodyCut::Deadline(timeout));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
