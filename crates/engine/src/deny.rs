//! Linking the `gyre-denied:` imports of a composed component: the
//! capability imports of a dependency or middleware that does not inherit
//! its parent's configuration (see `gyre_compose::grants`).
//!
//! Each function answers the way its interface says "not allowed": the
//! error case of its result (`access-denied`, `HTTP-request-denied`,
//! `not-permitted`, else a case carrying a message), an empty list (no
//! environment, no preopened directories), `none`. Guests see an ordinary
//! error they already handle, as with Spin's deny adapter; only a function
//! whose every answer needs a resource traps, with the message.

use anyhow::{Result, anyhow};
use gyre_compose::grants::{DENIED_NAMESPACE, undenied};
use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{Component, Linker, LinkerInstance, Resource, ResourceType, Val};

use crate::host::HostState;
use crate::stubs::{define_stand_in, stub_resource};

/// Error cases chosen first, in this order: the interface's own word for
/// "denied", then its catch-all.
const DENIAL_CASES: &[&str] = &[
    "access-denied",
    "HTTP-request-denied",
    "not-permitted",
    "access",
    "invalid-input",
    "other",
];

/// Links every `gyre-denied:` import of `component`. Returns their
/// original names, for the load report.
pub(crate) fn link_denied_imports(
    linker: &mut Linker<HostState>,
    engine: &wasmtime::Engine,
    component: &Component,
) -> Result<Vec<String>> {
    let mut denied = Vec::new();
    let mut defined = std::collections::HashSet::new();
    let shared = shared_resources(engine, component);
    for (name, item) in component.component_type().imports(engine) {
        if !name.starts_with(DENIED_NAMESPACE) {
            continue;
        }
        // The linker resolves `@0.2.6` and `@0.2.9` to one definition.
        if !defined.insert(semver_key(name)) {
            continue;
        }
        let Some((original, capability)) = undenied(name) else {
            continue;
        };
        let message = format!(
            "`{original}` is not available to this dependency: it does not inherit its parent's `{}` \
             (set `inherit_configuration` on the dependency, or `dependencies_inherit_configuration = true`)",
            capability.manifest_name()
        );
        let item: ComponentItem = item.ty.clone();
        let wasi = WasiRelease::of(&original);
        let define_resource = |inst: &mut LinkerInstance<'_, HostState>,
                               export: &str,
                               ty: ResourceType| {
            if shared.contains(&ty) {
                host_resource(inst, export, wasi).ok_or_else(|| {
                    anyhow!(
                        "`{original}` uses the resource `{export}` of another interface, which Gyre \
                         cannot link to a denied import yet"
                    )
                })?
            } else {
                stub_resource(inst, export, ty)
            }
        };
        define_stand_in(
            linker,
            engine,
            name,
            &item,
            define_resource,
            move |qualified, ty| {
                ty.results()
                    .map(|result| {
                        denial(&result, &message).ok_or_else(|| {
                            wasmtime::format_err!("{message} (called `{qualified}`)")
                        })
                    })
                    .collect()
            },
        )?;
        denied.push(original);
    }
    Ok(denied)
}

/// The resources of every import that is not denied: a denied interface
/// that `use`s one of them (`preopens` returns `types.descriptor`) must
/// link it as the host's own type.
fn shared_resources(engine: &wasmtime::Engine, component: &Component) -> Vec<ResourceType> {
    let mut shared = Vec::new();
    for (name, item) in component.component_type().imports(engine) {
        if name.starts_with(DENIED_NAMESPACE) {
            continue;
        }
        if let ComponentItem::ComponentInstance(instance) = &item.ty {
            for (_, export) in instance.exports(engine) {
                if let ComponentItem::Resource(ty) = export.ty {
                    shared.push(ty);
                }
            }
        }
    }
    shared
}

/// Which WASI release an interface belongs to: resources of the same name
/// are different host types in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WasiRelease {
    P2,
    P3,
    Other,
}

impl WasiRelease {
    fn of(interface: &str) -> WasiRelease {
        match interface.split_once('@') {
            Some((base, version)) if base.starts_with("wasi:") && version.starts_with("0.2.") => {
                WasiRelease::P2
            }
            Some((base, version)) if base.starts_with("wasi:") && version.starts_with("0.3.") => {
                WasiRelease::P3
            }
            _ => WasiRelease::Other,
        }
    }
}

