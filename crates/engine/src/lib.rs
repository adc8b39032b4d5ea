//! The Wasmtime engines of a Gyre process, and everything done with them at
//! load time.
//!
//! Serving is designed around a simple split: everything that can be done
//! once per component happens here, at load — componentizing core modules,
//! compiling (or loading compiled code from the on-disk cache), linking into
//! an [`wasmtime::component::InstancePre`] — so that a request only pays for
//! instantiation into a fresh [`wasmtime::Store`].
//!
//! The engines are configured for serving: pooling allocator (falling back
//! to on-demand allocation where address space is short), copy-on-write
//! memory images, epoch interruption driven by a ticker thread, async.
//!
//! There are two, built alike but for one setting. Component-model async
//! (WASI 0.3, the async Spin interfaces) needs Wasmtime's concurrency
//! support, and an engine with it routes *every* call through its task
//! machinery — for a tiny WASI 0.2 component that never uses it, 4 µs more
//! per request in process and 10 µs more server CPU under load. So a
//! component that validates and links without it runs on the *synchronous*
//! engine; one that needs it runs on the *concurrent* engine. Which one a
//! component got is remembered next to its compiled code, so a warm start
//! decides with one file lookup.

mod cache;
mod capability;
mod componentize;
mod deny;
mod extensions;
mod host;
mod instance;
mod limits;
mod output;
mod prepare;
mod spin1;
mod stubs;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use wasmtime::component::{Component, InstancePre, Linker};

pub use cache::CacheOutcome;
pub use capability::{AppCapabilities, Capability, Granted, PrepareGranted, PrepareInstance};
pub use extensions::Extensions;
pub use gyre_compose::Composition;
pub use host::{HostState, HttpHooks};
pub use instance::InstanceConfig;
pub use limits::{AppLimits, ComponentLimits, CpuTimeExceeded, InstanceLimits, RequestWatch};
pub use output::{GuestOutput, OutputEcho};
pub use output::{OutputHub, StreamKind};
pub use stubs::StubbedImports;

/// Converts Wasmtime's error type into `anyhow`, so `.context` can be used.
pub trait WasmtimeResultExt<T> {
    /// The same result with an `anyhow::Error`.
    fn anyhow(self) -> anyhow::Result<T>;
}

impl<T> WasmtimeResultExt<T> for std::result::Result<T, wasmtime::Error> {
    fn anyhow(self) -> anyhow::Result<T> {
        self.map_err(anyhow::Error::from)
    }
}

/// How often the epoch ticker advances the engine's epoch. Deadlines are
/// counted in ticks of this length.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Engine settings chosen by the user or the environment.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Use the pooling allocator: `None` decides by probing the machine.
    pub pooling: Option<bool>,
    /// Where compiled code is cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Most component instances alive at once (pooling allocator size).
    pub max_instances: u32,
    /// Largest linear memory one instance may have, in bytes.
    pub max_memory_bytes: u64,
    /// Run components that need no component-model async on an engine
    /// built without it (faster calls); `false` puts every component on
    /// the concurrent engine.
    pub synchronous_engine: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            pooling: None,
            cache_dir: default_cache_dir(),
            max_instances: 1000,
            max_memory_bytes: 4 << 30,
            synchronous_engine: true,
        }
    }
}

/// The per-user default directory for compiled code.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("gyre").join("compiled"))
}

/// The process-wide engines (see the module docs), their epoch ticker, the
/// compile cache and the linkers components are linked with.
pub struct GyreEngine {
    /// With component-model async: every component can run here.
    concurrent: Flavor,
    /// Without: WASI 0.2-era components run here, faster.
    synchronous: Option<Flavor>,
    cache: Option<cache::CompileCache>,
    pooling: bool,
    ticker_stop: Arc<AtomicBool>,
}

/// One engine with its linker and its key in the compile cache.
/// Lets the metrics scrape read `engine`'s pooling-allocator occupancy
/// for as long as the engine lives.
fn report_pool(name: &'static str, engine: &wasmtime::Engine) {
    let engine = engine.weak();
    gyre_telemetry::metrics().register_engine(name, move || {
        let pool = engine.upgrade()?.pooling_allocator_metrics()?;
        Some(gyre_telemetry::PoolStats {
            component_instances: pool.component_instances(),
            memories: u64::try_from(pool.memories()).unwrap_or(u64::MAX),
            warm_memories: u64::from(pool.unused_warm_memories()),
        })
    });
}

struct Flavor {
    engine: wasmtime::Engine,
    linker: Linker<HostState>,
    cache_key: String,
}

impl Flavor {
    fn new(engine: wasmtime::Engine, capabilities: &[&dyn Capability]) -> Result<Self> {
        let linker = instance::linker(&engine, capabilities)?;
        let cache_key = cache::engine_key(&engine);
        Ok(Flavor {
            engine,
            linker,
            cache_key,
        })
    }
}

