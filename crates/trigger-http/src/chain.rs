//! Service chaining: `http://<id>.spin.internal/...` runs component `<id>`
//! in-process, as if its route were `/...` (Spin's rule: `spin-path-info`
//! is the whole path, the matched route `/...`, the client `0.0.0.0:0`).
//! Private components (`route = { private = true }`) are reachable too.

use std::net::SocketAddr;
use std::sync::Weak;

use gyre_outbound_http::{BoxFuture, LocalDispatch};
use http_body_util::BodyExt as _;
use tracing::Instrument as _;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use crate::headers::WagiContext;
use crate::headers::{self, RoutedRequest};
use crate::routes::RouteMatch;

/// Looks the component up in the trigger current at dispatch time (weakly
/// held: the trigger's own capabilities hold this dispatcher).
pub(crate) struct ChainDispatcher {
    pub(crate) live: Weak<arc_swap::ArcSwap<crate::HttpTrigger>>,
}

impl LocalDispatch for ChainDispatcher {
    fn dispatch(
        &self,
        component: &str,
        request: http::Request<WasiBody>,
    ) -> BoxFuture<Result<http::Response<WasiBody>, HttpError>> {
        let executor = self
            .live
            .upgrade()
            .and_then(|live| live.load().components.get(component).cloned());
        Box::pin(async move {
            let Some(executor) = executor else {
                return Err(HttpError::DestinationNotFound);
            };
            let (mut parts, body) = request.into_parts();
            // The caller's outbound span is this request's parent.
            let span = crate::server::request_span(
                &parts.method,
                &parts.uri,
                &parts.headers,
                "/...",
                executor.id(),
            );
            let route = RouteMatch {
                target: &(),
                route: "/...",
                component_route: "",
                params: Vec::new(),
                path_info: parts.uri.path().to_string(),
            };
            let routed = RoutedRequest {
                scheme: "http",
                route: &route,
                client_addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            };
            headers::prepare(&mut parts.uri, &mut parts.headers, &routed)
                .map_err(|_| HttpError::HttpRequestUriInvalid)?;
            let wagi_ctx = WagiContext {
                client_addr: Some(routed.client_addr),
                full_url: parts.uri.to_string(),
                matched_route: route.route.to_string(),
                component_route: String::new(),
                path_info: route.path_info.clone(),
                params: Vec::new(),
            };
            let handled = executor
                .handle(http::Request::from_parts(parts, body), &wagi_ctx)
                .instrument(span.clone())
                .await;
            crate::server::record_status(
                &span,
                handled.as_ref().map_or(500, |r| r.status().as_u16()),
            );
            let response = handled.map_err(|e| {
                tracing::error!(component = %executor.id(), "chained request failed: {e:#}");
                HttpError::InternalError(Some(format!("component `{}` failed", executor.id())))
            })?;
            Ok(response.map(|body| {
                body.map_err(|e| HttpError::InternalError(Some(e.to_string())))
                    .boxed_unsync()
            }))
        })
    }
}
