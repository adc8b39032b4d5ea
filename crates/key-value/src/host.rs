//! The guest-facing key-value interfaces, bound from Gyre's own WIT
//! (`wit/`). All three families share one resource type for an open store,
//! and every operation goes to [`Backend`]; this module only translates
//! types and errors.

use std::sync::Arc;

use anyhow::Result;
use gyre_engine::HostState;
use wasmtime::component::{
    Accessor, FutureReader, HasData, Linker, Resource, ResourceTable, StreamReader,
};

use crate::backend::{Backend, KvError};
use crate::{KvState, OpenError};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "gyre:key-value/host",
        imports: {
            "spin:key-value/key-value.[static]store.open": async | store,
            "spin:key-value/key-value.[method]store.get": async | store,
            "spin:key-value/key-value.[method]store.set": async | store,
            "spin:key-value/key-value.[method]store.delete": async | store,
            "spin:key-value/key-value.[method]store.exists": async | store,
            "spin:key-value/key-value.[method]store.get-keys": async | store | trappable,
            default: async,
        },
        with: {
            "fermyon:spin/key-value@2.0.0.store": crate::host::Store,
            "spin:key-value/key-value.store": crate::host::Store,
            "wasi:keyvalue/store.bucket": crate::host::Store,
            "wasi:keyvalue/atomics.cas": crate::host::Cas,
        },
    });
}

use bindings::fermyon::spin::key_value as unversioned;
use bindings::fermyon::spin2_0_0::key_value as v2;
use bindings::spin::key_value::key_value as v3;
use bindings::wasi::keyvalue::{atomics, batch, store as wasi_store};

/// An open store, as a guest holds it.
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct Store {
    backend: Arc<Backend>,
}

/// A compare-and-swap handle: the key and the value seen when it was made.
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct Cas {
    backend: Arc<Backend>,
    key: String,
    current: Option<Vec<u8>>,
}

pub(crate) struct KvView<'a> {
    state: &'a mut KvState,
    table: &'a mut ResourceTable,
}

struct KeyValue;

impl HasData for KeyValue {
    type Data<'a> = KvView<'a>;
}

fn view(host: &mut HostState) -> KvView<'_> {
    let (state, table) = host.capability::<KvState>();
    KvView { state, table }
}

pub(crate) fn bind(linker: &mut Linker<HostState>) -> Result<()> {
    v2::add_to_linker::<_, KeyValue>(linker, view)?;
    unversioned::add_to_linker::<_, KeyValue>(linker, view)?;
    // Spin 3+ interfaces have `async func`s, for the concurrent engine only.
    if gyre_engine::supports_concurrency(linker) {
        v3::add_to_linker::<_, KeyValue>(linker, view)?;
    }
    wasi_store::add_to_linker::<_, KeyValue>(linker, view)?;
    atomics::add_to_linker::<_, KeyValue>(linker, view)?;
    batch::add_to_linker::<_, KeyValue>(linker, view)?;
    Ok(())
}

/// Errors common to every version, converted into each version's type.
enum HostError {
    Open(OpenError),
    Other(String),
}

impl From<KvError> for HostError {
    fn from(e: KvError) -> Self {
        HostError::Other(e.0)
    }
}

impl From<OpenError> for HostError {
    fn from(e: OpenError) -> Self {
        HostError::Open(e)
    }
}

macro_rules! spin_error {
    ($m:ident) => {
        impl From<HostError> for $m::Error {
            fn from(e: HostError) -> Self {
                match e {
                    HostError::Open(OpenError::AccessDenied) => $m::Error::AccessDenied,
                    HostError::Open(OpenError::NoSuchStore) => $m::Error::NoSuchStore,
                    HostError::Open(OpenError::TableFull) => $m::Error::StoreTableFull,
                    HostError::Other(message) => $m::Error::Other(message),
                }
            }
        }
    };
}
spin_error!(v2);
spin_error!(v3);

