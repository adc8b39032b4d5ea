//! Component dependencies and HTTP middleware against a real `gyre up`:
//! a Python SDK 5 primary importing `gyre:compose-test/greeting`, a WAT
//! greeter that reads the `greeting` variable, and two Python
//! `wasi:http/middleware` components. What a dependency may reach follows
//! its `inherit_configuration`; every misconfiguration is a load error
//! naming the dependency and the import.

mod support;

use sha2::{Digest, Sha256};
use support::{Gyre, TestApp, up_fails};

/// The denial a dependency without `variables` gets from the host.
const DENIED: &str =
    "is not available to this dependency: it does not inherit its parent's `variables`";

/// One app, three compositions of the same primary:
/// - `/plain`: the greeter from a URL (digest-checked), inheriting nothing;
/// - `/all`: the greeter inheriting everything
///   (`dependencies_inherit_configuration = true`), wrapped in an outer
///   middleware that inherits nothing and an inner one that inherits
///   `variables` and `allowed_outbound_hosts` (the component may reach
///   `upstream`).
fn composed_app(greeter_url: &str, greeter_digest: &str, upstream: u16) -> TestApp {
    TestApp::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "composed"
[variables]
greeting = {{ default = "bonjour" }}

[[trigger.http]]
route = "/plain/..."
component = "plain"
[component.plain]
source = "{{guest:compose-primary}}"
variables = {{ greeting = "{{{{ greeting }}}}" }}
[component.plain.dependencies]
"gyre:compose-test/greeting" = {{ url = "{greeter_url}", digest = "sha256:{greeter_digest}" }}

[[trigger.http]]
route = "/all/..."
component = "all"
dependencies.middleware = [
    {{ path = "{{guest:compose-outer}}" }},
    {{ path = "{{guest:compose-inner}}", inherit_configuration = ["variables", "allowed_outbound_hosts"] }},
]
[component.all]
source = "{{guest:compose-primary}}"
allowed_outbound_hosts = ["http://127.0.0.1:{upstream}"]
variables = {{ greeting = "{{{{ greeting }}}}" }}
dependencies_inherit_configuration = true
[component.all.dependencies]
"gyre:compose-test/greeting@0.1.0" = {{ path = "{{guest:compose-greeter}}" }}
"#
    ))
}

fn all_values<'a>(response: &'a support::Resp, name: &str) -> Vec<&'a str> {
    response
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn dependencies_and_middleware_reach_only_what_they_inherit() {
    let greeter = std::fs::read(support::guest("compose-greeter")).expect("greeter");
    let digest = hex::encode(Sha256::digest(&greeter));
    let upstream = support::servers::Upstream::start();
    let app = composed_app(
        &support::servers::serve_bytes(greeter, 1),
        &digest,
        upstream.port,
    );
    let gyre = Gyre::up(&app, &[]);

    // Inheriting nothing, the greeter's variable read is the interface's
    // own error, naming what to set; it still greets.
    let plain = gyre.get("/plain/greet?name=ann");
    assert_eq!(plain.status, 200, "{}", gyre.stderr());
    let text = plain.text();
    assert!(
        text.starts_with("`fermyon:spin/variables@2.0.0` ") && text.contains(DENIED),
        "{text}"
    );
    assert!(text.ends_with(", ann"), "{text}");

    // Inheriting everything, it reads the parent's variable.
    let all = gyre.get("/all/greet?name=bob");
    assert_eq!((all.status, all.text().as_str()), (200, "bonjour, bob"));
    // Responses pass back inner first, then outer; only the inner
    // middleware inherits `variables`.
    assert_eq!(all_values(&all, "x-middleware"), ["inner", "outer"]);
    let variables = all_values(&all, "x-middleware-variable");
    assert_eq!(variables.len(), 2, "{:?}", all.headers);
    assert_eq!(variables[0], "bonjour");
    assert!(variables[1].contains(DENIED), "{}", variables[1]);

    // Requests pass in outer first: the inner middleware appended its mark
    // last (the primary's SDK keeps the last value of a repeated header).
    let headers = gyre.get("/all/headers").text();
    let seen: Vec<&str> = headers
        .lines()
        .filter_map(|l| l.strip_prefix("x-middleware-seen: "))
        .collect();
    assert_eq!(seen, ["inner"], "{headers}");

    // The outer middleware answers `/stop` itself: nothing inside runs.
    let stopped = gyre.get("/all/stop");
    assert_eq!(stopped.status, 403);
    assert_eq!(all_values(&stopped, "x-middleware"), ["outer"]);

    // Outbound HTTP follows the same rule: only the inner middleware
    // inherits the component's allow-list, and inheriting never widens it.
    let allowed = format!("http://127.0.0.1:{}/x", upstream.port);
    let elsewhere = format!("http://127.0.0.1:{}/x", support::servers::free_port());
    for (path, url, wanted) in [
        (
            "/all/fetch-outer",
            &allowed,
            "refused ErrorCode_HttpRequestDenied",
        ),
        ("/all/fetch-inner", &allowed, "fetched 200"),
        (
            "/all/fetch-inner",
            &elsewhere,
            "refused ErrorCode_HttpRequestDenied",
        ),
    ] {
        let fetched = gyre.get(&format!("{path}?url={url}"));
        assert_eq!(
            (fetched.status, fetched.header("x-fetch")),
            (200, Some(wanted)),
            "{path} {url}\n{}",
            gyre.stderr()
        );
    }

    // The primary's own routes still answer through the composition.
    assert_eq!(gyre.get("/plain/nowhere").status, 404);
    drop(gyre);

    // Cached with its compiled code: a second start composes nothing and
    // does not fetch the URL again (the server answered once).
    let again = Gyre::up(&app, &["-q"]);
    assert_eq!(again.get("/all/greet?name=cy").text(), "bonjour, cy");
    assert!(again.get("/plain/greet?name=di").text().ends_with(", di"));
}

