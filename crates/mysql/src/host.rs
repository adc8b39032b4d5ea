//! The guest-facing MySQL interfaces, bound from Gyre's own WIT (`wit/`).
//! Both versions carry the same values; 3.0 is component-model async and
//! returns rows as a stream.

use std::sync::Arc;

use anyhow::Result;
use gyre_engine::HostState;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use tokio::sync::Mutex;
use wasmtime::component::{
    Accessor, FutureReader, HasData, Linker, Resource, ResourceTable, StreamReader,
};

use crate::{MAX_CONNECTIONS_PER_INSTANCE, MAX_RESULT_BYTES, MysqlError, MysqlState};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "gyre:mysql/host",
        imports: {
            "spin:mysql/mysql.[static]connection.open": async | store,
            "spin:mysql/mysql.[method]connection.query": async | store,
            "spin:mysql/mysql.[method]connection.execute": async | store,
            default: async,
        },
        with: {
            "fermyon:spin/mysql@2.0.0.connection": crate::host::Connection,
            "spin:mysql/mysql.connection": crate::host::Connection,
        },
    });
}

use bindings::fermyon::spin::mysql as v1;
use bindings::fermyon::spin::rdbms_types as v1t;
use bindings::fermyon::spin2_0_0::mysql as v2;
use bindings::fermyon::spin2_0_0::rdbms_types as v2t;
use bindings::spin::mysql::mysql as v3;

/// An open connection: a pooled connection, reset and returned to its pool
/// when the guest drops the handle.
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct Connection {
    conn: Arc<Mutex<mysql_async::Conn>>,
}

pub(crate) struct MysqlView<'a> {
    state: &'a mut MysqlState,
    table: &'a mut ResourceTable,
}

struct Mysql;

impl HasData for Mysql {
    type Data<'a> = MysqlView<'a>;
}

fn view(host: &mut HostState) -> MysqlView<'_> {
    let (state, table) = host.capability::<MysqlState>();
    MysqlView { state, table }
}

pub(crate) fn bind(linker: &mut Linker<HostState>) -> Result<()> {
    v2::add_to_linker::<_, Mysql>(linker, view)?;
    v1::add_to_linker::<_, Mysql>(linker, view)?;
    // Spin 3+ interfaces have `async func`s, for the concurrent engine only.
    if gyre_engine::supports_concurrency(linker) {
        v3::add_to_linker::<_, Mysql>(linker, view)?;
    }
    Ok(())
}

