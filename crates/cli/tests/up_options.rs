//! The rest of `spin up`'s surface, as Spin users call it: HTTPS with
//! `--tls-cert`/`--tls-key`, a subset of components with `-c`, a bare
//! `.wasm` with `-f`, `--find-free-port`, `--follow`, `--profile` and
//! `--direct-mounts`.

mod support;

use std::path::Path;
use std::process::Command;

use support::{Gyre, TestApp, gyre_command, shared_cache_dir};

fn cache_env() -> [(&'static str, String); 1] {
    [(
        "GYRE_CACHE_DIR",
        shared_cache_dir().to_str().expect("utf8").to_string(),
    )]
}

fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Gyre {
    let cache = cache_env();
    let mut full_env: Vec<(&str, &str)> = vec![(cache[0].0, cache[0].1.as_str())];
    full_env.extend_from_slice(env);
    Gyre::start(dir, args, &full_env)
}

/// A self-signed certificate for 127.0.0.1 and `localhost`, made by openssl.
fn certificate(dir: &Path) -> (String, String) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed for the TLS tests (apt-get install openssl)");
    assert!(
        status.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    (
        cert.to_str().expect("utf8").to_string(),
        key.to_str().expect("utf8").to_string(),
    )
}

/// `curl` against the test CA: (HTTP version, status, body).
fn curl(ca: &str, url: &str, version_flag: &str) -> (String, u16, String) {
    let output = Command::new("curl")
        .args(["-sS", "--cacert", ca, version_flag])
        .args(["-w", "\n%{http_version} %{http_code}", url])
        .output()
        .expect("curl is needed for the TLS tests");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "curl {url}: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (body, tail) = text.rsplit_once('\n').expect("curl's -w line");
    let (version, status) = tail.split_once(' ').expect("version and status");
    (
        version.to_string(),
        status.parse().expect("status"),
        body.to_string(),
    )
}

const HTTPS_APP: &str = r#"
spin_manifest_version = 2
[application]
name = "tls"
[[trigger.http]]
route = "/hello"
component = "hello"
[[trigger.http]]
route = "/py/..."
component = "py"
[component.hello]
source = "{guest:hello-wat}"
[component.py]
source = "{guest:py5-http}"
"#;

#[test]
fn https_serves_http2_and_http1_and_guests_see_https_urls() {
    let app = TestApp::new(HTTPS_APP);
    let (cert, key) = certificate(app.path());
    // The flags, and Spin's environment variables.
    let by_flags = start(
        app.path(),
        &[
            "up",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
        &[],
    );
    let by_env = start(
        app.path(),
        &["up", "--listen", "127.0.0.1:0"],
        &[("SPIN_TLS_CERT", &cert), ("SPIN_TLS_KEY", &key)],
    );
    for gyre in [&by_flags, &by_env] {
        assert!(
            gyre.base.starts_with("https://127.0.0.1:"),
            "{}",
            gyre.stdout()
        );
        assert!(
            gyre.stdout()
                .contains(&format!("  hello: {}/hello\n", gyre.base)),
            "{}",
            gyre.stdout()
        );
        // (curl flag, negotiated version by ALPN)
        for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
            let (got, status, body) = curl(&cert, &gyre.url("/hello"), flag);
            assert_eq!((got.as_str(), status), (version, 200), "{flag}");
            assert_eq!(body, "Hello, Gyre!\n");
        }
        let (_, status, headers) = curl(&cert, &gyre.url("/py/headers?x=1"), "--http2");
        assert_eq!(status, 200, "{headers}");
        let seen: serde_json::Value = serde_json::from_str(&headers).expect("json");
        let port = gyre.base.rsplit(':').next().expect("port");
        assert_eq!(
            seen["spin-full-url"],
            format!("https://127.0.0.1:{port}/py/headers?x=1"),
            "{seen}"
        );
    }
}

#[test]
fn tls_misconfiguration_is_a_clear_error() {
    let app = TestApp::new(HTTPS_APP);
    let (cert, key) = certificate(app.path());
    app.write(
        "not-a-key.pem",
        b"-----BEGIN NOTHING-----\n-----END NOTHING-----\n",
    );
    let run = |args: &[&str]| {
        let output = gyre_command()
            .current_dir(app.path())
            .args(["up", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("SPIN_TLS_CERT")
            .env_remove("SPIN_TLS_KEY")
            .output()
            .expect("run gyre");
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    // (arguments, what the error must say)
    let cases: &[(&[&str], &str)] = &[
        (&["--tls-cert", &cert], "--tls-key"),
        (&["--tls-key", &key], "--tls-cert"),
        (
            &["--tls-cert", &cert, "--tls-key", "not-a-key.pem"],
            "no usable private key",
        ),
        (
            &["--tls-cert", &key, "--tls-key", &key],
            "no certificate in it",
        ),
        (
            &["--tls-cert", "missing.pem", "--tls-key", &key],
            "cannot read the TLS certificate missing.pem",
        ),
    ];
    for (args, want) in cases {
        let stderr = run(args);
        assert!(stderr.contains(want), "{args:?}: want {want:?} in {stderr}");
    }
}

const CHAINING_APP: &str = r#"
spin_manifest_version = 2
[application]
name = "subset"
[[trigger.http]]
route = "/front/..."
component = "front"
[[trigger.http]]
route = "/back/..."
component = "back"
[[trigger.http]]
route = "/other"
component = "other"
[[trigger.http]]
route = "/static"
static_response = { body = "static" }
[component.front]
source = "{guest:py5-state}"
allowed_outbound_hosts = ["http://back.spin.internal"]
[component.back]
source = "{guest:py5-state}"
[component.other]
source = "{guest:hello-wat}"
"#;

#[test]
fn component_id_runs_a_subset_and_refuses_to_cut_a_chain() {
    let app = TestApp::new(CHAINING_APP);
    let only_other = Gyre::up(&app, &["-c", "other"]);
    let listing = only_other.stdout();
    assert!(listing.contains("  other: "), "{listing}");
    assert!(
        !listing.contains("front") && !listing.contains("back"),
        "{listing}"
    );
    assert_eq!(only_other.get("/other").status, 200);
    assert_eq!(only_other.get("/front/hello").status, 404);

    let chain = Gyre::up(&app, &["-c", "front", "--component-id", "back"]);
    let r = chain.get("/front/fetch?url=http://back.spin.internal/hello");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "hello"),
        "{}",
        chain.stderr()
    );
    assert_eq!(chain.get("/other").status, 404);

    // (arguments, what the error must say)
    let cases: &[(&[&str], &str)] = &[
        (
            &["-c", "front"],
            "component `front` may call component `back` (`http://back.spin.internal` in its allowed_outbound_hosts), which --component-id leaves out; add `-c back`",
        ),
        (
            &["-c", "nope", "-c", "other"],
            "--component-id names `nope` the app does not have; its components are: front, back, other",
        ),
    ];
    for (args, want) in cases {
        let stderr = support::up_fails(&app, args);
        assert!(stderr.contains(want), "{args:?}: want {want:?} in {stderr}");
    }
}

#[test]
fn a_bare_wasm_file_serves_every_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = dir.path().join("Hello_World.wasm");
    std::fs::copy(support::guest("hello-wat"), &wasm).expect("copy guest");
    let gyre = start(
        dir.path(),
        &["up", "--listen", "127.0.0.1:0", "-f", "Hello_World.wasm"],
        &[],
    );
    assert!(
        gyre.stdout()
            .contains(&format!("  hello-world: {} (wildcard)", gyre.base)),
        "{}",
        gyre.stdout()
    );
    for path in ["/", "/any/path?q=1"] {
        let r = gyre.get(path);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "Hello, Gyre!\n"),
            "{path}"
        );
    }
}

