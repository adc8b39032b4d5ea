//! Spin's original outbound HTTP interface (unversioned
//! `fermyon:spin/http.send-request`), as Spin 1.x-era SDKs import it.
//!
//! A request goes through exactly the path a wasi:http request takes
//! ([`Hooks`]): the same allow-list check, service chaining, `self` and the
//! app's pooled client. A relative URI (`/path`) is a request to the app
//! itself, as in Spin, and needs `http://self` in `allowed_outbound_hosts`.
//! The interface returns the whole body at once, so the host buffers it,
//! up to [`MAX_RESPONSE_BODY_BYTES`].

use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use gyre_engine::HostState;
use http_body_util::BodyExt as _;
use wasmtime::component::{HasData, Linker};
use wasmtime_wasi_http::{Error as HttpError, WasiHttpHooks as _};

use crate::{ComponentOutbound, Hooks};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "fermyon:spin/host",
        imports: { default: async },
    });
}

use bindings::fermyon::spin::http as spin_http;
use bindings::fermyon::spin::http_types as types;

/// Largest response body a guest receives through this interface.
pub const MAX_RESPONSE_BODY_BYTES: usize = 128 << 20;

/// Per-instance state: the component's outbound rules, if it has any.
#[derive(Default)]
pub(crate) struct SpinHttpState(pub(crate) Option<Arc<ComponentOutbound>>);

struct SpinHttp;

impl HasData for SpinHttp {
    type Data<'a> = &'a mut SpinHttpState;
}

/// Binds `fermyon:spin/http`.
pub struct SpinHttpCapability;

impl gyre_engine::Capability for SpinHttpCapability {
    fn name(&self) -> &'static str {
        "outbound-http (fermyon:spin/http)"
    }

    fn bind(&self, linker: &mut Linker<HostState>) -> Result<()> {
        spin_http::add_to_linker::<_, SpinHttp>(linker, |host| {
            host.capability::<SpinHttpState>().0
        })?;
        Ok(())
    }
}

impl types::Host for &mut SpinHttpState {}

fn method(m: types::Method) -> http::Method {
    match m {
        types::Method::Get => http::Method::GET,
        types::Method::Post => http::Method::POST,
        types::Method::Put => http::Method::PUT,
        types::Method::Delete => http::Method::DELETE,
        types::Method::Patch => http::Method::PATCH,
        types::Method::Head => http::Method::HEAD,
        types::Method::Options => http::Method::OPTIONS,
    }
}

/// The request as the wasi:http path takes it.
fn to_http(
    request: types::Request,
) -> Result<http::Request<wasmtime_wasi_http::WasiBody>, types::HttpError> {
    // A relative URI is a request to the app itself.
    let uri = if request.uri.starts_with('/') {
        format!("http://self{}", request.uri)
    } else {
        request.uri
    };
    let uri: http::Uri = uri.parse().map_err(|_| types::HttpError::InvalidUrl)?;
    if uri.scheme().is_none() || uri.host().is_none() {
        return Err(types::HttpError::InvalidUrl);
    }
    let body = http_body_util::Full::new(Bytes::from(request.body.unwrap_or_default()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut builder = http::Request::builder()
        .method(method(request.method))
        .uri(uri);
    for (name, value) in request.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(body)
        .map_err(|_| types::HttpError::RequestError)
}

impl spin_http::Host for &mut SpinHttpState {
    async fn send_request(
        &mut self,
        request: types::Request,
    ) -> Result<types::Response, types::HttpError> {
        let Some(component) = self.0.clone() else {
            tracing::warn!(
                "Outbound network destination not allowed: {} (the component lists no `allowed_outbound_hosts`)",
                request.uri
            );
            return Err(types::HttpError::DestinationNotAllowed);
        };
        let request = to_http(request)?;
        let sent = Hooks(component.clone()).send_request(request, None, Box::new(async { Ok(()) }));
        let (response, _io) = Box::into_pin(sent).await.map_err(|e| match e {
            HttpError::HttpRequestDenied => types::HttpError::DestinationNotAllowed,
            HttpError::HttpRequestUriInvalid => types::HttpError::InvalidUrl,
            other => {
                tracing::info!(component = %component.id, "outbound request failed: {other:?}");
                types::HttpError::RequestError
            }
        })?;
        let (parts, mut body) = response.into_parts();
        let mut collected = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| types::HttpError::RequestError)?;
            if let Some(data) = frame.data_ref() {
                if collected.len() + data.len() > MAX_RESPONSE_BODY_BYTES {
                    tracing::warn!(
                        component = %component.id,
                        "outbound response body larger than {} MiB refused",
                        MAX_RESPONSE_BODY_BYTES >> 20
                    );
                    return Err(types::HttpError::RuntimeError);
                }
                collected.extend_from_slice(data);
            }
        }
        let headers = parts
            .headers
            .iter()
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_string(), v.to_string()))
            })
            .collect();
        Ok(types::Response {
            status: parts.status.as_u16(),
            headers: Some(headers),
            body: Some(collected),
        })
    }
}
