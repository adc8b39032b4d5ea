//! The normalised application manifest.
//!
//! Both manifest versions parse into these types: version 1 is converted as
//! Spin converts it, inline components are hoisted and trigger ids generated,
//! so later stages see one shape. Spans (`std::ops::Range<usize>`) are kept on
//! the items a later stage may need to point at.

use std::ops::Range;

use indexmap::IndexMap;

use crate::error::SourceFile;

/// Which manifest version the file was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestVersion {
    /// `spin_manifest_version = "1"`, converted on load.
    V1,
    /// `spin_manifest_version = 2`.
    V2,
}

/// A parsed, validated `spin.toml`.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file, for pointing at places in later errors.
    pub source: SourceFile,
    /// The version the file was written in.
    pub version: ManifestVersion,
    /// `[application]`.
    pub application: Application,
    /// `[variables]`: application variables, in file order.
    pub variables: IndexMap<String, Variable>,
    /// Every trigger, in file order, whatever its type.
    pub triggers: Vec<Trigger>,
    /// `[component.<id>]` plus hoisted inline components, in file order.
    pub components: IndexMap<String, Component>,
    /// Things worth telling the user that do not stop the app.
    pub warnings: Vec<String>,
}

/// `[application]`.
#[derive(Debug, Clone, Default)]
pub struct Application {
    /// Application name.
    pub name: String,
    /// Application version.
    pub version: String,
    /// Free text.
    pub description: String,
    /// Authors.
    pub authors: Vec<String>,
    /// `[application.trigger.http] base`.
    pub http_base: Option<String>,
    /// `[application.trigger.redis] address`.
    pub redis_address: Option<String>,
}

/// An application variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// Free text.
    pub description: Option<String>,
    /// A value must come from a provider.
    pub required: bool,
    /// Value used when no provider has one.
    pub default: Option<String>,
    /// Never logged or shown.
    pub secret: bool,
}

/// One `[[trigger.<type>]]` entry.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// Given or generated id.
    pub id: String,
    /// The `<type>` of `[[trigger.<type>]]`.
    pub trigger_type: String,
    /// The component it runs, if any (static responses have none).
    pub component: Option<String>,
    /// Type-specific configuration.
    pub config: TriggerConfig,
    /// Where the trigger is in the file.
    pub span: Range<usize>,
}

/// Type-specific trigger configuration.
#[derive(Debug, Clone)]
pub enum TriggerConfig {
    /// `[[trigger.http]]`.
    Http(HttpTrigger),
    /// `[[trigger.redis]]`.
    Redis(RedisTrigger),
    /// `[[trigger.cron]]` (Spin's cron trigger plugin, built into Gyre).
    Cron(CronTrigger),
    /// Any other trigger type; Gyre reports it as unsupported when run.
    Other,
}

/// `[[trigger.http]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTrigger {
    /// Where it is served.
    pub route: HttpRoute,
    /// How the component is run.
    pub executor: HttpExecutor,
    /// A fixed response instead of a component.
    pub static_response: Option<StaticResponse>,
    /// `dependencies.middleware`: wrapping the component, outermost first.
    pub middleware: Vec<ComponentDependency>,
}

/// `route = "/path/..."` or `route = { private = true }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpRoute {
    /// A route pattern as written.
    Path(String),
    /// Reachable only through service chaining.
    Private,
}

/// `executor = { type = ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpExecutor {
    /// A wasi:http or Spin inbound-http component (detected at load).
    Http,
    /// A CGI-style WASI command.
    Wagi {
        /// Argument template, default `${SCRIPT_NAME} ${ARGS}`.
        argv: String,
    },
}

/// `static_response = { status_code, headers, body }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticResponse {
    /// Status code, default 200.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Option<String>,
}

/// `[[trigger.redis]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTrigger {
    /// Channel to subscribe to (may hold `{{ variable }}` templates).
    pub channel: String,
    /// Server address overriding the application default.
    pub address: Option<String>,
    /// Gyre extension (Spin ignores it): only messages that are JSON objects
    /// whose top-level attributes equal these values reach the component,
    /// e.g. `filter = { type = "order.created" }` for CloudEvents.
    pub filter: Vec<(String, String)>,
}

/// `[[trigger.cron]]`: the component runs on a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronTrigger {
    /// `cron_expression` as written: six or seven fields, seconds first
    /// (`sec min hour day-of-month month day-of-week [year]`), checked at
    /// parse time.
    pub expression: String,
}

