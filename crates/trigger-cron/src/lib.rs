//! The cron trigger: `[[trigger.cron]]` runs a component on a schedule.
//!
//! The manifest and the guest's world are those of Spin's cron trigger
//! plugin (`cron_expression` with seconds first; the component exports
//! `handle-cron-event` of `fermyon:spin-cron@2.0.0`, or of the unversioned
//! package its first release had: the export and its types are the same, so
//! one binding calls both). Gyre builds it in: no plugin to install.
//!
//! Each run is a fresh instance with the component's grants and limits
//! (`request_timeout`, `cpu_timeout`, memory). A schedule runs one instance
//! at a time: a run still going when the next is due makes that next one
//! skipped and logged, never stacked behind it, so a slow job cannot pile
//! up instances.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use gyre_app::App;
use gyre_engine::{GyreEngine, HostState, InstanceConfig, RequestWatch, StubbedImports};
use gyre_telemetry::{RunResult, TriggerKind, metrics};
use gyre_trigger::RunOutcome;
use tracing::Instrument as _;
use wasmtime::component::InstancePre;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "fermyon:spin-cron/spin-cron@2.0.0",
        exports: { default: async },
    });
}

use bindings::fermyon::spin_cron::cron_types::{Error as CronError, Metadata};

/// The export every cron component has.
pub const EXPORT: &str = "handle-cron-event";

/// Options for loading the cron trigger.
pub type CronLoadOptions<'a> = gyre_trigger::LoadOptions<'a>;

/// What loading one component did, for the CLI to report.
#[derive(Debug, Clone)]
pub struct CronComponentReport {
    /// Component id.
    pub id: String,
    /// Imports linked as failing functions.
    pub stubbed: StubbedImports,
}

/// A schedule as listed at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleInfo {
    /// Component id.
    pub component: String,
    /// `cron_expression` as written.
    pub expression: String,
    /// When it runs next, if ever.
    pub next: Option<DateTime<Utc>>,
}

/// One `[[trigger.cron]]`.
struct Job {
    component: String,
    expression: String,
    schedule: cron::Schedule,
    pre: bindings::SpinCronPre<HostState>,
    config: InstanceConfig,
    timeout: Option<Duration>,
}

impl Job {
    /// One run in a fresh instance; how it went is logged here.
    async fn run(&self, scheduled: DateTime<Utc>) {
        let watch = RequestWatch::new();
        let call = self.call(scheduled, &watch);
        let component = &self.component;
        let span = tracing::trace_span!(
            target: gyre_telemetry::SPAN_TARGET,
            "cron run",
            otel.name = %format_args!("cron {component}"),
            otel.kind = "consumer",
            otel.status_code = tracing::field::Empty,
            component = %component,
            cron.expression = %self.expression,
            cron.scheduled = %scheduled,
        );
        let outcome = gyre_trigger::guarded(self.timeout, &watch, call)
            .instrument(span.clone())
            .await;
        if !matches!(outcome, RunOutcome::Succeeded) {
            span.record("otel.status_code", "ERROR");
        }
        gyre_trigger::count_outcome(component, TriggerKind::Cron, &outcome);
        metrics().cron_run(
            component,
            match &outcome {
                RunOutcome::Succeeded => RunResult::Ok,
                RunOutcome::TimedOut(_) | RunOutcome::CpuExceeded => RunResult::TimedOut,
                RunOutcome::Failed(_) => RunResult::Failed,
            },
        );
        match outcome {
            RunOutcome::Succeeded => {
                tracing::debug!(component = %component, "scheduled run of {scheduled} done");
            }
            RunOutcome::TimedOut(limit) => tracing::warn!(
                component = %component,
                "scheduled run stopped after {limit:?} (`request_timeout`); its instance is torn down"
            ),
            RunOutcome::CpuExceeded => tracing::warn!(
                component = %component,
                "scheduled run stopped: it used more than its CPU time (`cpu_timeout`)"
            ),
            RunOutcome::Failed(e) => {
                tracing::error!(component = %component, "scheduled run failed: {e:#}");
            }
        }
    }

    async fn call(&self, scheduled: DateTime<Utc>, watch: &Arc<RequestWatch>) -> Result<()> {
        let engine = self.pre.instance_pre().engine();
        let mut store = self.config.new_store(engine, |_| {})?;
        store.data_mut().watch_request(watch);
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .instrument(gyre_trigger::instantiate_span(&self.component))
            .await?;
        let metadata = Metadata {
            timestamp: u64::try_from(scheduled.timestamp()).unwrap_or(0),
        };
        match instance
            .call_handle_cron_event(&mut store, metadata)
            .await?
        {
            Ok(()) => Ok(()),
            Err(CronError::Other(message)) => bail!("the component returned an error: {message}"),
        }
    }

