//! The HTTP trigger: Spin's routing, headers and handler kinds on hyper.
//!
//! At load every component a route leads to is compiled, linked and its
//! handler kind detected ([`executor::Handler`]); at serve time a request is
//! routed ([`routes::Router`]), decorated with Spin's `spin-*` headers
//! ([`headers`]) and handed to its executor, which instantiates the
//! component from its pre-linked `InstancePre`.

mod body;
mod chain;
mod errors;
pub mod executor;
pub mod headers;
mod limits;
pub mod reuse;
mod server;
mod tls;
pub mod wagi;
mod wake;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use gyre_app::App;
use gyre_app::manifest::{HttpExecutor, HttpRoute, StaticResponse};
use gyre_engine::{CacheOutcome, GyreEngine, InstanceConfig, StubbedImports};

pub use body::{BoxError, ResponseBody};
pub use errors::RequestTimedOut;
/// Route patterns and matching (re-exported from `gyre-http-routing`).
pub use gyre_http_routing as routes;
pub use reuse::{PerInstance, ReusePolicy};
pub use server::{AddressInUse, BoundServer, ServeOptions, ServerLimits, is_address_in_use};
pub use tls::TlsConfig;

/// Options for loading the HTTP trigger.
pub struct HttpLoadOptions<'a> {
    /// What every trigger's components load with.
    pub common: gyre_trigger::LoadOptions<'a>,
    /// How `wasi:http/handler@0.3` instances are reused.
    pub reuse: ReusePolicy,
}

/// What loading one component did, for the CLI to report.
#[derive(Debug, Clone)]
pub struct ComponentReport {
    /// Component id.
    pub id: String,
    /// Handler kind.
    pub handler: &'static str,
    /// Whether compiled code came from the cache.
    pub cache: CacheOutcome,
    /// Imports linked as failing functions.
    pub stubbed: StubbedImports,
    /// Time to compile or load, and link.
    pub load_time: std::time::Duration,
}

/// A route as listed at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// Component id, or the trigger id for a static response.
    pub id: String,
    /// Normalised route, e.g. `/hello/...`.
    pub route: String,
    /// Ends with a wildcard.
    pub wildcard: bool,
    /// Component description.
    pub description: Option<String>,
}

/// A route's target and the metric series its requests update (looked up
/// once, here, not per request).
pub(crate) struct RouteEntry {
    pub(crate) target: RouteTarget,
    pub(crate) metrics: gyre_telemetry::RouteMetrics,
}

/// Where a route leads.
pub(crate) enum RouteTarget {
    Component(Arc<executor::ComponentExecutor>),
    Static(StaticResponse),
}

/// Where a route leads, before executors are attached: kept so a trigger
/// can be rebuilt around one replaced component.
#[derive(Clone)]
enum TargetSpec {
    Component(ExecutorKey),
    Static(StaticResponse),
}

/// A component as one executor kind runs it: `(id, is WAGI)`.
type ExecutorKey = (String, bool);

/// The loaded HTTP trigger of an application: an immutable value. A reload
/// builds a new one ([`HttpTrigger::load`], [`HttpTrigger::replace_component`])
/// and swaps it in through a [`LiveTrigger`].
pub struct HttpTrigger {
    pub(crate) router: routes::Router<RouteEntry>,
    /// Requests no route matched (404), counted without labels.
    pub(crate) unmatched: gyre_telemetry::RouteMetrics,
    pub(crate) routes: Vec<RouteInfo>,
    pub(crate) app_name: String,
    pub(crate) app_version: String,
    pub(crate) warnings: Vec<String>,
    /// Every loaded component (non-WAGI executors), for service chaining.
    pub(crate) components: HashMap<String, Arc<executor::ComponentExecutor>>,
    executors: HashMap<ExecutorKey, (Arc<executor::ComponentExecutor>, HttpExecutor)>,
    specs: Vec<(String, TargetSpec)>,
    /// How `wasi:http/handler@0.3` instances are reused (kept for
    /// [`HttpTrigger::replace_component`]).
    reuse: ReusePolicy,
    /// The application this was loaded from (its copied `files` live as
    /// long as a request may still use this trigger).
    app: Arc<App>,
}

