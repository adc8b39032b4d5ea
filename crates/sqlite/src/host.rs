//! The guest-facing SQLite interfaces, bound from Gyre's own WIT (`wit/`).
//! `fermyon:spin/sqlite@2.0.0` and the synchronous half of
//! `spin:sqlite/sqlite@3.1.0` run as async host functions on the calling
//! fiber; the `*-async` functions of 3.1 are component-model async.

use std::sync::Arc;

use anyhow::Result;
use gyre_engine::HostState;
use wasmtime::component::{
    Accessor, FutureReader, HasData, Linker, Resource, ResourceTable, StreamReader,
};

use crate::{Database, MAX_CONNECTIONS_PER_INSTANCE, OpenError, SqlError, SqliteState, Value};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "gyre:sqlite/host",
        imports: {
            "spin:sqlite/sqlite.[static]connection.open-async": async | store,
            "spin:sqlite/sqlite.[method]connection.execute-async": async | store,
            "spin:sqlite/sqlite.[method]connection.last-insert-rowid-async": async | store,
            "spin:sqlite/sqlite.[method]connection.changes-async": async | store,
            default: async,
        },
        with: {
            "fermyon:spin/sqlite@2.0.0.connection": crate::host::Connection,
            "spin:sqlite/sqlite.connection": crate::host::Connection,
        },
    });
}

use bindings::fermyon::spin::sqlite as v1;
use bindings::fermyon::spin2_0_0::sqlite as v2;
use bindings::spin::sqlite::sqlite as v3;

/// An open connection as a guest holds it. Each remembers the rowid and
/// change count of its own last statement: the database is shared.
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct Connection {
    database: Arc<Database>,
    last_insert_rowid: i64,
    changes: u64,
}

/// What the host functions see: the instance's grants and its resources.
pub(crate) struct SqliteView<'a> {
    state: &'a mut SqliteState,
    table: &'a mut ResourceTable,
}

struct Sqlite;

impl HasData for Sqlite {
    type Data<'a> = SqliteView<'a>;
}

fn view(host: &mut HostState) -> SqliteView<'_> {
    let (state, table) = host.capability::<SqliteState>();
    SqliteView { state, table }
}

pub(crate) fn bind(linker: &mut Linker<HostState>) -> Result<()> {
    v2::add_to_linker::<_, Sqlite>(linker, view)?;
    v1::add_to_linker::<_, Sqlite>(linker, view)?;
    // Spin 3+ interfaces have `async func`s, for the concurrent engine only.
    if gyre_engine::supports_concurrency(linker) {
        v3::add_to_linker::<_, Sqlite>(linker, view)?;
    }
    Ok(())
}

/// Errors common to both versions, converted into each version's type.
enum HostError {
    NoSuchDatabase,
    AccessDenied,
    InvalidConnection,
    DatabaseFull,
    Io(String),
}

impl From<SqlError> for HostError {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::DatabaseFull => HostError::DatabaseFull,
            SqlError::Io(m) => HostError::Io(m),
        }
    }
}

macro_rules! convert_error {
    ($m:ident) => {
        impl From<HostError> for $m::Error {
            fn from(e: HostError) -> Self {
                match e {
                    HostError::NoSuchDatabase => $m::Error::NoSuchDatabase,
                    HostError::AccessDenied => $m::Error::AccessDenied,
                    HostError::InvalidConnection => $m::Error::InvalidConnection,
                    HostError::DatabaseFull => $m::Error::DatabaseFull,
                    HostError::Io(m) => $m::Error::Io(m),
                }
            }
        }

        impl From<$m::Value> for Value {
            fn from(v: $m::Value) -> Self {
                match v {
                    $m::Value::Integer(i) => Value::Integer(i),
                    $m::Value::Real(f) => Value::Real(f),
                    $m::Value::Text(s) => Value::Text(s),
                    $m::Value::Blob(b) => Value::Blob(b),
                    $m::Value::Null => Value::Null,
                }
            }
        }

        impl From<crate::QueryResult> for $m::QueryResult {
            fn from(result: crate::QueryResult) -> Self {
                $m::QueryResult {
                    columns: result.columns,
                    rows: rows(result.rows)
                        .into_iter()
                        .map(|values| $m::RowResult { values })
                        .collect(),
                }
            }
        }

        impl From<Value> for $m::Value {
            fn from(v: Value) -> Self {
                match v {
                    Value::Integer(i) => $m::Value::Integer(i),
                    Value::Real(f) => $m::Value::Real(f),
                    Value::Text(s) => $m::Value::Text(s),
                    Value::Blob(b) => $m::Value::Blob(b),
                    Value::Null => $m::Value::Null,
                }
            }
        }
    };
}
convert_error!(v1);
convert_error!(v2);
convert_error!(v3);

