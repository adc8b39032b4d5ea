//! The two wire protocols of Spin's `remote_http` LLM backend.
//!
//! - `api_type = "default"` (Spin's own): `POST {url}/infer` with
//!   `{model, prompt, options: {maxTokens, repeatPenalty,
//!   repeatPenaltyLastNTokenCount, temperature, topK, topP}}` answered by
//!   `{text, usage: {promptTokenCount, generatedTokenCount}}`, and
//!   `POST {url}/embed` with `{model, input: [..]}` answered by
//!   `{embeddings, usage: {promptTokenCount}}`.
//! - `api_type = "open_ai"`: `POST {url}/v1/chat/completions` (the prompt as
//!   one user message) and `POST {url}/v1/embeddings`, so any
//!   OpenAI-compatible server (llama.cpp, vLLM, Ollama) serves a Spin app.
//!
//! Both send `authorization: bearer <auth_token>`. A response is read up to
//! [`MAX_RESPONSE_BYTES`], never more.

use std::time::Duration;

use anyhow::{Context as _, Result};
use gyre_manifest::LlmApiType;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One request's limit unless `[llm_compute] timeout` says otherwise.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest response body read from an inferencing server.
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// `inferencing-params`, with Spin's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InferParams {
    pub max_tokens: u32,
    pub repeat_penalty: f32,
    pub repeat_penalty_last_n_token_count: u32,
    pub temperature: f32,
    pub top_k: u32,
    pub top_p: f32,
}

impl Default for InferParams {
    fn default() -> Self {
        InferParams {
            max_tokens: 100,
            repeat_penalty: 1.1,
            repeat_penalty_last_n_token_count: 64,
            temperature: 0.8,
            top_k: 40,
            top_p: 0.9,
        }
    }
}

/// An inference's text and token counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Inferred {
    pub text: String,
    pub prompt_tokens: u32,
    pub generated_tokens: u32,
}

/// Embeddings, one per input text, and the prompt's token count.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    pub embeddings: Vec<Vec<f32>>,
    pub prompt_tokens: u32,
}

/// The interface's `error`, version-neutral.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmError {
    ModelNotSupported,
    Runtime(String),
    InvalidInput(String),
}

/// An inferencing server.
pub struct Backend {
    client: reqwest::Client,
    url: String,
    auth_token: String,
    api_type: LlmApiType,
}

impl Backend {
    pub(crate) fn remote_http(
        url: &str,
        auth_token: &str,
        api_type: LlmApiType,
        timeout: Duration,
    ) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .context("cannot build the LLM backend's HTTP client")?;
        Ok(Backend {
            client,
            url: url.trim_end_matches('/').to_string(),
            auth_token: auth_token.to_string(),
            api_type,
        })
    }

    /// `infer`.
    pub async fn infer(
        &self,
        model: &str,
        prompt: &str,
        params: InferParams,
    ) -> Result<Inferred, LlmError> {
        match self.api_type {
            LlmApiType::Default => {
                let body =
                    serde_json::json!({ "model": model, "prompt": prompt, "options": params });
                let answer: SpinInferResponse = self.post("infer", &body).await?;
                Ok(Inferred {
                    text: answer.text,
                    prompt_tokens: answer.usage.prompt_token_count,
                    generated_tokens: answer.usage.generated_token_count,
                })
            }
            LlmApiType::OpenAi => {
                let body = serde_json::json!({
                    "model": model,
                    "messages": [{ "role": "user", "content": prompt }],
                    "max_tokens": params.max_tokens,
                    "temperature": params.temperature,
                    "top_p": params.top_p,
                });
                let answer: ChatCompletion = self.post("v1/chat/completions", &body).await?;
                let choice = answer.choices.into_iter().next().ok_or_else(|| {
                    LlmError::Runtime(format!("{}: the completion has no choices", self.url))
                })?;
                Ok(Inferred {
                    text: choice.message.content.unwrap_or_default(),
                    prompt_tokens: answer.usage.as_ref().map_or(0, |u| u.prompt_tokens),
                    generated_tokens: answer.usage.as_ref().map_or(0, |u| u.completion_tokens),
                })
            }
        }
    }

    /// `generate-embeddings`.
    pub async fn embed(&self, model: &str, texts: &[String]) -> Result<Embedded, LlmError> {
        let body = serde_json::json!({ "model": model, "input": texts });
        match self.api_type {
            LlmApiType::Default => {
                let answer: SpinEmbedResponse = self.post("embed", &body).await?;
                Ok(Embedded {
                    embeddings: answer.embeddings,
                    prompt_tokens: answer.usage.prompt_token_count,
                })
            }
            LlmApiType::OpenAi => {
                let mut answer: OpenAiEmbeddings = self.post("v1/embeddings", &body).await?;
                answer.data.sort_by_key(|d| d.index);
                Ok(Embedded {
                    embeddings: answer.data.into_iter().map(|d| d.embedding).collect(),
                    prompt_tokens: answer.usage.map_or(0, |u| u.prompt_tokens),
                })
            }
        }
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, LlmError> {
        let url = format!("{}/{path}", self.url);
        let failed = |e: &dyn std::fmt::Display| LlmError::Runtime(format!("{url}: {e}"));
        let mut response = self
            .client
            .post(&url)
            .bearer_auth(&self.auth_token)
            .json(body)
            .send()
            .await
            .map_err(|e| failed(&error_chain(&e)))?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| failed(&error_chain(&e)))?
        {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(failed(&format!(
                    "the response is larger than {} MiB",
                    MAX_RESPONSE_BYTES >> 20
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            let text: String = text.chars().take(300).collect();
            return Err(failed(&format!("the server answered {status}: {text}")));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            failed(&format!(
                "the response is not what the protocol defines: {e}"
            ))
        })
    }
}

/// A reqwest error with its causes ("error sending request: connection
/// refused"), since its `Display` alone hides them.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpinInferResponse {
    text: String,
    usage: SpinInferUsage,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpinInferUsage {
    prompt_token_count: u32,
    generated_token_count: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpinEmbedResponse {
    embeddings: Vec<Vec<f32>>,
    usage: SpinEmbedUsage,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpinEmbedUsage {
    prompt_token_count: u32,
}

#[derive(Deserialize)]
struct ChatCompletion {
    choices: Vec<ChatChoice>,
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct ChatChoice {
    message: ChatMessage,
}

#[derive(Deserialize)]
struct ChatMessage {
    content: Option<String>,
}

#[derive(Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

#[derive(Deserialize)]
struct OpenAiEmbeddings {
    data: Vec<OpenAiEmbedding>,
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct OpenAiEmbedding {
    #[serde(default)]
    index: usize,
    embedding: Vec<f32>,
}
