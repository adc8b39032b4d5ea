//! Resolving a component's `dependencies` and its trigger's `middleware`
//! to bytes, with what each inherits, for the engine to compose
//! (`gyre_compose`). Errors point at the manifest entry.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use gyre_compose::{Capability, Composition, Inherit, Piece, Plug};
use gyre_manifest::{
    Component, ComponentDependency, Dependency, InheritConfiguration, Manifest, ManifestError,
};

use crate::source::{self, fetch_remote};
use crate::{LoadOptions, PackageRef};

/// Where an entry is written, for errors.
struct Site<'a> {
    manifest: &'a Manifest,
    dependency: &'a ComponentDependency,
    /// The dependency's key (middleware: empty).
    key: &'a str,
    field: String,
}

impl Site<'_> {
    fn error(&self, message: impl Into<String>) -> ManifestError {
        self.manifest.source.error(
            Some(self.dependency.span.clone()),
            self.field.clone(),
            message,
        )
    }
}

/// The composition of `component`: its dependencies and `middleware`
/// (its trigger's, outermost first), bytes read and checked.
pub(crate) async fn resolve(
    manifest: &Manifest,
    dir: &Path,
    component: &Component,
    middleware: &[ComponentDependency],
    options: &LoadOptions,
) -> Result<Composition> {
    let mut composition = Composition::default();
    for (key, dependency) in &component.dependencies {
        let site = Site {
            manifest,
            dependency,
            key,
            field: format!("component.{}.dependencies.{key}", component.id),
        };
        let (bytes, origin) = read(&site, dir, options).await?;
        let export = match &dependency.source {
            Dependency::Package { export, .. }
            | Dependency::Local { export, .. }
            | Dependency::Remote { export, .. }
            | Dependency::AppComponent { export, .. } => export.clone(),
        };
        composition.dependencies.push(Plug {
            key: key.clone(),
            export,
            piece: Piece {
                label: format!(
                    "dependency `{key}` ({origin}, {})",
                    manifest.source.place(&dependency.span)
                ),
                bytes,
                inherit: inherit(component, dependency),
            },
        });
    }
    for (index, dependency) in middleware.iter().enumerate() {
        let site = Site {
            manifest,
            dependency,
            key: "",
            field: format!("trigger.http.dependencies.middleware[{index}]"),
        };
        let (bytes, origin) = read(&site, dir, options).await?;
        composition.middleware.push(Piece {
            label: format!(
                "middleware {} ({origin}, {})",
                index + 1,
                manifest.source.place(&dependency.span)
            ),
            bytes,
            inherit: match &dependency.inherit_configuration {
                Some(configuration) => from_configuration(configuration),
                None => Inherit::NONE,
            },
        });
    }
    Ok(composition)
}

/// What a dependency inherits: its own `inherit_configuration`, else the
/// component's `dependencies_inherit_configuration`.
fn inherit(component: &Component, dependency: &ComponentDependency) -> Inherit {
    match &dependency.inherit_configuration {
        Some(configuration) => from_configuration(configuration),
        None if component.dependencies_inherit_configuration => Inherit::all(),
        None => Inherit::NONE,
    }
}

fn from_configuration(configuration: &InheritConfiguration) -> Inherit {
    match configuration {
        InheritConfiguration::All => Inherit::all(),
        InheritConfiguration::Only(names) => names
            .iter()
            .filter_map(|name| Capability::from_manifest_name(name))
            .collect(),
    }
}

async fn read(site: &Site<'_>, dir: &Path, options: &LoadOptions) -> Result<(Arc<[u8]>, String)> {
    let manifest = site.manifest;
    match &site.dependency.source {
        Dependency::Local { path, .. } => {
            let full = dir.join(path);
            match tokio::fs::read(&full).await {
                Ok(bytes) => Ok((Arc::from(bytes), path.clone())),
                Err(e) => Err(site
                    .error(format!("cannot read {}: {e}", full.display()))
                    .with_help("check the path: it is relative to the manifest's directory")
                    .into()),
            }
        }
        Dependency::Remote { url, digest, .. } => {
            let bytes = fetch_remote(url, digest, options.download_cache.as_deref())
                .await
                .map_err(|e| site.error(e.describe(url, digest)).with_help(e.help()))?;
            Ok((Arc::from(bytes), url.clone()))
        }
        Dependency::AppComponent { component: id, .. } => {
            let Some(other) = manifest.components.get(id) else {
                return Err(site
                    .error(format!("the application has no component `{id}`"))
                    .with_help(format!(
                        "components: {}",
                        manifest
                            .components
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                    .into());
            };
            if let Some(field) = own_configuration(other) {
                return Err(site
                    .error(format!(
                        "component `{id}` has `{field}`: Dependencies may not have their own resources or permissions"
                    ))
                    .with_help(format!(
                        "remove `{field}` from component `{id}`; a dependency reaches what its parent grants it through `inherit_configuration`"
                    ))
                    .into());
            }
            let (bytes, origin) = source::read(manifest, dir, other, options).await?;
            Ok((Arc::from(bytes), format!("component `{id}`, {origin}")))
        }
        Dependency::Package {
            version,
            package,
            registry,
            ..
        } => {
            let key = site.key;
            let package = PackageRef {
                package: match package {
                    Some(package) => package.clone(),
                    None => package_of_key(key),
                },
                version: version.clone(),
                registry: registry.clone(),
            };
            let fetched = options.packages.fetch(&package).await.map_err(|e| {
                site.error(format!("cannot fetch {package}: {e:#}"))
                    .with_help(crate::packages::FETCH_HELP)
            })?;
            Ok((Arc::from(fetched.wasm), fetched.origin))
        }
    }
}

/// The package a dependency key names: `ns:pkg/iface@1.0.0` → `ns:pkg`.
fn package_of_key(key: &str) -> String {
    let without_version = key.split('@').next().unwrap_or(key);
    without_version
        .split('/')
        .next()
        .unwrap_or(without_version)
        .to_string()
}

/// The first field of `component` a dependency may not have.
fn own_configuration(component: &Component) -> Option<&'static str> {
    [
        ("ai_models", !component.ai_models.is_empty()),
        (
            "allowed_outbound_hosts",
            !component.allowed_outbound_hosts.is_empty(),
        ),
        ("dependencies", !component.dependencies.is_empty()),
        ("environment", !component.environment.is_empty()),
        ("files", !component.files.is_empty()),
        ("key_value_stores", !component.key_value_stores.is_empty()),
        ("sqlite_databases", !component.sqlite_databases.is_empty()),
        ("variables", !component.variables.is_empty()),
    ]
    .into_iter()
    .find(|(_, set)| *set)
    .map(|(field, _)| field)
}
