//! Key-value backends: SQLite (Spin's `type = "spin"`, the default) and
//! Redis. Every operation any interface version needs is here once; the
//! interface bindings only translate types and errors.
//!
//! Counters (`increment`) are stored as decimal ASCII text, as Redis's
//! `INCRBY` does, so a value reads the same whichever backend holds it.

use std::sync::Arc;

use gyre_sqlite::Database;
use redis::AsyncCommands as _;
use tokio::sync::OnceCell;

/// Largest total size of the keys `get-keys` returns at once.
pub const MAX_KEYS_BYTES: usize = 64 << 20;

/// A backend failure, shown to the guest as `other(message)`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KvError(pub String);

impl From<gyre_sqlite::SqlError> for KvError {
    fn from(e: gyre_sqlite::SqlError) -> Self {
        KvError(e.to_string())
    }
}

impl From<gyre_sqlite::rusqlite::Error> for KvError {
    fn from(e: gyre_sqlite::rusqlite::Error) -> Self {
        KvError(e.to_string())
    }
}

impl From<redis::RedisError> for KvError {
    fn from(e: redis::RedisError) -> Self {
        KvError(format!("redis: {e}"))
    }
}

type KvResult<T> = Result<T, KvError>;

/// One store: a label's slice of a backend.
pub enum Backend {
    /// Rows of `spin_key_value` whose `store` column is the label.
    Sqlite {
        /// The database file (shared by every label stored in it).
        database: Arc<Database>,
        /// The label, which namespaces keys.
        store: String,
    },
    /// A Redis server; keys are used as they are.
    Redis(RedisStore),
}

/// A Redis store, connected on first use and reconnecting by itself.
pub struct RedisStore {
    client: redis::Client,
    connection: OnceCell<redis::aio::ConnectionManager>,
}

impl RedisStore {
    /// A store at `url`; nothing is connected yet.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        Ok(RedisStore {
            client: redis::Client::open(url)?,
            connection: OnceCell::new(),
        })
    }

    async fn connection(&self) -> KvResult<redis::aio::ConnectionManager> {
        self.connection
            .get_or_try_init(|| async {
                redis::aio::ConnectionManager::new(self.client.clone()).await
            })
            .await
            .cloned()
            .map_err(KvError::from)
    }
}

/// Creates Spin's key-value table in `database`.
pub(crate) async fn init_sqlite(database: &Database) -> anyhow::Result<()> {
    database
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            )"
            .into(),
        )
        .await?;
    Ok(())
}

const SWAP_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
else
  if current then return 0 end
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
";

fn parse_counter(value: Option<Vec<u8>>) -> KvResult<i64> {
    match value {
        None => Ok(0),
        Some(bytes) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or_else(|| KvError("the value is not an integer counter".into())),
    }
}

impl Backend {
    /// The value of `key`.
    pub async fn get(&self, key: String) -> KvResult<Option<Vec<u8>>> {
        gyre_telemetry::traced("key-value", "get", async move {
            match self {
                Backend::Sqlite { database, store } => {
                    sqlite(database, store, move |c, store| sqlite_get(c, store, &key)).await
                }
                Backend::Redis(redis) => Ok(redis.connection().await?.get(key).await?),
            }
        })
        .await
    }

    /// Sets `key` to `value`, replacing any earlier value.
    pub async fn set(&self, key: String, value: Vec<u8>) -> KvResult<()> {
        gyre_telemetry::traced("key-value", "set", async move {
            match self {
                Backend::Sqlite { database, store } => {
                    sqlite(database, store, move |c, store| {
                        sqlite_set(c, store, &key, &value)
                    })
                    .await
                }
                Backend::Redis(redis) => Ok(redis.connection().await?.set(key, value).await?),
            }
        })
        .await
    }

    /// Deletes `key`; deleting a missing key is not an error.
    pub async fn delete(&self, key: String) -> KvResult<()> {
        gyre_telemetry::traced("key-value", "delete", async move {
            self.delete_many(vec![key]).await
        })
        .await
    }

    /// Whether `key` has a value.
    pub async fn exists(&self, key: String) -> KvResult<bool> {
        gyre_telemetry::traced("key-value", "exists", async move {
            match self {
                Backend::Sqlite { database, store } => {
                    sqlite(database, store, move |c, store| {
                        c.query_row(
                        "SELECT EXISTS (SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2)",
                        (store, &key),
                        |row| row.get::<_, bool>(0),
                    )
                    .map_err(KvError::from)
                    })
                    .await
                }
                Backend::Redis(redis) => Ok(redis.connection().await?.exists(key).await?),
            }
        })
        .await
    }

