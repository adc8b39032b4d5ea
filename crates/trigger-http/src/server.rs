//! The listener: hyper (HTTP/1.1 and h2c) in front of the router.
//!
//! Request bodies are passed to guests as streams and response bodies
//! streamed back, so a large upload is never held in memory. Failures of a
//! guest become an empty 500 and a log line naming the component; the server
//! carries on. Shutdown stops accepting, then lets connections in flight
//! finish within a grace period.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::headers::{self, RoutedRequest};
use crate::wagi::WagiContext;
use crate::{HttpTrigger, RouteTarget};

/// Errors a response body may end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of every response Gyre sends.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// Serving options.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long in-flight requests may take to finish after shutdown starts.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A trigger bound to its listening socket.
pub struct BoundServer {
    listener: TcpListener,
    trigger: Arc<HttpTrigger>,
    local_addr: SocketAddr,
    options: ServeOptions,
}

pub(crate) async fn bind(
    trigger: Arc<HttpTrigger>,
    addr: SocketAddr,
    options: ServeOptions,
) -> Result<BoundServer> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!("{addr} is already in use. Choose another address with --listen, or use port 0 to pick a free one")
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
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
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
            let trigger = self.trigger.clone();
            let local_addr = self.local_addr;
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let trigger = trigger.clone();
                async move { Ok::<_, Infallible>(handle(&trigger, req, client_addr, local_addr).await) }
            });
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!("connection from {client_addr} ended: {e}");
                }
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

pub(crate) fn empty_response(status: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = status;
    response
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

async fn handle(
    trigger: &HttpTrigger,
    req: Request<Incoming>,
    client_addr: SocketAddr,
    local_addr: SocketAddr,
) -> Response<ResponseBody> {
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

    let Some(route) = trigger.router.route(&path) else {
        if !NO_ROUTE_HINT.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "no route matches {path}: answering 404 (a route of `/...` catches every path)"
            );
        }
        return empty_response(StatusCode::NOT_FOUND);
    };

    let executor = match route.target {
        RouteTarget::Static(resp) => return static_response(resp),
        RouteTarget::Component(executor) => executor.clone(),
    };

    let (mut parts, body) = req.into_parts();
    let routed = RoutedRequest {
        scheme: "http",
        route: &route,
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
    let wagi_ctx = WagiContext {
        client_addr: Some(client_addr),
        full_url: parts.uri.to_string(),
        matched_route: route.route.to_string(),
        component_route: route.component_route.to_string(),
        path_info: route.path_info.clone(),
        params: route.params.clone(),
    };
    let body = body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync();
    let request = Request::from_parts(parts, body);
    match executor.handle(request, &wagi_ctx).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(component = %executor.id(), "request {path} failed: {e:#}");
            empty_response(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
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
