//! Loading a Spin application from disk: manifest, component bytes, mounted
//! files and environment, ready for the engine.
//!
//! This crate resolves everything a manifest refers to (paths relative to the
//! manifest, remote sources downloaded once and checked against their
//! digest, `files` copied into a per-component root) and knows nothing of
//! Wasmtime. Errors about a component point back into the manifest.

mod dependencies;
mod files;
mod packages;
mod source;
mod subset;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use gyre_manifest::{Component, Manifest, ManifestError};
use indexmap::IndexMap;

pub use gyre_manifest as manifest;
pub use packages::{FetchedPackage, PackageFuture, PackageRef, PackageSource, Packages};

/// How to load an application.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-e KEY=VALUE`: environment added to every component.
    pub env: Vec<(String, String)>,
    /// Where downloaded sources are cached.
    pub download_cache: Option<PathBuf>,
    /// Load components no trigger uses as well (`gyre registry push`
    /// ships every component, as Spin does); serving loads only used ones.
    pub include_unused: bool,
    /// `-c/--component-id`: keep only these components and the triggers
    /// that run them (empty keeps everything).
    pub only_components: Vec<String>,
    /// Fetches registry packages (`{ package, version }` sources and
    /// dependencies); none makes them a load error saying so.
    pub packages: Packages,
    /// `--profile`: the build profile applied to every component.
    pub profile: Option<String>,
    /// `--direct-mounts`: mount `files` directories in place instead of
    /// copying them.
    pub direct_mounts: bool,
}

/// A host directory the guest sees, read-only, at `guest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the guest sees it (absolute).
    pub guest: String,
}

/// A loaded application.
pub struct App {
    /// The manifest.
    pub manifest: Manifest,
    /// The manifest's directory; relative paths start here.
    pub dir: PathBuf,
    /// The manifest file.
    pub manifest_path: PathBuf,
    /// Components referenced by a trigger, in manifest order.
    pub components: IndexMap<String, AppComponent>,
    /// Holds the copied `files` for as long as the app lives.
    _work_dir: tempfile::TempDir,
}

/// A component ready to compile.
pub struct AppComponent {
    /// The manifest's view of it.
    pub manifest: Component,
    /// Its Wasm bytes (component or core module).
    pub wasm: Vec<u8>,
    /// Where the bytes came from, for messages.
    pub wasm_origin: String,
    /// Environment: the component's, then `-e` values.
    pub env: Vec<(String, String)>,
    /// Directory mounted read-only at the guest's `/`, if it has `files`
    /// (copied there; none with `--direct-mounts`).
    pub root_dir: Option<PathBuf>,
    /// `--direct-mounts`: the `files` directories, mounted in place.
    pub direct_mounts: Vec<Mount>,
    /// Its dependencies and middleware, composed with it at load.
    pub composition: Arc<gyre_compose::Composition>,
}

impl AppComponent {
    /// Every directory the guest sees: the copied `files` at `/`, or the
    /// directories mounted in place.
    pub fn mounts(&self) -> Vec<Mount> {
        let root = self.root_dir.iter().map(|root| Mount {
            host: root.clone(),
            guest: "/".into(),
        });
        root.chain(self.direct_mounts.iter().cloned()).collect()
    }
}

/// Finds the manifest: `path` may be a file or a directory holding
/// `spin.toml`; `None` means `./spin.toml`.
pub fn resolve_manifest_path(path: Option<&Path>) -> Result<PathBuf> {
    match path {
        None => {
            let default = PathBuf::from("spin.toml");
            if default.is_file() {
                return Ok(default);
            }
            bail!(
                "Default file 'spin.toml' not found. Run `gyre up --from <APPLICATION>` with a manifest or \
                 directory, or run `gyre new` to create an application here"
            )
        }
        Some(p) if p.is_dir() => {
            let candidate = p.join("spin.toml");
            if candidate.is_file() {
                Ok(candidate)
            } else {
                bail!("Directory '{}' has no spin.toml", p.display())
            }
        }
        Some(p) if p.is_file() => Ok(p.to_path_buf()),
        Some(p) => bail!("File or directory '{}' not found", p.display()),
    }
}