impl HttpTrigger {
    /// Compiles and links every component an HTTP trigger leads to.
    pub async fn load(
        engine: &Arc<GyreEngine>,
        app: &Arc<App>,
        options: &HttpLoadOptions<'_>,
    ) -> Result<(Self, Vec<ComponentReport>)> {
        let mut executors: HashMap<ExecutorKey, (Arc<executor::ComponentExecutor>, HttpExecutor)> =
            HashMap::new();
        let mut reports = Vec::new();
        let mut specs = Vec::new();
        let mut route_infos = Vec::new();

        for (trigger, http) in app.manifest.http_triggers() {
            let target = match (&trigger.component, &http.static_response) {
                (Some(id), _) => {
                    let key = (
                        id.clone(),
                        matches!(http.executor, HttpExecutor::Wagi { .. }),
                    );
                    if !executors.contains_key(&key) {
                        let component = app
                            .components
                            .get(id)
                            .with_context(|| format!("component `{id}` was not loaded"))?;
                        let config = options.common.instance_config(app, id)?;
                        let (exec, report) = load_executor(
                            engine,
                            id,
                            component.wasm.clone(),
                            component.composition.clone(),
                            RunAs {
                                config,
                                limits: options.common.limits.for_component(id),
                                kind: &http.executor,
                                reuse: options.reuse,
                            },
                        )
                        .await?;
                        reports.push(report);
                        executors.insert(key.clone(), (exec, http.executor.clone()));
                    }
                    TargetSpec::Component(key)
                }
                (None, Some(resp)) => TargetSpec::Static(resp.clone()),
                (None, None) => bail!(
                    "trigger `{}` has neither a component nor a static response",
                    trigger.id
                ),
            };
            match &http.route {
                HttpRoute::Private => {}
                HttpRoute::Path(route) => {
                    let pattern = routes::RoutePattern::parse(route).map_err(|e| {
                        anyhow::Error::from(
                            app.manifest
                                .source
                                .error(
                                    Some(trigger.span.clone()),
                                    "trigger.http.route",
                                    e.to_string(),
                                )
                                .with_help(
                                    "routes look like `/`, `/hello`, `/users/:id` or `/api/...`",
                                ),
                        )
                    })?;
                    let display = if pattern.is_wildcard() {
                        format!("{}/...", pattern.base())
                    } else if pattern.base().is_empty() {
                        "/".to_string()
                    } else {
                        pattern.base()
                    };
                    let id = trigger
                        .component
                        .clone()
                        .unwrap_or_else(|| trigger.id.clone());
                    let description = trigger
                        .component
                        .as_ref()
                        .and_then(|c| app.manifest.components.get(c))
                        .map(|c| c.description.clone())
                        .filter(|d| !d.is_empty());
                    route_infos.push(RouteInfo {
                        id,
                        route: display,
                        wildcard: pattern.is_wildcard(),
                        description,
                    });
                    specs.push((route.clone(), target));
                }
            }
        }

        let mut warnings = Vec::new();
        for info in &route_infos {
            if info.route.starts_with("/.well-known/spin") {
                warnings.push(format!(
                    "route {} of `{}` is under /.well-known/spin/, which is reserved: it will never be reached",
                    info.route, info.id
                ));
            }
        }
        let trigger = HttpTrigger::assemble(
            app.clone(),
            executors,
            specs,
            route_infos,
            warnings,
            options.reuse,
        )?;
        Ok((trigger, reports))
    }

