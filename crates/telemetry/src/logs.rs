//! Gyre's own log lines (not guests' output, which goes to per-component
//! files and the terminal with its prefixes): human-readable by default,
//! or with `--log-format json` one JSON object per line — `timestamp`,
//! `level`, `target`, `message`, the event's fields (`component`, …) and,
//! inside a request, the request's span (`request_id`, `component`,
//! `route`).
//!
//! `init` is also where tracing is set up, because both are layers of the
//! one `tracing` subscriber.

use anyhow::Result;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::traces;

/// How Gyre writes its log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `INFO message`, coloured on a terminal.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

/// Keeps telemetry running; dropping it flushes spans not yet exported.
#[must_use = "dropping the guard stops exporting spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn traces(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("could not export the last spans: {e}");
        }
    }
}

/// Installs the process's log format and, if the environment asks for it,
/// the OTLP trace exporter. `GYRE_LOG` (or `RUST_LOG`) filters log lines;
/// `default_filter` applies without either. The gRPC exporter's connection
/// lives on `runtime`.
pub fn init(
    format: LogFormat,
    default_filter: &str,
    runtime: &tokio::runtime::Runtime,
) -> Result<Telemetry> {
    let filter = || {
        EnvFilter::try_from_env("GYRE_LOG")
            .or_else(|_| EnvFilter::try_from_default_env())
            .unwrap_or_else(|_| EnvFilter::new(default_filter))
    };
    let provider = traces::provider_from_env(runtime)?;
    let logs = match format {
        LogFormat::Plain => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .without_time()
            .with_filter(filter())
            .boxed(),
        LogFormat::Json => {
            // The request span carries the request id into each line.
            let filter = filter().add_directive(
                format!("{}=trace", traces::SPAN_TARGET)
                    .parse()
                    .unwrap_or_default(),
            );
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(std::io::stderr)
                .with_filter(filter)
                .boxed()
        }
    };
    let otel = provider.as_ref().map(traces::layer);
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(otel)
        .try_init();
    Ok(Telemetry { provider })
}
