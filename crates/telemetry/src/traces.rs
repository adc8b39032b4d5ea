//! OpenTelemetry traces, exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, and only then.
//!
//! Gyre's spans are `tracing` spans at TRACE level under the target
//! [`SPAN_TARGET`]; the OpenTelemetry layer is the only thing that enables
//! them. With no endpoint there is no such layer, every span callsite is
//! disabled once (tracing caches the interest), and a span costs a load and
//! a branch. The standard variables choose the rest:
//! `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, the default, or `grpc`),
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME` (default `gyre`),
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and its argument,
//! `OTEL_BSP_*` for batching.
//!
//! W3C trace context (`traceparent`, `tracestate`) is read from incoming
//! requests ([`continue_trace`]) and written into outbound ones
//! ([`inject_context`]), so a trace goes on through Gyre and past it.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, bail};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The target of every span Gyre exports.
pub const SPAN_TARGET: &str = "gyre_span";

/// Whether spans are exported (set once, at start).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether traces are being exported: lets callers skip work (reading
/// headers, formatting names) that only spans use.
#[inline]
pub fn tracing_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// How spans leave the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    HttpProtobuf,
    Grpc,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The exporter the environment asks for, if any. For gRPC this must run
/// inside the Tokio runtime that will carry its connection; for HTTP,
/// outside any async context (its client is a blocking one, driven by the
/// batch processor's own thread).
pub(crate) fn provider_from_env(
    runtime: &tokio::runtime::Runtime,
) -> Result<Option<SdkTracerProvider>> {
    if env("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
        && env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
    {
        return Ok(None);
    }
    if env("OTEL_TRACES_EXPORTER").is_some_and(|e| e == "none") {
        return Ok(None);
    }
    let protocol = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| "http/protobuf".into());
    let protocol = match protocol.as_str() {
        "http/protobuf" => Protocol::HttpProtobuf,
        "grpc" => Protocol::Grpc,
        other => bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={other:?} is not supported: use `http/protobuf` (the default) or `grpc`"
        ),
    };
    let exporter = match protocol {
        Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build(),
        Protocol::Grpc => {
            let _entered = runtime.enter();
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
        }
    }
    .context("cannot set up the OTLP trace exporter (OTEL_EXPORTER_OTLP_* variables)")?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if env("OTEL_SERVICE_NAME").is_none()
        && !env("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| a.contains("service.name="))
    {
        resource = resource.with_service_name("gyre");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some(provider))
}

/// The `tracing` layer that turns Gyre's spans into OpenTelemetry spans.
pub(crate) fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer as _;
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("gyre"))
        .with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target(SPAN_TARGET, tracing::Level::TRACE),
        )
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Makes `span` continue the trace named by the request's `traceparent`
/// (and `tracestate`), if it has one.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    if !tracing_enabled() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    // A span that is disabled (sampled out) ignores its parent.
    let _ = span.set_parent(parent);
}

/// Writes the current span's trace context into an outbound request's
/// headers, so the server it goes to continues the trace.
pub fn inject_context(headers: &mut http::HeaderMap) {
    if !tracing_enabled() {
        return;
    }
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

/// Runs `call` — one operation on a store or service, such as a key-value
/// `get` or an SQLite `execute` — in a client span named `SYSTEM OPERATION`,
/// marked as an error if it fails.
pub async fn traced<T, E: std::fmt::Debug>(
    system: &'static str,
    operation: &'static str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    use tracing::Instrument as _;
    let span = tracing::trace_span!(
        target: SPAN_TARGET,
        "call",
        otel.name = %format_args!("{system} {operation}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        db.system.name = system,
        db.operation.name = operation,
    );
    let result = call.instrument(span.clone()).await;
    if let Err(e) = &result {
        span.record("otel.status_code", "ERROR");
        tracing::trace!(target: SPAN_TARGET, parent: &span, error = ?e, "failed");
    }
    result
}

/// [`traced`] for a call to the outside, also counted in
/// `gyre_outbound_requests_total` by its result.
pub async fn outbound_call<T, E: std::fmt::Debug>(
    kind: crate::Outbound,
    operation: &'static str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let result = traced(kind.system(), operation, call).await;
    crate::metrics().outbound(
        kind,
        if result.is_ok() {
            crate::OutboundResult::Ok
        } else {
            crate::OutboundResult::Error
        },
    );
    result
}
