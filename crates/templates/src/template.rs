//! One template in Spin's format: `metadata/spin-template.toml`, optional
//! `metadata/snippets/` and `metadata/partials/`, and a `content/` tree.
//!
//! A template is read whole into memory when it is loaded (templates are a
//! few files), so a built-in template embedded in the binary and one
//! installed on disk are the same value, and a manifest error is found
//! before anything is rendered.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use indexmap::IndexMap;
use regex::Regex;
use serde::Deserialize;

/// Where a template came from, as `gyre templates list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Embedded in the `gyre` binary.
    BuiltIn,
    /// Installed into the template store, from a directory or a git URL.
    Installed {
        /// `--dir PATH` or `--git URL`, as given at install time.
        from: String,
    },
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    /// The id `-t` names.
    pub id: String,
    /// One line for `templates list`.
    pub description: String,
    /// Lower-cased tags.
    pub tags: Vec<String>,
    /// Where it came from.
    pub origin: Origin,
    pub(crate) parameters: Vec<Parameter>,
    pub(crate) new_application: Option<Variant>,
    pub(crate) add_component: Option<Variant>,
    pub(crate) outputs: Vec<CreateDir>,
    /// `content/` files by relative path.
    pub(crate) content: BTreeMap<PathBuf, Vec<u8>>,
    /// `metadata/snippets/` files by name.
    pub(crate) snippets: BTreeMap<String, String>,
    /// `metadata/partials/` files by name.
    pub(crate) partials: BTreeMap<String, String>,
    /// Every file of the template (metadata included), for installing it.
    pub(crate) files: BTreeMap<PathBuf, Vec<u8>>,
}

/// A value the user gives: `[parameters.<id>]`.
#[derive(Debug, Clone)]
pub struct Parameter {
    /// The name templates use, e.g. `http-path`.
    pub id: String,
    /// What to ask.
    pub prompt: String,
    /// Used with `--accept-defaults`, and offered when prompting.
    pub default: Option<String>,
    pattern: Option<Regex>,
    /// The only values accepted, if set.
    pub allowed_values: Option<Vec<String>>,
}

impl Parameter {
    /// Checks a value against the parameter's `pattern` and
    /// `allowed_values`; the error says what would be accepted.
    pub fn validate(&self, value: &str) -> std::result::Result<(), String> {
        if let Some(allowed) = &self.allowed_values
            && !allowed.iter().any(|a| a == value)
        {
            return Err(format!(
                "{value:?} is not one of the allowed values: {}",
                allowed.join(", ")
            ));
        }
        if let Some(pattern) = &self.pattern
            && !pattern.is_match(value)
        {
            return Err(format!(
                "{value:?} does not match the pattern `{}`",
                pattern.as_str()
            ));
        }
        Ok(())
    }
}

/// `[new_application]` or `[add_component]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Variant {
    pub(crate) skip_files: Vec<String>,
    pub(crate) skip_parameters: Vec<String>,
    /// Snippet kind (`component`, `application_trigger`, `variables`) →
    /// file under `metadata/snippets/`.
    pub(crate) snippets: BTreeMap<String, String>,
    pub(crate) conditions: Vec<Conditional>,
}

#[derive(Debug, Clone)]
pub(crate) struct Conditional {
    /// `manifest_entry_exists = "application.trigger.redis"`, split at dots.
    pub(crate) manifest_entry_exists: Vec<String>,
    pub(crate) skip_files: Vec<String>,
    pub(crate) skip_parameters: Vec<String>,
    pub(crate) skip_snippets: Vec<String>,
}

/// `[outputs.<name>] action = "create_dir"`.
#[derive(Debug, Clone)]
pub(crate) struct CreateDir {
    pub(crate) path: String,
    pub(crate) at_manifest: bool,
}

/// What a template is run for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `gyre new`.
    NewApplication,
    /// `gyre add`, into the application whose manifest is here.
    AddComponent {
        /// The `spin.toml` to edit.
        manifest: PathBuf,
    },
}

impl Template {
    /// Whether the template can be used for `mode`.
    pub fn supports(&self, mode: &Mode) -> bool {
        self.variant_for(mode).is_some()
    }

    fn variant_for(&self, mode: &Mode) -> Option<&Variant> {
        match mode {
            Mode::NewApplication => self.new_application.as_ref(),
            Mode::AddComponent { .. } => self.add_component.as_ref(),
        }
    }

