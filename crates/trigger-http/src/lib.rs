//! The HTTP trigger: Spin's routing, headers and handler kinds on hyper.
//!
//! At load every component a route leads to is compiled, linked and its
//! handler kind detected ([`executor::Handler`]); at serve time a request is
//! routed ([`routes::Router`]), decorated with Spin's `spin-*` headers
//! ([`headers`]) and handed to its executor, which instantiates the
//! component from its pre-linked `InstancePre`.

mod chain;
pub mod executor;
pub mod headers;
mod limits;
mod server;
pub mod wagi;
mod wake;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use gyre_app::App;
use gyre_app::manifest::{HttpExecutor, HttpRoute, StaticResponse};
use gyre_engine::{
    AppCapabilities, AppLimits, CacheOutcome, GyreEngine, InstanceConfig, OutputHub, StubbedImports,
};

/// Route patterns and matching (re-exported from `gyre-http-routing`).
pub use gyre_http_routing as routes;
pub use server::{BoundServer, BoxError, ResponseBody, ServeOptions, ServerLimits};

/// Options for loading the HTTP trigger.
pub struct HttpLoadOptions<'a> {
    /// Guest output destination.
    pub output: &'a OutputHub,
    /// Per-component log files go here, if set.
    pub log_dir: Option<PathBuf>,
    /// Truncate log files at start instead of appending.
    pub truncate_logs: bool,
    /// Deadlines, memory and body limits, per component.
    pub limits: &'a AppLimits,
    /// Host capabilities prepared for each component.
    pub capabilities: &'a AppCapabilities,
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

/// Where a route leads.
pub(crate) enum RouteTarget {
    Component(Arc<executor::ComponentExecutor>),
    Static(StaticResponse),
}

/// The loaded HTTP trigger of an application.
pub struct HttpTrigger {
    pub(crate) router: routes::Router<RouteTarget>,
    pub(crate) routes: Vec<RouteInfo>,
    pub(crate) app_name: String,
    pub(crate) app_version: String,
    pub(crate) warnings: Vec<String>,
    /// Every loaded component (non-WAGI executors), for service chaining.
    pub(crate) components: HashMap<String, Arc<executor::ComponentExecutor>>,
}

impl HttpTrigger {
    /// Compiles and links every component an HTTP trigger leads to.
    pub async fn load(
        engine: &Arc<GyreEngine>,
        app: &App,
        options: &HttpLoadOptions<'_>,
    ) -> Result<(Self, Vec<ComponentReport>)> {
        let mut executors: HashMap<(String, bool), Arc<executor::ComponentExecutor>> =
            HashMap::new();
        let mut reports = Vec::new();
        let mut route_entries = Vec::new();
        let mut route_infos = Vec::new();

        for (trigger, http) in app.manifest.http_triggers() {
            if http.has_middleware {
                return Err(app
                    .manifest
                    .source
                    .error(Some(trigger.span.clone()), "trigger.http.dependencies.middleware", "HTTP middleware is not supported by Gyre yet")
                    .with_help("remove `dependencies.middleware`, or compose the middleware into the component ahead of time")
                    .into());
            }
            let target = match (&trigger.component, &http.static_response) {
                (Some(id), _) => {
                    let key = (
                        id.clone(),
                        matches!(http.executor, HttpExecutor::Wagi { .. }),
                    );
                    let exec = match executors.get(&key) {
                        Some(e) => e.clone(),
                        None => {
                            let component = app
                                .components
                                .get(id)
                                .with_context(|| format!("component `{id}` was not loaded"))?;
                            let config = InstanceConfig {
                                component_id: Arc::from(id.as_str()),
                                env: component.env.clone(),
                                root_dir: component.root_dir.clone(),
                                output: options.output.component(
                                    id,
                                    options.log_dir.as_deref(),
                                    options.truncate_logs,
                                )?,
                                limits: options.limits.for_component(id).instance,
                                capabilities: options.capabilities.for_component(id),
                            };
                            let started = std::time::Instant::now();
                            let engine2 = engine.clone();
                            let wasm = component.wasm.clone();
                            let name = id.clone();
                            let loaded =
                                tokio::task::spawn_blocking(move || engine2.load(&name, &wasm))
                                    .await
                                    .context("component loading panicked")??;
                            let exec = executor::ComponentExecutor::new(
                                id,
                                loaded.component.clone(),
                                loaded.pre,
                                config,
                                options.limits.for_component(id),
                                &http.executor,
                            )?;
                            reports.push(ComponentReport {
                                id: id.clone(),
                                handler: exec.handler_name(),
                                cache: loaded.cache,
                                stubbed: loaded.stubbed,
                                load_time: started.elapsed(),
                            });
                            let exec = Arc::new(exec);
                            executors.insert(key, exec.clone());
                            exec
                        }
                    };
                    RouteTarget::Component(exec)
                }
                (None, Some(resp)) => RouteTarget::Static(resp.clone()),
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
                    route_entries.push((route.clone(), target));
                }
            }
        }

        let (router, unreachable) =
            routes::Router::build(route_entries).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut warnings = Vec::new();
        for u in unreachable {
            warnings.push(format!(
                "route {} is declared more than once; only the last declaration is reachable",
                u.route
            ));
        }
        for info in &route_infos {
            if info.route.starts_with("/.well-known/spin") {
                warnings.push(format!(
                    "route {} of `{}` is under /.well-known/spin/, which is reserved: it will never be reached",
                    info.route, info.id
                ));
            }
        }
        let components = executors
            .into_iter()
            .filter(|((_, wagi), _)| !wagi)
            .map(|((id, _), exec)| (id, exec))
            .collect();
        Ok((
            HttpTrigger {
                router,
                routes: route_infos,
                app_name: app.manifest.application.name.clone(),
                app_version: app.manifest.application.version.clone(),
                warnings,
                components,
            },
            reports,
        ))
    }

    /// Runs components for `http://<id>.spin.internal` requests, in-process.
    pub fn chain_dispatcher(&self) -> Arc<dyn gyre_outbound_http::LocalDispatch> {
        Arc::new(chain::ChainDispatcher {
            components: self.components.clone(),
        })
    }

    /// The routes, in manifest order, as listed at startup.
    pub fn routes(&self) -> &[RouteInfo] {
        &self.routes
    }

    /// Problems with the routes that do not stop serving.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Binds the listener; `addr` may use port 0.
    pub async fn bind(self, addr: SocketAddr, options: ServeOptions) -> Result<BoundServer> {
        server::bind(Arc::new(self), addr, options).await
    }
}
