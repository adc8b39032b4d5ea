//! Outbound HTTP from components (`wasi:http/outgoing-handler@0.2.x`,
//! `wasi:http/client@0.3.0`): every request is checked against the
//! component's `allowed_outbound_hosts` before anything is connected.
//!
//! - A destination the list does not allow gets the interface's own
//!   `HTTP-request-denied` error (never a trap), and the log says which
//!   component tried which destination.
//! - `http://<id>.spin.internal/...` (service chaining) is allowed only when
//!   the caller lists that host, and runs the other component in-process:
//!   no socket, no DNS ([`LocalDispatch`], supplied by the HTTP trigger).
//! - `http://self/...` / `http://self.alt/...` goes to the app's own bound
//!   address.
//! - The destination is taken from the request URI only: the incoming
//!   request's `Host` header never decides where a request goes
//!   (CVE-2024-32980), and redirects are returned to the guest, not followed.
//!
//! Shape: the engine's wasi:http bindings are already linked; this crate's
//! per-app step ([`expand_allow_lists`], then [`AppOutboundHttp::new`])
//! expands templates and parses each component's list, and its
//! per-instance step puts the component's [`WasiHttpHooks`] into the store.
//! Spin's original `fermyon:spin/http` send ([`SpinHttpCapability`]) goes
//! through the same hooks.

mod body;
mod client;
mod resolver;
mod sockets;
mod spin_http;

use gyre_telemetry::{Outbound, OutboundResult};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use tracing::Instrument as _;

use anyhow::Result;
use gyre_engine::{AppCapabilities, Extensions, HttpHooks, PrepareInstance};
use gyre_manifest::Manifest;
use gyre_outbound_networking::{AllowedHosts, BlockedNetworks, Destination, Host};
use gyre_variables::Resolver;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

pub use client::{OutboundClient, Timeouts};
pub use spin_http::{MAX_RESPONSE_BODY_BYTES, SpinHttpCapability};

/// A boxed future, as the hooks return them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Runs a component of the same application for a chained request.
pub trait LocalDispatch: Send + Sync {
    /// Handles `request` with component `component`, in-process.
    fn dispatch(
        &self,
        component: &str,
        request: http::Request<WasiBody>,
    ) -> BoxFuture<Result<http::Response<WasiBody>, HttpError>>;
}

/// What only exists once the trigger is running: the component
/// dispatcher for service chaining, and the address the app listens on.
#[derive(Default)]
pub struct LocalServices {
    dispatcher: OnceLock<Arc<dyn LocalDispatch>>,
    self_addr: OnceLock<SocketAddr>,
}

impl LocalServices {
    /// Sets the dispatcher (once, when the trigger is loaded).
    pub fn set_dispatcher(&self, dispatcher: Arc<dyn LocalDispatch>) {
        let _ = self.dispatcher.set(dispatcher);
    }

    /// Sets the app's bound address (once, when the server is bound).
    pub fn set_self_addr(&self, addr: SocketAddr) {
        let _ = self.self_addr.set(addr);
    }
}

/// One component's outbound rules.
struct ComponentOutbound {
    id: String,
    allowed: Arc<AllowedHosts>,
    /// `[outbound_networking] block_networks`, the same for every component.
    blocked: Arc<BlockedNetworks>,
    /// The `wasi:sockets` rules, if any entry can allow a socket.
    sockets: Option<Arc<sockets::SocketRules>>,
    local: Arc<LocalServices>,
    client: Arc<OutboundClient>,
}

/// The outbound HTTP rules of one application.
pub struct AppOutboundHttp {
    components: HashMap<String, Arc<ComponentOutbound>>,
    local: Arc<LocalServices>,
}

