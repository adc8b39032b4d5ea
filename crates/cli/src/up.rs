//! `gyre up`: load an application and serve its triggers.

use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};
use gyre_engine::{
    AppCapabilities, CacheOutcome, EngineOptions, GyreEngine, OutputEcho, OutputHub, StreamKind,
};
use gyre_trigger_http::{
    HttpLoadOptions, HttpTrigger, PerInstance, ReusePolicy, RouteInfo, ServeOptions,
};

pub(crate) const EXAMPLES: &str = "\
Examples:
  gyre up
  gyre up -f ./my-app/spin.toml
  gyre up --listen 127.0.0.1:0 -q
  gyre up -e API_URL=http://localhost:8080 --log-dir ./logs
  gyre up --variable api_key=@secret.txt --key-value greeting=hello
  gyre up --runtime-config-file runtime-config.toml --sqlite @schema.sql";

#[derive(Args, Debug)]
pub(crate) struct UpArgs {
    /// The application: a spin.toml, a directory holding one, or a
    /// registry reference (REGISTRY/REPOSITORY:TAG) that is not a local path.
    #[arg(short = 'f', long = "from", value_name = "APPLICATION")]
    pub(crate) from: Option<PathBuf>,

    /// The application as a registry reference, even where a local path of
    /// that name exists.
    #[arg(long, value_name = "REFERENCE", conflicts_with = "from")]
    from_registry: Option<String>,

    #[command(flatten)]
    registry: crate::registry::RegistryFlags,

    /// Address to listen on: HOST:PORT, or a bare PORT for every interface
    /// (port 0 picks a free port).
    #[arg(long, env = "SPIN_HTTP_LISTEN_ADDR", default_value = "127.0.0.1:3000")]
    listen: String,

    /// Serve Prometheus metrics at http://ADDR/metrics, on a listener of
    /// their own (HOST:PORT or a bare PORT; off by default).
    #[arg(long, env = "GYRE_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<String>,

    /// How Gyre writes its own log lines (guest output is unchanged).
    #[arg(long, value_enum, env = "GYRE_LOG_FORMAT", default_value_t = LogFormatArg::Plain)]
    log_format: LogFormatArg,

    /// If the listen port is taken, try the next ones (up to 10).
    #[arg(long)]
    find_free_port: bool,

    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "SPIN_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, env = "SPIN_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Run only this component and the triggers that run it (repeatable).
    #[arg(short = 'c', long = "component-id", value_name = "ID")]
    component_ids: Vec<String>,

    /// Run with this build profile (`[component.<id>.profile.<name>]`):
    /// its `source`, environment and dependencies.
    #[arg(long, value_name = "NAME")]
    pub(crate) profile: Option<String>,

    /// Mount `files` directories in place, read-only, instead of copying
    /// them (edits show at once; single files, globs and `exclude_files`
    /// are refused).
    #[arg(long)]
    direct_mounts: bool,

    /// Echo only this component's output to the terminal (repeatable;
    /// default: every component).
    #[arg(long = "follow", value_name = "ID")]
    follow: Vec<String>,

    /// Environment variable for every component, as KEY=VALUE (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = crate::parse_key_value)]
    env: Vec<(String, String)>,

    /// Directory for application state (default: `.spin` next to the
    /// manifest; none for an app from a registry).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// Directory for component logs (default: `<state-dir>/logs`, so none
    /// for an app from a registry; "" turns file logs off).
    #[arg(short = 'L', long, env = "SPIN_LOG_DIR", value_name = "DIR")]
    log_dir: Option<PathBuf>,

    /// Clear component log files at start instead of appending.
    #[arg(long)]
    truncate_logs: bool,

    /// Do not read or write the compiled-code cache.
    #[arg(long, env = "DISABLE_WASMTIME_CACHE")]
    disable_cache: bool,

    /// Directory for the compiled-code cache.
    #[arg(long, env = "GYRE_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// Allocate instances on demand instead of from a pre-reserved pool.
    #[arg(long)]
    disable_pooling: bool,

    /// Largest linear memory of one instance, e.g. 128MiB (default 256MiB).
    #[arg(long, env = "SPIN_MAX_INSTANCE_MEMORY", value_name = "SIZE", value_parser = parse_size)]
    max_instance_memory: Option<u64>,

    /// Wall-clock deadline of one request, e.g. 30s (default 60s; 0 = none). Past it: 504.
    #[arg(long, env = "GYRE_REQUEST_TIMEOUT", value_name = "DURATION", value_parser = parse_optional_duration)]
    request_timeout: Option<OptionalDuration>,

    /// Guest CPU time of one request, e.g. 2s (default 10s; 0 = none). Past it: 504.
    #[arg(long, env = "GYRE_CPU_TIMEOUT", value_name = "DURATION", value_parser = parse_optional_duration)]
    cpu_timeout: Option<OptionalDuration>,

    /// Largest request body, e.g. 10MiB (default 1GiB). Over it: 413.
    #[arg(long, env = "GYRE_MAX_REQUEST_BODY", value_name = "SIZE", value_parser = parse_size)]
    max_request_body: Option<u64>,

    /// Requests run at once (default 1000); more wait in a queue, then get 503.
    #[arg(long, env = "GYRE_MAX_CONCURRENT_REQUESTS", value_name = "N")]
    max_concurrent_requests: Option<usize>,

