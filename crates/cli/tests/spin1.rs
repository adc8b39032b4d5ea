//! Spin 1.x modules (core Wasm in the `handle-http-request` ABI of the
//! Spin 0.x/1.x SDKs) adapted at load: the HTTP handler, WASI output,
//! `spin-config`, `key-value`, `outbound-redis`, `outbound-pg`,
//! `outbound-mysql`, `sqlite` and `wasi-outbound-http` under their old
//! names, each within the component's grants; a module using an interface
//! Gyre does not adapt is a load error naming it.

mod support;

use support::servers::{Mariadb, Postgres, RedisServer, Upstream};
use support::{Gyre, TestApp, up_fails};

fn app(upstream: u16, redis: u16, postgres: u16, mysql: u16) -> TestApp {
    TestApp::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "spin1"
[variables]
greeting = {{ default = "hello from config" }}

[[trigger.http]]
route = "/granted/..."
component = "granted"
[component.granted]
source = "{{guest:spin1}}"
key_value_stores = ["default"]
allowed_outbound_hosts = ["http://127.0.0.1:{upstream}", "redis://127.0.0.1:{redis}", "postgres://127.0.0.1:{postgres}", "mysql://127.0.0.1:{mysql}"]
sqlite_databases = ["default"]
variables = {{ greeting = "{{{{ greeting }}}}" }}

[[trigger.http]]
route = "/bare/..."
component = "bare"
[component.bare]
source = "{{guest:spin1}}"
"#
    ))
}

#[test]
fn a_spin1_module_serves_with_its_grants_and_only_those() {
    let upstream = Upstream::start();
    let redis = RedisServer::start();
    let postgres = Postgres::start();
    let mariadb = Mariadb::start();
    let app = app(upstream.port, redis.port, postgres.port, mariadb.port);
    let gyre = Gyre::up(&app, &[]);
    let allowed = format!("http://127.0.0.1:{}/from-upstream", upstream.port);
    let redis_url = redis.url();
    let (postgres_url, mysql_url) = (postgres.url(), mariadb.url());

    // (method, path, body, status, body wanted: exact, or a prefix with `…`)
    let cases: &[(&str, &str, &str, u16, &str)] = &[
        (
            "GET",
            "/granted/hello",
            "",
            200,
            "Hello from a Spin 1.x module",
        ),
        ("GET", "/granted/config", "", 200, "hello from config"),
        (
            "POST",
            "/granted/kv",
            "stored through the old ABI",
            200,
            "stored through the old ABI",
        ),
        ("POST", "/granted/outbound", &allowed, 200, "…"),
        (
            "POST",
            "/granted/redis",
            &redis_url,
            200,
            "from a Spin 1.x module",
        ),
        ("GET", "/granted/nowhere", "", 404, ""),
        // Without grants: Spin 1.x's own errors (`provider`, `access-denied`,
        // `destination-not-allowed`), never a trap.
        (
            "GET",
            "/bare/config",
            "",
            500,
            "error 0: no variable named \"greeting\"",
        ),
        ("POST", "/bare/kv", "x", 500, "error 2"),
        ("POST", "/bare/outbound", &allowed, 500, "error 1"),
        ("POST", "/bare/redis", &redis_url, 500, "error 1"),
        ("POST", "/bare/pg", &postgres_url, 500, "error 1: …"),
        ("POST", "/bare/mysql", &mysql_url, 500, "error 1: …"),
        ("GET", "/bare/sqlite", "", 500, "error 1"),
    ];
    for (method, path, body, status, wanted) in cases {
        let response = support::request(method, &gyre.url(path), &[], Some(body.as_bytes()));
        let text = response.text();
        assert_eq!(
            response.status,
            *status,
            "{method} {path}: {text}\n{}",
            gyre.stderr()
        );
        match wanted.strip_suffix('…') {
            Some(prefix) => assert!(text.starts_with(prefix), "{path}: {text}"),
            None => assert_eq!(&text, wanted, "{method} {path}"),
        }
        assert_eq!(
            response.header("content-type"),
            Some("text/plain"),
            "{path}: the module's header"
        );
    }
    // The upstream saw the module's GET, Redis its SET.
    assert!(upstream.connections() >= 1);
    let stored = redis.command(&["GET", "spin1"]);
    assert!(stored.contains("from a Spin 1.x module"), "{stored:?}");

    // WASI output goes where any component's does.
    let stdout = std::fs::read_to_string(app.path().join(".spin/logs/granted_stdout.txt"))
        .unwrap_or_default();
    assert!(
        stdout.contains("hello from a Spin 1.x module"),
        "{stdout:?}"
    );
    // Adapted once, then cached with its compiled code.
    assert!(
        gyre.stderr().contains("(fermyon:spin/inbound-http)"),
        "{}",
        gyre.stderr()
    );
}

#[test]
fn a_module_importing_what_spin1_never_had_is_a_load_error() {
    let app = TestApp::new(
        r#"spin_manifest_version = 2
[application]
name = "spin1-unknown"
[[trigger.http]]
route = "/..."
component = "odd"
[component.odd]
source = "module.wat"
"#,
    );
    app.write(
        "module.wat",
        br#"(module
  (import "outbound-mongo" "find" (func (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "canonical_abi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0)
  (func (export "handle-http-request") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32) i32.const 0))"#,
    );
    let stderr = up_fails(&app, &[]);
    assert!(
        stderr.contains("component `odd`")
            && stderr.contains("Spin 1.x module")
            && stderr.contains("`outbound-mongo.find`")
            && stderr.contains("not part of the Spin 1.x ABI"),
        "{stderr}"
    );
}
