//! Gyre's Prometheus metrics: one registry per process, updated by every
//! crate where the thing counted happens, read only when scraped.
//!
//! Metrics are process-wide by nature (Prometheus scrapes a process), so
//! they live in one static value ([`metrics`]) rather than being threaded
//! through every trigger and capability. Recording is always on and costs
//! an atomic add: the labelled series a request touches are looked up once,
//! at load ([`Metrics::route`]), and kept beside the route; nothing is
//! hashed or allocated per request. Labels are bounded by the manifest —
//! component ids, route patterns as written, channel names — never raw
//! paths or addresses.
//!
//! `process_*` series (memory, CPU, file descriptors, threads) and the
//! engines' pooling-allocator occupancy are read at scrape time by
//! collectors.

use std::sync::{Arc, LazyLock, Mutex};

use prometheus_client::collector::Collector;
use std::fmt::Write as _;

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric as _, LabelValueEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Label values in Prometheus' customary snake_case.
macro_rules! label_values {
    ($($ty:ident { $($variant:ident => $name:literal),+ $(,)? })+) => {$(
        impl EncodeLabelValue for $ty {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(match self {
                    $($ty::$variant => $name),+
                })
            }
        }
    )+};
}

label_values! {
    StatusClass { Informational => "1xx", Success => "2xx", Redirection => "3xx", ClientError => "4xx", ServerError => "5xx" }
    Refusal { QueueFull => "queue_full", QueueTimeout => "queue_timeout", InstanceSlots => "instance_slots" }
    Limit { RequestTimeout => "request_timeout", CpuTimeout => "cpu_timeout" }
    TriggerKind { Http => "http", Redis => "redis", Cron => "cron" }
    Outbound { Http => "http", Redis => "redis", Postgres => "postgres", Mysql => "mysql", Mqtt => "mqtt" }
    OutboundResult { Ok => "ok", Error => "error", Denied => "denied" }
    MessageResult { Handled => "handled", Failed => "failed", Filtered => "filtered" }
    RunResult { Ok => "ok", Failed => "failed", TimedOut => "timed_out", Skipped => "skipped" }
    CacheResult { Hit => "hit", Miss => "miss" }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// A status code's class, the `status` label of request counts.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum StatusClass {
    Informational,
    Success,
    Redirection,
    ClientError,
    ServerError,
}

impl Outbound {
    /// The name of the system, as spans and labels give it.
    pub fn system(self) -> &'static str {
        match self {
            Outbound::Http => "http",
            Outbound::Redis => "redis",
            Outbound::Postgres => "postgresql",
            Outbound::Mysql => "mysql",
            Outbound::Mqtt => "mqtt",
        }
    }
}

impl StatusClass {
    const ALL: [StatusClass; 5] = [
        StatusClass::Informational,
        StatusClass::Success,
        StatusClass::Redirection,
        StatusClass::ClientError,
        StatusClass::ServerError,
    ];

    /// The class of status code `code` (anything out of range counts as 5xx).
    pub fn of(code: u16) -> StatusClass {
        match code {
            100..=199 => StatusClass::Informational,
            200..=299 => StatusClass::Success,
            300..=399 => StatusClass::Redirection,
            400..=499 => StatusClass::ClientError,
            _ => StatusClass::ServerError,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    component: String,
    route: String,
    status: StatusClass,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabels {
    component: String,
}

/// Why a request got 503 before reaching its component.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Refusal {
    /// `max_queued_requests` were already waiting.
    QueueFull,
    /// No slot freed within `queue_timeout`.
    QueueTimeout,
    /// Every pooling-allocator instance slot was in use.
    InstanceSlots,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    reason: Refusal,
}

/// Which limit stopped a guest.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Limit {
    /// The wall-clock deadline.
    RequestTimeout,
    /// The CPU-time budget.
    CpuTimeout,
}

/// The trigger a guest call came from.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum TriggerKind {
    Http,
    Redis,
    Cron,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeadlineLabels {
    component: String,
    trigger: TriggerKind,
    limit: Limit,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    component: String,
    trigger: TriggerKind,
}

/// The kind of an outbound connection.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Outbound {
    Http,
    Redis,
    Postgres,
    Mysql,
    Mqtt,
}

/// How an outbound call ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum OutboundResult {
    Ok,
    Error,
    /// Refused by the component's grants (`allowed_outbound_hosts`,
    /// `key_value_stores`, …) before anything was sent.
    Denied,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboundLabels {
    kind: Outbound,
    result: OutboundResult,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: Outbound,
}

