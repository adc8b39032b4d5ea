//! What operators see of a running Gyre.
//!
//! - [`metrics`]: Prometheus metrics, recorded by every crate where the
//!   thing counted happens and served by [`MetricsServer`] on its own
//!   listener (`gyre up --metrics-listen`).

mod metrics;
mod process;
mod serve;

pub use metrics::{
    CacheResult, Limit, LiveInstance, MessageResult, Metrics, Outbound, OutboundResult, PoolStats,
    Refusal, RouteMetrics, RunResult, StatusClass, TriggerKind, metrics,
};
pub use prometheus_client::metrics::gauge::Gauge;
pub use serve::MetricsServer;
