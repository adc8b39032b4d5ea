//! Linking imports Gyre does not provide as functions that fail.
//!
//! Components built by the Python SDK import every Spin interface whether
//! they use it or not. Such a component must still run: each import the
//! linker cannot satisfy is defined as functions that fail with an error
//! naming the interface, and the list is reported at load.
//!
//! Wasmtime's linker resolves `a:b/c@0.2.9` to a host `a:b/c@0.2.6`
//! (semver-compatible lookup), so "missing" must be decided by the linker
//! itself, not by comparing names: we ask it to type-check the component and
//! stub exactly the instance it reports missing, until it is satisfied.

use anyhow::{Result, anyhow, bail};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, LinkerInstance, ResourceType, Val, types};

use crate::host::HostState;

/// Imports linked as failing functions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StubbedImports(pub Vec<String>);

/// Marker type for stubbed resources.
struct StubResource;

pub(crate) fn stub_missing_imports(
    linker: &mut Linker<HostState>,
    engine: &wasmtime::Engine,
    component: &Component,
) -> Result<StubbedImports> {
    let imports: Vec<(String, ComponentItem)> = component
        .component_type()
        .imports(engine)
        .map(|(name, item)| (name.to_string(), item.ty.clone()))
        .collect();
    let mut stubbed = Vec::new();
    let mut linked = Vec::new();
    for _ in 0..=imports.len() {
        let Err(err) = linker.substituted_component_type(component) else {
            return Ok(StubbedImports(stubbed));
        };
        let message = format!("{err:#}");
        let Some(missing) = missing_import_name(&message) else {
            return Err(err.into());
        };
        if linked.iter().any(|s| s == missing) {
            // Present, but with a different shape than the component expects.
            return Err(err.into());
        }
        let Some((name, item)) = imports.iter().find(|(n, _)| n == missing) else {
            return Err(err.into());
        };
        if stub_import(linker, engine, name, item)? {
            stubbed.push(name.clone());
        }
        linked.push(name.clone());
    }
    bail!("could not satisfy the component's imports")
}

fn missing_import_name(message: &str) -> Option<&str> {
    // "component imports instance `NAME`, but a matching implementation was
    // not found in the linker"
    let rest = message.split("component imports ").nth(1)?;
    if !rest.contains("but a matching implementation was not found") {
        return None;
    }
    let start = rest.find('`')? + 1;
    let end = start + rest[start..].find('`')?;
    Some(&rest[start..end])
}

/// Links a stand-in for one import. Returns whether anything in it can
/// fail: an interface of types only (`fermyon:spin/rdbms-types`) has
/// nothing to provide, so it is linked empty and not reported as a stub.
fn stub_import(
    linker: &mut Linker<HostState>,
    engine: &wasmtime::Engine,
    name: &str,
    item: &ComponentItem,
) -> Result<bool> {
    define_stand_in(linker, engine, name, item, stub_resource, |qualified, _| {
        Err(unsupported(qualified))
    })
}

/// Defines resource `export` of a stand-in as a resource of its own: no
/// value of it ever exists, since nothing in the stand-in makes one.
pub(crate) fn stub_resource(
    inst: &mut LinkerInstance<'_, HostState>,
    export: &str,
    _ty: ResourceType,
) -> Result<()> {
    inst.resource(export, ResourceType::host::<StubResource>(), |_, _| Ok(()))?;
    Ok(())
}

/// Defines every function and resource of the import `name` as a
/// stand-in: functions whose results `answer` gives (from the function's
/// qualified name, `iface#func`, and its type), sync or async as the import
/// is; resources as `define_resource` says (given the resource's type in
/// the component). Returns whether it defined any function or resource.
pub(crate) fn define_stand_in(
    linker: &mut Linker<HostState>,
    engine: &wasmtime::Engine,
    name: &str,
    item: &ComponentItem,
    define_resource: impl Fn(&mut LinkerInstance<'_, HostState>, &str, ResourceType) -> Result<()>,
    answer: impl Fn(&str, &types::ComponentFunc) -> wasmtime::Result<Vec<Val>>
    + Clone
    + Send
    + Sync
    + 'static,
) -> Result<bool> {
    fn define_func(
        inst: &mut wasmtime::component::LinkerInstance<'_, HostState>,
        export: &str,
        qualified: String,
        func: &types::ComponentFunc,
        answer: impl Fn(&str, &types::ComponentFunc) -> wasmtime::Result<Vec<Val>>
        + Clone
        + Send
        + Sync
        + 'static,
    ) -> Result<()> {
        let fill = move |ty: types::ComponentFunc, results: &mut [Val]| {
            for (slot, value) in results.iter_mut().zip(answer(&qualified, &ty)?) {
                *slot = value;
            }
            Ok(())
        };
        if func.async_() {
            inst.func_new_concurrent(export, move |_, ty, _, results| {
                let outcome = fill.clone()(ty, results);
                Box::pin(async move { outcome })
            })?;
        } else {
            inst.func_new(export, move |_, ty, _, results| fill(ty, results))?;
        }
        Ok(())
    }

    match item {
        ComponentItem::ComponentInstance(instance) => {
            let mut inst = linker.instance(name)?;
            let mut provides_anything = false;
            for (export, item) in instance.exports(engine) {
                match item.ty {
                    ComponentItem::ComponentFunc(func) => {
                        let qualified = format!("{name}#{export}");
                        define_func(&mut inst, export, qualified, &func, answer.clone())?;
                        provides_anything = true;
                    }
                    ComponentItem::Resource(ty) => {
                        define_resource(&mut inst, export, ty)?;
                        provides_anything = true;
                    }
                    _ => {}
                }
            }
            Ok(provides_anything)
        }
        ComponentItem::ComponentFunc(func) => {
            define_func(&mut linker.root(), name, name.to_string(), func, answer)?;
            Ok(true)
        }
        _ => Err(anyhow!("cannot provide a stand-in for import `{name}`")),
    }
}

fn unsupported(name: &str) -> wasmtime::Error {
    wasmtime::format_err!(
        "`{name}` is not provided by Gyre yet: the component called an interface this host does not implement"
    )
}

#[cfg(test)]
mod tests {
    use super::missing_import_name;

    #[test]
    fn finds_the_missing_instance() {
        let msg = "component imports instance `spin:mqtt/mqtt@3.0.0`, but a matching implementation was not found in the linker: instance export `open` has the wrong type";
        assert_eq!(missing_import_name(msg), Some("spin:mqtt/mqtt@3.0.0"));
        assert_eq!(missing_import_name("some other error"), None);
    }
}