impl From<HostError> for wasi_store::Error {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Open(OpenError::AccessDenied) => wasi_store::Error::AccessDenied,
            HostError::Open(OpenError::NoSuchStore) => wasi_store::Error::NoSuchStore,
            HostError::Open(OpenError::TableFull) => {
                wasi_store::Error::Other("too many open stores".into())
            }
            HostError::Other(message) => wasi_store::Error::Other(message),
        }
    }
}

impl KvView<'_> {
    fn open(&mut self, label: &str) -> Result<Resource<Store>, HostError> {
        let backend = self.state.open(label)?;
        self.table.push(Store { backend }).map_err(|_| {
            self.state.closed();
            HostError::Open(OpenError::TableFull)
        })
    }

    fn backend(&self, store: &Resource<Store>) -> Result<Arc<Backend>, HostError> {
        self.table
            .get(store)
            .map(|s| s.backend.clone())
            .map_err(|_| HostError::Other("invalid store handle".into()))
    }

    fn close(&mut self, store: Resource<Store>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        self.state.closed();
        Ok(())
    }
}

// fermyon:spin/key-value@2.0.0

impl v2::Host for KvView<'_> {}

impl v2::HostStore for KvView<'_> {
    async fn open(&mut self, label: String) -> Result<Resource<Store>, v2::Error> {
        Ok(KvView::open(self, &label)?)
    }

    async fn get(
        &mut self,
        store: Resource<Store>,
        key: String,
    ) -> Result<Option<Vec<u8>>, v2::Error> {
        let backend = self.backend(&store)?;
        Ok(backend.get(key).await.map_err(HostError::from)?)
    }

    async fn set(
        &mut self,
        store: Resource<Store>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), v2::Error> {
        let backend = self.backend(&store)?;
        Ok(backend.set(key, value).await.map_err(HostError::from)?)
    }

    async fn delete(&mut self, store: Resource<Store>, key: String) -> Result<(), v2::Error> {
        let backend = self.backend(&store)?;
        Ok(backend.delete(key).await.map_err(HostError::from)?)
    }

    async fn exists(&mut self, store: Resource<Store>, key: String) -> Result<bool, v2::Error> {
        let backend = self.backend(&store)?;
        Ok(backend.exists(key).await.map_err(HostError::from)?)
    }

    async fn get_keys(&mut self, store: Resource<Store>) -> Result<Vec<String>, v2::Error> {
        let backend = self.backend(&store)?;
        Ok(backend.keys().await.map_err(HostError::from)?)
    }

    async fn drop(&mut self, store: Resource<Store>) -> wasmtime::Result<()> {
        self.close(store)
    }
}

// fermyon:spin/key-value (Spin 1.x): a store is the table index of the
// same `Store` the versioned interfaces hold as a resource.

impl From<HostError> for unversioned::Error {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Open(OpenError::AccessDenied) => unversioned::Error::AccessDenied,
            HostError::Open(OpenError::NoSuchStore) => unversioned::Error::NoSuchStore,
            HostError::Open(OpenError::TableFull) => unversioned::Error::StoreTableFull,
            HostError::Other(message) => unversioned::Error::Io(message),
        }
    }
}

impl KvView<'_> {
    /// The backend of handle `store`, if it names an open store.
    fn backend_of_handle(&self, store: u32) -> Result<Arc<Backend>, unversioned::Error> {
        self.table
            .get(&Resource::<Store>::new_borrow(store))
            .map(|s| s.backend.clone())
            .map_err(|_| unversioned::Error::InvalidStore)
    }
}

