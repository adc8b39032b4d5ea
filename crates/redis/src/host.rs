//! The guest-facing Redis interfaces, bound from Gyre's own WIT (`wit/`).
//! Both versions run the same operations ([`Ops`]); they differ only in
//! types and in how the host function is called (fiber or
//! component-model async).

use std::sync::Arc;

use anyhow::Result;
use gyre_engine::HostState;
use redis::aio::ConnectionManager;
use wasmtime::component::{Accessor, HasData, Linker, Resource, ResourceTable};

use crate::{MAX_CONNECTIONS_PER_INSTANCE, RedisState};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "gyre:redis/host",
        imports: {
            "spin:redis/redis.[static]connection.open": async | store,
            "spin:redis/redis.[method]connection.publish": async | store,
            "spin:redis/redis.[method]connection.get": async | store,
            "spin:redis/redis.[method]connection.set": async | store,
            "spin:redis/redis.[method]connection.incr": async | store,
            "spin:redis/redis.[method]connection.del": async | store,
            "spin:redis/redis.[method]connection.sadd": async | store,
            "spin:redis/redis.[method]connection.smembers": async | store,
            "spin:redis/redis.[method]connection.srem": async | store,
            "spin:redis/redis.[method]connection.execute": async | store,
            default: async,
        },
        with: {
            "fermyon:spin/redis@2.0.0.connection": crate::host::Connection,
            "spin:redis/redis.connection": crate::host::Connection,
        },
    });
}

use bindings::fermyon::spin::redis as unversioned;
use bindings::fermyon::spin2_0_0::redis as v2;
use bindings::spin::redis::redis as v3;

/// An open connection, as a guest holds it: a handle on the app's shared
/// connection to that address.
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct Connection {
    connection: ConnectionManager,
}

pub(crate) struct RedisView<'a> {
    state: &'a mut RedisState,
    table: &'a mut ResourceTable,
}

struct Redis;

impl HasData for Redis {
    type Data<'a> = RedisView<'a>;
}

fn view(host: &mut HostState) -> RedisView<'_> {
    let (state, table) = host.capability::<RedisState>();
    RedisView { state, table }
}

pub(crate) fn bind(linker: &mut Linker<HostState>) -> Result<()> {
    v2::add_to_linker::<_, Redis>(linker, view)?;
    unversioned::add_to_linker::<_, Redis>(linker, view)?;
    // Spin 3+ interfaces have `async func`s, for the concurrent engine only.
    if gyre_engine::supports_concurrency(linker) {
        v3::add_to_linker::<_, Redis>(linker, view)?;
    }
    Ok(())
}

/// Errors common to both versions.
#[derive(Debug)]
enum HostError {
    InvalidAddress,
    TooManyConnections,
    TypeError,
    Other(String),
}

impl From<redis::RedisError> for HostError {
    fn from(e: redis::RedisError) -> Self {
        let message = e.to_string();
        if e.kind() == redis::ErrorKind::UnexpectedReturnType
            || message.contains("WRONGTYPE")
            || message.contains("not an integer")
        {
            HostError::TypeError
        } else {
            HostError::Other(message)
        }
    }
}

/// A parameter of `execute`.
enum Param {
    Int(i64),
    Bytes(Vec<u8>),
}

/// A value `execute` returns.
enum Reply {
    Nil,
    Status(String),
    Int(i64),
    Bytes(Vec<u8>),
}

fn flatten(value: redis::Value, out: &mut Vec<Reply>) -> Result<(), HostError> {
    use redis::Value as V;
    match value {
        V::Nil => out.push(Reply::Nil),
        V::Int(i) => out.push(Reply::Int(i)),
        V::BulkString(b) => out.push(Reply::Bytes(b)),
        V::SimpleString(s) => out.push(Reply::Status(s)),
        V::Okay => out.push(Reply::Status("OK".into())),
        V::Array(items) | V::Set(items) => {
            for item in items {
                flatten(item, out)?;
            }
        }
        V::Boolean(b) => out.push(Reply::Int(i64::from(b))),
        V::Double(d) => out.push(Reply::Bytes(d.to_string().into_bytes())),
        V::ServerError(e) => return Err(HostError::Other(format!("{e:?}"))),
        other => out.push(Reply::Bytes(format!("{other:?}").into_bytes())),
    }
    Ok(())
}

/// The operations, once, for both versions.
struct Ops(ConnectionManager);

impl Ops {
    /// Runs `cmd` on the app's shared connection to the address. Spin
    /// connects afresh on every `open`, so a guest there never meets a
    /// connection the server closed while it sat idle (a restarted Redis);
    /// here such a command fails with a dropped connection, the manager
    /// reconnects, and the command is sent once more on the new connection.
    async fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T, HostError> {
        gyre_telemetry::outbound_call(
            gyre_telemetry::Outbound::Redis,
            "command",
            self.query_uncounted(cmd),
        )
        .await
    }