/// A value in either direction, version-neutral (the two versions have the
/// same cases).
enum Value {
    Null,
    Boolean(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Uint8(u8),
    Uint16(u16),
    Uint32(u32),
    Uint64(u64),
    Floating32(f32),
    Floating64(f64),
    Str(String),
    Binary(Vec<u8>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DataType {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Floating32,
    Floating64,
    Str,
    Binary,
    Other,
}

impl From<Value> for mysql_async::Value {
    fn from(v: Value) -> Self {
        use mysql_async::Value as M;
        match v {
            Value::Null => M::NULL,
            Value::Boolean(b) => M::Int(i64::from(b)),
            Value::Int8(i) => M::Int(i64::from(i)),
            Value::Int16(i) => M::Int(i64::from(i)),
            Value::Int32(i) => M::Int(i64::from(i)),
            Value::Int64(i) => M::Int(i),
            Value::Uint8(u) => M::UInt(u64::from(u)),
            Value::Uint16(u) => M::UInt(u64::from(u)),
            Value::Uint32(u) => M::UInt(u64::from(u)),
            Value::Uint64(u) => M::UInt(u),
            Value::Floating32(f) => M::Float(f),
            Value::Floating64(f) => M::Double(f),
            Value::Str(s) => M::Bytes(s.into_bytes()),
            Value::Binary(b) => M::Bytes(b),
        }
    }
}

/// The character set MySQL reports for binary strings and blobs.
const BINARY_CHARSET: u16 = 63;

/// The interface type of a column.
fn data_type(column: &mysql_async::Column) -> DataType {
    let unsigned = column.flags().contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = column.character_set() == BINARY_CHARSET;
    match column.column_type() {
        ColumnType::MYSQL_TYPE_TINY if column.column_length() == 1 => DataType::Boolean,
        ColumnType::MYSQL_TYPE_TINY if unsigned => DataType::Uint8,
        ColumnType::MYSQL_TYPE_TINY => DataType::Int8,
        ColumnType::MYSQL_TYPE_SHORT | ColumnType::MYSQL_TYPE_YEAR if unsigned => DataType::Uint16,
        ColumnType::MYSQL_TYPE_SHORT | ColumnType::MYSQL_TYPE_YEAR => DataType::Int16,
        ColumnType::MYSQL_TYPE_INT24 | ColumnType::MYSQL_TYPE_LONG if unsigned => DataType::Uint32,
        ColumnType::MYSQL_TYPE_INT24 | ColumnType::MYSQL_TYPE_LONG => DataType::Int32,
        ColumnType::MYSQL_TYPE_LONGLONG if unsigned => DataType::Uint64,
        ColumnType::MYSQL_TYPE_LONGLONG => DataType::Int64,
        ColumnType::MYSQL_TYPE_FLOAT => DataType::Floating32,
        ColumnType::MYSQL_TYPE_DOUBLE => DataType::Floating64,
        ColumnType::MYSQL_TYPE_TINY_BLOB
        | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
        | ColumnType::MYSQL_TYPE_LONG_BLOB
        | ColumnType::MYSQL_TYPE_BLOB
        | ColumnType::MYSQL_TYPE_VAR_STRING
        | ColumnType::MYSQL_TYPE_VARCHAR
        | ColumnType::MYSQL_TYPE_STRING
        | ColumnType::MYSQL_TYPE_BIT
        | ColumnType::MYSQL_TYPE_GEOMETRY
            if binary =>
        {
            DataType::Binary
        }
        ColumnType::MYSQL_TYPE_TINY_BLOB
        | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
        | ColumnType::MYSQL_TYPE_LONG_BLOB
        | ColumnType::MYSQL_TYPE_BLOB
        | ColumnType::MYSQL_TYPE_VAR_STRING
        | ColumnType::MYSQL_TYPE_VARCHAR
        | ColumnType::MYSQL_TYPE_STRING
        | ColumnType::MYSQL_TYPE_ENUM
        | ColumnType::MYSQL_TYPE_SET
        | ColumnType::MYSQL_TYPE_JSON
        // Exact decimals, dates and times come back as their text.
        | ColumnType::MYSQL_TYPE_DECIMAL
        | ColumnType::MYSQL_TYPE_NEWDECIMAL
        | ColumnType::MYSQL_TYPE_DATE
        | ColumnType::MYSQL_TYPE_NEWDATE
        | ColumnType::MYSQL_TYPE_TIME
        | ColumnType::MYSQL_TYPE_TIME2
        | ColumnType::MYSQL_TYPE_DATETIME
        | ColumnType::MYSQL_TYPE_DATETIME2
        | ColumnType::MYSQL_TYPE_TIMESTAMP
        | ColumnType::MYSQL_TYPE_TIMESTAMP2 => DataType::Str,
        _ => DataType::Other,
    }
}

/// A wire value as the column's interface type.
fn decode(value: mysql_async::Value, ty: DataType, date_only: bool) -> Option<Value> {
    use mysql_async::Value as M;
    let int = |i: i64| -> Option<Value> {
        Some(match ty {
            DataType::Boolean => Value::Boolean(i != 0),
            DataType::Int8 => Value::Int8(i8::try_from(i).ok()?),
            DataType::Int16 => Value::Int16(i16::try_from(i).ok()?),
            DataType::Int32 => Value::Int32(i32::try_from(i).ok()?),
            DataType::Uint8 => Value::Uint8(u8::try_from(i).ok()?),
            DataType::Uint16 => Value::Uint16(u16::try_from(i).ok()?),
            DataType::Uint32 => Value::Uint32(u32::try_from(i).ok()?),
            DataType::Uint64 => Value::Uint64(u64::try_from(i).ok()?),
            _ => Value::Int64(i),
        })
    };
    Some(match value {
        M::NULL => Value::Null,
        M::Int(i) => return int(i),
        M::UInt(u) => match ty {
            DataType::Uint64 => Value::Uint64(u),
            _ => return int(i64::try_from(u).ok()?),
        },
        M::Float(f) => Value::Floating32(f),
        M::Double(f) => Value::Floating64(f),
        M::Bytes(b) => match ty {
            DataType::Binary | DataType::Other => Value::Binary(b),
            _ => Value::Str(String::from_utf8(b).ok()?),
        },
        M::Date(y, mo, d, h, mi, s, us) => {
            let date = format!("{y:04}-{mo:02}-{d:02}");
            if date_only {
                Value::Str(date)
            } else if us == 0 {
                Value::Str(format!("{date} {h:02}:{mi:02}:{s:02}"))
            } else {
                Value::Str(format!("{date} {h:02}:{mi:02}:{s:02}.{us:06}"))
            }
        }
        M::Time(negative, days, h, mi, s, us) => {
            let hours = u32::from(h) + days * 24;
            let sign = if negative { "-" } else { "" };
            if us == 0 {
                Value::Str(format!("{sign}{hours:02}:{mi:02}:{s:02}"))
            } else {
                Value::Str(format!("{sign}{hours:02}:{mi:02}:{s:02}.{us:06}"))
            }
        }
    })
}

fn size(v: &Value) -> usize {
    match v {
        Value::Str(s) => s.len(),
        Value::Binary(b) => b.len(),
        _ => 8,
    }
}

/// Columns and rows of a query, version-neutral.
struct Rows {
    columns: Vec<(String, DataType)>,
    rows: Vec<Vec<Value>>,
}

/// One `query`, in a client span and counted in `gyre_outbound_requests_total`.
async fn query(
    conn: Arc<Mutex<mysql_async::Conn>>,
    statement: String,
    params: Vec<Value>,
) -> Result<Rows, MysqlError> {
    gyre_telemetry::outbound_call(gyre_telemetry::Outbound::Mysql, "query", async move {
        let mut conn = conn.lock().await;
        let params: Vec<mysql_async::Value> = params.into_iter().map(Into::into).collect();
        let mut result = conn.exec_iter(statement, params).await?;
        let columns: Vec<(String, DataType)> = result
            .columns_ref()
            .iter()
            .map(|c| (c.name_str().into_owned(), data_type(c)))
            .collect();
        // DATE columns have no time part (a DATETIME at midnight does).
        let date_only: Vec<bool> = result
            .columns_ref()
            .iter()
            .map(|c| {
                matches!(
                    c.column_type(),
                    ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE
                )
            })
            .collect();
        let mut rows = Vec::new();
        let mut total = 0usize;
        while let Some(row) = result.next().await? {
            let values = row.unwrap();
            let mut decoded = Vec::with_capacity(values.len());
            for (i, value) in values.into_iter().enumerate() {
                let (name, ty) = columns
                    .get(i)
                    .cloned()
                    .unwrap_or((String::new(), DataType::Other));
                let value = decode(value, ty, date_only.get(i).copied().unwrap_or(false))
                    .ok_or_else(|| {
                        MysqlError::QueryFailed(format!(
                            "cannot convert the value of column `{name}` to its interface type"
                        ))
                    })?;
                total += size(&value);
                decoded.push(value);
            }
            if total > MAX_RESULT_BYTES {
                // Drain nothing more: dropping the result discards the rest.
                drop(result);
                return Err(MysqlError::Other(format!(
                    "the query's result is larger than {} MiB; select fewer rows or columns",
                    MAX_RESULT_BYTES >> 20
                )));
            }
            rows.push(decoded);
        }
        Ok(Rows { columns, rows })
    })
    .await
}

/// One `execute`, in a client span and counted in `gyre_outbound_requests_total`.
async fn execute(
    conn: Arc<Mutex<mysql_async::Conn>>,
    statement: String,
    params: Vec<Value>,
) -> Result<(), MysqlError> {
    gyre_telemetry::outbound_call(gyre_telemetry::Outbound::Mysql, "execute", async move {
        let mut conn = conn.lock().await;
        let params: Vec<mysql_async::Value> = params.into_iter().map(Into::into).collect();
        conn.exec_drop(statement, params).await?;
        Ok(())
    })
    .await
}

impl MysqlView<'_> {
    /// [`Self::check_open`], counted in the metrics when refused.
    fn begin_open(&mut self, address: &str) -> Result<Arc<crate::ComponentMysql>, MysqlError> {
        let checked = self.check_open(address);
        gyre_telemetry::metrics().checked(gyre_telemetry::Outbound::Mysql, checked)
    }

    fn check_open(&mut self, address: &str) -> Result<Arc<crate::ComponentMysql>, MysqlError> {
        let not_permitted =
            || MysqlError::ConnectionFailed(format!("address {address} is not permitted"));
        let Some(component) = self.state.component.clone() else {
            return Err(not_permitted());
        };
        if !component.allowed.allows_url(address) {
            tracing::warn!(
                component = %component.id,
                "Outbound network destination not allowed: {} (add it to the component's `allowed_outbound_hosts`)",
                without_password(address)
            );
            return Err(not_permitted());
        }
        if self.state.open >= MAX_CONNECTIONS_PER_INSTANCE {
            return Err(MysqlError::ConnectionFailed(format!(
                "too many open connections (at most {MAX_CONNECTIONS_PER_INSTANCE} per request)"
            )));
        }
        Ok(component)
    }

    fn finish_open(&mut self, conn: mysql_async::Conn) -> Result<Resource<Connection>, MysqlError> {
        let resource = self
            .table
            .push(Connection {
                conn: Arc::new(Mutex::new(conn)),
            })
            .map_err(|e| MysqlError::Other(e.to_string()))?;
        self.state.open += 1;
        Ok(resource)
    }

    fn conn(&self, c: &Resource<Connection>) -> Result<Arc<Mutex<mysql_async::Conn>>, MysqlError> {
        self.table
            .get(c)
            .map(|c| c.conn.clone())
            .map_err(|_| MysqlError::Other("invalid connection handle".into()))
    }

    fn close(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        self.state.open = self.state.open.saturating_sub(1);
        Ok(())
    }
}

/// An address for the log, without its password.
fn without_password(address: &str) -> String {
    match address.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://{host}"),
            None => address.to_string(),
        },
        None => address.to_string(),
    }
}

