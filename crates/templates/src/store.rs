//! Where templates live: the built-ins embedded in the binary, and the
//! store directory that `gyre templates install` copies templates into.
//!
//! An installed template with a built-in's id takes its place, so a user can
//! replace a built-in with their own version. Installing copies the whole
//! template (checked first: a template that does not parse is not installed)
//! into a staging directory and renames it into place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use include_dir::{Dir, include_dir};

use crate::template::{Origin, Template};

static BUILT_IN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/builtin");

/// The file inside an installed template that records where it came from.
const INSTALLED_FROM: &str = ".gyre-installed-from";

/// The built-in templates, sorted by id.
pub fn built_in() -> Result<Vec<Template>> {
    let mut templates = Vec::new();
    for dir in BUILT_IN.dirs() {
        let mut files = BTreeMap::new();
        collect(dir, dir.path(), &mut files);
        templates.push(
            Template::from_files(files, Origin::BuiltIn)
                .with_context(|| format!("built-in template {}", dir.path().display()))?,
        );
    }
    templates.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(templates)
}

fn collect(dir: &Dir<'_>, root: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for file in dir.files() {
        if let Ok(rel) = file.path().strip_prefix(root) {
            files.insert(rel.to_path_buf(), file.contents().to_vec());
        }
    }
    for sub in dir.dirs() {
        collect(sub, root, files);
    }
}

/// Where `templates install` puts templates.
#[derive(Debug, Clone)]
pub struct TemplateStore {
    dir: PathBuf,
}

/// What an install did.
#[derive(Debug, Default)]
pub struct InstallReport {
    /// Ids installed (or upgraded).
    pub installed: Vec<String>,
    /// Ids left alone, with the reason.
    pub skipped: Vec<(String, String)>,
}

impl TemplateStore {
    /// A store at `dir`.
    pub fn new(dir: PathBuf) -> Self {
        TemplateStore { dir }
    }

