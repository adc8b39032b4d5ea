//! Runtime config files as data: invalid ones with the error each must
//! give, and valid ones with what they parse to.

use std::path::{Path, PathBuf};

use gyre_manifest::{
    KeyValueStoreConfig, SourceFile, SqliteDatabaseConfig, VariablesProviderConfig,
    parse_runtime_config,
};

/// (case, file, expected `line:column`, expected pieces of the message).
const INVALID: &[(&str, &str, &str, &[&str])] = &[
    ("bad toml", "[key_value_store.x\n", "1:", &["invalid TOML"]),
    (
        "unknown top-level table",
        "[key_value_stores.default]\ntype = \"spin\"\n",
        "1:2",
        &[
            "`key_value_stores`: unknown field",
            "did you mean `key_value_store`?",
        ],
    ),
    (
        "store without type",
        "[key_value_store.cache]\nurl = \"redis://x\"\n",
        "1:1",
        &["`key_value_store.cache.type`: missing required field"],
    ),
    (
        "unknown store type",
        "[key_value_store.cache]\ntype = \"memcached\"\n",
        "2:8",
        &[
            "the store type 'memcached' was not registered",
            "valid types: spin, redis",
        ],
    ),
    (
        "cloud store type",
        "[key_value_store.cache]\ntype = \"aws_dynamo\"\n",
        "2:8",
        &["'aws_dynamo' is not supported by Gyre"],
    ),
    (
        "redis without url",
        "[key_value_store.cache]\ntype = \"redis\"\n",
        "1:1",
        &["`key_value_store.cache.url`: missing required field"],
    ),
    (
        "redis url scheme",
        "[key_value_store.cache]\ntype = \"redis\"\nurl = \"http://localhost\"\n",
        "3:7",
        &["`http://localhost` is not a Redis URL", "redis://host:6379"],
    ),
    (
        "unknown store field",
        "[key_value_store.default]\ntype = \"spin\"\npth = \"kv.db\"\n",
        "3:1",
        &[
            "`key_value_store.default.pth`: unknown field",
            "did you mean `path`?",
        ],
    ),
    (
        "bad store label",
        "[key_value_store.\"my store\"]\ntype = \"spin\"\n",
        "1:18",
        &["invalid store label"],
    ),
    (
        "path not a string",
        "[key_value_store.default]\ntype = \"spin\"\npath = 3\n",
        "3:8",
        &["expected a string, found an integer"],
    ),
    (
        "unknown database type",
        "[sqlite_database.orders]\ntype = \"postgres\"\n",
        "2:8",
        &[
            "the database type 'postgres' was not registered",
            "valid types: spin",
        ],
    ),
    (
        "libsql database",
        "[sqlite_database.orders]\ntype = \"libsql\"\nurl = \"https://x\"\n",
        "2:8",
        &["'libsql' is not supported by Gyre"],
    ),
    (
        "attach flag type",
        "[sqlite_database.orders]\ntype = \"spin\"\nallow_attach_file = \"yes\"\n",
        "3:21",
        &["expected a boolean"],
    ),
    (
        "provider not an array",
        "[variables_provider]\ntype = \"env\"\n",
        "1:1",
        &["expected an array of tables", "[[variables_provider]]"],
    ),
    (
        "unknown provider",
        "[[variables_provider]]\ntype = \"consul\"\n",
        "2:8",
        &[
            "unknown variables provider type 'consul'",
            "valid types: env, vault, static",
        ],
    ),
    (
        "vault without token",
        "[[config_provider]]\ntype = \"vault\"\nurl = \"http://127.0.0.1:8200\"\nmount = \"secret\"\n",
        "1:1",
        &["`config_provider[0].token`: missing required field"],
    ),
    (
        "vault url",
        "[[config_provider]]\ntype = \"vault\"\nurl = \"127.0.0.1:8200\"\ntoken = \"t\"\nmount = \"m\"\n",
        "3:7",
        &["is not an http(s) URL"],
    ),
    (
        "static values not strings",
        "[[variables_provider]]\ntype = \"static\"\nvalues = { a = 1 }\n",
        "3:16",
        &["expected a string, found an integer"],
    ),
    (
        "bad duration",
        "[outbound_http]\nconnect_timeout = \"soon\"\n",
        "2:19",
        &["`outbound_http.connect_timeout`: not a duration", "500ms"],
    ),
    (
        "zero duration",
        "[outbound_http]\nfirst_byte_timeout = \"0s\"\n",
        "2:22",
        &["must be longer than zero"],
    ),
    (
        "block_networks: not a network",
        "[outbound_networking]\nblock_networks = [\"10.0.0.0/8\", \"intranet\"]\n",
        "2:33",
        &[
            "`outbound_networking.block_networks`: \"intranet\" is not an IP address",
            "`private`",
        ],
    ),
    (
        "block_networks: bad prefix",
        "[outbound_networking]\nblock_networks = [\"10.0.0.0/40\"]\n",
        "2:19",
        &["\"10.0.0.0/40\" is not an IP address, a CIDR range"],
    ),
    (
        "unknown outbound_http field",
        "[outbound_http]\ntimeout = \"1s\"\n",
        "2:1",
        &["`outbound_http.timeout`: unknown field"],
    ),
    (
        "limits: unknown field",
        "[limits]\ntimeout = \"1s\"\n",
        "2:1",
        &["`limits.timeout`: unknown field"],
    ),
    (
        "limits: bad duration",
        "[limits]\nrequest_timeout = \"5 fortnights\"\n",
        "2:19",
        &["`limits.request_timeout`: not a duration", "\"10s\""],
    ),
    (
        "limits: zero cpu time",
        "[limits]\ncpu_timeout = \"0ms\"\n",
        "2:15",
        &["`limits.cpu_timeout`: must be longer than zero"],
    ),
    (
        "limits: bad size unit",
        "[limits]\nmax_instance_memory = \"12 furlongs\"\n",
        "2:23",
        &["`limits.max_instance_memory`", "not a size unit", "128MiB"],
    ),
    (
        "limits: size of the wrong type",
        "[limits]\nmax_request_body = true\n",
        "2:20",
        &["`limits.max_request_body`: expected a size, found a boolean"],
    ),
    (
        "limits: zero concurrency",
        "[limits]\nmax_concurrent_requests = 0\n",
        "2:27",
        &["`limits.max_concurrent_requests`: must be a whole number of at least 1"],
    ),
    (
        "limits: component id not kebab-case",
        "[limits.component.My_Api]\nrequest_timeout = \"1s\"\n",
        "1:19",
        &["`limits.component.My_Api`: not a component id"],
    ),
    (
        "limits: server field in a component",
        "[limits.component.api]\nmax_connections = 5\n",
        "2:1",
        &["`limits.component.api.max_connections`: unknown field"],
    ),
    (
        "negative memory",
        "max_instance_memory = -1\n",
        "1:23",
        &["`max_instance_memory`: must not be negative"],
    ),
];