/// Every component's `allowed_outbound_hosts`, with `{{ variable }}`
/// templates expanded and entries parsed, shared by every outbound
/// capability (HTTP, Redis, PostgreSQL, MySQL, MQTT). An invalid entry is a
/// load error naming the component and the entry. Components that list
/// nothing are absent: they may reach nothing.
pub async fn expand_allow_lists(
    manifest: &Manifest,
    resolver: &Resolver,
) -> Result<HashMap<String, Arc<AllowedHosts>>> {
    let mut lists = HashMap::new();
    for (id, component) in &manifest.components {
        if component.allowed_outbound_hosts.is_empty() {
            continue;
        }
        let mut entries = Vec::new();
        for entry in &component.allowed_outbound_hosts {
            let expanded = resolver.expand_str(entry).await.map_err(|e| {
                anyhow::anyhow!("component `{id}`: allowed_outbound_hosts entry {entry:?}: {e}")
            })?;
            entries.push(expanded);
        }
        let allowed = AllowedHosts::parse(&entries).map_err(|e| {
            let help = e.help.clone().unwrap_or_default();
            anyhow::anyhow!("component `{id}`: {e}\n  help: {help}")
        })?;
        lists.insert(id.clone(), Arc::new(allowed));
    }
    Ok(lists)
}

/// Outbound HTTP requests in flight across an app when the runtime config
/// does not say (`[outbound_http] max_connections`): enough for any fan-out
/// a real app does, few enough that a guest opening thousands of requests
/// cannot exhaust the process's sockets.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

impl AppOutboundHttp {
    /// The outbound HTTP rules of every component that lists any host,
    /// sharing one pooled client. `max_connections` (the runtime config's
    /// `[outbound_http] max_connections`) bounds the requests in flight
    /// across the app; more wait for a slot within their first-byte timeout.
    /// Nothing connects to an address in `blocked`
    /// (`[outbound_networking] block_networks`), whatever is allowed.
    pub fn new(
        allow_lists: &HashMap<String, Arc<AllowedHosts>>,
        timeouts: Timeouts,
        max_connections: Option<usize>,
        blocked: BlockedNetworks,
    ) -> Self {
        let local = Arc::new(LocalServices::default());
        let blocked = Arc::new(blocked);
        let client = Arc::new(OutboundClient::new(
            timeouts,
            max_connections,
            blocked.clone(),
        ));
        let components = allow_lists
            .iter()
            .map(|(id, allowed)| {
                (
                    id.clone(),
                    Arc::new(ComponentOutbound {
                        id: id.clone(),
                        allowed: allowed.clone(),
                        blocked: blocked.clone(),
                        sockets: sockets::SocketRules::for_component(id, allowed, &blocked),
                        local: local.clone(),
                        client: client.clone(),
                    }),
                )
            })
            .collect();
        AppOutboundHttp { components, local }
    }

    /// Where the trigger registers its dispatcher and bound address.
    pub fn local_services(&self) -> &Arc<LocalServices> {
        &self.local
    }

    /// Adds each component's per-instance preparation.
    pub fn register(&self, capabilities: &mut AppCapabilities) {
        for (id, component) in &self.components {
            capabilities.add(id, Arc::new(PrepareHooks(component.clone())));
        }
    }
}

struct PrepareHooks(Arc<ComponentOutbound>);

impl PrepareInstance for PrepareHooks {
    fn prepare(&self, extensions: &mut Extensions) {
        extensions.insert(HttpHooks(Box::new(Hooks(self.0.clone()))));
        extensions.insert(spin_http::SpinHttpState(Some(self.0.clone())));
    }

    fn prepare_wasi(&self, wasi: &mut wasmtime_wasi::WasiCtxBuilder) {
        if let Some(rules) = &self.0.sockets {
            rules.install(wasi);
        }
    }
}

struct Hooks(Arc<ComponentOutbound>);

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

/// Denies a request. The guest may still be writing the body (SDKs write
/// it while the request is being sent): the body is read to its end first,
/// so the guest sees the interface's `HTTP-request-denied` where it reads
/// the response, not a closed stream where it writes.
fn denied(
    component: &str,
    scheme: &str,
    authority: &str,
    request: http::Request<WasiBody>,
) -> Box<dyn Future<Output = SendResult> + Send> {
    tracing::warn!(
        component,
        "Outbound network destination not allowed: {scheme}://{authority} (add it to the component's `allowed_outbound_hosts`)"
    );
    refused(request, HttpError::HttpRequestDenied)
}

