//! The guest-facing LLM interfaces, bound from Gyre's own WIT (`wit/`).
//! Both versions are the same interface, so each maps its types onto the
//! version-neutral [`Backend`](crate::Backend) calls.

use anyhow::Result;
use gyre_engine::HostState;
use wasmtime::component::{HasData, Linker};

use crate::{InferParams, LlmError, LlmState, access_denied};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "gyre:llm/host",
        imports: { default: async },
    });
}

use bindings::fermyon::spin::llm as unversioned;
use bindings::fermyon::spin2_0_0::llm as v2;

struct Llm;

impl HasData for Llm {
    type Data<'a> = &'a mut LlmState;
}

fn view(host: &mut HostState) -> &mut LlmState {
    host.capability::<LlmState>().0
}

pub(crate) fn bind(linker: &mut Linker<HostState>) -> Result<()> {
    v2::add_to_linker::<_, Llm>(linker, view)?;
    unversioned::add_to_linker::<_, Llm>(linker, view)?;
    Ok(())
}

async fn infer(
    state: &LlmState,
    model: &str,
    prompt: &str,
    params: Option<InferParams>,
) -> Result<crate::Inferred, LlmError> {
    let backend = match &state.component {
        Some(component) => component.backend_for(model)?,
        None => return Err(LlmError::InvalidInput(access_denied(model))),
    };
    backend
        .infer(model, prompt, params.unwrap_or_default())
        .await
}

async fn embed(
    state: &LlmState,
    model: &str,
    texts: &[String],
) -> Result<crate::Embedded, LlmError> {
    let backend = match &state.component {
        Some(component) => component.backend_for(model)?,
        None => return Err(LlmError::InvalidInput(access_denied(model))),
    };
    backend.embed(model, texts).await
}

/// One version's bindings: its types from the neutral ones.
macro_rules! llm_version {
    ($v:ident) => {
        impl From<LlmError> for $v::Error {
            fn from(e: LlmError) -> Self {
                match e {
                    LlmError::ModelNotSupported => $v::Error::ModelNotSupported,
                    LlmError::Runtime(s) => $v::Error::RuntimeError(s),
                    LlmError::InvalidInput(s) => $v::Error::InvalidInput(s),
                }
            }
        }

        impl $v::Host for &mut LlmState {
            async fn infer(
                &mut self,
                model: String,
                prompt: String,
                params: Option<$v::InferencingParams>,
            ) -> Result<$v::InferencingResult, $v::Error> {
                let params = params.map(|p| InferParams {
                    max_tokens: p.max_tokens,
                    repeat_penalty: p.repeat_penalty,
                    repeat_penalty_last_n_token_count: p.repeat_penalty_last_n_token_count,
                    temperature: p.temperature,
                    top_k: p.top_k,
                    top_p: p.top_p,
                });
                let inferred = infer(self, &model, &prompt, params).await?;
                Ok($v::InferencingResult {
                    text: inferred.text,
                    usage: $v::InferencingUsage {
                        prompt_token_count: inferred.prompt_tokens,
                        generated_token_count: inferred.generated_tokens,
                    },
                })
            }

            async fn generate_embeddings(
                &mut self,
                model: String,
                text: Vec<String>,
            ) -> Result<$v::EmbeddingsResult, $v::Error> {
                let embedded = embed(self, &model, &text).await?;
                Ok($v::EmbeddingsResult {
                    embeddings: embedded.embeddings,
                    usage: $v::EmbeddingsUsage {
                        prompt_token_count: embedded.prompt_tokens,
                    },
                })
            }
        }
    };
}

llm_version!(v2);
llm_version!(unversioned);
