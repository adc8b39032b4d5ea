//! The WASI 0.3 release candidate, mapped onto WASI 0.3.0.
//!
//! Spin's Rust SDK 6, Go SDK 3 and Python SDK 4 build components that import
//! and export `wasi:*@0.3.0-rc-2026-03-15`. Wasmtime 48 implements WASI
//! 0.3.0 final, and a linker matches prerelease versions only exactly. The
//! two versions are the same interfaces, type for type, so Gyre does not
//! write a second implementation: it wraps the component in one that
//!
//! - imports each `wasi:…@0.3.0` interface once (with the type the
//!   component expects) and passes it for the `@0.3.0-rc-…` import — and
//!   for the final import too, where a component (Python SDK 5) imports
//!   both — so both names share one host instance and its resources;
//! - exports every export of the component, the release-candidate names
//!   under their final names (`wasi:http/handler@0.3.0`), so the component
//!   is served as any 0.3.0 handler is, with instance reuse.
//!
//! The composition checks every argument against the import it satisfies
//! (wac's subtype check), so a future release candidate that differs from
//! 0.3.0 is refused with the mismatch named, never run half-linked.

use anyhow::{Context as _, Result};
use indexmap::IndexMap;
use wac_graph::types::{ItemKind, Package};
use wac_graph::{CompositionGraph, EncodeOptions};
use wasmparser::{Chunk, Parser, Payload};

/// The release-candidate version mapped onto `0.3.0`.
pub const WASI_RC: &str = "0.3.0-rc-2026-03-15";

const FINAL: &str = "0.3.0";

/// The final name of a release-candidate WASI interface name
/// (`wasi:http/handler@0.3.0-rc-2026-03-15` → `wasi:http/handler@0.3.0`).
fn final_name(name: &str) -> Option<String> {
    let base = name.strip_suffix(WASI_RC)?.strip_suffix('@')?;
    base.starts_with("wasi:").then(|| format!("{base}@{FINAL}"))
}

/// Whether a component import or export name needs the mapping. Cheap
/// enough to run on every name of every component at load.
pub fn is_wasi_rc_name(name: &str) -> bool {
    final_name(name).is_some()
}

/// Wraps `component` so that it imports and exports WASI 0.3.0 in place of
/// the release candidate (see the module docs). Returns `None` when the
/// component uses no release-candidate name, so callers keep their bytes.
pub fn adapt_wasi_rc(component: &[u8]) -> Result<Option<Vec<u8>>> {
    if !top_level_names(component)?
        .iter()
        .any(|name| is_wasi_rc_name(name))
    {
        return Ok(None);
    }
    let mut graph = CompositionGraph::new();
    let package = Package::from_bytes("gyre:guest", None, component.to_vec(), graph.types_mut())
        .context("cannot read the component's imports and exports")?;
    let ty = package.ty();
    // In the component's own order, which has every interface after the
    // ones whose types it uses: importing `preopens` before `types` would
    // give it a resource of its own instead of `types.descriptor`.
    let imports: IndexMap<String, ItemKind> = graph.types()[ty]
        .imports
        .iter()
        .map(|(name, kind)| (name.clone(), *kind))
        .collect();
    let exports: Vec<String> = graph.types()[ty].exports.keys().cloned().collect();
    let package = graph.register_package(package)?;
    let instance = graph.instantiate(package);

    for (rc_name, rc_kind) in &imports {
        let Some(final_name) = final_name(rc_name) else {
            continue;
        };
        // Imported under its final name with the type the component gives
        // that name, if it imports it too, else with the rc import's type.
        let also_final = imports.get(&final_name);
        let kind = also_final.copied().unwrap_or(*rc_kind);
        let node = graph
            .import(final_name.clone(), kind)
            .with_context(|| format!("cannot import `{final_name}` for `{rc_name}`"))?;
        graph
            .set_instantiation_argument(instance, rc_name, node)
            .with_context(|| {
                format!("`{final_name}` cannot stand in for `{rc_name}` (the interfaces differ)")
            })?;
        if also_final.is_some() {
            graph.set_instantiation_argument(instance, &final_name, node)?;
        }
    }
    for name in exports {
        let item = graph.alias_instance_export(instance, &name)?;
        let exported = final_name(&name).unwrap_or_else(|| name.clone());
        graph
            .export(item, exported)
            .with_context(|| format!("cannot export `{name}`"))?;
    }
    let bytes = graph
        .encode(EncodeOptions {
            validate: true,
            ..EncodeOptions::default()
        })
        .context("cannot encode the adapted component")?;
    Ok(Some(bytes))
}

