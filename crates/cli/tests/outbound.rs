//! Outbound HTTP from components built by the real Python SDKs:
//! allow-lists enforced by the host, denied and refused requests seen by
//! the guest as the interface's errors, service chaining in-process, and
//! requests to the app itself.

mod support;

use support::servers::{Upstream, free_port};
use support::{Gyre, TestApp};

fn app(allowed: &str, upstream_port: u16) -> TestApp {
    TestApp::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "outbound"
[variables]
upstream_port = {{ default = "{upstream_port}" }}
[[trigger.http]]
route = "/..."
component = "caller"
[component.caller]
source = "{{guest:py5-state}}"
allowed_outbound_hosts = [{allowed}]
[[trigger.http]]
route = "/v4/..."
component = "caller4"
[component.caller4]
source = "{{guest:py4-state}}"
allowed_outbound_hosts = [{allowed}]
[[trigger.http]]
route = "/v3/..."
component = "caller3"
[component.caller3]
source = "{{guest:py3-state}}"
allowed_outbound_hosts = [{allowed}]
[[trigger.http]]
route = {{ private = true }}
component = "backend"
[component.backend]
source = "{{guest:py5-state}}"
[[trigger.http]]
route = {{ private = true }}
component = "other"
[component.other]
source = "{{guest:py5-state}}"
[[trigger.http]]
route = {{ private = true }}
component = "hello"
[component.hello]
source = "{{guest:hello-wat}}"
"#
    ))
}

fn fetch(gyre: &Gyre, prefix: &str, url: &str) -> (u16, String) {
    let resp = gyre.get(&format!("{prefix}/fetch?url={url}"));
    (resp.status, resp.text())
}

#[test]
fn allowed_hosts_are_reached_and_others_are_denied_by_the_host() {
    let upstream = Upstream::start();
    let closed = free_port();
    let allowed =
        r#""http://127.0.0.1:{{ upstream_port }}", "http://backend.spin.internal", "http://self""#;
    let app = app(allowed, upstream.port);
    let gyre = Gyre::up(&app, &[]);
    let up = upstream.port;
    // Python SDK 5 (wasi:http 0.3.0), 4 (0.3.0-rc-2026-03-15), 3 (0.2).
    for prefix in ["", "/v4", "/v3"] {
        let table: Vec<(String, u16, &str)> = vec![
            (
                format!("http://127.0.0.1:{up}/x?y=1"),
                200,
                "upstream saw GET /x?y=1 0",
            ),
            // Service chaining runs the private component in-process.
            ("http://backend.spin.internal/hello".into(), 200, "hello"),
            ("http://self/hello".into(), 200, "hello"),
            // Not listed: the interface's own denied error.
            (
                format!("http://127.0.0.1:{closed}/"),
                409,
                "HttpRequestDenied",
            ),
            (format!("http://localhost:{up}/"), 409, "HttpRequestDenied"),
            (format!("https://127.0.0.1:{up}/"), 409, "HttpRequestDenied"),
            (
                "http://other.spin.internal/hello".into(),
                409,
                "HttpRequestDenied",
            ),
        ];
        for (url, status, want) in table {
            let (got_status, body) = fetch(&gyre, prefix, &url);
            assert_eq!(
                got_status,
                status,
                "{prefix} {url}: {body}\n{}",
                gyre.stderr()
            );
            assert!(
                body.contains(want),
                "{prefix} {url}: want {want:?} in {body:?}"
            );
        }
    }
    assert!(
        gyre.stderr().contains(&format!(
            "Outbound network destination not allowed: http://127.0.0.1:{closed}"
        )),
        "{}",
        gyre.stderr()
    );
}

