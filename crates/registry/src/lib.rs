//! Spin applications as OCI artifacts.
//!
//! `gyre registry push` turns a loaded application into Spin's artifact
//! layout (a locked-application config layer, one Wasm layer per distinct
//! component, one data layer per file or one archive layer for many), and
//! `pull` brings an artifact into a content-addressed [`Cache`] shared by
//! every app, checking each digest on the way in. [`materialise`] then lays
//! a pulled artifact out as an ordinary application directory (a generated
//! `spin.toml` whose sources point into the cache), so a registry app runs
//! through exactly the loader, engine and triggers a local one does.
//!
//! The format is Spin's, field by field (media types, the lock JSON, which
//! files are inlined, when layers become an archive, the OCI config and the
//! inferred annotations): an artifact Spin pushed runs here and one Gyre
//! pushed runs on Spin. The distribution protocol itself is `oci-client`'s.

mod auth;
mod cache;
mod client;
mod locked;
mod materialise;
mod packages;
mod pull;
mod push;

pub use oci_client::Reference;
pub use oci_client::secrets::RegistryAuth;

pub use auth::{auth_for, docker_config_path, server_key, store_credentials};
pub use cache::{Cache, sha256_digest};
pub use client::{INSECURE_REGISTRIES_ENV, RegistryClient, RegistryError, parse_reference};
pub use locked::{
    ContentPath, ContentRef, LockedApp, LockedComponent, LockedSource, LockedTrigger,
};
pub use materialise::{materialise, repository_name};
pub use packages::{PackageConfig, RegistryPackages};
pub use pull::{PullObserver, Pulled, cached};
pub use push::{PushOptions, Pushed};

/// Media type of the locked application (the config layer).
pub const SPIN_APPLICATION_MEDIA_TYPE: &str = "application/vnd.fermyon.spin.application.v1+config";
/// Media type of a component's Wasm.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// Media type of one file.
pub const DATA_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+data";
/// Media type of a gzipped tar of a component's files.
pub const ARCHIVE_MEDIA_TYPE: &str = "application/vnd.wasm.content.bundle.v1.tar+gzip";
/// Media type of a plain Wasm package (`wkg`), run like a bare `.wasm`.
pub const WASM_PACKAGE_MEDIA_TYPE: &str = "application/wasm";
/// Registries (and Spin) refuse manifests with more layers than this.
pub const MAX_LAYER_COUNT: usize = 500;
/// Content up to this size is carried inside the lock instead of a layer.
pub const MAX_INLINED_CONTENT_SIZE: usize = 128;
/// Set (to anything) to push files as one archive layer per component.
pub const ARCHIVE_LAYERS_ENV: &str = "SPIN_OCI_ARCHIVE_LAYERS";
/// The OCI config label naming the config layer's digest.
pub const LOCKED_APP_DIGEST_LABEL: &str = "com.fermyon.spin.lockedAppDigest";
