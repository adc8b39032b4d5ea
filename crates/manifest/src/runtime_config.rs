//! The runtime config file (`--runtime-config-file`): where an application's
//! key-value stores, SQLite databases and variable values live.
//!
//! It is read with the same span-keeping reader as `spin.toml`, so a mistake
//! here is reported the same way: file, line, column, field and a fix.
//! Unknown top-level tables fail, as in Spin. Tables Spin knows but Gyre
//! does not implement yet are accepted and reported as warnings, so a
//! runtime config written for Spin never stops an app that does not need
//! them.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use toml::de::{DeTable, DeValue};

use crate::error::{ManifestError, SourceFile};
use crate::limits::{LimitsConfig, duration, read_limits};
use crate::names;
use crate::reader::{Result, Sp, TableReader, type_name};

/// A parsed runtime config. [`RuntimeConfig::default`] is what Gyre uses
/// when no file is given.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// The file it came from, for errors about it later (e.g. a store
    /// named here that cannot be opened).
    pub source: Option<SourceFile>,
    /// `state_dir`: `Some(None)` when set to `""` (no state directory).
    pub state_dir: Option<Option<PathBuf>>,
    /// `log_dir`: `Some(None)` when set to `""` (no log files).
    pub log_dir: Option<Option<PathBuf>>,
    /// `max_instance_memory`, in bytes.
    pub max_instance_memory: Option<u64>,
    /// `[key_value_store.LABEL]` tables, in file order.
    pub key_value_stores: IndexMap<String, KeyValueStoreConfig>,
    /// `[sqlite_database.LABEL]` tables, in file order.
    pub sqlite_databases: IndexMap<String, SqliteDatabaseConfig>,
    /// `[[variables_provider]]` (or `[[config_provider]]`) entries, in order.
    pub variables_providers: Vec<VariablesProviderConfig>,
    /// `[outbound_http]`.
    pub outbound_http: OutboundHttpConfig,
    /// `[outbound_pg] max_connections`: pooled connections per address.
    pub outbound_pg_max_connections: Option<usize>,
    /// `[outbound_mysql] max_connections`: pooled connections per address.
    pub outbound_mysql_max_connections: Option<usize>,
    /// `[outbound_mqtt] max_payload_size_bytes`.
    pub outbound_mqtt_max_payload_bytes: Option<usize>,
    /// `[outbound_networking] block_networks`: addresses no component may
    /// connect to (outbound HTTP and sockets), whatever it is allowed.
    pub block_networks: gyre_outbound_networking::BlockedNetworks,
    /// `[llm_compute]`: where `fermyon:spin/llm` requests go.
    pub llm_compute: Option<LlmComputeConfig>,
    /// `[limits]`: Gyre's deadlines, memory caps and admission queue.
    pub limits: LimitsConfig,
    /// Tables Gyre accepts but does not use yet.
    pub warnings: Vec<String>,
}

/// `[outbound_http]`: Spin's `connection_pooling` and `max_connections`,
/// and Gyre's default timeouts (a guest's request options still win).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundHttpConfig {
    /// `connection_pooling` (Gyre always pools; `false` is accepted).
    pub connection_pooling: Option<bool>,
    /// `max_connections`: outbound HTTP requests in flight across the app.
    pub max_connections: Option<u64>,
    /// `connect_timeout`, e.g. `"5s"`.
    pub connect_timeout: Option<std::time::Duration>,
    /// `first_byte_timeout`.
    pub first_byte_timeout: Option<std::time::Duration>,
    /// `between_bytes_timeout`.
    pub between_bytes_timeout: Option<std::time::Duration>,
}

/// A key-value store backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValueStoreConfig {
    /// `type = "spin"`: SQLite, at `path` (resolved against the config
    /// file's directory) or in memory.
    Spin {
        /// The database file; `None` keeps the store in memory.
        path: Option<PathBuf>,
    },
    /// `type = "redis"`.
    Redis {
        /// `redis://host:port[/db]`.
        url: String,
    },
}