    /// `$GYRE_DATA_DIR/templates`, else `$XDG_DATA_HOME/gyre/templates`,
    /// else `~/.local/share/gyre/templates`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("GYRE_DATA_DIR").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(d).join("templates"));
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
        Some(data.join("gyre/templates"))
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Installed templates (unreadable ones are reported, not hidden).
    pub fn installed(&self) -> Result<Vec<Template>> {
        let mut templates = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(templates);
        };
        for entry in entries {
            let path = entry?.path();
            if !path.join("metadata/spin-template.toml").is_file() {
                continue;
            }
            let from = std::fs::read_to_string(path.join(INSTALLED_FROM))
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            templates.push(Template::from_dir(&path, Origin::Installed { from })?);
        }
        templates.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(templates)
    }

    /// Every template: installed ones, then the built-ins they do not replace.
    pub fn list(&self) -> Result<Vec<Template>> {
        let mut all = self.installed()?;
        for builtin in built_in()? {
            if !all.iter().any(|t| t.id == builtin.id) {
                all.push(builtin);
            }
        }
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    /// The template with this id; the error lists what there is.
    pub fn get(&self, id: &str) -> Result<Template> {
        let all = self.list()?;
        let ids: Vec<String> = all.iter().map(|t| t.id.clone()).collect();
        match all.into_iter().find(|t| t.id == id) {
            Some(t) => Ok(t),
            None => {
                let close = ids.iter().find(|known| similar(known, id));
                let hint = close
                    .map(|c| format!(" Did you mean `{c}`?"))
                    .unwrap_or_default();
                bail!(
                    "there is no template `{id}`.{hint} Templates: {}. Install more with `gyre templates install --dir PATH` or `--git URL`",
                    ids.join(", ")
                )
            }
        }
    }

    /// Installs every template under `path`: a repository with a
    /// `templates/` directory (Spin's layout), a directory of templates, or
    /// one template.
    pub fn install_dir(&self, path: &Path, from: &str, upgrade: bool) -> Result<InstallReport> {
        let roots = template_roots(path)?;
        if roots.is_empty() {
            bail!(
                "no templates in {}: a template is a directory holding `metadata/spin-template.toml`, and a repository keeps them under `templates/`",
                path.display()
            );
        }
        // Every template is checked before any is installed.
        let templates = roots
            .iter()
            .map(|root| {
                Template::from_dir(
                    root,
                    Origin::Installed {
                        from: from.to_string(),
                    },
                )
                .map(|t| (root, t))
            })
            .collect::<Result<Vec<_>>>()?;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create the template store {}", self.dir.display()))?;
        let mut report = InstallReport::default();
        for (_, template) in templates {
            let dest = self.dir.join(&template.id);
            if dest.exists() && !upgrade {
                report.skipped.push((
                    template.id.clone(),
                    "already installed; `--upgrade` replaces it".to_string(),
                ));
                continue;
            }
            let staging = tempfile::Builder::new()
                .prefix(".install-")
                .tempdir_in(&self.dir)
                .context("cannot create a staging directory in the template store")?;
            for (rel, bytes) in &template.files {
                let file = staging.path().join(rel);
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&file, bytes)?;
            }
            std::fs::write(staging.path().join(INSTALLED_FROM), from)?;
            if dest.exists() {
                std::fs::remove_dir_all(&dest)
                    .with_context(|| format!("cannot replace {}", dest.display()))?;
            }
            std::fs::rename(staging.keep(), &dest)
                .with_context(|| format!("cannot install into {}", dest.display()))?;
            report.installed.push(template.id.clone());
        }
        Ok(report)
    }

    /// Clones a git repository (a URL or a local path) and installs its
    /// templates.
    pub fn install_git(
        &self,
        url: &str,
        branch: Option<&str>,
        upgrade: bool,
    ) -> Result<InstallReport> {
        let checkout = tempfile::tempdir().context("cannot create a directory for the clone")?;
        let mut git = std::process::Command::new("git");
        git.args(["clone", "--quiet", "--depth", "1"]);
        if let Some(branch) = branch {
            git.args(["--branch", branch]);
        }
        git.arg(url).arg(checkout.path().join("repo"));
        let output = git
            .output()
            .context("cannot run `git`: install git, or use `--dir` with a checked-out copy")?;
        if !output.status.success() {
            bail!(
                "git clone {url} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        self.install_dir(&checkout.path().join("repo"), url, upgrade)
    }

    /// Removes an installed template.
    pub fn uninstall(&self, id: &str) -> Result<()> {
        let dir = self.dir.join(id);
        if !dir.join("metadata/spin-template.toml").is_file() {
            let installed: Vec<String> = self.installed()?.into_iter().map(|t| t.id).collect();
            if built_in()?.iter().any(|t| t.id == id) {
                bail!("`{id}` is built into gyre and cannot be uninstalled");
            }
            bail!(
                "template `{id}` is not installed; installed: {}",
                if installed.is_empty() {
                    "none".to_string()
                } else {
                    installed.join(", ")
                }
            );
        }
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))
    }
}

/// The template directories under `path`, in Spin's layouts.
fn template_roots(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        bail!("{} is not a directory", path.display());
    }
    if path.join("metadata/spin-template.toml").is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let base = if path.join("templates").is_dir() {
        path.join("templates")
    } else {
        path.to_path_buf()
    };
    let mut roots: Vec<PathBuf> = std::fs::read_dir(&base)
        .with_context(|| format!("cannot read {}", base.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("metadata/spin-template.toml").is_file())
        .collect();
    roots.sort();
    Ok(roots)
}

/// One edit apart, or one a prefix of the other: worth suggesting.
fn similar(a: &str, b: &str) -> bool {
    if a.starts_with(b) || b.starts_with(a) {
        return true;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            current.push(
                (previous[j] + cost)
                    .min(previous[j + 1] + 1)
                    .min(current[j] + 1),
            );
        }
        previous = current;
    }
    previous[b.len()] <= 2
}
