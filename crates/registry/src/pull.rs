//! `gyre registry pull`: an artifact into the shared cache.
//!
//! The manifest is fetched (a tag is always asked again, since tags move;
//! a digest reference already cached is not), then only the blobs the cache
//! lacks, a few at a time. `oci-client` checks each blob against its
//! descriptor's digest and the cache checks again as it stores; a blob that
//! fails either is never written. Archive layers are unpacked and every file
//! in them stored under its own digest, so files are found the same way
//! whichever layout the pusher chose.

use std::io::Read as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::{Context as _, Result};
use futures_util::{StreamExt as _, TryStreamExt as _};
use oci_client::Reference;
use oci_client::manifest::{OciDescriptor, OciImageManifest};

use crate::{
    ARCHIVE_MEDIA_TYPE, Cache, RegistryClient, RegistryError, SPIN_APPLICATION_MEDIA_TYPE,
    sha256_digest,
};

/// Blobs fetched at once.
const CONCURRENT_DOWNLOADS: usize = 4;

/// Told how a pull goes (the CLI draws a progress bar from it).
pub trait PullObserver: Send + Sync {
    /// The manifest is in: `bytes` of `layers` blobs are still to fetch.
    fn fetching(&self, _layers: usize, _bytes: u64) {}
    /// `bytes` more arrived.
    fn progress(&self, _bytes: u64) {}
}

impl PullObserver for () {}

/// A pulled artifact: its manifest, with every blob it names in the cache.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference as given.
    pub reference: Reference,
    /// The OCI manifest.
    pub manifest: OciImageManifest,
    /// The manifest's digest.
    pub digest: String,
    /// Bytes downloaded this time (0 when everything was cached).
    pub fetched_bytes: u64,
}

impl RegistryClient {
    /// Pulls `reference` into `cache`.
    pub async fn pull(
        &self,
        reference: &Reference,
        cache: &Cache,
        observer: &dyn PullObserver,
    ) -> Result<Pulled> {
        if reference.digest().is_some()
            && let Some(pulled) = cached(reference, cache)
        {
            return Ok(pulled);
        }
        let to_error = |e| self.error(e, reference);
        let auth = crate::auth_for(reference.resolve_registry());
        let (manifest, digest) = self
            .oci
            .pull_image_manifest(reference, &auth)
            .await
            .map_err(to_error)?;

        let mut wanted: Vec<OciDescriptor> = manifest.layers.clone();
        let lock_in_layers = manifest
            .layers
            .iter()
            .any(|l| l.media_type == SPIN_APPLICATION_MEDIA_TYPE);
        // Artifacts from older Spin carry the lock as the OCI config.
        if !lock_in_layers && manifest.config.media_type == SPIN_APPLICATION_MEDIA_TYPE {
            wanted.push(manifest.config.clone());
        }
        wanted.retain(|d| cache.existing_blob(&d.digest).is_none());
        let bytes: u64 = wanted
            .iter()
            .map(|d| u64::try_from(d.size).unwrap_or(0))
            .sum();
        observer.fetching(wanted.len(), bytes);

        futures_util::stream::iter(wanted)
            .map(|descriptor| self.fetch_blob(reference, descriptor, cache, observer))
            .buffer_unordered(CONCURRENT_DOWNLOADS)
            .try_collect::<Vec<()>>()
            .await?;

        let manifest_json =
            serde_json::to_vec(&manifest).context("cannot serialise the pulled manifest")?;
        cache.write_ref(reference, &digest, &manifest_json)?;
        Ok(Pulled {
            reference: reference.clone(),
            manifest,
            digest,
            fetched_bytes: bytes,
        })
    }

    async fn fetch_blob(
        &self,
        reference: &Reference,
        descriptor: OciDescriptor,
        cache: &Cache,
        observer: &dyn PullObserver,
    ) -> Result<()> {
        if cache.blob_path(&descriptor.digest).is_none() {
            anyhow::bail!(
                "layer digest {:?} of {} is not a sha256 digest; Gyre stores and checks only sha256 content",
                descriptor.digest,
                reference.whole()
            );
        }
        let mut sink = CountingSink {
            bytes: Vec::with_capacity(usize::try_from(descriptor.size).unwrap_or(0)),
            observer,
        };
        self.oci
            .pull_blob(reference, &descriptor, &mut sink)
            .await
            .map_err(|e| match e {
                oci_client::errors::OciDistributionError::DigestError(detail) => {
                    RegistryError::DigestMismatch {
                        what: "layer",
                        digest: descriptor.digest.clone(),
                        reference: reference.whole(),
                        detail: detail.to_string(),
                    }
                }
                other => self.error(other, reference),
            })?;
        let bytes = sink.bytes;
        let actual = sha256_digest(&bytes);
        if !actual.eq_ignore_ascii_case(&descriptor.digest) {
            return Err(RegistryError::DigestMismatch {
                what: "layer",
                digest: descriptor.digest.clone(),
                reference: reference.whole(),
                detail: format!("its content hashes to {actual}"),
            }
            .into());
        }
        if descriptor.media_type == ARCHIVE_MEDIA_TYPE {
            unpack_archive(&bytes, cache).with_context(|| {
                format!(
                    "cannot unpack archive layer {} of {}",
                    descriptor.digest,
                    reference.whole()
                )
            })?;
        }
        cache.write_blob(&descriptor.digest, &bytes)?;
        Ok(())
    }
}

/// What `reference` resolved to when it was last pulled, if it and every
/// blob it names are in `cache`: what `gyre up` runs when the registry is
/// down.
pub fn cached(reference: &Reference, cache: &Cache) -> Option<Pulled> {
    let (json, digest) = cache.read_ref(reference)?;
    let manifest: OciImageManifest = serde_json::from_slice(&json).ok()?;
    let complete = manifest
        .layers
        .iter()
        .all(|l| cache.existing_blob(&l.digest).is_some());
    complete.then(|| Pulled {
        reference: reference.clone(),
        manifest,
        digest,
        fetched_bytes: 0,
    })
}

/// Stores every regular file of a gzipped tar under its own digest.
fn unpack_archive(bytes: &[u8], cache: &Cache) -> Result<()> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content)?;
        cache.write_blob(&sha256_digest(&content), &content)?;
    }
    Ok(())
}

/// Collects a blob in memory, reporting each chunk.
struct CountingSink<'a> {
    bytes: Vec<u8>,
    observer: &'a dyn PullObserver,
}

impl tokio::io::AsyncWrite for CountingSink<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.bytes.extend_from_slice(buf);
        self.observer.progress(buf.len() as u64);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