#[test]
fn invalid_runtime_configs_name_the_place_and_a_fix() {
    for (case, text, location, pieces) in INVALID {
        let source = SourceFile::new("runtime-config.toml", *text);
        let err = match parse_runtime_config(source, Path::new("/cfg")) {
            Ok(config) => panic!("{case}: parsed, but should fail: {config:?}"),
            Err(e) => e,
        };
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!("runtime-config.toml:{location}")),
            "{case}: location: {shown}"
        );
        for piece in *pieces {
            assert!(shown.contains(piece), "{case}: want {piece:?} in:\n{shown}");
        }
    }
}

#[test]
fn valid_runtime_config_parses_every_table() {
    let text = r#"
state_dir = ""
log_dir = "logs"
max_instance_memory = 1048576

[key_value_store.default]
type = "spin"
path = "data/kv.db"

[key_value_store.cache]
type = "redis"
url = "redis://127.0.0.1:6379"

[key_value_store.mem]
type = "spin"

[sqlite_database.orders]
type = "spin"
path = "orders.db"
allow_attach_file = true

[[config_provider]]
type = "vault"
url = "http://127.0.0.1:8200"
token = "root"
mount = "secret"
prefix = "app"

[[variables_provider]]
type = "env"
prefix = "MY_APP"
dotenv_path = ".env.local"

[[variables_provider]]
type = "static"
values = { a = "1" }

[outbound_http]
connection_pooling = true
connect_timeout = "5s"
first_byte_timeout = 30
between_bytes_timeout = "250ms"

[llm_compute]
type = "remote_http"
url = "http://127.0.0.1:8080/"
auth_token = "t"
api_type = "open_ai"
timeout = "2s"

[outbound_networking]
block_networks = ["private", "1.1.1.1/32"]
max_socket_connections = 8

[client_tls]
"#;
    let config = parse_runtime_config(
        SourceFile::new("runtime-config.toml", text),
        Path::new("/cfg"),
    )
    .expect("valid runtime config");
    assert_eq!(config.state_dir, Some(None));
    assert_eq!(config.log_dir, Some(Some(PathBuf::from("logs"))));
    assert_eq!(config.max_instance_memory, Some(1 << 20));
    let stores: Vec<(&str, &KeyValueStoreConfig)> = config
        .key_value_stores
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    assert_eq!(
        stores,
        [
            (
                "default",
                &KeyValueStoreConfig::Spin {
                    path: Some(PathBuf::from("/cfg/data/kv.db"))
                }
            ),
            (
                "cache",
                &KeyValueStoreConfig::Redis {
                    url: "redis://127.0.0.1:6379".into()
                }
            ),
            ("mem", &KeyValueStoreConfig::Spin { path: None }),
        ]
    );
    assert_eq!(
        config.sqlite_databases.get("orders"),
        Some(&SqliteDatabaseConfig {
            path: Some(PathBuf::from("orders.db")),
            allow_attach_file: true
        })
    );
    let kinds: Vec<&str> = config
        .variables_providers
        .iter()
        .map(VariablesProviderConfig::type_name)
        .collect();
    assert_eq!(kinds, ["vault", "env", "static"]);
    assert_eq!(
        config.outbound_http.connect_timeout,
        Some(std::time::Duration::from_secs(5))
    );
    assert_eq!(
        config.outbound_http.first_byte_timeout,
        Some(std::time::Duration::from_secs(30))
    );
    assert_eq!(
        config.outbound_http.between_bytes_timeout,
        Some(std::time::Duration::from_millis(250))
    );
    assert_eq!(
        config.llm_compute,
        Some(gyre_manifest::LlmComputeConfig::RemoteHttp {
            url: "http://127.0.0.1:8080".into(),
            auth_token: "t".into(),
            api_type: gyre_manifest::LlmApiType::OpenAi,
            timeout: Some(std::time::Duration::from_secs(2)),
        })
    );
    assert_eq!(
        config.block_networks,
        gyre_outbound_networking::BlockedNetworks::parse(&["private", "1.1.1.1/32"])
            .expect("entries")
    );
    assert_eq!(
        config.warnings,
        [
            "runtime config `outbound_networking.max_socket_connections` is accepted but not enforced by Gyre",
            "runtime config `client_tls` is accepted but not used by Gyre yet"
        ]
    );
}

