//! The guest-facing PostgreSQL interfaces, bound from Gyre's own WIT
//! (`wit/`). Every version runs the same operations on the version-neutral
//! [`Value`] model; they differ only in their types and, for 4.2's `*-async`
//! functions, in being called through component-model async.

#![allow(clippy::result_large_err)] // the 4.x error carries PostgreSQL's report

use std::sync::Arc;

use anyhow::Result;
use deadpool_postgres::Object;
use gyre_engine::HostState;
use tokio_postgres::error::SqlState;
use wasmtime::component::{
    Accessor, FutureReader, HasData, Linker, Resource, ResourceTable, StreamReader,
};

use crate::values::{self, BoundKind, DataType, Value};
use crate::{MAX_CONNECTIONS_PER_INSTANCE, MAX_RESULT_BYTES, PgError, PostgresState};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "gyre:postgres/host",
        imports: {
            "spin:postgres/postgres.[static]connection.open-async": async | store,
            "spin:postgres/postgres.[method]connection.query-async": async | store,
            "spin:postgres/postgres.[method]connection.execute-async": async | store,
            "spin:postgres/postgres.[method]connection-builder.build-async": async | store,
            default: async,
        },
        with: {
            "fermyon:spin/postgres@2.0.0.connection": crate::host::Connection,
            "spin:postgres/postgres.connection": crate::host::Connection,
            "spin:postgres/postgres.connection-builder": crate::host::ConnectionBuilder,
        },
    });
}

use bindings::fermyon::spin::postgres as v1;
use bindings::fermyon::spin::rdbms_types as v1t;
use bindings::fermyon::spin2_0_0::postgres as v2;
use bindings::fermyon::spin2_0_0::rdbms_types as v2t;
use bindings::spin::postgres3_0_0::postgres as v3;
use bindings::spin::postgres4_2_0::postgres as v4;

/// An open connection: a pooled client, returned to its pool when the
/// guest drops the handle.
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct Connection {
    client: Arc<Object>,
}

/// A connection being configured (4.1's `connection-builder`).
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct ConnectionBuilder {
    address: String,
    ca_root: Option<String>,
}

pub(crate) struct PostgresView<'a> {
    state: &'a mut PostgresState,
    table: &'a mut ResourceTable,
}

struct Postgres;

impl HasData for Postgres {
    type Data<'a> = PostgresView<'a>;
}

fn view(host: &mut HostState) -> PostgresView<'_> {
    let (state, table) = host.capability::<PostgresState>();
    PostgresView { state, table }
}

pub(crate) fn bind(linker: &mut Linker<HostState>) -> Result<()> {
    v2::add_to_linker::<_, Postgres>(linker, view)?;
    v1::add_to_linker::<_, Postgres>(linker, view)?;
    // Spin 3+ interfaces have `async func`s, for the concurrent engine only.
    if gyre_engine::supports_concurrency(linker) {
        v3::add_to_linker::<_, Postgres>(linker, view)?;
        v4::add_to_linker::<_, Postgres>(linker, view)?;
    }
    Ok(())
}

/// Columns and rows of a query, version-neutral.
struct Rows {
    columns: Vec<(String, DataType)>,
    rows: Vec<Vec<Value>>,
}

/// Whether an error means the cached prepared statement went stale (the
/// schema changed under it), so preparing again will help.
fn stale_statement(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::FEATURE_NOT_SUPPORTED) | Some(&SqlState::INVALID_SQL_STATEMENT_NAME)
    )
}

/// Prepares (once per pooled connection) and runs `f`; retried once with a
/// fresh statement when the schema changed since it was prepared.
async fn with_statement<T, F, Fut>(client: &Object, statement: &str, f: F) -> Result<T, PgError>
where
    F: Fn(tokio_postgres::Statement) -> Fut,
    Fut: std::future::Future<Output = Result<T, PgError>>,
{
    let prepared = client.prepare_cached(statement).await?;
    match f(prepared).await {
        Err(PgError::Query(e)) if stale_statement(&e) => {
            client.statement_cache.clear();
            let prepared = client.prepare_cached(statement).await?;
            f(prepared).await
        }
        other => other,
    }
}

