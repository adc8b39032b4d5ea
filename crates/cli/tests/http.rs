//! `gyre up` end to end: routing, Spin's headers, every handler kind, traps,
//! streaming and the terminal-facing output, against real guests.

mod support;

use sha2::{Digest, Sha256};
use support::{Gyre, TestApp, peak_rss_kib, request};

const ROUTING_APP: &str = r#"
spin_manifest_version = 2
[application]
name = "routing"
version = "0.1.0"

[[trigger.http]]
route = "/..."
component = "py5"

[[trigger.http]]
route = "/hello"
component = "hello"

[[trigger.http]]
route = "/users/:userid/..."
component = "py5"

[[trigger.http]]
route = "/exact"
static_response = { body = "exact" }

[[trigger.http]]
route = "/exact/..."
static_response = { body = "wildcard" }

[[trigger.http]]
route = "/dup"
static_response = { body = "first" }

[[trigger.http]]
route = "/dup"
static_response = { body = "second" }

[[trigger.http]]
route = { private = true }
component = "secret"

[[trigger.http]]
route = "/static"
static_response = { status_code = 201, headers = { x-static = "yes" }, body = "made" }

[component.py5]
source = "{guest:py5-http}"

[component.hello]
source = "{guest:hello-wat}"

[component.secret]
source = "{guest:hello-wat}"
"#;

#[test]
fn routing_table() {
    let app = TestApp::new(ROUTING_APP);
    let gyre = Gyre::up(&app, &["-q"]);
    // (path, status, body)
    let cases: &[(&str, u16, &str)] = &[
        ("/hello", 200, "Hello, Gyre!\n"),
        ("/hello/", 200, "Hello, Gyre!\n"),
        ("/hello/x", 200, "path=/hello/x"),
        ("/exact", 200, "exact"),
        ("/exact/more", 200, "wildcard"),
        ("/exact/more/and/more", 200, "wildcard"),
        ("/dup", 200, "second"),
        ("/static", 201, "made"),
        ("/anything?q=1", 200, "path=/anything?q=1"),
        ("/", 200, "path=/"),
        ("/.well-known/spin/health", 200, "OK"),
        ("/.well-known/spin/other", 404, ""),
    ];
    let mut failures = Vec::new();
    for (path, status, body) in cases {
        let r = gyre.get(path);
        if r.status != *status || r.text() != *body {
            failures.push(format!(
                "{path}: expected {status} {body:?}, got {} {:?}",
                r.status,
                r.text()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let info = gyre.get("/.well-known/spin/info");
    assert_eq!(info.header("content-type"), Some("application/json"));
    let info: serde_json::Value = serde_json::from_slice(&info.body).expect("json");
    assert_eq!(
        info,
        serde_json::json!({ "name": "routing", "version": "0.1.0" })
    );

    let listing = gyre.stdout();
    assert!(
        listing.contains(&format!("  hello: {}/hello\n", gyre.base)),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("  py5: {} (wildcard)\n", gyre.base)),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("  py5: {}/users/:userid (wildcard)\n", gyre.base)),
        "{listing}"
    );
    assert!(
        !listing.contains("secret"),
        "private components are not listed: {listing}"
    );
    assert!(
        gyre.stderr()
            .contains("route /dup is declared more than once"),
        "{}",
        gyre.stderr()
    );
}

#[test]
fn responses_carry_only_the_guest_headers_and_hypers() {
    let app = TestApp::new(ROUTING_APP);
    let gyre = Gyre::up(&app, &["-q"]);
    assert_eq!(
        gyre.get("/hello").header_names(),
        vec!["date", "transfer-encoding"]
    );
    let s = gyre.get("/static");
    assert_eq!(s.header_names(), vec!["content-length", "date", "x-static"]);
    assert_eq!(s.header("x-static"), Some("yes"));
    let py = gyre.get("/status/418");
    assert_eq!(py.status, 418);
    assert_eq!(py.header_names(), vec!["content-length", "date"]);
}

#[test]
fn unmatched_paths_are_404_with_an_empty_body() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "narrow"
[[trigger.http]]
route = "/only"
component = { source = "{guest:hello-wat}" }
"#,
    );
    let gyre = Gyre::up(&app, &["-q"]);
    for path in ["/", "/other", "/onlyx", "/only/deeper"] {
        let r = gyre.get(path);
        assert_eq!((r.status, r.body.len()), (404, 0), "{path}");
    }
    assert_eq!(gyre.get("/only").status, 200);
}

