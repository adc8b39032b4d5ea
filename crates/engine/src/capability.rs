//! How host capabilities (key-value, SQLite, variables, …) plug into the
//! engine without the engine knowing them.
//!
//! Every capability has the same shape:
//! 1. **bind** its WIT interfaces into the linker once, when the engine
//!    starts ([`Capability::bind`]);
//! 2. **configure** per application: validate what the manifest grants
//!    against the runtime config, open backends, and produce one
//!    [`PrepareInstance`] per component that is granted anything;
//! 3. **prepare** per instance: [`PrepareInstance::prepare`] puts the
//!    capability's per-instance state into the store's [`Extensions`].
//!
//! A component granted nothing gets no per-instance state at all: its host
//! functions see the capability's `Default` state, which grants nothing.
//! The tiny hello component pays nothing for capabilities it does not use.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use wasmtime::component::Linker;

use crate::extensions::Extensions;
use crate::host::HostState;

/// A host capability's engine-start step: adding its interfaces to the
/// linker every component is linked with.
pub trait Capability: Send + Sync {
    /// A short name for logs and errors ("key-value").
    fn name(&self) -> &'static str;
    /// Adds the capability's host interfaces to the linker.
    fn bind(&self, linker: &mut Linker<HostState>) -> Result<()>;
}

/// A capability's per-instance step, prepared once per component at load.
pub trait PrepareInstance: Send + Sync {
    /// Adds this capability's per-instance state to a new store.
    fn prepare(&self, extensions: &mut Extensions);

    /// Adds to the instance's WASI context (socket permissions), before it
    /// is built. Most capabilities have nothing to add.
    fn prepare_wasi(&self, _wasi: &mut wasmtime_wasi::WasiCtxBuilder) {}
}

/// Per-instance state of a capability whose grant is one shared value per
/// component (the outbound connection kinds: the component's allow-list and
/// the app's pools), plus how many handles this instance holds open. An
/// instance of a component granted nothing sees `component: None`.
pub struct Granted<C> {
    /// What the component may reach, if anything.
    pub component: Option<Arc<C>>,
    /// Connections this instance has open.
    pub open: usize,
}

impl<C> Default for Granted<C> {
    fn default() -> Self {
        Granted {
            component: None,
            open: 0,
        }
    }
}

/// Puts a component's grant into each new instance as [`Granted<C>`].
pub struct PrepareGranted<C>(pub Arc<C>);

impl<C: Send + Sync + 'static> PrepareInstance for PrepareGranted<C> {
    fn prepare(&self, extensions: &mut Extensions) {
        extensions.insert(Granted {
            component: Some(self.0.clone()),
            open: 0,
        });
    }
}

/// What every capability prepared for each component of one application:
/// the product of the per-app "configure" step, handed to the triggers.
#[derive(Default, Clone)]
pub struct AppCapabilities {
    per_component: HashMap<String, Vec<Arc<dyn PrepareInstance>>>,
}

impl AppCapabilities {
    /// Adds one capability's per-instance preparation for `component`.
    pub fn add(&mut self, component: &str, prepare: Arc<dyn PrepareInstance>) {
        self.per_component
            .entry(component.to_string())
            .or_default()
            .push(prepare);
    }

    /// Everything prepared for `component` (empty if it is granted nothing).
    pub fn for_component(&self, component: &str) -> Vec<Arc<dyn PrepareInstance>> {
        self.per_component
            .get(component)
            .cloned()
            .unwrap_or_default()
    }
}