    /// Requests one `wasi:http/handler@0.3` instance serves in all: N, or
    /// A..B for a number drawn per instance (B excluded). WASI 0.2
    /// components always get a fresh instance per request.
    #[arg(long, value_name = "N|A..B", default_value = "128", value_parser = PerInstance::parse_count)]
    max_instance_reuse_count: PerInstance<usize>,

    /// Requests one `wasi:http/handler@0.3` instance serves at once: N or A..B.
    #[arg(long, value_name = "N|A..B", default_value = "16", value_parser = PerInstance::parse_count)]
    max_instance_concurrent_reuse_count: PerInstance<usize>,

    /// How long an idle `wasi:http/handler@0.3` instance is kept, e.g. 1s,
    /// 500ms or 1..8s (bare numbers are seconds).
    #[arg(long, value_name = "DURATION|A..B", default_value = "1s", value_parser = PerInstance::parse_duration)]
    idle_instance_timeout: PerInstance<Duration>,

    /// How the startup listing is printed.
    #[arg(long, value_enum, default_value_t = Format::Plain)]
    format: Format,

    /// Do not echo component output to the terminal.
    #[arg(short = 'q', long, visible_alias = "sh", alias = "shush")]
    quiet: bool,

    /// Runtime config file: key-value stores, SQLite databases, variables providers.
    #[arg(long, env = "RUNTIME_CONFIG_FILE", value_name = "FILE")]
    pub(crate) runtime_config_file: Option<PathBuf>,

    /// Application variable value: KEY=VALUE, KEY=@file, or @file.json / @file.toml (repeatable).
    #[arg(long = "variable", value_name = "KEY=VALUE")]
    variables: Vec<String>,

    /// Set a key in the default key-value store before serving, as KEY=VALUE (repeatable).
    #[arg(long = "key-value", value_name = "KEY=VALUE", value_parser = crate::parse_key_value)]
    key_values: Vec<(String, String)>,

    /// SQL to run against the default database before serving: "SQL" or @file.sql (repeatable).
    #[arg(long = "sqlite", value_name = "SQL")]
    sqlite_statements: Vec<String>,

    /// Seconds in-flight requests may take to finish after Ctrl-C / SIGTERM.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    shutdown_grace: u64,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Plain,
    Json,
}

fn parse_size(s: &str) -> Result<u64, String> {
    gyre_manifest::parse_size(s)
}

/// A duration where 0 means "no limit".
#[derive(Debug, Clone, Copy)]
struct OptionalDuration(Option<Duration>);

fn parse_optional_duration(s: &str) -> Result<OptionalDuration, String> {
    let d = gyre_manifest::parse_duration(s)?;
    Ok(OptionalDuration(Some(d).filter(|d| !d.is_zero())))
}

/// Resolves every component's limits: a component's own
/// `[limits.component.<id>]` entry wins, then the command line, then the
/// runtime config's `[limits]`, then Gyre's defaults.
fn resolve_limits(
    args: &UpArgs,
    app: &gyre_app::App,
    runtime_config: &gyre_manifest::RuntimeConfig,
) -> Result<(gyre_engine::AppLimits, gyre_trigger_http::ServerLimits)> {
    use gyre_engine::{AppLimits, ComponentLimits};
    use gyre_manifest::LimitOverrides;
    let limits = &runtime_config.limits;
    let file_app = LimitOverrides {
        max_instance_memory: limits
            .app
            .max_instance_memory
            .or(runtime_config.max_instance_memory),
        ..limits.app.clone()
    };
    let apply = |base: ComponentLimits, o: &LimitOverrides| ComponentLimits {
        instance: gyre_engine::InstanceLimits {
            max_memory_bytes: o
                .max_instance_memory
                .map_or(base.instance.max_memory_bytes, |m| {
                    usize::try_from(m).unwrap_or(usize::MAX)
                }),
            cpu_timeout: o.cpu_timeout.map_or(base.instance.cpu_timeout, Some),
            max_output_bytes: o.max_output.unwrap_or(base.instance.max_output_bytes),
        },
        request_timeout: o.request_timeout.map_or(base.request_timeout, Some),
        max_request_body: o.max_request_body.map_or(base.max_request_body, Some),
    };
    let mut app_limits = apply(ComponentLimits::DEFAULT, &file_app);
    if let Some(m) = args.max_instance_memory {
        app_limits.instance.max_memory_bytes = usize::try_from(m).unwrap_or(usize::MAX);
    }
    if let Some(OptionalDuration(d)) = args.cpu_timeout {
        app_limits.instance.cpu_timeout = d;
    }
    if let Some(OptionalDuration(d)) = args.request_timeout {
        app_limits.request_timeout = d;
    }
    if let Some(b) = args.max_request_body {
        app_limits.max_request_body = Some(b);
    }
    let mut resolved = AppLimits {
        default: app_limits,
        components: Default::default(),
    };
    for (id, overrides) in &limits.components {
        if !app.manifest.components.contains_key(id) {
            let known: Vec<&str> = app.manifest.components.keys().map(String::as_str).collect();
            let file = runtime_config
                .source
                .as_ref()
                .map(|s| s.path().display().to_string())
                .unwrap_or_default();
            bail!(
                "{file}: `[limits.component.{id}]` names no component of the app; components: {}",
                known.join(", ")
            );
        }
        resolved
            .components
            .insert(id.clone(), apply(app_limits, overrides));
    }

    let server = &limits.server;
    let d = gyre_trigger_http::ServerLimits::DEFAULT;
    let server = gyre_trigger_http::ServerLimits {
        max_concurrent_requests: args
            .max_concurrent_requests
            .or(server.max_concurrent_requests)
            .unwrap_or(d.max_concurrent_requests)
            .max(1),
        max_queued_requests: server.max_queued_requests.unwrap_or(d.max_queued_requests),
        queue_timeout: server.queue_timeout.unwrap_or(d.queue_timeout),
        max_connections: server.max_connections.unwrap_or(d.max_connections),
        max_header_count: server.max_header_count.unwrap_or(d.max_header_count),
        max_header_bytes: server.max_header_bytes.unwrap_or(d.max_header_bytes),
        max_uri_length: server.max_uri_length.unwrap_or(d.max_uri_length),
        header_read_timeout: server.header_read_timeout.unwrap_or(d.header_read_timeout),
        max_h2_streams: server.max_h2_streams.unwrap_or(d.max_h2_streams),
    };
    Ok((resolved, server))
}