#[test]
fn find_free_port_moves_past_a_port_in_use() {
    let app = TestApp::new(HTTPS_APP);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let listen = format!("127.0.0.1:{port}");

    let output = gyre_command()
        .current_dir(app.path())
        .args(["up", "--listen", &listen])
        .output()
        .expect("run gyre");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{listen} is already in use. To have Gyre search for a free port, use the --find-free-port option"
        )),
        "{stderr}"
    );

    let gyre = start(
        app.path(),
        &["up", "--listen", &listen, "--find-free-port"],
        &[],
    );
    let bound: u16 = gyre
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    assert!(bound > port && bound < port + 10, "{port} → {bound}");
    assert_eq!(gyre.get("/hello").status, 200);
}

#[test]
fn follow_echoes_only_the_named_components() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "follow"
[[trigger.http]]
route = "/a/..."
component = "a"
[[trigger.http]]
route = "/b/..."
component = "b"
[component.a]
source = "{guest:py5-http}"
[component.b]
source = "{guest:py5-http}"
"#,
    );
    let gyre = Gyre::up(&app, &["--follow", "b"]);
    for path in ["/a/raise", "/b/raise"] {
        assert_eq!(gyre.get(path).status, 500, "{path}");
    }
    // Both tracebacks went to the log files; only b's to the terminal.
    let stderr = wait_for(&gyre, "[b] RuntimeError");
    assert!(!stderr.contains("[a] "), "{stderr}");
    let logs = app.path().join(".spin/logs");
    for id in ["a", "b"] {
        let log =
            std::fs::read_to_string(logs.join(format!("{id}_stderr.txt"))).unwrap_or_default();
        assert!(
            log.contains("RuntimeError: this route raises on purpose"),
            "{id}: {log}"
        );
    }
}

