//! Wasm packages (`namespace:name@version`) from OCI registries, found the
//! way wasm-pkg tools (`wkg`) publish and Spin fetches them.
//!
//! 1. The registry: the manifest's `registry`, else wasm-pkg's config
//!    (`~/.config/wasm-pkg/config.toml`: `package_registry_overrides`,
//!    `namespace_registries`, `default_registry`).
//! 2. Its metadata: `https://REGISTRY/.well-known/wasm-pkg/registry.json`
//!    may put the packages on another OCI registry, under a prefix; without
//!    it (404, or no answer) they are on REGISTRY itself.
//! 3. The artifact `OCI_REGISTRY/PREFIX{namespace}/{name}:{version}`, pulled
//!    into the shared cache with every digest checked; its `application/wasm`
//!    layer is the component. A version requirement (`^1.2`) picks the
//!    highest matching release among the repository's tags.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use gyre_app::{FetchedPackage, PackageFuture, PackageRef, PackageSource};
use serde::Deserialize;

use crate::{Cache, RegistryClient, WASM_LAYER_MEDIA_TYPE, WASM_PACKAGE_MEDIA_TYPE};

/// wasm-pkg's configuration, as far as finding a registry goes.
#[derive(Debug, Default, Deserialize)]
pub struct PackageConfig {
    default_registry: Option<String>,
    #[serde(default)]
    namespace_registries: HashMap<String, Mapping>,
    #[serde(default)]
    package_registry_overrides: HashMap<String, Mapping>,
}

/// A registry name, or a registry with its metadata written out.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Mapping {
    Registry(String),
    Custom {
        registry: String,
        metadata: Option<Metadata>,
    },
}

/// `.well-known/wasm-pkg/registry.json` (both spellings wasm-pkg reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    oci: Option<OciMetadata>,
    oci_registry: Option<String>,
    oci_namespace_prefix: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciMetadata {
    registry: Option<String>,
    namespace_prefix: Option<String>,
}

impl PackageConfig {
    /// Where wasm-pkg keeps its configuration.
    pub fn default_path() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(base.join("wasm-pkg").join("config.toml"))
    }

    /// Reads `path`; a missing file is the empty configuration.
    pub fn read(path: Option<PathBuf>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("invalid {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(anyhow!("cannot read {}: {e}", path.display())),
        }
    }

    /// The registry of `package` (`namespace:name`), unless the manifest named one.
    fn mapping_for(&self, package: &str) -> Option<Mapping> {
        let namespace = package.split(':').next().unwrap_or(package);
        self.package_registry_overrides
            .get(package)
            .or_else(|| self.namespace_registries.get(namespace))
            .cloned()
            .or_else(|| self.default_registry.clone().map(Mapping::Registry))
    }
}

/// Registry packages for the app loader: [`PackageSource`] on OCI.
pub struct RegistryPackages {
    /// Built on the first fetch: loading the platform's trust roots costs
    /// tens of milliseconds, and most apps have no registry dependencies.
    client: std::sync::OnceLock<RegistryClient>,
    cache: Cache,
    config: PackageConfig,
    insecure: bool,
}

impl RegistryPackages {
    /// `insecure` (`-k`) speaks plain HTTP, as for apps.
    pub fn new(insecure: bool, cache: Cache, config: PackageConfig) -> Self {
        Self {
            client: std::sync::OnceLock::new(),
            cache,
            config,
            insecure,
        }
    }

    fn client(&self) -> &RegistryClient {
        self.client
            .get_or_init(|| RegistryClient::new(self.insecure))
    }