    /// The variant for `mode` with its conditions applied (a condition is
    /// checked against the manifest a component is added to).
    pub(crate) fn resolved_variant(&self, mode: &Mode) -> Result<Variant> {
        let Some(variant) = self.variant_for(mode) else {
            bail!(
                "template `{}` cannot {}",
                self.id,
                match mode {
                    Mode::NewApplication => "create a new application (it only adds components)",
                    Mode::AddComponent { .. } =>
                        "add a component to an application (it only creates new applications)",
                }
            );
        };
        let mut resolved = variant.clone();
        let manifest: Option<toml::Table> = match mode {
            Mode::AddComponent { manifest } => std::fs::read_to_string(manifest)
                .ok()
                .and_then(|text| text.parse().ok()),
            Mode::NewApplication => None,
        };
        for conditional in &variant.conditions {
            let holds = manifest
                .as_ref()
                .is_some_and(|m| entry_exists(m, &conditional.manifest_entry_exists));
            if holds {
                resolved
                    .skip_files
                    .extend(conditional.skip_files.iter().cloned());
                resolved
                    .skip_parameters
                    .extend(conditional.skip_parameters.iter().cloned());
                resolved
                    .snippets
                    .retain(|kind, _| !conditional.skip_snippets.contains(kind));
            }
        }
        Ok(resolved)
    }

    /// The parameters a run in `mode` needs, in the template's order.
    pub fn parameters(&self, mode: &Mode) -> Result<Vec<&Parameter>> {
        let variant = self.resolved_variant(mode)?;
        Ok(self
            .parameters
            .iter()
            .filter(|p| !variant.skip_parameters.contains(&p.id))
            .collect())
    }

    /// A parameter by id, whether or not the mode skips it.
    pub fn parameter(&self, id: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.id == id)
    }

    /// Reads a template from files given by path relative to its root.
    pub fn from_files(files: BTreeMap<PathBuf, Vec<u8>>, origin: Origin) -> Result<Template> {
        let manifest_path = Path::new("metadata/spin-template.toml");
        let text = files.get(manifest_path).context(
            "no metadata/spin-template.toml: a template is a directory with `metadata/spin-template.toml` and `content/`",
        )?;
        let text = std::str::from_utf8(text).context("metadata/spin-template.toml is not UTF-8")?;
        let raw = parse_manifest(text)?;
        let mut content = BTreeMap::new();
        let mut snippets = BTreeMap::new();
        let mut partials = BTreeMap::new();
        for (path, bytes) in &files {
            if let Ok(rel) = path.strip_prefix("content") {
                content.insert(rel.to_path_buf(), bytes.clone());
            } else if let Ok(rel) = path.strip_prefix("metadata/snippets") {
                let text = String::from_utf8(bytes.clone())
                    .with_context(|| format!("snippet {} is not UTF-8", rel.display()))?;
                snippets.insert(rel.to_string_lossy().into_owned(), text);
            } else if let Ok(rel) = path.strip_prefix("metadata/partials") {
                let text = String::from_utf8(bytes.clone())
                    .with_context(|| format!("partial {} is not UTF-8", rel.display()))?;
                partials.insert(rel.to_string_lossy().into_owned(), text);
            }
        }
        let template = Template {
            id: raw.id,
            description: raw.description.unwrap_or_default(),
            tags: {
                let mut tags: Vec<String> = raw
                    .tags
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| t.to_lowercase())
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                tags.sort();
                tags
            },
            origin,
            parameters: raw
                .parameters
                .unwrap_or_default()
                .into_iter()
                .map(|(id, p)| p.into_parameter(id))
                .collect::<Result<_>>()?,
            new_application: variant(raw.new_application, true)?,
            add_component: variant(raw.add_component, false)?,
            outputs: raw
                .outputs
                .unwrap_or_default()
                .into_values()
                .map(|o| CreateDir {
                    path: o.path,
                    at_manifest: o.at.as_deref() == Some("manifest"),
                })
                .collect(),
            content,
            snippets,
            partials,
            files,
        };
        for variant in [&template.new_application, &template.add_component]
            .into_iter()
            .flatten()
        {
            for (kind, file) in &variant.snippets {
                if !template.snippets.contains_key(file) {
                    bail!(
                        "snippet `{kind}` names metadata/snippets/{file}, which the template does not have"
                    );
                }
            }
        }
        Ok(template)
    }

    /// Reads a template directory from disk.
    pub fn from_dir(dir: &Path, origin: Origin) -> Result<Template> {
        let mut files = BTreeMap::new();
        for entry in walkdir::WalkDir::new(dir).follow_links(true) {
            let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(dir)
                .context("walked outside the template")?;
            if rel.starts_with(".git") {
                continue;
            }
            let bytes = std::fs::read(entry.path())
                .with_context(|| format!("cannot read {}", entry.path().display()))?;
            files.insert(rel.to_path_buf(), bytes);
        }
        Template::from_files(files, origin)
            .with_context(|| format!("{} is not a valid template", dir.display()))
    }
}

