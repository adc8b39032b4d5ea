//! Running a template: render everything in memory, then write.
//!
//! Nothing touches the disk until every file, snippet and manifest edit has
//! rendered and the edited `spin.toml` has parsed, so a bad value or a broken
//! template leaves no half-made project behind. New files are written into a
//! staging directory beside the target and moved into place; the manifest is
//! replaced by an atomic rename.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::template::{Mode, Template};

/// A request to run a template.
#[derive(Debug, Clone)]
pub struct Generate {
    /// New application or added component.
    pub mode: Mode,
    /// `project-name`.
    pub name: String,
    /// Where to write: the new application's directory, or for `add` the
    /// component's directory relative to the manifest's.
    pub output: PathBuf,
    /// A value for every parameter [`Template::parameters`] lists.
    pub values: HashMap<String, String>,
    /// `authors`: "Name <email>" from git, or empty.
    pub authors: String,
    /// Leave out `.gitignore`.
    pub no_vcs: bool,
    /// Write into a directory that already has files.
    pub allow_overwrite: bool,
}

/// What a run wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// The directory files went into.
    pub dir: PathBuf,
    /// Files written, relative to `dir`.
    pub files: Vec<PathBuf>,
    /// The manifest edited by `add`.
    pub manifest: Option<PathBuf>,
}

