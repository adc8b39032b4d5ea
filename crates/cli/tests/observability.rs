//! What operators see: Prometheus metrics read back through a real
//! Prometheus that scrapes `gyre up --metrics-listen`; OpenTelemetry spans
//! received over OTLP and decoded with the `opentelemetry-proto` types;
//! JSON log lines.

mod support;

use std::time::Duration;

use std::time::Instant;

use support::servers::{OtlpGrpcReceiver, OtlpReceiver, Prometheus, ReceivedSpan, Recorder};
use support::{Gyre, TestApp, request, shared_cache_dir};

/// The address the `Metrics: http://ADDR/metrics` line names.
fn metrics_addr(gyre: &Gyre) -> String {
    let stdout = gyre.stdout();
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Metrics: http://"))
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics address in:\n{stdout}"))
        .to_string()
}

#[test]
fn prometheus_scrapes_request_counts_refusals_deadlines_and_failures() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "observed"
[[trigger.http]]
route = "/hello"
component = "hello"
[[trigger.http]]
route = "/py/..."
component = "hostile"
[component.hello]
source = "{guest:hello-wat}"
[[trigger.http]]
route = "/hog/..."
component = "hog"
[[trigger.http]]
route = "/inbound/..."
component = "inbound"
[component.hostile]
source = "{guest:py5-hostile}"
[component.inbound]
source = "{guest:spin-inbound}"
[component.hog]
source = "{guest:py5-hostile}"
"#,
    );
    // One request at a time and no queue: a second request meets 503.
    app.write(
        "runtime-config.toml",
        br#"
[limits]
max_concurrent_requests = 1
max_queued_requests = 0
request_timeout = "2s"
[limits.component.hog]
request_timeout = "30s"
max_instance_memory = "64MiB"
"#,
    );
    let gyre = Gyre::up(
        &app,
        &[
            "--runtime-config-file",
            "runtime-config.toml",
            "--metrics-listen",
            "127.0.0.1:0",
            "-q",
        ],
    );
    let metrics = metrics_addr(&gyre);
    assert_ne!(
        metrics,
        gyre.base.trim_start_matches("http://"),
        "metrics have a listener of their own"
    );
    let prometheus = Prometheus::start(std::slice::from_ref(&metrics));

    // A request past its deadline holds the only slot: the next is refused.
    let slow_url = gyre.url("/py/sleep?s=10");
    let slow = std::thread::spawn(move || request("GET", &slow_url, &[], None).status);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(gyre.get("/hello").status, 503, "{}", gyre.stderr());
    assert_eq!(slow.join().expect("slow"), 504);
    for _ in 0..3 {
        assert_eq!(gyre.get("/hello").status, 200);
    }
    for _ in 0..2 {
        assert_eq!(gyre.get("/missing").status, 404);
    }
    // The guest answers 500 itself when its memory runs out …
    assert_eq!(gyre.get("/hog/alloc").status, 500, "{}", gyre.stderr());
    // … and this one traps (a DELETE reaches `unreachable`).
    let trapped = request("DELETE", &gyre.url("/inbound/x"), &[], None);
    assert_eq!(trapped.status, 500);
    // The app's port does not serve metrics.
    assert_eq!(gyre.get("/metrics").status, 404);

    // (PromQL, value Prometheus must come to hold.)
    let expected: &[(&str, f64)] = &[
        (
            r#"gyre_http_requests_total{component="hello",route="/hello",status="2xx"}"#,
            3.0,
        ),
        (
            r#"gyre_http_requests_total{component="hello",route="/hello",status="5xx"}"#,
            1.0,
        ),
        // Two /missing and the /metrics asked of the app's port.
        (
            r#"gyre_http_requests_total{component="",route="",status="4xx"}"#,
            3.0,
        ),
        (
            r#"gyre_http_requests_total{component="hostile",route="/py/...",status="5xx"}"#,
            1.0,
        ),
        (
            r#"gyre_http_requests_total{component="hog",route="/hog/...",status="5xx"}"#,
            1.0,
        ),
        (
            r#"gyre_http_requests_total{component="hostile",route="/py/...",status="2xx"}"#,
            0.0,
        ),
        (r#"gyre_http_refused_total{reason="queue_full"}"#, 1.0),
        (
            r#"gyre_deadline_exceeded_total{component="hostile",trigger="http",limit="request_timeout"}"#,
            1.0,
        ),
        (
            r#"gyre_http_requests_total{component="inbound",route="/inbound/...",status="5xx"}"#,
            1.0,
        ),
        (
            r#"gyre_guest_failures_total{component="inbound",trigger="http"}"#,
            1.0,
        ),
        (r#"sum(gyre_guest_failures_total)"#, 1.0),
        (r#"gyre_memory_refusals_total{component="hog"}"#, 1.0),
        (
            r#"gyre_http_request_duration_seconds_count{component="hostile"}"#,
            1.0,
        ),
        (
            r#"gyre_http_request_duration_seconds_count{component="hello"}"#,
            4.0,
        ),
        (r#"sum(gyre_compile_cache_total)"#, 4.0),
        (r#"gyre_admission_queue_depth"#, 0.0),
        (r#"gyre_instances_live"#, 0.0),
        (r#"count(gyre_pool_component_instances)"#, 2.0),
        (r#"up{job="gyre"}"#, 1.0),
    ];
    for (promql, want) in expected {
        let got = prometheus.wait_for(promql, *want);
        assert_eq!(got, Some(*want), "{promql}\nstderr:\n{}", gyre.stderr());
    }
    // Latency: the 504 took its 2 s; the hello requests a fraction of it.
    let slow_sum = prometheus
        .query(r#"gyre_http_request_duration_seconds_sum{component="hostile"}"#)
        .expect("duration sum");
    assert!((2.0..4.0).contains(&slow_sum), "{slow_sum}");
    let resident = prometheus
        .query(r#"process_resident_memory_bytes"#)
        .expect("process memory");
    assert!(resident > 1e6, "{resident}");
    assert!(prometheus.query("process_cpu_seconds_total").expect("cpu") > 0.0);
}

/// `gyre up` exporting spans to `endpoint` in batches of 100 ms, with one
/// more variable.
fn up_exporting(app: &TestApp, endpoint: &str, extra: (&str, &str)) -> Gyre {
    let cache = shared_cache_dir();
    Gyre::up_with(
        app,
        &[],
        &[
            ("GYRE_CACHE_DIR", cache.to_str().expect("utf8")),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            extra,
        ],
    )
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// The one span named `name` among `spans` whose parent is `parent`.
fn child<'a>(spans: &'a [ReceivedSpan], parent: &str, name: &str) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.parent_span_id == parent && s.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one `{name}` span under {parent}; spans:\n{spans:#?}"
    );
    found[0]
}

#[test]
fn a_request_is_one_span_tree_continuing_the_callers_trace_and_passing_it_on() {
    let receiver = OtlpReceiver::start();
    let upstream = Recorder::start();
    let app = TestApp::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "traced"
[[trigger.http]]
route = "/..."
component = "state"
[[trigger.http]]
route = {{ private = true }}
component = "hello"
[component.state]
source = "{{guest:py3-state}}"
key_value_stores = ["default"]
allowed_outbound_hosts = ["{upstream}", "http://hello.spin.internal"]
[component.hello]
source = "{{guest:hello-wat}}"
"#,
        upstream = upstream.url()
    ));
    let gyre = up_exporting(
        &app,
        &receiver.endpoint(),
        ("OTEL_SERVICE_NAME", "trace-test"),
    );
    let url = gyre.url(&format!(
        "/chain?url={}/seen&next=http://hello.spin.internal/",
        upstream.url()
    ));
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    let response = request("GET", &url, &[("traceparent", &traceparent)], None);
    assert_eq!(
        response.status,
        200,
        "{}\n{}",
        response.text(),
        gyre.stderr()
    );
    assert_eq!(response.text(), "upstream 200, next 200");

    // Both components' request spans arrive (batched every 100 ms).
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans: Vec<ReceivedSpan> = receiver
            .spans()
            .into_iter()
            .filter(|s| s.trace_id == TRACE_ID)
            .collect();
        let servers = spans
            .iter()
            .filter(|s| s.kind == "SPAN_KIND_SERVER")
            .count();
        if servers >= 2 && spans.len() >= 8 {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "spans of trace {TRACE_ID} so far:\n{spans:#?}\nstderr:\n{}",
            gyre.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        spans.iter().all(|s| s.service == "trace-test"),
        "{spans:#?}"
    );

    // The request continues the caller's trace, under the caller's span.
    let root = child(&spans, CALLER_SPAN, "GET /...");
    assert_eq!(root.kind, "SPAN_KIND_SERVER");
    assert_eq!(root.attribute("component"), Some("state"));
    assert_eq!(root.attribute("http.route"), Some("/..."));
    assert_eq!(root.attribute("http.response.status_code"), Some("200"));
    // Its children: the instance, the store, the outbound calls.
    child(&spans, &root.span_id, "instantiate");
    child(&spans, &root.span_id, "key-value set");
    child(&spans, &root.span_id, "key-value get");
    let outbound = child(&spans, &root.span_id, "GET 127.0.0.1");
    assert_eq!(outbound.kind, "SPAN_KIND_CLIENT");
    assert_eq!(outbound.attribute("http.response.status_code"), Some("200"));
    let chained = child(&spans, &root.span_id, "GET hello.spin.internal");
    assert_eq!(chained.kind, "SPAN_KIND_CLIENT");
    // The chained component's request is a child of the call that made it.
    let hello = child(&spans, &chained.span_id, "GET /...");
    assert_eq!(hello.kind, "SPAN_KIND_SERVER");
    assert_eq!(hello.attribute("component"), Some("hello"));
    child(&spans, &hello.span_id, "instantiate");

    // The upstream was told the trace, under the outbound call's span.
    let seen = upstream.requests();
    let sent = seen
        .iter()
        .find(|r| r.request.path == "/seen")
        .expect("the upstream request");
    assert_eq!(
        sent.request.header("traceparent"),
        Some(format!("00-{TRACE_ID}-{}-01", outbound.span_id).as_str())
    );
}

#[test]
fn json_logs_are_one_object_a_line_with_the_request_and_component() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "logged"
[[trigger.http]]
route = "/..."
component = "state"
[component.state]
source = "{guest:py3-state}"
"#,
    );
    let gyre = Gyre::up(&app, &["--log-format", "json"]);
    // Outbound HTTP the component may not make: a warning inside a request.
    for _ in 0..2 {
        let response = gyre.get("/fetch?url=http://example.invalid/");
        assert_eq!(response.status, 409);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while gyre.stderr().matches("not allowed").count() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = gyre.stderr();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}\n{stderr}"))
        })
        .collect();
    for line in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(line.get(key).is_some(), "`{key}` in {line}");
        }
    }
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("ready in "))),
        "{stderr}"
    );
    let denied: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("not allowed"))
        })
        .collect();
    assert_eq!(denied.len(), 2, "{stderr}");
    for line in &denied {
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["span"]["component"], "state", "{line}");
        assert_eq!(line["span"]["http.route"], "/...", "{line}");
    }
    let ids: Vec<u64> = denied
        .iter()
        .map(|l| l["span"]["request_id"].as_u64().expect("a request id"))
        .collect();
    assert_ne!(ids[0], ids[1], "each request has its own id");
}