/// Whether an engine supports component-model async, so that a capability
/// binds its `async func` interfaces only where they can run.
pub fn supports_concurrency(linker: &Linker<HostState>) -> bool {
    linker.engine().get_concurrency_support()
}

/// Whether a component linked on the synchronous engine left an import
/// unsatisfied that the concurrent engine could provide: the WASI 0.3
/// interfaces and Spin's 3.x+ packages (some of whose functions are async).
fn needs_concurrent_linker(stubbed: &StubbedImports) -> bool {
    stubbed.0.iter().any(|name| {
        name.starts_with("spin:") || (name.starts_with("wasi:") && name.contains("@0.3"))
    })
}

impl Drop for GyreEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// A component ready to be instantiated.
pub struct LoadedComponent {
    /// The compiled component.
    pub component: Component,
    /// Linked against the host: instantiation is all that is left.
    pub pre: InstancePre<HostState>,
    /// Imports Gyre does not implement, linked as failing functions.
    pub stubbed: StubbedImports,
    /// Whether compiled code came from the cache.
    pub cache: CacheOutcome,
}

impl LoadedComponent {
    /// The component's export names, e.g. `wasi:http/handler@0.3.0`.
    pub fn exports(&self) -> Vec<String> {
        self.component
            .component_type()
            .exports(self.component.engine())
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// Whether it runs on the engine with component-model async.
    pub fn on_concurrent_engine(&self) -> bool {
        self.component.engine().get_concurrency_support()
    }
}

impl GyreEngine {
    /// Builds the engine with WASI and wasi:http only.
    pub fn new(options: &EngineOptions) -> Result<Self> {
        Self::with_capabilities(options, &[])
    }

    /// Builds the engines, binds WASI, wasi:http and `capabilities` into
    /// their linkers, and starts the epoch ticker.
    pub fn with_capabilities(
        options: &EngineOptions,
        capabilities: &[&dyn Capability],
    ) -> Result<Self> {
        let pooling_wanted = options.pooling.unwrap_or(true);
        let synchronous_flavor = |pooling| {
            build_engine(options, pooling, false)
                .and_then(|engine| Flavor::new(engine, capabilities))
        };
        // Each engine reserves its pools up front (a guard page per fiber
        // stack: a thousand mprotect calls), so the two are built side by
        // side and start waits for the slower one only.
        let (concurrent, pooling, synchronous) = std::thread::scope(|scope| -> Result<_> {
            let synchronous = options
                .synchronous_engine
                .then(|| scope.spawn(|| synchronous_flavor(pooling_wanted)));
            let (engine, pooling) = match build_engine(options, pooling_wanted, true) {
                Ok(engine) => (engine, pooling_wanted),
                Err(e) if options.pooling.is_none() => {
                    tracing::warn!(
                        "pooling allocator unavailable ({e:#}); using on-demand allocation"
                    );
                    (build_engine(options, false, true)?, false)
                }
                Err(e) => return Err(e),
            };
            let concurrent = Flavor::new(engine, capabilities)?;
            let synchronous = synchronous.map(|handle| {
                let built = handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                // Both engines allocate the same way.
                if pooling == pooling_wanted {
                    built
                } else {
                    synchronous_flavor(pooling)
                }
            });
            Ok((concurrent, pooling, synchronous))
        })?;
        let synchronous = match synchronous {
            Some(Ok(flavor)) => Some(flavor),
            Some(Err(e)) => {
                tracing::warn!(
                    "cannot build the synchronous engine ({e:#}); every component runs on the concurrent one"
                );
                None
            }
            None => None,
        };
        let cache = options
            .cache_dir
            .as_ref()
            .map(|dir| cache::CompileCache::new(dir.clone()));
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let engines = std::iter::once(&concurrent)
            .chain(&synchronous)
            .map(|flavor| flavor.engine.clone())
            .collect();
        spawn_epoch_ticker(engines, ticker_stop.clone())?;
        report_pool("concurrent", &concurrent.engine);
        if let Some(synchronous) = &synchronous {
            report_pool("synchronous", &synchronous.engine);
        }
        Ok(GyreEngine {
            concurrent,
            synchronous,
            cache,
            pooling,
            ticker_stop,
        })
    }

    /// Whether the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// Compiles (or loads from the cache) and links a component or core
    /// module, on the synchronous engine if it can run there, else on the
    /// concurrent one. `name` is used in errors and logs.
    ///
    /// Compiled code is cached under the digest of `bytes` as given, before
    /// Gyre prepares them (componentizing a core module, mapping the WASI
    /// 0.3 release candidate): a warm start prepares nothing.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<LoadedComponent> {
        self.load_composed(name, bytes, &Composition::default())
    }

