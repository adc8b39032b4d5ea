//! Outbound MySQL and MariaDB (`fermyon:spin/mysql@2.0.0`,
//! `spin:mysql/mysql@3.0.0`).
//!
//! A component may reach only the servers its `allowed_outbound_hosts`
//! allows (scheme `mysql`, default port 3306); any other address is the
//! interface's `connection-failed("address <url> is not permitted")`, as in
//! Spin. Connections are pooled per address across every instance of the
//! app; a connection is reset (`COM_RESET_CONNECTION`: open transactions
//! rolled back, session state cleared) before the next guest gets it.
//! Statements run as prepared statements, so values come back typed.
//! Results are bounded by [`MAX_RESULT_BYTES`].

mod host;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use gyre_engine::{AppCapabilities, Capability, Granted, HostState, PrepareGranted};
use gyre_outbound_networking::AllowedHosts;
use wasmtime::component::Linker;

/// Largest result one query may return to a guest, summed over every value.
pub const MAX_RESULT_BYTES: usize = 64 << 20;

/// Most connections one instance may hold open.
pub const MAX_CONNECTIONS_PER_INSTANCE: usize = 64;

/// Pooled connections per address, unless the runtime config's
/// `[outbound_mysql] max_connections` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds the MySQL interfaces.
pub struct MysqlCapability;

impl Capability for MysqlCapability {
    fn name(&self) -> &'static str {
        "mysql"
    }

    fn bind(&self, linker: &mut Linker<HostState>) -> Result<()> {
        host::bind(linker)
    }
}

/// Why a connection could not be opened or a statement failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MysqlError {
    #[error("{0}")]
    ConnectionFailed(String),
    #[error("{0}")]
    BadParameter(String),
    #[error("{0}")]
    QueryFailed(String),
    #[error("{0}")]
    Other(String),
}

impl From<mysql_async::Error> for MysqlError {
    fn from(e: mysql_async::Error) -> Self {
        use mysql_async::{DriverError, Error};
        match e {
            Error::Server(e) => MysqlError::QueryFailed(e.to_string()),
            Error::Driver(DriverError::StmtParamsMismatch { .. }) => {
                MysqlError::BadParameter(e.to_string())
            }
            Error::Io(_) | Error::Driver(_) => MysqlError::ConnectionFailed(e.to_string()),
            other => MysqlError::Other(other.to_string()),
        }
    }
}

/// The app's connection pools, one per address.
pub(crate) struct Pools {
    pools: Mutex<HashMap<String, mysql_async::Pool>>,
    max_connections: usize,
}

impl Pools {
    async fn get(&self, address: &str) -> Result<mysql_async::Conn, MysqlError> {
        let pool = {
            let mut pools = self
                .pools
                .lock()
                .map_err(|_| MysqlError::Other("connection pool poisoned".into()))?;
            match pools.get(address) {
                Some(pool) => pool.clone(),
                None => {
                    let opts = mysql_async::Opts::from_url(address).map_err(|e| {
                        MysqlError::ConnectionFailed(format!("invalid address: {e}"))
                    })?;
                    let constraints =
                        mysql_async::PoolConstraints::new(0, self.max_connections.max(1))
                            .ok_or_else(|| MysqlError::Other("invalid pool size".into()))?;
                    let opts = mysql_async::OptsBuilder::from_opts(opts).pool_opts(
                        mysql_async::PoolOpts::default()
                            .with_constraints(constraints)
                            .with_reset_connection(true),
                    );
                    let pool = mysql_async::Pool::new(opts);
                    pools.insert(address.to_string(), pool.clone());
                    pool
                }
            }
        };
        match tokio::time::timeout(CONNECT_TIMEOUT * 2, pool.get_conn()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(MysqlError::ConnectionFailed(e.to_string())),
            Err(_) => Err(MysqlError::ConnectionFailed(format!(
                "no connection within {} s (the server is unreachable, or all {} pooled connections are in use: see `[outbound_mysql] max_connections`)",
                (CONNECT_TIMEOUT * 2).as_secs(),
                self.max_connections
            ))),
        }
    }
}

/// What one component may reach.
pub(crate) struct ComponentMysql {
    pub(crate) id: String,
    pub(crate) allowed: Arc<AllowedHosts>,
    pub(crate) pools: Arc<Pools>,
}

/// Per-instance state: the component's grant and its open connections.
pub(crate) type MysqlState = Granted<ComponentMysql>;

/// Outbound MySQL for one application.
pub struct AppMysql {
    components: Vec<Arc<ComponentMysql>>,
}

impl AppMysql {
    /// Every component that lists any outbound host may try MySQL; the
    /// address decides. `max_connections` bounds each pool.
    pub fn new(allow_lists: &HashMap<String, Arc<AllowedHosts>>, max_connections: usize) -> Self {
        let pools = Arc::new(Pools {
            pools: Mutex::new(HashMap::new()),
            max_connections,
        });
        AppMysql {
            components: allow_lists
                .iter()
                .map(|(id, allowed)| {
                    Arc::new(ComponentMysql {
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