    /// Runs at each time the schedule gives, one run at a time.
    async fn run_forever(self: Arc<Self>) {
        let running = Arc::new(AtomicBool::new(false));
        loop {
            let Some(next) = self.schedule.upcoming(Utc).next() else {
                tracing::info!(
                    component = %self.component,
                    "schedule `{}` has no more runs",
                    self.expression
                );
                return;
            };
            let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::time::sleep(wait).await;
            if running.swap(true, Ordering::AcqRel) {
                metrics().cron_run(&self.component, RunResult::Skipped);
                tracing::warn!(
                    component = %self.component,
                    "run due at {next} skipped: the previous run of `{}` is still going",
                    self.expression
                );
                continue;
            }
            let job = self.clone();
            let running = running.clone();
            tokio::spawn(async move {
                /// Clears the flag however the run ends.
                struct Done(Arc<AtomicBool>);
                impl Drop for Done {
                    fn drop(&mut self) {
                        self.0.store(false, Ordering::Release);
                    }
                }
                let _done = Done(running);
                job.run(next).await;
            });
        }
    }
}

/// The loaded cron trigger of an application.
pub struct CronTrigger {
    jobs: Vec<Arc<Job>>,
}

impl CronTrigger {
    /// Compiles and links every component a cron trigger runs. Returns
    /// `None` if the app has no cron triggers.
    pub async fn load(
        engine: &Arc<GyreEngine>,
        app: &App,
        options: &CronLoadOptions<'_>,
    ) -> Result<Option<(Self, Vec<CronComponentReport>)>> {
        let mut jobs = Vec::new();
        let mut reports = Vec::new();
        let mut linked: Vec<(String, bindings::SpinCronPre<HostState>, InstanceConfig)> =
            Vec::new();
        for (trigger, cron) in app.manifest.cron_triggers() {
            let Some(id) = trigger.component.clone() else {
                bail!("cron trigger `{}` has no component", trigger.id);
            };
            // Checked when the manifest was read; parsed again here.
            let schedule: cron::Schedule = cron.expression.parse().map_err(|e| {
                anyhow::anyhow!(
                    "cron trigger `{}`: invalid cron expression {:?}: {e}",
                    trigger.id,
                    cron.expression
                )
            })?;
            let (pre, config) = match linked.iter().find(|(linked_id, _, _)| *linked_id == id) {
                Some((_, pre, config)) => (pre.clone(), config.clone()),
                None => {
                    let loaded = gyre_trigger::load_component(engine, app, &id).await?;
                    let pre = bind_export(&id, loaded.pre)?;
                    reports.push(CronComponentReport {
                        id: id.clone(),
                        stubbed: loaded.stubbed,
                    });
                    let config = options.instance_config(app, &id)?;
                    linked.push((id.clone(), pre.clone(), config.clone()));
                    (pre, config)
                }
            };
            jobs.push(Arc::new(Job {
                timeout: options.limits.for_component(&id).request_timeout,
                component: id,
                expression: cron.expression.clone(),
                schedule,
                pre,
                config,
            }));
        }
        if jobs.is_empty() {
            return Ok(None);
        }
        Ok(Some((CronTrigger { jobs }, reports)))
    }

    /// Every schedule with its next run, for the startup listing.
    pub fn schedules(&self) -> Vec<ScheduleInfo> {
        self.jobs
            .iter()
            .map(|job| ScheduleInfo {
                component: job.component.clone(),
                expression: job.expression.clone(),
                next: job.schedule.upcoming(Utc).next(),
            })
            .collect()
    }

    /// Runs the schedules until `shutdown` resolves, then lets runs in
    /// progress finish (up to 10 s).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for job in &self.jobs {
            tasks.spawn(job.clone().run_forever());
        }
        shutdown.await;
        tasks.abort_all();
        // A run holds its job; wait for them to be let go.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.jobs.iter().any(|job| Arc::strong_count(job) > 1)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

/// The component's `handle-cron-event`, or why it has none.
fn bind_export(id: &str, pre: InstancePre<HostState>) -> Result<bindings::SpinCronPre<HostState>> {
    let exports: Vec<String> = pre
        .component()
        .component_type()
        .exports(pre.engine())
        .map(|(name, _)| name.to_string())
        .collect();
    describe_handler(&exports).map_err(|e| anyhow::anyhow!("component `{id}`: {e}"))?;
    bindings::SpinCronPre::new(pre).map_err(|e| {
        anyhow::anyhow!(
            "component `{id}`: its `{EXPORT}` does not have the type of `fermyon:spin-cron@2.0.0` (func(metadata) -> result<_, error>): {e:#}"
        )
    })
}

/// Whether a component's exports include the cron handler (used at load
/// and by `gyre doctor`).
pub fn describe_handler(exports: &[String]) -> Result<&'static str> {
    if exports.iter().any(|e| e == EXPORT) {
        return Ok(EXPORT);
    }
    bail!(
        "it is used by a cron trigger but does not export `{EXPORT}` (found: {}); build it for the `spin-cron` world of `fermyon:spin-cron@2.0.0`",
        gyre_trigger::list_exports(exports)
    )
}
