//! Sources of variable values: fixed tables (`--variable`, `type = "static"`),
//! the environment with a dotenv file, and Vault's KV v2 secrets engine.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use gyre_manifest::VariablesProviderConfig;
use indexmap::IndexMap;

/// Why a provider could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No provider has a value and the variable has no default.
    #[error("no provider has a value and the variable has no default")]
    NoValue,
    /// Vault could not be reached or refused the request.
    #[error("vault: {0}")]
    Vault(String),
}

/// One source of values.
pub enum Provider {
    /// Values known at load (`--variable`, `type = "static"`, the environment).
    Fixed {
        /// Where the values came from, for logs.
        origin: &'static str,
        /// Variable name → value.
        values: HashMap<String, String>,
    },
    /// A Vault (or OpenBao) KV v2 mount.
    Vault(VaultProvider),
}

impl Provider {
    /// A provider of values known at load.
    pub fn fixed(origin: &'static str, values: IndexMap<String, String>) -> Self {
        Provider::Fixed {
            origin,
            values: values.into_iter().collect(),
        }
    }

    /// Spin's environment provider: `PREFIX_NAME` in the environment, then
    /// the dotenv file. Both are read once, at load.
    fn env(
        prefix: &str,
        env: &HashMap<String, String>,
        dotenv: Option<&Path>,
        origin: &'static str,
    ) -> Result<Self> {
        let mut values = HashMap::new();
        if let Some(path) = dotenv
            && path.exists()
        {
            let entries = dotenvy::from_path_iter(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            for entry in entries {
                let (key, value) =
                    entry.with_context(|| format!("invalid line in {}", path.display()))?;
                if let Some(name) = variable_from_env_name(prefix, &key) {
                    values.insert(name, value);
                }
            }
        }
        for (key, value) in env {
            if let Some(name) = variable_from_env_name(prefix, key) {
                values.insert(name, value.clone());
            }
        }
        Ok(Provider::Fixed { origin, values })
    }

    /// The provider every application has: `SPIN_VARIABLE_NAME`, then `.env`.
    pub fn builtin_env(env: &HashMap<String, String>, dotenv: Option<&Path>) -> Result<Self> {
        Self::env("SPIN_VARIABLE", env, dotenv, "environment")
    }

    /// A provider from the runtime config.
    pub fn from_config(
        config: &VariablesProviderConfig,
        env: &HashMap<String, String>,
    ) -> Result<Self> {
        Ok(match config {
            VariablesProviderConfig::Env {
                prefix,
                dotenv_path,
            } => Self::env(
                prefix.as_deref().unwrap_or("SPIN_VARIABLE"),
                env,
                dotenv_path.as_deref(),
                "env provider",
            )?,
            VariablesProviderConfig::Static { values } => {
                Self::fixed("static provider", values.clone())
            }
            VariablesProviderConfig::Vault {
                url,
                token,
                mount,
                prefix,
            } => Provider::Vault(VaultProvider::new(url, token, mount, prefix.as_deref())?),
        })
    }

    /// Whether this provider might have a value for `name` (used to check
    /// required variables at load: Vault always might).
    pub fn may_resolve(&self, name: &str) -> bool {
        match self {
            Provider::Fixed { values, .. } => values.contains_key(name),
            Provider::Vault(_) => true,
        }
    }

    /// The value of `name`, `None` to ask the next provider.
    pub async fn get(&self, name: &str) -> Result<Option<String>, ProviderError> {
        match self {
            Provider::Fixed { values, .. } => Ok(values.get(name).cloned()),
            Provider::Vault(vault) => vault.get(name).await,
        }
    }
}

/// `SPIN_VARIABLE_API_KEY` → `api_key`.
fn variable_from_env_name(prefix: &str, env_name: &str) -> Option<String> {
    let rest = env_name.strip_prefix(prefix)?.strip_prefix('_')?;
    if rest.is_empty() {
        return None;
    }
    Some(rest.to_ascii_lowercase())
}

/// Reads secrets from a KV v2 mount: the secret at `[prefix/]name`, field
/// `value`. A missing secret passes to the next provider; any other failure
/// is an error the guest sees as `provider(...)`.
pub struct VaultProvider {
    client: reqwest::Client,
    base: String,
    token: String,
    mount: String,
    prefix: Option<String>,
}

impl VaultProvider {
    fn new(url: &str, token: &str, mount: &str, prefix: Option<&str>) -> Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the Vault HTTP client")?;
        Ok(VaultProvider {
            client,
            base: url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            mount: mount.trim_matches('/').to_string(),
            prefix: prefix
                .map(|p| p.trim_matches('/').to_string())
                .filter(|p| !p.is_empty()),
        })
    }

    async fn get(&self, name: &str) -> Result<Option<String>, ProviderError> {
        let path = match &self.prefix {
            Some(prefix) => format!("{prefix}/{name}"),
            None => name.to_string(),
        };
        let url = format!("{}/v1/{}/data/{path}", self.base, self.mount);
        let response = self
            .client
            .get(&url)
            .header("X-Vault-Token", &self.token)
            .send()
            .await
            .map_err(|e| ProviderError::Vault(format!("cannot reach {}: {e}", self.base)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(ProviderError::Vault(format!(
                "reading secret `{path}` from mount `{}` failed with HTTP {status}",
                self.mount
            )));
        }
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| ProviderError::Vault(format!("invalid response: {e}")))?;
        match body.pointer("/data/data/value") {
            Some(serde_json::Value::String(value)) => Ok(Some(value.clone())),
            Some(_) => Err(ProviderError::Vault(format!(
                "secret `{path}` has a `value` field that is not a string"
            ))),
            None => Err(ProviderError::Vault(format!(
                "secret `{path}` has no `value` field"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_map_to_variables() {
        let table = [
            ("SPIN_VARIABLE_API_KEY", Some("api_key")),
            ("SPIN_VARIABLE_X", Some("x")),
            ("SPIN_VARIABLE_", None),
            ("SPIN_VARIABLEX", None),
            ("OTHER_API_KEY", None),
        ];
        for (env, want) in table {
            assert_eq!(
                variable_from_env_name("SPIN_VARIABLE", env).as_deref(),
                want,
                "{env}"
            );
        }
    }

    #[tokio::test]
    async fn environment_wins_over_dotenv() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let dotenv = dir.path().join(".env");
        std::fs::write(
            &dotenv,
            "SPIN_VARIABLE_A=from-file\nSPIN_VARIABLE_B=\"quoted value\"\n# comment\nUNRELATED=1\n",
        )?;
        let env = HashMap::from([("SPIN_VARIABLE_A".to_string(), "from-env".to_string())]);
        let provider = Provider::builtin_env(&env, Some(&dotenv))?;
        assert_eq!(provider.get("a").await?.as_deref(), Some("from-env"));
        assert_eq!(provider.get("b").await?.as_deref(), Some("quoted value"));
        assert_eq!(provider.get("unrelated").await?, None);
        assert!(provider.may_resolve("a"));
        assert!(!provider.may_resolve("c"));
        Ok(())
    }
}