fn entry_exists(table: &toml::Table, path: &[String]) -> bool {
    let mut current: Option<&toml::Value> = None;
    for (i, key) in path.iter().enumerate() {
        current = if i == 0 {
            table.get(key)
        } else {
            current.and_then(|v| v.as_table()).and_then(|t| t.get(key))
        };
        if current.is_none() {
            return false;
        }
    }
    current.is_some()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    manifest_version: String,
    id: String,
    description: Option<String>,
    /// Spin 1's templates named their trigger; still accepted, not used.
    #[allow(dead_code)]
    trigger_type: Option<toml::Value>,
    tags: Option<Vec<String>>,
    new_application: Option<RawVariant>,
    add_component: Option<RawVariant>,
    parameters: Option<IndexMap<String, RawParameter>>,
    custom_filters: Option<toml::Value>,
    outputs: Option<IndexMap<String, RawOutput>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    supported: Option<bool>,
    skip_files: Option<Vec<String>>,
    skip_parameters: Option<Vec<String>>,
    snippets: Option<BTreeMap<String, String>>,
    conditions: Option<IndexMap<String, RawConditional>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConditional {
    condition: RawCondition,
    skip_files: Option<Vec<String>>,
    skip_parameters: Option<Vec<String>>,
    skip_snippets: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    manifest_entry_exists: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParameter {
    #[serde(rename = "type")]
    data_type: String,
    prompt: String,
    default: Option<String>,
    pattern: Option<String>,
    allowed_values: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    action: String,
    path: String,
    at: Option<String>,
}

fn parse_manifest(text: &str) -> Result<RawManifest> {
    let raw: RawManifest = toml::from_str(text).map_err(|e| {
        anyhow::anyhow!("metadata/spin-template.toml: {}", e.to_string().trim_end())
    })?;
    if raw.manifest_version != "1" {
        bail!(
            "metadata/spin-template.toml: manifest_version {:?} is not supported (only \"1\")",
            raw.manifest_version
        );
    }
    if raw.custom_filters.is_some() {
        bail!(
            "metadata/spin-template.toml: `custom_filters` are not supported (nor by Spin 2 and later); use the built-in filters"
        );
    }
    if let Some(outputs) = &raw.outputs {
        for (name, output) in outputs {
            if output.action != "create_dir" {
                bail!(
                    "metadata/spin-template.toml: output `{name}` has action {:?}; the only action is \"create_dir\"",
                    output.action
                );
            }
            if let Some(at) = &output.at
                && at != "component"
                && at != "manifest"
            {
                bail!(
                    "metadata/spin-template.toml: output `{name}`: `at` is {at:?}; expected \"component\" or \"manifest\""
                );
            }
        }
    }
    Ok(raw)
}

impl RawParameter {
    fn into_parameter(self, id: String) -> Result<Parameter> {
        if self.data_type != "string" {
            bail!(
                "metadata/spin-template.toml: parameter `{id}` has type {:?}; the only type is \"string\"",
                self.data_type
            );
        }
        let pattern = self
            .pattern
            .map(|p| {
                Regex::new(&p).with_context(|| {
                    format!("metadata/spin-template.toml: parameter `{id}`: invalid pattern `{p}`")
                })
            })
            .transpose()?;
        Ok(Parameter {
            id,
            prompt: self.prompt,
            default: self.default,
            pattern,
            allowed_values: self.allowed_values,
        })
    }
}

fn variant(raw: Option<RawVariant>, supported_by_default: bool) -> Result<Option<Variant>> {
    let Some(raw) = raw else {
        return Ok(supported_by_default.then(Variant::default));
    };
    if !raw.supported.unwrap_or(true) {
        return Ok(None);
    }
    for kind in raw.snippets.iter().flat_map(|s| s.keys()) {
        if !matches!(
            kind.as_str(),
            "component" | "application_trigger" | "variables"
        ) {
            bail!(
                "metadata/spin-template.toml: unknown snippet `{kind}`; snippets are `component`, `application_trigger` and `variables`"
            );
        }
    }
    Ok(Some(Variant {
        skip_files: raw.skip_files.unwrap_or_default(),
        skip_parameters: raw.skip_parameters.unwrap_or_default(),
        snippets: raw.snippets.unwrap_or_default(),
        conditions: raw
            .conditions
            .unwrap_or_default()
            .into_values()
            .map(|c| Conditional {
                manifest_entry_exists: c
                    .condition
                    .manifest_entry_exists
                    .split('.')
                    .map(str::to_string)
                    .collect(),
                skip_files: c.skip_files.unwrap_or_default(),
                skip_parameters: c.skip_parameters.unwrap_or_default(),
                skip_snippets: c.skip_snippets.unwrap_or_default(),
            })
            .collect(),
    }))
}
