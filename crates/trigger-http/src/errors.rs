//! Why a request failed, as the server turns it into a status: the
//! wall-clock deadline (504), or the CPU deadline that stopped the guest.

use std::sync::Arc;
use std::time::Duration;

use gyre_engine::{ComponentLimits, CpuTimeExceeded, HostState, RequestWatch};
use wasmtime::Store;

/// The error a request ends with when its wall-clock deadline passed
/// while the guest was still working on the response head.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimedOut {
    /// The deadline it missed.
    pub limit: Duration,
}

impl std::fmt::Display for RequestTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the component did not answer within {:?} (`request_timeout`)",
            self.limit
        )
    }
}

impl std::error::Error for RequestTimedOut {}

/// Registers a new request with `store`, so the request learns if the
/// store stops the guest for using up its CPU time.
pub(crate) fn watch(store: &mut Store<HostState>) -> Arc<RequestWatch> {
    let watch = RequestWatch::new();
    store.data_mut().watch_request(&watch);
    watch
}

/// `error`, or the CPU deadline when that is what stopped the guest.
pub(crate) fn explain(
    error: anyhow::Error,
    watch: &RequestWatch,
    limits: &ComponentLimits,
) -> anyhow::Error {
    if watch.cpu_exceeded() {
        anyhow::Error::new(CpuTimeExceeded {
            limit: limits.instance.cpu_timeout.unwrap_or(Duration::MAX),
        })
    } else {
        error
    }
}
