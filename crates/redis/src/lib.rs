//! Outbound Redis (`fermyon:spin/redis@2.0.0`, `spin:redis/redis@3.0.0`).
//!
//! A component may open only addresses its `allowed_outbound_hosts` allows
//! (scheme `redis`, default port 6379); any other address is the
//! interface's `invalid-address`, as in Spin, and the log names the
//! component and the address. Connections are shared per address across
//! every instance of the app and reconnect by themselves, so a request pays
//! no connection setup and a Redis restart heals without a Gyre restart.

mod host;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use gyre_engine::{AppCapabilities, Capability, Granted, HostState, PrepareGranted};
use gyre_outbound_networking::AllowedHosts;
use wasmtime::component::Linker;

/// How long a first connection to an address may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long one command may wait for its reply.
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Most connections one instance may hold open.
pub const MAX_CONNECTIONS_PER_INSTANCE: usize = 64;

/// Binds `fermyon:spin/redis@2.0.0` and `spin:redis/redis@3.0.0`.
pub struct RedisCapability;

impl Capability for RedisCapability {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn bind(&self, linker: &mut Linker<HostState>) -> Result<()> {
        host::bind(linker)
    }
}

/// Connections of one application, one per address, created on first use.
#[derive(Default)]
pub(crate) struct ConnectionPool {
    connections: Mutex<HashMap<String, redis::aio::ConnectionManager>>,
}

impl ConnectionPool {
    /// Connections held (one per address).
    fn size(&self) -> usize {
        self.connections.lock().map(|map| map.len()).unwrap_or(0)
    }

    async fn get(&self, address: &str) -> Result<redis::aio::ConnectionManager, redis::RedisError> {
        if let Ok(map) = self.connections.lock()
            && let Some(connection) = map.get(address)
        {
            return Ok(connection.clone());
        }
        let client = redis::Client::open(address)?;
        // Fail a first connection fast (the guest is waiting); once
        // connected, the manager reconnects by itself.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let connection = redis::aio::ConnectionManager::new_with_config(client, config).await?;
        if let Ok(mut map) = self.connections.lock() {
            map.entry(address.to_string())
                .or_insert_with(|| connection.clone());
        }
        Ok(connection)
    }
}

/// What one component may reach.
pub(crate) struct ComponentRedis {
    pub(crate) id: String,
    pub(crate) allowed: Arc<AllowedHosts>,
    pub(crate) pool: Arc<ConnectionPool>,
}

/// Per-instance state: the component's grant and its open connections.
pub(crate) type RedisState = Granted<ComponentRedis>;

/// Outbound Redis for one application.
pub struct AppRedis {
    components: Vec<Arc<ComponentRedis>>,
}

impl AppRedis {
    /// Every component that lists any outbound host may try Redis; the
    /// address decides.
    pub fn new(allow_lists: &HashMap<String, Arc<AllowedHosts>>) -> Self {
        let pool = Arc::new(ConnectionPool::default());
        let weak = Arc::downgrade(&pool);
        gyre_telemetry::metrics().register_pool(gyre_telemetry::Outbound::Redis, move || {
            weak.upgrade().map(|pool| pool.size())
        });
        AppRedis {
            components: allow_lists
                .iter()
                .map(|(id, allowed)| {
                    Arc::new(ComponentRedis {
                        id: id.clone(),
                        allowed: allowed.clone(),
                        pool: pool.clone(),
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