/// The WAT hello drops its request unread, while the calling SDK may
/// still be writing the body (SDK 3 writes even an empty one after the
/// request is sent): the caller must not find its stream closed.
#[test]
fn a_chained_component_that_never_reads_the_body_leaves_the_callers_stream_open() {
    let app = app(r#""http://hello.spin.internal""#, 0);
    let gyre = Gyre::up(&app, &[]);
    let megabyte = vec![b'x'; 1 << 20];
    for prefix in ["", "/v4", "/v3"] {
        for round in 0..20 {
            let (status, body) = fetch(&gyre, prefix, "http://hello.spin.internal/");
            assert_eq!(
                (status, body.as_str()),
                (200, "Hello, Gyre!\n"),
                "{prefix} GET, round {round}"
            );
        }
        let resp = gyre.post(
            &format!("{prefix}/fetch?method=POST&url=http://hello.spin.internal/"),
            &megabyte,
        );
        assert_eq!(
            (resp.status, resp.text().as_str()),
            (200, "Hello, Gyre!\n"),
            "{prefix} POST of 1 MiB\n{}",
            gyre.stderr()
        );
    }
}

#[test]
fn a_refused_connection_is_an_error_for_the_guest_and_the_server_goes_on() {
    let upstream = Upstream::start();
    let closed = free_port();
    let app = app(r#""http://127.0.0.1:*""#, upstream.port);
    let gyre = Gyre::up(&app, &[]);
    for prefix in ["", "/v4", "/v3"] {
        let (status, body) = fetch(&gyre, prefix, &format!("http://127.0.0.1:{closed}/"));
        assert_eq!(status, 409, "{prefix}: {body}");
        assert!(body.contains("ConnectionRefused"), "{prefix}: {body}");
        let (status, body) = fetch(
            &gyre,
            prefix,
            &format!("http://127.0.0.1:{}/ok", upstream.port),
        );
        assert_eq!(
            (status, body.as_str()),
            (200, "upstream saw GET /ok 0"),
            "{prefix}"
        );
    }
}

#[test]
fn python_sdk_3_request_bodies_arrive_every_time() {
    // SDK 3 writes the request body while the request is being sent.
    let upstream = Upstream::start();
    let app = app(r#""http://127.0.0.1:{{ upstream_port }}""#, upstream.port);
    let gyre = Gyre::up(&app, &[]);
    let url = gyre.url(&format!(
        "/v3/fetch?method=POST&url=http://127.0.0.1:{}/upload",
        upstream.port
    ));
    let body = vec![b'x'; 200_000];
    for attempt in 0..20 {
        let resp = support::request("POST", &url, &[], Some(&body));
        assert_eq!(
            (resp.status, resp.text().as_str()),
            (200, "upstream saw POST /upload 200000"),
            "attempt {attempt}"
        );
    }
}

#[test]
fn an_entry_invalid_after_template_expansion_is_a_load_error() {
    // Templates are checked once their values are known.
    let app = app(r#""http://127.0.0.1:{{ upstream_port }}""#, 1);
    let stderr = support::up_fails(&app, &["--variable", "upstream_port=http"]);
    assert!(
        stderr.contains("component `caller`") && stderr.contains("`http` is not a port number"),
        "{stderr}"
    );
}

#[test]
fn an_invalid_allow_list_entry_is_a_load_error() {
    let app = app(r#""example.com""#, 1);
    let stderr = support::up_fails(&app, &[]);
    // The manifest's own check points at the entry, with a fix.
    assert!(
        stderr.contains("spin.toml:12:")
            && stderr.contains(
                "`component.caller.allowed_outbound_hosts`: \"example.com\": missing scheme"
            )
            && stderr.contains("help: write the scheme too, e.g. `https://example.com`"),
        "{stderr}"
    );
}

#[test]
fn redis_outbound_every_operation_allowed_denied_and_refused() {
    let redis = support::servers::RedisServer::start();
    let closed = free_port();
    let app = TestApp::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "redis-out"
[[trigger.http]]
route = "/..."
component = "caller"
[component.caller]
source = "{{guest:py5-state}}"
allowed_outbound_hosts = ["redis://127.0.0.1:{}", "redis://127.0.0.1:{closed}"]
"#,
        redis.port
    ));
    let gyre = Gyre::up(&app, &[]);
    let want = r#"["v1", null, 1, 2, 3, 1, ["a", "c"], 1, [2], ["xy"], "Error_TypeError"]"#;
    for api in ["v3", "v2"] {
        let resp = gyre.get(&format!(
            "/redis?api={api}&prefix={api}&addr=redis://127.0.0.1:{}",
            redis.port
        ));
        assert_eq!(
            (resp.status, resp.text().as_str()),
            (200, want),
            "{api}\n{}",
            gyre.stderr()
        );
        assert_eq!(redis.command(&["GET", &format!("{api}:n")]), "$1\r\n2\r\n");
    }
    // Not in the allow-list: the interface's invalid-address, as Spin.
    let denied = gyre.get("/redis?addr=redis://127.0.0.2:6379");
    assert_eq!(
        (denied.status, denied.text().as_str()),
        (409, "Error_InvalidAddress")
    );
    let denied = gyre.get("/redis?api=v2&addr=redis://localhost:6379");
    assert_eq!(
        (denied.status, denied.text().as_str()),
        (409, "Error_InvalidAddress")
    );
    // Allowed but nothing listens: an error, and the server goes on.
    let refused = gyre.get(&format!("/redis?addr=redis://127.0.0.1:{closed}"));
    assert_eq!(refused.status, 409);
    assert!(
        refused.text().starts_with("Error_Other: cannot connect"),
        "{}",
        refused.text()
    );
    let again = gyre.get(&format!(
        "/redis?prefix=again&addr=redis://127.0.0.1:{}",
        redis.port
    ));
    assert_eq!(again.status, 200, "{}", again.text());
}

#[test]
fn connections_to_an_origin_are_reused_and_timeouts_apply() {
    let upstream = Upstream::start();
    let app = app(r#""http://127.0.0.1:{{ upstream_port }}""#, upstream.port);
    app.write(
        "runtime-config.toml",
        b"[outbound_http]\nfirst_byte_timeout = \"500ms\"\n",
    );
    let gyre = Gyre::up(&app, &["--runtime-config-file", "runtime-config.toml"]);
    for n in 0..20 {
        let (status, body) = fetch(
            &gyre,
            "",
            &format!("http://127.0.0.1:{}/r{n}", upstream.port),
        );
        assert_eq!((status, body), (200, format!("upstream saw GET /r{n} 0")));
    }
    assert_eq!(
        upstream.connections(),
        1,
        "20 sequential requests should share one connection"
    );
    let started = std::time::Instant::now();
    let (status, body) = fetch(
        &gyre,
        "",
        &format!("http://127.0.0.1:{}/slow", upstream.port),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("ConnectionReadTimeout"), "{body}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "the timeout did not fire"
    );
}

#[test]
fn spin_original_http_send_is_checked_like_wasi_http() {
    let upstream = Upstream::start();
    let closed = free_port();
    let app = TestApp::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "spin-send"
[[trigger.http]]
route = "/send/..."
component = "sender"
[component.sender]
source = "{{guest:spin-send}}"
allowed_outbound_hosts = ["http://127.0.0.1:{up}", "http://127.0.0.1:{closed}", "http://self", "http://backend.spin.internal"]
[[trigger.http]]
route = "/nothing/..."
component = "nothing"
[component.nothing]
source = "{{guest:spin-send}}"
[[trigger.http]]
route = "/inbound/..."
component = "backend"
[component.backend]
source = "{{guest:spin-inbound}}"
"#,
        up = upstream.port
    ));
    let gyre = Gyre::up(&app, &[]);
    let send = |path: &str, url: &str| {
        let resp = gyre.post(path, url.as_bytes());
        (resp.status, resp.text())
    };
    let up = upstream.port;
    let denied_port = free_port();
    let table: Vec<(&str, String, u16, String)> = vec![
        (
            "/send",
            format!("http://127.0.0.1:{up}/hello"),
            200,
            "upstream saw GET /hello 0".into(),
        ),
        // The service-chaining and `self` rules of wasi:http apply here too.
        (
            "/send",
            "http://backend.spin.internal/inbound/x".into(),
            200,
            "/inbound/x".into(),
        ),
        (
            "/send",
            "http://self/inbound/y".into(),
            200,
            "/inbound/y".into(),
        ),
        // A relative URI is a request to the app itself.
        ("/send", "/inbound/z".into(), 200, "/inbound/z".into()),
        // 1 = destination-not-allowed, 2 = invalid-url, 3 = request-error.
        (
            "/send",
            format!("http://127.0.0.1:{denied_port}/"),
            502,
            "1".into(),
        ),
        (
            "/send",
            "http://other.spin.internal/".into(),
            502,
            "1".into(),
        ),
        (
            "/nothing",
            format!("http://127.0.0.1:{up}/hello"),
            502,
            "1".into(),
        ),
        ("/send", "not a url".into(), 502, "2".into()),
        (
            "/send",
            format!("http://127.0.0.1:{closed}/"),
            502,
            "3".into(),
        ),
    ];
    for (path, url, status, body) in table {
        assert_eq!(send(path, &url), (status, body), "{path} {url}");
    }
    assert_eq!(gyre.get("/inbound/alive").status, 200);
}

#[test]
fn max_connections_bounds_the_requests_in_flight() {
    let upstream = Upstream::start();
    let app = app(r#""http://127.0.0.1:{{ upstream_port }}""#, upstream.port);
    // One request at a time: eight concurrent guests take turns on one
    // connection (without the bound, each would open its own).
    app.write(
        "one.toml",
        b"[outbound_http]\nmax_connections = 1\nfirst_byte_timeout = \"30s\"\n",
    );
    let gyre = Gyre::up(&app, &["--runtime-config-file", "one.toml"]);
    let url = gyre.url(&format!(
        "/fetch?url=http://127.0.0.1:{}/slow",
        upstream.port
    ));
    let started = std::time::Instant::now();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || support::request("GET", &url, &[], None))
        })
        .collect();
    for handle in handles {
        let resp = handle.join().expect("request thread");
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    assert_eq!(upstream.connections(), 1, "the requests took turns");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(9),
        "three 3 s requests through one slot take 9 s"
    );
    drop(gyre);

    // None at all: a request waits its first-byte timeout for a slot,
    // then fails with the interface's connection-limit error.
    app.write(
        "none.toml",
        b"[outbound_http]\nmax_connections = 0\nfirst_byte_timeout = \"200ms\"\n",
    );
    let gyre = Gyre::up(&app, &["--runtime-config-file", "none.toml"]);
    let (status, body) = fetch(&gyre, "", &format!("http://127.0.0.1:{}/x", upstream.port));
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("ConnectionLimitReached"), "{body}");
}
