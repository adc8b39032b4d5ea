//! The listener: hyper (HTTP/1.1 and h2c) in front of the router.
//!
//! Request bodies are passed to guests as streams and response bodies
//! streamed back, so a large upload is never held in memory. Failures of a
//! guest become an empty 500 and a log line naming the component; the server
//! carries on. Shutdown stops accepting, then lets connections in flight
//! finish within a grace period.
//!
//! Everything a client or a guest could use to exhaust the host is bounded
//! here ([`ServerLimits`], and [`gyre_engine::ComponentLimits`] per
//! component): connections, header count and size, URI length, the time to
//! send headers (slowloris), HTTP/2 streams, request body size, requests
//! running at once — more wait in a bounded queue, then get 503 with
//! `Retry-After` — and each request's wall-clock deadline, after which the
//! guest is dropped (its instance torn down) and the client gets 504, or,
//! when the response has started, a body cut short.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tracing::Instrument as _;

use crate::body::{ResponseBody, empty_response};
use crate::errors::RequestTimedOut;
use crate::headers::WagiContext;
use crate::headers::{self, RoutedRequest};
use crate::{LiveTrigger, RouteTarget};

/// Serving options.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// How long in-flight requests may take to finish after shutdown starts.
    pub shutdown_grace: Duration,
    /// Listener and admission limits.
    pub limits: ServerLimits,
    /// Serve HTTPS with this certificate instead of plain HTTP.
    pub tls: Option<crate::tls::TlsConfig>,
}

/// Limits of the listener and of admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Requests run at once; more wait in the queue.
    pub max_concurrent_requests: usize,
    /// Requests that may wait for a slot; more get 503 at once.
    pub max_queued_requests: usize,
    /// How long a request may wait for a slot before it gets 503.
    pub queue_timeout: Duration,
    /// Open client connections; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Request headers per request (HTTP/1: more → 431).
    pub max_header_count: usize,
    /// Bytes of request line plus headers (more → 431).
    pub max_header_bytes: usize,
    /// Bytes of the request target (more → 414).
    pub max_uri_length: usize,
    /// Time a client has to send a request's headers, and the longest an
    /// HTTP/1 connection may sit idle between requests.
    pub header_read_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection.
    pub max_h2_streams: u32,
}

impl ServerLimits {
    /// Gyre's defaults.
    pub const DEFAULT: ServerLimits = ServerLimits {
        max_concurrent_requests: 1000,
        max_queued_requests: 1000,
        queue_timeout: Duration::from_secs(10),
        max_connections: 10_000,
        max_header_count: 100,
        max_header_bytes: 64 << 10,
        max_uri_length: 8 << 10,
        header_read_timeout: Duration::from_secs(10),
        max_h2_streams: 100,
    };
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits::DEFAULT
    }
}

/// hyper's own HTTP/1 header count limit.
const HYPER_MAX_HEADERS: usize = 100;

/// The admission queue: at most `max_concurrent_requests` run, at most
/// `max_queued_requests` wait, each for at most `queue_timeout`.
struct Admission {
    running: Arc<tokio::sync::Semaphore>,
    queued: std::sync::atomic::AtomicUsize,
    limits: ServerLimits,
    /// `gyre_admission_queue_depth`.
    depth: gyre_telemetry::Gauge,
}

/// Why a request was not admitted.
enum Refused {
    QueueFull,
    QueueTimeout,
}

impl Admission {
    fn new(limits: ServerLimits) -> Self {
        Admission {
            running: Arc::new(tokio::sync::Semaphore::new(limits.max_concurrent_requests)),
            queued: std::sync::atomic::AtomicUsize::new(0),
            limits,
            depth: gyre_telemetry::metrics().queue_depth().clone(),
        }
    }

    async fn admit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Refused> {
        if let Ok(permit) = self.running.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let waiting = self.queued.fetch_add(1, Ordering::AcqRel);
        self.depth.inc();
        let _leave = scopeguard(&self.queued, &self.depth);
        if waiting >= self.limits.max_queued_requests {
            return Err(Refused::QueueFull);
        }
        match tokio::time::timeout(
            self.limits.queue_timeout,
            self.running.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(Refused::QueueTimeout),
        }
    }
}

/// Decrements a counter and its gauge when dropped.
fn scopeguard<'a>(
    counter: &'a std::sync::atomic::AtomicUsize,
    gauge: &'a gyre_telemetry::Gauge,
) -> impl Drop + 'a {
    struct Leave<'a>(
        &'a std::sync::atomic::AtomicUsize,
        &'a gyre_telemetry::Gauge,
    );
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
            self.1.dec();
        }
    }
    Leave(counter, gauge)
}

