//! Component dependencies and HTTP middleware, composed into one component
//! (spin-compat §1.6, §3.9).
//!
//! - A dependency is plugged into the imports its key names: an interface
//!   key (`ns:pkg/iface@1.2.0`) satisfies that import (semver-compatible
//!   versions match), a package key (`ns:pkg@1.2.0`) every import of that
//!   package, a plain key (`greeter`) the plain import of that name. The
//!   dependency's export of the same name is used, or the one `export`
//!   names.
//! - Middleware wraps the result, outermost first: each imports and exports
//!   `wasi:http/handler@0.3.0`; the innermost's import is the primary's
//!   handler and the component exports the outermost's.
//! - Every other import, of the primary and of each dependency and
//!   middleware, becomes an import of the composed component, shared by
//!   name — except a dependency's capability imports it does not inherit,
//!   which are renamed into the `gyre-denied` namespace (see [`crate::grants`]).
//!
//! wac's subtype check runs on every connection, so a dependency whose
//! export does not fit is refused with both names, never run half-linked.

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;
use wac_graph::types::{ItemKind, Package};
use wac_graph::{CompositionGraph, EncodeOptions, NodeId};

use crate::grants::{Inherit, denied_name};

/// The WASI 0.3 HTTP handler middleware imports and exports.
pub const HANDLER: &str = "wasi:http/handler@0.3.0";

/// A component to compose with: a dependency or a middleware.
#[derive(Debug, Clone)]
pub struct Piece {
    /// How messages name it: "dependency `ns:pkg/iface` (deps/lib.wasm)".
    pub label: String,
    /// Its bytes (prepared: a component with final WASI names).
    pub bytes: Arc<[u8]>,
    /// What of the parent's configuration it inherits.
    pub inherit: Inherit,
}

/// `[component.X.dependencies]` entry: `key = …`.
#[derive(Debug, Clone)]
pub struct Plug {
    /// The manifest key: an interface, a package or a plain name.
    pub key: String,
    /// The dependency's export to use (`export = "…"`).
    pub export: Option<String>,
    /// The dependency.
    pub piece: Piece,
}

/// Everything composed with one component.
#[derive(Debug, Clone, Default)]
pub struct Composition {
    /// Its dependencies, in manifest order.
    pub dependencies: Vec<Plug>,
    /// The middleware wrapping it, outermost first.
    pub middleware: Vec<Piece>,
}

/// Why a composition was refused.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// A dependency's key matches no import of the component.
    #[error(
        "{label}: the component imports nothing `{key}` names{}",
        listing("; it imports", imports)
    )]
    NoSuchImport {
        label: String,
        key: String,
        imports: Vec<String>,
    },
    /// A dependency does not export what the import needs.
    #[error(
        "{label}: it was meant to satisfy the import `{import}` but exports no `{export}`{}",
        listing("; it exports", exports)
    )]
    NoSuchExport {
        label: String,
        import: String,
        export: String,
        exports: Vec<String>,
    },
    /// The export's type differs from the import's.
    #[error("{label}: its export `{export}` does not fit the import `{import}`: {reason}")]
    Mismatch {
        label: String,
        import: String,
        export: String,
        reason: String,
    },
    /// A middleware that is not one.
    #[error(
        "{label}: middleware must import and export `{HANDLER}`{}{}",
        listing("; it imports", imports),
        listing("; it exports", exports)
    )]
    NotMiddleware {
        label: String,
        imports: Vec<String>,
        exports: Vec<String>,
    },
    /// The primary component has no handler for middleware to wrap.
    #[error(
        "middleware wraps a `{HANDLER}` handler, and the component exports none{}: build it with a WASI 0.3 SDK (e.g. Python SDK 5)",
        listing("; it exports", exports)
    )]
    NoHandler { exports: Vec<String> },
    /// A piece is not a component wac can read, or the result does not
    /// encode.
    #[error("{label}: {reason}")]
    Invalid { label: String, reason: String },
}