/// Defines `export` as the host type Wasmtime's WASI implementation uses
/// for the resource of that name (the one the linker already holds for the
/// interface that defines it), or `None` for a resource a denied WASI
/// interface cannot `use`. The destructor is the implementation's
/// (delete from the table), though the component drops such values through
/// the defining interface.
fn host_resource(
    inst: &mut LinkerInstance<'_, HostState>,
    export: &str,
    release: WasiRelease,
) -> Option<Result<()>> {
    fn alias<T: Send + 'static>(
        inst: &mut LinkerInstance<'_, HostState>,
        export: &str,
    ) -> Result<()> {
        inst.resource(export, ResourceType::host::<T>(), |mut store, rep| {
            store.data_mut().table.delete(Resource::<T>::new_own(rep))?;
            Ok(())
        })?;
        Ok(())
    }
    use wasmtime_wasi_http::{RequestOptions, p2::types as http2, p3 as http3};
    Some(match (release, export) {
        (WasiRelease::P2 | WasiRelease::P3, "descriptor") => {
            alias::<wasmtime_wasi::filesystem::Descriptor>(inst, export)
        }
        (WasiRelease::P2, "pollable") => alias::<wasmtime_wasi::p2::DynPollable>(inst, export),
        (WasiRelease::P2, "network") => alias::<wasmtime_wasi::p2::Network>(inst, export),
        (WasiRelease::P2, "tcp-socket") => alias::<wasmtime_wasi::p2::TcpSocket>(inst, export),
        (WasiRelease::P2, "udp-socket") => alias::<wasmtime_wasi::p2::UdpSocket>(inst, export),
        (WasiRelease::P2, "outgoing-request") => alias::<http2::HostOutgoingRequest>(inst, export),
        (WasiRelease::P2, "request-options") => alias::<RequestOptions>(inst, export),
        (WasiRelease::P2, "future-incoming-response") => {
            alias::<http2::HostFutureIncomingResponse>(inst, export)
        }
        (WasiRelease::P3, "request") => alias::<http3::Request>(inst, export),
        (WasiRelease::P3, "response") => alias::<http3::Response>(inst, export),
        (WasiRelease::P3, "request-options") => {
            alias::<http3::MaybeMutable<RequestOptions>>(inst, export)
        }
        (WasiRelease::P3, "tcp-socket") => alias::<wasmtime_wasi::sockets::TcpSocket>(inst, export),
        (WasiRelease::P3, "udp-socket") => alias::<wasmtime_wasi::sockets::UdpSocket>(inst, export),
        _ => return None,
    })
}

/// The "denied" value of type `ty`, or `None` when it has none (a
/// resource, stream or future must come from a real implementation).
fn denial(ty: &Type, message: &str) -> Option<Val> {
    Some(match ty {
        Type::Result(result) => Val::Result(Err(match result.err() {
            Some(err) => Some(Box::new(denial(&err, message)?)),
            None => None,
        })),
        Type::Variant(variant) => {
            let cases: Vec<_> = variant.cases().collect();
            let case = DENIAL_CASES
                .iter()
                .find_map(|wanted| cases.iter().find(|c| c.name == *wanted))
                .or_else(|| cases.iter().find(|c| matches!(c.ty, Some(Type::String))))
                .or_else(|| cases.first())?;
            let payload = match &case.ty {
                Some(ty) => Some(Box::new(denial(ty, message)?)),
                None => None,
            };
            Val::Variant(case.name.to_string(), payload)
        }
        Type::Enum(names) => {
            let names: Vec<&str> = names.names().collect();
            let name = DENIAL_CASES
                .iter()
                .find(|wanted| names.contains(wanted))
                .copied()
                .or_else(|| names.first().copied())?;
            Val::Enum(name.to_string())
        }
        Type::String => Val::String(message.to_string()),
        Type::Option(_) => Val::Option(None),
        Type::List(_) => Val::List(Vec::new()),
        Type::Map(_) => Val::Map(Vec::new()),
        Type::Flags(_) => Val::Flags(Vec::new()),
        Type::Record(record) => Val::Record(
            record
                .fields()
                .map(|field| Some((field.name.to_string(), denial(&field.ty, message)?)))
                .collect::<Option<_>>()?,
        ),
        Type::Tuple(tuple) => Val::Tuple(
            tuple
                .types()
                .map(|ty| denial(&ty, message))
                .collect::<Option<_>>()?,
        ),
        Type::Bool => Val::Bool(false),
        Type::S8 => Val::S8(0),
        Type::U8 => Val::U8(0),
        Type::S16 => Val::S16(0),
        Type::U16 => Val::U16(0),
        Type::S32 => Val::S32(0),
        Type::U32 => Val::U32(0),
        Type::S64 => Val::S64(0),
        Type::U64 => Val::U64(0),
        Type::Float32 => Val::Float32(0.0),
        Type::Float64 => Val::Float64(0.0),
        Type::Char => Val::Char('\0'),
        Type::Own(_)
        | Type::Borrow(_)
        | Type::Future(_)
        | Type::Stream(_)
        | Type::ErrorContext
        | Type::FixedLengthList(_) => return None,
    })
}

/// What the linker's semver-compatible lookup treats as one name:
/// `a:b/c@0.2.9` → `a:b/c@0.2`, `a:b/c@1.4.0` → `a:b/c@1`; prereleases
/// and unversioned names stay whole.
fn semver_key(name: &str) -> String {
    let Some((base, version)) = name.split_once('@') else {
        return name.to_string();
    };
    match semver::Version::parse(version) {
        Ok(v) if v.pre.is_empty() && v.major == 0 => format!("{base}@0.{}", v.minor),
        Ok(v) if v.pre.is_empty() => format!("{base}@{}", v.major),
        _ => name.to_string(),
    }
}
