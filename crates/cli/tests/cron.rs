//! The built-in cron trigger with a component built as Spin's cron trigger
//! plugin's Python sample is: schedules with seconds, each run a fresh
//! instance with the component's grants (key-value, variables, outbound
//! HTTP), overlong runs skipped rather than stacked, failures logged, and
//! bad expressions refused at their line.

mod support;

use std::time::{Duration, Instant};

use support::servers::{OtlpReceiver, Recorded, Recorder};
use support::{Gyre, TestApp, counter, metrics_text, shared_cache_dir, up_fails};

/// A cron-only app: `py3-cron` on `expression`, reporting to `recorder`.
fn app(recorder: &Recorder, expression: &str, sleep_ms: u32, fail: bool) -> TestApp {
    TestApp::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "cron-test"
[[trigger.cron]]
component = "tick"
cron_expression = "{expression}"
[component.tick]
source = "{{guest:py3-cron}}"
key_value_stores = ["default"]
allowed_outbound_hosts = ["{url}"]
[component.tick.variables]
report_url = "{url}"
sleep_ms = "{sleep_ms}"
fail = "{fail}"
"#,
        url = recorder.url()
    ))
}

/// The requests whose path starts with `/{what}?`.
fn reports<'a>(seen: &'a [Recorded], what: &str) -> Vec<&'a Recorded> {
    let prefix = format!("/{what}?");
    seen.iter()
        .filter(|r| r.request.path.starts_with(&prefix))
        .collect()
}