impl KeyValueStoreConfig {
    /// The `type` as written in the file.
    pub fn type_name(&self) -> &'static str {
        match self {
            KeyValueStoreConfig::Spin { .. } => "spin",
            KeyValueStoreConfig::Redis { .. } => "redis",
        }
    }
}

/// A SQLite database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteDatabaseConfig {
    /// The database file (resolved against the working directory, as Spin
    /// does); `None` keeps it in memory.
    pub path: Option<PathBuf>,
    /// Whether `ATTACH` of existing files is allowed.
    pub allow_attach_file: bool,
}

/// A source of variable values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariablesProviderConfig {
    /// `type = "env"`: `PREFIX_NAME` environment variables, then a dotenv file.
    Env {
        /// Prefix of environment variable names; `SPIN_VARIABLE` by default.
        prefix: Option<String>,
        /// A dotenv file to read as well.
        dotenv_path: Option<PathBuf>,
    },
    /// `type = "vault"`: HashiCorp Vault (or OpenBao) KV v2 secrets.
    Vault {
        /// Server address, e.g. `http://127.0.0.1:8200`.
        url: String,
        /// Access token.
        token: String,
        /// The KV v2 mount, e.g. `secret`.
        mount: String,
        /// Path prefix under the mount.
        prefix: Option<String>,
    },
    /// `type = "static"`: values written in the file.
    Static {
        /// Variable name → value.
        values: IndexMap<String, String>,
    },
}

impl VariablesProviderConfig {
    /// The `type` as written in the file.
    pub fn type_name(&self) -> &'static str {
        match self {
            VariablesProviderConfig::Env { .. } => "env",
            VariablesProviderConfig::Vault { .. } => "vault",
            VariablesProviderConfig::Static { .. } => "static",
        }
    }
}

/// `[llm_compute]`.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmComputeConfig {
    /// `type = "remote_http"`: an inferencing server over HTTP.
    RemoteHttp {
        /// `url`: the server's base URL.
        url: String,
        /// `auth_token`: sent as `authorization: bearer …`.
        auth_token: String,
        /// `api_type`: which of Spin's two wire protocols it speaks.
        api_type: LlmApiType,
        /// `timeout` (Gyre extension, default 30 s): one request's limit.
        timeout: Option<std::time::Duration>,
    },
    /// `type = "spin"`: models run in-process. Gyre has no local
    /// inferencing, so calls answer Spin's own "not supported" error.
    Local,
}

/// `[llm_compute] api_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LlmApiType {
    /// `"default"`: `POST {url}/infer` and `{url}/embed`, camelCase JSON.
    #[default]
    Default,
    /// `"open_ai"`: `POST {url}/v1/chat/completions` and `{url}/v1/embeddings`.
    OpenAi,
}

/// Spin's top-level tables Gyre accepts without using them yet.
const ACCEPTED_UNUSED: &[&str] = &["outbound_redis", "client_tls"];

/// Reads and validates the runtime config file at `path`.
pub fn load_runtime_config(path: &Path) -> std::result::Result<RuntimeConfig, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
        file: path.to_path_buf(),
        location: None,
        field: String::new(),
        message: format!("cannot read the runtime config file: {e}"),
        help: None,
    })?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    parse_runtime_config(SourceFile::new(path, text), &base)
}

/// Parses runtime config text. Relative key-value store paths are resolved
/// against `base` (the file's directory), as Spin does.
pub fn parse_runtime_config(
    source: SourceFile,
    base: &Path,
) -> std::result::Result<RuntimeConfig, ManifestError> {
    let doc = DeTable::parse(source.text()).map_err(|e| {
        let span = e.span();
        let message = e.message().trim_end().to_string();
        source.error(span, "", format!("invalid TOML: {message}"))
    })?;
    let span = doc.span();
    let doc = doc.into_inner();
    let mut config = read(&source, &doc, span, base)?;
    config.source = Some(source);
    Ok(config)
}