/// Stderr once it contains `needle` (guest output is written by a thread).
fn wait_for(gyre: &Gyre, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stderr = gyre.stderr();
        if stderr.contains(needle) || std::time::Instant::now() > deadline {
            assert!(stderr.contains(needle), "want {needle:?} in {stderr}");
            return stderr;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn profile_switches_source_and_build_command() {
    let app = TestApp::new(
        r#"spin_manifest_version = 2
[application]
name = "profiles"
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "{guest:hello-wat}"
environment = { MODE = "release" }
[component.web.build]
command = "echo release > built.txt"
[component.web.profile.spin1]
source = "{guest:spin1}"
build.command = "echo spin1 > built.txt"
"#,
    );
    let dir = app.path();
    assert_eq!(
        start(dir, &["up", "--listen", "127.0.0.1:0"], &[])
            .get("/hello")
            .text(),
        "Hello, Gyre!\n"
    );
    let profiled = start(
        dir,
        &["up", "--listen", "127.0.0.1:0", "--profile", "spin1"],
        &[],
    );
    assert_eq!(
        profiled.get("/hello").text(),
        "Hello from a Spin 1.x module"
    );
    drop(profiled);

    let build = gyre_command()
        .current_dir(dir)
        .args(["build", "--profile", "spin1"])
        .output()
        .expect("run gyre build");
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let built = std::fs::read_to_string(dir.join("built.txt")).expect("built.txt");
    assert_eq!(built.trim(), "spin1");

    let unknown = gyre_command()
        .current_dir(dir)
        .args(["up", "--listen", "127.0.0.1:0", "--profile", "fast"])
        .output()
        .expect("run gyre up");
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Profile fast is not defined in this application")
            && stderr.contains("profiles defined: spin1"),
        "{stderr}"
    );
}

#[test]
fn direct_mounts_serve_directories_in_place_and_refuse_what_cannot_be_mounted() {
    let manifest = |files: &str| {
        format!(
            r#"spin_manifest_version = 2
[application]
name = "mounts"
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "{{guest:py5-http}}"
{files}
"#
        )
    };
    let app = TestApp::new(&manifest(
        r#"files = ["static", { source = "assets", destination = "/mounted" }]"#,
    ));
    app.write("static/page.txt", b"first");
    app.write("assets/logo.txt", b"logo");
    let gyre = start(
        app.path(),
        &["up", "--listen", "127.0.0.1:0", "--direct-mounts"],
        &[],
    );
    assert_eq!(gyre.get("/file/static/page.txt").text(), "first");
    assert_eq!(gyre.get("/file/mounted/logo.txt").text(), "logo");
    // Mounted, not copied: an edit is seen by the next request.
    app.write("static/page.txt", b"edited");
    assert_eq!(gyre.get("/file/static/page.txt").text(), "edited");
    drop(gyre);

    for (files, wanted) in [
        (r#"files = ["static/page.txt"]"#, "is not a directory"),
        (r#"files = ["static/*.txt"]"#, "is not a directory"),
        (
            "files = [\"static\"]\nexclude_files = [\"static/x\"]",
            "`exclude_files` cannot be used with `--direct-mounts`",
        ),
    ] {
        let refused = TestApp::new(&manifest(files));
        refused.write("static/page.txt", b"first");
        let stderr = support::up_fails(&refused, &["--direct-mounts"]);
        assert!(stderr.contains(wanted), "{files}: {stderr}");
    }
}

const PY5_APP: &str = r#"spin_manifest_version = 2
[application]
name = "reuse"
[[trigger.http]]
route = "/..."
component = "py"
[component.py]
source = "{guest:py5-http}"
"#;

/// `/instance` of the Python SDK 5 guest: (instance id, requests it has served).
fn instance(gyre: &Gyre) -> (String, u32) {
    let r = gyre.get("/instance");
    assert_eq!(r.status, 200, "{}", r.text());
    parse_instance(&r.text())
}

fn parse_instance(text: &str) -> (String, u32) {
    let (id, served) = text
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("not `<id> <served>`: {text:?}"));
    (id.to_string(), served.parse().expect("a count"))
}

#[test]
fn wasi_p3_instances_are_reused_as_spins_reuse_flags_say() {
    let app = TestApp::new(PY5_APP);
    let served =
        |gyre: &Gyre, n: usize| -> Vec<(String, u32)> { (0..n).map(|_| instance(gyre)).collect() };

    // Spin's defaults: one instance serves requests one after another.
    let gyre = Gyre::up(&app, &[]);
    let seen = served(&gyre, 5);
    assert_eq!(
        seen.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5],
        "{seen:?}"
    );
    assert!(seen.iter().all(|(id, _)| *id == seen[0].0), "{seen:?}");
    drop(gyre);

    // An instance retires after 3 requests and a fresh one takes over.
    let gyre = Gyre::up(&app, &["--max-instance-reuse-count", "3"]);
    let seen = served(&gyre, 7);
    assert_eq!(
        seen.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        [1, 2, 3, 1, 2, 3, 1],
        "{seen:?}"
    );
    let ids: std::collections::BTreeSet<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), 3, "three instances: {seen:?}");
    drop(gyre);

    // A range draws each instance's count: every run of counts stays below 3.
    let gyre = Gyre::up(&app, &["--max-instance-reuse-count", "1..3"]);
    let seen = served(&gyre, 12);
    assert!(seen.iter().all(|(_, n)| *n <= 2), "{seen:?}");
    assert_eq!(seen[0].1, 1, "{seen:?}");
    drop(gyre);

    // An idle instance is dropped after the idle timeout.
    let gyre = Gyre::up(&app, &["--idle-instance-timeout", "100ms"]);
    let first = instance(&gyre);
    std::thread::sleep(std::time::Duration::from_millis(600));
    let second = instance(&gyre);
    assert_eq!((first.1, second.1), (1, 1), "{first:?} {second:?}");
    assert_ne!(first.0, second.0);
}

