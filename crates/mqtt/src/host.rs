//! The guest-facing MQTT interfaces, bound from Gyre's own WIT (`wit/`).
//! Both versions run the same [`Session`] operations; 3.0 is called through
//! component-model async.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use gyre_engine::HostState;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::Mutex;
use wasmtime::component::{Accessor, HasData, Linker, Resource, ResourceTable};

use crate::{MAX_CONNECTIONS_PER_INSTANCE, MqttState, TIMEOUT};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "gyre:mqtt/host",
        imports: {
            "spin:mqtt/mqtt.[static]connection.open": async | store,
            "spin:mqtt/mqtt.[method]connection.publish": async | store,
            default: async,
        },
        with: {
            "fermyon:spin/mqtt.connection": crate::host::Connection,
            "spin:mqtt/mqtt.connection": crate::host::Connection,
        },
    });
}

use bindings::fermyon::spin::mqtt as v2;
use bindings::spin::mqtt::mqtt as v3;

/// An open MQTT session.
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct Connection {
    session: Arc<Mutex<Session>>,
    max_payload_bytes: usize,
}

struct Session {
    client: AsyncClient,
    events: EventLoop,
}

pub(crate) struct MqttView<'a> {
    state: &'a mut MqttState,
    table: &'a mut ResourceTable,
}

struct Mqtt;

impl HasData for Mqtt {
    type Data<'a> = MqttView<'a>;
}

fn view(host: &mut HostState) -> MqttView<'_> {
    let (state, table) = host.capability::<MqttState>();
    MqttView { state, table }
}

pub(crate) fn bind(linker: &mut Linker<HostState>) -> Result<()> {
    v2::add_to_linker::<_, Mqtt>(linker, view)?;
    // Spin 3+ interfaces have `async func`s, for the concurrent engine only.
    if gyre_engine::supports_concurrency(linker) {
        v3::add_to_linker::<_, Mqtt>(linker, view)?;
    }
    Ok(())
}

/// Errors common to both versions.
#[derive(Debug)]
enum HostError {
    InvalidAddress,
    TooManyConnections,
    ConnectionFailed(String),
    Other(String),
}

/// A broker address: `mqtt://host[:port][?client_id=ID]`.
struct Address {
    host: String,
    port: u16,
    client_id: Option<String>,
}

fn parse_address(address: &str) -> Option<Address> {
    let rest = address.strip_prefix("mqtt://")?;
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = authority.trim_end_matches('/');
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 1883,
            None => return None,
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), port.parse().ok()?),
            None => (authority.to_string(), 1883),
        }
    };
    if host.is_empty() || host.contains('@') {
        return None;
    }
    let client_id = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "client_id")
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty());
    Some(Address {
        host,
        port,
        client_id,
    })
}

/// A client id unique within this process and unlikely to collide with
/// other Gyre processes on the same broker.
fn generated_client_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "gyre-{}-{:x}-{}",
        std::process::id(),
        nanos,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Connects and waits for the broker's `CONNACK`.
async fn connect(
    address: &Address,
    username: String,
    password: String,
    keep_alive_secs: u64,
    max_payload_bytes: usize,
) -> Result<Session, HostError> {
    let client_id = address
        .client_id
        .clone()
        .unwrap_or_else(generated_client_id);
    let mut options = MqttOptions::new(client_id, address.host.clone(), address.port);
    options.set_keep_alive(std::time::Duration::from_secs(
        keep_alive_secs.min(u64::from(u16::MAX)),
    ));
    // Headroom over the payload for the topic and the packet header.
    options.set_max_packet_size(64 << 10, max_payload_bytes.saturating_add(64 << 10));
    if !username.is_empty() || !password.is_empty() {
        options.set_credentials(username, password);
    }
    let (client, mut events) = AsyncClient::new(options, 16);
    let connected = tokio::time::timeout(TIMEOUT, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    return match ack.code {
                        rumqttc::ConnectReturnCode::Success => Ok(()),
                        code => Err(HostError::ConnectionFailed(format!(
                            "the broker refused the connection: {code:?}"
                        ))),
                    };
                }
                Ok(_) => {}
                Err(e) => return Err(HostError::ConnectionFailed(e.to_string())),
            }
        }
    })
    .await;
    match connected {
        Ok(Ok(())) => Ok(Session { client, events }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(HostError::ConnectionFailed(format!(
            "no answer from the broker within {} s",
            TIMEOUT.as_secs()
        ))),
    }
}

