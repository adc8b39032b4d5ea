//! Building a store for one instance, and the linker every component is
//! linked with.
//!
//! Host capabilities are added to the linker once, when the engine starts.
//! Per component, an [`InstanceConfig`] is prepared at load (environment,
//! mounted files, output sinks, limits) so that building a store for a
//! request is a handful of field copies.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use wasmtime::Store;
use wasmtime::component::Linker;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::WasmtimeResultExt as _;
use crate::capability::{Capability, PrepareInstance};
use crate::extensions::Extensions;
use crate::host::HostState;
use crate::limits::{Governor, InstanceLimits};
use crate::output::{GuestOutput, OutputBudget};

/// Everything needed to build a store for one component, prepared at load.
#[derive(Clone)]
pub struct InstanceConfig {
    /// The component id, for logs.
    pub component_id: Arc<str>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Host directories mounted read-only, each at its guest path (the
    /// copied `files` at `/`, or `--direct-mounts` directories).
    pub mounts: Vec<(PathBuf, String)>,
    /// Where stdout and stderr go.
    pub output: GuestOutput,
    /// Memory, CPU time and output limits.
    pub limits: InstanceLimits,
    /// Per-instance state of the host capabilities this component is
    /// granted (key-value stores, databases, variables).
    pub capabilities: Vec<Arc<dyn PrepareInstance>>,
}

impl InstanceConfig {
    /// A new store for one instance of the component. `customize` may add to
    /// the WASI context (arguments, stdin, stdout capture for WAGI).
    pub fn new_store(
        &self,
        engine: &wasmtime::Engine,
        customize: impl FnOnce(&mut WasiCtxBuilder),
    ) -> Result<Store<HostState>> {
        let component = self.component_id.clone();
        let output_budget = OutputBudget::new(component.clone(), self.limits.max_output_bytes);
        let mut builder = WasiCtxBuilder::new();
        builder.envs(&self.env);
        builder.stdout(self.output.stdout(&output_budget));
        builder.stderr(self.output.stderr(&output_budget));
        for (dir, guest) in &self.mounts {
            builder
                .preopened_dir(dir, guest, FsPerms::ReadOnly)
                .anyhow()
                .with_context(|| {
                    format!(
                        "cannot mount {} into component `{}`",
                        dir.display(),
                        self.component_id
                    )
                })?;
        }
        customize(&mut builder);
        let mut extensions = Extensions::default();
        for capability in &self.capabilities {
            capability.prepare_wasi(&mut builder);
            capability.prepare(&mut extensions);
        }
        let state = HostState::new(
            builder.build(),
            Governor::new(component, self.limits),
            output_budget,
            extensions,
        );
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.governor);
        // Every tick a running guest yields to the executor (so a busy guest
        // never starves other requests on its worker thread) and is charged
        // one tick of CPU time; past its budget the call fails. The yield is
        // tokio's own: it defers the wake-up until the worker has polled the
        // I/O driver, where a plain self-wake would let two busy guests on
        // two workers keep every socket waiting (the driver is otherwise
        // polled only every 61 task polls).
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| match ctx.data_mut().governor.tick() {
            Ok(()) => Ok(wasmtime::UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            )),
            Err(exceeded) => Err(wasmtime::Error::new(exceeded)),
        });
        Ok(store)
    }
}

/// The linker with every host interface Gyre provides on `engine`: on an
/// engine without component-model async, the WASI 0.2-era ones only.
pub(crate) fn linker(
    engine: &wasmtime::Engine,
    capabilities: &[&dyn Capability],
) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .anyhow()
        .context("linking WASI 0.2")?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .anyhow()
        .context("linking wasi:http 0.2")?;
    if engine.get_concurrency_support() {
        wasmtime_wasi::p3::add_to_linker(&mut linker)
            .anyhow()
            .context("linking WASI 0.3")?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker)
            .anyhow()
            .context("linking wasi:http 0.3")?;
    }
    for capability in capabilities {
        capability
            .bind(&mut linker)
            .with_context(|| format!("linking the {} interfaces", capability.name()))?;
    }
    Ok(linker)
}
