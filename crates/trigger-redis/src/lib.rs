//! The Redis trigger: each message published on a subscribed channel runs
//! every component of that channel, each in a fresh instance, with the
//! message's bytes.
//!
//! One pub/sub connection per address subscribes to that address's
//! channels. When Redis goes away the trigger says so, retries with
//! backoff (up to 10 s between attempts) and resubscribes; it never exits
//! silently (spin#2347). Handler failures are logged with the component id
//! and the channel; delivery is at most once, as in Spin.
//!
//! Gyre extension: a trigger's `filter = { attribute = "value", ... }` runs
//! the component only for messages that are JSON objects whose top-level
//! attributes have those values (CloudEvents' structured mode puts `type`,
//! `source`, … there). Other messages never instantiate it. Spin ignores the
//! field.

mod filter;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use futures::StreamExt as _;
use gyre_app::App;
use gyre_engine::{GyreEngine, HostState, InstanceConfig, RequestWatch, StubbedImports};
use gyre_telemetry::{MessageResult, TriggerKind, metrics};
use gyre_trigger::RunOutcome;
use gyre_variables::Resolver;
use tracing::Instrument as _;
use wasmtime::component::InstancePre;

pub use filter::MessageFilter;

mod v1 {
    wasmtime::component::bindgen!({
        path: "wit/v1",
        world: "fermyon:spin/redis-trigger",
        exports: { default: async },
    });
}

mod v3 {
    wasmtime::component::bindgen!({
        path: "wit/v3",
        world: "spin:redis/redis-trigger@3.0.0",
        exports: { default: async | store },
    });
}

/// Most handler instances running at once; further messages wait (the
/// subscription is read no faster than handlers finish).
const MAX_CONCURRENT_HANDLERS: usize = 256;

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Options for loading the Redis trigger.
pub struct RedisLoadOptions<'a> {
    /// What every trigger's components load with.
    pub common: gyre_trigger::LoadOptions<'a>,
    /// Expands `{{ variable }}` in addresses and channels (once, at load).
    pub resolver: &'a Resolver,
}

/// What loading one component did, for the CLI to report.
#[derive(Debug, Clone)]
pub struct RedisComponentReport {
    /// Component id.
    pub id: String,
    /// Export used.
    pub handler: &'static str,
    /// Imports linked as failing functions.
    pub stubbed: StubbedImports,
}

enum Export {
    V1(v1::RedisTriggerPre<HostState>),
    V3(v3::RedisTriggerPre<HostState>),
}

impl Export {
    /// The engine the component was compiled for.
    fn engine(&self) -> &wasmtime::Engine {
        match self {
            Export::V1(pre) => pre.instance_pre().engine(),
            Export::V3(pre) => pre.instance_pre().engine(),
        }
    }
}

/// One component subscribed to one channel.
struct Handler {
    id: String,
    export: Export,
    config: InstanceConfig,
    filter: MessageFilter,
    timeout: Option<Duration>,
}

impl Handler {
    async fn handle(&self, channel: &str, payload: Vec<u8>) {
        let watch = RequestWatch::new();
        let span = tracing::trace_span!(
            target: gyre_telemetry::SPAN_TARGET,
            "redis message",
            otel.name = %format_args!("{channel} process"),
            otel.kind = "consumer",
            otel.status_code = tracing::field::Empty,
            component = %self.id,
            messaging.system = "redis",
            messaging.destination.name = channel,
        );
        let outcome = gyre_trigger::guarded(self.timeout, &watch, self.run(payload, &watch))
            .instrument(span.clone())
            .await;
        if !matches!(outcome, RunOutcome::Succeeded) {
            span.record("otel.status_code", "ERROR");
        }
        let result = match &outcome {
            RunOutcome::Succeeded => MessageResult::Handled,
            _ => MessageResult::Failed,
        };
        metrics().redis_message(&self.id, channel, result);
        gyre_trigger::count_outcome(&self.id, TriggerKind::Redis, &outcome);
        match outcome {
            RunOutcome::Succeeded => {}
            RunOutcome::TimedOut(limit) => tracing::warn!(
                component = %self.id,
                channel,
                "message handler stopped after {limit:?} (`request_timeout`); its instance is torn down"
            ),
            RunOutcome::CpuExceeded => tracing::warn!(
                component = %self.id,
                channel,
                "message handler stopped: it used more than its CPU time (`cpu_timeout`)"
            ),
            RunOutcome::Failed(e) => {
                tracing::error!(component = %self.id, channel, "message handler failed: {e:#}");
            }
        }
    }