/// The listen address is taken by another socket.
#[derive(Debug)]
pub struct AddressInUse(pub SocketAddr);

impl std::fmt::Display for AddressInUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is already in use. To have Gyre search for a free port, use the --find-free-port option \
             (or choose another address with --listen; port 0 picks a free one)",
            self.0
        )
    }
}

impl std::error::Error for AddressInUse {}

/// Whether binding failed because the address is taken.
pub fn is_address_in_use(error: &anyhow::Error) -> bool {
    error.downcast_ref::<AddressInUse>().is_some()
}

/// A trigger bound to its listening socket.
pub struct BoundServer {
    listener: TcpListener,
    trigger: LiveTrigger,
    local_addr: SocketAddr,
    options: ServeOptions,
}

pub(crate) async fn bind(
    trigger: LiveTrigger,
    addr: SocketAddr,
    options: ServeOptions,
) -> Result<BoundServer> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::Error::from(AddressInUse(addr))
        } else {
            anyhow::Error::from(e).context(format!("cannot listen on {addr}"))
        }
    })?;
    let local_addr = listener.local_addr()?;
    Ok(BoundServer {
        listener,
        trigger,
        local_addr,
        options,
    })
}

impl BoundServer {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let limits = self.options.limits;
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        let mut http1 = builder.http1();
        http1
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            // The read buffer bounds the request head: a longer one is 431.
            .max_buf_size(limits.max_header_bytes.max(8192));
        if limits.max_header_count != HYPER_MAX_HEADERS {
            // Any other count makes hyper allocate the header array on the
            // heap for every request, so the default is left to hyper.
            http1.max_headers(limits.max_header_count);
        }
        builder
            .http2()
            .timer(hyper_util::rt::TokioTimer::new())
            .max_concurrent_streams(limits.max_h2_streams)
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(Duration::from_secs(10));
        let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
        let shared = Arc::new(Shared {
            trigger: self.trigger.clone(),
            admission: Admission::new(limits),
            limits,
            local_addr: self.local_addr,
            scheme: if self.options.tls.is_some() {
                "https"
            } else {
                "http"
            },
        });
        let tls = self
            .options
            .tls
            .as_ref()
            .map(crate::tls::TlsConfig::acceptor);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let slot = tokio::select! {
                () = &mut shutdown => break,
                slot = connections.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
            };
            let (stream, client_addr) = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let shared = shared.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared, req, client_addr).await) }
            });
            let Some(tls) = &tls else {
                let conn = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!("connection from {client_addr} ended: {e}");
                    }
                    drop(slot);
                });
                continue;
            };
            // The handshake runs in the connection's task, bounded like
            // reading a request head.
            let handshake = tls.accept(stream);
            let builder = builder.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let stream = match tokio::time::timeout(limits.header_read_timeout, handshake).await
                {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!("TLS handshake with {client_addr} failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake with {client_addr} timed out");
                        return;
                    }
                };
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!("connection from {client_addr} ended: {e}");
                }
                drop(slot);
            });
        }
        drop(self.listener);
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(self.options.shutdown_grace) => {
                tracing::warn!("requests still in flight after {:?}; stopping anyway", self.options.shutdown_grace);
            }
        }
        Ok(())
    }
}