fn parse_listen(s: &str) -> Result<SocketAddr> {
    let candidate = if s.starts_with(':') {
        format!("127.0.0.1{s}")
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        // A bare port, as SpinKube's spintainer executor passes it.
        format!("0.0.0.0:{s}")
    } else {
        s.to_string()
    };
    let addrs: Vec<SocketAddr> = candidate
        .to_socket_addrs()
        .with_context(|| {
            format!("invalid listen address {s:?}: expected HOST:PORT, e.g. 127.0.0.1:3000")
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .with_context(|| format!("listen address {s:?} resolves to nothing"))
}

/// Binds the listener; with `--find-free-port`, a port in use moves on to
/// the next, up to 10 ports in all, as Spin.
async fn bind(
    live: &gyre_trigger_http::LiveTrigger,
    listen: SocketAddr,
    options: ServeOptions,
    find_free_port: bool,
) -> Result<gyre_trigger_http::BoundServer> {
    const TRIES: u16 = 10;
    let mut addr = listen;
    for _ in 1..TRIES {
        match live.bind(addr, options.clone()).await {
            Err(e) if find_free_port && gyre_trigger_http::is_address_in_use(&e) => {
                let Some(next) = addr.port().checked_add(1) else {
                    return Err(e);
                };
                tracing::debug!("{addr} is in use; trying port {next}");
                addr.set_port(next);
            }
            other => return other,
        }
    }
    live.bind(addr, options).await.map_err(|e| {
        if find_free_port && gyre_trigger_http::is_address_in_use(&e) {
            e.context(format!(
                "no free port among the {TRIES} from {}",
                listen.port()
            ))
        } else {
            e
        }
    })
}

/// Echoes guest output to stderr, each line behind its component id;
/// with `--follow`, only the followed components'.
struct TerminalEcho {
    follow: Vec<String>,
}

impl OutputEcho for TerminalEcho {
    fn line(&self, component: &str, _stream: StreamKind, line: &[u8]) {
        if !self.follow.is_empty() && !self.follow.iter().any(|id| id == component) {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "[{component}] ");
        let _ = err.write_all(line);
        let _ = err.write_all(b"\n");
    }
}

pub(crate) fn run(args: UpArgs) -> Result<ExitCode> {
    run_with_reloads(args, None)
}

/// Runs `up`, also reloading whenever `reloads` (the watcher) asks.
pub(crate) fn run_with_reloads(
    args: UpArgs,
    reloads: Option<tokio::sync::mpsc::UnboundedReceiver<Reload>>,
) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let format = match args.log_format {
        LogFormatArg::Plain => gyre_telemetry::LogFormat::Plain,
        LogFormatArg::Json => gyre_telemetry::LogFormat::Json,
    };
    let telemetry = gyre_telemetry::init(format, "warn,gyre=info", &runtime)?;
    let served = runtime.block_on(up(args, reloads));
    // Spans not yet exported leave now, before the process does.
    drop(telemetry);
    served?;
    Ok(ExitCode::SUCCESS)
}

/// `--log-format`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum LogFormatArg {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line (timestamp, level, target, message,
    /// component, and the request's id and route inside a request).
    Json,
}

/// What a running `up` can be asked to reload, while it keeps serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reload {
    /// Reread the manifest, the runtime config and every source (SIGHUP,
    /// a manifest edit, a changed `files` directory).
    App,
    /// Recompile these components from their source files; nothing else
    /// changes.
    Components(Vec<String>),
}

/// The application as loaded from disk, up to (not including) its
/// triggers: what a whole-app reload builds afresh.
struct LoadedApp {
    app: Arc<gyre_app::App>,
    capabilities: AppCapabilities,
    local_services: Arc<gyre_outbound_http::LocalServices>,
    resolver: Arc<gyre_variables::Resolver>,
    limits: gyre_engine::AppLimits,
    server_limits: gyre_trigger_http::ServerLimits,
    log_dir: Option<PathBuf>,
}

/// What stays for the life of the process: the engines, guest output,
/// the arguments.
struct Session {
    args: UpArgs,
    manifest_path: PathBuf,
    /// The app was pulled from a registry: no state directory of its own
    /// unless one is asked for, logs on stdout/stderr only.
    from_registry: bool,
    download_cache: Option<PathBuf>,
    engine: Arc<GyreEngine>,
    hub: OutputHub,
}