/// One `query`, in a client span and counted in `gyre_outbound_requests_total`.
async fn query(
    client: Arc<Object>,
    statement: String,
    params: Vec<Value>,
) -> Result<Rows, PgError> {
    gyre_telemetry::outbound_call(gyre_telemetry::Outbound::Postgres, "query", async move {
        use futures_util::TryStreamExt as _;
        with_statement(&client, &statement, |prepared| {
            let client = client.clone();
            let params = &params;
            async move {
                let columns = prepared
                    .columns()
                    .iter()
                    .map(|c| (c.name().to_string(), values::data_type(c.type_())))
                    .collect();
                let stream = client.query_raw(&prepared, params.iter()).await?;
                futures_util::pin_mut!(stream);
                let mut rows = Vec::new();
                let mut size = 0usize;
                while let Some(row) = stream.try_next().await? {
                    let mut decoded = Vec::with_capacity(row.len());
                    for i in 0..row.len() {
                        let value = values::decode(&row, i)?;
                        size += value.size();
                        decoded.push(value);
                    }
                    if size > MAX_RESULT_BYTES {
                        return Err(PgError::Other(format!(
                            "the query's result is larger than {} MiB; select fewer rows or columns",
                            MAX_RESULT_BYTES >> 20
                        )));
                    }
                    rows.push(decoded);
                }
                Ok(Rows { columns, rows })
            }
        })
        .await
    })
    .await
}

/// One `execute`, in a client span and counted in `gyre_outbound_requests_total`.
async fn execute(
    client: Arc<Object>,
    statement: String,
    params: Vec<Value>,
) -> Result<u64, PgError> {
    gyre_telemetry::outbound_call(gyre_telemetry::Outbound::Postgres, "execute", async move {
        with_statement(&client, &statement, |prepared| {
            let client = client.clone();
            let params = &params;
            async move { Ok(client.execute_raw(&prepared, params.iter()).await?) }
        })
        .await
    })
    .await
}

impl PostgresView<'_> {
    /// [`Self::check_open`], counted in the metrics when refused.
    fn begin_open(
        &mut self,
        address: &str,
    ) -> Result<(Arc<crate::ComponentPostgres>, tokio_postgres::Config), PgError> {
        let checked = self.check_open(address);
        gyre_telemetry::metrics().checked(gyre_telemetry::Outbound::Postgres, checked)
    }

    /// Checks the address and the instance's connection budget.
    fn check_open(
        &mut self,
        address: &str,
    ) -> Result<(Arc<crate::ComponentPostgres>, tokio_postgres::Config), PgError> {
        let Some(component) = self.state.component.clone() else {
            // No `allowed_outbound_hosts` at all: the check names the address.
            crate::check_address(address, &Default::default())?;
            return Err(PgError::ConnectionFailed(
                "no outbound hosts are allowed".into(),
            ));
        };
        let config = crate::check_address(address, &component.allowed).inspect_err(|e| {
            tracing::warn!(
                component = %component.id,
                "Outbound network destination not allowed: {e} (add it to the component's `allowed_outbound_hosts`)"
            );
        })?;
        if self.state.open >= MAX_CONNECTIONS_PER_INSTANCE {
            return Err(PgError::ConnectionFailed(format!(
                "too many open connections (at most {MAX_CONNECTIONS_PER_INSTANCE} per request)"
            )));
        }
        Ok((component, config))
    }

    fn finish_open(&mut self, client: Object) -> Result<Resource<Connection>, PgError> {
        let resource = self
            .table
            .push(Connection {
                client: Arc::new(client),
            })
            .map_err(|e| PgError::Other(e.to_string()))?;
        self.state.open += 1;
        Ok(resource)
    }

    fn client(&self, connection: &Resource<Connection>) -> Result<Arc<Object>, PgError> {
        self.table
            .get(connection)
            .map(|c| c.client.clone())
            .map_err(|_| PgError::Other("invalid connection handle".into()))
    }

    fn close(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        self.state.open = self.state.open.saturating_sub(1);
        Ok(())
    }

    async fn open(
        &mut self,
        address: &str,
        ca_root: Option<&str>,
    ) -> Result<Resource<Connection>, PgError> {
        let (component, config) = self.begin_open(address)?;
        let client = component.pools.get(address, &config, ca_root).await?;
        self.finish_open(client)
    }
}

