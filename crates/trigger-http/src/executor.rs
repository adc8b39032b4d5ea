//! Running a component for a request, by handler kind.
//!
//! The handler kind is detected once, at load, from the component's exports:
//!
//! | export                               | executor                                 |
//! |--------------------------------------|------------------------------------------|
//! | `wasi:http/incoming-handler@0.2.x`   | fresh instance per request               |
//! | `wasi:http/handler@0.3.x` (final)    | instances reused ([`ReusePolicy`]; Spin's 128 total, 16 at once, 1 s idle by default) |
//! | `…@0.3.0-rc-2026-03-15` (Spin SDKs of today) | mapped onto 0.3.0 at load (`gyre-compose`), then as above |
//! | `fermyon:spin/inbound-http`          | fresh instance, buffered request/response |
//! | `wasi:cli/run` with `executor = wagi`| CGI: fresh instance per request          |
//!
//! wasi:http components run through Wasmtime's `ProxyHandler`, which owns
//! the instance-reuse policy; Gyre supplies instantiation (from the
//! component's `InstancePre`) and the policy's numbers.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tracing::Instrument as _;

use anyhow::{Result, anyhow, bail};
use bytes::Bytes;
use gyre_app::manifest::HttpExecutor;
use gyre_engine::{ComponentLimits, CpuTimeExceeded, HostState, InstanceConfig, RequestWatch};
use http_body_util::{BodyExt as _, Full};
use wasmtime::component::{Component, GuestTaskId, InstancePre};
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyHandler, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState,
    WorkerStatus,
};

use crate::body::{BoxError, MAX_BUFFERED_BODY, ResponseBody, empty_response};
use crate::errors::{RequestTimedOut, explain, watch};
use crate::headers::WagiContext;
use crate::reuse::{InstanceReuse, ReusePolicy};
use crate::wagi::WagiExecutor;

mod spin_inbound {
    wasmtime::component::bindgen!({
        path: "wit/spin-inbound-http.wit",
        world: "fermyon:spin/spin-http",
        exports: { default: async },
    });
}

/// How a component is run.
enum Handler {
    /// `wasi:http/incoming-handler@0.2`: a fresh instance per request, called
    /// directly from the connection's task.
    WasiHttpP2(wasmtime_wasi_http::p2::bindings::ProxyPre<HostState>),
    /// `wasi:http/handler@0.3`: instances reused through Wasmtime's `ProxyHandler`.
    WasiHttpP3(ProxyHandler<ComponentState>),
    SpinInbound(spin_inbound::SpinHttpPre<HostState>),
    Wagi(WagiExecutor),
}

/// A loaded component and how to run it for a request.
pub struct ComponentExecutor {
    handler: Handler,
    /// The engine the component was compiled for (synchronous or
    /// concurrent, chosen at load).
    engine: wasmtime::Engine,
    config: InstanceConfig,
    limits: ComponentLimits,
}

