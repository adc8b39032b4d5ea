//! Key-value stores for components (`key_value_stores = [...]`).
//!
//! A component may open exactly the labels its manifest lists; any other
//! label, `default` included, is refused with the interface's
//! `access-denied`. Each label is backed by the runtime config's
//! `[key_value_store.LABEL]` (`type = "spin"`: SQLite; `type = "redis"`), and
//! `default` is added when not configured: SQLite at
//! `<state_dir>/sqlite_key_value.db`, or in memory without a state dir.
//! A label a component lists that nothing defines is a load-time error.
//!
//! Shape: [`KeyValueCapability`] binds the interfaces at engine start,
//! [`AppKeyValue::configure`] opens backends per application, and each
//! instance gets the component's grants ([`KvState`]).

mod backend;
mod host;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use gyre_engine::{AppCapabilities, Capability, Extensions, HostState, PrepareInstance};
use gyre_manifest::{KeyValueStoreConfig, Manifest, RuntimeConfig};
use gyre_sqlite::Database;
use wasmtime::component::Linker;

pub use backend::{Backend, KvError, MAX_KEYS_BYTES, RedisStore};

/// Most stores one instance may hold open (Spin's limit).
pub const MAX_OPEN_STORES: usize = 256;

/// Binds `fermyon:spin/key-value@2.0.0`, `spin:key-value/key-value@3.0.0`
/// and `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft2`.
pub struct KeyValueCapability;

impl Capability for KeyValueCapability {
    fn name(&self) -> &'static str {
        "key-value"
    }

    fn bind(&self, linker: &mut Linker<HostState>) -> Result<()> {
        host::bind(linker)
    }
}

/// The stores one component may open.
pub(crate) struct ComponentStores {
    allowed: HashSet<String>,
    stores: HashMap<String, Arc<Backend>>,
}

/// Per-instance state.
#[derive(Default)]
pub(crate) struct KvState {
    pub(crate) grants: Option<Arc<ComponentStores>>,
    pub(crate) open_stores: usize,
}

/// Why a store could not be opened.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OpenError {
    AccessDenied,
    NoSuchStore,
    TableFull,
}

impl KvState {
    pub(crate) fn open(&mut self, label: &str) -> Result<Arc<Backend>, OpenError> {
        let Some(grants) = &self.grants else {
            return Err(OpenError::AccessDenied);
        };
        if !grants.allowed.contains(label) {
            return Err(OpenError::AccessDenied);
        }
        let backend = grants
            .stores
            .get(label)
            .cloned()
            .ok_or(OpenError::NoSuchStore)?;
        if self.open_stores >= MAX_OPEN_STORES {
            return Err(OpenError::TableFull);
        }
        self.open_stores += 1;
        Ok(backend)
    }

    pub(crate) fn closed(&mut self) {
        self.open_stores = self.open_stores.saturating_sub(1);
    }
}

struct PrepareKv(Arc<ComponentStores>);

impl PrepareInstance for PrepareKv {
    fn prepare(&self, extensions: &mut Extensions) {
        extensions.insert(KvState {
            grants: Some(self.0.clone()),
            open_stores: 0,
        });
    }
}

/// The key-value stores of one application.
pub struct AppKeyValue {
    stores: HashMap<String, Arc<Backend>>,
    components: HashMap<String, Arc<ComponentStores>>,
}