async fn open_with<T>(
    accessor: &Accessor<T, Postgres>,
    address: String,
    ca_root: Option<String>,
) -> Result<Resource<Connection>, PgError> {
    let (component, config) = accessor.with(|mut access| access.get().begin_open(&address))?;
    let client = component
        .pools
        .get(&address, &config, ca_root.as_deref())
        .await?;
    accessor.with(|mut access| access.get().finish_open(client))
}

fn client_of<T>(
    accessor: &Accessor<T, Postgres>,
    connection: &Resource<Connection>,
) -> Result<Arc<Object>, PgError> {
    accessor.with(|mut access| access.get().client(connection))
}

// ---------------------------------------------------------------------------
// Error text shared by the versions whose `query-failed` is a string.

fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.to_string(),
        None => {
            use std::error::Error as _;
            match e.source() {
                Some(source) => format!("{e}: {source}"),
                None => e.to_string(),
            }
        }
    }
}

/// Whether the driver refused a parameter before sending the query.
fn is_parameter_error(e: &tokio_postgres::Error) -> bool {
    let text = e.to_string();
    text.starts_with("error serializing parameter") || text.contains("parameters but got")
}

macro_rules! string_errors {
    ($m:ident) => {
        impl From<PgError> for $m::Error {
            fn from(e: PgError) -> Self {
                match e {
                    PgError::ConnectionFailed(m) => $m::Error::ConnectionFailed(m),
                    PgError::BadParameter(m) => $m::Error::BadParameter(m),
                    PgError::Query(e) if is_parameter_error(&e) => {
                        $m::Error::BadParameter(error_text(&e))
                    }
                    PgError::Query(e) => $m::Error::QueryFailed(error_text(&e)),
                    PgError::ValueConversion(m) => $m::Error::ValueConversionFailed(m),
                    PgError::Other(m) => $m::Error::Other(m),
                }
            }
        }
    };
}
string_errors!(v2t);
string_errors!(v3);

impl From<PgError> for v4::Error {
    fn from(e: PgError) -> Self {
        match e {
            PgError::ConnectionFailed(m) => v4::Error::ConnectionFailed(m),
            PgError::BadParameter(m) => v4::Error::BadParameter(m),
            PgError::Query(e) if is_parameter_error(&e) => v4::Error::BadParameter(error_text(&e)),
            PgError::Query(e) => v4::Error::QueryFailed(match e.as_db_error() {
                Some(db) => v4::QueryError::DbError(db_error(db)),
                None => v4::QueryError::Text(error_text(&e)),
            }),
            PgError::ValueConversion(m) => v4::Error::ValueConversionFailed(m),
            PgError::Other(m) => v4::Error::Other(m),
        }
    }
}

fn db_error(db: &tokio_postgres::error::DbError) -> v4::DbError {
    let mut extras = Vec::new();
    let mut extra = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            extras.push((name.to_string(), value));
        }
    };
    extra("hint", db.hint().map(str::to_string));
    extra("where", db.where_().map(str::to_string));
    extra("schema", db.schema().map(str::to_string));
    extra("table", db.table().map(str::to_string));
    extra("column", db.column().map(str::to_string));
    extra("datatype", db.datatype().map(str::to_string));
    extra("constraint", db.constraint().map(str::to_string));
    extra(
        "position",
        db.position().map(|p| match p {
            tokio_postgres::error::ErrorPosition::Original(n) => n.to_string(),
            tokio_postgres::error::ErrorPosition::Internal { position, .. } => position.to_string(),
        }),
    );
    extra("routine", db.routine().map(str::to_string));
    v4::DbError {
        as_text: db.to_string(),
        severity: db.severity().to_string(),
        code: db.code().code().to_string(),
        message: db.message().to_string(),
        detail: db.detail().map(str::to_string),
        extras,
    }
}

// ---------------------------------------------------------------------------
// fermyon:spin/postgres@2.0.0 (rdbms-types)

