//! What Gyre does to a component's bytes before compiling them: text is
//! assembled, a core
//! module becomes a component (`componentize`), and a component built
//! against the WASI 0.3 release candidate is wrapped onto WASI 0.3.0
//! (`gyre_compose::adapt_wasi_rc`); then, when the component has
//! dependencies or middleware, each of those is prepared the same way and
//! all are composed into one component (`gyre_compose::compose`).
//!
//! Preparation runs only when compiled code is not in the cache (entries
//! are keyed by the bytes *before* preparation), and at most once per load
//! even when both engines are tried.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::sync::Arc;

use anyhow::{Context as _, Result};

use gyre_compose::Composition;

use crate::componentize;

/// Bumped whenever preparation changes its output for the same input, so
/// compiled code cached from the old output is not loaded.
pub(crate) const PREPARATION_VERSION: u32 = 4;

/// A component's bytes, prepared on first use.
pub(crate) struct Prepared<'a> {
    name: &'a str,
    original: &'a [u8],
    composition: &'a Composition,
    prepared: OnceCell<Cow<'a, [u8]>>,
}

impl<'a> Prepared<'a> {
    pub(crate) fn new(name: &'a str, original: &'a [u8], composition: &'a Composition) -> Self {
        Prepared {
            name,
            original,
            composition,
            prepared: OnceCell::new(),
        }
    }

    /// The bytes to compile.
    pub(crate) fn get(&self) -> Result<&[u8]> {
        if let Some(bytes) = self.prepared.get() {
            return Ok(bytes);
        }
        let mut bytes = prepare(self.name, self.original)?;
        if !self.composition.is_empty() {
            let pieces = self.composition.map_bytes(|piece| {
                prepare(&format!("{} {}", self.name, piece.label), &piece.bytes)
                    .map(|bytes| Arc::from(bytes.into_owned()))
            })?;
            bytes = Cow::Owned(
                gyre_compose::compose(&bytes, &pieces)
                    .with_context(|| format!("component `{}`: cannot compose it", self.name))?,
            );
            tracing::debug!(
                "component `{}`: composed with {} dependencies and {} middleware",
                self.name,
                pieces.dependencies.len(),
                pieces.middleware.len()
            );
        }
        Ok(self.prepared.get_or_init(|| bytes))
    }
}

fn prepare<'a>(name: &str, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>> {
    // WebAssembly text is accepted as wasmtime accepts it; binaries are
    // borrowed untouched.
    let binary = wat::parse_bytes(bytes).with_context(|| {
        format!("component `{name}`: is neither a WebAssembly binary nor valid WebAssembly text")
    })?;
    let component = if componentize::is_core_module(&binary) {
        Cow::Owned(componentize::componentize(&binary).with_context(|| {
            format!("component `{name}`: cannot turn the core module into a component")
        })?)
    } else {
        binary
    };
    let adapted = gyre_compose::adapt_wasi_rc(&component).with_context(|| {
        format!(
            "component `{name}`: cannot map its WASI {} imports onto WASI 0.3.0",
            gyre_compose::WASI_RC
        )
    })?;
    Ok(match adapted {
        Some(bytes) => {
            tracing::debug!(
                "component `{name}`: WASI {} mapped onto 0.3.0",
                gyre_compose::WASI_RC
            );
            Cow::Owned(bytes)
        }
        None => component,
    })
}
