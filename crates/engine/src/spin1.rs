//! Spin 1.x modules: core modules built by the Spin SDKs before
//! components (Rust, Go, JS and TS apps of the Spin 0.x/1.x days).
//!
//! Such a module speaks the component model's canonical ABI of 2022
//! (wit-bindgen 0.2), which is the ABI of Spin's unversioned `fermyon:spin`
//! interfaces today, function for function: only the names differ. The
//! module imports `wasi-outbound-http.request`, `spin-config.get-config`,
//! `key-value.open`, … and exports `handle-http-request`,
//! `handle-redis-message` and `canonical_abi_realloc`. Adapting it is
//! therefore a renaming, not a translation:
//!
//! 1. imports and exports are renamed onto the interfaces of
//!    `wit/spin1.wit` (Gyre's own WIT of that world), which the host links
//!    like any other import;
//! 2. the world of exactly the interfaces the module uses is embedded as
//!    its component type;
//! 3. wit-component encodes the component, WASI preview1 through the
//!    standard reactor adapter.
//!
//! The module's `canonical_abi_free` is not called after a request (there
//! is no post-return in the 2022 ABI's exports as wit-component sees them):
//! each request runs in a fresh instance, whose memory goes with it.
//! Runs at preparation only, and the result is cached with compiled code.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result, bail};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{ExportSection, ImportSection, Module, RawSection};
use wasmparser::{Parser, Payload};

/// Gyre's WIT of Spin's unversioned interfaces.
const SPIN1_WIT: &str = include_str!("../wit/spin1.wit");

/// A Spin 1.x import module and the unversioned interface it became.
const IMPORT_MODULES: &[(&str, &str)] = &[
    ("wasi-outbound-http", "http"),
    ("spin-config", "config"),
    ("key-value", "key-value"),
    ("outbound-redis", "redis"),
    ("outbound-pg", "postgres"),
    ("outbound-mysql", "mysql"),
    ("sqlite", "sqlite"),
    ("llm", "llm"),
];

/// A Spin 1.x export and the unversioned interface function it became.
const EXPORTS: &[(&str, &str, &str)] = &[
    ("handle-http-request", "inbound-http", "handle-request"),
    ("handle-redis-message", "inbound-redis", "handle-message"),
];

/// Whether `export` is one of the Spin 1.x handler exports.
pub(crate) fn is_handler_export(export: &str) -> bool {
    EXPORTS.iter().any(|(old, _, _)| *old == export)
}

/// The renamed module and the interfaces it imports and exports.
struct Renamed {
    module: Vec<u8>,
    imports: BTreeSet<&'static str>,
    exports: BTreeSet<&'static str>,
}

/// Adapts a Spin 1.x module into a component of the unversioned world.
pub(crate) fn adapt(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut renamed = rename(bytes)?;
    let mut resolve = wit_parser::Resolve::default();
    resolve
        .push_str("spin1.wit", SPIN1_WIT)
        .context("Gyre's Spin 1.x WIT does not parse")?;
    let package = resolve
        .push_str("module.wit", &world_of(&renamed))
        .context("cannot describe the module's world")?;
    let world = resolve
        .select_world(&[package], Some("module"))
        .context("cannot describe the module's world")?;
    wit_component::embed_component_metadata(
        &mut renamed.module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .context("cannot describe the module's world")?;
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&renamed.module)
        .context("the module does not fit the Spin 1.x ABI")?
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .context("cannot apply the WASI preview1 adapter")?
        .encode()
        .context("the module does not fit the Spin 1.x ABI")
}

/// `package gyre:spin1-module; world module { import …; export …; }`.
fn world_of(renamed: &Renamed) -> String {
    let mut world = String::from("package gyre:spin1-module;\nworld module {\n");
    for interface in &renamed.imports {
        world.push_str(&format!("  import fermyon:spin/{interface};\n"));
    }
    for interface in &renamed.exports {
        world.push_str(&format!("  export fermyon:spin/{interface};\n"));
    }
    world.push_str("}\n");
    world
}