/// The values of the 2.0 and the unversioned `rdbms-types` (the same
/// types in two packages), to and from the version-neutral [`Value`].
macro_rules! rdbms_v2_values {
    ($t:ident, $m:ident) => {
        mod $m {
            use super::{DataType, Rows, Value, $t};

            impl From<$t::ParameterValue> for Value {
                fn from(p: $t::ParameterValue) -> Self {
                    use $t::ParameterValue as P;
                    match p {
                        P::Boolean(b) => Value::Boolean(b),
                        P::Int8(i) => Value::Int8(i),
                        P::Int16(i) => Value::Int16(i),
                        P::Int32(i) => Value::Int32(i),
                        P::Int64(i) => Value::Int64(i),
                        // PostgreSQL has no unsigned types: widen to the next signed one.
                        P::Uint8(u) => Value::Int16(i16::from(u)),
                        P::Uint16(u) => Value::Int32(i32::from(u)),
                        P::Uint32(u) => Value::Int64(i64::from(u)),
                        P::Uint64(u) => Value::Uint64(u),
                        P::Floating32(f) => Value::Floating32(f),
                        P::Floating64(f) => Value::Floating64(f),
                        P::Str(s) => Value::Str(s),
                        P::Binary(b) => Value::Binary(b),
                        P::DbNull => Value::Null,
                    }
                }
            }

            pub(crate) fn value(v: Value) -> $t::DbValue {
                use $t::DbValue as D;
                match v {
                    Value::Null => D::DbNull,
                    Value::Boolean(b) => D::Boolean(b),
                    Value::Int8(i) => D::Int8(i),
                    Value::Int16(i) => D::Int16(i),
                    Value::Int32(i) => D::Int32(i),
                    Value::Int64(i) => D::Int64(i),
                    Value::Floating32(f) => D::Floating32(f),
                    Value::Floating64(f) => D::Floating64(f),
                    Value::Str(s) => D::Str(s),
                    Value::Binary(b) => D::Binary(b),
                    _ => D::Unsupported,
                }
            }

            pub(crate) fn data_type(t: DataType) -> $t::DbDataType {
                use $t::DbDataType as T;
                match t {
                    DataType::Boolean => T::Boolean,
                    DataType::Int8 => T::Int8,
                    DataType::Int16 => T::Int16,
                    DataType::Int32 => T::Int32,
                    DataType::Int64 => T::Int64,
                    DataType::Floating32 => T::Floating32,
                    DataType::Floating64 => T::Floating64,
                    DataType::Str => T::Str,
                    DataType::Binary => T::Binary,
                    _ => T::Other,
                }
            }

            pub(crate) fn rows(rows: Rows) -> $t::RowSet {
                $t::RowSet {
                    columns: rows
                        .columns
                        .into_iter()
                        .map(|(name, t)| $t::Column {
                            name,
                            data_type: data_type(t),
                        })
                        .collect(),
                    rows: rows
                        .rows
                        .into_iter()
                        .map(|r| r.into_iter().map(value).collect())
                        .collect(),
                }
            }
        }
    };
}
rdbms_v2_values!(v2t, v2_values);
rdbms_v2_values!(v1t, v1_values);

impl v2::Host for PostgresView<'_> {}

impl v2::HostConnection for PostgresView<'_> {
    async fn open(&mut self, address: String) -> Result<Resource<Connection>, v2t::Error> {
        Ok(PostgresView::open(self, &address, None).await?)
    }

    async fn query(
        &mut self,
        c: Resource<Connection>,
        statement: String,
        params: Vec<v2t::ParameterValue>,
    ) -> Result<v2t::RowSet, v2t::Error> {
        let params = params.into_iter().map(Value::from).collect();
        Ok(v2_values::rows(
            query(self.client(&c)?, statement, params).await?,
        ))
    }

    async fn execute(
        &mut self,
        c: Resource<Connection>,
        statement: String,
        params: Vec<v2t::ParameterValue>,
    ) -> Result<u64, v2t::Error> {
        let params = params.into_iter().map(Value::from).collect();
        Ok(execute(self.client(&c)?, statement, params).await?)
    }

    async fn drop(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
        self.close(c)
    }
}

impl v2t::Host for PostgresView<'_> {}

// ---------------------------------------------------------------------------
// fermyon:spin/postgres (Spin 1.x): the address on every call.

