//! Outbound PostgreSQL (`fermyon:spin/postgres@2.0.0`,
//! `spin:postgres/postgres@3.0.0`, `spin:postgres/postgres@4.2.0`, which
//! also serves components built against 4.0 and 4.1).
//!
//! A component may reach only the servers its `allowed_outbound_hosts`
//! allows: every host:port of the connection string (a URL or
//! `key=value` pairs) is checked as `postgres://host:port`, and any other
//! is the interface's `connection-failed("address … is not permitted")`, as
//! in Spin. Unix sockets are refused: they would bypass the allow-list.
//!
//! Connections are pooled per connection string across every instance of
//! the app, so a request pays no TCP or authentication setup; a connection
//! goes back to the pool when the guest drops it, after a `ROLLBACK` so
//! that a transaction a guest left open never leaks into the next one.
//! Statements are prepared once per pooled connection. Results are bounded
//! by [`MAX_RESULT_BYTES`].

mod host;
mod values;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use gyre_engine::{AppCapabilities, Capability, Granted, HostState, PrepareGranted};
use gyre_outbound_networking::AllowedHosts;
use wasmtime::component::Linker;

/// Largest result one query may return to a guest, summed over every value.
pub const MAX_RESULT_BYTES: usize = 64 << 20;

/// Most connections one instance may hold open.
pub const MAX_CONNECTIONS_PER_INSTANCE: usize = 64;

/// Pooled connections per connection string, unless the runtime config's
/// `[outbound_pg] max_connections` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// How long opening a connection may take (TCP, TLS, authentication), and
/// how long a guest waits for a pooled connection when all are in use.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds the PostgreSQL interfaces.
pub struct PostgresCapability;

impl Capability for PostgresCapability {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn bind(&self, linker: &mut Linker<HostState>) -> Result<()> {
        host::bind(linker)
    }
}

/// Why a connection could not be opened or a statement failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PgError {
    #[error("{0}")]
    ConnectionFailed(String),
    #[error("{0}")]
    BadParameter(String),
    #[error("{0}")]
    Query(#[from] tokio_postgres::Error),
    #[error("{0}")]
    ValueConversion(String),
    #[error("{0}")]
    Other(String),
}

/// Where a pool connects: the connection string and any extra CA root.
#[derive(Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    address: String,
    ca_root: Option<String>,
}

/// The app's connection pools, one per connection string.
pub(crate) struct Pools {
    pools: Mutex<HashMap<PoolKey, Pool>>,
    max_connections: usize,
}

impl Pools {
    fn new(max_connections: usize) -> Self {
        Pools {
            pools: Mutex::new(HashMap::new()),
            max_connections: max_connections.max(1),
        }
    }

    /// Connections held by every pool.
    fn size(&self) -> usize {
        self.pools
            .lock()
            .map(|pools| pools.values().map(|p| p.status().size).sum())
            .unwrap_or(0)
    }

    /// A connection to `address` from its pool (created on first use).
    async fn get(
        &self,
        address: &str,
        config: &tokio_postgres::Config,
        ca_root: Option<&str>,
    ) -> Result<deadpool_postgres::Object, PgError> {
        let key = PoolKey {
            address: address.to_string(),
            ca_root: ca_root.map(str::to_string),
        };
        let pool = {
            let mut pools = self
                .pools
                .lock()
                .map_err(|_| PgError::Other("connection pool poisoned".into()))?;
            match pools.get(&key) {
                Some(pool) => pool.clone(),
                None => {
                    let pool = self.build(config, ca_root)?;
                    pools.insert(key, pool.clone());
                    pool
                }
            }
        };
        pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => {
                PgError::ConnectionFailed(connection_error_text(&e))
            }
            // Waiting for a free slot is the pool being full; a create or
            // recycle timeout is the server not answering.
            deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
                PgError::ConnectionFailed(format!(
                    "all {} connections to this database are in use (raise `[outbound_pg] max_connections` in the runtime config)",
                    self.max_connections
                ))
            }
            deadpool_postgres::PoolError::Timeout(_) => PgError::ConnectionFailed(format!(
                "the server did not answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            )),
            other => PgError::ConnectionFailed(other.to_string()),
        })
    }

    fn build(
        &self,
        config: &tokio_postgres::Config,
        ca_root: Option<&str>,
    ) -> Result<Pool, PgError> {
        let mut config = config.clone();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Custom("ROLLBACK".into()),
        };
        let manager = if config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
            Manager::from_config(config, tokio_postgres::NoTls, manager_config)
        } else {
            Manager::from_config(config, tls_connector(ca_root)?, manager_config)
        };
        Pool::builder(manager)
            .max_size(self.max_connections)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT * 2))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| PgError::Other(format!("cannot create a connection pool: {e}")))
    }
}

