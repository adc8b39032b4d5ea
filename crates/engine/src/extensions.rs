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

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use wasmtime::component::{Linker, ResourceTable};

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

/// Per-instance state of host capabilities, by type. A store holds one
/// value per capability at most, so a linear scan over a handful of boxes
/// is the fastest map there is.
#[derive(Default)]
pub struct Extensions {
    values: Vec<Box<dyn Any + Send>>,
}

impl Extensions {
    /// Stores `value`, replacing any earlier value of the same type.
    pub fn insert<T: Any + Send>(&mut self, value: T) {
        match self.get_mut::<T>() {
            Some(slot) => *slot = value,
            None => self.values.push(Box::new(value)),
        }
    }

    /// The value of type `T`, if one was inserted.
    pub fn get_mut<T: Any + Send>(&mut self) -> Option<&mut T> {
        self.values.iter_mut().find_map(|v| v.downcast_mut::<T>())
    }

    /// The value of type `T`, inserting `T::default()` first if absent.
    pub fn get_or_default<T: Any + Send + Default>(&mut self) -> &mut T {
        let index = match self.values.iter().position(|v| v.is::<T>()) {
            Some(index) => index,
            None => {
                self.values.push(Box::new(T::default()));
                self.values.len() - 1
            }
        };
        match self.values[index].downcast_mut::<T>() {
            Some(value) => value,
            None => unreachable!("the value at this index has type T"),
        }
    }
}

impl HostState {
    /// A capability's per-instance state (its default if the component was
    /// granted nothing) together with the store's resource table.
    pub fn capability<T: Any + Send + Default>(&mut self) -> (&mut T, &mut ResourceTable) {
        (self.extensions.get_or_default::<T>(), &mut self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Debug, PartialEq)]
    struct A(u32);
    #[derive(Default, Debug, PartialEq)]
    struct B(&'static str);

    #[test]
    fn values_are_found_by_type() {
        let mut ext = Extensions::default();
        assert_eq!(ext.get_mut::<A>(), None);
        ext.insert(A(1));
        ext.insert(B("b"));
        ext.insert(A(2));
        assert_eq!(ext.get_mut::<A>(), Some(&mut A(2)));
        assert_eq!(ext.get_mut::<B>(), Some(&mut B("b")));
        assert_eq!(ext.values.len(), 2);
    }

    #[test]
    fn absent_values_default() {
        let mut ext = Extensions::default();
        ext.get_or_default::<A>().0 += 5;
        assert_eq!(ext.get_or_default::<A>(), &mut A(5));
    }
}
