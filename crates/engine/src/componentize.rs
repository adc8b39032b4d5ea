//! Turning core Wasm modules into components, as Spin does for old apps.
//!
//! A module with a `component-type` custom section (what wit-bindgen emits)
//! is encoded with the WASI preview1 *reactor* adapter; a plain preview1
//! command (a `_start` export and no wit-bindgen traces, such as a WAGI
//! module) gets the *command* adapter and so exports `wasi:cli/run`; a
//! Spin 1.x module (`handle-http-request` without component type) is
//! adapted by [`crate::spin1`].

use anyhow::{Context as _, Result, bail};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
    WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wasmparser::{Parser, Payload};

pub(crate) fn is_core_module(bytes: &[u8]) -> bool {
    wasmparser::Parser::is_core_wasm(bytes)
}

struct ModuleShape {
    has_component_type: bool,
    exports_start: bool,
    imports_preview1: bool,
    legacy_spin_exports: bool,
}

fn inspect(bytes: &[u8]) -> Result<ModuleShape> {
    let mut shape = ModuleShape {
        has_component_type: false,
        exports_start: false,
        imports_preview1: false,
        legacy_spin_exports: false,
    };
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.context("invalid Wasm module")? {
            Payload::CustomSection(s) if s.name().starts_with("component-type") => {
                shape.has_component_type = true;
            }
            Payload::ExportSection(exports) => {
                for export in exports {
                    let export = export?;
                    match export.name {
                        "_start" => shape.exports_start = true,
                        name if crate::spin1::is_handler_export(name) => {
                            shape.legacy_spin_exports = true
                        }
                        _ => {}
                    }
                }
            }
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    if import?.module == WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME {
                        shape.imports_preview1 = true;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(shape)
}

pub(crate) fn componentize(bytes: &[u8]) -> Result<Vec<u8>> {
    let shape = inspect(bytes)?;
    if shape.legacy_spin_exports && !shape.has_component_type {
        return crate::spin1::adapt(bytes)
            .context("cannot adapt this Spin 1.x module (`handle-http-request` ABI)");
    }
    if !shape.has_component_type && !shape.exports_start {
        bail!(
            "the module has neither component type information (from wit-bindgen) nor a `_start` \
             export, so there is nothing to run; build it as a component or as a WASI command"
        );
    }
    let adapter = if shape.has_component_type {
        WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER
    } else {
        WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER
    };
    let mut encoder = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(bytes)
        .context("cannot read the module")?;
    if shape.imports_preview1 || !shape.has_component_type {
        encoder = encoder
            .adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, adapter)
            .context("cannot apply the WASI preview1 adapter")?;
    }
    encoder.encode().context("cannot encode the component")
}