async fn load_app(
    args: &UpArgs,
    manifest_path: &std::path::Path,
    from_registry: bool,
    download_cache: Option<PathBuf>,
) -> Result<LoadedApp> {
    let app = gyre_app::load(
        manifest_path,
        &gyre_app::LoadOptions {
            env: args.env.clone(),
            download_cache,
            include_unused: false,
            only_components: args.component_ids.clone(),
            packages: args.registry.packages()?,
            profile: args.profile.clone(),
            direct_mounts: args.direct_mounts,
        },
    )
    .await?;
    for warning in &app.manifest.warnings {
        tracing::warn!("{warning}");
    }
    if app.manifest.http_triggers().next().is_none()
        && app.manifest.redis_triggers().next().is_none()
        && app.manifest.cron_triggers().next().is_none()
    {
        bail!(
            "No triggers in app: add an `[[trigger.http]]`, `[[trigger.redis]]` or `[[trigger.cron]]` to {}",
            manifest_path.display()
        );
    }
    let runtime_config = match &args.runtime_config_file {
        Some(path) => gyre_manifest::load_runtime_config(path)?,
        None => gyre_manifest::RuntimeConfig::default(),
    };
    for warning in &runtime_config.warnings {
        tracing::warn!("{warning}");
    }
    // The command line wins over the runtime config, which wins over the
    // default `.spin` beside the manifest.
    let state_dir: Option<PathBuf> = match (&args.state_dir, &runtime_config.state_dir) {
        (Some(dir), _) if dir.as_os_str().is_empty() => None,
        (Some(dir), _) => Some(dir.clone()),
        (None, Some(dir)) => dir.clone(),
        (None, None) if from_registry => None,
        (None, None) => Some(app.dir.join(".spin")),
    };
    let log_dir = match (&args.log_dir, &runtime_config.log_dir) {
        (Some(d), _) if d.as_os_str().is_empty() => None,
        (Some(d), _) => Some(d.clone()),
        (None, Some(d)) => d.clone(),
        (None, None) => state_dir.as_ref().map(|d| d.join("logs")),
    };
    let (capabilities, local_services, resolver) =
        configure_capabilities(args, &app, &runtime_config, state_dir.as_deref()).await?;
    let (limits, server_limits) = resolve_limits(args, &app, &runtime_config)?;
    Ok(LoadedApp {
        app: Arc::new(app),
        capabilities,
        local_services,
        resolver,
        limits,
        server_limits,
        log_dir,
    })
}

/// An app's triggers, compiled and linked.
struct Triggers {
    http: Option<HttpTrigger>,
    redis: Option<gyre_trigger_redis::RedisTrigger>,
    cron: Option<gyre_trigger_cron::CronTrigger>,
}

/// Compiles and links the app's triggers, logging what each component is.
async fn load_triggers(
    session: &Session,
    loaded: &LoadedApp,
    truncate_logs: bool,
) -> Result<Triggers> {
    let engine = &session.engine;
    let slow_notice = tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(1250)).await;
        tracing::info!("Preparing Wasm modules is taking a few seconds...");
        // On a terminal, show that compiling is under way (Cranelift tells
        // no fraction done, so a spinner with the time taken).
        if crate::term::progress_on_stderr() {
            /// Clears the spinner when loading ends (the task is aborted).
            struct Clear(indicatif::ProgressBar);
            impl Drop for Clear {
                fn drop(&mut self) {
                    self.0.finish_and_clear();
                }
            }
            let _clear = Clear(crate::build::spinner(
                "compiling components (cached for next time)",
            ));
            std::future::pending::<()>().await;
        }
    });
    let load_options = || gyre_trigger::LoadOptions {
        output: &session.hub,
        log_dir: loaded.log_dir.clone(),
        truncate_logs,
        limits: &loaded.limits,
        capabilities: &loaded.capabilities,
    };
    let http = if loaded.app.manifest.http_triggers().next().is_some() {
        let options = HttpLoadOptions {
            common: load_options(),
            reuse: ReusePolicy {
                max_reuse: session.args.max_instance_reuse_count,
                max_concurrent: session.args.max_instance_concurrent_reuse_count,
                idle_timeout: session.args.idle_instance_timeout,
            },
        };
        let (trigger, reports) = HttpTrigger::load(engine, &loaded.app, &options).await?;
        for report in &reports {
            report_component(report);
        }
        for warning in trigger.warnings() {
            tracing::warn!("{warning}");
        }
        Some(trigger)
    } else {
        None
    };
    let redis = gyre_trigger_redis::RedisTrigger::load(
        engine,
        &loaded.app,
        &gyre_trigger_redis::RedisLoadOptions {
            common: load_options(),
            resolver: &loaded.resolver,
        },
    )
    .await?;
    let cron = gyre_trigger_cron::CronTrigger::load(engine, &loaded.app, &load_options()).await?;
    slow_notice.abort();
    let _ = slow_notice.await;
    let redis = redis.map(|(trigger, reports)| {
        for report in &reports {
            tracing::info!("component `{}` ({}): loaded", report.id, report.handler);
            report_stubbed(&report.id, &report.stubbed);
        }
        trigger
    });
    let cron = cron.map(|(trigger, reports)| {
        for report in &reports {
            tracing::info!(
                "component `{}` ({}): loaded",
                report.id,
                gyre_trigger_cron::EXPORT
            );
            report_stubbed(&report.id, &report.stubbed);
        }
        trigger
    });
    Ok(Triggers { http, redis, cron })
}