/// The server's message, with its cause (tokio-postgres keeps the
/// interesting part, e.g. "Connection refused", in the source).
fn connection_error_text(e: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    match e.source() {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}

/// TLS as Spin does it: used when the server offers it (`sslmode=prefer`,
/// the default) or demanded (`sslmode=require`), verified against the
/// WebPKI roots plus the CA root a `connection-builder` set.
fn tls_connector(
    ca_root: Option<&str>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = ca_root {
        for cert in rustls_pemfile::certs(&mut pem.as_bytes()) {
            let cert = cert.map_err(|e| PgError::BadParameter(format!("invalid CA root: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| PgError::BadParameter(format!("invalid CA root: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Other(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Parses a connection string and checks each of its hosts against the
/// allow-list.
pub(crate) fn check_address(
    address: &str,
    allowed: &AllowedHosts,
) -> Result<tokio_postgres::Config, PgError> {
    let config = tokio_postgres::Config::from_str(address)
        .map_err(|e| PgError::ConnectionFailed(format!("invalid connection string: {e}")))?;
    let ports = config.get_ports();
    if config.get_hosts().is_empty() {
        return Err(PgError::ConnectionFailed(
            "the connection string names no host".into(),
        ));
    }
    for (i, host) in config.get_hosts().iter().enumerate() {
        let host = match host {
            tokio_postgres::config::Host::Tcp(host) => host,
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(_) => {
                return Err(PgError::ConnectionFailed(
                    "Unix domain sockets are not supported".into(),
                ));
            }
        };
        let port = match ports.len() {
            0 => 5432,
            1 => ports[0],
            _ => ports.get(i).copied().unwrap_or(5432),
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let url = format!("postgres://{host}:{port}");
        if !allowed.allows_url(&url) {
            return Err(PgError::ConnectionFailed(format!(
                "address {url} is not permitted"
            )));
        }
    }
    Ok(config)
}

/// What one component may reach.
pub(crate) struct ComponentPostgres {
    pub(crate) id: String,
    pub(crate) allowed: Arc<AllowedHosts>,
    pub(crate) pools: Arc<Pools>,
}

/// Per-instance state: the component's grant and its open connections.
pub(crate) type PostgresState = Granted<ComponentPostgres>;

/// Outbound PostgreSQL for one application.
pub struct AppPostgres {
    components: Vec<Arc<ComponentPostgres>>,
}

impl AppPostgres {
    /// Every component that lists any outbound host may try PostgreSQL; the
    /// address decides. `max_connections` bounds each pool.
    pub fn new(allow_lists: &HashMap<String, Arc<AllowedHosts>>, max_connections: usize) -> Self {
        let pools = Arc::new(Pools::new(max_connections));
        let weak = Arc::downgrade(&pools);
        gyre_telemetry::metrics().register_pool(gyre_telemetry::Outbound::Postgres, move || {
            weak.upgrade().map(|pools| pools.size())
        });
        AppPostgres {
            components: allow_lists
                .iter()
                .map(|(id, allowed)| {
                    Arc::new(ComponentPostgres {
                        id: id.clone(),
                        allowed: allowed.clone(),
                        pools: pools.clone(),
                    })
                })
                .collect(),
        }
    }

    /// Adds each component's per-instance preparation.
    pub fn register(&self, capabilities: &mut AppCapabilities) {
        for component in &self.components {
            capabilities.add(&component.id, Arc::new(PrepareGranted(component.clone())));
        }
    }
}