fn text_response(
    status: StatusCode,
    content_type: Option<&str>,
    body: impl Into<Bytes>,
) -> Response<ResponseBody> {
    let mut response = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    if let Some(ct) = content_type
        && let Ok(v) = http::HeaderValue::from_str(ct)
    {
        response.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    response
}

static NO_ROUTE_HINT: AtomicBool = AtomicBool::new(false);

/// What every connection's requests share.
struct Shared {
    trigger: LiveTrigger,
    admission: Admission,
    limits: ServerLimits,
    local_addr: SocketAddr,
    /// `https` behind TLS: what guests see in the request URI and
    /// `spin-full-url`.
    scheme: &'static str,
}

fn service_unavailable() -> Response<ResponseBody> {
    let mut response = empty_response(StatusCode::SERVICE_UNAVAILABLE);
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    response
}

async fn handle(
    shared: &Shared,
    req: Request<Incoming>,
    client_addr: SocketAddr,
) -> Response<ResponseBody> {
    // This request stays on the version of the app current now, whatever
    // reloads happen while it runs.
    let trigger = shared.trigger.current();
    let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > shared.limits.max_uri_length {
        tracing::debug!(
            "request target of {target_len} bytes from {client_addr} refused (`max_uri_length` is {})",
            shared.limits.max_uri_length
        );
        return empty_response(StatusCode::URI_TOO_LONG);
    }
    let path = req.uri().path().to_string();
    if let Some(rest) = path.strip_prefix("/.well-known/spin/") {
        return match rest {
            "health" => text_response(StatusCode::OK, None, "OK"),
            "info" => {
                let mut info = serde_json::Map::new();
                info.insert("name".into(), trigger.app_name.clone().into());
                if !trigger.app_version.is_empty() {
                    info.insert("version".into(), trigger.app_version.clone().into());
                }
                let body = serde_json::to_string_pretty(&info).unwrap_or_default();
                text_response(StatusCode::OK, Some("application/json"), body)
            }
            _ => empty_response(StatusCode::NOT_FOUND),
        };
    }

    let started = std::time::Instant::now();
    let Some(route) = trigger.router.route(&path) else {
        if !NO_ROUTE_HINT.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "no route matches {path}: answering 404 (a route of `/...` catches every path)"
            );
        }
        trigger
            .unmatched
            .record(404, started.elapsed().as_secs_f64());
        return empty_response(StatusCode::NOT_FOUND);
    };
    let response = match &route.target.target {
        RouteTarget::Static(resp) => static_response(resp),
        RouteTarget::Component(executor) => {
            let span = request_span(
                req.method(),
                req.uri(),
                req.headers(),
                route.route,
                executor.id(),
            );
            let response = handle_routed(shared, req, client_addr, &route, executor, &path)
                .instrument(span.clone())
                .await;
            record_status(&span, response.status().as_u16());
            response
        }
    };
    route
        .target
        .metrics
        .record(response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// The span of one request to a component (enabled only when traces are
/// exported, or for the request id of JSON log lines), continuing the
/// caller's trace if the request names one.
pub(crate) fn request_span(
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    route: &str,
    component: &str,
) -> tracing::Span {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let span = tracing::trace_span!(
        target: gyre_telemetry::SPAN_TARGET,
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = route,
        url.path = uri.path(),
        http.response.status_code = tracing::field::Empty,
        component,
        request_id = NEXT_ID.fetch_add(1, Ordering::Relaxed),
    );
    gyre_telemetry::continue_trace(&span, headers);
    span
}

/// Puts the response status on a request's span.
pub(crate) fn record_status(span: &tracing::Span, status: u16) {
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}

/// Runs a request's component, within its limits.
async fn handle_routed(
    shared: &Shared,
    req: Request<Incoming>,
    client_addr: SocketAddr,
    route: &crate::routes::RouteMatch<'_, crate::RouteEntry>,
    executor: &Arc<crate::executor::ComponentExecutor>,
    path: &str,
) -> Response<ResponseBody> {
    let local_addr = shared.local_addr;

    let (mut parts, body) = req.into_parts();
    let routed = RoutedRequest {
        scheme: shared.scheme,
        route,
        client_addr,
    };
    if headers::authority(&parts.uri, &parts.headers).is_empty() {
        parts.headers.insert(
            http::header::HOST,
            http::HeaderValue::from_str(&local_addr.to_string())
                .unwrap_or(http::HeaderValue::from_static("localhost")),
        );
    }
    if let Err(e) = headers::prepare(&mut parts.uri, &mut parts.headers, &routed) {
        tracing::debug!("bad request URI: {e}");
        return empty_response(StatusCode::BAD_REQUEST);
    }
    // Only a WAGI script reads these (as CGI variables): others skip the copies.
    let wagi_ctx = if executor.is_wagi() {
        WagiContext {
            client_addr: Some(client_addr),
            full_url: parts.uri.to_string(),
            matched_route: route.route.to_string(),
            component_route: route.component_route.to_string(),
            path_info: route.path_info.clone(),
            params: route.params.clone(),
        }
    } else {
        WagiContext::default()
    };
    let limits = *executor.limits();
    if let Some(max) = limits.max_request_body
        && let Some(length) = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        && length > max
    {
        tracing::info!(
            component = %executor.id(),
            "request {path} refused: a body of {length} bytes is over `max_request_body` ({max} bytes)"
        );
        return empty_response(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let trip = Arc::new(crate::limits::BodyLimitTrip::default());
    let body = crate::limits::LimitedBody::new(body, limits.max_request_body, trip.clone())
        .map_err(wasmtime_wasi_http::Error::from)
        .boxed_unsync();
    let request = Request::from_parts(parts, body);

    let permit = match shared.admission.admit().await {
        Ok(permit) => permit,
        Err(refused) => {
            gyre_telemetry::metrics().refused(match refused {
                Refused::QueueFull => gyre_telemetry::Refusal::QueueFull,
                Refused::QueueTimeout => gyre_telemetry::Refusal::QueueTimeout,
            });
            let why = match refused {
                Refused::QueueFull => format!(
                    "{} requests already wait (`max_queued_requests`)",
                    shared.limits.max_queued_requests
                ),
                Refused::QueueTimeout => format!(
                    "no slot freed within {:?} (`queue_timeout`)",
                    shared.limits.queue_timeout
                ),
            };
            tracing::warn!(
                component = %executor.id(),
                "request {path} refused with 503: {} requests are running (`max_concurrent_requests`) and {why}",
                shared.limits.max_concurrent_requests
            );
            return service_unavailable();
        }
    };
    let deadline = limits
        .request_timeout
        .and_then(|t| tokio::time::Instant::now().checked_add(t));
    let run = async {
        tokio::select! {
            result = executor.handle(request, &wagi_ctx) => result,
            () = trip.tripped() => Err(anyhow::Error::new(BodyTooLarge)),
        }
    };
    let handled = match deadline {
        Some(deadline) => match tokio::time::timeout_at(deadline, run).await {
            Ok(result) => result,
            Err(_) => Err(anyhow::Error::new(RequestTimedOut {
                limit: limits.request_timeout.unwrap_or_default(),
            })),
        },
        None => run.await,
    };
    let handled = match handled {
        // The guest answered, but its body read may have failed silently.
        Ok(_) if trip.is_tripped() => Err(anyhow::Error::new(BodyTooLarge)),
        other => other,
    };
    match handled {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let body = crate::limits::GovernedBody::new(
                body,
                permit,
                deadline,
                limits.request_timeout,
                executor.shared_id(),
                trip,
            );
            Response::from_parts(parts, body.boxed_unsync())
        }
        Err(e) => failure_response(executor.id(), path, &e),
    }
}

/// A request body went over `max_request_body` while the guest read it.
#[derive(Debug)]
struct BodyTooLarge;

impl std::fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body is over `max_request_body`")
    }
}