    /// Every key, bounded by [`MAX_KEYS_BYTES`].
    pub async fn keys(&self) -> KvResult<Vec<String>> {
        gyre_telemetry::traced("key-value", "keys", async move {
            let too_many = || {
                KvError(format!(
                    "the keys exceed Gyre's limit of {} MiB in one listing",
                    MAX_KEYS_BYTES >> 20
                ))
            };
            match self {
                Backend::Sqlite { database, store } => {
                    sqlite(database, store, move |c, store| {
                        let mut statement =
                            c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?;
                        let mut rows = statement.query([store])?;
                        let mut keys = Vec::new();
                        let mut size = 0;
                        while let Some(row) = rows.next()? {
                            let key: String = row.get(0)?;
                            size += key.len();
                            if size > MAX_KEYS_BYTES {
                                return Err(too_many());
                            }
                            keys.push(key);
                        }
                        Ok(keys)
                    })
                    .await
                }
                Backend::Redis(redis) => {
                    let mut connection = redis.connection().await?;
                    let mut cursor: u64 = 0;
                    let mut keys = Vec::new();
                    let mut size = 0;
                    loop {
                        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("COUNT")
                            .arg(1000)
                            .query_async(&mut connection)
                            .await?;
                        for key in batch {
                            size += key.len();
                            if size > MAX_KEYS_BYTES {
                                return Err(too_many());
                            }
                            keys.push(key);
                        }
                        if next == 0 {
                            break;
                        }
                        cursor = next;
                    }
                    Ok(keys)
                }
            }
        })
        .await
    }

    /// Adds `delta` to the counter at `key` (missing counts as 0) and
    /// returns the new value, atomically.
    pub async fn increment(&self, key: String, delta: i64) -> KvResult<i64> {
        gyre_telemetry::traced("key-value", "increment", async move {
            match self {
                Backend::Sqlite { database, store } => {
                    sqlite(database, store, move |c, store| {
                        let tx = c.transaction()?;
                        let current = parse_counter(sqlite_get(&tx, store, &key)?)?;
                        let next = current
                            .checked_add(delta)
                            .ok_or_else(|| KvError("the counter would overflow".into()))?;
                        sqlite_set(&tx, store, &key, next.to_string().as_bytes())?;
                        tx.commit()?;
                        Ok(next)
                    })
                    .await
                }
                Backend::Redis(redis) => Ok(redis.connection().await?.incr(key, delta).await?),
            }
        })
        .await
    }

    /// Sets `key` to `value` only if it still holds `expected` (`None`: only
    /// if it is absent). Returns whether the value was swapped.
    pub async fn compare_and_swap(
        &self,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> KvResult<bool> {
        gyre_telemetry::traced("key-value", "compare-and-swap", async move {
            match self {
                Backend::Sqlite { database, store } => {
                    sqlite(database, store, move |c, store| {
                        let tx = c.transaction()?;
                        if sqlite_get(&tx, store, &key)? != expected {
                            return Ok(false);
                        }
                        sqlite_set(&tx, store, &key, &value)?;
                        tx.commit()?;
                        Ok(true)
                    })
                    .await
                }
                Backend::Redis(redis) => {
                    let mut connection = redis.connection().await?;
                    let (present, expected) = match expected {
                        Some(bytes) => ("1", bytes),
                        None => ("0", Vec::new()),
                    };
                    let swapped: i64 = redis::Script::new(SWAP_SCRIPT)
                        .key(key)
                        .arg(present)
                        .arg(expected)
                        .arg(value)
                        .invoke_async(&mut connection)
                        .await?;
                    Ok(swapped == 1)
                }
            }
        })
        .await
    }

    /// The values of `keys`, in order.
    pub async fn get_many(&self, keys: Vec<String>) -> KvResult<Vec<(String, Option<Vec<u8>>)>> {
        gyre_telemetry::traced("key-value", "get-many", async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            match self {
                Backend::Sqlite { database, store } => {
                    sqlite(
                        database,
                        store,
                        move |c, store| -> KvResult<Vec<(String, Option<Vec<u8>>)>> {
                            let mut out = Vec::with_capacity(keys.len());
                            for key in keys {
                                let value = sqlite_get(c, store, &key)?;
                                out.push((key, value));
                            }
                            Ok(out)
                        },
                    )
                    .await
                }
                Backend::Redis(redis) => {
                    let values: Vec<Option<Vec<u8>>> =
                        redis.connection().await?.mget(&keys).await?;
                    Ok(keys.into_iter().zip(values).collect())
                }
            }
        })
        .await
    }

