//! What `gyre build` checks after building and `gyre doctor` reports: each
//! component's source exists, is a component or module Gyre can compile,
//! exports the handler its trigger calls, and imports only what Gyre links.
//!
//! The check compiles through the same engines and linkers as `gyre up` and
//! writes the compiled-code cache, so a checked app starts warm.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use gyre_engine::{EngineOptions, GyreEngine};
use gyre_manifest::{ComponentSource, Manifest, TriggerConfig};

/// The engine `up` would use, without an instance pool (a check
/// instantiates nothing), writing the compile cache `up` reads
/// (`GYRE_CACHE_DIR`, else the per-user default).
pub(crate) fn engine() -> Result<GyreEngine> {
    let defaults = EngineOptions::default();
    let cache_dir = std::env::var_os("GYRE_CACHE_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or(defaults.cache_dir.clone());
    GyreEngine::with_capabilities(
        &EngineOptions {
            pooling: Some(false),
            cache_dir,
            ..defaults
        },
        &crate::up::capabilities(),
    )
}

/// What one component turned out to be.
#[derive(Debug)]
pub(crate) struct ComponentReport {
    pub(crate) id: String,
    /// The handler it exports for its trigger(s), e.g. `wasi:http/handler@0.3.0`.
    pub(crate) handler: String,
    /// `synchronous` or `concurrent` (component-model async).
    pub(crate) engine: &'static str,
    /// Imports Gyre links as functions that fail.
    pub(crate) not_provided: Vec<String>,
}

/// A component's source as a local file, if it is one.
pub(crate) fn local_source(manifest: &Manifest, app_dir: &Path, id: &str) -> Option<PathBuf> {
    match &manifest.components.get(id)?.source {
        ComponentSource::Local(path) => Some(app_dir.join(path)),
        _ => None,
    }
}

/// Compiles and links one component and checks its handler export.
pub(crate) fn check_component(
    engine: &GyreEngine,
    manifest: &Manifest,
    app_dir: &Path,
    id: &str,
) -> Result<ComponentReport> {
    let path = local_source(manifest, app_dir, id)
        .with_context(|| format!("component `{id}` has no local source to check"))?;
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "component `{id}`: its source {} cannot be read",
            path.display()
        )
    })?;
    let loaded = engine.load(id, &bytes)?;
    let exports = loaded.exports();
    let mut handlers = Vec::new();
    for trigger in manifest
        .triggers
        .iter()
        .filter(|t| t.component.as_deref() == Some(id))
    {
        let handler = match &trigger.config {
            TriggerConfig::Http(http) => gyre_trigger_http::executor::describe_handler(
                &exports,
                matches!(http.executor, gyre_manifest::HttpExecutor::Wagi { .. }),
            )
            .map_err(|e| anyhow::anyhow!("component `{id}`: {e}"))?,
            TriggerConfig::Redis(_) => gyre_trigger_redis::describe_handler(&exports)
                .map_err(|e| anyhow::anyhow!("component `{id}`: {e}"))?,
            TriggerConfig::Cron(_) => gyre_trigger_cron::describe_handler(&exports)
                .map_err(|e| anyhow::anyhow!("component `{id}`: {e}"))?,
            TriggerConfig::Other => continue,
        };
        if !handlers.contains(&handler) {
            handlers.push(handler);
        }
    }
    Ok(ComponentReport {
        id: id.to_string(),
        handler: if handlers.is_empty() {
            "no trigger uses it".to_string()
        } else {
            handlers.join(", ")
        },
        engine: if loaded.on_concurrent_engine() {
            "concurrent"
        } else {
            "synchronous"
        },
        not_provided: loaded.stubbed.0.clone(),
    })
}