/// (what is wrong, the dependency lines, what the error must say).
fn misconfigurations() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        (
            "a key that names no import",
            r#"[component.app.dependencies]
"gyre:other/thing" = { path = "{guest:compose-greeter}" }"#,
            vec![
                "the component imports nothing `gyre:other/thing` names",
                "gyre:compose-test/greeting@0.1.0",
            ],
        ),
        (
            "a dependency that does not export the import",
            r#"[component.app.dependencies]
"gyre:compose-test/greeting" = { path = "{guest:hello-wat}" }"#,
            vec![
                "meant to satisfy the import `gyre:compose-test/greeting@0.1.0`",
                "it exports `wasi:http/incoming-handler@0.2.",
                "spin.toml:11:",
            ],
        ),
        (
            "an `export` the dependency does not have",
            r#"[component.app.dependencies]
"gyre:compose-test/greeting" = { path = "{guest:compose-greeter}", export = "gyre:compose-test/farewell@0.1.0" }"#,
            vec![
                "exports no `gyre:compose-test/farewell@0.1.0`",
                "it exports `gyre:compose-test/greeting@0.1.0`",
            ],
        ),
        (
            "a registry package",
            r#"[component.app.dependencies]
"gyre:compose-test/greeting" = { package = "gyre:greeter", version = "1.0.0" }"#,
            vec!["gyre:greeter", "registry"],
        ),
        (
            "a component dependency with grants of its own",
            r#"[component.app.dependencies]
"gyre:compose-test/greeting" = { component = "helper" }
[component.helper]
source = "{guest:compose-greeter}"
allowed_outbound_hosts = ["https://example.com"]"#,
            vec!["helper", "allowed_outbound_hosts"],
        ),
    ]
}

fn app_with(trigger_extra: &str, component_extra: &str) -> TestApp {
    TestApp::new(&format!(
        r#"spin_manifest_version = 2
[application]
name = "misconfigured"
[[trigger.http]]
route = "/..."
component = "app"
{trigger_extra}
[component.app]
source = "{{guest:compose-primary}}"
{component_extra}
"#
    ))
}

#[test]
fn misconfigured_dependencies_are_load_errors_that_name_them() {
    for (what, dependencies, wanted) in misconfigurations() {
        let stderr = up_fails(&app_with("", dependencies), &[]);
        for piece in wanted {
            assert!(
                stderr.contains(piece),
                "{what}: {piece:?} missing from:\n{stderr}"
            );
        }
    }
}

#[test]
fn middleware_must_be_http_middleware_around_a_wasi_03_handler() {
    let not_middleware = up_fails(
        &app_with(
            r#"dependencies.middleware = [{ path = "{guest:compose-greeter}" }]"#,
            "",
        ),
        &[],
    );
    assert!(
        not_middleware.contains("middleware must import and export `wasi:http/handler@0.3.0`")
            && not_middleware.contains("`gyre:compose-test/greeting@0.1.0`")
            && not_middleware.contains("spin.toml:7:"),
        "{not_middleware}"
    );

    let no_handler = up_fails(
        &TestApp::new(
            r#"spin_manifest_version = 2
[application]
name = "old-handler"
[[trigger.http]]
route = "/..."
component = "app"
dependencies.middleware = [{ path = "{guest:compose-outer}" }]
[component.app]
source = "{guest:hello-wat}"
"#,
        ),
        &[],
    );
    assert!(
        no_handler.contains("the component exports none")
            && no_handler.contains("wasi:http/incoming-handler@0.2."),
        "{no_handler}"
    );
}
