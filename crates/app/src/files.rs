//! Copying a component's `files` into the directory mounted as its root.
//!
//! Spin's default mount mode copies: the guest sees a snapshot taken at
//! load, read-only, and cannot reach anything outside what `files` names.

use std::path::{Component as PathComponent, Path, PathBuf};

use anyhow::{Context as _, Result};
use gyre_manifest::{Component, FileMount, Manifest};

use crate::{Mount, component_error};

pub(crate) fn materialise(
    manifest: &Manifest,
    app_dir: &Path,
    component: &Component,
    root: &Path,
) -> Result<()> {
    std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    let files_error =
        |message: String| component_error(manifest, component, None, "files", message);
    let excludes: Vec<glob::Pattern> = component
        .exclude_files
        .iter()
        .map(|p| {
            glob::Pattern::new(p).map_err(|e| {
                anyhow::Error::from(component_error(
                    manifest,
                    component,
                    None,
                    "exclude_files",
                    format!("invalid glob \"{p}\": {e}"),
                ))
            })
        })
        .collect::<Result<_>>()?;
    let excluded = |rel: &Path| excludes.iter().any(|p| p.matches_path(rel));

    for mount in &component.files {
        match mount {
            FileMount::Pattern(pattern) => {
                let rel = Path::new(pattern);
                check_inside(manifest, component, rel)?;
                let full = app_dir.join(rel);
                if full.is_dir() {
                    copy_tree(&full, rel, root, &excluded)?;
                } else if full.is_file() {
                    if !excluded(rel) {
                        copy_file(&full, &root.join(rel))?;
                    }
                } else if pattern.contains(['*', '?', '[']) {
                    let full_pattern = app_dir.join(pattern);
                    let matches = glob::glob(&full_pattern.to_string_lossy()).map_err(|e| {
                        anyhow::Error::from(files_error(format!("invalid glob \"{pattern}\": {e}")))
                    })?;
                    for entry in matches {
                        let path = entry?;
                        if !path.is_file() {
                            continue;
                        }
                        let rel = path.strip_prefix(app_dir).unwrap_or(&path).to_path_buf();
                        if !excluded(&rel) {
                            copy_file(&path, &root.join(&rel))?;
                        }
                    }
                } else {
                    return Err(files_error(format!(
                        "\"{pattern}\" does not exist and doesn't appear to be a glob pattern"
                    ))
                    .with_help("paths in `files` are relative to the manifest's directory")
                    .into());
                }
            }
            FileMount::Placement {
                source,
                destination,
            } => {
                let rel = Path::new(source);
                check_inside(manifest, component, rel)?;
                let full = app_dir.join(rel);
                let dest_rel = destination.trim_start_matches('/');
                let dest = root.join(dest_rel);
                if full.is_dir() {
                    copy_tree(&full, Path::new(""), &dest, &|_| false)?;
                } else if full.is_file() {
                    if destination.ends_with('/')
                        || dest_rel.is_empty()
                        || destination.ends_with("/.")
                        || destination.ends_with("/..")
                    {
                        return Err(files_error(format!(
                            "\"{destination}\" is not a valid destination file name"
                        ))
                        .with_help("name the file, e.g. `destination = \"/config.json\"`")
                        .into());
                    }
                    copy_file(&full, &dest)?;
                } else {
                    return Err(files_error(format!(
                        "File or directory \"{source}\" does not exist"
                    ))
                    .into());
                }
            }
        }
    }
    Ok(())
}

/// `--direct-mounts`: each `files` entry that is a directory is mounted in
/// place (read-only; edits show at once), at its own path or its
/// `destination`. Single files, globs and `exclude_files` cannot be
/// mounted so and are errors, as in Spin.
pub(crate) fn direct_mounts(
    manifest: &Manifest,
    app_dir: &Path,
    component: &Component,
) -> Result<Vec<Mount>> {
    let refuse = |field: &str, message: String| -> anyhow::Error {
        component_error(manifest, component, None, field, message)
            .with_help("run without `--direct-mounts` to have files copied instead")
            .into()
    };
    if !component.exclude_files.is_empty() {
        return Err(refuse(
            "exclude_files",
            "`exclude_files` cannot be used with `--direct-mounts`".into(),
        ));
    }
    let mut mounts = Vec::new();
    for mount in &component.files {
        let (source, destination) = match mount {
            FileMount::Pattern(pattern) => (pattern.as_str(), format!("/{pattern}")),
            FileMount::Placement {
                source,
                destination,
            } => (source.as_str(), destination.clone()),
        };
        let rel = Path::new(source);
        check_inside(manifest, component, rel)?;
        let host = app_dir.join(rel);
        if !host.is_dir() {
            return Err(refuse(
                "files",
                format!(
                    "\"{source}\" is not a directory: `--direct-mounts` mounts only whole directories"
                ),
            ));
        }
        let host = std::fs::canonicalize(&host)
            .with_context(|| format!("cannot resolve {}", host.display()))?;
        mounts.push(Mount {
            host,
            guest: normalise_guest(&destination),
        });
    }
    Ok(mounts)
}

/// `/static/` and `static` → `/static`; `/` stays.
fn normalise_guest(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    format!("/{trimmed}")
}

fn check_inside(manifest: &Manifest, component: &Component, rel: &Path) -> Result<()> {
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, PathComponent::ParentDir))
    {
        return Err(component_error(
            manifest,
            component,
            None,
            "files",
            format!("\"{}\" is outside the application directory", rel.display()),
        )
        .with_help("files must be inside the directory that holds spin.toml")
        .into());
    }
    Ok(())
}

fn copy_tree(
    from: &Path,
    rel_base: &Path,
    to_root: &Path,
    excluded: &dyn Fn(&Path) -> bool,
) -> Result<()> {
    for entry in walkdir::WalkDir::new(from).follow_links(false) {
        let entry = entry?;
        if !entry.file_type().is_file() {
            continue;
        }
        let inner = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let rel: PathBuf = rel_base.join(inner);
        if excluded(&rel) {
            continue;
        }
        copy_file(entry.path(), &to_root.join(&rel))?;
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}
