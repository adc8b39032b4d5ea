//! Hostile guests and hostile clients against a real `gyre up`.
//!
//! Each attack runs while "bystanders" — well-behaved clients on their own
//! threads — keep calling a well-behaved component of the same app. Every
//! case checks what the attacker gets (504, 500, 503, 413, 431…), that
//! every bystander request succeeded during the attack, that the server
//! still answers afterwards, and that the log names the component and the
//! limit it hit. Timing figures belong to `benches/hostile.sh`, not here.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::servers::Upstream;
use support::{Gyre, TestApp, request};

/// Well-behaved clients calling `path` in a loop until stopped.
struct Bystanders {
    started: Instant,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Vec<Result<u16, String>>>>,
}

impl Bystanders {
    fn start(url: &str, threads: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                let url = url.to_string();
                std::thread::spawn(move || {
                    let agent = support::agent();
                    let mut results = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        results.push(match agent.get(&url).call() {
                            Ok(r) => Ok(r.status()),
                            Err(ureq::Error::Status(s, _)) => Ok(s),
                            Err(e) => Err(e.to_string()),
                        });
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    results
                })
            })
            .collect();
        Bystanders {
            started: Instant::now(),
            stop,
            threads,
        }
    }

    /// Stops them; panics unless every request they made got a 200.
    fn finish(self, attack: &str) -> usize {
        // Quick attacks still overlap some well-behaved traffic.
        if let Some(rest) = Duration::from_millis(300).checked_sub(self.started.elapsed()) {
            std::thread::sleep(rest);
        }
        self.stop.store(true, Ordering::Relaxed);
        let mut served = 0;
        for thread in self.threads {
            for result in thread.join().expect("bystander thread") {
                match result {
                    Ok(200) => served += 1,
                    other => panic!("{attack}: a well-behaved request got {other:?}"),
                }
            }
        }
        assert!(served > 0, "{attack}: no well-behaved request was served");
        served
    }
}

/// Attacks burn whole cores on purpose and the other cases measure
/// deadlines: run one case at a time, so that one case's attack never
/// starves another's deadline (on two cores, a spinning guest and its
/// bystanders in one test left another test's guest under half a core).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static CORES: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CORES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn wait_for_log(gyre: &Gyre, needle: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !gyre.stderr().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "{what}: the log never said {needle:?}:\n{}",
            gyre.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An app with the hostile component on `/...` and a well-behaved
/// component (same code, its own instances) on `/bystander/...`.
fn hostile_app(guest: &str, upstream: u16, limits: &str) -> TestApp {
    let app = TestApp::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "hostile"
[[trigger.http]]
route = "/..."
component = "hostile"
[[trigger.http]]
route = "/bystander/..."
component = "bystander"
[component.hostile]
source = "{{guest:{guest}}}"
allowed_outbound_hosts = ["http://127.0.0.1:{upstream}"]
[component.bystander]
source = "{{guest:{guest}}}"
"#
    ));
    app.write("runtime-config.toml", limits.as_bytes());
    app
}

const GUEST_LIMITS: &str = r#"
[limits]
request_timeout = "8s"
cpu_timeout = "4s"
max_instance_memory = "64MiB"
max_output = "1MiB"
"#;

/// (attack, path, acceptable statuses, expected log line pieces).
type Attack = (
    &'static str,
    String,
    &'static [u16],
    &'static [&'static str],
);

