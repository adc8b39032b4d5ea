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