impl Session {
    /// Publishes and waits until the broker confirms at `qos`. A dropped
    /// connection is re-established once (the event loop reconnects and
    /// resends what was not yet confirmed).
    async fn publish(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        qos: QoS,
    ) -> Result<(), HostError> {
        gyre_telemetry::outbound_call(
            gyre_telemetry::Outbound::Mqtt,
            "publish",
            self.publish_uncounted(topic, payload, qos),
        )
        .await
    }

    async fn publish_uncounted(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        qos: QoS,
    ) -> Result<(), HostError> {
        self.client
            .publish(topic, qos, false, payload)
            .await
            .map_err(|e| HostError::Other(format!("cannot publish: {e}")))?;
        let confirmed = tokio::time::timeout(TIMEOUT, async {
            let mut failures = 0;
            loop {
                match self.events.poll().await {
                    Ok(Event::Outgoing(Outgoing::Publish(_))) if qos == QoS::AtMostOnce => {
                        return Ok(());
                    }
                    Ok(Event::Incoming(Packet::PubAck(_))) if qos == QoS::AtLeastOnce => {
                        return Ok(());
                    }
                    Ok(Event::Incoming(Packet::PubComp(_))) if qos == QoS::ExactlyOnce => {
                        return Ok(());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        failures += 1;
                        if failures > 1 {
                            return Err(HostError::ConnectionFailed(e.to_string()));
                        }
                    }
                }
            }
        })
        .await;
        confirmed.unwrap_or_else(|_| {
            Err(HostError::Other(format!(
                "the broker did not confirm the message within {} s",
                TIMEOUT.as_secs()
            )))
        })
    }
}

impl MqttView<'_> {
    /// [`Self::check_open`], counted in the metrics when refused.
    fn begin_open(&mut self, address: &str) -> Result<(Address, usize), HostError> {
        let checked = self.check_open(address);
        gyre_telemetry::metrics().checked(gyre_telemetry::Outbound::Mqtt, checked)
    }

    /// Checks the address against the allow-list and the instance's budget.
    fn check_open(&mut self, address: &str) -> Result<(Address, usize), HostError> {
        let not_permitted =
            || HostError::ConnectionFailed(format!("address {address} is not permitted"));
        let Some(component) = self.state.component.clone() else {
            return Err(not_permitted());
        };
        if !component.allowed.allows_url(address) {
            tracing::warn!(
                component = %component.id,
                "Outbound network destination not allowed: {address} (add it to the component's `allowed_outbound_hosts`)"
            );
            return Err(not_permitted());
        }
        let parsed = parse_address(address).ok_or(HostError::InvalidAddress)?;
        if self.state.open >= MAX_CONNECTIONS_PER_INSTANCE {
            return Err(HostError::TooManyConnections);
        }
        Ok((parsed, component.max_payload_bytes))
    }

    fn finish_open(
        &mut self,
        session: Session,
        max_payload_bytes: usize,
    ) -> Result<Resource<Connection>, HostError> {
        let resource = self
            .table
            .push(Connection {
                session: Arc::new(Mutex::new(session)),
                max_payload_bytes,
            })
            .map_err(|_| HostError::TooManyConnections)?;
        self.state.open += 1;
        Ok(resource)
    }

    fn session(
        &self,
        c: &Resource<Connection>,
        payload_len: usize,
    ) -> Result<Arc<Mutex<Session>>, HostError> {
        let connection = self
            .table
            .get(c)
            .map_err(|_| HostError::Other("invalid connection handle".into()))?;
        if payload_len > connection.max_payload_bytes {
            return Err(HostError::Other(format!(
                "the payload is {payload_len} bytes; at most {} are allowed (`[outbound_mqtt] max_payload_size_bytes` in the runtime config)",
                connection.max_payload_bytes
            )));
        }
        Ok(connection.session.clone())
    }

    fn close(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
        let connection = self.table.delete(c)?;
        self.state.open = self.state.open.saturating_sub(1);
        // Say goodbye to the broker without making the guest wait.
        tokio::spawn(async move {
            let mut session = connection.session.lock().await;
            if session.client.try_disconnect().is_ok() {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
                    while let Ok(event) = session.events.poll().await {
                        if matches!(event, Event::Outgoing(Outgoing::Disconnect)) {
                            break;
                        }
                    }
                })
                .await;
            }
        });
        Ok(())
    }
}