impl unversioned::Host for KvView<'_> {
    async fn open(&mut self, name: String) -> Result<u32, unversioned::Error> {
        Ok(KvView::open(self, &name)?.rep())
    }

    async fn get(&mut self, store: u32, key: String) -> Result<Vec<u8>, unversioned::Error> {
        let backend = self.backend_of_handle(store)?;
        backend
            .get(key)
            .await
            .map_err(HostError::from)?
            .ok_or(unversioned::Error::NoSuchKey)
    }

    async fn set(
        &mut self,
        store: u32,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), unversioned::Error> {
        let backend = self.backend_of_handle(store)?;
        Ok(backend.set(key, value).await.map_err(HostError::from)?)
    }

    async fn delete(&mut self, store: u32, key: String) -> Result<(), unversioned::Error> {
        let backend = self.backend_of_handle(store)?;
        Ok(backend.delete(key).await.map_err(HostError::from)?)
    }

    async fn exists(&mut self, store: u32, key: String) -> Result<bool, unversioned::Error> {
        let backend = self.backend_of_handle(store)?;
        Ok(backend.exists(key).await.map_err(HostError::from)?)
    }

    async fn get_keys(&mut self, store: u32) -> Result<Vec<String>, unversioned::Error> {
        let backend = self.backend_of_handle(store)?;
        Ok(backend.keys().await.map_err(HostError::from)?)
    }

    async fn close(&mut self, store: u32) {
        // Closing a handle that is not an open store does nothing, as in Spin.
        if self.backend_of_handle(store).is_ok() {
            let _ = KvView::close(self, Resource::new_own(store));
        }
    }
}

// spin:key-value/key-value@3.0.0 (component-model async)

impl v3::Host for KvView<'_> {}

impl v3::HostStore for KvView<'_> {
    async fn drop(&mut self, store: Resource<Store>) -> wasmtime::Result<()> {
        self.close(store)
    }
}

fn backend_of<T>(
    accessor: &Accessor<T, KeyValue>,
    store: &Resource<Store>,
) -> Result<Arc<Backend>, v3::Error> {
    Ok(accessor.with(|mut access| access.get().backend(store))?)
}

impl<T> v3::HostStoreWithStore<T> for KeyValue {
    async fn open(
        accessor: &Accessor<T, Self>,
        label: String,
    ) -> Result<Resource<Store>, v3::Error> {
        Ok(accessor.with(|mut access| access.get().open(&label))?)
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        store: Resource<Store>,
        key: String,
    ) -> Result<Option<Vec<u8>>, v3::Error> {
        let backend = backend_of(accessor, &store)?;
        Ok(backend.get(key).await.map_err(HostError::from)?)
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        store: Resource<Store>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), v3::Error> {
        let backend = backend_of(accessor, &store)?;
        Ok(backend.set(key, value).await.map_err(HostError::from)?)
    }

    async fn delete(
        accessor: &Accessor<T, Self>,
        store: Resource<Store>,
        key: String,
    ) -> Result<(), v3::Error> {
        let backend = backend_of(accessor, &store)?;
        Ok(backend.delete(key).await.map_err(HostError::from)?)
    }

    async fn exists(
        accessor: &Accessor<T, Self>,
        store: Resource<Store>,
        key: String,
    ) -> Result<bool, v3::Error> {
        let backend = backend_of(accessor, &store)?;
        Ok(backend.exists(key).await.map_err(HostError::from)?)
    }

    async fn get_keys(
        accessor: &Accessor<T, Self>,
        store: Resource<Store>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), v3::Error>>)> {
        let keys = match backend_of(accessor, &store) {
            Ok(backend) => backend
                .keys()
                .await
                .map_err(|e| v3::Error::from(HostError::from(e))),
            Err(e) => Err(e),
        };
        accessor.with(|mut access| {
            let (keys, result) = match keys {
                Ok(keys) => (keys, Ok(())),
                Err(e) => (Vec::new(), Err(e)),
            };
            let stream = StreamReader::new(&mut access, keys)?;
            let done = FutureReader::new(&mut access, async move { wasmtime::error::Ok(result) })?;
            Ok((stream, done))
        })
    }
}

// wasi:keyvalue@0.2.0-draft2

impl wasi_store::Host for KvView<'_> {
    async fn open(&mut self, identifier: String) -> Result<Resource<Store>, wasi_store::Error> {
        Ok(KvView::open(self, &identifier)?)
    }
}