fn report_component(report: &gyre_trigger_http::ComponentReport) {
    let how = match report.cache {
        CacheOutcome::Hit => "compiled code loaded from cache",
        CacheOutcome::Miss => "compiled and cached",
        CacheOutcome::Disabled => "compiled (cache off)",
    };
    tracing::info!(
        "component `{}` ({}): {how} in {} ms",
        report.id,
        report.handler,
        report.load_time.as_millis()
    );
    report_stubbed(&report.id, &report.stubbed);
}

/// One generation of the triggers that run without a listener (Redis,
/// cron): stopped when a reload replaces them or the process stops.
struct BackgroundRun {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<(&'static str, tokio::task::JoinHandle<Result<()>>)>,
}

impl BackgroundRun {
    /// Lists and starts the Redis and cron triggers, if any.
    fn start(
        redis: Option<gyre_trigger_redis::RedisTrigger>,
        cron: Option<gyre_trigger_cron::CronTrigger>,
        process_stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<Self> {
        let (stop, own_stop) = tokio::sync::watch::channel(false);
        let stopped = || {
            let mut own_stop = own_stop.clone();
            let mut process_stop = process_stop.clone();
            async move {
                tokio::select! {
                    _ = own_stop.wait_for(|s| *s) => {}
                    _ = process_stop.wait_for(|s| *s) => {}
                }
            }
        };
        let mut tasks = Vec::new();
        if let Some(trigger) = redis {
            print_channels(&trigger.active_channels())?;
            tasks.push(("Redis", tokio::spawn(trigger.run(stopped()))));
        }
        if let Some(trigger) = cron {
            print_schedules(&trigger.schedules())?;
            tasks.push(("cron", tokio::spawn(trigger.run(stopped()))));
        }
        Ok(BackgroundRun { stop, tasks })
    }

    /// Stops this generation and waits for it to finish.
    async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        self.finished().await
    }