fn read(
    src: &SourceFile,
    doc: &DeTable<'_>,
    span: std::ops::Range<usize>,
    base: &Path,
) -> Result<RuntimeConfig> {
    let mut top = TableReader::new(src, "", doc, span);
    let mut config = RuntimeConfig {
        state_dir: top.string("state_dir")?.map(|s| {
            Some(s.into_inner())
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        }),
        log_dir: top.string("log_dir")?.map(|s| {
            Some(s.into_inner())
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        }),
        ..RuntimeConfig::default()
    };
    if let Some(bytes) = top.integer("max_instance_memory")? {
        let value = u64::try_from(*bytes.get_ref()).map_err(|_| {
            top.error(bytes.span(), "max_instance_memory", "must not be negative")
                .with_help("give a size in bytes, e.g. `max_instance_memory = 134217728`")
        })?;
        config.max_instance_memory = Some(value);
    }

    if let Some(stores) = top.table("key_value_store")? {
        for (label, value) in stores.entries() {
            let label_str = label.get_ref().to_string();
            let field = format!("key_value_store.{label_str}");
            names::check_label(&label_str).map_err(|e| {
                src.error(
                    Some(label.span()),
                    &field,
                    format!("invalid store label: {e}"),
                )
                .with_help(
                    "labels are kebab-case or snake_case, e.g. `[key_value_store.user_data]`",
                )
            })?;
            let table = TableReader::from_value(src, &field, value)?;
            config
                .key_value_stores
                .insert(label_str, read_key_value_store(table, base)?);
        }
    }

    if let Some(databases) = top.table("sqlite_database")? {
        for (label, value) in databases.entries() {
            let label_str = label.get_ref().to_string();
            let field = format!("sqlite_database.{label_str}");
            names::check_label(&label_str).map_err(|e| {
                src.error(
                    Some(label.span()),
                    &field,
                    format!("invalid database label: {e}"),
                )
                .with_help("labels are kebab-case or snake_case, e.g. `[sqlite_database.orders]`")
            })?;
            let table = TableReader::from_value(src, &field, value)?;
            config
                .sqlite_databases
                .insert(label_str, read_sqlite_database(table)?);
        }
    }

    // `config_provider` is Spin's older name; providers keep file order
    // whichever name each uses.
    top.ignore("variables_provider");
    top.ignore("config_provider");
    for (key, value) in top.entries() {
        let key = key.get_ref().as_ref();
        if key != "variables_provider" && key != "config_provider" {
            continue;
        }
        let DeValue::Array(items) = value.get_ref() else {
            return Err(top
                .error(
                    value.span(),
                    key,
                    format!(
                        "expected an array of tables, found {}",
                        type_name(value.get_ref())
                    ),
                )
                .with_help(format!(
                    "write each provider as `[[{key}]]` followed by `type = \"...\"`"
                )));
        };
        for (index, item) in items.iter().enumerate() {
            let table = TableReader::from_value(src, format!("{key}[{index}]"), item)?;
            config.variables_providers.push(read_provider(table)?);
        }
    }

    if let Some(mut table) = top.table("outbound_http")? {
        let http = &mut config.outbound_http;
        http.connection_pooling = table.bool("connection_pooling")?;
        if let Some(n) = table.integer("max_connections")? {
            http.max_connections =
                Some(u64::try_from(*n.get_ref()).map_err(|_| {
                    table.error(n.span(), "max_connections", "must not be negative")
                })?);
        }
        if table.get("max_concurrent_requests").is_some() {
            config.warnings.push(
                "runtime config `outbound_http.max_concurrent_requests` is deprecated (use `max_connections`) and not enforced by Gyre yet"
                    .into(),
            );
        }
        http.connect_timeout = duration(&mut table, "connect_timeout")?;
        http.first_byte_timeout = duration(&mut table, "first_byte_timeout")?;
        http.between_bytes_timeout = duration(&mut table, "between_bytes_timeout")?;
        table.finish()?;
    }

    for (name, max_connections) in [
        ("outbound_pg", &mut config.outbound_pg_max_connections),
        ("outbound_mysql", &mut config.outbound_mysql_max_connections),
    ] {
        if let Some(mut table) = top.table(name)? {
            *max_connections = count(&mut table, "max_connections")?;
            table.finish()?;
        }
    }
    if let Some(mut table) = top.table("outbound_mqtt")? {
        if table.get("max_connections").is_some() {
            config.warnings.push(
                "runtime config `outbound_mqtt.max_connections` is accepted but not enforced by Gyre (each instance may open 16)"
                    .into(),
            );
            count(&mut table, "max_connections")?;
        }
        config.outbound_mqtt_max_payload_bytes = count(&mut table, "max_payload_size_bytes")?;
        table.finish()?;
    }

    if let Some(mut table) = top.table("outbound_networking")? {
        for entry in table.string_list("block_networks")? {
            config
                .block_networks
                .add(entry.get_ref())
                .map_err(|message| {
                    table
                        .error(entry.span(), "block_networks", message)
                        .with_help("write e.g. `block_networks = [\"10.0.0.0/8\", \"private\"]`")
                })?;
        }
        for key in ["max_socket_connections", "max_total_connections"] {
            if count(&mut table, key)?.is_some() {
                config.warnings.push(format!(
                    "runtime config `outbound_networking.{key}` is accepted but not enforced by Gyre"
                ));
            }
        }
        table.finish()?;
    }

    if let Some(table) = top.table("llm_compute")? {
        config.llm_compute = Some(read_llm_compute(table)?);
    }

    if let Some(table) = top.table("limits")? {
        config.limits = read_limits(table)?;
    }

    for &name in ACCEPTED_UNUSED {
        if top.get(name).is_some() {
            config.warnings.push(format!(
                "runtime config `{name}` is accepted but not used by Gyre yet"
            ));
        }
    }
    top.finish()?;
    Ok(config)
}

