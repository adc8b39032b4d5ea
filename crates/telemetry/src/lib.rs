//! What operators see of a running Gyre.
//!
//! - [`metrics`]: Prometheus metrics, recorded by every crate where the
//!   thing counted happens and served by [`MetricsServer`] on its own
//!   listener (`gyre up --metrics-listen`).
//! - [`traces`]: OpenTelemetry spans over OTLP, when the standard
//!   `OTEL_EXPORTER_OTLP_*` variables ask for them.
//! - [`init`]: the one `tracing` subscriber, with Gyre's log format
//!   ([`LogFormat`]) and the trace exporter.

mod logs;
mod metrics;
mod process;
mod serve;
pub mod traces;

pub use logs::{LogFormat, Telemetry, init};
pub use traces::{
    SPAN_TARGET, continue_trace, inject_context, outbound_call, traced, tracing_enabled,
};

pub use metrics::{
    CacheResult, Limit, LiveInstance, MessageResult, Metrics, Outbound, OutboundResult, PoolStats,
    Refusal, RouteMetrics, RunResult, StatusClass, TriggerKind, metrics,
};
pub use prometheus_client::metrics::gauge::Gauge;
pub use serve::MetricsServer;