    async fn query_uncounted<T: redis::FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
    ) -> Result<T, HostError> {
        match cmd.query_async(&mut self.0).await {
            Err(e) if e.is_connection_dropped() => {
                tracing::debug!(
                    "Redis connection dropped ({e}); sending the command again on a new connection"
                );
                Ok(cmd.query_async(&mut self.0).await?)
            }
            result => Ok(result?),
        }
    }

    async fn publish(mut self, channel: String, payload: Vec<u8>) -> Result<(), HostError> {
        let _: i64 = self
            .query(redis::cmd("PUBLISH").arg(channel).arg(payload))
            .await?;
        Ok(())
    }

    async fn get(mut self, key: String) -> Result<Option<Vec<u8>>, HostError> {
        self.query(redis::cmd("GET").arg(key)).await
    }

    async fn set(mut self, key: String, value: Vec<u8>) -> Result<(), HostError> {
        let _: redis::Value = self.query(redis::cmd("SET").arg(key).arg(value)).await?;
        Ok(())
    }

    async fn incr(mut self, key: String) -> Result<i64, HostError> {
        self.query(redis::cmd("INCR").arg(key)).await
    }

    async fn del(mut self, keys: Vec<String>) -> Result<u32, HostError> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.query(redis::cmd("DEL").arg(keys)).await
    }

    async fn sadd(mut self, key: String, values: Vec<String>) -> Result<u32, HostError> {
        self.query(redis::cmd("SADD").arg(key).arg(values)).await
    }

    async fn smembers(mut self, key: String) -> Result<Vec<String>, HostError> {
        self.query(redis::cmd("SMEMBERS").arg(key)).await
    }

    async fn srem(mut self, key: String, values: Vec<String>) -> Result<u32, HostError> {
        self.query(redis::cmd("SREM").arg(key).arg(values)).await
    }

    async fn execute(
        mut self,
        command: String,
        params: Vec<Param>,
    ) -> Result<Vec<Reply>, HostError> {
        let mut cmd = redis::cmd(&command);
        for param in params {
            match param {
                Param::Int(i) => cmd.arg(i),
                Param::Bytes(b) => cmd.arg(b),
            };
        }
        let value: redis::Value = self.query(&cmd).await?;
        let mut out = Vec::new();
        flatten(value, &mut out)?;
        Ok(out)
    }
}

impl RedisView<'_> {
    /// [`Self::check_open`], counted in the metrics when refused.
    fn begin_open(
        &mut self,
        address: &str,
    ) -> Result<(Arc<crate::ComponentRedis>, String), HostError> {
        let checked = self.check_open(address);
        gyre_telemetry::metrics().checked(gyre_telemetry::Outbound::Redis, checked)
    }

    /// Checks the address against the allow-list and returns the app's
    /// connection to it.
    fn check_open(
        &mut self,
        address: &str,
    ) -> Result<(Arc<crate::ComponentRedis>, String), HostError> {
        let Some(component) = self.state.component.clone() else {
            tracing::warn!(
                "Outbound network destination not allowed: {address} (the component lists no `allowed_outbound_hosts`)"
            );
            return Err(HostError::InvalidAddress);
        };
        if !component.allowed.allows_url(address) {
            tracing::warn!(
                component = %component.id,
                "Outbound network destination not allowed: {address} (add it to the component's `allowed_outbound_hosts`)"
            );
            return Err(HostError::InvalidAddress);
        }
        if self.state.open >= MAX_CONNECTIONS_PER_INSTANCE {
            return Err(HostError::TooManyConnections);
        }
        Ok((component, address.to_string()))
    }

    fn finish_open(
        &mut self,
        connection: ConnectionManager,
    ) -> Result<Resource<Connection>, HostError> {
        let resource = self
            .table
            .push(Connection { connection })
            .map_err(|_| HostError::TooManyConnections)?;
        self.state.open += 1;
        Ok(resource)
    }

    fn ops(&self, connection: &Resource<Connection>) -> Result<Ops, HostError> {
        self.table
            .get(connection)
            .map(|c| Ops(c.connection.clone()))
            .map_err(|_| HostError::Other("invalid connection handle".into()))
    }

    fn close(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        self.state.open = self.state.open.saturating_sub(1);
        Ok(())
    }
}