/// A positive count (`max_connections = 16`).
fn count(table: &mut TableReader<'_, '_>, key: &'static str) -> Result<Option<usize>> {
    let Some(n) = table.integer(key)? else {
        return Ok(None);
    };
    match usize::try_from(*n.get_ref()) {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(table
            .error(n.span(), key, "must be a positive whole number")
            .with_help(format!("write e.g. `{key} = 16`"))),
    }
}

fn read_key_value_store(
    mut table: TableReader<'_, '_>,
    base: &Path,
) -> Result<KeyValueStoreConfig> {
    let kind = table.required_string("type")?;
    let store = match kind.get_ref().as_str() {
        "spin" => KeyValueStoreConfig::Spin {
            path: table.string("path")?.map(|p| base.join(p.into_inner())),
        },
        "redis" => {
            let url = required_url(
                &mut table,
                &["redis://", "rediss://"],
                "a Redis URL",
                "write it as `url = \"redis://host:6379\"`",
            )?;
            KeyValueStoreConfig::Redis {
                url: url.into_inner(),
            }
        }
        "azure_cosmos" | "aws_dynamo" => {
            return Err(table
                .error(
                    kind.span(),
                    "type",
                    format!(
                        "the store type '{}' is not supported by Gyre",
                        kind.get_ref()
                    ),
                )
                .with_help("use `type = \"spin\"` (SQLite) or `type = \"redis\"`"));
        }
        other => {
            return Err(table
                .error(
                    kind.span(),
                    "type",
                    format!("the store type '{other}' was not registered"),
                )
                .with_help("valid types: spin, redis"));
        }
    };
    table.finish()?;
    Ok(store)
}

fn read_sqlite_database(mut table: TableReader<'_, '_>) -> Result<SqliteDatabaseConfig> {
    let kind = table.required_string("type")?;
    let database = match kind.get_ref().as_str() {
        "spin" => SqliteDatabaseConfig {
            path: table.string("path")?.map(|p| PathBuf::from(p.into_inner())),
            allow_attach_file: table.bool("allow_attach_file")?.unwrap_or(false),
        },
        "libsql" => {
            return Err(table
                .error(
                    kind.span(),
                    "type",
                    "the database type 'libsql' is not supported by Gyre",
                )
                .with_help("use `type = \"spin\"` with a `path`"));
        }
        other => {
            return Err(table
                .error(
                    kind.span(),
                    "type",
                    format!("the database type '{other}' was not registered"),
                )
                .with_help("valid types: spin"));
        }
    };
    table.finish()?;
    Ok(database)
}

