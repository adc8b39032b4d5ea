//! SQLite databases for components (`sqlite_databases = [...]`), and the
//! SQLite files other capabilities (the default key-value store) keep.
//!
//! A [`Database`] is one connection behind a mutex, used only on tokio's
//! blocking pool: SQLite calls block, and nothing blocking runs on the
//! async executor. Serialising a database's statements in one connection
//! means concurrent requests queue rather than fail with "database is
//! locked"; WAL mode with `synchronous = NORMAL` makes every acknowledged
//! write survive a crash of the process (SIGKILL), and a busy timeout covers
//! other processes sharing the file.
//!
//! Results are bounded: a query whose rows exceed [`MAX_RESULT_BYTES`] fails
//! with an error instead of making the host buffer without limit.

mod host;

/// The SQLite binding, for capabilities that keep their own tables.
pub use rusqlite;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use gyre_engine::{AppCapabilities, Capability, Extensions, HostState, PrepareInstance};
use gyre_manifest::{Manifest, RuntimeConfig, SqliteDatabaseConfig};
use rusqlite::types::{Value as SqlValue, ValueRef};
use wasmtime::component::Linker;

/// Largest result one statement may return to a guest, summed over every
/// value of every row (text and blobs by length, numbers as 8 bytes).
pub const MAX_RESULT_BYTES: usize = 64 << 20;

/// Most connections one instance may hold open (Spin's limit).
pub const MAX_CONNECTIONS_PER_INSTANCE: usize = 256;

/// Binds `fermyon:spin/sqlite@2.0.0` and `spin:sqlite/sqlite@3.1.0`.
pub struct SqliteCapability;

impl Capability for SqliteCapability {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn bind(&self, linker: &mut Linker<HostState>) -> Result<()> {
        host::bind(linker)
    }
}

/// A SQL value, as the interfaces carry it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// 64-bit integer.
    Integer(i64),
    /// 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
    /// SQL NULL.
    Null,
}

/// The rows a statement returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryResult {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
    /// `last_insert_rowid()` after the statement.
    pub last_insert_rowid: i64,
    /// Rows changed by the statement.
    pub changes: u64,
}

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The database file is full (SQLITE_FULL).
    #[error("database or disk is full")]
    DatabaseFull,
    /// Any other failure, with SQLite's message.
    #[error("{0}")]
    Io(String),
}

impl From<rusqlite::Error> for SqlError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => SqlError::DatabaseFull,
            _ => SqlError::Io(e.to_string()),
        }
    }
}

/// One SQLite database: a file, or memory.
pub struct Database {
    connection: Arc<Mutex<rusqlite::Connection>>,
    location: String,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("location", &self.location)
            .finish()
    }
}

impl Database {
    /// Opens (creating if needed) the database at `path`, or an in-memory
    /// database for `None`. Parent directories are created.
    pub fn open(path: Option<&Path>, allow_attach_file: bool) -> Result<Self> {
        let connection = match path {
            Some(path) => {
                if let Some(parent) = path.parent()
                    && !parent.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("cannot create {}", parent.display()))?;
                }
                let connection = rusqlite::Connection::open(path)
                    .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
                connection
                    .pragma_update(None, "journal_mode", "WAL")
                    .with_context(|| format!("cannot use WAL mode on {}", path.display()))?;
                connection
                    .pragma_update(None, "synchronous", "NORMAL")
                    .context("cannot set synchronous = NORMAL")?;
                connection
            }
            None => rusqlite::Connection::open_in_memory()
                .context("cannot open an in-memory SQLite database")?,
        };
        connection
            .busy_timeout(Duration::from_secs(5))
            .context("cannot set the busy timeout")?;
        if !allow_attach_file {
            // `ATTACH` would let a guest open any file the host can read.
            connection
                .set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0)
                .context("cannot forbid ATTACH")?;
        }
        Ok(Database {
            connection: Arc::new(Mutex::new(connection)),
            location: path.map_or_else(|| ":memory:".to_string(), |p| p.display().to_string()),
        })
    }

    /// Where the database lives, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn with_connection<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> R + Send + 'static,
    ) -> Result<R, SqlError> {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = match connection.lock() {
                Ok(guard) => guard,
                // A panic while holding the lock leaves the connection
                // usable: SQLite rolls back the open transaction.
                Err(poisoned) => poisoned.into_inner(),
            };
            f(&mut guard)
        })
        .await
        .map_err(|e| SqlError::Io(format!("database task failed: {e}")))
    }

    /// Runs one statement with positional parameters.
    pub async fn execute(&self, sql: String, params: Vec<Value>) -> Result<QueryResult, SqlError> {
        gyre_telemetry::traced("sqlite", "execute", async move {
            self.with_connection(move |connection| execute_blocking(connection, &sql, params))
                .await?
        })
        .await
    }

    /// Runs a script of statements (`--sqlite`).
    pub async fn execute_batch(&self, sql: String) -> Result<(), SqlError> {
        gyre_telemetry::traced("sqlite", "execute-batch", async move {
            self.with_connection(move |connection| connection.execute_batch(&sql))
                .await?
                .map_err(SqlError::from)
        })
        .await
    }
}