    /// [`Engines::load`] for a component with dependencies or middleware:
    /// composed before compiling, and cached under the digest of every
    /// piece, so a warm start composes nothing.
    pub fn load_composed(
        &self,
        name: &str,
        bytes: &[u8],
        composition: &Composition,
    ) -> Result<LoadedComponent> {
        let digest = self
            .cache
            .as_ref()
            .map(|_| cache::digest(bytes, composition));
        let digest = digest.as_deref();
        let bytes = prepare::Prepared::new(name, bytes, composition);
        if let Some(sync) = &self.synchronous {
            let known_concurrent = match (&self.cache, digest) {
                (Some(cache), Some(digest)) => cache.is_marked_concurrent(digest, &sync.cache_key),
                _ => false,
            };
            if !known_concurrent {
                match self.load_on(sync, name, &bytes, digest) {
                    Ok(loaded) if !needs_concurrent_linker(&loaded.stubbed) => return Ok(loaded),
                    Ok(_) => tracing::debug!(
                        "component `{name}` imports interfaces only the concurrent engine provides"
                    ),
                    Err(e) => {
                        tracing::debug!("component `{name}` needs the concurrent engine: {e:#}")
                    }
                }
                if let (Some(cache), Some(digest)) = (&self.cache, digest) {
                    cache.mark_concurrent(digest, &sync.cache_key);
                }
            }
        }
        self.load_on(&self.concurrent, name, &bytes, digest)
    }

    fn load_on(
        &self,
        flavor: &Flavor,
        name: &str,
        bytes: &prepare::Prepared<'_>,
        digest: Option<&str>,
    ) -> Result<LoadedComponent> {
        let compile = || -> Result<Component> {
            Component::new(&flavor.engine, bytes.get()?)
                .anyhow()
                .with_context(|| format!("component `{name}`: compilation failed"))
        };
        let (component, cache) = match (&self.cache, digest) {
            (Some(cache), Some(digest)) => {
                cache.load_or_compile(&flavor.engine, &flavor.cache_key, digest, compile)?
            }
            _ => (compile()?, CacheOutcome::Disabled),
        };
        let mut linker = flavor.linker.clone();
        let denied = deny::link_denied_imports(&mut linker, &flavor.engine, &component)
            .with_context(|| {
                format!("component `{name}`: cannot link its dependencies' denied imports")
            })?;
        if !denied.is_empty() {
            tracing::debug!(
                "component `{name}`: dependencies denied {}",
                denied.join(", ")
            );
        }
        let stubbed = stubs::stub_missing_imports(&mut linker, &flavor.engine, &component)
            .with_context(|| format!("component `{name}`: cannot link its imports"))?;
        let pre = linker
            .instantiate_pre(&component)
            .anyhow()
            .with_context(|| format!("component `{name}`: cannot link its imports"))?;
        Ok(LoadedComponent {
            component,
            pre,
            stubbed,
            cache,
        })
    }
}

fn build_engine(
    options: &EngineOptions,
    pooling: bool,
    concurrent: bool,
) -> Result<wasmtime::Engine> {
    let mut config = wasmtime::Config::new();
    config
        .wasm_component_model(true)
        .wasm_component_model_async(concurrent)
        .concurrency_support(concurrent)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .parallel_compilation(true);
    if pooling {
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        let n = options.max_instances;
        pool.total_component_instances(n)
            .total_memories(n)
            .total_tables(n * 2)
            .total_stacks(n)
            .total_core_instances(n * 4)
            .max_component_instance_size(10 << 20)
            .max_core_instance_size(10 << 20)
            .max_core_instances_per_component(200)
            .max_tables_per_component(64)
            .max_memories_per_component(32)
            .max_tables_per_module(2)
            .max_memories_per_module(2)
            .table_elements(100_000)
            .max_memory_size(usize::try_from(options.max_memory_bytes).unwrap_or(usize::MAX))
            .linear_memory_keep_resident(2 << 20)
            .table_keep_resident(512 << 10)
            // Reset only the pages an instance dirtied (Linux 6.7+'s
            // PAGEMAP_SCAN) instead of every resident byte: the tiny guest
            // dirties 2 of its 16 pages, a Python guest a fraction of its MBs.
            .pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    }
    wasmtime::Engine::new(&config)
        .anyhow()
        .context("cannot configure the Wasmtime engine")
}

fn spawn_epoch_ticker(engines: Vec<wasmtime::Engine>, stop: Arc<AtomicBool>) -> Result<()> {
    std::thread::Builder::new()
        .name("gyre-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                for engine in &engines {
                    engine.increment_epoch();
                }
            }
        })
        .context("cannot start the epoch ticker thread")?;
    Ok(())
}