/// What became of a Redis message for one subscribed component.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum MessageResult {
    Handled,
    Failed,
    /// Its `filter` did not match: no instance was made.
    Filtered,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    component: String,
    channel: String,
    result: MessageResult,
}

/// How a scheduled run went.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum RunResult {
    Ok,
    Failed,
    TimedOut,
    /// The previous run was still going.
    Skipped,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    component: String,
    result: RunResult,
}

/// Whether compiled code came from the cache.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum CacheResult {
    Hit,
    Miss,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: CacheResult,
}

/// Occupancy of one engine's pooling allocator, read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    /// Component instances alive in the pool.
    pub component_instances: u64,
    /// Linear memories in use.
    pub memories: u64,
    /// Memory slots kept warm for reuse.
    pub warm_memories: u64,
}

type PoolReader = Box<dyn Fn() -> Option<PoolStats> + Send + Sync>;
type SizeReader = Box<dyn Fn() -> Option<usize> + Send + Sync>;

/// The series one route's requests update, looked up once at load.
#[derive(Clone, Debug)]
pub struct RouteMetrics {
    by_class: [Counter; 5],
    duration: Histogram,
}

impl RouteMetrics {
    /// Counts one answered request with status `status` that took
    /// `seconds` to its response head.
    pub fn record(&self, status: u16, seconds: f64) {
        self.by_class[StatusClass::of(status).index()].inc();
        self.duration.observe(seconds);
    }
}

/// Every metric Gyre exports.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<RequestLabels, Counter>,
    http_duration: Family<ComponentLabels, Histogram, fn() -> Histogram>,
    refused: Family<RefusalLabels, Counter>,
    queue_depth: Gauge,
    deadlines: Family<DeadlineLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    memory_refusals: Family<ComponentLabels, Counter>,
    instances_live: Gauge,
    outbound: Family<OutboundLabels, Counter>,
    redis_messages: Family<MessageLabels, Counter>,
    redis_reconnects: Counter,
    cron_runs: Family<RunLabels, Counter>,
    compile_cache: Family<CacheLabels, Counter>,
    pools: Arc<Mutex<Vec<(&'static str, PoolReader)>>>,
    connection_pools: Arc<Mutex<Vec<(Outbound, SizeReader)>>>,
}