impl From<PgError> for v1::PgError {
    fn from(e: PgError) -> Self {
        match v2t::Error::from(e) {
            v2t::Error::ConnectionFailed(m) => v1::PgError::ConnectionFailed(m),
            v2t::Error::BadParameter(m) => v1::PgError::BadParameter(m),
            v2t::Error::QueryFailed(m) => v1::PgError::QueryFailed(m),
            v2t::Error::ValueConversionFailed(m) => v1::PgError::ValueConversionFailed(m),
            v2t::Error::Other(m) => v1::PgError::OtherError(m),
        }
    }
}

impl PostgresView<'_> {
    /// A pooled client for one Spin 1.x call; back in the pool after it.
    async fn client_at(&mut self, address: &str) -> Result<Arc<Object>, PgError> {
        let (component, config) = self.begin_open(address)?;
        Ok(Arc::new(component.pools.get(address, &config, None).await?))
    }
}

impl v1::Host for PostgresView<'_> {
    async fn query(
        &mut self,
        address: String,
        statement: String,
        params: Vec<v1t::ParameterValue>,
    ) -> Result<v1t::RowSet, v1::PgError> {
        let params = params.into_iter().map(Value::from).collect();
        let client = self.client_at(&address).await?;
        Ok(v1_values::rows(query(client, statement, params).await?))
    }

    async fn execute(
        &mut self,
        address: String,
        statement: String,
        params: Vec<v1t::ParameterValue>,
    ) -> Result<u64, v1::PgError> {
        let params = params.into_iter().map(Value::from).collect();
        let client = self.client_at(&address).await?;
        Ok(execute(client, statement, params).await?)
    }
}

impl v1t::Host for PostgresView<'_> {}

// ---------------------------------------------------------------------------
// spin:postgres/postgres@3.0.0

impl From<v3::ParameterValue> for Value {
    fn from(p: v3::ParameterValue) -> Self {
        use v3::ParameterValue as P;
        match p {
            P::Boolean(b) => Value::Boolean(b),
            P::Int8(i) => Value::Int8(i),
            P::Int16(i) => Value::Int16(i),
            P::Int32(i) => Value::Int32(i),
            P::Int64(i) => Value::Int64(i),
            P::Floating32(f) => Value::Floating32(f),
            P::Floating64(f) => Value::Floating64(f),
            P::Str(s) => Value::Str(s),
            P::Binary(b) => Value::Binary(b),
            P::Date((y, m, d)) => Value::Date(y, m, d),
            P::Time((h, m, s, ns)) => Value::Time(h, m, s, ns),
            P::Datetime((y, mo, d, h, mi, s, ns)) => Value::Datetime(y, mo, d, h, mi, s, ns),
            P::Timestamp(t) => Value::Timestamp(t),
            P::DbNull => Value::Null,
        }
    }
}

fn v3_value(v: Value) -> v3::DbValue {
    use v3::DbValue as D;
    match v {
        Value::Null => D::DbNull,
        Value::Boolean(b) => D::Boolean(b),
        Value::Int8(i) => D::Int8(i),
        Value::Int16(i) => D::Int16(i),
        Value::Int32(i) => D::Int32(i),
        Value::Int64(i) => D::Int64(i),
        Value::Floating32(f) => D::Floating32(f),
        Value::Floating64(f) => D::Floating64(f),
        Value::Str(s) => D::Str(s),
        Value::Binary(b) => D::Binary(b),
        Value::Date(y, m, d) => D::Date((y, m, d)),
        Value::Time(h, m, s, ns) => D::Time((h, m, s, ns)),
        Value::Datetime(y, mo, d, h, mi, s, ns) => D::Datetime((y, mo, d, h, mi, s, ns)),
        Value::Timestamp(t) => D::Timestamp(t),
        _ => D::Unsupported,
    }
}

fn v3_type(t: DataType) -> v3::DbDataType {
    use v3::DbDataType as T;
    match t {
        DataType::Boolean => T::Boolean,
        DataType::Int8 => T::Int8,
        DataType::Int16 => T::Int16,
        DataType::Int32 => T::Int32,
        DataType::Int64 => T::Int64,
        DataType::Floating32 => T::Floating32,
        DataType::Floating64 => T::Floating64,
        DataType::Str => T::Str,
        DataType::Binary => T::Binary,
        DataType::Date => T::Date,
        DataType::Time => T::Time,
        DataType::Datetime => T::Datetime,
        DataType::Timestamp => T::Timestamp,
        _ => T::Other,
    }
}