fn execute_blocking(
    connection: &mut rusqlite::Connection,
    sql: &str,
    params: Vec<Value>,
) -> Result<QueryResult, SqlError> {
    let mut statement = connection.prepare(sql)?;
    let columns: Vec<String> = statement.column_names().map(str::to_string).collect();
    let params: Vec<SqlValue> = params
        .into_iter()
        .map(|v| match v {
            Value::Integer(i) => SqlValue::Integer(i),
            Value::Real(f) => SqlValue::Real(f),
            Value::Text(s) => SqlValue::Text(s),
            Value::Blob(b) => SqlValue::Blob(b),
            Value::Null => SqlValue::Null,
        })
        .collect();
    let mut rows_out = Vec::new();
    let mut size = 0usize;
    {
        let mut rows = statement.query(rusqlite::params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns.len());
            for index in 0..columns.len() {
                let value = match row.get_ref(index)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(i) => Value::Integer(i),
                    ValueRef::Real(f) => Value::Real(f),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                };
                size += match &value {
                    Value::Text(t) => t.len(),
                    Value::Blob(b) => b.len(),
                    _ => 8,
                };
                values.push(value);
            }
            if size > MAX_RESULT_BYTES {
                return Err(SqlError::Io(format!(
                    "the query result exceeds Gyre's limit of {} MiB; select fewer rows or columns (e.g. with LIMIT)",
                    MAX_RESULT_BYTES >> 20
                )));
            }
            rows_out.push(values);
        }
    }
    drop(statement);
    Ok(QueryResult {
        columns,
        rows: rows_out,
        last_insert_rowid: connection.last_insert_rowid(),
        changes: connection.changes(),
    })
}

/// The databases one component may open.
pub(crate) struct ComponentDatabases {
    allowed: HashSet<String>,
    databases: HashMap<String, Arc<Database>>,
}

/// Per-instance state: what the component may open, and how many
/// connections it holds.
#[derive(Default)]
pub(crate) struct SqliteState {
    pub(crate) grants: Option<Arc<ComponentDatabases>>,
    pub(crate) open_connections: usize,
}

struct PrepareSqlite(Arc<ComponentDatabases>);

impl PrepareInstance for PrepareSqlite {
    fn prepare(&self, extensions: &mut Extensions) {
        extensions.insert(SqliteState {
            grants: Some(self.0.clone()),
            open_connections: 0,
        });
    }
}

/// Why opening a database failed, as the interfaces report it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OpenError {
    AccessDenied,
    NoSuchDatabase,
}

impl SqliteState {
    pub(crate) fn open(&self, label: &str) -> Result<Arc<Database>, OpenError> {
        let Some(grants) = &self.grants else {
            return Err(OpenError::AccessDenied);
        };
        if !grants.allowed.contains(label) {
            return Err(OpenError::AccessDenied);
        }
        grants
            .databases
            .get(label)
            .cloned()
            .ok_or(OpenError::NoSuchDatabase)
    }
}

/// The SQLite databases of one application.
pub struct AppDatabases {
    databases: HashMap<String, Arc<Database>>,
    components: HashMap<String, Arc<ComponentDatabases>>,
}