/// Renames the module's Spin imports and exports onto the unversioned
/// interfaces; every other section is copied as it is.
fn rename(bytes: &[u8]) -> Result<Renamed> {
    let mut module = Module::new();
    let mut imports_used = BTreeSet::new();
    let mut exports_used = BTreeSet::new();
    let mut reencoder = RoundtripReencoder;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.context("invalid Wasm module")?;
        match &payload {
            Payload::ImportSection(section) => {
                let mut imports = ImportSection::new();
                for import in section.clone().into_imports() {
                    let import = import.context("invalid import section")?;
                    let ty = reencoder
                        .entity_type(import.ty)
                        .context("invalid import section")?;
                    if import.module == WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME {
                        imports.import(import.module, import.name, ty);
                        continue;
                    }
                    let interface = interface_of(import.module, import.name)?;
                    imports_used.insert(interface);
                    let name = match (import.module, import.name) {
                        ("wasi-outbound-http", "request") => "send-request",
                        (_, name) => name,
                    };
                    imports.import(&format!("fermyon:spin/{interface}"), name, ty);
                }
                module.section(&imports);
            }
            Payload::ExportSection(section) => {
                let names: Vec<_> = section
                    .clone()
                    .into_iter()
                    .map(|e| e.map(|e| e.name))
                    .collect::<Result<_, _>>()
                    .context("invalid export section")?;
                let has = |name: &str| names.contains(&name);
                let mut exports = ExportSection::new();
                for export in section.clone() {
                    let export = export.context("invalid export section")?;
                    let kind = reencoder
                        .export_kind(export.kind)
                        .context("invalid export")?;
                    let name = match EXPORTS.iter().find(|(old, _, _)| *old == export.name) {
                        Some((_, interface, function)) => {
                            exports_used.insert(*interface);
                            format!("fermyon:spin/{interface}#{function}")
                        }
                        None => match export.name {
                            "canonical_abi_realloc" if !has("cabi_realloc") => {
                                "cabi_realloc".into()
                            }
                            // TinyGo's runtime (and the Go SDK's handler
                            // registration) starts in `_start`: run it once,
                            // when the instance is created.
                            "_start" if !has("_initialize") => "_initialize".into(),
                            name => name.to_string(),
                        },
                    };
                    exports.export(&name, kind, export.index);
                }
                module.section(&exports);
            }
            _ => {
                if let Some((id, range)) = payload.as_section() {
                    module.section(&RawSection {
                        id,
                        data: &bytes[range],
                    });
                }
            }
        }
    }
    if exports_used.is_empty() {
        bail!("the module exports neither `handle-http-request` nor `handle-redis-message`");
    }
    Ok(Renamed {
        module: module.finish(),
        imports: imports_used,
        exports: exports_used,
    })
}

/// The unversioned interface a Spin 1.x import belongs to.
fn interface_of(module: &str, name: &str) -> Result<&'static str> {
    if let Some((_, interface)) = IMPORT_MODULES.iter().find(|(old, _)| *old == module) {
        return Ok(interface);
    }
    bail!(
        "the module imports `{module}.{name}`, which is not part of the Spin 1.x ABI (Spin 1.x \
         modules import `wasi_snapshot_preview1` and {})",
        IMPORT_MODULES
            .iter()
            .map(|(m, _)| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::{Renamed, world_of};
    use std::collections::BTreeSet;

    #[test]
    fn the_world_names_what_the_module_uses() {
        let renamed = Renamed {
            module: Vec::new(),
            imports: BTreeSet::from(["config", "http"]),
            exports: BTreeSet::from(["inbound-http"]),
        };
        assert_eq!(
            world_of(&renamed),
            "package gyre:spin1-module;\nworld module {\n  import fermyon:spin/config;\n  import fermyon:spin/http;\n  export fermyon:spin/inbound-http;\n}\n"
        );
    }
}
