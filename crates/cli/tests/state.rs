//! Application state and configuration through the real Python SDK 5:
//! key-value (SQLite and Redis backends), SQLite databases, variables
//! (command line, runtime config providers, environment, `.env`, Vault),
//! the runtime config file, and what survives a SIGKILL.

mod support;

use support::servers::{OpenBao, RedisServer};
use support::{Gyre, TestApp};

/// One component with the default store and database, one with none.
const STATE_APP: &str = r#"
spin_manifest_version = 2
[application]
name = "state"
[variables]
greeting = { default = "hello" }
[[trigger.http]]
route = "/..."
component = "state"
[component.state]
source = "{guest:py5-state}"
key_value_stores = ["default"]
sqlite_databases = ["default"]
[component.state.variables]
message = "{{ greeting }}, world"
[[trigger.http]]
route = "/noaccess/..."
component = "noaccess"
[component.noaccess]
source = "{guest:py5-state}"
"#;

fn expect(gyre: &Gyre, method: &str, path: &str, body: &[u8], status: u16, want: &str) {
    let resp = support::request(method, &gyre.url(path), &[], Some(body));
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (status, want),
        "{method} {path}\nstderr:\n{}",
        gyre.stderr()
    );
}

#[test]
fn key_value_operations_in_every_interface_version() {
    let app = TestApp::new(STATE_APP);
    let gyre = Gyre::up(&app, &["--key-value", "seeded=from-cli"]);
    // (method, path, body, status, expected body)
    let table: &[(&str, &str, &str, u16, &str)] = &[
        ("GET", "/kv/get/seeded", "", 200, "from-cli"),
        // spin:key-value@3.0.0 (async)
        ("POST", "/kv/set/a?api=v3", "one", 200, "ok"),
        ("POST", "/kv/set/a?api=v3", "uno", 200, "ok"),
        ("GET", "/kv/get/a?api=v3", "", 200, "uno"),
        ("GET", "/kv/exists/a?api=v3", "", 200, "true"),
        ("GET", "/kv/keys?api=v3", "", 200, r#"["a", "seeded"]"#),
        ("GET", "/kv/delete/a?api=v3", "", 200, "ok"),
        ("GET", "/kv/delete/never-set?api=v3", "", 200, "ok"),
        ("GET", "/kv/get/a?api=v3", "", 404, "missing"),
        ("GET", "/kv/exists/a?api=v3", "", 200, "false"),
        // fermyon:spin/key-value@2.0.0 sees the same store
        ("POST", "/kv/set/b?api=v2", "two", 200, "ok"),
        ("GET", "/kv/get/b?api=v3", "", 200, "two"),
        ("GET", "/kv/exists/b?api=v2", "", 200, "true"),
        ("GET", "/kv/keys?api=v2", "", 200, r#"["b", "seeded"]"#),
        ("GET", "/kv/delete/b?api=v2", "", 200, "ok"),
        ("GET", "/kv/get/b?api=v2", "", 404, "missing"),
        // wasi:keyvalue@0.2.0-draft2: store, atomics, batch
        ("POST", "/kv/set/c?api=wasi", "three", 200, "ok"),
        ("GET", "/kv/get/c?api=v2", "", 200, "three"),
        ("GET", "/kv/keys?api=wasi", "", 200, r#"["c", "seeded"]"#),
        ("GET", "/kv/delete/c?api=wasi", "", 200, "ok"),
        ("GET", "/kv/exists/c?api=wasi", "", 200, "false"),
        ("GET", "/kv/incr/counter?api=wasi&delta=5", "", 200, "5"),
        ("GET", "/kv/incr/counter?api=wasi&delta=-2", "", 200, "3"),
        ("GET", "/kv/get/counter?api=v3", "", 200, "3"),
        ("POST", "/kv/cas/counter?api=wasi", "10", 200, "swapped"),
        ("GET", "/kv/get/counter?api=v3", "", 200, "10"),
        (
            "POST",
            "/kv/batch?api=wasi",
            r#"{"x": "1", "y": "2"}"#,
            200,
            r#"{"got": [["x", "1"], ["y", "2"], ["absent", null]], "after_delete": [["x", null], ["y", null]]}"#,
        ),
    ];
    for (method, path, body, status, want) in table {
        expect(&gyre, method, path, body.as_bytes(), *status, want);
    }
}

#[test]
fn undeclared_stores_and_databases_are_access_denied() {
    let app = TestApp::new(STATE_APP);
    let gyre = Gyre::up(&app, &[]);
    let table: &[(&str, &str)] = &[
        // A component granted nothing may not open even `default`.
        ("/noaccess/kv/get/a?api=v3", "Error_AccessDenied"),
        ("/noaccess/kv/get/a?api=v2", "Error_AccessDenied"),
        ("/noaccess/kv/get/a?api=wasi", "Error_AccessDenied"),
        ("/noaccess/sql?api=v3", "Error_AccessDenied"),
        ("/noaccess/sql?api=v2", "Error_AccessDenied"),
        // A granted component may open only what it lists.
        ("/kv/get/a?api=v3&store=other", "Error_AccessDenied"),
        ("/kv/get/a?api=wasi&store=other", "Error_AccessDenied"),
        ("/sql?db=other", "Error_AccessDenied"),
    ];
    for (path, want) in table {
        expect(&gyre, "POST", path, br#"{"sql": "SELECT 1"}"#, 409, want);
    }
}

#[test]
fn sqlite_values_parameters_and_errors() {
    let app = TestApp::new(STATE_APP);
    app.write(
        "schema.sql",
        b"CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL, data BLOB, note);",
    );
    let gyre = Gyre::up(
        &app,
        &[
            "--sqlite",
            "@schema.sql",
            "--sqlite",
            "INSERT INTO items (name) VALUES ('from-cli')",
        ],
    );
    let table: &[(&str, &str, u16, &str)] = &[
        (
            "/sql?api=v3",
            r#"{"sql": "INSERT INTO items (name, price, data, note) VALUES (?, ?, ?, ?)", "params": ["pen", 1.25, {"blob": "00ff10"}, null]}"#,
            200,
            r#"{"columns": [], "rows": [], "last_insert_rowid": 2, "changes": 1}"#,
        ),
        (
            "/sql?api=v3",
            r#"{"sql": "SELECT id, name, price, data, note FROM items WHERE id >= ? ORDER BY id", "params": [1]}"#,
            200,
            r#"{"columns": ["id", "name", "price", "data", "note"], "rows": [[1, "from-cli", null, null, null], [2, "pen", 1.25, {"blob": "00ff10"}, null]], "last_insert_rowid": 2, "changes": 1}"#,
        ),
        (
            "/sql?api=v2",
            r#"{"sql": "SELECT count(*) AS n, sum(price) AS total FROM items"}"#,
            200,
            r#"{"columns": ["n", "total"], "rows": [[2, 1.25]]}"#,
        ),
        (
            "/sql?api=v3",
            r#"{"sql": "SELEC 1"}"#,
            409,
            r#"Error_Io: near "SELEC": syntax error in SELEC 1 at offset 0"#,
        ),
        (
            "/sql?api=v2",
            r#"{"sql": "SELECT * FROM missing"}"#,
            409,
            "Error_Io: no such table: missing",
        ),
    ];
    for (path, body, status, want) in table {
        expect(&gyre, "POST", path, body.as_bytes(), *status, want);
    }
}

#[test]
fn variables_resolve_in_spins_order_and_secrets_stay_out_of_logs() {
    let manifest = r#"
spin_manifest_version = 2
[application]
name = "vars"
[variables]
from_cli = { default = "default" }
from_static = { default = "default" }
from_env = { default = "default" }
from_dotenv = { default = "default" }
from_default = { default = "default" }
password = { required = true, secret = true }
[[trigger.http]]
route = "/..."
component = "vars"
[component.vars]
source = "{guest:py5-state}"
[component.vars.variables]
cli = "{{ from_cli }}"
static = "{{ from_static }}"
env = "{{ from_env }}"
dotenv = "{{ from_dotenv }}"
default = "{{ from_default }}"
mixed = "<{{ from_env }}|{{from_default}}>"
password = "{{ password }}"
"#;
    let app = TestApp::new(manifest);
    app.write(
        ".env",
        b"SPIN_VARIABLE_FROM_DOTENV=dotenv\nSPIN_VARIABLE_FROM_ENV=dotenv\nSPIN_VARIABLE_FROM_DEFAULT_X=unused\n",
    );
    app.write(
        "runtime-config.toml",
        br#"
[[variables_provider]]
type = "static"
values = { from_static = "static", from_cli = "static", from_env = "static-loses-to-cli-only" }
"#,
    );
    app.write("password.txt", b"hunter2-secret");
    let cache = support::shared_cache_dir();
    let gyre = Gyre::up_with(
        &app,
        &[
            "--runtime-config-file",
            "runtime-config.toml",
            "--variable",
            "from_cli=cli",
            "--variable",
            "password=@password.txt",
        ],
        &[
            ("GYRE_CACHE_DIR", cache.to_str().expect("utf8")),
            ("SPIN_VARIABLE_FROM_ENV", "env"),
            ("GYRE_LOG", "debug"),
        ],
    );
    let table: &[(&str, u16, &str)] = &[
        ("/var/cli", 200, "cli"),
        ("/var/static", 200, "static"),
        // A configured provider comes before the environment (Spin's order).
        ("/var/env?api=v2", 200, "static-loses-to-cli-only"),
        ("/var/dotenv", 200, "dotenv"),
        ("/var/default?api=wasi", 200, "default"),
        ("/var/mixed", 200, "<static-loses-to-cli-only|default>"),
        ("/var/password", 200, "hunter2-secret"),
        ("/var/undeclared", 409, "Error_Undefined: undeclared"),
        ("/var/undeclared?api=v2", 409, "Error_Undefined: undeclared"),
        ("/var/Bad-Name", 409, "Error_InvalidName: Bad-Name"),
        (
            "/var/4invalidname?api=v2",
            409,
            "Error_InvalidName: 4invalidname",
        ),
        // wasi:config answers none for undefined and invalid names.
        ("/var/undeclared?api=wasi", 404, "none"),
        ("/var/Bad-Name?api=wasi", 404, "none"),
    ];
    for (path, status, want) in table {
        expect(&gyre, "GET", path, b"", *status, want);
    }
    let all = gyre.get("/var-all");
    assert_eq!(
        all.text(),
        r#"[["cli", "cli"], ["default", "default"], ["dotenv", "dotenv"], ["env", "static-loses-to-cli-only"], ["mixed", "<static-loses-to-cli-only|default>"], ["password", "hunter2-secret"], ["static", "static"]]"#
    );
    assert!(
        gyre.stdout()
            .contains("Using runtime config [variables_provider: static]")
    );
    let logs = format!("{}{}", gyre.stdout(), gyre.stderr());
    assert!(
        !logs.contains("hunter2"),
        "a secret value reached the logs:\n{logs}"
    );
}

#[test]
fn a_required_variable_without_a_value_is_a_load_error() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "vars"
[variables]
api_token = { required = true }
[[trigger.http]]
route = "/..."
component = { source = "{guest:hello-wat}", variables = { token = "{{ api_token }}" } }
"#,
    );
    let stderr = support::up_fails(&app, &[]);
    assert!(
        stderr.contains("variable `api_token` is required but has no value")
            && stderr.contains("--variable api_token=VALUE")
            && stderr.contains("SPIN_VARIABLE_API_TOKEN"),
        "{stderr}"
    );
}

#[test]
fn a_store_or_database_nothing_defines_is_a_load_error() {
    let table = [
        (
            r#"key_value_stores = ["default", "cache"]"#,
            "component `app` uses key-value store `cache`, which is not defined; defined: default",
        ),
        (
            r#"sqlite_databases = ["orders"]"#,
            "component `app` uses SQLite database `orders`, which is not defined; defined: default",
        ),
    ];
    for (grant, want) in table {
        let app = TestApp::new(&format!(
            r#"
spin_manifest_version = 2
[application]
name = "missing"
[[trigger.http]]
route = "/..."
component = "app"
[component.app]
source = "{{guest:hello-wat}}"
{grant}
"#
        ));
        let stderr = support::up_fails(&app, &[]);
        assert!(stderr.contains(want), "want {want:?} in:\n{stderr}");
        assert!(stderr.contains("--runtime-config-file"), "{stderr}");
    }
}

#[test]
fn runtime_config_defines_stores_databases_and_the_state_dir() {
    let redis = RedisServer::start();
    let manifest = STATE_APP.replace(
        r#"key_value_stores = ["default"]
sqlite_databases = ["default"]"#,
        r#"key_value_stores = ["default", "cache", "files"]
sqlite_databases = ["default", "orders"]"#,
    );
    let app = TestApp::new(&manifest);
    app.write(
        "runtime-config.toml",
        format!(
            r#"
state_dir = "state"
[key_value_store.cache]
type = "redis"
url = "{}"
[key_value_store.files]
type = "spin"
path = "data/files.db"
[sqlite_database.orders]
type = "spin"
path = "orders.db"
"#,
            redis.url()
        )
        .as_bytes(),
    );
    let gyre = Gyre::up(&app, &["--runtime-config-file", "runtime-config.toml"]);
    let table: &[(&str, &str, &str, u16, &str)] = &[
        ("POST", "/kv/set/k?store=cache", "in-redis", 200, "ok"),
        ("GET", "/kv/get/k?store=cache&api=v2", "", 200, "in-redis"),
        ("GET", "/kv/exists/k?store=cache&api=wasi", "", 200, "true"),
        (
            "GET",
            "/kv/incr/hits?store=cache&api=wasi&delta=7",
            "",
            200,
            "7",
        ),
        (
            "POST",
            "/kv/cas/hits?store=cache&api=wasi",
            "8",
            200,
            "swapped",
        ),
        (
            "POST",
            "/kv/batch?store=cache&api=wasi",
            r#"{"p": "1"}"#,
            200,
            r#"{"got": [["p", "1"], ["absent", null]], "after_delete": [["p", null]]}"#,
        ),
        ("GET", "/kv/keys?store=cache", "", 200, r#"["hits", "k"]"#),
        ("GET", "/kv/delete/k?store=cache", "", 200, "ok"),
        ("GET", "/kv/get/k?store=cache", "", 404, "missing"),
        ("POST", "/kv/set/f?store=files", "on-disk", 200, "ok"),
        ("GET", "/kv/keys?store=default", "", 200, "[]"),
        (
            "POST",
            "/sql?db=orders",
            r#"{"sql": "CREATE TABLE o (x)"}"#,
            200,
            r#"{"columns": [], "rows": [], "last_insert_rowid": 0, "changes": 0}"#,
        ),
    ];
    for (method, path, body, status, want) in table {
        expect(&gyre, method, path, body.as_bytes(), *status, want);
    }
    assert_eq!(redis.command(&["GET", "hits"]), "$1\r\n8\r\n");
    assert!(gyre.stdout().contains(
        "Using runtime config [key_value_store.cache: redis], [key_value_store.files: spin], [sqlite_database.orders: spin]"
    ));
    drop(gyre);
    for file in [
        "data/files.db",
        "orders.db",
        "state/sqlite_key_value.db",
        "state/sqlite_db.db",
    ] {
        assert!(app.path().join(file).is_file(), "{file} was not created");
    }
    assert!(!app.path().join(".spin/sqlite_key_value.db").exists());
}

#[test]
fn vault_provider_reads_kv_v2_secrets() {
    let bao = OpenBao::start();
    bao.put("gyre/db_password", "from-vault");
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "vault"
[variables]
db_password = { required = true, secret = true }
region = { default = "eu-west" }
[[trigger.http]]
route = "/..."
component = "app"
[component.app]
source = "{guest:py5-state}"
[component.app.variables]
password = "{{ db_password }}"
region = "{{ region }}"
"#,
    );
    app.write(
        "runtime-config.toml",
        format!(
            "[[config_provider]]\ntype = \"vault\"\nurl = \"{}\"\ntoken = \"{}\"\nmount = \"secret\"\nprefix = \"gyre\"\n",
            bao.url, bao.token
        )
        .as_bytes(),
    );
    let gyre = Gyre::up(&app, &["--runtime-config-file", "runtime-config.toml"]);
    expect(&gyre, "GET", "/var/password", b"", 200, "from-vault");
    // A secret missing in Vault falls through to the default.
    expect(&gyre, "GET", "/var/region?api=v2", b"", 200, "eu-west");
    // Values are read on every call: a rotated secret is seen at once.
    bao.put("gyre/db_password", "rotated");
    expect(&gyre, "GET", "/var/password?api=wasi", b"", 200, "rotated");
    // Vault going away is the interface's provider error, not a trap.
    drop(bao);
    let resp = gyre.get("/var/password");
    assert_eq!(resp.status, 409);
    assert!(
        resp.text().starts_with("Error_Provider: "),
        "{}",
        resp.text()
    );
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    const N: usize = 50;
    let app = TestApp::new(STATE_APP);
    let gyre = Gyre::up(
        &app,
        &["--sqlite", "CREATE TABLE IF NOT EXISTS log (n INTEGER)"],
    );
    for n in 0..N {
        expect(
            &gyre,
            "POST",
            &format!("/kv/set/key{n}"),
            n.to_string().as_bytes(),
            200,
            "ok",
        );
        let insert = format!(r#"{{"sql": "INSERT INTO log VALUES (?)", "params": [{n}]}}"#);
        let resp = gyre.post("/sql", insert.as_bytes());
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    gyre.kill();
    let gyre = Gyre::up(&app, &[]);
    for n in 0..N {
        expect(
            &gyre,
            "GET",
            &format!("/kv/get/key{n}"),
            b"",
            200,
            &n.to_string(),
        );
    }
    let count = gyre.post(
        "/sql?api=v2",
        br#"{"sql": "SELECT count(*), sum(n) FROM log"}"#,
    );
    let want_sum = N * (N - 1) / 2;
    assert_eq!(
        count.text(),
        format!(r#"{{"columns": ["count(*)", "sum(n)"], "rows": [[{N}, {want_sum}]]}}"#)
    );
}

#[test]
fn sigterm_during_writes_drains_and_loses_no_acknowledged_write() {
    let app = TestApp::new(STATE_APP);
    let gyre = Gyre::up(&app, &["-q"]);
    let base = gyre.base.clone();
    // Four writers go on until the server stops accepting them.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let base = base.clone();
            std::thread::spawn(move || {
                let agent = support::agent();
                let mut acknowledged = Vec::new();
                for n in 0.. {
                    let key = format!("w{w}-{n}");
                    match agent
                        .post(&format!("{base}/kv/set/{key}"))
                        .send_bytes(n.to_string().as_bytes())
                    {
                        Ok(r) if r.status() == 200 => acknowledged.push((key, n)),
                        Ok(_) | Err(_) => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let status = gyre.terminate();
    assert!(status.success(), "gyre exited with {status} after SIGTERM");
    let acknowledged: Vec<(String, i32)> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("writer"))
        .collect();
    assert!(
        acknowledged.len() > 4,
        "the writers got going: {}",
        acknowledged.len()
    );
    let gyre = Gyre::up(&app, &["-q"]);
    for (key, n) in &acknowledged {
        expect(
            &gyre,
            "GET",
            &format!("/kv/get/{key}"),
            b"",
            200,
            &n.to_string(),
        );
    }
}

#[test]
fn sixty_four_concurrent_writers_never_see_errors() {
    let app = TestApp::new(STATE_APP);
    let gyre = Gyre::up(&app, &["--sqlite", "CREATE TABLE w (n INTEGER)"]);
    let base = gyre.base.clone();
    let threads: Vec<_> = (0..64)
        .map(|n| {
            let base = base.clone();
            std::thread::spawn(move || {
                let kv =
                    support::request("POST", &format!("{base}/kv/set/writer{n}"), &[], Some(b"x"));
                let sql = support::request(
                    "POST",
                    &format!("{base}/sql"),
                    &[],
                    Some(format!(r#"{{"sql": "INSERT INTO w VALUES ({n})"}}"#).as_bytes()),
                );
                let incr =
                    support::request("GET", &format!("{base}/kv/incr/total?api=wasi"), &[], None);
                (kv.status, kv.text(), sql.status, sql.text(), incr.status)
            })
        })
        .collect();
    for thread in threads {
        let (kv_status, kv_text, sql_status, sql_text, incr_status) =
            thread.join().expect("writer thread");
        assert_eq!((kv_status, kv_text.as_str()), (200, "ok"));
        assert_eq!(sql_status, 200, "{sql_text}");
        assert_eq!(incr_status, 200);
    }
    expect(&gyre, "GET", "/kv/get/total", b"", 200, "64");
    let keys = gyre.get("/kv/keys");
    assert_eq!(keys.text().matches("writer").count(), 64);
    let rows = gyre.post("/sql?api=v2", br#"{"sql": "SELECT count(*) FROM w"}"#);
    assert_eq!(rows.text(), r#"{"columns": ["count(*)"], "rows": [[64]]}"#);
}

#[test]
fn python_sdk_3_apps_use_the_same_stores_through_wasi_http_0_2() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "state3"
[variables]
greeting = { default = "hi" }
[[trigger.http]]
route = "/..."
component = "state3"
[component.state3]
source = "{guest:py3-state}"
key_value_stores = ["default"]
sqlite_databases = ["default"]
[component.state3.variables]
message = "{{ greeting }} from SDK 3"
[[trigger.http]]
route = "/v5/..."
component = "state5"
[component.state5]
source = "{guest:py5-state}"
key_value_stores = ["default"]
sqlite_databases = ["default"]
"#,
    );
    let gyre = Gyre::up(&app, &["--sqlite", "CREATE TABLE t (name TEXT)"]);
    let table: &[(&str, &str, &str, u16, &str)] = &[
        ("POST", "/kv/set/shared", "written-by-sdk3", 200, "ok"),
        // The SDK 5 component reads what the SDK 3 component wrote.
        (
            "GET",
            "/v5/kv/get/shared?api=v3",
            "",
            200,
            "written-by-sdk3",
        ),
        ("POST", "/v5/kv/set/other?api=v3", "by-sdk5", 200, "ok"),
        ("GET", "/kv/get/other", "", 200, "by-sdk5"),
        ("GET", "/kv/keys", "", 200, r#"["other", "shared"]"#),
        ("GET", "/kv/delete/other", "", 200, "ok"),
        ("GET", "/kv/get/other", "", 404, "missing"),
        (
            "POST",
            "/sql",
            r#"{"sql": "INSERT INTO t VALUES (?)", "params": ["a"]}"#,
            200,
            r#"{"columns": [], "rows": [], "last_insert_rowid": 1, "changes": 1}"#,
        ),
        (
            "POST",
            "/sql",
            r#"{"sql": "SELECT name, 2.5 AS r FROM t"}"#,
            200,
            r#"{"columns": ["name", "r"], "rows": [["a", 2.5]], "last_insert_rowid": 1, "changes": 1}"#,
        ),
        ("GET", "/var/message", "", 200, "hi from SDK 3"),
        ("GET", "/var/missing", "", 409, "Error_Undefined: missing"),
    ];
    for (method, path, body, status, want) in table {
        expect(&gyre, method, path, body.as_bytes(), *status, want);
    }
}

/// Python SDK 4 builds against WASI 0.3.0-rc-2026-03-15 (what Spin's
/// current templates emit); Gyre maps it onto 0.3.0 at load. Its async
/// `spin:*@3` calls and synchronous `fermyon:spin@2` ones work alike.
#[test]
fn python_sdk_4_apps_use_key_value_sqlite_and_variables() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "state4"
[variables]
greeting = { default = "hey" }
[[trigger.http]]
route = "/..."
component = "state4"
[component.state4]
source = "{guest:py4-state}"
key_value_stores = ["default"]
sqlite_databases = ["default"]
[component.state4.variables]
message = "{{ greeting }} from SDK 4"
"#,
    );
    let gyre = Gyre::up(&app, &["--sqlite", "CREATE TABLE t (name TEXT)"]);
    let table: &[(&str, &str, &str, u16, &str)] = &[
        ("POST", "/kv/set/k?api=v3", "async", 200, "ok"),
        ("GET", "/kv/get/k?api=v2", "", 200, "async"),
        ("POST", "/kv/set/k?api=wasi", "draft2", 200, "ok"),
        ("GET", "/kv/get/k?api=v3", "", 200, "draft2"),
        ("GET", "/kv/keys?api=v3", "", 200, r#"["k"]"#),
        ("GET", "/kv/delete/k?api=v3", "", 200, "ok"),
        ("GET", "/kv/get/k?api=v3", "", 404, "missing"),
        (
            "POST",
            "/sql?api=v3",
            r#"{"sql": "INSERT INTO t VALUES (?)", "params": ["four"]}"#,
            200,
            r#"{"columns": [], "rows": [], "last_insert_rowid": 1, "changes": 1}"#,
        ),
        (
            "POST",
            "/sql?api=v3",
            r#"{"sql": "SELECT name FROM t"}"#,
            200,
            r#"{"columns": ["name"], "rows": [["four"]], "last_insert_rowid": 1, "changes": 1}"#,
        ),
        ("GET", "/var/message?api=v3", "", 200, "hey from SDK 4"),
        ("GET", "/var/message?api=v2", "", 200, "hey from SDK 4"),
    ];
    for (method, path, body, status, want) in table {
        expect(&gyre, method, path, body.as_bytes(), *status, want);
    }
}

#[test]
fn javascript_apps_use_key_value_sqlite_and_variables() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "js-state"
[variables]
region = { default = "eu" }
[[trigger.http]]
route = "/..."
component = "js"
[component.js]
source = "{guest:js-state}"
key_value_stores = ["default"]
sqlite_databases = ["default"]
[component.js.variables]
where = "served from {{ region }}"
"#,
    );
    let gyre = Gyre::up(&app, &["--sqlite", "CREATE TABLE t (name TEXT, n INTEGER)"]);
    let table: &[(&str, &str, &str, u16, &str)] = &[
        ("POST", "/kv/set/greeting", "hello from js", 200, "ok"),
        ("GET", "/kv/get/greeting", "", 200, "hello from js"),
        ("GET", "/kv/keys", "", 200, r#"["greeting"]"#),
        ("GET", "/kv/delete/greeting", "", 200, "ok"),
        ("GET", "/kv/get/greeting", "", 404, "missing"),
        ("GET", "/kv/get/x?store=other", "", 409, "access-denied"),
        (
            "POST",
            "/sql",
            r#"{"sql": "INSERT INTO t VALUES (?, ?)", "params": ["a", 7]}"#,
            200,
            r#"{"columns":[],"rows":[]}"#,
        ),
        (
            "POST",
            "/sql",
            r#"{"sql": "SELECT name, n, NULL AS z FROM t"}"#,
            200,
            r#"{"columns":["name","n","z"],"rows":[["a",7,null]]}"#,
        ),
        (
            "POST",
            "/sql?db=other",
            r#"{"sql": "SELECT 1"}"#,
            409,
            "access-denied",
        ),
        ("GET", "/var/where", "", 200, "served from eu"),
        ("GET", "/var/nope", "", 409, "undefined: nope"),
    ];
    for (method, path, body, status, want) in table {
        expect(&gyre, method, path, body.as_bytes(), *status, want);
    }
}

#[test]
fn an_app_that_keeps_no_state_gets_no_database_files() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "stateless"
[[trigger.http]]
route = "/..."
component = { source = "{guest:hello-wat}" }
"#,
    );
    let gyre = Gyre::up(&app, &[]);
    assert_eq!(gyre.get("/").status, 200);
    drop(gyre);
    for file in [".spin/sqlite_key_value.db", ".spin/sqlite_db.db"] {
        assert!(!app.path().join(file).exists(), "{file} was created");
    }
}