/// The handler kinds a component's exports name.
fn detect(exports: &[String]) -> Result<Vec<&'static str>> {
    let mut kinds = Vec::new();
    for name in exports {
        let prerelease = name
            .rsplit_once('@')
            .is_some_and(|(_, version)| version.contains('-'));
        let kind = if name.starts_with("wasi:http/incoming-handler@0.2.") && !prerelease {
            "wasi-http-0.2"
        } else if name.starts_with("wasi:http/incoming-handler@0.2.0-rc") {
            bail!(
                "the component exports `{name}`, a pre-release of wasi:http 0.2 that Gyre does not run; rebuild it with a current SDK"
            );
        } else if name.starts_with("wasi:http/handler@0.3.") && !prerelease {
            "wasi-http-0.3"
        } else if name.starts_with("wasi:http/handler@0.3.0-") {
            // The one release candidate Gyre runs was renamed to 0.3.0 at
            // load; any other is older than every Spin SDK that emitted it.
            bail!(
                "the component exports `{name}`, a release candidate of wasi:http 0.3 that Gyre does not run \
                 (it runs `wasi:http/handler@0.3.0-rc-2026-03-15` and 0.3.0); rebuild it with a current Spin SDK"
            );
        } else if name == "fermyon:spin/inbound-http" {
            "spin-inbound-http"
        } else if name.starts_with("wasi:cli/run@0.2") {
            "wasi-cli-run"
        } else {
            continue;
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// The one handler an HTTP trigger can call among `kinds`, or why there is
/// none (the error reads after "component `id`").
fn select(kinds: &[&'static str], wagi: bool) -> Result<&'static str> {
    if wagi {
        if kinds.contains(&"wasi-cli-run") {
            return Ok("wasi-cli-run");
        }
        bail!(
            "has no wasi command interface for the wagi executor \
             (WAGI components are WASI commands exporting `wasi:cli/run` or `_start`)"
        );
    }
    let http: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| *k != "wasi-cli-run")
        .collect();
    match http.as_slice() {
        [] => bail!(
            "exports no HTTP handler; it must export one of: \
             wasi:http/incoming-handler@0.2.x, wasi:http/handler@0.3.0, fermyon:spin/inbound-http \
             (or use `executor = {{ type = \"wagi\" }}` for a WASI command)"
        ),
        [one] => Ok(*one),
        _ => bail!("exports multiple different handlers ({})", http.join(", ")),
    }
}

/// The handler an HTTP trigger would call among a component's export
/// names, as `gyre doctor` shows it, or why there is none.
pub fn describe_handler(exports: &[String], wagi: bool) -> Result<&'static str> {
    let kinds = detect(exports)?;
    Ok(match select(&kinds, wagi)? {
        "wasi-http-0.2" => "wasi:http/incoming-handler@0.2",
        "wasi-http-0.3" => "wasi:http/handler@0.3.0",
        "spin-inbound-http" => "fermyon:spin/inbound-http",
        _ => "wagi (wasi:cli/run)",
    })
}

impl ComponentExecutor {
    /// Detects the handler kind of a loaded component.
    pub fn new(
        id: &str,
        component: Component,
        pre: InstancePre<HostState>,
        config: InstanceConfig,
        limits: ComponentLimits,
        executor: &HttpExecutor,
        reuse: ReusePolicy,
    ) -> Result<Self> {
        let exports: Vec<String> = component
            .component_type()
            .exports(component.engine())
            .map(|(name, _)| name.to_string())
            .collect();
        let kinds = detect(&exports).map_err(|e| anyhow!("component `{id}`: {e}"))?;
        let wagi = matches!(executor, HttpExecutor::Wagi { .. });
        let kind = select(&kinds, wagi).map_err(|e| anyhow!("component `{id}` {e}"))?;
        let handler = match executor {
            HttpExecutor::Wagi { argv } => Handler::Wagi(WagiExecutor::new(pre, argv.clone())?),
            HttpExecutor::Http => match kind {
                "wasi-http-0.2" => {
                    Handler::WasiHttpP2(wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre)?)
                }
                "wasi-http-0.3" => {
                    let pre = wasmtime_wasi_http::p3::bindings::ServicePre::new(pre)?;
                    Handler::WasiHttpP3(ProxyHandler::new(ComponentState::new(
                        component.engine(),
                        ProxyPre::P3(pre),
                        &config,
                        reuse,
                        limits.request_timeout,
                    )))
                }
                "spin-inbound-http" => Handler::SpinInbound(spin_inbound::SpinHttpPre::new(pre)?),
                other => bail!("component `{id}`: no executor for handler kind `{other}`"),
            },
        };
        Ok(ComponentExecutor {
            handler,
            engine: component.engine().clone(),
            config,
            limits,
        })
    }

    /// What each instance is built with.
    pub fn config(&self) -> &InstanceConfig {
        &self.config
    }

    /// The handler kind, for logs.
    pub fn handler_name(&self) -> &'static str {
        match &self.handler {
            Handler::WasiHttpP2(_) => "wasi:http/incoming-handler@0.2",
            Handler::WasiHttpP3(_) => "wasi:http/handler@0.3.0",
            Handler::SpinInbound(_) => "fermyon:spin/inbound-http",
            Handler::Wagi(_) => "wagi",
        }
    }

    /// Whether the component runs as a WAGI (CGI) script.
    pub(crate) fn is_wagi(&self) -> bool {
        matches!(self.handler, Handler::Wagi(_))
    }

    /// The component id.
    pub fn id(&self) -> &str {
        &self.config.component_id
    }

    /// The component id, shared (for bodies that outlive the call).
    pub(crate) fn shared_id(&self) -> Arc<str> {
        self.config.component_id.clone()
    }

    /// The component's limits.
    pub fn limits(&self) -> &ComponentLimits {
        &self.limits
    }

    #[doc(hidden)]
    pub async fn bench_handle(
        &self,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<ResponseBody>> {
        self.handle(request, &WagiContext::default()).await
    }

    /// Runs the component for one prepared request.
    pub(crate) async fn handle(
        &self,
        request: http::Request<WasiBody>,
        wagi_ctx: &WagiContext,
    ) -> Result<http::Response<ResponseBody>> {
        match &self.handler {
            Handler::WasiHttpP2(pre) => self.handle_p2(pre, request).await,
            Handler::WasiHttpP3(handler) => {
                let watch = RequestWatch::new();
                let response = match handler.handle(watch.clone(), request).await {
                    Ok(response) => response,
                    Err(e) if e.is::<wasmtime_wasi_http::handler::ExpirationError>() => {
                        return Err(anyhow::Error::new(RequestTimedOut {
                            limit: self.limits.request_timeout.unwrap_or(Duration::MAX),
                        }));
                    }
                    Err(e) => return Err(explain(anyhow::Error::from(e), &watch, &self.limits)),
                };
                Ok(response.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync()))
            }
            Handler::SpinInbound(pre) => self.handle_spin(pre, request).await,
            Handler::Wagi(wagi) => {
                wagi.handle(&self.engine, &self.config, &self.limits, request, wagi_ctx)
                    .await
            }
        }
    }

    /// Instantiates and runs the guest's handler in the connection's own
    /// task: first until it sends the response head, then, inside the
    /// response body, for as long as it goes on writing the body. No task is
    /// spawned and no thread is woken per request.
    async fn handle_p2(
        &self,
        pre: &wasmtime_wasi_http::p2::bindings::ProxyPre<HostState>,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<ResponseBody>> {
        use futures::future::{Either, select};
        use wasmtime_wasi_http::WasiHttpView as _;
        use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

        let mut store = self.new_store()?;
        let watch = watch(&mut store);
        let proxy = pre
            .instantiate_async(&mut store)
            .instrument(gyre_trigger::instantiate_span(self.id()))
            .await
            .map_err(anyhow::Error::from)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut http = store.data_mut().http();
        let guest_request = http
            .new_incoming_request(Scheme::Http, request)
            .map_err(anyhow::Error::from)?;
        let outparam = http
            .new_response_outparam(tx)
            .map_err(anyhow::Error::from)?;
        let limits = self.limits;
        let guest_watch = watch.clone();
        let guest: GuestCall = Box::pin(crate::wake::AbsorbSelfWakes::new(async move {
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, guest_request, outparam)
                .await
                .map_err(|e| explain(anyhow::Error::from(e), &guest_watch, &limits))
        }));
        match select(guest, rx).await {
            Either::Right((Ok(Ok(response)), guest)) => {
                let (parts, body) = response.into_parts();
                let body = GuestDrivenBody {
                    body,
                    guest: Some(guest),
                    component: self.shared_id(),
                };
                Ok(http::Response::from_parts(parts, body.boxed_unsync()))
            }
            Either::Right((Ok(Err(code)), _)) => {
                bail!("the component answered with error code {code:?}")
            }
            Either::Right((Err(_), guest)) => {
                guest.await?;
                bail!(
                    "the component returned without sending a response (`response-outparam.set` was never called)"
                )
            }
            Either::Left((result, mut rx)) => {
                result?;
                match rx.try_recv() {
                    Ok(Ok(response)) => {
                        Ok(response.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync()))
                    }
                    Ok(Err(code)) => bail!("the component answered with error code {code:?}"),
                    Err(_) => bail!(
                        "the component returned without sending a response (`response-outparam.set` was never called)"
                    ),
                }
            }
        }
    }

    async fn handle_spin(
        &self,
        pre: &spin_inbound::SpinHttpPre<HostState>,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<ResponseBody>> {
        use spin_inbound::fermyon::spin::http_types::{Method, Request};
        let (parts, body) = request.into_parts();
        let method = match parts.method {
            http::Method::GET => Method::Get,
            http::Method::POST => Method::Post,
            http::Method::PUT => Method::Put,
            http::Method::DELETE => Method::Delete,
            http::Method::PATCH => Method::Patch,
            http::Method::HEAD => Method::Head,
            http::Method::OPTIONS => Method::Options,
            _ => return Ok(empty_response(http::StatusCode::METHOD_NOT_ALLOWED)),
        };
        let body = match http_body_util::Limited::new(body, MAX_BUFFERED_BODY)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => return Ok(empty_response(http::StatusCode::PAYLOAD_TOO_LARGE)),
        };
        let headers = parts
            .headers
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.to_string(), v.to_string())))
            .collect();
        let uri = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let guest_request = Request {
            method,
            uri,
            headers,
            params: Vec::new(),
            body: Some(body.to_vec()),
        };
        let mut store = self.new_store()?;
        let watch = watch(&mut store);
        let instance = pre
            .instantiate_async(&mut store)
            .instrument(gyre_trigger::instantiate_span(self.id()))
            .await
            .map_err(anyhow::Error::from)?;
        let response = instance
            .fermyon_spin_inbound_http()
            .call_handle_request(&mut store, &guest_request)
            .await
            .map_err(|e| explain(anyhow::Error::from(e), &watch, &self.limits))?;
        if !(100..=600).contains(&response.status) {
            bail!(
                "the component answered with status {}, which is not an HTTP status",
                response.status
            );
        }
        let mut builder = http::Response::builder().status(response.status);
        if let Some(headers) = builder.headers_mut() {
            for (k, v) in response.headers.unwrap_or_default() {
                if let (Ok(name), Ok(value)) = (
                    http::HeaderName::from_bytes(k.as_bytes()),
                    http::HeaderValue::from_str(&v),
                ) {
                    headers.insert(name, value);
                }
            }
        }
        let body = Full::new(Bytes::from(response.body.unwrap_or_default()))
            .map_err(|never| match never {})
            .boxed_unsync();
        Ok(builder.body(body)?)
    }

    fn new_store(&self) -> Result<Store<HostState>> {
        self.config.new_store(&self.engine, |_| {})
    }
}