    /// Waits for every trigger of this generation to finish.
    async fn finished(self) -> Result<()> {
        for (name, task) in self.tasks {
            task.await
                .with_context(|| format!("the {name} trigger task failed"))??;
        }
        Ok(())
    }
}

/// The manifest to run, and whether it came from a registry.
async fn resolve_app(args: &UpArgs) -> Result<(PathBuf, bool)> {
    let reference = match (&args.from_registry, &args.from) {
        (Some(reference), _) => Some(reference.clone()),
        (None, Some(from)) if crate::registry::looks_like_reference(from) => {
            Some(from.to_string_lossy().into_owned())
        }
        _ => None,
    };
    match reference {
        Some(reference) => Ok((
            crate::registry::app_from_registry(&reference, &args.registry).await?,
            true,
        )),
        None => Ok((
            gyre_app::resolve_manifest_path(args.from.as_deref())?,
            false,
        )),
    }
}

async fn up(
    args: UpArgs,
    mut reloads: Option<tokio::sync::mpsc::UnboundedReceiver<Reload>>,
) -> Result<()> {
    let started = Instant::now();
    let listen = parse_listen(&args.listen)?;
    // Metrics first: a scrape can watch the load.
    let metrics = match &args.metrics_listen {
        Some(addr) => {
            let server = gyre_telemetry::MetricsServer::bind(parse_listen(addr)?).await?;
            let addr = server.local_addr()?;
            println!("Metrics: http://{addr}/metrics");
            Some(tokio::spawn(server.serve()))
        }
        None => None,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(gyre_trigger_http::TlsConfig::from_pem_files(cert, key)?),
        _ => None,
    };
    let (manifest_path, from_registry) = resolve_app(&args).await?;
    let compile_cache = args
        .cache_dir
        .clone()
        .or_else(gyre_engine::default_cache_dir);
    // Downloaded sources sit beside the compiled-code cache.
    let download_cache = compile_cache
        .as_deref()
        .map(|d| d.with_file_name("downloads"));
    let loaded = load_app(&args, &manifest_path, from_registry, download_cache.clone()).await?;

    let largest_memory = std::iter::once(&loaded.limits.default)
        .chain(loaded.limits.components.values())
        .map(|l| l.instance.max_memory_bytes)
        .max()
        .unwrap_or(0);
    let defaults = EngineOptions::default();
    let engine_options = EngineOptions {
        pooling: if args.disable_pooling {
            Some(false)
        } else {
            pooling_from_env()
        },
        cache_dir: if args.disable_cache {
            None
        } else {
            args.cache_dir.clone().or(defaults.cache_dir)
        },
        max_memory_bytes: u64::try_from(largest_memory).unwrap_or(u64::MAX),
        max_instances: instance_count_from_env().unwrap_or(defaults.max_instances),
        synchronous_engine: defaults.synchronous_engine,
    };
    let engine = Arc::new(GyreEngine::with_capabilities(
        &engine_options,
        &capabilities(),
    )?);
    let echo: Option<Arc<dyn OutputEcho>> = if args.quiet {
        None
    } else {
        Some(Arc::new(TerminalEcho {
            follow: args.follow.clone(),
        }))
    };
    let hub = OutputHub::new(echo)?;
    let session = Session {
        manifest_path,
        from_registry,
        download_cache,
        engine,
        hub,
        args,
    };
    let Triggers { http, redis, cron } =
        load_triggers(&session, &loaded, session.args.truncate_logs).await?;

    // Every part stops on the same signal.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let mut http_server = None;
    if let Some(trigger) = http {
        let routes = trigger.routes().to_vec();
        let live = gyre_trigger_http::LiveTrigger::new(trigger);
        loaded
            .local_services
            .set_dispatcher(live.chain_dispatcher());
        let options = ServeOptions {
            shutdown_grace: Duration::from_secs(session.args.shutdown_grace),
            limits: loaded.server_limits,
            tls: tls.clone(),
        };
        let server = bind(&live, listen, options, session.args.find_free_port).await?;
        let addr = server.local_addr();
        loaded.local_services.set_self_addr(addr);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base_url = format!("{scheme}://{addr}");
        print_listing(session.args.format, &base_url, &routes)?;
        let task = tokio::spawn(server.serve(stopped(stop_rx.clone())));
        http_server = Some((live, addr, task));
    }
    let mut background = BackgroundRun::start(redis, cron, &stop_rx)?;
    tracing::info!("ready in {} ms", started.elapsed().as_millis());

    // Serve, reloading on SIGHUP and whenever the watcher asks.
    let mut hangup = hangup_signal()?;
    let mut current = loaded;
    loop {
        let request = tokio::select! {
            () = stopped(stop_rx.clone()) => break,
            Some(()) = hangup.recv() => Reload::App,
            Some(request) = async {
                match reloads.as_mut() {
                    Some(r) => r.recv().await,
                    None => std::future::pending().await,
                }
            } => request,
        };
        let started = Instant::now();
        let outcome = reload(
            &session,
            &mut current,
            http_server.as_ref().map(|(live, addr, _)| (live, *addr)),
            &mut background,
            &stop_rx,
            &request,
        )
        .await;
        match outcome {
            Ok(what) => eprintln!(
                "{} reloaded {what} in {} ms",
                crate::term::ok_mark(),
                started.elapsed().as_millis()
            ),
            Err(e) => eprintln!(
                "{} reload failed; still serving the previous version: {e:#}",
                crate::term::fail_mark()
            ),
        }
    }

    if let Some((_, _, task)) = http_server {
        task.await.context("the HTTP server task failed")??;
    }
    background.finished().await?;
    if let Some(task) = metrics {
        task.abort();
    }
    let dropped = session.hub.dropped_bytes();
    if dropped > 0 {
        tracing::warn!(
            "{dropped} bytes of component output were dropped because they came faster than they could be written"
        );
    }
    Ok(())
}

/// Builds the new version off the request path and swaps it in; returns
/// what was reloaded, for the one line the user sees. On an error the
/// running version is untouched.
async fn reload(
    session: &Session,
    current: &mut LoadedApp,
    http: Option<(&gyre_trigger_http::LiveTrigger, SocketAddr)>,
    background: &mut BackgroundRun,
    process_stop: &tokio::sync::watch::Receiver<bool>,
    request: &Reload,
) -> Result<String> {
    if let Reload::Components(ids) = request {
        // Only HTTP components are swapped alone; a Redis or cron one
        // reloads the app.
        let manifest = &current.app.manifest;
        let background_ids = ids.iter().any(|id| {
            let runs = |t: &gyre_manifest::Trigger| t.component.as_deref() == Some(id.as_str());
            manifest.redis_triggers().any(|(t, _)| runs(t))
                || manifest.cron_triggers().any(|(t, _)| runs(t))
        });
        if let (Some((live, _)), false) = (http, background_ids) {
            let serving = live.current();
            let mut next: Option<HttpTrigger> = None;
            for id in ids {
                let source =
                    crate::check::local_source(&current.app.manifest, &current.app.dir, id)
                        .with_context(|| {
                            format!("component `{id}` has no local source to reload")
                        })?;
                let wasm = std::fs::read(&source).with_context(|| {
                    format!("component `{id}`: cannot read {}", source.display())
                })?;
                // Its dependencies and middleware are the ones loaded with the app.
                let composition = current
                    .app
                    .components
                    .get(id.as_str())
                    .map(|c| c.composition.clone())
                    .unwrap_or_default();
                let base = next.as_ref().unwrap_or(&serving);
                let (replaced, report) = base
                    .replace_component(&session.engine, id, wasm, composition)
                    .await?;
                report_component(&report);
                next = Some(replaced);
            }
            if let Some(trigger) = next {
                live.replace(trigger);
            }
            let names: Vec<String> = ids.iter().map(|id| format!("`{id}`")).collect();
            return Ok(format!(
                "component{} {}",
                if ids.len() == 1 { "" } else { "s" },
                names.join(", ")
            ));
        }
    }
    // The whole application, from disk.
    let loaded = load_app(
        &session.args,
        &session.manifest_path,
        session.from_registry,
        session.download_cache.clone(),
    )
    .await?;
    let triggers = load_triggers(session, &loaded, false).await?;
    match (http, triggers.http) {
        (Some((live, addr)), Some(trigger)) => {
            loaded
                .local_services
                .set_dispatcher(live.chain_dispatcher());
            loaded.local_services.set_self_addr(addr);
            live.replace(trigger);
        }
        (None, Some(_)) => bail!(
            "the manifest now has HTTP triggers, but this process started without any: restart `gyre up` to serve HTTP"
        ),
        (Some(_), None) => bail!(
            "the manifest no longer has HTTP triggers; the listener stays up with the previous routes: restart `gyre up` to stop serving HTTP"
        ),
        (None, None) => {}
    }
    // Redis subscriptions and cron schedules move to the new version
    // (messages published in between are not delivered twice: pub/sub
    // keeps nothing for absent subscribers).
    let previous = std::mem::replace(
        background,
        BackgroundRun::start(triggers.redis, triggers.cron, process_stop)?,
    );
    if let Err(e) = previous.stop().await {
        tracing::warn!("the previous version's triggers ended badly: {e:#}");
    }
    *current = loaded;
    Ok(format!(
        "application `{}`",
        current.app.manifest.application.name
    ))
}

/// SIGHUP, where there is one.
fn hangup_signal() -> Result<tokio::sync::mpsc::UnboundedReceiver<()>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    #[cfg(unix)]
    {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("cannot listen for SIGHUP")?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                if tx.send(()).is_err() {
                    break;
                }
            }
        });
    }
    #[cfg(not(unix))]
    drop(tx);
    Ok(rx)
}