fn guest_attacks(upstream: u16, wasi_p3: bool) -> Vec<Attack> {
    let mut attacks: Vec<Attack> = vec![
        (
            "infinite loop",
            "/loop".into(),
            &[504],
            &["component `hostile` used more than 4s of CPU time"],
        ),
        (
            "allocate until it fails",
            "/alloc".into(),
            &[500],
            &[
                "component `hostile` tried to grow a memory",
                "the limit is 64 MiB",
            ],
        ),
        (
            "1 GiB to stdout",
            "/stdout?mib=1024".into(),
            // Through WASI 0.2 Python writes 4 KiB per host call: a slow
            // (debug) build may reach the CPU deadline first. Either way
            // only 1 MiB reaches the log.
            &[200, 504],
            &["component `hostile` wrote more than 1048576 bytes of output in one request"],
        ),
        (
            "100k response headers",
            "/headers?n=100000".into(),
            &[500],
            &["hostile", "request /headers failed"],
        ),
        (
            "2000 outbound requests at once",
            format!("/fanout?n=2000&url=http://127.0.0.1:{upstream}/fan"),
            // The WASI 0.2 Python SDK polls every pending request on each
            // turn of its loop (quadratic): it may run out of CPU time
            // before the 2000 answers are in.
            if wasi_p3 { &[200] } else { &[200, 504] },
            &[],
        ),
    ];
    if wasi_p3 {
        attacks.push((
            "sleeps past the request deadline",
            "/sleep?s=3600".into(),
            &[504],
            &["component `hostile` had not answered", "request_timeout"],
        ));
    }
    attacks
}

fn run_guest_attacks(guest: &str, wasi_p3: bool) {
    let upstream = Upstream::start();
    let app = hostile_app(guest, upstream.port, GUEST_LIMITS);
    let gyre = Gyre::up(
        &app,
        &["--runtime-config-file", "runtime-config.toml", "-q"],
    );
    assert_eq!(gyre.get("/bystander/ok").status, 200);
    for (attack, path, status, log) in guest_attacks(upstream.port, wasi_p3) {
        let bystanders = Bystanders::start(&gyre.url("/bystander/ok"), 3);
        let response = request("GET", &gyre.url(&path), &[], None);
        assert!(
            status.contains(&response.status),
            "{guest}: {attack}: got {}, want one of {status:?}\n{}",
            response.status,
            gyre.stderr()
        );
        for piece in log {
            wait_for_log(&gyre, piece, attack);
        }
        if path.starts_with("/fanout") && response.status == 200 {
            // Every request was sent (queued for one of the app's 256
            // outbound slots), and they did not open a socket each: at
            // most 256 are in flight, plus connections still on their
            // way back to the pool when the next request starts.
            let tally: serde_json::Value =
                serde_json::from_slice(&response.body).expect("fanout tally");
            assert_eq!(tally["200"], 2000, "{guest}: {attack}: {tally}");
            assert!(
                upstream.peak_open() <= 320,
                "{guest}: {attack}: {} upstream connections open at once",
                upstream.peak_open()
            );
        }
        let served = bystanders.finish(attack);
        eprintln!("{guest}: {attack}: {served} well-behaved requests served during the attack");
        // The attacked component itself recovers: a fresh instance serves.
        assert_eq!(gyre.get("/ok").status, 200, "{guest}: after {attack}");
    }
}

#[test]
fn hostile_wasi_p3_guests_cost_only_their_own_requests() {
    let _cores = one_at_a_time();
    run_guest_attacks("py5-hostile", true);
}

#[test]
fn hostile_wasi_p2_guests_cost_only_their_own_requests() {
    let _cores = one_at_a_time();
    run_guest_attacks("py3-hostile", false);
}