/// The tiny guest on `/hello`.
const HELLO_APP: &str = r#"
spin_manifest_version = 2
[application]
name = "traced"
[[trigger.http]]
route = "/hello"
component = "hello"
[component.hello]
source = "{guest:hello-wat}"
"#;

#[test]
fn spans_go_over_grpc_when_the_protocol_says_so() {
    let receiver = OtlpGrpcReceiver::start();
    let app = TestApp::new(HELLO_APP);
    let gyre = up_exporting(
        &app,
        &receiver.endpoint(),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    );
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    let response = request(
        "GET",
        &gyre.url("/hello"),
        &[("traceparent", &traceparent)],
        None,
    );
    assert_eq!(response.status, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let spans = receiver.spans();
        if spans
            .iter()
            .any(|s| s.trace_id == TRACE_ID && s.name == "GET /hello")
        {
            let root = child(&spans, CALLER_SPAN, "GET /hello");
            assert_eq!(root.service, "gyre", "the default service name");
            child(&spans, &root.span_id, "instantiate");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no request span over gRPC: {spans:#?}\nstderr:\n{}",
            gyre.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_unknown_otlp_protocol_is_refused_with_the_ones_there_are() {
    let app = TestApp::new(HELLO_APP);
    let output = support::gyre_command()
        .current_dir(app.path())
        .args(["up", "--listen", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
        .output()
        .expect("run gyre");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "\"carrier-pigeon\" is not supported: use `http/protobuf` (the default) or `grpc`"
        ),
        "{stderr}"
    );
}