/// Every host capability Gyre binds into its linkers.
pub(crate) fn capabilities() -> [&'static dyn gyre_engine::Capability; 9] {
    [
        &gyre_key_value::KeyValueCapability,
        &gyre_sqlite::SqliteCapability,
        &gyre_variables::VariablesCapability,
        &gyre_redis::RedisCapability,
        &gyre_postgres::PostgresCapability,
        &gyre_mysql::MysqlCapability,
        &gyre_mqtt::MqttCapability,
        &gyre_outbound_http::SpinHttpCapability,
        &gyre_llm::LlmCapability,
    ]
}

/// The per-application step of every host capability: open stores and
/// databases, check variables, run `--key-value` and `--sqlite`.
async fn configure_capabilities(
    args: &UpArgs,
    app: &gyre_app::App,
    runtime_config: &gyre_manifest::RuntimeConfig,
    state_dir: Option<&std::path::Path>,
) -> Result<(
    AppCapabilities,
    Arc<gyre_outbound_http::LocalServices>,
    Arc<gyre_variables::Resolver>,
)> {
    if let Some(path) = &args.runtime_config_file {
        let mut described = Vec::new();
        for (label, store) in &runtime_config.key_value_stores {
            described.push(format!("[key_value_store.{label}: {}]", store.type_name()));
        }
        for label in runtime_config.sqlite_databases.keys() {
            described.push(format!("[sqlite_database.{label}: spin]"));
        }
        for provider in &runtime_config.variables_providers {
            described.push(format!("[variables_provider: {}]", provider.type_name()));
        }
        match &runtime_config.llm_compute {
            Some(gyre_manifest::LlmComputeConfig::RemoteHttp { .. }) => {
                described.push("[llm_compute: remote_http]".into())
            }
            Some(gyre_manifest::LlmComputeConfig::Local) => {
                described.push("[llm_compute: spin]".into())
            }
            None => {}
        }
        println!(
            "Using runtime config {} from {:?}",
            described.join(", "),
            path.display().to_string()
        );
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let variables = gyre_variables::AppVariables::configure(
        &app.manifest,
        runtime_config,
        &gyre_variables::VariablesOptions {
            cli_values: gyre_variables::parse_cli_variables(&args.variables, &cwd)?,
            dotenv_path: Some(app.dir.join(".env")),
            env: std::env::vars().collect(),
        },
    )?;
    // The default store and database are opened only when something uses
    // them: an app that keeps no state gets no files.
    let key_value = gyre_key_value::AppKeyValue::configure(
        &app.manifest,
        runtime_config,
        state_dir,
        !args.key_values.is_empty(),
    )
    .await?;
    let databases = gyre_sqlite::AppDatabases::configure(
        &app.manifest,
        runtime_config,
        state_dir,
        !args.sqlite_statements.is_empty(),
    )?;

    if !args.key_values.is_empty() {
        let store = key_value
            .default_store()
            .context("--key-value: the default key-value store is not available")?;
        for (key, value) in &args.key_values {
            store
                .set(key.clone(), value.clone().into_bytes())
                .await
                .with_context(|| {
                    format!("--key-value {key}: cannot set it in the default store")
                })?;
        }
    }
    for statement in &args.sqlite_statements {
        let database = databases
            .default_database()
            .context("--sqlite: the default database is not available")?;
        let sql = match statement.strip_prefix('@') {
            Some(file) => std::fs::read_to_string(cwd.join(file))
                .with_context(|| format!("--sqlite @{file}: cannot read the file"))?,
            None => statement.clone(),
        };
        database
            .execute_batch(sql)
            .await
            .with_context(|| format!("--sqlite {statement}: the statements failed"))?;
    }

    let mut capabilities = AppCapabilities::default();
    let allow_lists =
        gyre_outbound_http::expand_allow_lists(&app.manifest, variables.resolver()).await?;
    let outbound_http = gyre_outbound_http::AppOutboundHttp::new(
        &allow_lists,
        outbound_timeouts(runtime_config),
        runtime_config
            .outbound_http
            .max_connections
            .map_or(gyre_outbound_http::DEFAULT_MAX_CONNECTIONS, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            })
            .into(),
        runtime_config.block_networks.clone(),
    );
    variables.register(&mut capabilities);
    outbound_http.register(&mut capabilities);
    gyre_redis::AppRedis::new(&allow_lists).register(&mut capabilities);
    gyre_postgres::AppPostgres::new(
        &allow_lists,
        runtime_config
            .outbound_pg_max_connections
            .unwrap_or(gyre_postgres::DEFAULT_MAX_CONNECTIONS),
    )
    .register(&mut capabilities);
    gyre_mysql::AppMysql::new(
        &allow_lists,
        runtime_config
            .outbound_mysql_max_connections
            .unwrap_or(gyre_mysql::DEFAULT_MAX_CONNECTIONS),
    )
    .register(&mut capabilities);
    gyre_mqtt::AppMqtt::new(
        &allow_lists,
        runtime_config
            .outbound_mqtt_max_payload_bytes
            .unwrap_or(gyre_mqtt::DEFAULT_MAX_PAYLOAD_BYTES),
    )
    .register(&mut capabilities);
    key_value.register(&mut capabilities);
    databases.register(&mut capabilities);
    gyre_llm::AppLlm::configure(&app.manifest, runtime_config)?.register(&mut capabilities);
    Ok((
        capabilities,
        outbound_http.local_services().clone(),
        variables.resolver().clone(),
    ))
}