impl Template {
    /// Renders the template and writes the result.
    pub fn generate(&self, request: &Generate) -> Result<Generated> {
        let variant = self.resolved_variant(&request.mode)?;
        let parameters = self.parameters(&request.mode)?;
        for id in request.values.keys() {
            if self.parameter(id).is_none() {
                let known: Vec<&str> = self.parameters.iter().map(|p| p.id.as_str()).collect();
                bail!(
                    "template `{}` has no parameter `{id}`; its parameters: {}",
                    self.id,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
            }
        }
        let mut globals = liquid::Object::new();
        for parameter in &parameters {
            let value = request.values.get(&parameter.id).with_context(|| {
                format!(
                    "no value for parameter `{}` ({}): pass `-v {}=VALUE`",
                    parameter.id, parameter.prompt, parameter.id
                )
            })?;
            parameter
                .validate(value)
                .map_err(|e| anyhow::anyhow!("parameter `{}`: {e}", parameter.id))?;
            globals.insert(
                parameter.id.clone().into(),
                liquid::model::Value::scalar(value.clone()),
            );
        }
        let output_path = request.output.to_string_lossy().replace('\\', "/");
        for (key, value) in [
            ("project-name", request.name.as_str()),
            ("output-path", output_path.as_str()),
            ("authors", request.authors.as_str()),
            (
                "username",
                request.authors.split(" <").next().unwrap_or_default(),
            ),
        ] {
            globals.insert(key.into(), liquid::model::Value::scalar(value.to_string()));
        }
        let parser = self.parser()?;
        let render = |what: &str, text: &str| -> Result<String> {
            let template = parser
                .parse(text)
                .map_err(|e| anyhow::anyhow!("template `{}`: {what}: {e}", self.id))?;
            template
                .render(&globals)
                .map_err(|e| anyhow::anyhow!("template `{}`: {what}: {e}", self.id))
        };

        // Files.
        let mut rendered: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
        for (path, bytes) in &self.content {
            let shown = path.to_string_lossy().replace('\\', "/");
            if variant.skip_files.iter().any(|s| s == &shown) {
                continue;
            }
            if request.no_vcs && path.file_name().is_some_and(|n| n == ".gitignore") {
                continue;
            }
            let mut out_path = if shown.contains("{{") {
                PathBuf::from(render(&shown, &shown.replace("!!", "|"))?)
            } else {
                path.clone()
            };
            if out_path.extension().is_some_and(|e| e == "tmpl") {
                out_path.set_extension("");
            }
            check_relative(&out_path)?;
            let bytes = match std::str::from_utf8(bytes) {
                Ok(text) => render(&shown, text)?.into_bytes(),
                // Binary content is copied as it is.
                Err(_) => bytes.clone(),
            };
            rendered.insert(out_path, bytes);
        }
        let mut dirs = Vec::new();
        for output in &self.outputs {
            let rel = PathBuf::from(render("outputs", &output.path)?);
            check_relative(&rel)?;
            dirs.push((rel, output.at_manifest));
        }

        match &request.mode {
            Mode::NewApplication => {
                if let Some(kind) = variant.snippets.keys().next() {
                    bail!(
                        "template `{}`: a `{kind}` snippet only makes sense when adding a component",
                        self.id
                    );
                }
                let target = request.output.clone();
                let dirs = dirs.into_iter().map(|(d, _)| d).collect();
                write_tree(&target, &rendered, &dirs, request.allow_overwrite)?;
                Ok(Generated {
                    dir: target,
                    files: rendered.into_keys().collect(),
                    manifest: None,
                })
            }
            Mode::AddComponent { manifest } => {
                let original = std::fs::read_to_string(manifest)
                    .with_context(|| format!("cannot read {}", manifest.display()))?;
                let mut edited = original.clone();
                // Variables merge first, then appended tables, as Spin orders them.
                for kind in ["variables", "application_trigger", "component"] {
                    let Some(file) = variant.snippets.get(kind) else {
                        continue;
                    };
                    let snippet = render(&format!("snippet {file}"), &self.snippets[file])?;
                    edited = match kind {
                        "variables" => merge_table(&edited, "variables", &snippet),
                        _ => append_tables(&edited, &snippet),
                    }
                    .with_context(|| {
                        format!(
                            "adding the `{kind}` snippet of template `{}` to {} would make it invalid",
                            self.id,
                            manifest.display()
                        )
                    })?;
                }
                let app_dir = manifest.parent().unwrap_or(Path::new("."));
                let target = app_dir.join(&request.output);
                let component_dirs = dirs
                    .iter()
                    .filter(|(_, at_manifest)| !at_manifest)
                    .map(|(d, _)| d.clone())
                    .collect();
                write_tree(&target, &rendered, &component_dirs, request.allow_overwrite)?;
                for (dir, _) in dirs.iter().filter(|(_, at_manifest)| *at_manifest) {
                    std::fs::create_dir_all(app_dir.join(dir)).with_context(|| {
                        format!("cannot create {}", app_dir.join(dir).display())
                    })?;
                }
                if edited != original {
                    write_atomically(manifest, edited.as_bytes())?;
                }
                Ok(Generated {
                    dir: target,
                    files: rendered.into_keys().collect(),
                    manifest: Some(manifest.clone()),
                })
            }
        }
    }

    fn parser(&self) -> Result<liquid::Parser> {
        let mut partials = liquid::partials::InMemorySource::new();
        for (name, text) in &self.partials {
            partials.add(name.clone(), text.clone());
        }
        let mut builder = liquid::ParserBuilder::with_stdlib()
            .partials(liquid::partials::EagerCompiler::new(partials));
        for filter in crate::filters::FILTERS {
            builder = builder.filter(*filter);
        }
        builder.build().context("cannot build the Liquid parser")
    }
}

/// A rendered path must stay inside the output directory.
fn check_relative(path: &Path) -> Result<()> {
    use std::path::Component;
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        bail!(
            "the template would write to {}, outside the output directory",
            path.display()
        );
    }
    Ok(())
}

/// Appends TOML tables (a `component` or `application_trigger` snippet) to
/// the manifest text, keeping every existing byte, and checks the result.
pub(crate) fn append_tables(manifest: &str, snippet: &str) -> Result<String> {
    snippet
        .parse::<toml_edit::DocumentMut>()
        .map_err(|e| anyhow::anyhow!("the snippet is not valid TOML: {e}"))?;
    let mut edited = manifest.trim_end().to_string();
    edited.push_str("\n\n");
    edited.push_str(snippet.trim());
    edited.push('\n');
    edited
        .parse::<toml_edit::DocumentMut>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(edited)
}