/// A whole result, for the versions that return one.
macro_rules! row_set {
    ($m:ident) => {
        impl From<Rows> for $m::RowSet {
            fn from(rows: Rows) -> Self {
                $m::RowSet {
                    columns: rows.columns.into_iter().map(Into::into).collect(),
                    rows: rows
                        .rows
                        .into_iter()
                        .map(|r| r.into_iter().map(Into::into).collect())
                        .collect(),
                }
            }
        }
    };
}

/// Parameters, values and columns, the same in every version.
macro_rules! value_types {
    ($m:ident) => {
        impl From<$m::ParameterValue> for Value {
            fn from(p: $m::ParameterValue) -> Self {
                use $m::ParameterValue as P;
                match p {
                    P::Boolean(b) => Value::Boolean(b),
                    P::Int8(i) => Value::Int8(i),
                    P::Int16(i) => Value::Int16(i),
                    P::Int32(i) => Value::Int32(i),
                    P::Int64(i) => Value::Int64(i),
                    P::Uint8(u) => Value::Uint8(u),
                    P::Uint16(u) => Value::Uint16(u),
                    P::Uint32(u) => Value::Uint32(u),
                    P::Uint64(u) => Value::Uint64(u),
                    P::Floating32(f) => Value::Floating32(f),
                    P::Floating64(f) => Value::Floating64(f),
                    P::Str(s) => Value::Str(s),
                    P::Binary(b) => Value::Binary(b),
                    P::DbNull => Value::Null,
                }
            }
        }

        impl From<Value> for $m::DbValue {
            fn from(v: Value) -> Self {
                use $m::DbValue as D;
                match v {
                    Value::Null => D::DbNull,
                    Value::Boolean(b) => D::Boolean(b),
                    Value::Int8(i) => D::Int8(i),
                    Value::Int16(i) => D::Int16(i),
                    Value::Int32(i) => D::Int32(i),
                    Value::Int64(i) => D::Int64(i),
                    Value::Uint8(u) => D::Uint8(u),
                    Value::Uint16(u) => D::Uint16(u),
                    Value::Uint32(u) => D::Uint32(u),
                    Value::Uint64(u) => D::Uint64(u),
                    Value::Floating32(f) => D::Floating32(f),
                    Value::Floating64(f) => D::Floating64(f),
                    Value::Str(s) => D::Str(s),
                    Value::Binary(b) => D::Binary(b),
                }
            }
        }

        impl From<(String, DataType)> for $m::Column {
            fn from((name, t): (String, DataType)) -> Self {
                use $m::DbDataType as T;
                let data_type = match t {
                    DataType::Boolean => T::Boolean,
                    DataType::Int8 => T::Int8,
                    DataType::Int16 => T::Int16,
                    DataType::Int32 => T::Int32,
                    DataType::Int64 => T::Int64,
                    DataType::Uint8 => T::Uint8,
                    DataType::Uint16 => T::Uint16,
                    DataType::Uint32 => T::Uint32,
                    DataType::Uint64 => T::Uint64,
                    DataType::Floating32 => T::Floating32,
                    DataType::Floating64 => T::Floating64,
                    DataType::Str => T::Str,
                    DataType::Binary => T::Binary,
                    DataType::Other => T::Other,
                };
                $m::Column { name, data_type }
            }
        }
    };
}