/// Sends `POST /instance` with a body it holds back until told to finish.
struct HeldRequest(std::net::TcpStream);

impl HeldRequest {
    fn start(gyre: &Gyre) -> HeldRequest {
        use std::io::Write as _;
        let authority = gyre.base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(authority).expect("connect");
        write!(
            stream,
            "POST /instance HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nhe"
        )
        .expect("send head");
        HeldRequest(stream)
    }

    /// Sends the rest of the body: (instance id, requests it has served).
    fn finish(mut self) -> (String, u32) {
        use std::io::{Read as _, Write as _};
        self.0.write_all(b"ld").expect("send body");
        let mut response = String::new();
        self.0.read_to_string(&mut response).expect("read");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let (_, body) = response.split_once("\r\n\r\n").expect("a body");
        parse_instance(body)
    }
}

#[test]
fn concurrent_reuse_count_one_gives_each_request_in_flight_its_own_instance() {
    let app = TestApp::new(PY5_APP);
    let gyre = Gyre::up(
        &app,
        &[
            "--max-instance-concurrent-reuse-count",
            "1",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    // A warm instance, idle: under the default (16 at once) all three
    // requests below would go to it.
    let (warm, _) = instance(&gyre);
    let held: Vec<HeldRequest> = (0..3).map(|_| HeldRequest::start(&gyre)).collect();
    // All three are inside instances (each waiting for its body) before any finishes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let live = support::counter(&support::metrics_text(&gyre), "gyre_instances_live ");
        if live >= 3.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {live} instances live for 3 requests in flight:\n{}",
            gyre.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let seen: Vec<(String, u32)> = held.into_iter().map(HeldRequest::finish).collect();
    let ids: std::collections::BTreeSet<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), 3, "{seen:?}");
    assert!(
        ids.contains(warm.as_str()),
        "the warm instance took one: {warm} {seen:?}"
    );
}

#[test]
fn reuse_flags_refuse_what_they_cannot_mean() {
    let app = TestApp::new(PY5_APP);
    let cases = [
        ("--max-instance-reuse-count", "0", "0 is too few"),
        (
            "--max-instance-reuse-count",
            "5..5",
            "`5..5` is an empty range",
        ),
        (
            "--max-instance-concurrent-reuse-count",
            "lots",
            "`lots` is not a whole number",
        ),
        (
            "--idle-instance-timeout",
            "2s..1s",
            "`2s..1s` is an empty range",
        ),
        (
            "--idle-instance-timeout",
            "1h",
            "`h` is not a duration unit",
        ),
    ];
    for (flag, value, expected) in cases {
        let output = gyre_command()
            .current_dir(app.path())
            .args(["up", "--listen", "127.0.0.1:0", flag, value])
            .output()
            .expect("run gyre");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains(expected),
            "{flag} {value}: {stderr}"
        );
    }
}
