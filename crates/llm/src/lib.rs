//! Spin's LLM interface (`fermyon:spin/llm@2.0.0` and the unversioned
//! original) on remote inferencing servers.
//!
//! The three capability steps:
//! 1. **bind**: both interface versions, from Gyre's WIT in `wit/`;
//! 2. **configure** per app ([`AppLlm::configure`]): the runtime config's
//!    `[llm_compute]` picks the backend once; each component with
//!    `ai_models` gets a grant naming its models and sharing that backend;
//! 3. **prepare** per instance: the grant goes into the store.
//!
//! A model not in the component's `ai_models` is `invalid-input` with
//! Spin's text; with no `[llm_compute]` every call is a `runtime-error`
//! that says how to configure one (Gyre has no local inferencing).
//! Requests to the server are bounded (a timeout, a response size cap) and
//! run inside the guest's call, so the request deadline covers them: a
//! request cut at its deadline drops the inference in flight.

mod backend;
mod host;

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Result;
use gyre_engine::{AppCapabilities, Capability, Granted, HostState, PrepareGranted};
use gyre_manifest::{LlmComputeConfig, Manifest, RuntimeConfig};
use wasmtime::component::Linker;

pub use backend::{Backend, Embedded, InferParams, Inferred, LlmError, MAX_RESPONSE_BYTES};

/// Binds the LLM interfaces.
pub struct LlmCapability;

impl Capability for LlmCapability {
    fn name(&self) -> &'static str {
        "llm"
    }

    fn bind(&self, linker: &mut Linker<HostState>) -> Result<()> {
        host::bind(linker)
    }
}

/// What one component may use.
pub(crate) struct ComponentLlm {
    /// Its `ai_models`.
    models: BTreeSet<String>,
    /// The app's backend; `None` answers every call with `why_none`.
    backend: Result<Arc<Backend>, String>,
}

impl ComponentLlm {
    /// The backend, if `model` is granted and a backend is configured.
    pub(crate) fn backend_for(&self, model: &str) -> Result<Arc<Backend>, LlmError> {
        if !self.models.contains(model) {
            return Err(LlmError::InvalidInput(access_denied(model)));
        }
        self.backend.clone().map_err(LlmError::Runtime)
    }
}

/// Spin's text for a model the component may not use.
pub(crate) fn access_denied(model: &str) -> String {
    format!(
        "The component does not have access to use '{model}'. To give the component access, add \
         '{model}' to the 'ai_models' key for the component in your spin.toml manifest."
    )
}

/// Per-instance state.
pub(crate) type LlmState = Granted<ComponentLlm>;

/// The LLM capability of one application.
pub struct AppLlm {
    components: Vec<(String, Arc<ComponentLlm>)>,
}

impl AppLlm {
    /// Builds the backend `[llm_compute]` names and each component's grant.
    pub fn configure(manifest: &Manifest, runtime_config: &RuntimeConfig) -> Result<Self> {
        let backend = match &runtime_config.llm_compute {
            Some(LlmComputeConfig::RemoteHttp {
                url,
                auth_token,
                api_type,
                timeout,
            }) => Ok(Arc::new(Backend::remote_http(
                url,
                auth_token,
                *api_type,
                timeout.unwrap_or(backend::DEFAULT_TIMEOUT),
            )?)),
            Some(LlmComputeConfig::Local) => Err(
                "Local LLM operations are not supported by Gyre: point the runtime config's \
                 `[llm_compute]` at an inferencing server (`type = \"remote_http\"`, `url`, \
                 `auth_token`; `api_type = \"open_ai\"` for an OpenAI-compatible one)"
                    .to_string(),
            ),
            None => Err(
                "no LLM backend is configured: add `[llm_compute]` with `type = \"remote_http\"`, \
                 `url` and `auth_token` (and `api_type = \"open_ai\"` for an OpenAI-compatible \
                 server) to the runtime config given with --runtime-config-file"
                    .to_string(),
            ),
        };
        let components = manifest
            .components
            .values()
            .filter(|c| !c.ai_models.is_empty())
            .map(|c| {
                (
                    c.id.clone(),
                    Arc::new(ComponentLlm {
                        models: c.ai_models.iter().cloned().collect(),
                        backend: backend.clone(),
                    }),
                )
            })
            .collect();
        Ok(AppLlm { components })
    }

    /// Adds each granted component's per-instance preparation.
    pub fn register(&self, capabilities: &mut AppCapabilities) {
        for (id, component) in &self.components {
            capabilities.add(id, Arc::new(PrepareGranted(component.clone())));
        }
    }
}