/// The directory relative paths of the manifest at `manifest_path` start
/// from (`.` for a bare file name).
pub fn app_dir(manifest_path: &Path) -> PathBuf {
    manifest_path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Loads and validates the application whose manifest is at `manifest_path`.
///
/// A bare Wasm file (a component or a core module) runs as Spin runs it:
/// an app of one component serving every path.
pub async fn load(manifest_path: &Path, options: &LoadOptions) -> Result<App> {
    let mut manifest = if is_wasm_file(manifest_path) {
        bare_wasm_manifest(manifest_path)?
    } else {
        gyre_manifest::load(manifest_path)?
    };
    if let Some(profile) = &options.profile {
        manifest.apply_profile(profile)?;
    }
    if !options.only_components.is_empty() {
        subset::retain_components(&mut manifest, &options.only_components)?;
    }
    let dir = app_dir(manifest_path);
    let dir =
        std::fs::canonicalize(&dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    let work_dir = tempfile::Builder::new()
        .prefix("gyre-up-")
        .tempdir()
        .context("cannot create a working directory")?;

    let mut components = IndexMap::new();
    let used: Vec<&str> = manifest
        .triggers
        .iter()
        .filter_map(|t| t.component.as_deref())
        .collect();
    let middleware = middleware_by_component(&manifest)?;
    for (id, component) in &manifest.components {
        if !options.include_unused && !used.contains(&id.as_str()) {
            continue;
        }
        let composition = dependencies::resolve(
            &manifest,
            &dir,
            component,
            middleware.get(id.as_str()).copied().unwrap_or_default(),
            options,
        )
        .await?;
        let (wasm, wasm_origin) = source::read(&manifest, &dir, component, options).await?;
        let direct_mounts = if options.direct_mounts {
            files::direct_mounts(&manifest, &dir, component)?
        } else {
            Vec::new()
        };
        let root_dir = if component.files.is_empty() || options.direct_mounts {
            None
        } else {
            let root = work_dir.path().join("assets").join(id);
            files::materialise(&manifest, &dir, component, &root)?;
            Some(root)
        };
        let mut env: Vec<(String, String)> = component
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in &options.env {
            env.retain(|(existing, _)| existing != k);
            env.push((k.clone(), v.clone()));
        }
        components.insert(
            id.clone(),
            AppComponent {
                manifest: component.clone(),
                wasm,
                wasm_origin,
                env,
                root_dir,
                direct_mounts,
                composition: Arc::new(composition),
            },
        );
    }

    Ok(App {
        manifest,
        dir,
        manifest_path: manifest_path.to_path_buf(),
        components,
        _work_dir: work_dir,
    })
}

/// Whether `path` is a Wasm binary (by its magic number, whatever its name).
pub fn is_wasm_file(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == *b"\0asm"
}

fn bare_wasm_manifest(path: &Path) -> Result<Manifest> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: the file name is not UTF-8", path.display()))?;
    let stem = path
        .file_stem()
        .and_then(|n| n.to_str())
        .unwrap_or(file_name);
    let text = gyre_manifest::bare_component_manifest(stem, file_name);
    Ok(gyre_manifest::parse(gyre_manifest::SourceFile::new(
        path, text,
    ))?)
}

/// An error at a component's place in the manifest.
/// The middleware of each component's HTTP trigger. Gyre composes
/// middleware into the component, so a component two triggers run with
/// different middleware is refused.
fn middleware_by_component(
    manifest: &Manifest,
) -> Result<std::collections::HashMap<&str, &[gyre_manifest::ComponentDependency]>> {
    let mut found: std::collections::HashMap<&str, (&[gyre_manifest::ComponentDependency], &str)> =
        std::collections::HashMap::new();
    for (trigger, http) in manifest.http_triggers() {
        let Some(id) = trigger.component.as_deref() else {
            continue;
        };
        match found.get(id) {
            Some((earlier, earlier_trigger)) if *earlier != http.middleware.as_slice() => {
                return Err(manifest
                    .source
                    .error(
                        Some(trigger.span.clone()),
                        "trigger.http.dependencies.middleware",
                        format!(
                            "component `{id}` is run by trigger `{earlier_trigger}` and by trigger `{}` with different middleware",
                            trigger.id
                        ),
                    )
                    .with_help("give each its own component (two `[component.…]` tables with the same `source`)")
                    .into());
            }
            Some(_) => {}
            None => {
                found.insert(id, (http.middleware.as_slice(), trigger.id.as_str()));
            }
        }
    }
    Ok(found.into_iter().map(|(id, (m, _))| (id, m)).collect())
}

pub(crate) fn component_error(
    manifest: &Manifest,
    component: &Component,
    span: Option<std::ops::Range<usize>>,
    field: &str,
    message: impl Into<String>,
) -> ManifestError {
    manifest.source.error(
        span.or_else(|| Some(component.span.clone())),
        format!("component.{}.{field}", component.id),
        message,
    )
}