/// The import and export names of a component's outermost level, read
/// without descending into (or validating) the modules it contains.
fn top_level_names(component: &[u8]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut parser = Parser::new(0);
    let mut rest = component;
    loop {
        let (consumed, payload) = match parser.parse(rest, true)? {
            Chunk::NeedMoreData(_) => anyhow::bail!("the component ends early"),
            Chunk::Parsed { consumed, payload } => (consumed, payload),
        };
        match payload {
            Payload::ComponentImportSection(imports) => {
                for import in imports {
                    names.push(import?.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(exports) => {
                for export in exports {
                    names.push(export?.name.name.to_string());
                }
            }
            // The nested module's bytes follow the section header; skip
            // them and go on with the outer component's next section.
            Payload::ModuleSection {
                unchecked_range, ..
            }
            | Payload::ComponentSection {
                unchecked_range, ..
            } => {
                rest = rest
                    .get(consumed + unchecked_range.len()..)
                    .context("a nested module runs past the end of the component")?;
                continue;
            }
            Payload::End(_) => return Ok(names),
            _ => {}
        }
        rest = &rest[consumed..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_names() {
        let cases = [
            (
                "wasi:http/handler@0.3.0-rc-2026-03-15",
                Some("wasi:http/handler@0.3.0"),
            ),
            (
                "wasi:cli/stdout@0.3.0-rc-2026-03-15",
                Some("wasi:cli/stdout@0.3.0"),
            ),
            ("wasi:http/handler@0.3.0", None),
            ("wasi:http/handler@0.3.0-rc-2025-09-16", None),
            ("spin:key-value/key-value@0.3.0-rc-2026-03-15", None),
            ("wasi:http/types@0.2.6", None),
            ("exports", None),
        ];
        for (name, want) in cases {
            assert_eq!(final_name(name).as_deref(), want, "{name}");
        }
    }

    /// The body of an instance type with one function.
    const RANDOM_TYPE: &str = "(export \"get-random-u64\" (func (result u64)))";

    /// A component that imports `random` under `imports` (name → instance
    /// type) and re-exports the first one as `export`.
    fn component(imports: &[(&str, &str)], export: &str) -> Vec<u8> {
        let mut wat = String::from("(component\n");
        for (i, (name, ty)) in imports.iter().enumerate() {
            wat.push_str(&format!("(import \"{name}\" (instance $i{i} {ty}))\n"));
        }
        wat.push_str(&format!("(export \"{export}\" (instance $i0))\n"));
        // A nested module, which the name scan must step over.
        wat.push_str("(core module $m (func (export \"f\")))\n)");
        wat::parse_str(&wat).expect("test component")
    }

    fn names(bytes: &[u8]) -> Vec<String> {
        let mut names = top_level_names(bytes).expect("names");
        names.sort();
        names
    }

    #[test]
    fn rc_imports_and_exports_take_their_final_names() {
        let rc = "wasi:random/random@0.3.0-rc-2026-03-15";
        type Imports<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Imports, &[&str]); 2] = [
            // Only the release candidate (Python SDK 4).
            (
                &[(rc, RANDOM_TYPE)],
                &["wasi:random/random@0.3.0", "wasi:random/random@0.3.0"],
            ),
            // Both (Python SDK 5): one import serves both names.
            (
                &[(rc, RANDOM_TYPE), ("wasi:random/random@0.3.0", RANDOM_TYPE)],
                &["wasi:random/random@0.3.0", "wasi:random/random@0.3.0"],
            ),
        ];
        for (imports, want) in cases {
            let adapted = adapt_wasi_rc(&component(imports, rc))
                .expect("adapts")
                .expect("has rc names");
            assert_eq!(names(&adapted), want.to_vec(), "{imports:?}");
        }
    }

    #[test]
    fn a_component_without_rc_names_is_left_alone() {
        let bytes = component(
            &[("wasi:random/random@0.3.0", RANDOM_TYPE)],
            "wasi:random/random@0.3.0",
        );
        assert!(adapt_wasi_rc(&bytes).expect("reads").is_none());
    }

    #[test]
    fn an_rc_interface_that_differs_from_the_final_one_is_refused_by_name() {
        let rc = "wasi:random/random@0.3.0-rc-2026-03-15";
        let other = "(export \"get-random-u64\" (func (result u32)))";
        let bytes = component(
            &[(rc, RANDOM_TYPE), ("wasi:random/random@0.3.0", other)],
            rc,
        );
        let error = format!("{:#}", adapt_wasi_rc(&bytes).expect_err("types differ"));
        assert!(
            error.contains("cannot stand in for `wasi:random/random@0.3.0-rc-2026-03-15`"),
            "{error}"
        );
    }
}
