//! The content-addressed store pulled artifacts live in, shared by every app.
//!
//! Blobs are kept under their digest (`blobs/sha256/<hex>`), checked as they
//! are written and written through a temporary file and a rename, so a blob
//! that is present is complete and correct. What a reference pointed at when
//! it was last pulled (its OCI manifest and the digest of that manifest) is
//! kept per reference under `refs/`, so a reference pulled once can start
//! with the registry down.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The registry cache at one root.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// A cache rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `$XDG_CACHE_HOME/gyre/registry`, else `~/.cache/gyre/registry`.
    pub fn default_root() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("gyre").join("registry"))
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` is (or would be) stored. `None` for a
    /// digest that is not a well-formed `sha256:<64 hex>`: a digest taken
    /// from a registry never becomes a path outside the cache.
    pub fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        let well_formed = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then(|| {
            self.root
                .join("blobs")
                .join("sha256")
                .join(hex.to_ascii_lowercase())
        })
    }

    /// The stored blob, if present.
    pub fn existing_blob(&self, digest: &str) -> Option<PathBuf> {
        self.blob_path(digest).filter(|p| p.is_file())
    }

    /// Stores `bytes` under `digest`, refusing bytes whose digest differs.
    pub fn write_blob(&self, digest: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self
            .blob_path(digest)
            .with_context(|| format!("{digest:?} is not a sha256 digest"))?;
        let actual = sha256_digest(bytes);
        if !actual.eq_ignore_ascii_case(digest) {
            anyhow::bail!("content has digest {actual}, not the {digest} it was stored under");
        }
        if path.is_file() {
            return Ok(path);
        }
        write_atomically(&path, bytes)?;
        Ok(path)
    }

    fn ref_dir(&self, reference: &oci_client::Reference) -> PathBuf {
        let mut dir = self.root.join("refs").join(reference.resolve_registry());
        for part in reference.repository().split('/') {
            dir.push(part);
        }
        match (reference.digest(), reference.tag()) {
            (Some(digest), _) => dir.join(digest.replace(':', "-")),
            (None, Some(tag)) => dir.join(format!("tag-{tag}")),
            (None, None) => dir.join("tag-latest"),
        }
    }

    /// Records what `reference` resolved to: the manifest's bytes and digest.
    pub fn write_ref(
        &self,
        reference: &oci_client::Reference,
        manifest_digest: &str,
        manifest_json: &[u8],
    ) -> Result<()> {
        let dir = self.ref_dir(reference);
        write_atomically(&dir.join("manifest.json"), manifest_json)?;
        write_atomically(&dir.join("digest"), manifest_digest.as_bytes())
    }

    /// The manifest bytes and digest recorded for `reference`, if any.
    pub fn read_ref(&self, reference: &oci_client::Reference) -> Option<(Vec<u8>, String)> {
        let dir = self.ref_dir(reference);
        let manifest = std::fs::read(dir.join("manifest.json")).ok()?;
        let digest = std::fs::read_to_string(dir.join("digest")).ok()?;
        Some((manifest, digest.trim().to_string()))
    }
}

/// Writes through a sibling temporary file and a rename: readers see the
/// old file or the whole new one.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    std::io::Write::write_all(&mut file, bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_checked_and_addressed_by_digest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path());
        let digest = sha256_digest(b"hello");
        let path = cache.write_blob(&digest, b"hello").expect("stored");
        assert_eq!(std::fs::read(&path).expect("read"), b"hello");
        assert_eq!(cache.existing_blob(&digest), Some(path));
        let err = cache
            .write_blob(&digest, b"tampered")
            .expect_err("a wrong digest is refused");
        assert!(err.to_string().contains("not the sha256:"), "{err}");
    }

    #[test]
    fn malformed_digests_never_become_paths() {
        let cache = Cache::new("/cache");
        for digest in ["sha256:../../etc", "md5:abc", "sha256:", "sha256:zz"] {
            assert_eq!(cache.blob_path(digest), None, "{digest}");
        }
    }
}
