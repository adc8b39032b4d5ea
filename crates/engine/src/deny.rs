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

use anyhow::Result;
use gyre_compose::grants::{DENIED_NAMESPACE, undenied};
use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{Component, Linker, Val};

use crate::host::HostState;
use crate::stubs::define_stand_in;

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
        define_stand_in(linker, engine, name, &item, true, move |qualified, ty| {
            ty.results()
                .map(|result| {
                    denial(&result, &message)
                        .ok_or_else(|| wasmtime::format_err!("{message} (called `{qualified}`)"))
                })
                .collect()
        })?;
        denied.push(original);
    }
    Ok(denied)
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