/// A guest's `handle` call, still running.
type GuestCall = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// A response body that also drives the guest call writing it, so the
/// guest needs no task of its own.
struct GuestDrivenBody {
    body: wasmtime_wasi_http::p2::body::HyperOutgoingBody,
    guest: Option<GuestCall>,
    component: Arc<str>,
}

impl http_body::Body for GuestDrivenBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<http_body::Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(guest) = &mut this.guest
            && let Poll::Ready(result) = guest.as_mut().poll(cx)
        {
            this.guest = None;
            if let Err(e) = result {
                tracing::error!(
                    component = %this.component,
                    "component failed after sending its response head; the body is cut short: {e:?}"
                );
            }
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Instantiation for Wasmtime's `ProxyHandler`.
pub(crate) struct ComponentState {
    engine: wasmtime::Engine,
    id: Arc<str>,
    pre: ProxyPre<HostState>,
    config: InstanceConfig,
    reuse: ReusePolicy,
    request_timeout: Option<Duration>,
}

impl ComponentState {
    fn new(
        engine: &wasmtime::Engine,
        pre: ProxyPre<HostState>,
        config: &InstanceConfig,
        reuse: ReusePolicy,
        request_timeout: Option<Duration>,
    ) -> Self {
        ComponentState {
            engine: engine.clone(),
            id: config.component_id.clone(),
            pre,
            config: config.clone(),
            reuse,
            request_timeout,
        }
    }
}

impl HandlerState for ComponentState {
    type StoreData = HostState;
    type WorkerExpiration = IdleExpiration;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<HostState, IdleExpiration, Worker>> {
        let mut store = self
            .config
            .new_store(&self.engine, |_| {})
            .map_err(wasmtime::Error::from_anyhow)?;
        let proxy = self
            .pre
            .instantiate_async(&mut store)
            .instrument(gyre_trigger::instantiate_span(&self.id))
            .await?;
        let reuse = self.reuse.draw();
        Ok(Instance {
            store,
            proxy,
            view: wasmtime_wasi_http::WasiHttpView::http,
            expiration: IdleExpiration {
                idle_timeout: reuse.idle_timeout,
                busy_timeout: self.request_timeout.map(|t| t + BUSY_MARGIN),
                sleep: Box::pin(tokio::time::sleep(Duration::MAX)),
            },
            state: Worker {
                id: self.id.clone(),
                reuse,
                request_timeout: self.request_timeout,
            },
        })
    }
}

/// How much longer than the request deadline an instance may stay busy
/// before it is torn down: the deadline itself is enforced per request
/// inside the instance's event loop; this is the second line of defence
/// for a guest that keeps that loop from running (wasi-http's
/// `WorkerState::on_request_start` explains why it is needed).
const BUSY_MARGIN: Duration = Duration::from_secs(1);

/// Ends an idle instance after the reuse policy's idle timeout, and a busy
/// one that outlived the request deadline.
pub(crate) struct IdleExpiration {
    idle_timeout: Duration,
    busy_timeout: Option<Duration>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for IdleExpiration {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let this = self.get_mut();
        let timeout = match status {
            WorkerStatus::Idle => Some(this.idle_timeout),
            WorkerStatus::Requests | WorkerStatus::PostReturn => this.busy_timeout,
        };
        let Some(deadline) = timeout.and_then(|t| start.checked_add(t)) else {
            return Poll::Pending;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if this.sleep.deadline() != deadline {
            this.sleep.as_mut().reset(deadline);
        }
        this.sleep.as_mut().poll(cx)
    }
}

/// One instance's reuse bookkeeping.
pub(crate) struct Worker {
    id: Arc<str>,
    reuse: InstanceReuse,
    request_timeout: Option<Duration>,
}

impl WorkerState for Worker {
    type StoreData = HostState;
    type RequestData = Arc<RequestWatch>;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.reuse.max_reuse {
            ShouldAccept::Never
        } else if concurrent >= self.reuse.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, HostState>,
        watch: Arc<RequestWatch>,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        store.data_mut().watch_request(&watch);
        match self.request_timeout {
            Some(timeout) => Box::pin(tokio::time::sleep(timeout)),
            None => Box::pin(std::future::pending()),
        }
    }

    fn drop(&self, store: Store<HostState>, result: wasmtime::Result<()>) {
        if let Err(e) = result {
            if e.is::<CpuTimeExceeded>() {
                // Already logged by the store when it stopped the guest.
            } else if e.to_string() == "worker panicked" && !std::thread::panicking() {
                // Not a panic: the worker task was dropped, as every task is
                // when the runtime shuts down.
                tracing::debug!(component = %self.id, "instance dropped at shutdown");
            } else {
                tracing::error!(component = %self.id, "component instance failed: {e:?}");
            }
        }
        drop(store);
    }
}

#[cfg(test)]
mod tests {
    use super::detect;

    #[test]
    fn handler_kinds_from_exports() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            detect(&names(&["wasi:http/incoming-handler@0.2.3"])).ok(),
            Some(vec!["wasi-http-0.2"])
        );
        assert_eq!(
            detect(&names(&["wasi:http/handler@0.3.0"])).ok(),
            Some(vec!["wasi-http-0.3"])
        );
        assert_eq!(
            detect(&names(&["fermyon:spin/inbound-http"])).ok(),
            Some(vec!["spin-inbound-http"])
        );
        assert_eq!(
            detect(&names(&["wasi:cli/run@0.2.0", "other"])).ok(),
            Some(vec!["wasi-cli-run"])
        );
        let rc = detect(&names(&["wasi:http/handler@0.3.0-rc-2025-09-16"])).expect_err("rc");
        assert!(rc.to_string().contains("does not run"), "{rc}");
    }
}
