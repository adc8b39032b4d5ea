//! Application variables: where their values come from, and how components
//! read them.
//!
//! An application declares variables (`[variables]`: `default`, `required`,
//! `secret`); a component exposes some of them to its code through
//! `[component.ID.variables]`, each a `{{ template }}` over application
//! variables. Guests see only their component's variables.
//!
//! Values are resolved in Spin's order, first hit wins: `--variable` on the
//! command line, the runtime config's providers in file order, the built-in
//! environment provider (`SPIN_VARIABLE_NAME`, then `.env` beside the
//! manifest), and finally the declared default. Resolution happens on every
//! call, as in Spin, so a secret rotated in Vault is seen at once.
//!
//! The capability follows the engine's shape: [`VariablesCapability`] binds
//! the interfaces at engine start, [`AppVariables::configure`] checks the
//! application (a required variable nothing can provide is a load error)
//! and prepares each component's view.

mod host;
mod providers;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use gyre_engine::{AppCapabilities, Capability, Extensions, HostState, PrepareInstance};
use gyre_manifest::names::{TemplatePart, parse_template};
use gyre_manifest::{Manifest, RuntimeConfig, Variable};
use indexmap::IndexMap;
use wasmtime::component::Linker;

pub use providers::{Provider, ProviderError};

/// Binds `fermyon:spin/variables@2.0.0`, `spin:variables/variables@3.0.0`
/// and `wasi:config/store@0.2.0-draft-2024-09-27`.
pub struct VariablesCapability;

impl Capability for VariablesCapability {
    fn name(&self) -> &'static str {
        "variables"
    }

    fn bind(&self, linker: &mut Linker<HostState>) -> Result<()> {
        host::bind(linker)
    }
}

/// Why a variable has no value.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Not a valid variable name.
    #[error("invalid variable name {0:?}")]
    InvalidName(String),
    /// Not declared for this component (or the application).
    #[error("no variable named {0:?}")]
    Undefined(String),
    /// A provider failed (Vault unreachable, …).
    #[error("variable {name:?}: {source}")]
    Provider {
        /// The application variable being resolved.
        name: String,
        /// What the provider reported.
        source: ProviderError,
    },
}

/// Where the values of an application's variables come from.
pub struct Resolver {
    declared: IndexMap<String, Variable>,
    providers: Vec<Provider>,
}

impl Resolver {
    /// The value of application variable `name`.
    pub async fn resolve(&self, name: &str) -> Result<String, ResolveError> {
        let Some(variable) = self.declared.get(name) else {
            return Err(ResolveError::Undefined(name.to_string()));
        };
        for provider in &self.providers {
            match provider.get(name).await {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(source) => {
                    return Err(ResolveError::Provider {
                        name: name.to_string(),
                        source,
                    });
                }
            }
        }
        variable
            .default
            .clone()
            .ok_or_else(|| ResolveError::Provider {
                name: name.to_string(),
                source: ProviderError::NoValue,
            })
    }

    /// Expands a parsed template.
    pub async fn expand(&self, parts: &[TemplatePart]) -> Result<String, ResolveError> {
        let mut out = String::new();
        for part in parts {
            match part {
                TemplatePart::Literal(text) => out.push_str(text),
                TemplatePart::Variable(name) => out.push_str(&self.resolve(name).await?),
            }
        }
        Ok(out)
    }

    /// Expands template text (`allowed_outbound_hosts` entries, addresses).
    pub async fn expand_str(&self, template: &str) -> Result<String, ResolveError> {
        let parts = parse_template(template)
            .map_err(|_| ResolveError::InvalidName(template.to_string()))?;
        self.expand(&parts).await
    }
}

/// The variables one component exposes to its code.
pub struct ComponentVariables {
    templates: IndexMap<String, Vec<TemplatePart>>,
    resolver: Arc<Resolver>,
}

impl ComponentVariables {
    /// The value of component variable `name`, as the guest asks for it.
    pub async fn get(&self, name: &str) -> Result<String, ResolveError> {
        check_variable_key(name).map_err(|_| ResolveError::InvalidName(name.to_string()))?;
        let Some(parts) = self.templates.get(name) else {
            return Err(ResolveError::Undefined(name.to_string()));
        };
        self.resolver.expand(parts).await
    }

    /// Every component variable with its value.
    pub async fn get_all(&self) -> Result<Vec<(String, String)>, ResolveError> {
        let mut out = Vec::with_capacity(self.templates.len());
        for (name, parts) in &self.templates {
            out.push((name.clone(), self.resolver.expand(parts).await?));
        }
        Ok(out)
    }
}