impl AppDatabases {
    /// Opens every database the runtime config defines and components use
    /// (`default` is `<state_dir>/sqlite_db.db`, or in memory without a state
    /// directory), and checks that every label a component names exists.
    /// `open_default` opens `default` even if no component uses it (for
    /// `--sqlite`).
    pub fn configure(
        manifest: &Manifest,
        runtime_config: &RuntimeConfig,
        state_dir: Option<&Path>,
        open_default: bool,
    ) -> Result<Self> {
        let mut configs: HashMap<String, SqliteDatabaseConfig> = runtime_config
            .sqlite_databases
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        configs
            .entry("default".to_string())
            .or_insert_with(|| SqliteDatabaseConfig {
                path: state_dir.map(|d| d.join("sqlite_db.db")),
                allow_attach_file: false,
            });
        let mut databases: HashMap<String, Arc<Database>> = HashMap::new();
        let mut components = HashMap::new();
        for (id, component) in &manifest.components {
            if component.sqlite_databases.is_empty() {
                continue;
            }
            let mut granted = HashMap::new();
            for label in &component.sqlite_databases {
                let Some(config) = configs.get(label) else {
                    let mut defined: Vec<&String> = configs.keys().collect();
                    defined.sort();
                    let defined: Vec<&str> = defined.iter().map(|s| s.as_str()).collect();
                    anyhow::bail!(
                        "component `{id}` uses SQLite database `{label}`, which is not defined; defined: {}\n  help: add `[sqlite_database.{label}]` with `type = \"spin\"` and a `path` to the runtime config file (--runtime-config-file)",
                        defined.join(", ")
                    );
                };
                let database = match databases.get(label) {
                    Some(db) => db.clone(),
                    None => {
                        let path: Option<PathBuf> = config.path.clone();
                        let db = Arc::new(
                            Database::open(path.as_deref(), config.allow_attach_file)
                                .with_context(|| format!("SQLite database `{label}`"))?,
                        );
                        databases.insert(label.clone(), db.clone());
                        db
                    }
                };
                granted.insert(label.clone(), database);
            }
            components.insert(
                id.clone(),
                Arc::new(ComponentDatabases {
                    allowed: component.sqlite_databases.iter().cloned().collect(),
                    databases: granted,
                }),
            );
        }
        if open_default
            && !databases.contains_key("default")
            && let Some(config) = configs.get("default")
        {
            databases.insert(
                "default".into(),
                Arc::new(Database::open(
                    config.path.as_deref(),
                    config.allow_attach_file,
                )?),
            );
        }
        Ok(AppDatabases {
            databases,
            components,
        })
    }

    /// The default database.
    pub fn default_database(&self) -> Option<&Arc<Database>> {
        self.databases.get("default")
    }

    /// Adds each component's per-instance preparation.
    pub fn register(&self, capabilities: &mut AppCapabilities) {
        for (id, grants) in &self.components {
            capabilities.add(id, Arc::new(PrepareSqlite(grants.clone())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn values_round_trip_with_column_names() -> Result<()> {
        let db = Database::open(None, false)?;
        db.execute_batch("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n)".into())
            .await?;
        let inserted = db
            .execute(
                "INSERT INTO t VALUES (?, ?, ?, ?, ?)".into(),
                vec![
                    Value::Integer(-7),
                    Value::Real(1.5),
                    Value::Text("héllo".into()),
                    Value::Blob(vec![0, 255]),
                    Value::Null,
                ],
            )
            .await?;
        assert_eq!(inserted.changes, 1);
        assert_eq!(inserted.last_insert_rowid, 1);
        assert!(inserted.columns.is_empty());
        let result = db.execute("SELECT * FROM t".into(), vec![]).await?;
        assert_eq!(result.columns, ["i", "r", "s", "b", "n"]);
        assert_eq!(
            result.rows,
            [vec![
                Value::Integer(-7),
                Value::Real(1.5),
                Value::Text("héllo".into()),
                Value::Blob(vec![0, 255]),
                Value::Null,
            ]]
        );
        Ok(())
    }

    #[tokio::test]
    async fn errors_are_reported_not_raised() -> Result<()> {
        let db = Database::open(None, false)?;
        for sql in ["SELEC 1", "SELECT * FROM missing", "SELECT 1; SELECT 2"] {
            let err = db.execute(sql.into(), vec![]).await;
            assert!(matches!(err, Err(SqlError::Io(_))), "{sql}: {err:?}");
        }
        let attach = db
            .execute("ATTACH DATABASE '/etc/passwd' AS p".into(), vec![])
            .await;
        assert!(attach.is_err(), "ATTACH must be refused");
        Ok(())
    }

    #[tokio::test]
    async fn large_results_are_refused() -> Result<()> {
        let db = Database::open(None, false)?;
        // 80 rows of 1 MiB each: more than the 64 MiB limit.
        let result = db
            .execute(
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 80) SELECT zeroblob(1048576) FROM n".into(),
                vec![],
            )
            .await;
        match result {
            Err(SqlError::Io(message)) => assert!(message.contains("limit"), "{message}"),
            other => panic!(
                "expected the size limit, got {:?}",
                other.map(|r| r.rows.len())
            ),
        }
        Ok(())
    }

    #[tokio::test]
    async fn writes_survive_reopening_the_file() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("nested/db.sqlite");
        {
            let db = Database::open(Some(&path), false)?;
            db.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (42);".into())
                .await?;
        }
        let db = Database::open(Some(&path), false)?;
        let result = db.execute("SELECT x FROM t".into(), vec![]).await?;
        assert_eq!(result.rows, [vec![Value::Integer(42)]]);
        Ok(())
    }
}