impl std::error::Error for BodyTooLarge {}

/// The response for a request whose guest failed: 504 past a deadline,
/// 503 when no instance could be allocated, 413 for a body over its limit,
/// 500 otherwise.
fn failure_response(component: &str, path: &str, e: &anyhow::Error) -> Response<ResponseBody> {
    use gyre_telemetry::{Limit, TriggerKind, metrics};
    if e.is::<BodyTooLarge>() {
        tracing::info!(
            component = %component,
            "request {path} stopped with 413: its body went over `max_request_body`"
        );
        return empty_response(StatusCode::PAYLOAD_TOO_LARGE);
    }
    if let Some(timeout) = e.downcast_ref::<RequestTimedOut>() {
        tracing::warn!(
            component = %component,
            "request {path} stopped after {:?} (`request_timeout`): component `{component}` had not answered; its instance is torn down",
            timeout.limit
        );
        metrics().deadline_exceeded(component, TriggerKind::Http, Limit::RequestTimeout);
        return empty_response(StatusCode::GATEWAY_TIMEOUT);
    }
    if let Some(cpu) = e.downcast_ref::<gyre_engine::CpuTimeExceeded>() {
        tracing::warn!(
            component = %component,
            "request {path} stopped: component `{component}` used more than {:?} of CPU time (`cpu_timeout`)",
            cpu.limit
        );
        metrics().deadline_exceeded(component, TriggerKind::Http, Limit::CpuTimeout);
        return empty_response(StatusCode::GATEWAY_TIMEOUT);
    }
    if e.chain()
        .any(|cause| cause.is::<wasmtime::PoolConcurrencyLimitError>())
    {
        tracing::warn!(
            component = %component,
            "request {path} refused with 503: every instance slot is in use ({e:#})"
        );
        metrics().refused(gyre_telemetry::Refusal::InstanceSlots);
        return service_unavailable();
    }
    tracing::error!(component = %component, "request {path} failed: {e:#}");
    metrics().guest_failed(component, TriggerKind::Http);
    empty_response(StatusCode::INTERNAL_SERVER_ERROR)
}

fn static_response(resp: &gyre_app::manifest::StaticResponse) -> Response<ResponseBody> {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::OK);
    let body = resp.body.clone().unwrap_or_default();
    let mut response = text_response(status, None, body);
    for (k, v) in &resp.headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