/// Per-instance state: the component's variables, if it declares any.
#[derive(Default)]
pub(crate) struct VariablesState {
    pub(crate) component: Option<Arc<ComponentVariables>>,
}

/// Prepares each instance of one component.
struct PrepareVariables(Arc<ComponentVariables>);

impl PrepareInstance for PrepareVariables {
    fn prepare(&self, extensions: &mut Extensions) {
        extensions.insert(VariablesState {
            component: Some(self.0.clone()),
        });
    }
}

/// Values given on the command line and where `.env` is looked for.
#[derive(Debug, Clone, Default)]
pub struct VariablesOptions {
    /// `--variable KEY=VALUE` values (the last occurrence of a key wins).
    pub cli_values: IndexMap<String, String>,
    /// The `.env` file read by the built-in environment provider.
    pub dotenv_path: Option<std::path::PathBuf>,
    /// The process environment (taken once, at load).
    pub env: HashMap<String, String>,
}

/// The variables of one application, checked and ready to serve.
pub struct AppVariables {
    resolver: Arc<Resolver>,
    components: HashMap<String, Arc<ComponentVariables>>,
}

impl AppVariables {
    /// Builds the provider chain, checks that every required variable has
    /// a provider that may resolve it, and prepares each component's view.
    pub fn configure(
        manifest: &Manifest,
        runtime_config: &RuntimeConfig,
        options: &VariablesOptions,
    ) -> Result<Self> {
        let mut providers = Vec::new();
        if !options.cli_values.is_empty() {
            providers.push(Provider::fixed("--variable", options.cli_values.clone()));
        }
        for config in &runtime_config.variables_providers {
            providers.push(Provider::from_config(config, &options.env)?);
        }
        providers.push(Provider::builtin_env(
            &options.env,
            options.dotenv_path.as_deref(),
        )?);

        let mut unknown_cli: Vec<&String> = options
            .cli_values
            .keys()
            .filter(|k| !manifest.variables.contains_key(*k))
            .collect();
        unknown_cli.sort();
        if let Some(name) = unknown_cli.first() {
            tracing::warn!(
                "--variable {name}: the application declares no variable `{name}`; ignored"
            );
        }

        for (name, variable) in &manifest.variables {
            if variable.required && !providers.iter().any(|p| p.may_resolve(name)) {
                let env_name = format!("SPIN_VARIABLE_{}", name.to_uppercase());
                anyhow::bail!(
                    "variable `{name}` is required but has no value\n  help: set it with `--variable {name}=VALUE`, the environment variable `{env_name}`, a `.env` file beside the manifest, or a variables provider in the runtime config"
                );
            }
        }

        let resolver = Arc::new(Resolver {
            declared: manifest.variables.clone(),
            providers,
        });
        let mut components = HashMap::new();
        for (id, component) in &manifest.components {
            if component.variables.is_empty() {
                continue;
            }
            let mut templates = IndexMap::new();
            for (name, template) in &component.variables {
                // The manifest crate has checked every template already.
                let parts = parse_template(template)
                    .map_err(|e| anyhow::anyhow!("component `{id}`: variable `{name}`: {e}"))?;
                templates.insert(name.clone(), parts);
            }
            components.insert(
                id.clone(),
                Arc::new(ComponentVariables {
                    templates,
                    resolver: resolver.clone(),
                }),
            );
        }
        Ok(AppVariables {
            resolver,
            components,
        })
    }

    /// The resolver, for other capabilities that expand templates.
    pub fn resolver(&self) -> &Arc<Resolver> {
        &self.resolver
    }

    /// Adds each component's per-instance preparation.
    pub fn register(&self, capabilities: &mut AppCapabilities) {
        for (id, component) in &self.components {
            capabilities.add(id, Arc::new(PrepareVariables(component.clone())));
        }
    }
}

/// Spin's rule for variable keys asked for at run time: `[a-z0-9_]`,
/// starting with a lowercase letter, ending with a letter or digit, no `__`.
pub fn check_variable_key(key: &str) -> Result<(), &'static str> {
    let Some(first) = key.chars().next() else {
        return Err("must not be empty");
    };
    if !first.is_ascii_lowercase() {
        return Err("must start with a lowercase letter");
    }
    if key.ends_with('_') {
        return Err("must end with a letter or a digit");
    }
    if key.contains("__") {
        return Err("must not contain `__`");
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err("may only contain lowercase letters, digits and `_`");
    }
    Ok(())
}