/// The versions whose errors are `rdbms-types`'s, with the value types.
macro_rules! version_types {
    ($m:ident) => {
        impl From<MysqlError> for $m::Error {
            fn from(e: MysqlError) -> Self {
                match e {
                    MysqlError::ConnectionFailed(m) => $m::Error::ConnectionFailed(m),
                    MysqlError::BadParameter(m) => $m::Error::BadParameter(m),
                    MysqlError::QueryFailed(m) => $m::Error::QueryFailed(m),
                    MysqlError::Other(m) => $m::Error::Other(m),
                }
            }
        }
        value_types!($m);
    };
}
version_types!(v2t);
version_types!(v3);
value_types!(v1t);
row_set!(v2t);
row_set!(v1t);

// fermyon:spin/mysql (Spin 1.x): the address on every call.

impl From<MysqlError> for v1::MysqlError {
    fn from(e: MysqlError) -> Self {
        match e {
            MysqlError::ConnectionFailed(m) => v1::MysqlError::ConnectionFailed(m),
            MysqlError::BadParameter(m) => v1::MysqlError::BadParameter(m),
            MysqlError::QueryFailed(m) => v1::MysqlError::QueryFailed(m),
            MysqlError::Other(m) => v1::MysqlError::OtherError(m),
        }
    }
}