/// Merges the snippet's keys into the manifest's `[table]` (created if
/// missing), keeping the rest of the document as written.
pub(crate) fn merge_table(manifest: &str, table: &str, snippet: &str) -> Result<String> {
    let mut doc = manifest
        .parse::<toml_edit::DocumentMut>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let additions = snippet
        .parse::<toml_edit::DocumentMut>()
        .map_err(|e| anyhow::anyhow!("the snippet is not valid TOML: {e}"))?;
    let target = doc
        .entry(table)
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_like_mut()
        .with_context(|| format!("`{table}` is not a table"))?;
    for (key, item) in additions.iter() {
        if target.contains_key(key) {
            bail!("`{table}.{key}` is already defined");
        }
        target.insert(key, item.clone());
    }
    Ok(doc.to_string())
}

/// Writes `files` under `target` through a staging directory beside it.
fn write_tree(
    target: &Path,
    files: &BTreeMap<PathBuf, Vec<u8>>,
    dirs: &Vec<PathBuf>,
    allow_overwrite: bool,
) -> Result<()> {
    let occupied = std::fs::read_dir(target).is_ok_and(|mut d| d.next().is_some());
    if occupied && !allow_overwrite {
        bail!(
            "{} already exists and is not empty: choose another name or `--output`, or pass `--allow-overwrite`",
            target.display()
        );
    }
    if target.exists() && !target.is_dir() {
        bail!("{} exists and is not a directory", target.display());
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".gyre-new-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a staging directory in {}", parent.display()))?;
    for dir in dirs {
        std::fs::create_dir_all(staging.path().join(dir))?;
    }
    for (path, bytes) in files {
        let dest = staging.path().join(path);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&dest, bytes).with_context(|| format!("cannot write {}", dest.display()))?;
    }
    if !target.exists() {
        let staged = staging.keep();
        std::fs::rename(&staged, target)
            .with_context(|| format!("cannot move the new files into {}", target.display()))?;
        return Ok(());
    }
    // The target exists (empty, or overwriting): move each entry over.
    for entry in walkdir::WalkDir::new(staging.path()).min_depth(1) {
        let entry = entry?;
        let rel = entry.path().strip_prefix(staging.path())?;
        let dest = target.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest)?;
        } else {
            std::fs::rename(entry.path(), &dest)
                .with_context(|| format!("cannot write {}", dest.display()))?;
        }
    }
    Ok(())
}

/// Replaces a file by writing a sibling and renaming it over.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write beside {}", path.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path)
        .map_err(|e| anyhow::anyhow!("cannot replace {}: {}", path.display(), e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{append_tables, merge_table};

    const MANIFEST: &str =
        "spin_manifest_version = 2\n\n# the app\n[application]\nname = \"a\" # inline comment\n";

    #[test]
    fn appending_keeps_every_byte_of_the_manifest() {
        let edited = append_tables(
            MANIFEST,
            "[[trigger.http]]\nroute = \"/x\"\ncomponent = \"x\"\n",
        )
        .expect("valid");
        assert!(edited.starts_with(MANIFEST.trim_end()));
        assert!(edited.ends_with("[[trigger.http]]\nroute = \"/x\"\ncomponent = \"x\"\n"));
    }

    #[test]
    fn appending_a_duplicate_table_is_refused() {
        let once = append_tables(MANIFEST, "[component.x]\nsource = \"x.wasm\"\n").expect("valid");
        let err =
            append_tables(&once, "[component.x]\nsource = \"y.wasm\"\n").expect_err("duplicate");
        assert!(err.to_string().contains("duplicate"), "{err}");
    }

    #[test]
    fn merging_variables_keeps_comments_and_refuses_redefinition() {
        let merged =
            merge_table(MANIFEST, "variables", "greeting = { default = \"hi\" }\n").expect("valid");
        assert!(
            merged.contains("# the app") && merged.contains("# inline comment"),
            "{merged}"
        );
        assert!(
            merged.contains("[variables]\ngreeting = { default = \"hi\" }"),
            "{merged}"
        );
        let err = merge_table(&merged, "variables", "greeting = { default = \"again\" }\n")
            .expect_err("duplicate");
        assert!(err.to_string().contains("already defined"), "{err}");
    }
}