    async fn fetch_package(&self, package: &PackageRef) -> Result<FetchedPackage> {
        let (namespace, name) = package
            .package
            .split_once(':')
            .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains(':'))
            .ok_or_else(|| anyhow!("`{}` is not a `namespace:name` package", package.package))?;
        let mapping = match &package.registry {
            Some(registry) => Mapping::Registry(registry.clone()),
            None => self.config.mapping_for(&package.package).ok_or_else(|| {
                anyhow!(
                    "no registry is configured for `{namespace}`: set `registry = \"HOST\"` on it, \
                     or `default_registry` in {}",
                    PackageConfig::default_path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "wasm-pkg's config.toml".into())
                )
            })?,
        };
        let (oci_registry, prefix) = self.locate(&mapping).await;
        let repository = format!("{oci_registry}/{prefix}{namespace}/{name}");
        let tag = self.tag_for(&repository, &package.version).await?;
        let reference = crate::parse_reference(&format!("{repository}:{tag}"))?;
        let pulled = self
            .client()
            .pull(&reference, &self.cache, &())
            .await
            .with_context(|| format!("cannot pull {}", reference.whole()))?;
        let layer = pulled
            .manifest
            .layers
            .iter()
            .find(|l| l.media_type == WASM_PACKAGE_MEDIA_TYPE)
            .or_else(|| {
                let wasm: Vec<_> = pulled
                    .manifest
                    .layers
                    .iter()
                    .filter(|l| l.media_type == WASM_LAYER_MEDIA_TYPE)
                    .collect();
                (wasm.len() == 1).then(|| wasm[0])
            })
            .ok_or_else(|| {
                anyhow!(
                    "{} is not a Wasm package: it has no `{WASM_PACKAGE_MEDIA_TYPE}` layer",
                    reference.whole()
                )
            })?;
        let path = self
            .cache
            .existing_blob(&layer.digest)
            .ok_or_else(|| anyhow!("layer {} was not stored", layer.digest))?;
        let wasm =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(FetchedPackage {
            wasm,
            origin: format!("{}@{}", reference.whole(), pulled.digest),
        })
    }

    /// The OCI registry and namespace prefix packages of `mapping` live at.
    async fn locate(&self, mapping: &Mapping) -> (String, String) {
        let (registry, written) = match mapping {
            Mapping::Registry(registry) => (registry.clone(), None),
            Mapping::Custom { registry, metadata } => (registry.clone(), metadata.clone()),
        };
        let metadata = match written {
            Some(metadata) => Some(metadata),
            None => self.well_known(&registry).await,
        };
        let metadata = metadata.unwrap_or_default();
        let oci = metadata.oci.unwrap_or_default();
        (
            oci.registry.or(metadata.oci_registry).unwrap_or(registry),
            oci.namespace_prefix
                .or(metadata.oci_namespace_prefix)
                .unwrap_or_default(),
        )
    }

    /// `registry`'s `.well-known/wasm-pkg/registry.json`, if it serves one.
    async fn well_known(&self, registry: &str) -> Option<Metadata> {
        let scheme = if self.insecure { "http" } else { "https" };
        let url = format!("{scheme}://{registry}/.well-known/wasm-pkg/registry.json");
        crate::client::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .ok()?;
        let response = client.get(&url).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body = response.bytes().await.ok()?;
        match serde_json::from_slice(&body) {
            Ok(metadata) => Some(metadata),
            Err(e) => {
                tracing::warn!(
                    "{url} is not wasm-pkg registry metadata ({e}); using {registry} itself"
                );
                None
            }
        }
    }

    /// The tag to pull for `version`: itself when exact, else the highest
    /// release among the tags that the requirement matches.
    async fn tag_for(&self, repository: &str, version: &str) -> Result<String> {
        if semver::Version::parse(version).is_ok() {
            return Ok(version.to_string());
        }
        let requirement = semver::VersionReq::parse(version)
            .with_context(|| format!("`{version}` is neither a version nor a requirement"))?;
        let reference = crate::parse_reference(&format!("{repository}:latest"))?;
        let mut releases: Vec<(semver::Version, String)> = self
            .client()
            .list_tags(&reference)
            .await?
            .into_iter()
            .filter_map(|tag| semver::Version::parse(&tag).ok().map(|v| (v, tag)))
            .collect();
        releases.sort();
        releases
            .iter()
            .rev()
            .find(|(v, _)| requirement.matches(v))
            .map(|(_, tag)| tag.clone())
            .ok_or_else(|| {
                let listed: Vec<&str> = releases.iter().map(|(_, tag)| tag.as_str()).collect();
                anyhow!(
                    "no release of {repository} matches `{version}` (its releases: {})",
                    if listed.is_empty() {
                        "none".to_string()
                    } else {
                        listed.join(", ")
                    }
                )
            })
    }
}

impl PackageSource for RegistryPackages {
    fn fetch<'a>(&'a self, package: &'a PackageRef) -> PackageFuture<'a> {
        Box::pin(self.fetch_package(package))
    }
}

#[cfg(test)]
mod tests {
    use super::{Mapping, PackageConfig};

    #[test]
    fn the_registry_of_a_package_follows_wasm_pkg_precedence() {
        let config: PackageConfig = toml::from_str(
            r#"
default_registry = "default.example"
[namespace_registries]
acme = "acme.example"
wasi = { registry = "wasi.dev", metadata = { oci = { registry = "ghcr.io", namespacePrefix = "webassembly/" } } }
[package_registry_overrides]
"acme:special" = "special.example"
"#,
        )
        .expect("config");
        let registry = |package: &str| match config.mapping_for(package) {
            Some(Mapping::Registry(r)) | Some(Mapping::Custom { registry: r, .. }) => r,
            None => "none".into(),
        };
        assert_eq!(registry("acme:special"), "special.example");
        assert_eq!(registry("acme:greeter"), "acme.example");
        assert_eq!(registry("wasi:http"), "wasi.dev");
        assert_eq!(registry("other:thing"), "default.example");
        assert!(
            PackageConfig::default()
                .mapping_for("other:thing")
                .is_none()
        );
    }
}