#[test]
fn a_full_server_queues_then_answers_503_with_retry_after() {
    let _cores = one_at_a_time();
    let upstream = Upstream::start();
    let app = hostile_app(
        "py5-hostile",
        upstream.port,
        r#"
[limits]
max_concurrent_requests = 2
max_queued_requests = 1
queue_timeout = "500ms"
request_timeout = "3s"
"#,
    );
    let gyre = Gyre::up(
        &app,
        &["--runtime-config-file", "runtime-config.toml", "-q"],
    );
    let sleeper =
        |gyre_url: String| std::thread::spawn(move || request("GET", &gyre_url, &[], None).status);
    // Two requests take both slots for three seconds (then 504).
    let busy: Vec<_> = (0..2).map(|_| sleeper(gyre.url("/sleep?s=10"))).collect();
    std::thread::sleep(Duration::from_millis(500));
    // The third waits in the queue, the fourth finds it full.
    let queued = sleeper(gyre.url("/ok"));
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let refused = request("GET", &gyre.url("/ok"), &[], None);
    assert_eq!(refused.status, 503, "{}", gyre.stderr());
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "queue full: refused at once"
    );
    let queued = queued.join().expect("queued");
    assert_eq!(queued, 503, "the queued request times out after 500 ms");
    for b in busy {
        assert_eq!(b.join().expect("busy"), 504);
    }
    // Slots free again: served.
    assert_eq!(gyre.get("/ok").status, 200, "{}", gyre.stderr());
    let log = gyre.stderr();
    assert!(
        log.contains("max_queued_requests") && log.contains("queue_timeout"),
        "{log}"
    );
}

#[test]
fn request_bodies_over_the_limit_get_413_or_are_cut_off() {
    let _cores = one_at_a_time();
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "bodies"
[[trigger.http]]
route = "/small/..."
component = "small"
[[trigger.http]]
route = "/large/..."
component = "large"
[component.small]
source = "{guest:py5-http}"
[component.large]
source = "{guest:py5-http}"
"#,
    );
    app.write(
        "runtime-config.toml",
        b"[limits]\nmax_request_body = \"64KiB\"\n[limits.component.large]\nmax_request_body = \"1MiB\"\n",
    );
    let gyre = Gyre::up(
        &app,
        &["--runtime-config-file", "runtime-config.toml", "-q"],
    );
    let body = vec![b'x'; 100 << 10];
    // Refused on its Content-Length, before the body is sent or read.
    let mut stream = connect(&gyre);
    stream
        .write_all(b"POST /small/echo HTTP/1.1\r\nhost: x\r\ncontent-length: 102400\r\nexpect: 100-continue\r\n\r\n")
        .expect("write head");
    let answer = read_all(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(gyre.post("/large/echo", &body).status, 200);
    // Without a Content-Length (chunked), the body is cut off at the limit
    // and the request answered 413 whatever the guest made of it.
    let chunked = request_chunked(&gyre, "/small/echo", &body);
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    assert_eq!(gyre.post("/small/echo", b"tiny").status, 200);
    assert!(
        gyre.stderr().contains("max_request_body"),
        "{}",
        gyre.stderr()
    );
}

fn request_chunked(gyre: &Gyre, path: &str, body: &[u8]) -> String {
    let mut stream = connect(gyre);
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(8192) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let _ = stream.write_all(&req);
    read_all(&mut stream)
}

fn connect(gyre: &Gyre) -> TcpStream {
    let addr = gyre.base.trim_start_matches("http://").to_string();
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

/// Everything the server sends until it closes the connection (or 10 s).
fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Raw requests a hostile client sends, with the status line expected
/// back ("" when the server may only close the connection).
fn malformed_requests() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let mut many_headers = b"GET / HTTP/1.1\r\nhost: x\r\n".to_vec();
    for i in 0..200 {
        many_headers.extend_from_slice(format!("x-h-{i}: v\r\n").as_bytes());
    }
    many_headers.extend_from_slice(b"\r\n");
    let mut huge_header = b"GET / HTTP/1.1\r\nhost: x\r\nx-big: ".to_vec();
    huge_header.extend(std::iter::repeat_n(b'a', 100 << 10));
    huge_header.extend_from_slice(b"\r\n\r\n");
    let long_uri =
        format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(10 << 10)).into_bytes();
    vec![
        ("200 headers", many_headers, "HTTP/1.1 431"),
        ("a 100 KiB header", huge_header, "HTTP/1.1 431"),
        ("a 10 KiB URI", long_uri, "HTTP/1.1 414"),
        ("not HTTP", b"GARBAGE\r\n\r\n".to_vec(), "HTTP/1.1 400"),
        (
            "bad content-length",
            b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
        (
            "two content-lengths",
            b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab"
                .to_vec(),
            "HTTP/1.1 400",
        ),
        (
            "binary junk",
            vec![0u8, 159, 146, 150, 255, 13, 10, 13, 10],
            "",
        ),
        ("a bare newline flood", vec![b'\n'; 100 << 10], ""),
    ]
}