fn duration_histogram() -> Histogram {
    // 0.5 ms to ~16 s, doubling.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    fn new() -> Metrics {
        let mut root = Registry::default();
        root.register_collector(Box::new(crate::process::ProcessCollector::new()));
        let registry = root.sub_registry_with_prefix("gyre");
        let http_requests = Family::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by component, route pattern and status class",
            http_requests.clone(),
        );
        let http_duration: Family<ComponentLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its response head, by component",
            Unit::Seconds,
            http_duration.clone(),
        );
        let refused = Family::default();
        registry.register(
            "http_refused",
            "Requests answered 503 before reaching a component, by reason",
            refused.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "admission_queue_depth",
            "Requests waiting for a slot (`max_concurrent_requests` are running)",
            queue_depth.clone(),
        );
        let deadlines = Family::default();
        registry.register(
            "deadline_exceeded",
            "Guest calls stopped by a limit (HTTP answers 504), by component, trigger and limit",
            deadlines.clone(),
        );
        let failures = Family::default();
        registry.register(
            "guest_failures",
            "Guest calls that trapped or returned an error (HTTP answers 500)",
            failures.clone(),
        );
        let memory_refusals = Family::default();
        registry.register(
            "memory_refusals",
            "memory.grow refused at `max_instance_memory`, by component",
            memory_refusals.clone(),
        );
        let instances_live = Gauge::default();
        registry.register(
            "instances_live",
            "Guest instances (stores) alive now, all engines",
            instances_live.clone(),
        );
        let outbound = Family::default();
        registry.register(
            "outbound_requests",
            "Calls guests made to the outside, by kind and result",
            outbound.clone(),
        );
        let redis_messages = Family::default();
        registry.register(
            "redis_messages",
            "Redis-trigger messages per subscribed component, by channel and result",
            redis_messages.clone(),
        );
        let redis_reconnects = Counter::default();
        registry.register(
            "redis_reconnects",
            "Times the Redis trigger lost its subscription and subscribed again",
            redis_reconnects.clone(),
        );
        let cron_runs = Family::default();
        registry.register(
            "cron_runs",
            "Scheduled runs, by component and result",
            cron_runs.clone(),
        );
        let compile_cache = Family::default();
        registry.register(
            "compile_cache",
            "Components loaded, by whether compiled code came from the cache",
            compile_cache.clone(),
        );
        let pools: Arc<Mutex<Vec<(&'static str, PoolReader)>>> = Arc::default();
        registry.register_collector(Box::new(PoolCollector(pools.clone())));
        let connection_pools: Arc<Mutex<Vec<(Outbound, SizeReader)>>> = Arc::default();
        registry.register_collector(Box::new(ConnectionPoolCollector(connection_pools.clone())));
        Metrics {
            registry: root,
            http_requests,
            http_duration,
            refused,
            queue_depth,
            deadlines,
            failures,
            memory_refusals,
            instances_live,
            outbound,
            redis_messages,
            redis_reconnects,
            cron_runs,
            compile_cache,
            pools,
            connection_pools,
        }
    }

    /// The series of requests to `route` (a pattern as written, or "" for
    /// requests no route matched) served by `component`.
    pub fn route(&self, component: &str, route: &str) -> RouteMetrics {
        let by_class = StatusClass::ALL.map(|status| {
            self.http_requests.get_or_create_owned(&RequestLabels {
                component: component.to_string(),
                route: route.to_string(),
                status,
            })
        });
        let duration = self.http_duration.get_or_create_owned(&ComponentLabels {
            component: component.to_string(),
        });
        RouteMetrics { by_class, duration }
    }

    /// A request refused with 503 before it reached a component.
    pub fn refused(&self, reason: Refusal) {
        self.refused.get_or_create(&RefusalLabels { reason }).inc();
    }

    /// The gauge of requests waiting for an admission slot.
    pub fn queue_depth(&self) -> &Gauge {
        &self.queue_depth
    }

    /// A guest call stopped by `limit`.
    pub fn deadline_exceeded(&self, component: &str, trigger: TriggerKind, limit: Limit) {
        self.deadlines
            .get_or_create(&DeadlineLabels {
                component: component.to_string(),
                trigger,
                limit,
            })
            .inc();
    }

    /// A guest call that trapped or returned an error.
    pub fn guest_failed(&self, component: &str, trigger: TriggerKind) {
        self.failures
            .get_or_create(&FailureLabels {
                component: component.to_string(),
                trigger,
            })
            .inc();
    }

    /// A memory.grow refused at the component's cap.
    pub fn memory_refused(&self, component: &str) {
        self.memory_refusals
            .get_or_create(&ComponentLabels {
                component: component.to_string(),
            })
            .inc();
    }

    /// The gauge of live instances.
    pub fn instances_live(&self) -> &Gauge {
        &self.instances_live
    }

    /// An outbound call of `kind` ended with `result`.
    pub fn outbound(&self, kind: Outbound, result: OutboundResult) {
        self.outbound
            .get_or_create(&OutboundLabels { kind, result })
            .inc();
    }

    /// Counts an outbound connection of `kind` refused by the component's
    /// grants or budget when the check failed, and passes it on.
    pub fn checked<T, E>(&self, kind: Outbound, result: Result<T, E>) -> Result<T, E> {
        if result.is_err() {
            self.outbound(kind, OutboundResult::Denied);
        }
        result
    }

    /// Reports the size of an app's connection pools of `kind` at each
    /// scrape, for as long as `read` returns `Some` (it holds the pools
    /// weakly: a reloaded app's old pools drop out).
    pub fn register_pool(
        &self,
        kind: Outbound,
        read: impl Fn() -> Option<usize> + Send + Sync + 'static,
    ) {
        if let Ok(mut readers) = self.connection_pools.lock() {
            readers.retain(|(_, read)| read().is_some());
            readers.push((kind, Box::new(read)));
        }
    }

    /// A Redis message and what became of it for one component.
    pub fn redis_message(&self, component: &str, channel: &str, result: MessageResult) {
        self.redis_messages
            .get_or_create(&MessageLabels {
                component: component.to_string(),
                channel: channel.to_string(),
                result,
            })
            .inc();
    }

    /// The Redis trigger subscribed again after losing its connection.
    pub fn redis_reconnected(&self) {
        self.redis_reconnects.inc();
    }

    /// A scheduled run of `component` and how it went.
    pub fn cron_run(&self, component: &str, result: RunResult) {
        self.cron_runs
            .get_or_create(&RunLabels {
                component: component.to_string(),
                result,
            })
            .inc();
    }

    /// A component loaded with (hit) or without (miss) cached code.
    pub fn compile_cache(&self, result: CacheResult) {
        self.compile_cache
            .get_or_create(&CacheLabels { result })
            .inc();
    }

    /// Reports an engine's pooling-allocator occupancy at each scrape.
    pub fn register_engine(
        &self,
        engine: &'static str,
        read: impl Fn() -> Option<PoolStats> + Send + Sync + 'static,
    ) {
        if let Ok(mut pools) = self.pools.lock() {
            pools.retain(|(name, _)| *name != engine);
            pools.push((engine, Box::new(read)));
        }
    }

    /// The registry in Prometheus' (OpenMetrics) text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Counts a live instance for as long as it is held.