    /// Builds the router and the chaining map from loaded executors.
    fn assemble(
        app: Arc<App>,
        executors: HashMap<ExecutorKey, (Arc<executor::ComponentExecutor>, HttpExecutor)>,
        specs: Vec<(String, TargetSpec)>,
        routes: Vec<RouteInfo>,
        mut warnings: Vec<String>,
        reuse: ReusePolicy,
    ) -> Result<Self> {
        let mut entries = Vec::new();
        // `routes` lists the path routes in the order of `specs`.
        for ((route, spec), info) in specs.iter().zip(&routes) {
            let target = match spec {
                TargetSpec::Component(key) => RouteTarget::Component(
                    executors
                        .get(key)
                        .map(|(e, _)| e.clone())
                        .with_context(|| format!("component `{}` was not loaded", key.0))?,
                ),
                TargetSpec::Static(resp) => RouteTarget::Static(resp.clone()),
            };
            let metrics = gyre_telemetry::metrics().route(&info.id, route);
            entries.push((route.clone(), RouteEntry { target, metrics }));
        }
        let (router, unreachable) =
            routes::Router::build(entries).map_err(|e| anyhow::anyhow!("{e}"))?;
        for u in unreachable {
            let warning = format!(
                "route {} is declared more than once; only the last declaration is reachable",
                u.route
            );
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
        let components = executors
            .iter()
            .filter(|((_, wagi), _)| !wagi)
            .map(|((id, _), (exec, _))| (id.clone(), exec.clone()))
            .collect();
        Ok(HttpTrigger {
            router,
            unmatched: gyre_telemetry::metrics().route("", ""),
            routes,
            app_name: app.manifest.application.name.clone(),
            app_version: app.manifest.application.version.clone(),
            warnings,
            components,
            executors,
            specs,
            reuse,
            app,
        })
    }

    /// A new trigger like this one with component `id` compiled anew from
    /// `wasm` (same routes, grants, limits and output); every other component
    /// is shared with this trigger. Used when only a component's source
    /// changed: nothing else is reloaded.
    pub async fn replace_component(
        &self,
        engine: &Arc<GyreEngine>,
        id: &str,
        wasm: Vec<u8>,
        composition: Arc<gyre_engine::Composition>,
    ) -> Result<(Self, ComponentReport)> {
        let mut executors = self.executors.clone();
        let keys: Vec<ExecutorKey> = executors.keys().filter(|(k, _)| k == id).cloned().collect();
        if keys.is_empty() {
            bail!("component `{id}` is not served by an HTTP trigger");
        }
        let mut report = None;
        for key in keys {
            let Some((old, kind)) = executors.get(&key).cloned() else {
                continue;
            };
            let (exec, loaded) = load_executor(
                engine,
                id,
                wasm.clone(),
                composition.clone(),
                RunAs {
                    config: old.config().clone(),
                    limits: *old.limits(),
                    kind: &kind,
                    reuse: self.reuse,
                },
            )
            .await?;
            report.get_or_insert(loaded);
            executors.insert(key, (exec, kind));
        }
        let trigger = HttpTrigger::assemble(
            self.app.clone(),
            executors,
            self.specs.clone(),
            self.routes.clone(),
            self.warnings.clone(),
            self.reuse,
        )?;
        let report = report.with_context(|| format!("component `{id}` was not reloaded"))?;
        Ok((trigger, report))
    }

    /// The application this trigger serves.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// The routes, in manifest order, as listed at startup.
    pub fn routes(&self) -> &[RouteInfo] {
        &self.routes
    }

    /// Problems with the routes that do not stop serving.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// How a component is run for a request, apart from its code.
struct RunAs<'a> {
    config: InstanceConfig,
    limits: gyre_engine::ComponentLimits,
    kind: &'a HttpExecutor,
    reuse: ReusePolicy,
}

/// Compiles (or loads from the cache) one component off the async
/// executor, and wraps it in the executor its trigger asks for.
async fn load_executor(
    engine: &Arc<GyreEngine>,
    id: &str,
    wasm: Vec<u8>,
    composition: Arc<gyre_engine::Composition>,
    run: RunAs<'_>,
) -> Result<(Arc<executor::ComponentExecutor>, ComponentReport)> {
    let RunAs {
        config,
        limits,
        kind,
        reuse,
    } = run;
    let started = std::time::Instant::now();
    let engine2 = engine.clone();
    let name = id.to_string();
    let loaded =
        tokio::task::spawn_blocking(move || engine2.load_composed(&name, &wasm, &composition))
            .await
            .context("component loading panicked")??;
    let exec = executor::ComponentExecutor::new(
        id,
        loaded.component.clone(),
        loaded.pre,
        config,
        limits,
        kind,
        reuse,
    )?;
    let report = ComponentReport {
        id: id.to_string(),
        handler: exec.handler_name(),
        cache: loaded.cache,
        stubbed: loaded.stubbed,
        load_time: started.elapsed(),
    };
    Ok((Arc::new(exec), report))
}

/// The trigger a server is serving: one pointer, swapped whole.
///
/// Each request takes the current trigger once (an `Arc` clone) and keeps
/// it to the end, so a request in flight finishes on the version it started
/// on while new requests see the new one; the old version is dropped when
/// its last request ends. Nothing on the request path takes a lock.
#[derive(Clone)]
pub struct LiveTrigger(Arc<arc_swap::ArcSwap<HttpTrigger>>);

impl LiveTrigger {
    /// Starts serving `trigger`.
    pub fn new(trigger: HttpTrigger) -> Self {
        LiveTrigger(Arc::new(arc_swap::ArcSwap::from_pointee(trigger)))
    }

    /// The trigger new requests get.
    pub fn current(&self) -> Arc<HttpTrigger> {
        self.0.load_full()
    }

    /// Makes `trigger` the one new requests get.
    pub fn replace(&self, trigger: HttpTrigger) {
        self.0.store(Arc::new(trigger));
    }

    /// Runs components for `http://<id>.spin.internal` requests, in-process,
    /// on whichever trigger is current when the request is made.
    pub fn chain_dispatcher(&self) -> Arc<dyn gyre_outbound_http::LocalDispatch> {
        Arc::new(chain::ChainDispatcher {
            live: Arc::downgrade(&self.0),
        })
    }

    /// Binds the listener; `addr` may use port 0.
    pub async fn bind(&self, addr: SocketAddr, options: ServeOptions) -> Result<BoundServer> {
        server::bind(self.clone(), addr, options).await
    }
}
