//! What every trigger shares.
//!
//! A trigger (HTTP, Redis, cron) turns an event into a call of a component's
//! export in a fresh instance. Everything about that instance but the call —
//! its environment, mounts, output, limits and grants — is the same for
//! every trigger and is decided once per component at load, here.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use gyre_app::App;
use gyre_engine::{
    AppCapabilities, AppLimits, GyreEngine, InstanceConfig, LoadedComponent, OutputHub,
    RequestWatch,
};
use gyre_telemetry::{Limit, TriggerKind};

/// Options for loading a trigger's components.
pub struct LoadOptions<'a> {
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

impl LoadOptions<'_> {
    /// What each instance of component `id` of `app` starts with.
    pub fn instance_config(&self, app: &App, id: &str) -> Result<InstanceConfig> {
        let component = app
            .components
            .get(id)
            .with_context(|| format!("component `{id}` was not loaded"))?;
        Ok(InstanceConfig {
            component_id: Arc::from(id),
            env: component.env.clone(),
            mounts: component
                .mounts()
                .into_iter()
                .map(|m| (m.host, m.guest))
                .collect(),
            output: self
                .output
                .component(id, self.log_dir.as_deref(), self.truncate_logs)?,
            limits: self.limits.for_component(id).instance,
            capabilities: self.capabilities.for_component(id),
        })
    }
}

/// Compiles (or loads from the cache) and links component `id` of `app`,
/// with its dependencies composed in, off the async threads.
pub async fn load_component(
    engine: &Arc<GyreEngine>,
    app: &App,
    id: &str,
) -> Result<LoadedComponent> {
    let component = app
        .components
        .get(id)
        .with_context(|| format!("component `{id}` was not loaded"))?;
    let engine = engine.clone();
    let wasm = component.wasm.clone();
    let composition = component.composition.clone();
    let name = id.to_string();
    tokio::task::spawn_blocking(move || engine.load_composed(&name, &wasm, &composition))
        .await
        .context("component loading panicked")?
}

/// How one guest call ended, for the trigger to log and count.
#[derive(Debug)]
pub enum RunOutcome {
    /// It returned success.
    Succeeded,
    /// It trapped or returned an error.
    Failed(anyhow::Error),
    /// It was still running at `request_timeout`; its instance was dropped.
    TimedOut(Duration),
    /// It used up its CPU time (`cpu_timeout`).
    CpuExceeded,
}

/// Runs one guest call under its component's wall-clock deadline and tells
/// how it ended. `watch` is the one the call's store reports CPU use to.
pub async fn guarded(
    timeout: Option<Duration>,
    watch: &RequestWatch,
    run: impl Future<Output = Result<()>>,
) -> RunOutcome {
    let result = match timeout {
        Some(limit) => match tokio::time::timeout(limit, run).await {
            Ok(result) => result,
            Err(_) => return RunOutcome::TimedOut(limit),
        },
        None => run.await,
    };
    match result {
        Ok(()) => RunOutcome::Succeeded,
        Err(_) if watch.cpu_exceeded() => RunOutcome::CpuExceeded,
        Err(e) => RunOutcome::Failed(e),
    }
}

/// Counts a call that a limit stopped or that failed, in the metrics every
/// trigger shares (`gyre_deadline_exceeded_total`, `gyre_guest_failures_total`).
pub fn count_outcome(component: &str, trigger: TriggerKind, outcome: &RunOutcome) {
    let metrics = gyre_telemetry::metrics();
    match outcome {
        RunOutcome::Succeeded => {}
        RunOutcome::TimedOut(_) => {
            metrics.deadline_exceeded(component, trigger, Limit::RequestTimeout);
        }
        RunOutcome::CpuExceeded => metrics.deadline_exceeded(component, trigger, Limit::CpuTimeout),
        RunOutcome::Failed(_) => metrics.guest_failed(component, trigger),
    }
}

/// The span of one instantiation, a child of the span of the event that
/// asked for it.
pub fn instantiate_span(component: &str) -> tracing::Span {
    tracing::trace_span!(target: gyre_telemetry::SPAN_TARGET, "instantiate", component)
}

/// A component's export names for an error message ("nothing" if none).
pub fn list_exports(exports: &[String]) -> String {
    if exports.is_empty() {
        "nothing".to_string()
    } else {
        exports.join(", ")
    }
}