impl MysqlView<'_> {
    /// A pooled connection for one Spin 1.x call; back in the pool after it.
    async fn conn_at(
        &mut self,
        address: &str,
    ) -> Result<Arc<Mutex<mysql_async::Conn>>, MysqlError> {
        let component = self.begin_open(address)?;
        Ok(Arc::new(Mutex::new(component.pools.get(address).await?)))
    }
}

impl v1t::Host for MysqlView<'_> {}

impl v1::Host for MysqlView<'_> {
    async fn query(
        &mut self,
        address: String,
        statement: String,
        params: Vec<v1t::ParameterValue>,
    ) -> Result<v1t::RowSet, v1::MysqlError> {
        let params = params.into_iter().map(Value::from).collect();
        let conn = self.conn_at(&address).await?;
        Ok(query(conn, statement, params).await?.into())
    }

    async fn execute(
        &mut self,
        address: String,
        statement: String,
        params: Vec<v1t::ParameterValue>,
    ) -> Result<(), v1::MysqlError> {
        let params = params.into_iter().map(Value::from).collect();
        let conn = self.conn_at(&address).await?;
        Ok(execute(conn, statement, params).await?)
    }
}

impl v2t::Host for MysqlView<'_> {}
impl v2::Host for MysqlView<'_> {}