macro_rules! version_types {
    ($m:ident) => {
        impl From<HostError> for $m::Error {
            fn from(e: HostError) -> Self {
                match e {
                    HostError::InvalidAddress => $m::Error::InvalidAddress,
                    HostError::TooManyConnections => $m::Error::TooManyConnections,
                    HostError::ConnectionFailed(m) => $m::Error::ConnectionFailed(m),
                    HostError::Other(m) => $m::Error::Other(m),
                }
            }
        }

        impl From<$m::Qos> for QoS {
            fn from(q: $m::Qos) -> Self {
                match q {
                    $m::Qos::AtMostOnce => QoS::AtMostOnce,
                    $m::Qos::AtLeastOnce => QoS::AtLeastOnce,
                    $m::Qos::ExactlyOnce => QoS::ExactlyOnce,
                }
            }
        }
    };
}
version_types!(v2);
version_types!(v3);

impl v2::Host for MqttView<'_> {}

impl v2::HostConnection for MqttView<'_> {
    async fn open(
        &mut self,
        address: String,
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> Result<Resource<Connection>, v2::Error> {
        let (parsed, max_payload) = self.begin_open(&address)?;
        let session = connect(
            &parsed,
            username,
            password,
            keep_alive_interval_in_secs,
            max_payload,
        )
        .await?;
        Ok(self.finish_open(session, max_payload)?)
    }

    async fn publish(
        &mut self,
        c: Resource<Connection>,
        topic: String,
        payload: Vec<u8>,
        qos: v2::Qos,
    ) -> Result<(), v2::Error> {
        let session = self.session(&c, payload.len())?;
        let mut session = session.lock().await;
        Ok(session.publish(topic, payload, qos.into()).await?)
    }

    async fn drop(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
        self.close(c)
    }
}

impl v3::Host for MqttView<'_> {}

impl v3::HostConnection for MqttView<'_> {
    async fn drop(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
        self.close(c)
    }
}

impl<T> v3::HostConnectionWithStore<T> for Mqtt {
    async fn open(
        accessor: &Accessor<T, Self>,
        address: String,
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> Result<Resource<Connection>, v3::Error> {
        let (parsed, max_payload) =
            accessor.with(|mut access| access.get().begin_open(&address))?;
        let session = connect(
            &parsed,
            username,
            password,
            keep_alive_interval_in_secs,
            max_payload,
        )
        .await?;
        Ok(accessor.with(|mut access| access.get().finish_open(session, max_payload))?)
    }

    async fn publish(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        topic: String,
        payload: Vec<u8>,
        qos: v3::Qos,
    ) -> Result<(), v3::Error> {
        let session = accessor.with(|mut access| access.get().session(&c, payload.len()))?;
        let mut session = session.lock().await;
        Ok(session.publish(topic, payload, qos.into()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_address;

    #[test]
    fn addresses() {
        /// Host, port and client id an address parses into.
        type Parsed<'a> = Option<(&'a str, u16, Option<&'a str>)>;
        let cases: &[(&str, Parsed<'_>)] = &[
            ("mqtt://localhost", Some(("localhost", 1883, None))),
            ("mqtt://localhost:1884", Some(("localhost", 1884, None))),
            (
                "mqtt://localhost:1883?client_id=spintest",
                Some(("localhost", 1883, Some("spintest"))),
            ),
            ("mqtt://[::1]:1885", Some(("::1", 1885, None))),
            ("mqtt://127.0.0.1/", Some(("127.0.0.1", 1883, None))),
            ("http://localhost", None),
            ("mqtt://", None),
            ("mqtt://host:notaport", None),
            ("mqtt://user@host", None),
        ];
        for (input, expected) in cases {
            let parsed = parse_address(input).map(|a| (a.host, a.port, a.client_id));
            let expected = expected.map(|(h, p, c)| (h.to_string(), p, c.map(str::to_string)));
            assert_eq!(parsed, expected, "{input}");
        }
    }
}