/// `run=N` of a report.
fn run_number(r: &Recorded) -> u32 {
    let query = r.request.path.split('?').nth(1).unwrap_or_default();
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("run="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no run number in {}", r.request.path))
}

/// Waits until `what` has been reported `n` times.
fn wait_for_reports(recorder: &Recorder, what: &str, n: usize, gyre: &Gyre) -> Vec<Recorded> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = recorder.requests();
        if reports(&seen, what).len() >= n {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} `{what}` reports\nstdout:\n{}\nstderr:\n{}",
            reports(&seen, what).len(),
            gyre.stdout(),
            gyre.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_one_second_schedule_runs_once_a_second_each_in_a_fresh_instance() {
    let recorder = Recorder::start();
    let receiver = OtlpReceiver::start();
    let app = app(&recorder, "* * * * * *", 0, false);
    let cache = shared_cache_dir();
    let endpoint = receiver.endpoint();
    let gyre = Gyre::up_until_with(
        &app,
        &[],
        &[
            ("GYRE_CACHE_DIR", cache.to_str().expect("utf8")),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
        "Cron Schedules:",
    );
    let first = wait_for_reports(&recorder, "end", 1, &gyre);
    let t0 = reports(&first, "start")[0].at;
    let window = Duration::from_secs(6);
    std::thread::sleep(window + Duration::from_millis(300));
    let seen = recorder.requests();
    let starts: Vec<&Recorded> = reports(&seen, "start")
        .into_iter()
        .filter(|r| r.at >= t0 && r.at < t0 + window)
        .collect();
    assert!(
        (5..=7).contains(&starts.len()),
        "{} runs in 6 s of a one-second schedule\nstderr:\n{}",
        starts.len(),
        gyre.stderr()
    );
    // The key-value store carries the count from run to run: each run is
    // its own instance, numbered one after the other.
    let numbers: Vec<u32> = reports(&seen, "start")
        .into_iter()
        .map(run_number)
        .collect();
    let expected: Vec<u32> = (1..=numbers.len() as u32).collect();
    assert_eq!(numbers, expected);
    // Runs carry the scheduled time, whole seconds apart.
    let stdout = gyre.stdout();
    assert!(
        stdout.contains("tick: \"* * * * * *\" (next run "),
        "the startup output lists the schedule and its next run:\n{stdout}"
    );
    let log = std::fs::read_to_string(app.path().join(".spin/logs/tick_stdout.txt"))
        .expect("the component's stdout log");
    assert!(log.contains("run 1 scheduled at "), "{log}");
    // Each run is a trace: the run, its instance, its store and its calls.
    let spans = receiver.spans();
    let run = spans
        .iter()
        .find(|s| s.name == "cron tick" && s.parent_span_id.is_empty())
        .unwrap_or_else(|| panic!("no run span in {spans:#?}"));
    assert_eq!(run.kind, "SPAN_KIND_CONSUMER");
    assert_eq!(run.attribute("cron.expression"), Some("* * * * * *"));
    let children: Vec<&str> = spans
        .iter()
        .filter(|s| s.parent_span_id == run.span_id)
        .map(|s| s.name.as_str())
        .collect();
    for name in [
        "instantiate",
        "key-value get",
        "key-value set",
        "POST 127.0.0.1",
    ] {
        assert!(children.contains(&name), "`{name}` in {children:?}");
    }
}

#[test]
fn a_run_still_going_when_the_next_is_due_makes_it_skipped_not_stacked() {
    let recorder = Recorder::start();
    // Every second, each run taking 2.5 s: two of every three are skipped.
    let app = app(&recorder, "* * * * * *", 2500, false);
    let gyre = Gyre::up_until(
        &app,
        &["--metrics-listen", "127.0.0.1:0"],
        "Cron Schedules:",
    );
    let seen = wait_for_reports(&recorder, "end", 2, &gyre);
    std::thread::sleep(Duration::from_millis(200));
    let seen = if reports(&seen, "start").len() > 2 {
        recorder.requests()
    } else {
        seen
    };
    let starts = reports(&seen, "start");
    let ends = reports(&seen, "end");
    // Never two at once: each run starts after the previous one ended.
    for (i, start) in starts.iter().enumerate().skip(1) {
        assert!(
            ends[i - 1].at <= start.at,
            "run {} started before run {} ended\nstderr:\n{}",
            i + 1,
            i,
            gyre.stderr()
        );
    }
    let gap = starts[1].at - starts[0].at;
    assert!(
        gap >= Duration::from_millis(2500) && gap < Duration::from_millis(4500),
        "the second run came {gap:?} after the first: the next due time after the first ended"
    );
    let stderr = gyre.stderr();
    assert!(
        stderr.contains("skipped: the previous run of `* * * * * *` is still going"),
        "{stderr}"
    );
    // Runs and skips are counted.
    let metrics = metrics_text(&gyre);
    assert!(
        counter(
            &metrics,
            r#"gyre_cron_runs_total{component="tick",result="ok"}"#
        ) >= 2.0,
        "{metrics}"
    );
    assert!(
        counter(
            &metrics,
            r#"gyre_cron_runs_total{component="tick",result="skipped"}"#
        ) >= 2.0,
        "{metrics}"
    );
}

#[test]
fn a_failing_run_is_logged_with_its_component_and_the_schedule_goes_on() {
    let recorder = Recorder::start();
    let app = app(&recorder, "* * * * * *", 0, true);
    let gyre = Gyre::up_until(&app, &[], "Cron Schedules:");
    wait_for_reports(&recorder, "end", 2, &gyre);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gyre.stderr().contains("was asked to fail") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = gyre.stderr();
    assert!(
        stderr.contains("scheduled run failed") && stderr.contains("tick"),
        "{stderr}"
    );
    assert!(stderr.contains("run 1 was asked to fail"), "{stderr}");
}

#[test]
fn bad_schedules_and_components_are_refused_before_anything_runs() {
    let recorder = Recorder::start();
    // Each case: expression, what the error says.
    let cases = [
        (
            "*/5 * * * *",
            "has 5 fields; Spin's cron trigger counts seconds first",
        ),
        ("61 * * * * *", "invalid cron expression \"61 * * * * *\""),
        ("* * * *", "has 4 fields; it needs 6 or 7"),
    ];
    for (expression, says) in cases {
        let app = app(&recorder, expression, 0, false);
        let stderr = up_fails(&app, &[]);
        assert!(stderr.contains(says), "{expression}: {stderr}");
        assert!(
            stderr.contains("spin.toml:7:"),
            "{expression}: at its line: {stderr}"
        );
        assert!(
            stderr.contains("sec min hour day-of-month month day-of-week"),
            "{expression}: {stderr}"
        );
    }
    let missing = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "cron-test"
[[trigger.cron]]
component = "tick"
[component.tick]
source = "{guest:py3-cron}"
"#,
    );
    let stderr = up_fails(&missing, &[]);
    assert!(stderr.contains("cron_expression"), "{stderr}");
    // A component that is not a cron component.
    let wrong = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "cron-test"
[[trigger.cron]]
component = "web"
cron_expression = "* * * * * *"
[component.web]
source = "{guest:hello-wat}"
"#,
    );
    let stderr = up_fails(&wrong, &[]);
    assert!(
        stderr.contains("component `web`")
            && stderr.contains("does not export `handle-cron-event`"),
        "{stderr}"
    );
    assert!(recorder.requests().is_empty(), "nothing ran");
}
