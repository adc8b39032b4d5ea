//! Outbound MQTT (`fermyon:spin/mqtt@2.0.0`, `spin:mqtt/mqtt@3.0.0`).
//!
//! A component may reach only the brokers its `allowed_outbound_hosts`
//! allows (scheme `mqtt`, default port 1883); any other address is the
//! interface's `connection-failed("address … is not permitted")`, as in
//! Spin. `open` connects (and fails) at once rather than on the first
//! publish, and `publish` returns when the broker has confirmed the message
//! at the requested QoS: sent (at-most-once), `PUBACK` (at-least-once) or
//! `PUBCOMP` (exactly-once). Each guest connection is its own MQTT session
//! (brokers identify clients by id, so sessions are not pooled).

mod host;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use gyre_engine::{AppCapabilities, Capability, Granted, HostState, PrepareGranted};
use gyre_outbound_networking::AllowedHosts;
use wasmtime::component::Linker;

/// Most connections one instance may hold open.
pub const MAX_CONNECTIONS_PER_INSTANCE: usize = 16;

/// Largest payload a guest may publish, unless the runtime config's
/// `[outbound_mqtt] max_payload_size_bytes` says otherwise.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// How long connecting, or waiting for a publish to be confirmed, may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Binds the MQTT interfaces.
pub struct MqttCapability;

impl Capability for MqttCapability {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    fn bind(&self, linker: &mut Linker<HostState>) -> Result<()> {
        host::bind(linker)
    }
}

/// What one component may reach.
pub(crate) struct ComponentMqtt {
    pub(crate) id: String,
    pub(crate) allowed: Arc<AllowedHosts>,
    pub(crate) max_payload_bytes: usize,
}

/// Per-instance state: the component's grant and its open connections.
pub(crate) type MqttState = Granted<ComponentMqtt>;

/// Outbound MQTT for one application.
pub struct AppMqtt {
    components: Vec<Arc<ComponentMqtt>>,
}

impl AppMqtt {
    /// Every component that lists any outbound host may try MQTT; the
    /// address decides.
    pub fn new(allow_lists: &HashMap<String, Arc<AllowedHosts>>, max_payload_bytes: usize) -> Self {
        AppMqtt {
            components: allow_lists
                .iter()
                .map(|(id, allowed)| {
                    Arc::new(ComponentMqtt {
                        id: id.clone(),
                        allowed: allowed.clone(),
                        max_payload_bytes,
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
