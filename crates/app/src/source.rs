//! Reading a component's Wasm from its `source`.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use gyre_manifest::{Component, ComponentSource, Manifest};
use http_body_util::{BodyExt as _, Empty};
use sha2::{Digest, Sha256};

use crate::{LoadOptions, PackageRef, component_error};

/// Largest remote source Gyre downloads.
const MAX_DOWNLOAD_BYTES: usize = 512 << 20;

pub(crate) async fn read(
    manifest: &Manifest,
    dir: &Path,
    component: &Component,
    options: &LoadOptions,
) -> Result<(Vec<u8>, String)> {
    match &component.source {
        ComponentSource::Local(path) => {
            let full = dir.join(path);
            match tokio::fs::read(&full).await {
                Ok(bytes) => Ok((bytes, full.display().to_string())),
                Err(e) => {
                    let help = if component.build.is_some() {
                        "run `gyre build` first to build it"
                    } else {
                        "check the path: it is relative to the manifest's directory"
                    };
                    Err(component_error(
                        manifest,
                        component,
                        Some(component.source_span.clone()),
                        "source",
                        format!("cannot read {}: {e}", full.display()),
                    )
                    .with_help(help)
                    .into())
                }
            }
        }
        ComponentSource::Remote { url, digest } => {
            let bytes = fetch_remote(url, digest, options.download_cache.as_deref())
                .await
                .map_err(|e| {
                    let field = match e {
                        RemoteError::Download(_) => "source",
                        RemoteError::Digest { .. } => "source.digest",
                    };
                    let help = e.help();
                    component_error(
                        manifest,
                        component,
                        Some(component.source_span.clone()),
                        field,
                        e.describe(url, digest),
                    )
                    .with_help(help)
                })?;
            Ok((bytes, url.clone()))
        }
        ComponentSource::Registry {
            package,
            version,
            registry,
        } => {
            let package = PackageRef {
                package: package.clone(),
                version: version.clone(),
                registry: registry.clone(),
            };
            let fetched = options.packages.fetch(&package).await.map_err(|e| {
                component_error(
                    manifest,
                    component,
                    Some(component.source_span.clone()),
                    "source",
                    format!("cannot fetch {package}: {e:#}"),
                )
                .with_help(crate::packages::FETCH_HELP)
            })?;
            Ok((fetched.wasm, fetched.origin))
        }
    }
}

/// Why a `{ url, digest }` could not be fetched.
pub(crate) enum RemoteError {
    /// The download failed.
    Download(anyhow::Error),
    /// The bytes are not the ones the manifest pins.
    Digest { actual: String },
}

impl RemoteError {
    pub(crate) fn describe(&self, url: &str, digest: &str) -> String {
        match self {
            RemoteError::Download(e) => format!("cannot download {url}: {e:#}"),
            RemoteError::Digest { actual } => {
                format!("{url} has digest sha256:{actual}, but the manifest expects {digest}")
            }
        }
    }

    pub(crate) fn help(&self) -> &'static str {
        match self {
            RemoteError::Download(_) => "check the URL, or download the file and use a path",
            RemoteError::Digest { .. } => "if the new file is the one you want, update `digest`",
        }
    }
}

/// The bytes at `url`, checked against `digest` (`sha256:<hex>`), from
/// `download_cache` when it holds them.
pub(crate) async fn fetch_remote(
    url: &str,
    digest: &str,
    download_cache: Option<&Path>,
) -> Result<Vec<u8>, RemoteError> {
    let expected = digest.trim_start_matches("sha256:").to_ascii_lowercase();
    let cached = download_cache.map(|d| d.join(&expected));
    if let Some(path) = &cached
        && let Ok(bytes) = tokio::fs::read(path).await
        && hex::encode(Sha256::digest(&bytes)) == expected
    {
        return Ok(bytes);
    }
    let bytes = download(url).await.map_err(RemoteError::Download)?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != expected {
        return Err(RemoteError::Digest { actual });
    }
    if let Some(path) = &cached {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.ok();
        }
        if let Err(e) = tokio::fs::write(path, &bytes).await {
            tracing::warn!("cannot cache {url} at {}: {e}", path.display());
        }
    }
    Ok(bytes)
}

async fn download(url: &str) -> Result<Vec<u8>> {
    let uri: http::Uri = url.parse().context("invalid URL")?;
    if uri.scheme_str() != Some("http") {
        bail!(
            "only http:// downloads are supported so far; download the file and use a path source"
        );
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let response = client.get(uri).await.context("request failed")?;
    if !response.status().is_success() {
        bail!("server answered {}", response.status());
    }
    let body = http_body_util::Limited::new(response.into_body(), MAX_DOWNLOAD_BYTES)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading the body failed: {e}"))?;
    Ok(body.to_bytes().to_vec())
}