impl SqliteView<'_> {
    fn open(&mut self, label: &str) -> Result<Resource<Connection>, HostError> {
        let database = self.state.open(label)?;
        if self.state.open_connections >= MAX_CONNECTIONS_PER_INSTANCE {
            return Err(HostError::Io(format!(
                "too many open connections (at most {MAX_CONNECTIONS_PER_INSTANCE} per instance)"
            )));
        }
        let resource = self
            .table
            .push(Connection {
                database,
                last_insert_rowid: 0,
                changes: 0,
            })
            .map_err(|_| HostError::Io("too many open resources".into()))?;
        self.state.open_connections += 1;
        Ok(resource)
    }

    fn database(&self, connection: &Resource<Connection>) -> Result<Arc<Database>, HostError> {
        self.table
            .get(connection)
            .map(|c| c.database.clone())
            .map_err(|_| HostError::InvalidConnection)
    }

    fn record(&mut self, connection: &Resource<Connection>, result: &crate::QueryResult) {
        if let Ok(c) = self.table.get_mut(connection) {
            c.last_insert_rowid = result.last_insert_rowid;
            c.changes = result.changes;
        }
    }

    /// Runs a statement and remembers its rowid and change count.
    async fn run(
        &mut self,
        connection: &Resource<Connection>,
        statement: String,
        params: Vec<Value>,
    ) -> Result<crate::QueryResult, HostError> {
        let database = self.database(connection)?;
        let result = database.execute(statement, params).await?;
        self.record(connection, &result);
        Ok(result)
    }

    fn close(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        self.state.open_connections = self.state.open_connections.saturating_sub(1);
        Ok(())
    }
}

fn rows<V: From<Value>>(rows: Vec<Vec<Value>>) -> Vec<Vec<V>> {
    rows.into_iter()
        .map(|row| row.into_iter().map(V::from).collect())
        .collect()
}

// fermyon:spin/sqlite (Spin 1.x): a connection is the table index of the
// same `Connection` the versioned interfaces hold as a resource.

impl v1::Host for SqliteView<'_> {
    async fn open(&mut self, database: String) -> Result<u32, v1::Error> {
        Ok(SqliteView::open(self, &database)?.rep())
    }

    async fn execute(
        &mut self,
        conn: u32,
        statement: String,
        parameters: Vec<v1::Value>,
    ) -> Result<v1::QueryResult, v1::Error> {
        let params = parameters.into_iter().map(Value::from).collect();
        let connection = Resource::new_borrow(conn);
        Ok(self.run(&connection, statement, params).await?.into())
    }

    async fn close(&mut self, conn: u32) {
        // Closing a handle that is not an open connection does nothing.
        if self.database(&Resource::new_borrow(conn)).is_ok() {
            let _ = SqliteView::close(self, Resource::new_own(conn));
        }
    }
}

impl v2::Host for SqliteView<'_> {}

impl v2::HostConnection for SqliteView<'_> {
    async fn open(&mut self, database: String) -> Result<Resource<Connection>, v2::Error> {
        Ok(SqliteView::open(self, &database)?)
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        parameters: Vec<v2::Value>,
    ) -> Result<v2::QueryResult, v2::Error> {
        let params = parameters.into_iter().map(Value::from).collect();
        Ok(self.run(&connection, statement, params).await?.into())
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}

impl v3::Host for SqliteView<'_> {}

impl v3::HostConnection for SqliteView<'_> {
    async fn open(&mut self, database: String) -> Result<Resource<Connection>, v3::Error> {
        Ok(SqliteView::open(self, &database)?)
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        parameters: Vec<v3::Value>,
    ) -> Result<v3::QueryResult, v3::Error> {
        let params = parameters.into_iter().map(Value::from).collect();
        Ok(self.run(&connection, statement, params).await?.into())
    }

    async fn last_insert_rowid(&mut self, connection: Resource<Connection>) -> i64 {
        self.table
            .get(&connection)
            .map_or(0, |c| c.last_insert_rowid)
    }

    async fn changes(&mut self, connection: Resource<Connection>) -> u64 {
        self.table.get(&connection).map_or(0, |c| c.changes)
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}

impl<T> v3::HostConnectionWithStore<T> for Sqlite {
    async fn open_async(
        accessor: &Accessor<T, Self>,
        database: String,
    ) -> Result<Resource<Connection>, v3::Error> {
        Ok(accessor.with(|mut access| access.get().open(&database))?)
    }

    async fn execute_async(
        accessor: &Accessor<T, Self>,
        connection: Resource<Connection>,
        statement: String,
        parameters: Vec<v3::Value>,
    ) -> Result<
        (
            Vec<String>,
            StreamReader<v3::RowResult>,
            FutureReader<Result<(), v3::Error>>,
        ),
        v3::Error,
    > {
        let database = accessor.with(|mut access| access.get().database(&connection))?;
        let params = parameters.into_iter().map(Value::from).collect();
        let result = database
            .execute(statement, params)
            .await
            .map_err(HostError::from)?;
        accessor.with(|mut access| {
            access.get().record(&connection, &result);
            let columns = result.columns;
            let rows: Vec<v3::RowResult> = rows(result.rows)
                .into_iter()
                .map(|values| v3::RowResult { values })
                .collect();
            let stream = StreamReader::new(&mut access, rows)
                .map_err(|e| v3::Error::Io(format!("cannot create the row stream: {e}")))?;
            let done = FutureReader::new(&mut access, async {
                wasmtime::error::Ok(Ok::<(), v3::Error>(()))
            })
            .map_err(|e| v3::Error::Io(format!("cannot create the result future: {e}")))?;
            Ok((columns, stream, done))
        })
    }

    async fn last_insert_rowid_async(
        accessor: &Accessor<T, Self>,
        connection: Resource<Connection>,
    ) -> i64 {
        accessor.with(|mut access| {
            access
                .get()
                .table
                .get(&connection)
                .map_or(0, |c| c.last_insert_rowid)
        })
    }

    async fn changes_async(accessor: &Accessor<T, Self>, connection: Resource<Connection>) -> u64 {
        accessor.with(|mut access| access.get().table.get(&connection).map_or(0, |c| c.changes))
    }
}

impl From<OpenError> for HostError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::AccessDenied => HostError::AccessDenied,
            OpenError::NoSuchDatabase => HostError::NoSuchDatabase,
        }
    }
}
