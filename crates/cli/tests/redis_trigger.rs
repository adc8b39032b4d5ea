//! The Redis trigger with handlers built by the real Python SDKs (5 and 3),
//! against a real redis-server: every message handled, delivery resuming
//! after Redis restarts, failing handlers logged, and Gyre's filters.

mod support;

use std::time::{Duration, Instant};

use support::servers::RedisServer;
use support::{Gyre, TestApp, counter, metrics_text};

fn app(redis: &RedisServer, extra: &str) -> TestApp {
    TestApp::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "redis-trigger"
[application.trigger.redis]
address = "redis://127.0.0.1:{port}"
[variables]
redis_address = {{ default = "redis://127.0.0.1:{port}" }}
[[trigger.http]]
route = "/..."
component = {{ source = "{{guest:hello-wat}}" }}
[[trigger.redis]]
channel = "events"
component = "sdk5"
[[trigger.redis]]
channel = "legacy"
component = "sdk3"
{extra}
[component.sdk5]
source = "{{guest:py5-redis}}"
allowed_outbound_hosts = ["redis://127.0.0.1:{port}"]
[component.sdk5.variables]
redis_address = "{{{{ redis_address }}}}"
prefix = "sdk5"
[component.sdk3]
source = "{{guest:py3-redis}}"
allowed_outbound_hosts = ["redis://127.0.0.1:{port}"]
[component.sdk3.variables]
redis_address = "{{{{ redis_address }}}}"
prefix = "sdk3"
"#,
        port = redis.port
    ))
}

fn wait_for_count(redis: &RedisServer, key: &str, want: i64, gyre: &Gyre) {
    wait_for(redis, &["GET", key], want, gyre);
}

/// Polls an integer-valued command until it reaches `want` (and fails if it
/// goes past it).
fn wait_for(redis: &RedisServer, command: &[&str], want: i64, gyre: &Gyre) {
    let key = command.join(" ");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = redis.int(command);
        if got >= want {
            assert_eq!(got, want, "{key}: more messages handled than published");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{key}: {got} of {want} messages handled\nstderr:\n{}",
            gyre.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_published_message_is_handled_by_both_sdks_alongside_http() {
    let redis = RedisServer::start();
    let app = app(&redis, "");
    let gyre = Gyre::up(&app, &[]);
    assert_eq!(gyre.get("/").status, 200, "the HTTP trigger runs too");
    let stdout = gyre.stdout();
    let address = format!("redis://127.0.0.1:{}", redis.port);
    assert!(
        stdout.contains(&format!("Active Channels on {address}:")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("\t{address}/events: [sdk5]")),
        "{stdout}"
    );
    redis.wait_subscribed("events");
    redis.wait_subscribed("legacy");
    for n in 0..1000 {
        redis.command(&["PUBLISH", "events", &format!("m{n}")]);
    }
    for n in 0..100 {
        redis.command(&["PUBLISH", "legacy", &format!("l{n}")]);
    }
    wait_for_count(&redis, "sdk5:received", 1000, &gyre);
    wait_for_count(&redis, "sdk3:received", 100, &gyre);
    // Each handler counts, then records: the records follow.
    wait_for(&redis, &["LLEN", "sdk5:seen"], 1000, &gyre);
    wait_for(&redis, &["LLEN", "sdk3:seen"], 100, &gyre);
}

#[test]
fn delivery_resumes_after_redis_restarts_and_failures_are_logged() {
    let mut redis = RedisServer::start();
    let app = app(&redis, "");
    let gyre = Gyre::up(&app, &["--metrics-listen", "127.0.0.1:0"]);
    redis.wait_subscribed("events");
    redis.command(&["PUBLISH", "events", "fail"]);
    for n in 0..200 {
        redis.command(&["PUBLISH", "events", &format!("before{n}")]);
    }
    wait_for_count(&redis, "sdk5:received", 200, &gyre);
    // A handler's last command is its RPUSH: once the list is full, no
    // handler still waits for an INCR reply. (A command whose reply is lost
    // to the restart is sent again on the new connection and would count
    // there: the documented caveat of outbound Redis's resend.)
    wait_for(&redis, &["LLEN", "sdk5:seen"], 200, &gyre);
    let stderr = gyre.stderr();
    assert!(
        stderr.contains("sdk5")
            && stderr.contains("events")
            && stderr.contains("message handler failed"),
        "{stderr}"
    );

    redis.restart();
    redis.wait_subscribed("events");
    for n in 0..300 {
        redis.command(&["PUBLISH", "events", &format!("after{n}")]);
    }
    // The restarted server is empty: the count starts again.
    wait_for_count(&redis, "sdk5:received", 300, &gyre);
    let stderr = gyre.stderr();
    assert!(
        stderr.contains("disconnected from Redis") || stderr.contains("cannot subscribe"),
        "{stderr}"
    );
    assert!(stderr.contains("resubscribed on Redis"), "{stderr}");
    assert_eq!(gyre.get("/").status, 200);
    let series = |result: &str| {
        format!(
            r#"gyre_redis_messages_total{{component="sdk5",channel="events",result="{result}"}}"#
        )
    };
    // A message counts once its handler's instance is done: the last
    // handlers may still be finishing when Redis shows their writes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut metrics = metrics_text(&gyre);
    while counter(&metrics, &series("handled")) < 500.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        metrics = metrics_text(&gyre);
    }
    assert_eq!(counter(&metrics, &series("failed")), 1.0, "{metrics}");
    assert!(counter(&metrics, &series("handled")) >= 500.0, "{metrics}");
    assert!(
        counter(&metrics, "gyre_redis_reconnects_total") >= 1.0,
        "{metrics}"
    );
    assert!(
        counter(
            &metrics,
            r#"gyre_outbound_requests_total{kind="redis",result="ok"}"#
        ) >= 1000.0,
        "{metrics}"
    );
}

#[test]
fn filters_keep_non_matching_messages_from_the_component() {
    let redis = RedisServer::start();
    let app = app(
        &redis,
        r#"[[trigger.redis]]
channel = "orders"
component = "sdk5"
filter = { type = "order.created" }
"#,
    );
    let gyre = Gyre::up(&app, &["--metrics-listen", "127.0.0.1:0"]);
    redis.wait_subscribed("orders");
    let messages = [
        r#"{"specversion":"1.0","type":"order.created","id":"1"}"#,
        r#"{"specversion":"1.0","type":"order.deleted","id":"2"}"#,
        "not json",
        r#"{"specversion":"1.0","type":"order.created","id":"3"}"#,
    ];
    for m in messages {
        redis.command(&["PUBLISH", "orders", m]);
    }
    wait_for_count(&redis, "sdk5:received", 2, &gyre);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(redis.int(&["GET", "sdk5:received"]), 2);
    let seen = redis.command(&["LRANGE", "sdk5:seen", "0", "-1"]);
    assert!(
        seen.contains(r#""id":"1""#) && seen.contains(r#""id":"3""#),
        "{seen}"
    );
    assert!(
        !seen.contains("order.deleted") && !seen.contains("not json"),
        "{seen}"
    );
    let metrics = metrics_text(&gyre);
    let series = |result: &str| {
        format!(
            r#"gyre_redis_messages_total{{component="sdk5",channel="orders",result="{result}"}}"#
        )
    };
    assert_eq!(counter(&metrics, &series("handled")), 2.0, "{metrics}");
    assert_eq!(counter(&metrics, &series("filtered")), 2.0, "{metrics}");
}
