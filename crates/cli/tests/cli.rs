//! The `gyre` command itself: errors, the compile cache, signals, help.

mod support;

use std::process::Stdio;

use support::{Gyre, TestApp, gyre_command};

fn run_up(app: &TestApp, args: &[&str]) -> (i32, String) {
    let out = gyre_command()
        .current_dir(app.path())
        .arg("up")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run gyre");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn invalid_manifests_fail_with_the_place_and_a_fix() {
    // (manifest, pieces of the error)
    let cases: &[(&str, &[&str])] = &[
        (
            "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"web\"\n[component.api]\nsource = \"a.wasm\"\n",
            &[
                "spin.toml:6:13",
                "component `web` is used by trigger #1 but not defined",
                "defined: api",
            ],
        ),
        (
            "spin_manifest_version = 2\n[application]\nname = \"x\"\nflavour = \"y\"\n[[trigger.http]]\nroute = \"/\"\nstatic_response = {}\n",
            &[
                "spin.toml:4:1",
                "`application.flavour`: unknown field",
                "valid fields here",
            ],
        ),
        (
            "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"web\"\n[component.web]\nsource = \"missing.wasm\"\n",
            &[
                "spin.toml:8:10",
                "`component.web.source`: cannot read",
                "missing.wasm",
                "relative to the manifest",
            ],
        ),
    ];
    for (manifest, pieces) in cases {
        let app = TestApp::new(manifest);
        let (code, stderr) = run_up(&app, &[]);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.starts_with("Error: "), "{stderr}");
        for piece in *pieces {
            assert!(stderr.contains(piece), "expected {piece:?} in:\n{stderr}");
        }
    }
}

#[test]
fn a_component_without_an_http_handler_is_refused_at_load() {
    let app = TestApp::new(
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/\"\ncomponent = { source = \"{guest:wagi-c}\" }\n",
    );
    let (code, stderr) = run_up(&app, &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("exports no HTTP handler"), "{stderr}");
    assert!(
        stderr.contains("wagi"),
        "the error suggests the WAGI executor: {stderr}"
    );
}

#[test]
fn a_second_start_reuses_compiled_code() {
    let cache = tempfile::tempdir().expect("cache dir");
    let cache_dir = cache.path().to_str().expect("utf8");
    let app = TestApp::new(
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n[component.hello]\nsource = \"{guest:hello-wat}\"\n",
    );
    let first = Gyre::up_with(&app, &["-q"], &[("GYRE_CACHE_DIR", cache_dir)]);
    assert_eq!(first.get("/").status, 200);
    assert!(
        first
            .stderr()
            .contains("component `hello` (wasi:http/incoming-handler@0.2): compiled and cached"),
        "{}",
        first.stderr()
    );
    drop(first);
    let second = Gyre::up_with(&app, &["-q"], &[("GYRE_CACHE_DIR", cache_dir)]);
    assert_eq!(second.get("/").status, 200);
    assert!(
        second.stderr().contains(
            "component `hello` (wasi:http/incoming-handler@0.2): compiled code loaded from cache"
        ),
        "{}",
        second.stderr()
    );
    let disabled = Gyre::up_with(
        &app,
        &["-q", "--disable-cache"],
        &[("GYRE_CACHE_DIR", cache_dir)],
    );
    assert!(
        disabled.stderr().contains("compiled (cache off)"),
        "{}",
        disabled.stderr()
    );
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let app = TestApp::new(
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = { source = \"{guest:hello-wat}\" }\n",
    );
    let gyre = Gyre::up(&app, &["-q"]);
    assert_eq!(gyre.get("/").status, 200);
    let stderr = gyre.stderr.clone();
    let status = gyre.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(stderr.lock().expect("lock").contains("shutting down"));
}

#[test]
fn port_in_use_is_explained() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let app = TestApp::new(
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/\"\nstatic_response = {}\n",
    );
    let out = gyre_command()
        .current_dir(app.path())
        .args(["up", "--listen", &addr])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already in use"), "{stderr}");
}

#[test]
fn missing_manifest_is_explained() {
    let dir = tempfile::tempdir().expect("dir");
    let out = gyre_command()
        .current_dir(dir.path())
        .arg("up")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Default file 'spin.toml' not found"),
        "{stderr}"
    );
}

#[test]
fn help_and_version() {
    let out = gyre_command().arg("--version").output().expect("run");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("gyre "));
    let out = gyre_command().args(["up", "--help"]).output().expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--from",
        "--listen",
        "--env",
        "--state-dir",
        "--log-dir",
        "--disable-cache",
        "--format",
        "--quiet",
        "Examples:",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn remote_sources_are_checked_against_their_digest() {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(support::guest("hello-wat")).expect("guest");
    let digest = hex::encode(Sha256::digest(&bytes));
    let cache = tempfile::tempdir().expect("cache");
    let compile_cache = cache.path().join("compiled");
    let env = [("GYRE_CACHE_DIR", compile_cache.to_str().expect("utf8"))];

    let url = support::servers::serve_bytes(bytes.clone(), 1);
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"remote\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"remote\"\n\
         [component.remote]\nsource = {{ url = \"{url}\", digest = \"sha256:{digest}\" }}\n"
    );
    let app = TestApp::new(&manifest);
    let gyre = Gyre::up_with(&app, &["-q"], &env);
    assert_eq!(gyre.get("/").text(), "Hello, Gyre!\n");
    drop(gyre);
    // The server answered once: the second start uses the downloaded copy.
    let again = Gyre::up_with(&app, &["-q"], &env);
    assert_eq!(again.get("/").status, 200);
    drop(again);

    let wrong = "0".repeat(64);
    let url = support::servers::serve_bytes(bytes, 1);
    let app = TestApp::new(&format!(
        "spin_manifest_version = 2\n[application]\nname = \"remote\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"remote\"\n\
         [component.remote]\nsource = {{ url = \"{url}\", digest = \"sha256:{wrong}\" }}\n"
    ));
    let out = gyre_command()
        .current_dir(app.path())
        .args(["up", "--listen", "127.0.0.1:0"])
        .envs(env)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "has digest sha256:{digest}, but the manifest expects sha256:{wrong}"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("spin.toml:8:10"), "{stderr}");
}

#[test]
fn version_1_manifests_run() {
    let app = TestApp::new(
        "spin_manifest_version = \"1\"\nname = \"legacy\"\nversion = \"1.0.0\"\ntrigger = { type = \"http\", base = \"/\" }\n\
         [[component]]\nid = \"hello_world\"\nsource = \"{guest:hello-wat}\"\n[component.trigger]\nroute = \"/hello\"\n",
    );
    let gyre = Gyre::up(&app, &[]);
    assert_eq!(gyre.get("/hello").text(), "Hello, Gyre!\n");
    assert!(
        gyre.stdout().contains("  hello-world: "),
        "{}",
        gyre.stdout()
    );
    assert!(
        gyre.stderr().contains("version 1 manifest"),
        "{}",
        gyre.stderr()
    );
}