/// Reads `--variable` arguments: `KEY=VALUE`, `KEY=@file` (the file's text)
/// and `@file.json` / `@file.toml` (a table of values). Later ones win.
pub fn parse_cli_variables(args: &[String], cwd: &Path) -> Result<IndexMap<String, String>> {
    let mut out = IndexMap::new();
    for arg in args {
        if let Some(file) = arg.strip_prefix('@') {
            let path = cwd.join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                anyhow::anyhow!("--variable @{file}: cannot read {}: {e}", path.display())
            })?;
            let table: IndexMap<String, serde_json::Value> = if file.ends_with(".json") {
                serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("--variable @{file}: invalid JSON: {e}"))?
            } else if file.ends_with(".toml") {
                let value: toml_table::Table = text
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--variable @{file}: invalid TOML: {e}"))?;
                value
                    .into_iter()
                    .map(|(k, v)| (k, toml_table::to_json(v)))
                    .collect()
            } else {
                anyhow::bail!("--variable @{file}: a file of variables must end in .json or .toml");
            };
            for (key, value) in table {
                let value = match value {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                out.shift_remove(&key);
                out.insert(key, value);
            }
            continue;
        }
        let Some((key, value)) = arg.split_once('=') else {
            anyhow::bail!(
                "--variable {arg}: expected KEY=VALUE, KEY=@file or @file.json/@file.toml"
            );
        };
        let value = match value.strip_prefix('@') {
            Some(file) => {
                let path = cwd.join(file);
                std::fs::read_to_string(&path).map_err(|e| {
                    anyhow::anyhow!(
                        "--variable {key}=@{file}: cannot read {}: {e}",
                        path.display()
                    )
                })?
            }
            None => value.to_string(),
        };
        out.shift_remove(key);
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

/// TOML files of variables, read through the `toml` crate.
mod toml_table {
    pub(crate) type Table = toml::Table;

    pub(crate) fn to_json(value: toml::Value) -> serde_json::Value {
        match value {
            toml::Value::String(s) => serde_json::Value::String(s),
            other => serde_json::Value::String(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(names: &[(&str, Option<&str>)]) -> IndexMap<String, Variable> {
        names
            .iter()
            .map(|(name, default)| {
                (
                    name.to_string(),
                    Variable {
                        description: None,
                        required: default.is_none(),
                        default: default.map(str::to_string),
                        secret: false,
                    },
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn first_provider_with_a_value_wins_then_the_default() {
        let resolver = Resolver {
            declared: declared(&[
                ("a", Some("default-a")),
                ("b", Some("default-b")),
                ("host", None),
            ]),
            providers: vec![
                Provider::fixed("first", [("a".to_string(), "first-a".to_string())].into()),
                Provider::fixed(
                    "second",
                    [
                        ("a".to_string(), "second-a".to_string()),
                        ("host".to_string(), "db.internal".to_string()),
                    ]
                    .into(),
                ),
            ],
        };
        assert_eq!(resolver.resolve("a").await.ok().as_deref(), Some("first-a"));
        assert_eq!(
            resolver.resolve("b").await.ok().as_deref(),
            Some("default-b")
        );
        assert!(matches!(
            resolver.resolve("zzz").await,
            Err(ResolveError::Undefined(_))
        ));
        // Templates as `allowed_outbound_hosts` and Redis addresses use them.
        assert_eq!(
            resolver
                .expand_str("postgres://{{ host }}:5432")
                .await
                .ok()
                .as_deref(),
            Some("postgres://db.internal:5432")
        );
        assert!(resolver.expand_str("{{ unknown }}").await.is_err());
    }

    #[test]
    fn variable_keys_follow_spins_rule() {
        for ok in ["a", "api_key", "a1", "db_host_2"] {
            assert_eq!(check_variable_key(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "invalid-name",
            "invalid!name",
            "4invalidname",
            "Upper",
            "a__b",
            "a_",
        ] {
            assert!(check_variable_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_values_later_wins_and_files_are_read() -> Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("secret.txt"), "s3cret")?;
        std::fs::write(
            dir.path().join("vars.json"),
            r#"{"a": "from-json", "n": 5}"#,
        )?;
        std::fs::write(dir.path().join("vars.toml"), "b = \"from-toml\"\n")?;
        let args: Vec<String> = [
            "a=1",
            "@vars.json",
            "token=@secret.txt",
            "@vars.toml",
            "b=last",
            "eq=x=y",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let values = parse_cli_variables(&args, dir.path())?;
        let got: Vec<(&str, &str)> = values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", "from-json"),
                ("n", "5"),
                ("token", "s3cret"),
                ("b", "last"),
                ("eq", "x=y")
            ]
        );
        assert!(parse_cli_variables(&["novalue".into()], dir.path()).is_err());
        assert!(parse_cli_variables(&["@vars.txt".into()], dir.path()).is_err());
        Ok(())
    }
}