/// A component.
#[derive(Debug, Clone)]
pub struct Component {
    /// Its id.
    pub id: String,
    /// Free text.
    pub description: String,
    /// Where its Wasm comes from.
    pub source: ComponentSource,
    /// Files mounted into it.
    pub files: Vec<FileMount>,
    /// Globs excluded from `files`.
    pub exclude_files: Vec<String>,
    /// Environment variables.
    pub environment: IndexMap<String, String>,
    /// Hosts it may reach.
    pub allowed_outbound_hosts: Vec<String>,
    /// Key-value stores it may open.
    pub key_value_stores: Vec<String>,
    /// SQLite databases it may open.
    pub sqlite_databases: Vec<String>,
    /// Component variables (templates over application variables).
    pub variables: IndexMap<String, String>,
    /// AI models it may use.
    pub ai_models: Vec<String>,
    /// How to build it.
    pub build: Option<BuildConfig>,
    /// Component dependencies (composition).
    pub dependencies: IndexMap<String, ComponentDependency>,
    /// `dependencies_inherit_configuration`.
    pub dependencies_inherit_configuration: bool,
    /// `[component.<id>.profile.<name>]`, applied with `--profile`.
    pub profiles: IndexMap<String, ComponentProfile>,
    /// Where the component is in the file.
    pub span: Range<usize>,
    /// Where its `source` is in the file.
    pub source_span: Range<usize>,
}

/// `[component.<id>.profile.<name>]`: what a build profile changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComponentProfile {
    /// Replaces `source` (and where it is written).
    pub source: Option<(ComponentSource, Range<usize>)>,
    /// Replaces the build commands (`build.command`).
    pub build_commands: Option<Vec<String>>,
    /// Merged over `environment`.
    pub environment: IndexMap<String, String>,
    /// Merged over `dependencies`.
    pub dependencies: IndexMap<String, ComponentDependency>,
}

/// A component's `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// A path relative to the manifest directory.
    Local(String),
    /// Downloaded once and checked against its digest.
    Remote {
        /// Where to download from.
        url: String,
        /// `sha256:<hex>`.
        digest: String,
    },
    /// A package in a registry.
    Registry {
        /// Registry host, when not the default.
        registry: Option<String>,
        /// `namespace:name`.
        package: String,
        /// Exact version.
        version: String,
    },
}

/// One entry of `files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMount {
    /// A file, directory or glob relative to the application directory.
    Pattern(String),
    /// A file or directory placed at a destination in the guest.
    Placement {
        /// Relative to the application directory.
        source: String,
        /// Absolute guest path.
        destination: String,
    },
}

/// `[component.<id>.build]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildConfig {
    /// Commands, run in order through the shell.
    pub commands: Vec<String>,
    /// Directory to run them in, relative to the manifest.
    pub workdir: Option<String>,
    /// Globs `gyre watch` watches.
    pub watch: Vec<String>,
}

/// One entry of `[component.<id>.dependencies]`, or a middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentDependency {
    /// Where its bytes come from.
    pub source: Dependency,
    /// `inherit_configuration`, when given (else the component's
    /// `dependencies_inherit_configuration` decides).
    pub inherit_configuration: Option<InheritConfiguration>,
    /// Where it is written.
    pub span: Range<usize>,
}

/// `inherit_configuration = true | false | [names]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InheritConfiguration {
    /// `true`: every grant of the parent.
    All,
    /// `false` (empty) or the listed groups (`key_value_stores`,
    /// `variables` …; names Spin does not know are ignored).
    Only(Vec<String>),
}

/// Where a dependency's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dependency {
    /// `"semver-req"` or `{ version, registry?, package? }`.
    Package {
        /// Version requirement.
        version: String,
        /// Registry host.
        registry: Option<String>,
        /// Package name when the key is not one.
        package: Option<String>,
        /// Export to use.
        export: Option<String>,
    },
    /// `{ path }`.
    Local {
        /// Relative path.
        path: String,
        /// Export to use.
        export: Option<String>,
    },
    /// `{ url, digest }`.
    Remote {
        /// URL.
        url: String,
        /// `sha256:<hex>`.
        digest: String,
        /// Export to use.
        export: Option<String>,
    },
    /// `{ component = "id" }`.
    AppComponent {
        /// The component id.
        component: String,
        /// Export to use.
        export: Option<String>,
    },
}

impl Manifest {
    /// The HTTP triggers with their configuration.
    pub fn http_triggers(&self) -> impl Iterator<Item = (&Trigger, &HttpTrigger)> {
        self.triggers.iter().filter_map(|t| match &t.config {
            TriggerConfig::Http(h) => Some((t, h)),
            _ => None,
        })
    }

    /// The cron triggers with their configuration.
    pub fn cron_triggers(&self) -> impl Iterator<Item = (&Trigger, &CronTrigger)> {
        self.triggers.iter().filter_map(|t| match &t.config {
            TriggerConfig::Cron(c) => Some((t, c)),
            _ => None,
        })
    }

    /// The Redis triggers with their configuration.
    pub fn redis_triggers(&self) -> impl Iterator<Item = (&Trigger, &RedisTrigger)> {
        self.triggers.iter().filter_map(|t| match &t.config {
            TriggerConfig::Redis(r) => Some((t, r)),
            _ => None,
        })
    }
}