/// Reads the request body to its end, then fails with `error`.
fn refused(
    request: http::Request<WasiBody>,
    error: HttpError,
) -> Box<dyn Future<Output = SendResult> + Send> {
    Box::new(async move {
        body::drain(request.into_body()).await;
        Err(error)
    })
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let span = tracing::trace_span!(
            target: gyre_telemetry::SPAN_TARGET,
            "outbound http",
            otel.name = %format_args!("{} {}", request.method(), request.uri().host().unwrap_or_default()),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            http.request.method = %request.method(),
            url.full = %request.uri(),
            http.response.status_code = tracing::field::Empty,
        );
        // The server (or the chained component) continues this trace.
        span.in_scope(|| gyre_telemetry::inject_context(request.headers_mut()));
        let sent = Box::into_pin(self.route(request, options)).instrument(span.clone());
        Box::new(async move {
            let result = sent.await;
            let counted = match &result {
                Ok(_) => OutboundResult::Ok,
                Err(HttpError::HttpRequestDenied | HttpError::DestinationIpProhibited) => {
                    OutboundResult::Denied
                }
                Err(_) => OutboundResult::Error,
            };
            gyre_telemetry::metrics().outbound(Outbound::Http, counted);
            match &result {
                Ok((response, _)) => {
                    span.record("http.response.status_code", response.status().as_u16());
                }
                Err(e) => {
                    span.record("otel.status_code", "ERROR");
                    tracing::trace!(target: gyre_telemetry::SPAN_TARGET, parent: &span, error = ?e, "outbound request failed");
                }
            }
            result
        })
    }
}

impl Hooks {
    /// Sends `request` where its host leads: another component of the app,
    /// the app itself, or the network, if the component may reach it.
    fn route(
        &self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let component = &self.0;
        let uri = request.uri().clone();
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        let Some(host) = uri.host() else {
            return Box::new(async { Err(HttpError::HttpRequestUriInvalid) });
        };
        let host = Host::parse(host);
        let destination = Destination {
            scheme: &scheme,
            host: host.clone(),
            port: uri.port_u16(),
        };
        if !component.allowed.allows(&destination) {
            return denied(&component.id, &scheme, &authority, request);
        }
        match host {
            Host::Component(target) => {
                let Some(dispatcher) = component.local.dispatcher.get().cloned() else {
                    return Box::new(async { Err(HttpError::DestinationNotFound) });
                };
                // The chained component may drop the body unread while
                // the caller is still writing it.
                let request = request.map(body::DrainedWhenDropped::wrap);
                Box::new(async move {
                    let response = dispatcher.dispatch(&target, request).await?;
                    Ok((
                        response,
                        Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                    ))
                })
            }
            Host::SelfApp => {
                let Some(addr) = component.local.self_addr.get().copied() else {
                    return Box::new(async { Err(HttpError::DestinationNotFound) });
                };
                // The app listens on plain HTTP; keep path and query.
                let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
                match http::Uri::builder()
                    .scheme("http")
                    .authority(addr.to_string())
                    .path_and_query(path)
                    .build()
                {
                    Ok(new_uri) => *request.uri_mut() = new_uri,
                    Err(_) => return Box::new(async { Err(HttpError::HttpRequestUriInvalid) }),
                }
                send(component.client.clone(), request, options)
            }
            Host::Ip(ip) if component.blocked.blocks(ip) => {
                tracing::warn!(
                    component = %component.id,
                    "outbound HTTP to {authority} refused: the address is in `block_networks`"
                );
                refused(request, HttpError::DestinationIpProhibited)
            }
            Host::Ip(_) | Host::Domain(_) => send(component.client.clone(), request, options),
        }
    }
}

/// Sends a request over the network through the app's pooled client.
fn send(
    client: Arc<OutboundClient>,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Box<dyn Future<Output = SendResult> + Send> {
    Box::new(async move {
        let response = client.send(request, options).await?;
        Ok((
            response,
            Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
        ))
    })
}
