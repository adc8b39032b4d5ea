//! On-disk cache of compiled components.
//!
//! Compiling a Python component takes seconds; loading its compiled code
//! takes milliseconds. Entries are keyed by the SHA-256 of the component's
//! bytes as loaded — before Gyre prepares them (componentizing, adapting,
//! composing), so a warm start skips that work too — and a hash of
//! everything that affects compiled code (Wasmtime's
//! `precompile_compatibility_hash`, Gyre's version and the version of its
//! preparation steps), so a changed component, engine setting or Gyre build
//! never loads stale code.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

use anyhow::Result;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

/// Where a component's compiled code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from the cache.
    Hit,
    /// Compiled now and written to the cache.
    Miss,
    /// Compiled now; caching is off.
    Disabled,
}

/// What in an engine decides whether compiled code fits it.
pub(crate) fn engine_key(engine: &wasmtime::Engine) -> String {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    crate::prepare::PREPARATION_VERSION.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// The component's content hash, computed once per load: of its bytes
/// and, when it is composed, of everything composed with it.
pub(crate) fn digest(bytes: &[u8], composition: &gyre_compose::Composition) -> String {
    if composition.is_empty() {
        return hex::encode(Sha256::digest(bytes));
    }
    let mut hasher = Sha256::new();
    hasher.update(b"composed\0");
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
    composition.fingerprint(&mut |part| hasher.update(part));
    hex::encode(hasher.finalize())
}

pub(crate) struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    pub(crate) fn new(dir: PathBuf) -> Self {
        CompileCache { dir }
    }

    /// Whether an earlier load found that the component with `digest`
    /// cannot run on the engine with `engine_key` (it needs component-model
    /// async), so it is not tried there again.
    pub(crate) fn is_marked_concurrent(&self, digest: &str, engine_key: &str) -> bool {
        self.marker(digest, engine_key).exists()
    }

    /// Remembers that the component needs the concurrent engine.
    pub(crate) fn mark_concurrent(&self, digest: &str, engine_key: &str) {
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(self.marker(digest, engine_key), b""));
        if let Err(e) = written {
            tracing::debug!(dir = %self.dir.display(), "cannot write the compile cache: {e}");
        }
    }

    fn marker(&self, digest: &str, engine_key: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{engine_key}.concurrent"))
    }

    pub(crate) fn load_or_compile(
        &self,
        engine: &wasmtime::Engine,
        engine_key: &str,
        digest: &str,
        compile: impl FnOnce() -> Result<Component>,
    ) -> Result<(Component, CacheOutcome)> {
        let path = self.dir.join(format!("{digest}-{engine_key}.cwasm"));
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of an
            // engine with the same compatibility hash (it is in the name), into
            // a directory Gyre owns, by an atomic rename: it is never seen
            // half-written. Wasmtime checks its header and version again.
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    tracing::debug!(path = %path.display(), "loaded compiled component from cache");
                    gyre_telemetry::metrics().compile_cache(gyre_telemetry::CacheResult::Hit);
                    return Ok((component, CacheOutcome::Hit));
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cache entry: {e:#}");
                }
            }
        }
        let component = compile()?;
        gyre_telemetry::metrics().compile_cache(gyre_telemetry::CacheResult::Miss);
        if let Err(e) = self.store(&component, &path) {
            tracing::warn!(dir = %self.dir.display(), "cannot write the compile cache: {e:#}");
            return Ok((component, CacheOutcome::Disabled));
        }
        Ok((component, CacheOutcome::Miss))
    }

    fn store(&self, component: &Component, path: &std::path::Path) -> Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let serialized = component.serialize()?;
        let tmp = tempfile_in(&self.dir)?;
        std::fs::write(&tmp, serialized)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

fn tempfile_in(dir: &std::path::Path) -> Result<PathBuf> {
    let unique = format!(
        ".tmp-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    Ok(dir.join(unique))
}
