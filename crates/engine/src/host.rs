//! The data each [`wasmtime::Store`] holds: the WASI and wasi:http
//! contexts, the resource table, the instance's limits and the host
//! capabilities' per-instance state.

use std::any::Any;
use std::sync::Arc;

use anyhow::Result;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::extensions::Extensions;
use crate::limits::{Governor, RequestWatch};
use crate::output::OutputBudget;

/// Per-store host data.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundPolicy,
    pub(crate) table: ResourceTable,
    pub(crate) governor: Governor,
    output_budget: Arc<OutputBudget>,
    extensions: Extensions,
    /// Counts this store in `gyre_instances_live` until it is dropped.
    _live: gyre_telemetry::LiveInstance,
}

impl HostState {
    pub(crate) fn new(
        wasi: WasiCtx,
        governor: Governor,
        output_budget: Arc<OutputBudget>,
        extensions: Extensions,
    ) -> Self {
        HostState {
            wasi,
            http: WasiHttpCtx::new(),
            hooks: OutboundPolicy,
            table: ResourceTable::new(),
            governor,
            output_budget,
            extensions,
            _live: gyre_telemetry::LiveInstance::new(),
        }
    }

    /// A capability's per-instance state (its default if the component was
    /// granted nothing) together with the store's resource table.
    pub fn capability<T: Any + Send + Default>(&mut self) -> (&mut T, &mut ResourceTable) {
        (self.extensions.get_or_default::<T>(), &mut self.table)
    }

    /// A request starts on this store: its CPU and output budgets start
    /// afresh, and `watch` learns if the store is stopped for using up
    /// its CPU time.
    pub fn watch_request(&mut self, watch: &Arc<RequestWatch>) {
        self.governor.watch(watch);
        self.output_budget.refill();
    }

    /// The id of the component this store runs.
    pub fn component_id(&self) -> &str {
        &self.governor.component
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        // The outbound HTTP capability, when the component is granted any
        // host, puts its hooks in the extensions; otherwise every request
        // is denied.
        let hooks: &mut dyn WasiHttpHooks = match self.extensions.get_mut::<HttpHooks>() {
            Some(HttpHooks(hooks)) => hooks.as_mut(),
            None => &mut self.hooks,
        };
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks,
        }
    }
}

/// The outbound HTTP hooks of one instance, as a capability's
/// [`PrepareInstance`] stores them in the instance's extensions.
pub struct HttpHooks(pub Box<dyn WasiHttpHooks>);

/// The policy of a component granted no outbound host: every request is
/// denied with the interface's own `HTTP-request-denied` error.
struct OutboundPolicy;

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        let authority = request
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::warn!(
            "Outbound network destination not allowed: {}://{authority}",
            request.uri().scheme_str().unwrap_or("http")
        );
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