impl wasi_store::HostBucket for KvView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<Store>,
        key: String,
    ) -> Result<Option<Vec<u8>>, wasi_store::Error> {
        let backend = self.backend(&bucket)?;
        Ok(backend.get(key).await.map_err(HostError::from)?)
    }

    async fn set(
        &mut self,
        bucket: Resource<Store>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), wasi_store::Error> {
        let backend = self.backend(&bucket)?;
        Ok(backend.set(key, value).await.map_err(HostError::from)?)
    }

    async fn delete(
        &mut self,
        bucket: Resource<Store>,
        key: String,
    ) -> Result<(), wasi_store::Error> {
        let backend = self.backend(&bucket)?;
        Ok(backend.delete(key).await.map_err(HostError::from)?)
    }

    async fn exists(
        &mut self,
        bucket: Resource<Store>,
        key: String,
    ) -> Result<bool, wasi_store::Error> {
        let backend = self.backend(&bucket)?;
        Ok(backend.exists(key).await.map_err(HostError::from)?)
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Store>,
        cursor: Option<String>,
    ) -> Result<wasi_store::KeyResponse, wasi_store::Error> {
        if cursor.is_some() {
            return Err(wasi_store::Error::Other(
                "list_keys: cursor not supported".into(),
            ));
        }
        let backend = self.backend(&bucket)?;
        let keys = backend.keys().await.map_err(HostError::from)?;
        Ok(wasi_store::KeyResponse { keys, cursor: None })
    }

    async fn drop(&mut self, bucket: Resource<Store>) -> wasmtime::Result<()> {
        self.close(bucket)
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Store>,
        key: String,
        delta: i64,
    ) -> Result<i64, wasi_store::Error> {
        let backend = self.backend(&bucket)?;
        Ok(backend
            .increment(key, delta)
            .await
            .map_err(HostError::from)?)
    }

    async fn swap(&mut self, cas: Resource<Cas>, value: Vec<u8>) -> Result<(), atomics::CasError> {
        let (backend, key, expected) = match self.table.get(&cas) {
            Ok(c) => (c.backend.clone(), c.key.clone(), c.current.clone()),
            Err(_) => {
                return Err(atomics::CasError::StoreError(wasi_store::Error::Other(
                    "invalid cas handle".into(),
                )));
            }
        };
        match backend.compare_and_swap(key, expected, value).await {
            Ok(true) => {
                let _ = self.table.delete(cas);
                Ok(())
            }
            Ok(false) => Err(atomics::CasError::CasFailed(cas)),
            Err(e) => {
                let _ = self.table.delete(cas);
                Err(atomics::CasError::StoreError(HostError::from(e).into()))
            }
        }
    }
}

impl atomics::HostCas for KvView<'_> {
    async fn new(
        &mut self,
        bucket: Resource<Store>,
        key: String,
    ) -> Result<Resource<Cas>, wasi_store::Error> {
        let backend = self.backend(&bucket)?;
        let current = backend.get(key.clone()).await.map_err(HostError::from)?;
        self.table
            .push(Cas {
                backend,
                key,
                current,
            })
            .map_err(|_| wasi_store::Error::Other("too many open resources".into()))
    }

    async fn current(&mut self, cas: Resource<Cas>) -> Result<Option<Vec<u8>>, wasi_store::Error> {
        self.table
            .get(&cas)
            .map(|c| c.current.clone())
            .map_err(|_| wasi_store::Error::Other("invalid cas handle".into()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Store>,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, wasi_store::Error> {
        let backend = self.backend(&bucket)?;
        Ok(backend.get_many(keys).await.map_err(HostError::from)?)
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Store>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), wasi_store::Error> {
        let backend = self.backend(&bucket)?;
        Ok(backend
            .set_many(key_values)
            .await
            .map_err(HostError::from)?)
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Store>,
        keys: Vec<String>,
    ) -> Result<(), wasi_store::Error> {
        let backend = self.backend(&bucket)?;
        Ok(backend.delete_many(keys).await.map_err(HostError::from)?)
    }
}