#[derive(Debug)]
pub struct LiveInstance(());

impl LiveInstance {
    /// Counts one more live instance.
    pub fn new() -> LiveInstance {
        metrics().instances_live.inc();
        LiveInstance(())
    }
}

impl Default for LiveInstance {
    fn default() -> Self {
        LiveInstance::new()
    }
}

impl Drop for LiveInstance {
    fn drop(&mut self) {
        metrics().instances_live.dec();
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EngineLabels {
    engine: &'static str,
}

/// A pool gauge: name, help, and how to read it from the stats.
type PoolSeries = (&'static str, &'static str, fn(&PoolStats) -> u64);

/// The engines' pooling-allocator occupancy.
struct PoolCollector(Arc<Mutex<Vec<(&'static str, PoolReader)>>>);

impl std::fmt::Debug for PoolCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PoolCollector")
    }
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(pools) = self.0.lock() else {
            return Ok(());
        };
        let stats: Vec<(&'static str, PoolStats)> = pools
            .iter()
            .filter_map(|(name, read)| read().map(|s| (*name, s)))
            .collect();
        if stats.is_empty() {
            return Ok(());
        }
        let series: [PoolSeries; 3] = [
            (
                "pool_component_instances",
                "Component instances alive in the engine's pooling allocator",
                |s| s.component_instances,
            ),
            (
                "pool_memories",
                "Linear memories in use in the engine's pooling allocator",
                |s| s.memories,
            ),
            (
                "pool_warm_memories",
                "Unused memory slots kept warm for reuse",
                |s| s.warm_memories,
            ),
        ];
        for (name, help, value) in series {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (engine, s) in &stats {
                let labels = EngineLabels { engine };
                ConstGauge::new(i64::try_from(value(s)).unwrap_or(i64::MAX))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// The apps' outbound connection pools.
struct ConnectionPoolCollector(Arc<Mutex<Vec<(Outbound, SizeReader)>>>);

impl std::fmt::Debug for ConnectionPoolCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionPoolCollector")
    }
}

impl Collector for ConnectionPoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(mut readers) = self.0.lock() else {
            return Ok(());
        };
        let mut sizes: Vec<(Outbound, usize)> = Vec::new();
        readers.retain(|(kind, read)| match read() {
            Some(size) => {
                match sizes.iter_mut().find(|(k, _)| k == kind) {
                    Some((_, total)) => *total += size,
                    None => sizes.push((*kind, size)),
                }
                true
            }
            None => false,
        });
        if sizes.is_empty() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(
            "outbound_pool_connections",
            "Connections held in the apps' outbound pools, by kind",
            None,
            MetricType::Gauge,
        )?;
        for (kind, size) in sizes {
            ConstGauge::new(i64::try_from(size).unwrap_or(i64::MAX))
                .encode(family.encode_family(&KindLabels { kind })?)?;
        }
        Ok(())
    }
}

/// Encodes one unlabelled value (used by the process collector).
pub(crate) fn encode_value(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: Value,
) -> Result<(), std::fmt::Error> {
    match value {
        Value::Gauge(v) => ConstGauge::new(v).encode(encoder.encode_descriptor(
            name,
            help,
            unit,
            MetricType::Gauge,
        )?),
        Value::Counter(v) => ConstCounter::new(v).encode(encoder.encode_descriptor(
            name,
            help,
            unit,
            MetricType::Counter,
        )?),
    }
}

/// A value read at scrape time.
pub(crate) enum Value {
    Gauge(f64),
    Counter(f64),
}