impl v3::Host for PostgresView<'_> {}

impl v3::HostConnection for PostgresView<'_> {
    async fn open(&mut self, address: String) -> Result<Resource<Connection>, v3::Error> {
        Ok(PostgresView::open(self, &address, None).await?)
    }

    async fn query(
        &mut self,
        c: Resource<Connection>,
        statement: String,
        params: Vec<v3::ParameterValue>,
    ) -> Result<v3::RowSet, v3::Error> {
        let params = params.into_iter().map(Value::from).collect();
        let rows = query(self.client(&c)?, statement, params).await?;
        Ok(v3::RowSet {
            columns: rows
                .columns
                .into_iter()
                .map(|(name, t)| v3::Column {
                    name,
                    data_type: v3_type(t),
                })
                .collect(),
            rows: rows
                .rows
                .into_iter()
                .map(|r| r.into_iter().map(v3_value).collect())
                .collect(),
        })
    }

    async fn execute(
        &mut self,
        c: Resource<Connection>,
        statement: String,
        params: Vec<v3::ParameterValue>,
    ) -> Result<u64, v3::Error> {
        let params = params.into_iter().map(Value::from).collect();
        Ok(execute(self.client(&c)?, statement, params).await?)
    }

    async fn drop(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
        self.close(c)
    }
}

// ---------------------------------------------------------------------------
// spin:postgres/postgres@4.2.0 (serves 4.0 and 4.1)

fn bound_in<T>(b: Option<(T, v4::RangeBoundKind)>) -> values::Bound<T> {
    b.map(|(v, k)| {
        (
            v,
            match k {
                v4::RangeBoundKind::Inclusive => BoundKind::Inclusive,
                v4::RangeBoundKind::Exclusive => BoundKind::Exclusive,
            },
        )
    })
}

fn bound_out<T>(b: values::Bound<T>) -> Option<(T, v4::RangeBoundKind)> {
    b.map(|(v, k)| {
        (
            v,
            match k {
                BoundKind::Inclusive => v4::RangeBoundKind::Inclusive,
                BoundKind::Exclusive => v4::RangeBoundKind::Exclusive,
            },
        )
    })
}

impl From<v4::ParameterValue> for Value {
    fn from(p: v4::ParameterValue) -> Self {
        use v4::ParameterValue as P;
        match p {
            P::Boolean(b) => Value::Boolean(b),
            P::Int8(i) => Value::Int8(i),
            P::Int16(i) => Value::Int16(i),
            P::Int32(i) => Value::Int32(i),
            P::Int64(i) => Value::Int64(i),
            P::Floating32(f) => Value::Floating32(f),
            P::Floating64(f) => Value::Floating64(f),
            P::Str(s) => Value::Str(s),
            P::Binary(b) => Value::Binary(b),
            P::Date((y, m, d)) => Value::Date(y, m, d),
            P::Time((h, m, s, ns)) => Value::Time(h, m, s, ns),
            P::Datetime((y, mo, d, h, mi, s, ns)) => Value::Datetime(y, mo, d, h, mi, s, ns),
            P::Timestamp(t) => Value::Timestamp(t),
            P::Uuid(s) => Value::Uuid(s),
            P::Jsonb(b) => Value::Jsonb(b),
            P::Decimal(s) => Value::Decimal(s),
            P::RangeInt32((lo, hi)) => Value::RangeInt32(bound_in(lo), bound_in(hi)),
            P::RangeInt64((lo, hi)) => Value::RangeInt64(bound_in(lo), bound_in(hi)),
            P::RangeDecimal((lo, hi)) => Value::RangeDecimal(bound_in(lo), bound_in(hi)),
            P::ArrayInt32(a) => Value::ArrayInt32(a),
            P::ArrayInt64(a) => Value::ArrayInt64(a),
            P::ArrayDecimal(a) => Value::ArrayDecimal(a),
            P::ArrayStr(a) => Value::ArrayStr(a),
            P::Interval(i) => Value::Interval {
                micros: i.micros,
                days: i.days,
                months: i.months,
            },
            P::DbNull => Value::Null,
        }
    }
}

