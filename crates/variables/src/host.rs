//! The guest-facing interfaces, bound from Gyre's own WIT (`wit/`).

use anyhow::Result;
use gyre_engine::HostState;
use wasmtime::component::{Accessor, HasData, Linker};

use crate::{ResolveError, VariablesState};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "gyre:variables/host",
        imports: {
            "spin:variables/variables.get": async | store,
            default: async,
        },
    });
}

use bindings::fermyon::spin::config as unversioned;
use bindings::fermyon::spin2_0_0::variables as v2;
use bindings::spin::variables::variables as v3;
use bindings::wasi::config::store as wasi_config;

/// Marker for the linker: the host functions see [`VariablesState`].
struct Variables;

impl HasData for Variables {
    type Data<'a> = &'a mut VariablesState;
}

fn state(host: &mut HostState) -> &mut VariablesState {
    host.capability::<VariablesState>().0
}

pub(crate) fn bind(linker: &mut Linker<HostState>) -> Result<()> {
    v2::add_to_linker::<_, Variables>(linker, state)?;
    unversioned::add_to_linker::<_, Variables>(linker, state)?;
    // Spin 3+ interfaces have `async func`s, for the concurrent engine only.
    if gyre_engine::supports_concurrency(linker) {
        v3::add_to_linker::<_, Variables>(linker, state)?;
    }
    wasi_config::add_to_linker::<_, Variables>(linker, state)?;
    Ok(())
}

async fn get(state: &VariablesState, name: &str) -> Result<String, ResolveError> {
    match &state.component {
        Some(component) => component.get(name).await,
        None => {
            crate::check_variable_key(name).map_err(|_| ResolveError::InvalidName(name.into()))?;
            Err(ResolveError::Undefined(name.to_string()))
        }
    }
}

fn log_provider_failure(err: &ResolveError) {
    if let ResolveError::Provider { name, source } = err {
        tracing::warn!("variable `{name}` could not be resolved: {source}");
    }
}

impl v2::Host for &mut VariablesState {
    async fn get(&mut self, name: String) -> Result<String, v2::Error> {
        get(self, &name).await.map_err(|e| {
            log_provider_failure(&e);
            match e {
                ResolveError::InvalidName(n) => v2::Error::InvalidName(n),
                ResolveError::Undefined(n) => v2::Error::Undefined(n),
                e @ ResolveError::Provider { .. } => v2::Error::Provider(e.to_string()),
            }
        })
    }
}

impl<T> v3::HostWithStore<T> for Variables {
    async fn get(accessor: &Accessor<T, Self>, name: String) -> Result<String, v3::Error> {
        let component = accessor.with(|mut access| access.get().component.clone());
        let state = VariablesState { component };
        get(&state, &name).await.map_err(|e| {
            log_provider_failure(&e);
            match e {
                ResolveError::InvalidName(n) => v3::Error::InvalidName(n),
                ResolveError::Undefined(n) => v3::Error::Undefined(n),
                e @ ResolveError::Provider { .. } => v3::Error::Provider(e.to_string()),
            }
        })
    }
}

impl v3::Host for &mut VariablesState {}

/// Spin 1.x's `get-config`: an invalid name is `invalid-key`, an undefined
/// one `provider`, as in Spin.
impl unversioned::Host for &mut VariablesState {
    async fn get_config(&mut self, key: String) -> Result<String, unversioned::Error> {
        get(self, &key).await.map_err(|e| {
            log_provider_failure(&e);
            match e {
                e @ ResolveError::InvalidName(_) => unversioned::Error::InvalidKey(e.to_string()),
                e @ (ResolveError::Undefined(_) | ResolveError::Provider { .. }) => {
                    unversioned::Error::Provider(e.to_string())
                }
            }
        })
    }
}

impl wasi_config::Host for &mut VariablesState {
    async fn get(&mut self, key: String) -> Result<Option<String>, wasi_config::Error> {
        match get(self, &key).await {
            Ok(value) => Ok(Some(value)),
            Err(ResolveError::InvalidName(_) | ResolveError::Undefined(_)) => Ok(None),
            Err(e) => {
                log_provider_failure(&e);
                Err(wasi_config::Error::Upstream(e.to_string()))
            }
        }
    }

    async fn get_all(&mut self) -> Result<Vec<(String, String)>, wasi_config::Error> {
        let Some(component) = &self.component else {
            return Ok(Vec::new());
        };
        component.get_all().await.map_err(|e| {
            log_provider_failure(&e);
            wasi_config::Error::Upstream(e.to_string())
        })
    }
}
