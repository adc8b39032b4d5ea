//! The Spin application manifest (`spin.toml`, versions 1 and 2) and the
//! runtime config file beside it.
//!
//! This crate turns manifest text into a validated [`Manifest`] and nothing
//! more: it knows nothing of Wasmtime, files on disk beyond the manifest, or
//! the network. Every mistake is a [`ManifestError`] naming the file, line,
//! column and field, with a hint on what would be valid.

mod error;
mod limits;
mod model;
pub mod names;
mod profile;
mod reader;
mod runtime_config;
mod v1;
mod v2;

use std::path::Path;

use toml::de::{DeTable, DeValue};

pub use error::{Location, ManifestError, SourceFile};
pub use limits::{LimitOverrides, LimitsConfig, ServerLimitOverrides, parse_duration, parse_size};
pub use model::*;
pub use runtime_config::{
    KeyValueStoreConfig, LlmApiType, LlmComputeConfig, OutboundHttpConfig, RuntimeConfig,
    SqliteDatabaseConfig, VariablesProviderConfig, load_runtime_config, parse_runtime_config,
};

/// Reads and validates the manifest at `path`.
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    parse(read(path)?)
}

fn read(path: &Path) -> Result<SourceFile, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
        file: path.to_path_buf(),
        location: None,
        field: String::new(),
        message: format!("cannot read the manifest: {e}"),
        help: None,
    })?;
    Ok(SourceFile::new(path, text))
}

/// The manifest Spin gives a bare Wasm file run as an app (`spin up -f
/// app.wasm`, a plain Wasm package from a registry): one component, its id
/// made from `name`, with `source` (relative to the manifest's directory)
/// serving every path (`/...`).
pub fn bare_component_manifest(name: &str, source: &str) -> String {
    let id = names::kebab_id_from(name);
    let source = toml::Value::String(source.to_string());
    format!(
        "spin_manifest_version = 2\n\n[application]\nname = \"{id}\"\n\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"{id}\"\n\n\
         [component.{id}]\nsource = {source}\n"
    )
}

/// Reads a manifest as the tools that work on an app under construction
/// (`build`, `watch`, `doctor`) do: like [`load`], but an app with no
/// triggers yet (a fresh `http-empty`) is accepted; serving it is refused
/// later, with Spin's "No triggers in app".
pub fn load_in_progress(path: &Path) -> Result<Manifest, ManifestError> {
    parse_with(read(path)?, false)
}

/// Parses and validates manifest text. `source` names the file for errors.
pub fn parse(source: SourceFile) -> Result<Manifest, ManifestError> {
    parse_with(source, true)
}

fn parse_with(source: SourceFile, require_triggers: bool) -> Result<Manifest, ManifestError> {
    let doc = DeTable::parse(source.text()).map_err(|e| {
        let span = e.span();
        let message = e.message().trim_end().to_string();
        source.error(span, "", format!("invalid TOML: {message}"))
    })?;
    let span = doc.span();
    let doc = doc.into_inner();
    let version = doc
        .get("spin_manifest_version")
        .or_else(|| doc.get("spin_version"));
    let Some(version) = version else {
        return Err(source
            .error(
                Some(0..0),
                "spin_manifest_version",
                "missing required field",
            )
            .with_help("add `spin_manifest_version = 2` at the top of the file"));
    };
    match version.get_ref() {
        DeValue::Integer(i) if i.as_str() == "2" => {
            v2::parse(&source, &doc, span, require_triggers)
        }
        DeValue::String(s) if s == "1" => v1::parse(&source, &doc, span),
        DeValue::String(s) if s == "2" => Err(source
            .error(
                Some(version.span()),
                "spin_manifest_version",
                "invalid manifest version: \"2\" (a string)",
            )
            .with_help("version 2 is written as an integer: `spin_manifest_version = 2`")),
        other => {
            let shown = match other {
                DeValue::Integer(i) => i.as_str().to_string(),
                DeValue::String(s) => format!("\"{s}\""),
                _ => "a non-version value".to_string(),
            };
            Err(source
                .error(
                    Some(version.span()),
                    "spin_manifest_version",
                    format!("invalid manifest version: {shown}"),
                )
                .with_help("use `spin_manifest_version = 2`"))
        }
    }
}