fn listing(prefix: &str, names: &[String]) -> String {
    if names.is_empty() {
        format!("{prefix} nothing")
    } else {
        format!(
            "{prefix} {}",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

impl Composition {
    /// Whether there is nothing to compose.
    pub fn is_empty(&self) -> bool {
        self.dependencies.is_empty() && self.middleware.is_empty()
    }

    /// Feeds everything that decides the composed bytes to `feed`, for a
    /// cache key.
    pub fn fingerprint(&self, feed: &mut dyn FnMut(&[u8])) {
        let mut piece = |kind: &[u8], piece: &Piece, key: &str, export: &str| {
            for part in [
                kind,
                key.as_bytes(),
                export.as_bytes(),
                &[piece.inherit.bits()],
            ] {
                feed(&(part.len() as u64).to_le_bytes());
                feed(part);
            }
            feed(&(piece.bytes.len() as u64).to_le_bytes());
            feed(&piece.bytes);
        };
        for plug in &self.dependencies {
            piece(
                b"dependency",
                &plug.piece,
                &plug.key,
                plug.export.as_deref().unwrap_or(""),
            );
        }
        for middleware in &self.middleware {
            piece(b"middleware", middleware, "", "");
        }
    }

    /// The same composition with every piece's bytes passed through
    /// `prepare` (componentizing, the WASI rc mapping).
    pub fn map_bytes<E>(
        &self,
        mut prepare: impl FnMut(&Piece) -> Result<Arc<[u8]>, E>,
    ) -> Result<Composition, E> {
        let mut map = |piece: &Piece| -> Result<Piece, E> {
            Ok(Piece {
                bytes: prepare(piece)?,
                ..piece.clone()
            })
        };
        Ok(Composition {
            dependencies: self
                .dependencies
                .iter()
                .map(|plug| {
                    Ok(Plug {
                        piece: map(&plug.piece)?,
                        ..plug.clone()
                    })
                })
                .collect::<Result<_, E>>()?,
            middleware: self.middleware.iter().map(map).collect::<Result<_, E>>()?,
        })
    }
}

/// Composes `primary` with `composition`.
pub fn compose(primary: &[u8], composition: &Composition) -> Result<Vec<u8>, ComposeError> {
    let mut graph = Graph::default();
    let primary = graph.add("gyre:primary", "the component", primary)?;

    // Which primary imports each dependency satisfies.
    // An ordered map: the composed bytes must not depend on hashing.
    let mut plugged: IndexMap<String, (usize, String)> = IndexMap::new();
    for (index, plug) in composition.dependencies.iter().enumerate() {
        let matched: Vec<&String> = primary
            .imports
            .keys()
            .filter(|import| key_matches(&plug.key, import))
            .collect();
        if matched.is_empty() {
            return Err(ComposeError::NoSuchImport {
                label: plug.piece.label.clone(),
                key: plug.key.clone(),
                imports: own_imports(&primary.imports),
            });
        }
        for import in matched {
            plugged.insert(
                import.clone(),
                (index, plug.export.clone().unwrap_or_else(|| import.clone())),
            );
        }
    }

    let mut dependencies = Vec::new();
    for (index, plug) in composition.dependencies.iter().enumerate() {
        let added = graph.add(
            &format!("gyre:dependency{index}"),
            &plug.piece.label,
            &plug.piece.bytes,
        )?;
        graph.link_to_host(&added, plug.piece.inherit, &plug.piece.label, &[])?;
        dependencies.push(added);
    }
    let skip: Vec<&str> = plugged.keys().map(String::as_str).collect();
    for import in &skip {
        let (index, wanted) = &plugged[*import];
        let dependency = &dependencies[*index];
        let label = &composition.dependencies[*index].piece.label;
        let export =
            find_export(&dependency.exports, wanted).ok_or_else(|| ComposeError::NoSuchExport {
                label: label.clone(),
                import: import.to_string(),
                export: wanted.clone(),
                exports: dependency.exports.clone(),
            })?;
        let node = graph.export_of(dependency, &export, label)?;
        graph.connect(&primary, import, node, label, &export)?;
    }
    graph.link_to_host(&primary, Inherit::all(), "the component", &skip)?;

    let mut exports: Vec<(String, NodeId)> = Vec::new();
    for name in &primary.exports {
        exports.push((
            name.clone(),
            graph.export_of(&primary, name, "the component")?,
        ));
    }
    if !composition.middleware.is_empty() {
        let Some(position) = exports.iter().position(|(name, _)| name == HANDLER) else {
            return Err(ComposeError::NoHandler {
                exports: primary.exports.clone(),
            });
        };
        let mut handler = exports[position].1;
        for (index, middleware) in composition.middleware.iter().enumerate().rev() {
            let added = graph.add(
                &format!("gyre:middleware{index}"),
                &middleware.label,
                &middleware.bytes,
            )?;
            if !added.imports.contains_key(HANDLER) || !added.exports.iter().any(|e| e == HANDLER) {
                return Err(ComposeError::NotMiddleware {
                    label: middleware.label.clone(),
                    imports: own_imports(&added.imports),
                    exports: added.exports.clone(),
                });
            }
            graph.connect(&added, HANDLER, handler, &middleware.label, HANDLER)?;
            graph.link_to_host(&added, middleware.inherit, &middleware.label, &[HANDLER])?;
            handler = graph.export_of(&added, HANDLER, &middleware.label)?;
        }
        exports[position].1 = handler;
    }
    for (name, node) in exports {
        graph.graph.export(node, &name).map_err(|e| {
            invalid(
                "the composed component",
                format!("cannot export `{name}`: {e}"),
            )
        })?;
    }
    graph
        .graph
        .encode(EncodeOptions {
            validate: true,
            ..EncodeOptions::default()
        })
        .map_err(|e| invalid("the composed component", format!("{e:#}")))
}

/// A package in the graph, instantiated once.
struct Added {
    instance: NodeId,
    imports: IndexMap<String, ItemKind>,
    exports: Vec<String>,
}

#[derive(Default)]
struct Graph {
    graph: CompositionGraph,
    /// The composed component's imports, by name.
    imports: HashMap<String, NodeId>,
}

impl Graph {
    fn add(&mut self, name: &str, label: &str, bytes: &[u8]) -> Result<Added, ComposeError> {
        let package = Package::from_bytes(name, None, bytes.to_vec(), self.graph.types_mut())
            .map_err(|e| invalid(label, format!("not a component Gyre can compose: {e:#}")))?;
        let world = &self.graph.types()[package.ty()];
        // In the component's own order, which has every interface after the
        // ones whose types it uses.
        let imports = world
            .imports
            .iter()
            .map(|(name, kind)| (name.clone(), *kind))
            .collect();
        let exports = world.exports.keys().cloned().collect();
        let package = self
            .graph
            .register_package(package)
            .map_err(|e| invalid(label, format!("{e:#}")))?;
        let instance = self.graph.instantiate(package);
        Ok(Added {
            instance,
            imports,
            exports,
        })
    }

    /// Satisfies every import of `added` but `except` from the composed
    /// component's imports: shared by name, or renamed when `inherit`
    /// denies it.
    fn link_to_host(
        &mut self,
        added: &Added,
        inherit: Inherit,
        label: &str,
        except: &[&str],
    ) -> Result<(), ComposeError> {
        for (name, kind) in &added.imports {
            if except.contains(&name.as_str()) {
                continue;
            }
            let (outer, kind) = if inherit.denies(name) {
                let denied = denied_name(name);
                let kind = self.renamed(*kind, &denied);
                (denied, kind)
            } else {
                (name.clone(), *kind)
            };
            let node = match self.imports.get(&outer) {
                Some(node) => *node,
                None => {
                    let node = self
                        .graph
                        .import(outer.clone(), kind)
                        .map_err(|e| invalid(label, format!("cannot import `{outer}`: {e:#}")))?;
                    self.imports.insert(outer, node);
                    node
                }
            };
            self.connect(added, name, node, label, name)?;
        }
        Ok(())
    }

    /// `kind` as an interface named `name`: wac merges imports of one
    /// interface id into one import, so a denied import needs an id of its
    /// own to stay apart from the parent's.
    fn renamed(&mut self, kind: ItemKind, name: &str) -> ItemKind {
        let ItemKind::Instance(id) = kind else {
            return kind;
        };
        let mut interface = self.graph.types()[id].clone();
        interface.id = Some(name.to_string());
        ItemKind::Instance(self.graph.types_mut().add_interface(interface))
    }

    fn export_of(
        &mut self,
        added: &Added,
        export: &str,
        label: &str,
    ) -> Result<NodeId, ComposeError> {
        self.graph
            .alias_instance_export(added.instance, export)
            .map_err(|e| invalid(label, format!("cannot use its export `{export}`: {e:#}")))
    }

    fn connect(
        &mut self,
        added: &Added,
        import: &str,
        node: NodeId,
        label: &str,
        export: &str,
    ) -> Result<(), ComposeError> {
        self.graph
            .set_instantiation_argument(added.instance, import, node)
            .map_err(|e| ComposeError::Mismatch {
                label: label.to_string(),
                import: import.to_string(),
                export: export.to_string(),
                reason: format!("{e:#}"),
            })
    }
}

fn invalid(label: &str, reason: String) -> ComposeError {
    ComposeError::Invalid {
        label: label.to_string(),
        reason,
    }
}

/// The imports worth listing in an error: not the WASI and Spin ones every
/// component has.
fn own_imports(imports: &IndexMap<String, ItemKind>) -> Vec<String> {
    imports
        .keys()
        .filter(|name| {
            !["wasi:", "fermyon:", "spin:"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
        })
        .cloned()
        .collect()
}

/// Splits `ns:pkg/iface@1.2.3` into `ns:pkg/iface` and `1.2.3`.
fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((base, version)) => (base, Some(version)),
        None => (name, None),
    }
}

/// Whether two versions are semver-compatible: the same major (or, below
/// 1.0, the same minor); a prerelease only matches itself.
fn compatible(a: &str, b: &str) -> bool {
    let (Ok(a), Ok(b)) = (semver::Version::parse(a), semver::Version::parse(b)) else {
        return a == b;
    };
    if !a.pre.is_empty() || !b.pre.is_empty() {
        return a == b;
    }
    match (a.major, b.major) {
        (0, 0) => a.minor == b.minor,
        (x, y) => x == y,
    }
}

fn versions_match(key: Option<&str>, import: Option<&str>) -> bool {
    match (key, import) {
        (None, _) => true,
        (Some(key), Some(import)) => compatible(key, import),
        (Some(_), None) => false,
    }
}

/// Whether the dependency key `key` names the import `import`.
fn key_matches(key: &str, import: &str) -> bool {
    if !key.contains(':') {
        return key == import;
    }
    let (key_base, key_version) = split_version(key);
    let (import_base, import_version) = split_version(import);
    let names_it = if key_base.contains('/') {
        key_base == import_base
    } else {
        import_base
            .strip_prefix(key_base)
            .is_some_and(|rest| rest.starts_with('/'))
    };
    names_it && versions_match(key_version, import_version)
}

/// The export of `exports` that `wanted` names: exactly, else the one of the
/// same interface with a compatible version.
fn find_export(exports: &[String], wanted: &str) -> Option<String> {
    if let Some(exact) = exports.iter().find(|e| *e == wanted) {
        return Some(exact.clone());
    }
    let (base, version) = split_version(wanted);
    exports
        .iter()
        .find(|export| {
            let (export_base, export_version) = split_version(export);
            export_base == base
                && match (version, export_version) {
                    (Some(a), Some(b)) => compatible(a, b),
                    _ => true,
                }
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_imports() {
        let cases = [
            ("ns:pkg/iface@1.2.0", "ns:pkg/iface@1.4.1", true),
            ("ns:pkg/iface@1.2.0", "ns:pkg/iface@2.0.0", false),
            ("ns:pkg/iface@0.1.0", "ns:pkg/iface@0.1.9", true),
            ("ns:pkg/iface@0.1.0", "ns:pkg/iface@0.2.0", false),
            ("ns:pkg/iface@0.1.0-rc1", "ns:pkg/iface@0.1.0-rc2", false),
            ("ns:pkg/iface", "ns:pkg/iface@3.0.0", true),
            ("ns:pkg@1.0.0", "ns:pkg/a@1.1.0", true),
            ("ns:pkg@1.0.0", "ns:pkgs/a@1.1.0", false),
            ("ns:pkg", "ns:pkg/b", true),
            ("greeter", "greeter", true),
            ("greeter", "ns:greeter/greeter", false),
        ];
        for (key, import, want) in cases {
            assert_eq!(key_matches(key, import), want, "{key} vs {import}");
        }
    }

    #[test]
    fn exports_are_found_by_name_then_by_compatible_version() {
        let exports = vec!["ns:pkg/iface@1.3.0".to_string(), "other".to_string()];
        assert_eq!(
            find_export(&exports, "ns:pkg/iface@1.0.0").as_deref(),
            Some("ns:pkg/iface@1.3.0")
        );
        assert_eq!(find_export(&exports, "other").as_deref(), Some("other"));
        assert_eq!(find_export(&exports, "ns:pkg/iface@2.0.0"), None);
    }
}