    async fn run(&self, payload: Vec<u8>, watch: &Arc<RequestWatch>) -> Result<()> {
        let mut store = self.config.new_store(self.export.engine(), |_| {})?;
        store.data_mut().watch_request(watch);
        match &self.export {
            Export::V1(pre) => {
                let instance = pre
                    .instantiate_async(&mut store)
                    .instrument(gyre_trigger::instantiate_span(&self.id))
                    .await?;
                let result = instance
                    .fermyon_spin_inbound_redis()
                    .call_handle_message(&mut store, &payload)
                    .await?;
                if let Err(e) = result {
                    bail!("the component returned {e:?}");
                }
            }
            Export::V3(pre) => {
                let instance = pre
                    .instantiate_async(&mut store)
                    .instrument(gyre_trigger::instantiate_span(&self.id))
                    .await?;
                let result = store
                    .run_concurrent(async move |accessor| {
                        instance
                            .spin_redis_inbound_redis()
                            .call_handle_message(accessor, payload)
                            .await
                    })
                    .await??;
                if let Err(e) = result {
                    bail!("the component returned {e:?}");
                }
            }
        }
        Ok(())
    }
}

/// The channels of one address.
struct Subscription {
    address: String,
    channels: BTreeMap<String, Vec<Arc<Handler>>>,
}

/// The loaded Redis trigger of an application.
pub struct RedisTrigger {
    subscriptions: Vec<Subscription>,
}

impl RedisTrigger {
    /// Compiles and links every component a Redis trigger leads to, and
    /// groups them by address and channel. Returns `None` if the app has
    /// no Redis triggers.
    pub async fn load(
        engine: &Arc<GyreEngine>,
        app: &App,
        options: &RedisLoadOptions<'_>,
    ) -> Result<Option<(Self, Vec<RedisComponentReport>)>> {
        let mut subscriptions: Vec<Subscription> = Vec::new();
        let mut loaded: BTreeMap<String, (Arc<Export>, InstanceConfig)> = BTreeMap::new();
        let mut reports = Vec::new();
        let default_address = app.manifest.application.redis_address.clone();
        for (trigger, redis) in app.manifest.redis_triggers() {
            let Some(id) = trigger.component.clone() else {
                bail!("Redis trigger `{}` has no component", trigger.id);
            };
            let address_template = redis.address.clone().or_else(|| default_address.clone());
            let Some(address_template) = address_template else {
                return Err(app
                    .manifest
                    .source
                    .error(Some(trigger.span.clone()), "trigger.redis.address", format!("Redis trigger `{}` has no address", trigger.id))
                    .with_help("set `address = \"redis://host:6379\"` on the trigger, or `[application.trigger.redis] address` for all of them")
                    .into());
            };
            let address = options
                .resolver
                .expand_str(&address_template)
                .await
                .with_context(|| format!("Redis trigger `{}`: address", trigger.id))?;
            let channel = options
                .resolver
                .expand_str(&redis.channel)
                .await
                .with_context(|| format!("Redis trigger `{}`: channel", trigger.id))?;
            redis::Client::open(address.as_str()).map_err(|e| {
                anyhow::anyhow!(
                    "Redis trigger `{}`: invalid address {address:?}: {e} (write it as `redis://host:6379`)",
                    trigger.id
                )
            })?;

            let (export, config) = match loaded.get(&id) {
                Some(found) => found.clone(),
                None => {
                    let component_loaded = gyre_trigger::load_component(engine, app, &id).await?;
                    let (export, handler) = detect_export(&id, component_loaded.pre)?;
                    reports.push(RedisComponentReport {
                        id: id.clone(),
                        handler,
                        stubbed: component_loaded.stubbed,
                    });
                    let config = options.common.instance_config(app, &id)?;
                    let entry = (Arc::new(export), config);
                    loaded.insert(id.clone(), entry.clone());
                    entry
                }
            };
            let handler = Arc::new(Handler {
                id: id.clone(),
                export: match &*export {
                    Export::V1(pre) => Export::V1(pre.clone()),
                    Export::V3(pre) => Export::V3(pre.clone()),
                },
                config,
                filter: MessageFilter::new(redis.filter.clone()),
                timeout: options.common.limits.for_component(&id).request_timeout,
            });
            let subscription = match subscriptions.iter_mut().find(|s| s.address == address) {
                Some(s) => s,
                None => {
                    subscriptions.push(Subscription {
                        address: address.clone(),
                        channels: BTreeMap::new(),
                    });
                    subscriptions.last_mut().context("just pushed")?
                }
            };
            subscription
                .channels
                .entry(channel)
                .or_default()
                .push(handler);
        }
        if subscriptions.is_empty() {
            return Ok(None);
        }
        Ok(Some((RedisTrigger { subscriptions }, reports)))
    }