async fn connect(
    component: &crate::ComponentRedis,
    address: &str,
) -> Result<ConnectionManager, HostError> {
    component.pool.get(address).await.map_err(|e| {
        if e.kind() == redis::ErrorKind::InvalidClientConfig {
            HostError::InvalidAddress
        } else {
            HostError::Other(format!("cannot connect to {address}: {e}"))
        }
    })
}

/// `execute`'s parameters and results, the same in every version.
macro_rules! value_types {
    ($m:ident) => {
        impl From<$m::RedisParameter> for Param {
            fn from(p: $m::RedisParameter) -> Self {
                match p {
                    $m::RedisParameter::Int64(i) => Param::Int(i),
                    $m::RedisParameter::Binary(b) => Param::Bytes(b),
                }
            }
        }

        impl From<Reply> for $m::RedisResult {
            fn from(r: Reply) -> Self {
                match r {
                    Reply::Nil => $m::RedisResult::Nil,
                    Reply::Status(s) => $m::RedisResult::Status(s),
                    Reply::Int(i) => $m::RedisResult::Int64(i),
                    Reply::Bytes(b) => $m::RedisResult::Binary(b),
                }
            }
        }
    };
}

/// Every version but Spin 1.x's: errors with detail, and the value types.
macro_rules! version_types {
    ($m:ident) => {
        impl From<HostError> for $m::Error {
            fn from(e: HostError) -> Self {
                match e {
                    HostError::InvalidAddress => $m::Error::InvalidAddress,
                    HostError::TooManyConnections => $m::Error::TooManyConnections,
                    HostError::TypeError => $m::Error::TypeError,
                    HostError::Other(m) => $m::Error::Other(m),
                }
            }
        }
        value_types!($m);
    };
}
version_types!(v2);
version_types!(v3);

// fermyon:spin/redis (Spin 1.x): the address on every call, the app's
// shared connection to it, and an error that says nothing (logged here).

impl From<HostError> for unversioned::Error {
    fn from(e: HostError) -> Self {
        match e {
            // Already logged with the allow-list it failed.
            HostError::InvalidAddress => {}
            HostError::TooManyConnections => tracing::warn!("outbound Redis: too many connections"),
            HostError::TypeError => tracing::warn!("outbound Redis: a value of the wrong type"),
            HostError::Other(message) => tracing::warn!("outbound Redis: {message}"),
        }
        unversioned::Error::Error
    }
}

value_types!(unversioned);

impl RedisView<'_> {
    /// The operations on the app's connection to `address`, for one call.
    async fn ops_at(&mut self, address: &str) -> Result<Ops, HostError> {
        let (component, address) = self.begin_open(address)?;
        Ok(Ops(connect(&component, &address).await?))
    }
}

impl unversioned::Host for RedisView<'_> {
    async fn publish(
        &mut self,
        address: String,
        channel: String,
        payload: Vec<u8>,
    ) -> Result<(), unversioned::Error> {
        Ok(self
            .ops_at(&address)
            .await?
            .publish(channel, payload)
            .await?)
    }

    async fn get(&mut self, address: String, key: String) -> Result<Vec<u8>, unversioned::Error> {
        // A missing key is an empty payload, as in Spin 1.x.
        Ok(self
            .ops_at(&address)
            .await?
            .get(key)
            .await?
            .unwrap_or_default())
    }

    async fn set(
        &mut self,
        address: String,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), unversioned::Error> {
        Ok(self.ops_at(&address).await?.set(key, value).await?)
    }

    async fn incr(&mut self, address: String, key: String) -> Result<i64, unversioned::Error> {
        Ok(self.ops_at(&address).await?.incr(key).await?)
    }

    async fn del(&mut self, address: String, keys: Vec<String>) -> Result<i64, unversioned::Error> {
        Ok(self.ops_at(&address).await?.del(keys).await?.into())
    }

    async fn sadd(
        &mut self,
        address: String,
        key: String,
        values: Vec<String>,
    ) -> Result<i64, unversioned::Error> {
        Ok(self.ops_at(&address).await?.sadd(key, values).await?.into())
    }

    async fn smembers(
        &mut self,
        address: String,
        key: String,
    ) -> Result<Vec<String>, unversioned::Error> {
        Ok(self.ops_at(&address).await?.smembers(key).await?)
    }

    async fn srem(
        &mut self,
        address: String,
        key: String,
        values: Vec<String>,
    ) -> Result<i64, unversioned::Error> {
        Ok(self.ops_at(&address).await?.srem(key, values).await?.into())
    }

    async fn execute(
        &mut self,
        address: String,
        command: String,
        arguments: Vec<unversioned::RedisParameter>,
    ) -> Result<Vec<unversioned::RedisResult>, unversioned::Error> {
        let arguments = arguments.into_iter().map(Param::from).collect();
        let replies = self
            .ops_at(&address)
            .await?
            .execute(command, arguments)
            .await?;
        Ok(replies.into_iter().map(Into::into).collect())
    }
}