impl v2::HostConnection for MysqlView<'_> {
    async fn open(&mut self, address: String) -> Result<Resource<Connection>, v2t::Error> {
        let component = self.begin_open(&address)?;
        let conn = component.pools.get(&address).await?;
        Ok(self.finish_open(conn)?)
    }

    async fn query(
        &mut self,
        c: Resource<Connection>,
        statement: String,
        params: Vec<v2t::ParameterValue>,
    ) -> Result<v2t::RowSet, v2t::Error> {
        let params = params.into_iter().map(Value::from).collect();
        Ok(query(self.conn(&c)?, statement, params).await?.into())
    }

    async fn execute(
        &mut self,
        c: Resource<Connection>,
        statement: String,
        params: Vec<v2t::ParameterValue>,
    ) -> Result<(), v2t::Error> {
        let params = params.into_iter().map(Value::from).collect();
        Ok(execute(self.conn(&c)?, statement, params).await?)
    }

    async fn drop(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
        self.close(c)
    }
}

impl v3::Host for MysqlView<'_> {}

impl v3::HostConnection for MysqlView<'_> {
    async fn drop(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
        self.close(c)
    }
}

impl<T> v3::HostConnectionWithStore<T> for Mysql {
    async fn open(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> Result<Resource<Connection>, v3::Error> {
        let component = accessor.with(|mut access| access.get().begin_open(&address))?;
        let conn = component.pools.get(&address).await?;
        Ok(accessor.with(|mut access| access.get().finish_open(conn))?)
    }

    async fn query(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        statement: String,
        params: Vec<v3::ParameterValue>,
    ) -> Result<
        (
            Vec<v3::Column>,
            StreamReader<v3::Row>,
            FutureReader<Result<(), v3::Error>>,
        ),
        v3::Error,
    > {
        let conn = accessor.with(|mut access| access.get().conn(&c))?;
        let params = params.into_iter().map(Value::from).collect();
        let rows = query(conn, statement, params).await?;
        accessor.with(|mut access| {
            let columns = rows.columns.into_iter().map(Into::into).collect();
            let rows: Vec<v3::Row> = rows
                .rows
                .into_iter()
                .map(|r| r.into_iter().map(Into::into).collect())
                .collect();
            let stream = StreamReader::new(&mut access, rows)
                .map_err(|e| v3::Error::Other(format!("cannot create the row stream: {e}")))?;
            let done = FutureReader::new(&mut access, async {
                wasmtime::error::Ok(Ok::<(), v3::Error>(()))
            })
            .map_err(|e| v3::Error::Other(format!("cannot create the result future: {e}")))?;
            Ok((columns, stream, done))
        })
    }

    async fn execute(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        statement: String,
        params: Vec<v3::ParameterValue>,
    ) -> Result<(), v3::Error> {
        let conn = accessor.with(|mut access| access.get().conn(&c))?;
        let params = params.into_iter().map(Value::from).collect();
        Ok(execute(conn, statement, params).await?)
    }
}
