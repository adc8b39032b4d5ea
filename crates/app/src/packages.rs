//! Components named by a registry package (`source = { package, version,
//! registry? }` and `{ package, version }` dependencies).
//!
//! Fetching them is the registry crate's business (it knows OCI and the
//! download cache); the loader only asks, through [`PackageSource`], which
//! the CLI provides. Without one the loader says what to do instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A package to fetch: `namespace:name` at a version (exact, or a semver
/// requirement such as `^1.2`), from `registry` or the configured one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRef {
    /// `namespace:name`.
    pub package: String,
    /// An exact version or a requirement.
    pub version: String,
    /// The registry the manifest names, if any.
    pub registry: Option<String>,
}

impl std::fmt::Display for PackageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.package, self.version)?;
        if let Some(registry) = &self.registry {
            write!(f, " from {registry}")?;
        }
        Ok(())
    }
}

/// A fetched package: its Wasm and where it came from (for messages).
#[derive(Debug, Clone)]
pub struct FetchedPackage {
    /// The component's bytes.
    pub wasm: Vec<u8>,
    /// E.g. `127.0.0.1:5000/gyre/greeter:1.0.0`.
    pub origin: String,
}

/// What to check when a fetch failed, for both places a package is named.
pub(crate) const FETCH_HELP: &str = "check the package, version and registry; a plain-HTTP \
     registry needs `-k` (or GYRE_INSECURE_REGISTRIES)";

/// The result of a fetch.
pub type PackageFuture<'a> =
    Pin<Box<dyn Future<Output = anyhow::Result<FetchedPackage>> + Send + 'a>>;

/// Fetches registry packages for the loader.
pub trait PackageSource: Send + Sync {
    /// Fetches `package` (checking its digests on the way in).
    fn fetch<'a>(&'a self, package: &'a PackageRef) -> PackageFuture<'a>;
}

/// The loader's handle on a [`PackageSource`].
#[derive(Clone, Default)]
pub struct Packages(pub Option<Arc<dyn PackageSource>>);

impl std::fmt::Debug for Packages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Packages(registry)"
        } else {
            "Packages(none)"
        })
    }
}

impl Packages {
    /// Fetches `package`, or explains that this loader cannot.
    pub(crate) async fn fetch(&self, package: &PackageRef) -> anyhow::Result<FetchedPackage> {
        match &self.0 {
            Some(source) => source.fetch(package).await,
            None => anyhow::bail!("registry packages cannot be fetched here ({package})"),
        }
    }
}