    /// `(address, channel, component ids)` for the startup listing.
    pub fn active_channels(&self) -> Vec<(String, String, Vec<String>)> {
        let mut out = Vec::new();
        for s in &self.subscriptions {
            for (channel, handlers) in &s.channels {
                out.push((
                    s.address.clone(),
                    channel.clone(),
                    handlers.iter().map(|h| h.id.clone()).collect(),
                ));
            }
        }
        out
    }

    /// Subscribes and handles messages until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_HANDLERS));
        let mut tasks = tokio::task::JoinSet::new();
        for subscription in self.subscriptions {
            tasks.spawn(listen_forever(subscription, limit.clone()));
        }
        shutdown.await;
        tasks.abort_all();
        // Let running handlers finish (they hold permits).
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            limit.acquire_many(MAX_CONCURRENT_HANDLERS as u32),
        )
        .await;
        Ok(())
    }
}

fn detect_export(id: &str, pre: InstancePre<HostState>) -> Result<(Export, &'static str)> {
    let exports: Vec<String> = pre
        .component()
        .component_type()
        .exports(pre.engine())
        .map(|(name, _)| name.to_string())
        .collect();
    let handler =
        describe_handler(&exports).map_err(|e| anyhow::anyhow!("component `{id}`: {e}"))?;
    let export = if handler == V3_EXPORT {
        Export::V3(
            v3::RedisTriggerPre::new(pre)
                .map_err(|e| anyhow::anyhow!("component `{id}`: {e:#}"))?,
        )
    } else {
        Export::V1(
            v1::RedisTriggerPre::new(pre)
                .map_err(|e| anyhow::anyhow!("component `{id}`: {e:#}"))?,
        )
    };
    Ok((export, handler))
}

const V3_EXPORT: &str = "spin:redis/inbound-redis@3.0.0";
const V1_EXPORT: &str = "fermyon:spin/inbound-redis";

/// The Redis handler among a component's export names, or why there is none
/// (used at load and by `gyre doctor`).
pub fn describe_handler(exports: &[String]) -> Result<&'static str> {
    if exports
        .iter()
        .any(|e| e.starts_with("spin:redis/inbound-redis@3."))
    {
        return Ok(V3_EXPORT);
    }
    if exports.iter().any(|e| e == V1_EXPORT) {
        return Ok(V1_EXPORT);
    }
    bail!(
        "it is used by a Redis trigger but exports no Redis handler (found: {}); it must export `{V3_EXPORT}` or `{V1_EXPORT}`",
        gyre_trigger::list_exports(exports)
    )
}

/// Keeps one address subscribed: connects, subscribes, handles messages,
/// and on any failure logs it and tries again with backoff.
async fn listen_forever(subscription: Subscription, limit: Arc<tokio::sync::Semaphore>) {
    let subscription = Arc::new(subscription);
    let mut backoff = Duration::from_millis(100);
    let mut ever_connected = false;
    loop {
        match listen(&subscription, &limit, &mut ever_connected, &mut backoff).await {
            Ok(()) => tracing::warn!(
                "disconnected from Redis at {}; reconnecting",
                subscription.address
            ),
            Err(e) => tracing::warn!(
                "cannot subscribe on Redis at {}: {e}; retrying in {} ms",
                subscription.address,
                backoff.as_millis()
            ),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn listen(
    subscription: &Arc<Subscription>,
    limit: &Arc<tokio::sync::Semaphore>,
    ever_connected: &mut bool,
    backoff: &mut Duration,
) -> Result<()> {
    let client = redis::Client::open(subscription.address.as_str())?;
    let mut pubsub = client.get_async_pubsub().await?;
    for channel in subscription.channels.keys() {
        pubsub.subscribe(channel).await?;
    }
    if *ever_connected {
        tracing::info!("resubscribed on Redis at {}", subscription.address);
        metrics().redis_reconnected();
    }
    *ever_connected = true;
    *backoff = Duration::from_millis(100);
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let channel = message.get_channel_name().to_string();
        let Some(handlers) = subscription.channels.get(&channel) else {
            continue;
        };
        let payload = message.get_payload_bytes().to_vec();
        for handler in handlers {
            if !handler.filter.matches(&payload) {
                metrics().redis_message(&handler.id, &channel, MessageResult::Filtered);
                continue;
            }
            let permit = limit.clone().acquire_owned().await?;
            let handler = handler.clone();
            let payload = payload.clone();
            let channel = channel.clone();
            tokio::spawn(async move {
                handler.handle(&channel, payload).await;
                drop(permit);
            });
        }
    }
    Ok(())
}