/// Outbound HTTP timeouts: Spin's defaults, unless the runtime config's
/// `[outbound_http]` sets `connect_timeout`, `first_byte_timeout` or
/// `between_bytes_timeout` (Gyre extension).
fn outbound_timeouts(
    runtime_config: &gyre_manifest::RuntimeConfig,
) -> gyre_outbound_http::Timeouts {
    let defaults = gyre_outbound_http::Timeouts::default();
    let http = &runtime_config.outbound_http;
    gyre_outbound_http::Timeouts {
        connect: http.connect_timeout.unwrap_or(defaults.connect),
        first_byte: http.first_byte_timeout.unwrap_or(defaults.first_byte),
        between_bytes: http.between_bytes_timeout.unwrap_or(defaults.between_bytes),
    }
}

fn report_stubbed(id: &str, stubbed: &gyre_engine::StubbedImports) {
    if !stubbed.0.is_empty() {
        tracing::info!(
            "component `{id}`: {} imported interfaces are not provided by Gyre yet and fail if called: {}",
            stubbed.0.len(),
            stubbed.0.join(", ")
        );
    }
}

/// The cron schedules with their next runs.
fn print_schedules(schedules: &[gyre_trigger_cron::ScheduleInfo]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "Cron Schedules:")?;
    for s in schedules {
        let next = match s.next {
            Some(next) => format!("next run {}", next.format("%Y-%m-%d %H:%M:%S UTC")),
            None => "no further runs".to_string(),
        };
        writeln!(out, "\t{}: \"{}\" ({next})", s.component, s.expression)?;
    }
    out.flush()?;
    Ok(())
}

/// Spin's listing of Redis subscriptions.
fn print_channels(channels: &[(String, String, Vec<String>)]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let mut current: Option<&str> = None;
    for (address, channel, components) in channels {
        if current != Some(address.as_str()) {
            writeln!(out, "Active Channels on {address}:")?;
            current = Some(address);
        }
        writeln!(out, "\t{address}/{channel}: [{}]", components.join(","))?;
    }
    out.flush()?;
    Ok(())
}

/// Spin's knob for the pooling allocator's size (most live instances).
fn instance_count_from_env() -> Option<u32> {
    ["SPIN_WASMTIME_INSTANCE_COUNT", "SPIN_MAX_INSTANCE_COUNT"]
        .iter()
        .find_map(|k| std::env::var(k).ok())
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
}

fn pooling_from_env() -> Option<bool> {
    match std::env::var("SPIN_WASMTIME_POOLING").ok().as_deref() {
        Some("1") | Some("true") => Some(true),
        Some("0") | Some("false") => Some(false),
        _ => None,
    }
}

fn print_listing(format: Format, base_url: &str, routes: &[RouteInfo]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Plain => {
            writeln!(out)?;
            writeln!(out, "Serving {base_url}")?;
            writeln!(out, "Available Routes:")?;
            for r in routes {
                let path = r.route.strip_suffix("/...").unwrap_or(&r.route);
                let wildcard = if r.wildcard { " (wildcard)" } else { "" };
                writeln!(out, "  {}: {base_url}{path}{wildcard}", r.id)?;
                if let Some(d) = &r.description {
                    writeln!(out, "    {d}")?;
                }
            }
        }
        Format::Json => {
            let routes: Vec<serde_json::Value> = routes
                .iter()
                .map(|r| {
                    let mut v =
                        serde_json::json!({ "id": r.id, "route": r.route, "wildcard": r.wildcard });
                    if let (Some(d), Some(obj)) = (&r.description, v.as_object_mut()) {
                        obj.insert("description".into(), d.clone().into());
                    }
                    v
                })
                .collect();
            let listing = serde_json::json!({ "base_url": base_url, "routes": routes });
            writeln!(out, "{listing}")?;
        }
    }
    out.flush()?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: no new connections; waiting for requests in flight");
}