impl v2::Host for RedisView<'_> {}

impl v2::HostConnection for RedisView<'_> {
    async fn open(&mut self, address: String) -> Result<Resource<Connection>, v2::Error> {
        let (component, address) = self.begin_open(&address)?;
        let connection = connect(&component, &address).await?;
        Ok(self.finish_open(connection)?)
    }

    async fn publish(
        &mut self,
        c: Resource<Connection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Result<(), v2::Error> {
        Ok(self.ops(&c)?.publish(channel, payload).await?)
    }

    async fn get(
        &mut self,
        c: Resource<Connection>,
        key: String,
    ) -> Result<Option<Vec<u8>>, v2::Error> {
        Ok(self.ops(&c)?.get(key).await?)
    }

    async fn set(
        &mut self,
        c: Resource<Connection>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), v2::Error> {
        Ok(self.ops(&c)?.set(key, value).await?)
    }

    async fn incr(&mut self, c: Resource<Connection>, key: String) -> Result<i64, v2::Error> {
        Ok(self.ops(&c)?.incr(key).await?)
    }

    async fn del(&mut self, c: Resource<Connection>, keys: Vec<String>) -> Result<u32, v2::Error> {
        Ok(self.ops(&c)?.del(keys).await?)
    }

    async fn sadd(
        &mut self,
        c: Resource<Connection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, v2::Error> {
        Ok(self.ops(&c)?.sadd(key, values).await?)
    }

    async fn smembers(
        &mut self,
        c: Resource<Connection>,
        key: String,
    ) -> Result<Vec<String>, v2::Error> {
        Ok(self.ops(&c)?.smembers(key).await?)
    }

    async fn srem(
        &mut self,
        c: Resource<Connection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, v2::Error> {
        Ok(self.ops(&c)?.srem(key, values).await?)
    }

    async fn execute(
        &mut self,
        c: Resource<Connection>,
        command: String,
        arguments: Vec<v2::RedisParameter>,
    ) -> Result<Vec<v2::RedisResult>, v2::Error> {
        let params = arguments.into_iter().map(Param::from).collect();
        let replies = self.ops(&c)?.execute(command, params).await?;
        Ok(replies.into_iter().map(v2::RedisResult::from).collect())
    }

    async fn drop(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
        self.close(c)
    }
}

impl v3::Host for RedisView<'_> {}

impl v3::HostConnection for RedisView<'_> {
    async fn drop(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
        self.close(c)
    }
}

fn ops_of<T>(accessor: &Accessor<T, Redis>, c: &Resource<Connection>) -> Result<Ops, v3::Error> {
    Ok(accessor.with(|mut access| access.get().ops(c))?)
}

impl<T> v3::HostConnectionWithStore<T> for Redis {
    async fn open(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> Result<Resource<Connection>, v3::Error> {
        let (component, address) = accessor.with(|mut access| access.get().begin_open(&address))?;
        let connection = connect(&component, &address).await?;
        Ok(accessor.with(|mut access| access.get().finish_open(connection))?)
    }

    async fn publish(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Result<(), v3::Error> {
        Ok(ops_of(accessor, &c)?.publish(channel, payload).await?)
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        key: String,
    ) -> Result<Option<Vec<u8>>, v3::Error> {
        Ok(ops_of(accessor, &c)?.get(key).await?)
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), v3::Error> {
        Ok(ops_of(accessor, &c)?.set(key, value).await?)
    }

    async fn incr(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        key: String,
    ) -> Result<i64, v3::Error> {
        Ok(ops_of(accessor, &c)?.incr(key).await?)
    }

    async fn del(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        keys: Vec<String>,
    ) -> Result<u32, v3::Error> {
        Ok(ops_of(accessor, &c)?.del(keys).await?)
    }

    async fn sadd(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, v3::Error> {
        Ok(ops_of(accessor, &c)?.sadd(key, values).await?)
    }

    async fn smembers(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        key: String,
    ) -> Result<Vec<String>, v3::Error> {
        Ok(ops_of(accessor, &c)?.smembers(key).await?)
    }

    async fn srem(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, v3::Error> {
        Ok(ops_of(accessor, &c)?.srem(key, values).await?)
    }

    async fn execute(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        command: String,
        arguments: Vec<v3::RedisParameter>,
    ) -> Result<Vec<v3::RedisResult>, v3::Error> {
        let params = arguments.into_iter().map(Param::from).collect();
        let replies = ops_of(accessor, &c)?.execute(command, params).await?;
        Ok(replies.into_iter().map(v3::RedisResult::from).collect())
    }
}