#[test]
fn limits_table_parses_app_server_and_component_limits() {
    use gyre_manifest::{LimitOverrides, ServerLimitOverrides};
    use std::time::Duration;
    let text = r#"
[limits]
request_timeout = "30s"
cpu_timeout = 5
max_instance_memory = "128MiB"
max_request_body = 1048576
max_output = "1MB"
max_concurrent_requests = 64
max_queued_requests = 0
queue_timeout = "250ms"
max_connections = 1000
max_header_count = 50
max_header_bytes = "8KiB"
max_uri_length = 2048
header_read_timeout = "5s"
max_h2_streams = 10

[limits.component.slow-report]
request_timeout = "5m"
max_instance_memory = "1GiB"
"#;
    let config = parse_runtime_config(SourceFile::new("rc.toml", text), Path::new("/cfg"))
        .unwrap_or_else(|e| panic!("{e}"));
    let limits = config.limits;
    assert_eq!(
        limits.app,
        LimitOverrides {
            request_timeout: Some(Duration::from_secs(30)),
            cpu_timeout: Some(Duration::from_secs(5)),
            max_instance_memory: Some(128 << 20),
            max_request_body: Some(1 << 20),
            max_output: Some(1_000_000),
        }
    );
    assert_eq!(
        limits.server,
        ServerLimitOverrides {
            max_concurrent_requests: Some(64),
            max_queued_requests: Some(0),
            queue_timeout: Some(Duration::from_millis(250)),
            max_connections: Some(1000),
            max_header_count: Some(50),
            max_header_bytes: Some(8 << 10),
            max_uri_length: Some(2048),
            header_read_timeout: Some(Duration::from_secs(5)),
            max_h2_streams: Some(10),
        }
    );
    let component = &limits.components["slow-report"];
    assert_eq!(component.request_timeout, Some(Duration::from_secs(300)));
    assert_eq!(component.max_instance_memory, Some(1 << 30));
    assert_eq!(
        component.or(&limits.app).cpu_timeout,
        Some(Duration::from_secs(5))
    );
}