/// The table's required `url`, which must start with one of `schemes`.
fn required_url(
    table: &mut TableReader<'_, '_>,
    schemes: &[&str],
    what: &str,
    help: &str,
) -> Result<Sp<String>> {
    let url = table.required_string("url")?;
    if !schemes
        .iter()
        .any(|scheme| url.get_ref().starts_with(scheme))
    {
        return Err(table
            .error(
                url.span(),
                "url",
                format!("`{}` is not {what}", url.get_ref()),
            )
            .with_help(help));
    }
    Ok(url)
}

fn read_llm_compute(mut table: TableReader<'_, '_>) -> Result<LlmComputeConfig> {
    let kind = table.required_string("type")?;
    let config = match kind.get_ref().as_str() {
        "remote_http" => {
            let url = required_url(
                &mut table,
                &["http://", "https://"],
                "an http(s) URL",
                "write the inferencing server's address, e.g. `url = \"http://127.0.0.1:8080\"`",
            )?;
            let api_type = match table.string("api_type")? {
                None => LlmApiType::Default,
                Some(t) => match t.get_ref().as_str() {
                    "default" => LlmApiType::Default,
                    "open_ai" => LlmApiType::OpenAi,
                    other => {
                        return Err(table
                            .error(t.span(), "api_type", format!("unknown api_type `{other}`"))
                            .with_help("use `default` (Spin's /infer and /embed) or `open_ai` (an OpenAI-compatible server)"));
                    }
                },
            };
            LlmComputeConfig::RemoteHttp {
                url: url.into_inner().trim_end_matches('/').to_string(),
                auth_token: table.required_string("auth_token")?.into_inner(),
                api_type,
                timeout: duration(&mut table, "timeout")?,
            }
        }
        "spin" => LlmComputeConfig::Local,
        other => {
            return Err(table
                .error(
                    kind.span(),
                    "type",
                    format!("unknown llm_compute type `{other}`"),
                )
                .with_help("use `type = \"remote_http\"` with `url` and `auth_token`"));
        }
    };
    table.finish()?;
    Ok(config)
}

fn read_provider(mut table: TableReader<'_, '_>) -> Result<VariablesProviderConfig> {
    let kind = table.required_string("type")?;
    let provider = match kind.get_ref().as_str() {
        "env" => VariablesProviderConfig::Env {
            prefix: table.string("prefix")?.map(|s| s.into_inner()),
            dotenv_path: table
                .string("dotenv_path")?
                .map(|s| PathBuf::from(s.into_inner())),
        },
        "vault" => {
            let url = required_url(
                &mut table,
                &["http://", "https://"],
                "an http(s) URL",
                "write the Vault address, e.g. `url = \"http://127.0.0.1:8200\"`",
            )?;
            VariablesProviderConfig::Vault {
                url: url.into_inner(),
                token: table.required_string("token")?.into_inner(),
                mount: table.required_string("mount")?.into_inner(),
                prefix: table.string("prefix")?.map(|s| s.into_inner()),
            }
        }
        "static" => {
            let mut values = IndexMap::new();
            for (key, value) in table.string_map("values")? {
                values.insert(key.into_inner(), value.into_inner());
            }
            VariablesProviderConfig::Static { values }
        }
        "azure_key_vault" => {
            return Err(table
                .error(
                    kind.span(),
                    "type",
                    "the variables provider 'azure_key_vault' is not supported by Gyre",
                )
                .with_help("valid types: env, vault, static"));
        }
        other => {
            return Err(table
                .error(
                    kind.span(),
                    "type",
                    format!("unknown variables provider type '{other}'"),
                )
                .with_help("valid types: env, vault, static"));
        }
    };
    table.finish()?;
    Ok(provider)
}