    /// Sets every pair, in one transaction where the backend has them.
    pub async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> KvResult<()> {
        gyre_telemetry::traced("key-value", "set-many", async move {
            if pairs.is_empty() {
                return Ok(());
            }
            match self {
                Backend::Sqlite { database, store } => {
                    sqlite(database, store, move |c, store| {
                        let tx = c.transaction()?;
                        for (key, value) in &pairs {
                            sqlite_set(&tx, store, key, value)?;
                        }
                        tx.commit()?;
                        Ok(())
                    })
                    .await
                }
                Backend::Redis(redis) => Ok(redis.connection().await?.mset(&pairs).await?),
            }
        })
        .await
    }

    /// Deletes every key; missing keys are not an error.
    pub async fn delete_many(&self, keys: Vec<String>) -> KvResult<()> {
        gyre_telemetry::traced("key-value", "delete-many", async move {
            if keys.is_empty() {
                return Ok(());
            }
            match self {
                Backend::Sqlite { database, store } => {
                    sqlite(database, store, move |c, store| {
                        let tx = c.transaction()?;
                        {
                            let mut statement = tx.prepare_cached(
                                "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2",
                            )?;
                            for key in &keys {
                                statement.execute((store, key))?;
                            }
                        }
                        tx.commit()?;
                        Ok(())
                    })
                    .await
                }
                Backend::Redis(redis) => Ok(redis.connection().await?.del(keys).await?),
            }
        })
        .await
    }
}

/// Runs `f` with the store's database connection and label, on the
/// blocking pool.
async fn sqlite<R: Send + 'static>(
    database: &Arc<Database>,
    store: &str,
    f: impl FnOnce(&mut gyre_sqlite::rusqlite::Connection, &str) -> KvResult<R> + Send + 'static,
) -> KvResult<R> {
    let store = store.to_string();
    database.with_connection(move |c| f(c, &store)).await?
}

fn sqlite_get(
    c: &gyre_sqlite::rusqlite::Connection,
    store: &str,
    key: &str,
) -> KvResult<Option<Vec<u8>>> {
    use gyre_sqlite::rusqlite::OptionalExtension as _;
    Ok(
        c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
            .query_row((store, key), |row| row.get::<_, Vec<u8>>(0))
            .optional()?,
    )
}

fn sqlite_set(
    c: &gyre_sqlite::rusqlite::Connection,
    store: &str,
    key: &str,
    value: &[u8],
) -> KvResult<()> {
    c.prepare_cached(
        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
    )?
    .execute((store, key, value))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite_store(label: &str, db: &Arc<Database>) -> Backend {
        Backend::Sqlite {
            database: db.clone(),
            store: label.into(),
        }
    }

    #[tokio::test]
    async fn every_operation_on_sqlite() -> anyhow::Result<()> {
        let db = Arc::new(Database::open(None, false)?);
        init_sqlite(&db).await?;
        let kv = sqlite_store("default", &db).await;
        let other = sqlite_store("other", &db).await;

        assert_eq!(kv.get("a".into()).await?, None);
        kv.set("a".into(), b"1".to_vec()).await?;
        kv.set("a".into(), b"2".to_vec()).await?;
        assert_eq!(kv.get("a".into()).await?, Some(b"2".to_vec()));
        assert!(kv.exists("a".into()).await?);
        assert!(
            !other.exists("a".into()).await?,
            "labels are separate stores"
        );
        kv.delete("missing".into()).await?;

        assert_eq!(kv.increment("n".into(), 5).await?, 5);
        assert_eq!(kv.increment("n".into(), -2).await?, 3);
        assert_eq!(kv.get("n".into()).await?, Some(b"3".to_vec()));
        assert!(kv.increment("a".into(), i64::MAX).await.is_err());

        assert!(
            !kv.compare_and_swap("a".into(), Some(b"9".to_vec()), b"x".to_vec())
                .await?
        );
        assert!(
            kv.compare_and_swap("a".into(), Some(b"2".to_vec()), b"x".to_vec())
                .await?
        );
        assert!(
            kv.compare_and_swap("new".into(), None, b"y".to_vec())
                .await?
        );
        assert!(
            !kv.compare_and_swap("new".into(), None, b"z".to_vec())
                .await?
        );

        kv.set_many(vec![
            ("b".into(), b"B".to_vec()),
            ("c".into(), b"C".to_vec()),
        ])
        .await?;
        assert_eq!(
            kv.get_many(vec!["b".into(), "zz".into()]).await?,
            vec![("b".into(), Some(b"B".to_vec())), ("zz".into(), None)]
        );
        kv.delete_many(vec!["b".into(), "c".into()]).await?;
        let mut keys = kv.keys().await?;
        keys.sort();
        assert_eq!(keys, ["a", "n", "new"]);
        assert!(other.keys().await?.is_empty());
        Ok(())
    }
}