fn v4_value(v: Value) -> v4::DbValue {
    use v4::DbValue as D;
    match v {
        Value::Null => D::DbNull,
        Value::Boolean(b) => D::Boolean(b),
        Value::Int8(i) => D::Int8(i),
        Value::Int16(i) => D::Int16(i),
        Value::Int32(i) => D::Int32(i),
        Value::Int64(i) => D::Int64(i),
        Value::Uint64(u) => D::Decimal(u.to_string()),
        Value::Floating32(f) => D::Floating32(f),
        Value::Floating64(f) => D::Floating64(f),
        Value::Str(s) => D::Str(s),
        Value::Binary(b) => D::Binary(b),
        Value::Date(y, m, d) => D::Date((y, m, d)),
        Value::Time(h, m, s, ns) => D::Time((h, m, s, ns)),
        Value::Datetime(y, mo, d, h, mi, s, ns) => D::Datetime((y, mo, d, h, mi, s, ns)),
        Value::Timestamp(t) => D::Timestamp(t),
        Value::Uuid(s) => D::Uuid(s),
        Value::Jsonb(b) => D::Jsonb(b),
        Value::Decimal(s) => D::Decimal(s),
        Value::RangeInt32(lo, hi) => D::RangeInt32((bound_out(lo), bound_out(hi))),
        Value::RangeInt64(lo, hi) => D::RangeInt64((bound_out(lo), bound_out(hi))),
        Value::RangeDecimal(lo, hi) => D::RangeDecimal((bound_out(lo), bound_out(hi))),
        Value::ArrayInt32(a) => D::ArrayInt32(a),
        Value::ArrayInt64(a) => D::ArrayInt64(a),
        Value::ArrayDecimal(a) => D::ArrayDecimal(a),
        Value::ArrayStr(a) => D::ArrayStr(a),
        Value::Interval {
            micros,
            days,
            months,
        } => D::Interval(v4::Interval {
            micros,
            days,
            months,
        }),
        Value::Unsupported(b) => D::Unsupported(b),
    }
}

fn v4_column((name, t): (String, DataType)) -> v4::Column {
    use v4::DbDataType as T;
    let data_type = match t {
        DataType::Boolean => T::Boolean,
        DataType::Int8 => T::Int8,
        DataType::Int16 => T::Int16,
        DataType::Int32 => T::Int32,
        DataType::Int64 => T::Int64,
        DataType::Floating32 => T::Floating32,
        DataType::Floating64 => T::Floating64,
        DataType::Str => T::Str,
        DataType::Binary => T::Binary,
        DataType::Date => T::Date,
        DataType::Time => T::Time,
        DataType::Datetime => T::Datetime,
        DataType::Timestamp => T::Timestamp,
        DataType::Uuid => T::Uuid,
        DataType::Jsonb => T::Jsonb,
        DataType::Decimal => T::Decimal,
        DataType::RangeInt32 => T::RangeInt32,
        DataType::RangeInt64 => T::RangeInt64,
        DataType::RangeDecimal => T::RangeDecimal,
        DataType::ArrayInt32 => T::ArrayInt32,
        DataType::ArrayInt64 => T::ArrayInt64,
        DataType::ArrayDecimal => T::ArrayDecimal,
        DataType::ArrayStr => T::ArrayStr,
        DataType::Interval => T::Interval,
        DataType::Other(name) => T::Other(name),
    };
    v4::Column { name, data_type }
}

impl v4::Host for PostgresView<'_> {}

impl v4::HostConnection for PostgresView<'_> {
    async fn open(&mut self, address: String) -> Result<Resource<Connection>, v4::Error> {
        Ok(PostgresView::open(self, &address, None).await?)
    }

    async fn query(
        &mut self,
        c: Resource<Connection>,
        statement: String,
        params: Vec<v4::ParameterValue>,
    ) -> Result<v4::RowSet, v4::Error> {
        let params = params.into_iter().map(Value::from).collect();
        let rows = query(self.client(&c)?, statement, params).await?;
        Ok(v4::RowSet {
            columns: rows.columns.into_iter().map(v4_column).collect(),
            rows: rows
                .rows
                .into_iter()
                .map(|r| r.into_iter().map(v4_value).collect())
                .collect(),
        })
    }

    async fn execute(
        &mut self,
        c: Resource<Connection>,
        statement: String,
        params: Vec<v4::ParameterValue>,
    ) -> Result<u64, v4::Error> {
        let params = params.into_iter().map(Value::from).collect();
        Ok(execute(self.client(&c)?, statement, params).await?)
    }

    async fn drop(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
        self.close(c)
    }
}