#[test]
fn hostile_clients_get_4xx_or_a_closed_connection_and_others_are_served() {
    let _cores = one_at_a_time();
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "clients"
[[trigger.http]]
route = "/..."
component = "hello"
[component.hello]
source = "{guest:hello-wat}"
"#,
    );
    app.write(
        "runtime-config.toml",
        b"[limits]\nheader_read_timeout = \"1s\"\nmax_header_bytes = \"16KiB\"\nmax_uri_length = 2048\n",
    );
    let gyre = Gyre::up(
        &app,
        &["--runtime-config-file", "runtime-config.toml", "-q"],
    );

    for (attack, bytes, expected) in malformed_requests() {
        let bystanders = Bystanders::start(&gyre.url("/"), 2);
        let started = Instant::now();
        let mut stream = connect(&gyre);
        let _ = stream.write_all(&bytes);
        let answer = read_all(&mut stream);
        // The connection is closed, at the latest when the head's second
        // (`header_read_timeout = 1s`) runs out.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{attack}: connection left open"
        );
        assert!(
            answer.starts_with(expected),
            "{attack}: want {expected:?}, got {:?}",
            answer.chars().take(80).collect::<String>()
        );
        bystanders.finish(attack);
    }

    // Slowloris: 200 connections trickle a request head one byte at a
    // time. Each is closed when its second to send the head runs out, and
    // bystanders are served all along.
    let bystanders = Bystanders::start(&gyre.url("/"), 2);
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = connect(&gyre);
            let _ = s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n");
            s
        })
        .collect();
    let mut closed = vec![false; slow.len()];
    while closed.contains(&false) && started.elapsed() < Duration::from_secs(10) {
        for (s, closed) in slow.iter_mut().zip(closed.iter_mut()) {
            if *closed {
                continue;
            }
            if s.write_all(b"x").is_err() {
                *closed = true;
                continue;
            }
            s.set_nonblocking(true).expect("nonblocking");
            let mut buf = [0u8; 256];
            // EOF, or a 408 before the close.
            *closed = s.read(&mut buf).is_ok();
            s.set_nonblocking(false).expect("blocking");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let open = closed.iter().filter(|c| !**c).count();
    assert_eq!(open, 0, "slowloris connections still open after 10 s");
    bystanders.finish("slowloris");

    // Idle keep-alive connections are closed too.
    let started = Instant::now();
    let mut idle = connect(&gyre);
    idle.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("write");
    let answer = read_all(&mut idle);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an idle keep-alive connection was left open"
    );
    assert_eq!(gyre.get("/").status, 200);
}

#[test]
fn an_exhausted_instance_pool_is_503_with_retry_after_not_500() {
    let _cores = one_at_a_time();
    // One instance slot, and a Python component needs more core instances
    // than one slot's share of the pool: every instantiation finds the pool
    // full, as a server at its instance cap would.
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "pool"
[[trigger.http]]
route = "/..."
component = "py"
[component.py]
source = "{guest:py3-hostile}"
"#,
    );
    let cache = support::shared_cache_dir();
    let gyre = Gyre::up_with(
        &app,
        &["-q"],
        &[
            ("GYRE_CACHE_DIR", cache.to_str().expect("utf8")),
            ("SPIN_WASMTIME_INSTANCE_COUNT", "1"),
        ],
    );
    let response = gyre.get("/ok");
    assert_eq!(response.status, 503, "{}", gyre.stderr());
    assert_eq!(response.header("retry-after"), Some("1"));
    wait_for_log(&gyre, "every instance slot is in use", "pool exhausted");
}