#[test]
fn guests_see_exactly_spins_request_shape() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "shape"
[[trigger.http]]
route = "/base/:path_segment/:path_end/..."
component = { source = "{guest:py5-http}" }
"#,
    );
    let gyre = Gyre::up(&app, &["-q"]);
    let r = request(
        "GET",
        &gyre.url("/base/path/end/headers?key=value"),
        &[
            ("Host", "example.com"),
            ("X-Custom", "kept"),
            ("Connection", "keep-alive"),
        ],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&r.body).expect("json");
    let spin: std::collections::BTreeMap<&str, &str> = seen
        .iter()
        .filter(|(k, _)| k.starts_with("spin-"))
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect();
    let client = spin.get("spin-client-addr").copied().unwrap_or("");
    assert!(
        client.parse::<std::net::SocketAddr>().is_ok(),
        "client addr {client:?}"
    );
    let expected: std::collections::BTreeMap<&str, &str> = [
        ("spin-base-path", "/"),
        ("spin-client-addr", client),
        ("spin-component-route", "/base/:path_segment/:path_end"),
        (
            "spin-full-url",
            "http://example.com/base/path/end/headers?key=value",
        ),
        ("spin-matched-route", "/base/:path_segment/:path_end/..."),
        ("spin-path-info", "/headers"),
        ("spin-path-match-path-end", "end"),
        ("spin-path-match-path-segment", "path"),
        (
            "spin-raw-component-route",
            "/base/:path_segment/:path_end/...",
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(spin, expected);
    assert_eq!(seen.get("x-custom").and_then(|v| v.as_str()), Some("kept"));
    assert!(
        !seen.contains_key("connection"),
        "Connection must be removed: {seen:?}"
    );
}

const ALL_KINDS_APP: &str = r#"
spin_manifest_version = 2
[application]
name = "kinds"

[[trigger.http]]
route = "/py5/..."
component = { source = "{guest:py5-http}" }

[[trigger.http]]
route = "/py4/..."
component = { source = "{guest:py4-http}" }

[[trigger.http]]
route = "/py3/..."
component = { source = "{guest:py3-http}" }

[[trigger.http]]
route = "/js/..."
component = { source = "{guest:js-http}" }

[[trigger.http]]
route = "/hello"
component = { source = "{guest:hello-wat}" }

[[trigger.http]]
route = "/core/..."
component = "core"

[[trigger.http]]
route = "/inbound/..."
component = { source = "{guest:spin-inbound}" }

[[trigger.http]]
route = "/wagi/..."
component = "wagi"
executor = { type = "wagi" }

[component.core]
source = "{guest:core-module}"

[component.wagi]
source = "{guest:wagi-c}"
environment = { WAGI_TEST_ENV = "from-manifest" }
"#;

#[test]
fn every_handler_kind_serves() {
    let app = TestApp::new(ALL_KINDS_APP);
    let gyre = Gyre::up(&app, &["-q"]);
    // (method, path, status, body must contain)
    let cases: &[(&str, &str, u16, &str)] = &[
        ("GET", "/py5/hello", 200, "Hello from Python SDK 5"),
        // WASI 0.3.0-rc-2026-03-15, mapped onto 0.3.0 at load.
        ("GET", "/py4/hello", 200, "Hello from Python SDK 4"),
        ("GET", "/py4/status/418", 418, ""),
        ("GET", "/py3/hello", 200, "Hello from Python SDK 3"),
        ("GET", "/js/hello", 200, "Hello from JavaScript"),
        ("GET", "/hello", 200, "Hello, Gyre!"),
        ("GET", "/core/x", 200, "Hello from a core module"),
        ("GET", "/inbound/a?b=c", 200, "/inbound/a?b=c"),
        ("POST", "/inbound/post", 200, "/inbound/post"),
        ("GET", "/py5/status/418", 418, ""),
        ("GET", "/py3/status/404", 404, ""),
        ("GET", "/js/status/202", 202, ""),
    ];
    let mut failures = Vec::new();
    for (method, path, status, needle) in cases {
        let r = request(method, &gyre.url(path), &[], None);
        if r.status != *status || !r.text().contains(needle) {
            failures.push(format!(
                "{method} {path}: expected {status} containing {needle:?}, got {} {:?}",
                r.status,
                r.text()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let inbound = gyre.get("/inbound/x");
    assert_eq!(inbound.header("x-handler"), Some("spin-inbound"));

    let stderr = gyre.stderr();
    for (component, kind) in [("core", "wasi:http/incoming-handler@0.2"), ("wagi", "wagi")] {
        assert!(
            stderr.contains(&format!("component `{component}` ({kind})")),
            "{component}: {stderr}"
        );
    }
    assert!(
        stderr.contains("(wasi:http/handler@0.3.0)"),
        "py5 is a p3 handler: {stderr}"
    );
    assert!(stderr.contains("(fermyon:spin/inbound-http)"), "{stderr}");
    // Every SDK's imports are provided (the Python SDKs import every Spin
    // interface, LLM included): nothing is linked as a failing stand-in.
    assert!(
        !stderr.contains("imported interfaces are not provided by Gyre yet"),
        "{stderr}"
    );
}

#[test]
fn bodies_round_trip_through_every_sdk() {
    let app = TestApp::new(ALL_KINDS_APP);
    let gyre = Gyre::up(&app, &["-q"]);
    let body: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let digest = hex::encode(Sha256::digest(&body));
    for prefix in ["/py5", "/py4", "/py3", "/js"] {
        let r = request(
            "POST",
            &gyre.url(&format!("{prefix}/echo")),
            &[],
            Some(&body),
        );
        assert_eq!(r.status, 200, "{prefix}");
        assert_eq!(
            r.header("x-body-sha256"),
            Some(digest.as_str()),
            "{prefix}: the guest saw another body"
        );
        assert_eq!(
            hex::encode(Sha256::digest(&r.body)),
            digest,
            "{prefix}: the echoed body differs"
        );
    }
}

#[test]
fn wagi_gets_cgi_variables_arguments_and_stdin() {
    let app = TestApp::new(ALL_KINDS_APP);
    let gyre = Gyre::up(&app, &["-q"]);
    let r = request(
        "POST",
        &gyre.url("/wagi/some/path?x=1&y=2"),
        &[("X-Custom-Foo", "bar")],
        Some(b"request body"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let text = r.text();
    let port = gyre.base.rsplit(':').next().unwrap_or_default().to_string();
    for line in [
        "arg0=/wagi/some/path".to_string(),
        "arg1=x=1".to_string(),
        "arg2=y=2".to_string(),
        "REQUEST_METHOD=POST".to_string(),
        "QUERY_STRING=x=1&y=2".to_string(),
        "PATH_INFO=/some/path".to_string(),
        "SCRIPT_NAME=/wagi".to_string(),
        "SERVER_NAME=127.0.0.1".to_string(),
        format!("SERVER_PORT={port}"),
        "X_MATCHED_ROUTE=/wagi/...".to_string(),
        "X_COMPONENT_ROUTE=/wagi".to_string(),
        "HTTP_X_CUSTOM_FOO=bar".to_string(),
        "CONTENT_LENGTH=12".to_string(),
        "GATEWAY_INTERFACE=CGI/1.1".to_string(),
        "SERVER_SOFTWARE=WAGI/1".to_string(),
        "WAGI_TEST_ENV=from-manifest".to_string(),
        "body=request body".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    let created = gyre.get("/wagi/status");
    assert_eq!(created.status, 201);
    let redirect = gyre.get("/wagi/redirect");
    assert_eq!(
        (redirect.status, redirect.header("location")),
        (302, Some("/elsewhere"))
    );
}

#[test]
fn a_trapping_guest_costs_one_500_and_the_server_keeps_serving() {
    let app = TestApp::new(ALL_KINDS_APP);
    let gyre = Gyre::up(&app, &["-q"]);
    let trap = request("DELETE", &gyre.url("/inbound/boom"), &[], None);
    assert_eq!((trap.status, trap.body.len()), (500, 0));
    let raised = gyre.get("/py5/raise");
    assert_eq!(raised.status, 500);
    let js_raised = gyre.get("/js/raise");
    assert_eq!(js_raised.status, 500);
    for i in 0..100 {
        let path = ["/inbound/ok", "/py5/hello", "/hello", "/py3/hello"][i % 4];
        assert_eq!(
            gyre.get(path).status,
            200,
            "request {i} to {path} after the traps"
        );
    }
    let stderr = gyre.stderr();
    assert!(
        stderr.contains("request /inbound/boom failed") && stderr.contains("unreachable"),
        "the trap is logged: {stderr}"
    );
}

#[test]
fn a_256_mib_upload_streams_through_bounded_memory() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "upload"
[[trigger.http]]
route = "/sink"
component = { source = "{guest:sink-wat}" }
"#,
    );
    let gyre = Gyre::up(&app, &["-q"]);
    assert_eq!(gyre.get("/sink").text(), "0");
    let before = peak_rss_kib(gyre.pid());
    const SIZE: u64 = 256 << 20;
    let reader = std::io::Read::take(std::io::repeat(0x5a), SIZE);
    let response = support::agent()
        .post(&gyre.url("/sink"))
        .send(reader)
        .expect("upload");
    let r = support::into_resp(response);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), SIZE.to_string(), "the guest saw every byte");
    let after = peak_rss_kib(gyre.pid());
    let growth_mib = after.saturating_sub(before) / 1024;
    assert!(
        growth_mib < 64,
        "peak memory grew by {growth_mib} MiB for a 256 MiB upload"
    );
}

#[test]
fn h2c_is_served() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "h2"
[[trigger.http]]
route = "/hello"
component = { source = "{guest:hello-wat}" }
"#,
    );
    let gyre = Gyre::up(&app, &["-q"]);
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-o",
            "-",
            "-w",
            "\n%{http_version} %{http_code}",
            &gyre.url("/hello"),
        ])
        .output()
        .expect("curl is needed for the h2c test (.ci/run installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("\n2 200"), "{text}");
    assert!(text.starts_with("Hello, Gyre!"), "{text}");
}

#[test]
fn environment_files_and_logs_reach_the_component() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "env-files"
[[trigger.http]]
route = "/..."
component = "py5"
[[trigger.http]]
route = "/core"
component = "core"
[component.py5]
source = "{guest:py5-http}"
environment = { GYRE_TEST_FROM_MANIFEST = "manifest" }
files = ["static/**/*", { source = "assets", destination = "/mounted" }]
exclude_files = ["static/secret.txt"]
[component.core]
source = "{guest:core-module}"
"#,
    );
    app.write("static/hello.txt", b"static file content\n");
    app.write("static/secret.txt", b"not mounted\n");
    app.write("assets/deep/data.txt", b"placed\n");
    let gyre = Gyre::up(&app, &["-e", "GYRE_TEST_FROM_CLI=cli"]);
    let env: serde_json::Value = serde_json::from_slice(&gyre.get("/env").body).expect("json");
    assert_eq!(
        env,
        serde_json::json!({ "GYRE_TEST_FROM_CLI": "cli", "GYRE_TEST_FROM_MANIFEST": "manifest" })
    );
    assert_eq!(
        gyre.get("/file/static/hello.txt").text(),
        "static file content\n"
    );
    assert_eq!(gyre.get("/file/mounted/deep/data.txt").text(), "placed\n");
    assert_eq!(
        gyre.get("/file/static/secret.txt").status,
        404,
        "excluded files are not mounted"
    );

    assert_eq!(gyre.get("/core").status, 200);
    assert_eq!(gyre.get("/raise").status, 500);
    let logs = app.path().join(".spin/logs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stdout = std::fs::read_to_string(logs.join("core_stdout.txt")).unwrap_or_default();
        let stderr = std::fs::read_to_string(logs.join("py5_stderr.txt")).unwrap_or_default();
        let echoed = gyre.stderr();
        if stdout.contains("core module handled a request")
            && stderr.contains("this route raises on purpose")
            && echoed.contains("[core] core module handled a request")
            && echoed.contains("[py5] RuntimeError: this route raises on purpose")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "component output missing\nstdout file: {stdout}\nstderr file: {stderr}\nterminal: {echoed}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn json_listing() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "json"
[[trigger.http]]
route = "/api/..."
component = "api"
[component.api]
source = "{guest:hello-wat}"
description = "The API"
"#,
    );
    let gyre = Gyre::up(&app, &["-q", "--format", "json"]);
    let line = gyre.stdout().lines().next().unwrap_or_default().to_string();
    let listing: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
    assert_eq!(
        listing,
        serde_json::json!({
            "base_url": gyre.base,
            "routes": [{ "id": "api", "route": "/api/...", "wildcard": true, "description": "The API" }]
        })
    );
}