impl v4::HostConnectionBuilder for PostgresView<'_> {
    async fn new(&mut self, address: String) -> Resource<ConnectionBuilder> {
        // A full table shows up when the builder is used.
        self.table
            .push(ConnectionBuilder {
                address,
                ca_root: None,
            })
            .unwrap_or_else(|_| Resource::new_own(u32::MAX))
    }

    async fn set_ca_root(
        &mut self,
        builder: Resource<ConnectionBuilder>,
        certificate: String,
    ) -> Result<(), v4::Error> {
        if rustls_pemfile::certs(&mut certificate.as_bytes())
            .next()
            .is_none()
        {
            return Err(v4::Error::BadParameter(
                "the CA root is not a PEM certificate".into(),
            ));
        }
        let builder = self
            .table
            .get_mut(&builder)
            .map_err(|_| v4::Error::Other("invalid connection builder handle".into()))?;
        builder.ca_root = Some(certificate);
        Ok(())
    }

    async fn build(
        &mut self,
        builder: Resource<ConnectionBuilder>,
    ) -> Result<Resource<Connection>, v4::Error> {
        let (address, ca_root) = self.builder(&builder)?;
        Ok(PostgresView::open(self, &address, ca_root.as_deref()).await?)
    }

    async fn drop(&mut self, builder: Resource<ConnectionBuilder>) -> wasmtime::Result<()> {
        self.table.delete(builder)?;
        Ok(())
    }
}

impl PostgresView<'_> {
    fn builder(
        &self,
        builder: &Resource<ConnectionBuilder>,
    ) -> Result<(String, Option<String>), v4::Error> {
        self.table
            .get(builder)
            .map(|b| (b.address.clone(), b.ca_root.clone()))
            .map_err(|_| v4::Error::Other("invalid connection builder handle".into()))
    }
}

impl<T> v4::HostConnectionBuilderWithStore<T> for Postgres {
    async fn build_async(
        accessor: &Accessor<T, Self>,
        builder: Resource<ConnectionBuilder>,
    ) -> Result<Resource<Connection>, v4::Error> {
        let (address, ca_root) = accessor.with(|mut access| access.get().builder(&builder))?;
        Ok(open_with(accessor, address, ca_root).await?)
    }
}

impl<T> v4::HostConnectionWithStore<T> for Postgres {
    async fn open_async(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> Result<Resource<Connection>, v4::Error> {
        Ok(open_with(accessor, address, None).await?)
    }

    async fn query_async(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        statement: String,
        params: Vec<v4::ParameterValue>,
    ) -> Result<
        (
            Vec<v4::Column>,
            StreamReader<v4::Row>,
            FutureReader<Result<(), v4::Error>>,
        ),
        v4::Error,
    > {
        let client = client_of(accessor, &c)?;
        let params = params.into_iter().map(Value::from).collect();
        let rows = query(client, statement, params).await?;
        accessor.with(|mut access| {
            let columns = rows.columns.into_iter().map(v4_column).collect();
            let rows: Vec<v4::Row> = rows
                .rows
                .into_iter()
                .map(|r| r.into_iter().map(v4_value).collect())
                .collect();
            let stream = StreamReader::new(&mut access, rows)
                .map_err(|e| v4::Error::Other(format!("cannot create the row stream: {e}")))?;
            let done = FutureReader::new(&mut access, async {
                wasmtime::error::Ok(Ok::<(), v4::Error>(()))
            })
            .map_err(|e| v4::Error::Other(format!("cannot create the result future: {e}")))?;
            Ok((columns, stream, done))
        })
    }

    async fn execute_async(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        statement: String,
        params: Vec<v4::ParameterValue>,
    ) -> Result<u64, v4::Error> {
        let client = client_of(accessor, &c)?;
        let params = params.into_iter().map(Value::from).collect();
        Ok(execute(client, statement, params).await?)
    }
}