impl AppKeyValue {
    /// Opens the backends of every store a component uses and checks that
    /// each label a component lists is defined. `open_default` opens the
    /// `default` store even if no component uses it (for `--key-value`).
    pub async fn configure(
        manifest: &Manifest,
        runtime_config: &RuntimeConfig,
        state_dir: Option<&Path>,
        open_default: bool,
    ) -> Result<Self> {
        let mut configs = runtime_config.key_value_stores.clone();
        if !configs.contains_key("default") {
            configs.insert(
                "default".into(),
                KeyValueStoreConfig::Spin {
                    path: state_dir.map(|d| d.join("sqlite_key_value.db")),
                },
            );
        }
        // SQLite files are shared by the labels stored in them.
        let mut databases: HashMap<Option<std::path::PathBuf>, Arc<Database>> = HashMap::new();
        let mut stores: HashMap<String, Arc<Backend>> = HashMap::new();
        let mut components = HashMap::new();
        let mut wanted: Vec<String> = manifest
            .components
            .values()
            .flat_map(|c| c.key_value_stores.iter().cloned())
            .collect();
        if open_default {
            wanted.push("default".into());
        }
        for (id, component) in &manifest.components {
            for label in &component.key_value_stores {
                if !configs.contains_key(label) {
                    let mut defined: Vec<&str> = configs.keys().map(String::as_str).collect();
                    defined.sort_unstable();
                    anyhow::bail!(
                        "component `{id}` uses key-value store `{label}`, which is not defined; defined: {}\n  help: add `[key_value_store.{label}]` with `type = \"spin\"` or `type = \"redis\"` to the runtime config file (--runtime-config-file)",
                        defined.join(", ")
                    );
                }
            }
        }
        for label in &wanted {
            if stores.contains_key(label) {
                continue;
            }
            let Some(config) = configs.get(label) else {
                continue;
            };
            let backend = match config {
                KeyValueStoreConfig::Spin { path } => {
                    let database = match databases.get(path) {
                        Some(db) => db.clone(),
                        None => {
                            let db = Arc::new(
                                Database::open(path.as_deref(), false)
                                    .with_context(|| format!("key-value store `{label}`"))?,
                            );
                            backend::init_sqlite(&db)
                                .await
                                .with_context(|| format!("key-value store `{label}`"))?;
                            databases.insert(path.clone(), db.clone());
                            db
                        }
                    };
                    Backend::Sqlite {
                        database,
                        store: label.clone(),
                    }
                }
                KeyValueStoreConfig::Redis { url } => Backend::Redis(
                    RedisStore::new(url)
                        .with_context(|| format!("key-value store `{label}`: invalid Redis URL"))?,
                ),
            };
            stores.insert(label.clone(), Arc::new(backend));
        }
        for (id, component) in &manifest.components {
            if component.key_value_stores.is_empty() {
                continue;
            }
            let granted = component
                .key_value_stores
                .iter()
                .filter_map(|label| Some((label.clone(), stores.get(label)?.clone())))
                .collect();
            components.insert(
                id.clone(),
                Arc::new(ComponentStores {
                    allowed: component.key_value_stores.iter().cloned().collect(),
                    stores: granted,
                }),
            );
        }
        Ok(AppKeyValue { stores, components })
    }

    /// The default store (for `--key-value`).
    pub fn default_store(&self) -> Option<&Arc<Backend>> {
        self.stores.get("default")
    }

    /// Adds each component's per-instance preparation.
    pub fn register(&self, capabilities: &mut AppCapabilities) {
        for (id, grants) in &self.components {
            capabilities.add(id, Arc::new(PrepareKv(grants.clone())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(allowed: &[&str], defined: &[&str]) -> Result<KvState> {
        let db = Arc::new(Database::open(None, false)?);
        Ok(KvState {
            grants: Some(Arc::new(ComponentStores {
                allowed: allowed.iter().map(|s| s.to_string()).collect(),
                stores: defined
                    .iter()
                    .map(|l| {
                        (
                            l.to_string(),
                            Arc::new(Backend::Sqlite {
                                database: db.clone(),
                                store: l.to_string(),
                            }),
                        )
                    })
                    .collect(),
            })),
            open_stores: 0,
        })
    }

    #[test]
    fn open_checks_grants_then_definitions() -> Result<()> {
        let mut kv = state(&["default", "other"], &["default"])?;
        assert!(kv.open("default").is_ok());
        assert_eq!(kv.open("secret").err(), Some(OpenError::AccessDenied));
        assert_eq!(kv.open("other").err(), Some(OpenError::NoSuchStore));
        assert_eq!(
            KvState::default().open("default").err(),
            Some(OpenError::AccessDenied),
            "a component granted nothing may open nothing, not even `default`"
        );
        Ok(())
    }

    #[test]
    fn open_stores_are_capped() -> Result<()> {
        let mut kv = state(&["default"], &["default"])?;
        for _ in 0..MAX_OPEN_STORES {
            assert!(kv.open("default").is_ok());
        }
        assert_eq!(kv.open("default").err(), Some(OpenError::TableFull));
        kv.closed();
        assert!(kv.open("default").is_ok());
        Ok(())
    }
}
