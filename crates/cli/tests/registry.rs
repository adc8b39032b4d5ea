//! `gyre registry` against a real registry (Debian's `docker-registry`,
//! temporary storage, plain HTTP on loopback): Spin's artifact layout field
//! by field, push → pull → up, the archive layer, `{ url, digest }`
//! sources, tampered blobs, htpasswd login, `-k`, and starting with the
//! registry down.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::servers::Registry;
use support::{Gyre, TestApp, gyre_command, shared_cache_dir};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const WASM: &str = "application/vnd.wasm.content.layer.v1+wasm";
const DATA: &str = "application/vnd.wasm.content.layer.v1+data";
const ARCHIVE: &str = "application/vnd.wasm.content.bundle.v1.tar+gzip";
const LOCK: &str = "application/vnd.fermyon.spin.application.v1+config";

/// A user's home for one test: Docker config and registry cache of its own.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().expect("temp home"),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        let root = self.dir.path();
        vec![
            (
                "DOCKER_CONFIG".into(),
                root.join("docker").display().to_string(),
            ),
            (
                "GYRE_REGISTRY_CACHE_DIR".into(),
                root.join("registry-cache").display().to_string(),
            ),
            (
                "GYRE_CACHE_DIR".into(),
                shared_cache_dir().display().to_string(),
            ),
            // The website app's required variable.
            ("SPIN_VARIABLE_TOKEN".into(), "t0ken".into()),
        ]
    }

    /// Runs `gyre ARGS` in `dir` to completion.
    fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.run_with(dir, args, &[])
    }

    fn run_with(&self, dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut cmd = gyre_command();
        cmd.current_dir(dir).args(args);
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().expect("run gyre")
    }

    /// Runs `gyre ARGS`, which must succeed; returns stdout.
    fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let output = self.run(dir, args);
        assert!(
            output.status.success(),
            "gyre {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `gyre ARGS`, which must fail; returns stderr.
    fn fails(&self, dir: &Path, args: &[&str]) -> String {
        let output = self.run(dir, args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(1), "gyre {args:?}:\n{stderr}");
        stderr
    }

    /// `gyre up -f REFERENCE -k` until it serves.
    fn up(&self, reference: &str) -> Gyre {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Gyre::start(
            self.dir.path(),
            &["up", "--listen", "127.0.0.1:0", "-f", reference, "-k"],
            &env,
        )
    }

    fn cache_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("registry-cache")
    }
}

/// `GET` from the registry's distribution API.
fn registry_get(registry: &Registry, path: &str) -> Vec<u8> {
    let response = support::agent()
        .get(&format!("http://{}/v2/{path}", registry.addr()))
        .set("accept", OCI_MANIFEST)
        .call()
        .unwrap_or_else(|e| panic!("GET /v2/{path}: {e}"));
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).expect("read body");
    bytes
}

fn manifest(registry: &Registry, repository: &str, tag: &str) -> Value {
    serde_json::from_slice(&registry_get(
        registry,
        &format!("{repository}/manifests/{tag}"),
    ))
    .expect("manifest JSON")
}

fn media_types(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["mediaType"].as_str().expect("mediaType").to_string())
        .collect()
}

/// The lock carried by an artifact (its last layer).
fn lock(registry: &Registry, repository: &str, manifest: &Value) -> Value {
    let last = manifest["layers"]
        .as_array()
        .and_then(|l| l.last())
        .expect("a layer");
    assert_eq!(last["mediaType"], LOCK, "the lock is the last layer");
    let digest = last["digest"].as_str().expect("digest");
    serde_json::from_slice(&registry_get(
        registry,
        &format!("{repository}/blobs/{digest}"),
    ))
    .expect("lock JSON")
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// The website app: a Python component with files and environment, and a
/// WAT component, neither with anything the other has.
fn website() -> TestApp {
    let app = TestApp::new(
        r#"spin_manifest_version = 2

[application]
name = "website"
version = "1.2.3"
description = "files and two components"
authors = ["Ada <ada@example.com>", "Grace"]

[variables]
greeting = { default = "hi" }
token = { required = true, secret = true }

[[trigger.http]]
route = "/web/..."
component = "web"

[[trigger.http]]
route = "/hello"
component = "hello"

[component.web]
source = "{guest:py5-http}"
files = ["static/**/*", { source = "assets", destination = "/mounted" }]
environment = { GYRE_TEST_COLOUR = "teal" }
key_value_stores = ["default"]

[component.hello]
source = "{guest:hello-wat}"
"#,
    );
    app.write(
        "static/index.html",
        "<h1>website</h1>\n".repeat(20).as_bytes(),
    );
    app.write("static/tiny.txt", b"tiny");
    app.write("static/nested/deep.txt", "deep ".repeat(100).as_bytes());
    app.write("assets/logo.svg", "<svg/>".repeat(40).as_bytes());
    app
}

#[test]
fn an_app_with_components_and_files_travels_in_spins_layout_and_runs_from_the_registry() {
    let registry = Registry::start();
    let home = Home::new();
    let app = website();
    let reference = format!("{}/team/website:v1", registry.addr());
    let stdout = home.ok(
        app.path(),
        &[
            "registry",
            "push",
            "-k",
            "--annotation",
            "org.example.team=web",
            &reference,
        ],
    );
    let pushed_digest = stdout
        .trim()
        .strip_prefix("Pushed with digest ")
        .unwrap_or_else(|| panic!("digest line: {stdout}"))
        .to_string();

    // The layout: two Wasm layers, a data layer per file over 128 bytes
    // (tiny.txt is inlined), the lock last.
    let manifest = manifest(&registry, "team/website", "v1");
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(media_types(&manifest), [WASM, DATA, DATA, DATA, WASM, LOCK]);
    let annotations = &manifest["annotations"];
    assert_eq!(annotations["org.opencontainers.image.title"], "website");
    assert_eq!(annotations["org.opencontainers.image.version"], "1.2.3");
    assert_eq!(
        annotations["org.opencontainers.image.description"],
        "files and two components"
    );
    assert_eq!(
        annotations["org.opencontainers.image.authors"],
        "Ada <ada@example.com>, Grace"
    );
    assert_eq!(annotations["org.example.team"], "web");
    assert!(annotations["org.opencontainers.image.created"].is_string());

    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let config: Value = serde_json::from_slice(&registry_get(
        &registry,
        &format!("team/website/blobs/{config_digest}"),
    ))
    .expect("config JSON");
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "Wasip1", "as Spin writes it");
    let lock_digest = manifest["layers"][5]["digest"].clone();
    assert_eq!(
        config["config"]["Labels"]["com.fermyon.spin.lockedAppDigest"],
        lock_digest
    );

    let lock = lock(&registry, "team/website", &manifest);
    assert_eq!(lock["spin_lock_version"], 0);
    assert_eq!(lock["metadata"]["name"], "website");
    assert!(
        lock["metadata"].get("origin").is_none(),
        "origin is removed"
    );
    assert_eq!(lock["variables"]["greeting"]["default"], "hi");
    assert_eq!(lock["variables"]["token"]["secret"], true);
    assert_eq!(lock["triggers"][0]["trigger_type"], "http");
    assert_eq!(lock["triggers"][0]["trigger_config"]["route"], "/web/...");
    assert_eq!(lock["triggers"][0]["trigger_config"]["component"], "web");
    let web = &lock["components"][0];
    assert_eq!(web["id"], "web");
    assert_eq!(web["source"]["content_type"], "application/wasm");
    let wasm = std::fs::read(support::guest("py5-http")).expect("guest");
    assert_eq!(web["source"]["digest"], sha256(&wasm));
    assert_eq!(web["env"]["GYRE_TEST_COLOUR"], "teal");
    assert_eq!(web["metadata"]["key_value_stores"][0], "default");
    let files: Vec<(&str, bool)> = web["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| (f["path"].as_str().expect("path"), f.get("inline").is_some()))
        .collect();
    assert_eq!(
        files,
        [
            ("mounted/logo.svg", false),
            ("static/index.html", false),
            ("static/nested/deep.txt", false),
            ("static/tiny.txt", true),
        ]
    );
    let tiny = web["files"][3]["inline"].as_str().expect("inline");
    assert_eq!(tiny, "dGlueQ==", "inline content is base64");

    // Pulled and run: files where the manifest put them, both components.
    let pull = home.run(home.dir.path(), &["registry", "pull", "-k", &reference]);
    let pull_err = String::from_utf8_lossy(&pull.stderr);
    assert!(pull.status.success(), "{pull_err}");
    assert!(pull_err.contains(&pushed_digest), "{pull_err}");

    let up = home.up(&reference);
    assert_eq!(up.get("/hello").text(), "Hello, Gyre!\n");
    assert_eq!(up.get("/web/file/static/tiny.txt").text(), "tiny");
    assert_eq!(
        up.get("/web/file/static/index.html").text(),
        "<h1>website</h1>\n".repeat(20)
    );
    assert_eq!(
        up.get("/web/file/mounted/logo.svg").text(),
        "<svg/>".repeat(40)
    );
    assert_eq!(
        up.get("/web/file/static/nested/deep.txt").text(),
        "deep ".repeat(100)
    );
    assert!(up.get("/web/env").text().contains("teal"));
    assert!(
        !home
            .cache_dir()
            .join("apps")
            .read_dir()
            .expect("apps")
            .any(|e| e.expect("entry").path().join(".spin").exists()),
        "a registry app gets no state directory of its own"
    );
    drop(up);

    // The same artifact by digest, pulled once.
    let by_digest = format!("{}/team/website@{pushed_digest}", registry.addr());
    home.ok(home.dir.path(), &["registry", "pull", "-k", &by_digest]);

    // The registry down: the tag pulled before still starts (with a
    // warning), and a digest reference does not even ask.
    let mut registry = registry;
    registry.stop();
    let up = home.up(&reference);
    assert_eq!(up.get("/hello").text(), "Hello, Gyre!\n");
    assert!(up.stderr().contains("pulled before"), "{}", up.stderr());
    drop(up);
    let up = home.up(&by_digest);
    assert_eq!(up.get("/hello").text(), "Hello, Gyre!\n");
    assert!(!up.stderr().contains("cannot reach"), "{}", up.stderr());
    drop(up);

    // ...but never one that was not.
    let never = format!("{}/team/never:v1", registry.addr());
    let stderr = home.fails(home.dir.path(), &["up", "-f", &never, "-k"]);
    assert!(stderr.contains("cannot reach the registry"), "{stderr}");
}

#[test]
fn plain_http_needs_insecure_on_push_pull_and_up() {
    let registry = Registry::start();
    let home = Home::new();
    let app = TestApp::new(
        "spin_manifest_version = 2\n[application]\nname = \"hello\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n[component.hello]\nsource = \"{guest:hello-wat}\"\n",
    );
    let reference = format!("{}/team/hello:v1", registry.addr());
    for args in [
        vec!["registry", "push", reference.as_str()],
        vec!["registry", "pull", reference.as_str()],
        vec!["up", "-f", reference.as_str()],
    ] {
        let stderr = home.fails(app.path(), &args);
        assert!(stderr.contains("-k/--insecure"), "{args:?}: {stderr}");
    }
    home.ok(app.path(), &["registry", "push", "-k", &reference]);
    home.ok(app.path(), &["registry", "pull", "--insecure", &reference]);
    let up = home.up(&reference);
    assert_eq!(up.get("/").text(), "Hello, Gyre!\n");
}

#[test]
fn more_than_499_files_go_as_one_archive_layer() {
    let registry = Registry::start();
    let home = Home::new();
    let app = TestApp::new(
        "spin_manifest_version = 2\n[application]\nname = \"many\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n[component.web]\nsource = \"{guest:py5-http}\"\nfiles = [\"pages/**/*\"]\n",
    );
    for i in 0..520 {
        let body = format!("page {i} ").repeat(30);
        app.write(&format!("pages/p{i:03}.txt"), body.as_bytes());
    }
    app.write("pages/small.txt", b"small");
    let reference = format!("{}/team/many:v1", registry.addr());
    home.ok(app.path(), &["registry", "push", "-k", &reference]);

    let manifest = manifest(&registry, "team/many", "v1");
    assert_eq!(media_types(&manifest), [WASM, ARCHIVE, LOCK]);
    let lock = lock(&registry, "team/many", &manifest);
    let files = lock["components"][0]["files"].as_array().expect("files");
    assert_eq!(
        files.len(),
        521,
        "every file is still listed, with its digest"
    );
    assert!(files.iter().all(|f| f["digest"].is_string()));

    let up = home.up(&reference);
    assert_eq!(
        up.get("/file/pages/p517.txt").text(),
        "page 517 ".repeat(30)
    );
    assert_eq!(up.get("/file/pages/small.txt").text(), "small");
}

#[test]
fn archive_layers_can_be_asked_for_with_spins_variable() {
    let registry = Registry::start();
    let home = Home::new();
    let app = website();
    let reference = format!("{}/team/archived:v1", registry.addr());
    let output = home.run_with(
        app.path(),
        &["registry", "push", "-k", &reference],
        &[("SPIN_OCI_ARCHIVE_LAYERS", "1")],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest = manifest(&registry, "team/archived", "v1");
    assert_eq!(media_types(&manifest), [WASM, ARCHIVE, WASM, LOCK]);
    let up = home.up(&reference);
    assert_eq!(
        up.get("/web/file/mounted/logo.svg").text(),
        "<svg/>".repeat(40)
    );
}

#[test]
fn a_url_and_digest_source_is_pushed_as_its_bytes() {
    let registry = Registry::start();
    let home = Home::new();
    // The Wasm is downloaded from the registry's own blob endpoint.
    let first = TestApp::new(
        "spin_manifest_version = 2\n[application]\nname = \"first\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n[component.hello]\nsource = \"{guest:hello-wat}\"\n",
    );
    home.ok(
        first.path(),
        &[
            "registry",
            "push",
            "-k",
            &format!("{}/team/first:v1", registry.addr()),
        ],
    );
    let wasm = std::fs::read(support::guest("hello-wat")).expect("guest");
    let digest = sha256(&wasm);
    let url = format!("http://{}/v2/team/first/blobs/{digest}", registry.addr());
    let app = TestApp::new(&format!(
        "spin_manifest_version = 2\n[application]\nname = \"remote\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"remote\"\n[component.remote]\nsource = {{ url = \"{url}\", digest = \"{digest}\" }}\n"
    ));
    let reference = format!("{}/team/remote:v1", registry.addr());
    home.ok(app.path(), &["registry", "push", "-k", &reference]);
    let manifest = manifest(&registry, "team/remote", "v1");
    let lock = lock(&registry, "team/remote", &manifest);
    assert_eq!(lock["components"][0]["source"]["digest"], digest.as_str());
    assert_eq!(manifest["layers"][0]["digest"], digest.as_str());
    let up = home.up(&reference);
    assert_eq!(up.get("/").text(), "Hello, Gyre!\n");
}

#[test]
fn a_blob_altered_in_the_registry_is_refused_and_not_stored() {
    let registry = Registry::start();
    let home = Home::new();
    let app = website();
    let reference = format!("{}/team/tampered:v1", registry.addr());
    home.ok(app.path(), &["registry", "push", "-k", &reference]);
    let manifest = manifest(&registry, "team/tampered", "v1");
    let digest = manifest["layers"][1]["digest"]
        .as_str()
        .expect("data layer")
        .to_string();
    let data = registry.blob_data(&digest);
    let mut bytes = std::fs::read(&data).expect("blob in storage");
    bytes[0] ^= 0xff;
    std::fs::write(&data, bytes).expect("alter the blob");

    let stderr = home.fails(home.dir.path(), &["registry", "pull", "-k", &reference]);
    assert!(stderr.contains(&digest), "{stderr}");
    assert!(stderr.contains("does not match its digest"), "{stderr}");
    let stored = home
        .cache_dir()
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    assert!(!stored.exists(), "the altered blob was not stored");
    let stderr = home.fails(home.dir.path(), &["up", "-f", &reference, "-k"]);
    assert!(stderr.contains("does not match its digest"), "{stderr}");
}

#[test]
fn login_stores_credentials_where_docker_reads_them_and_push_and_pull_use_them() {
    let registry = Registry::with_login("alice", "s3cret-pass");
    let home = Home::new();
    let app = TestApp::new(
        "spin_manifest_version = 2\n[application]\nname = \"private\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n[component.hello]\nsource = \"{guest:hello-wat}\"\n",
    );
    let reference = format!("{}/alice/private:v1", registry.addr());
    let stderr = home.fails(app.path(), &["registry", "push", "-k", &reference]);
    assert!(stderr.contains("gyre registry login"), "{stderr}");

    let stderr = home.fails(
        app.path(),
        &[
            "registry",
            "login",
            "-k",
            "-u",
            "alice",
            "-p",
            "wrong",
            &registry.addr(),
        ],
    );
    assert!(stderr.contains("refused these credentials"), "{stderr}");
    let config = home.dir.path().join("docker/config.json");
    assert!(!config.exists(), "refused credentials are not stored");

    let mut login = gyre_command();
    login
        .current_dir(app.path())
        .args([
            "registry",
            "login",
            "-k",
            "-u",
            "alice",
            "--password-stdin",
            &registry.addr(),
        ])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in home.env() {
        login.env(k, v);
    }
    let mut child = login.spawn().expect("run login");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), b"s3cret-pass\n")
        .expect("write the password");
    let output = child.wait_with_output().expect("login");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stored: Value =
        serde_json::from_slice(&std::fs::read(&config).expect("config.json")).expect("JSON");
    assert_eq!(
        stored["auths"][registry.addr()]["auth"],
        "YWxpY2U6czNjcmV0LXBhc3M=",
        "base64 of user:password, as docker login writes it"
    );

    home.ok(app.path(), &["registry", "push", "-k", &reference]);
    home.ok(app.path(), &["registry", "pull", "-k", &reference]);
    let up = home.up(&reference);
    assert_eq!(up.get("/").text(), "Hello, Gyre!\n");
}

#[test]
fn a_plain_wasm_package_runs_like_a_bare_wasm() {
    let registry = Registry::start();
    let home = Home::new();
    let wasm = std::fs::read(support::guest("hello-wat")).expect("guest");
    push_wasm_package(&registry, "pkg/hello", "1.0.0", &wasm);
    let up = home.up(&format!("{}/pkg/hello:1.0.0", registry.addr()));
    assert_eq!(up.get("/any/path").text(), "Hello, Gyre!\n");
}

/// Pushes `wasm` as a package as `wkg publish` writes one: one
/// application/wasm layer and a config of its own media type, pushed with
/// the distribution API.
fn push_wasm_package(registry: &Registry, repository: &str, tag: &str, wasm: &[u8]) {
    let config = br#"{"architecture":"wasm","os":"wasip2"}"#;
    for blob in [wasm, &config[..]] {
        upload_blob(registry, repository, blob);
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": "application/vnd.wasm.config.v0+json", "digest": sha256(config), "size": config.len() },
        "layers": [{ "mediaType": "application/wasm", "digest": sha256(wasm), "size": wasm.len() }],
    });
    support::agent()
        .put(&format!(
            "http://{}/v2/{repository}/manifests/{tag}",
            registry.addr()
        ))
        .set("content-type", OCI_MANIFEST)
        .send_bytes(manifest.to_string().as_bytes())
        .expect("put the manifest");
}

#[test]
fn registry_packages_are_sources_and_dependencies() {
    let registry = Registry::start();
    let home = Home::new();
    let hello = std::fs::read(support::guest("hello-wat")).expect("guest");
    let greeter = std::fs::read(support::guest("compose-greeter")).expect("guest");
    // `gyre:greeter` in three releases; `^1` must pick 1.2.0. Only 1.2.0 is
    // the real greeter: picking another fails to compose.
    push_wasm_package(&registry, "gyre/greeter", "1.0.0", &hello);
    push_wasm_package(&registry, "gyre/greeter", "1.2.0", &greeter);
    push_wasm_package(&registry, "gyre/greeter", "2.0.0", &hello);
    push_wasm_package(&registry, "gyre/hello", "0.1.0", &hello);
    // The `gyre` namespace's registry comes from wasm-pkg's config.
    let config = home.dir.path().join("config/wasm-pkg/config.toml");
    std::fs::create_dir_all(config.parent().expect("parent")).expect("mkdir");
    std::fs::write(
        &config,
        format!("[namespace_registries]\ngyre = \"{}\"\n", registry.addr()),
    )
    .expect("write config");
    let app = TestApp::new(&format!(
        r#"spin_manifest_version = 2
[application]
name = "packages"
[[trigger.http]]
route = "/hello/..."
component = "hello"
[component.hello]
source = {{ registry = "{registry}", package = "gyre:hello", version = "0.1.0" }}
[[trigger.http]]
route = "/greet/..."
component = "greet"
[component.greet]
source = "{{guest:compose-primary}}"
[component.greet.dependencies]
"gyre:compose-test/greeting" = {{ package = "gyre:greeter", version = "^1" }}
"#,
        registry = registry.addr()
    ));
    let xdg = (
        "XDG_CONFIG_HOME",
        home.dir.path().join("config").display().to_string(),
    );
    let mut env = home.env();
    env.push((xdg.0.to_string(), xdg.1.clone()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let gyre = Gyre::up_with(&app, &["-k"], &env);
    assert_eq!(gyre.get("/hello/x").text(), "Hello, Gyre!\n");
    let greeting = gyre.get("/greet/greet?name=eve").text();
    assert!(greeting.ends_with(", eve"), "{greeting}\n{}", gyre.stderr());
    drop(gyre);

    // Pushing it would lose the dependency: refused, nothing pushed.
    let reference = format!("{}/team/packages:v1", registry.addr());
    let push = home.run_with(
        app.path(),
        &["registry", "push", "-k", &reference],
        &[(xdg.0, xdg.1.as_str())],
    );
    let stderr = String::from_utf8_lossy(&push.stderr);
    assert_eq!(push.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("component `greet` has dependencies or middleware"),
        "{stderr}"
    );

    // A release that does not exist is a load error at its line, with the
    // tags there are.
    let missing = TestApp::new(&format!(
        r#"spin_manifest_version = 2
[application]
name = "missing"
[[trigger.http]]
route = "/..."
component = "greet"
[component.greet]
source = "{{guest:compose-primary}}"
[component.greet.dependencies]
"gyre:compose-test/greeting" = {{ package = "gyre:greeter", version = "^3", registry = "{}" }}
"#,
        registry.addr()
    ));
    let output = gyre_command()
        .current_dir(missing.path())
        .args(["up", "--listen", "127.0.0.1:0", "-k"])
        .envs(env.iter().copied())
        .output()
        .expect("run gyre");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for piece in [
        "spin.toml:10:",
        "cannot fetch gyre:greeter@^3",
        "no release of",
        "matches `^3`",
        "1.0.0, 1.2.0, 2.0.0",
    ] {
        assert!(stderr.contains(piece), "{piece:?} missing from:\n{stderr}");
    }
}

/// Monolithic blob upload (POST then PUT ?digest=).
fn upload_blob(registry: &Registry, repository: &str, bytes: &[u8]) {
    let start = support::agent()
        .post(&format!(
            "http://{}/v2/{repository}/blobs/uploads/",
            registry.addr()
        ))
        .call()
        .expect("start an upload");
    let location = start
        .header("location")
        .expect("upload location")
        .to_string();
    let url = if location.starts_with("http") {
        location
    } else {
        format!("http://{}{location}", registry.addr())
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    support::agent()
        .put(&format!("{url}{separator}digest={}", sha256(bytes)))
        .set("content-type", "application/octet-stream")
        .send_bytes(bytes)
        .expect("finish the upload");
}

/// Pushes an artifact the way older Spin did: the lock is the OCI config
/// (no lock layer), blobs uploaded with the distribution API.
fn push_spin_artifact(
    registry: &Registry,
    repository: &str,
    tag: &str,
    lock: &Value,
    layers: &[(&str, &[u8])],
) {
    let lock_bytes = serde_json::to_vec(lock).expect("lock JSON");
    upload_blob(registry, repository, &lock_bytes);
    let mut descriptors = Vec::new();
    for (media_type, bytes) in layers {
        upload_blob(registry, repository, bytes);
        descriptors.push(serde_json::json!({ "mediaType": media_type, "digest": sha256(bytes), "size": bytes.len() }));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "config": { "mediaType": LOCK, "digest": sha256(&lock_bytes), "size": lock_bytes.len() },
        "layers": descriptors,
    });
    support::agent()
        .put(&format!(
            "http://{}/v2/{repository}/manifests/{tag}",
            registry.addr()
        ))
        .set("content-type", OCI_MANIFEST)
        .send_bytes(manifest.to_string().as_bytes())
        .expect("put the manifest");
}

#[test]
fn an_artifact_in_spins_older_layout_runs_with_its_files_environment_and_variables() {
    let registry = Registry::start();
    let home = Home::new();
    let wasm = std::fs::read(support::guest("py5-http")).expect("guest");
    let page = "<p>pushed by Spin</p>\n".repeat(10);
    // Field by field what Spin's lock holds, including what Gyre does not
    // write itself (`must_understand`, metadata.trigger, version 1).
    let lock = serde_json::json!({
        "spin_lock_version": 1,
        "must_understand": ["host_requirements"],
        "metadata": {
            "name": "spin-pushed",
            "version": "0.1.0",
            "authors": ["Spin User"],
            "trigger": { "type": "http" },
            "triggers": { "http": {} },
        },
        "host_requirements": { "local_service_chaining": "optional" },
        "variables": { "who": { "default": "spin" } },
        "triggers": [{
            "id": "trigger--web",
            "trigger_type": "http",
            "trigger_config": { "component": "web", "route": "/..." },
        }],
        "components": [{
            "id": "web",
            "metadata": { "allowed_outbound_hosts": [], "key_value_stores": [], "databases": [], "ai_models": [] },
            "source": { "content_type": "application/wasm", "digest": sha256(&wasm) },
            "env": { "GYRE_TEST_ORIGIN": "spin" },
            "files": [
                { "digest": sha256(page.as_bytes()), "path": "site/index.html" },
                { "inline": "aGk=", "digest": sha256(b"hi"), "path": "hi.txt" },
            ],
            "config": { "greeting": "hello {{ who }}" },
        }],
    });
    push_spin_artifact(
        &registry,
        "spin/pushed",
        "v1",
        &lock,
        &[(WASM, &wasm), (DATA, page.as_bytes())],
    );
    let up = home.up(&format!("{}/spin/pushed:v1", registry.addr()));
    assert_eq!(up.get("/file/site/index.html").text(), page);
    assert_eq!(up.get("/file/hi.txt").text(), "hi");
    assert!(
        up.get("/env")
            .text()
            .contains("\"GYRE_TEST_ORIGIN\": \"spin\""),
        "{}",
        up.get("/env").text()
    );

    // A section Gyre does not know is refused by name, as Spin would.
    let mut future = lock.clone();
    future["must_understand"] = serde_json::json!(["time_travel"]);
    push_spin_artifact(
        &registry,
        "spin/future",
        "v1",
        &future,
        &[(WASM, &wasm), (DATA, page.as_bytes())],
    );
    let stderr = home.fails(
        home.dir.path(),
        &[
            "up",
            "-f",
            &format!("{}/spin/future:v1", registry.addr()),
            "-k",
        ],
    );
    assert!(stderr.contains("`time_travel`"), "{stderr}");
}

/// A TCP relay that passes the registry's answers on at `bytes_per_sec`,
/// so a download lasts long enough to be seen.
fn slow_relay(target: u16, bytes_per_sec: usize) -> u16 {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                continue;
            };
            let (mut client_read, mut server_write) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_read, &mut server_write);
            });
            let (mut server_read, mut client_write) = (server, client);
            std::thread::spawn(move || {
                let chunk = (bytes_per_sec / 20).max(1);
                let mut buf = vec![0u8; chunk];
                while let Ok(n) = server_read.read(&mut buf) {
                    if n == 0 || client_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                let _ = client_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

/// Through a real terminal (tmux): `login` prompts for what it was not
/// given, and a pull draws a download bar that it clears when done.
#[test]
fn on_a_terminal_login_prompts_and_a_pull_shows_its_progress() {
    use std::time::Duration;
    let private = Registry::with_login("bob", "tty-pass");
    let public = Registry::start();
    let home = Home::new();
    let app = TestApp::new(
        "spin_manifest_version = 2\n[application]\nname = \"big\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n[component.web]\nsource = \"{guest:py5-http}\"\n",
    );
    home.ok(
        app.path(),
        &[
            "registry",
            "push",
            "-k",
            &format!("{}/team/big:v1", public.addr()),
        ],
    );
    // About 36 MB at 12 MB/s: three seconds of bar.
    let relay = slow_relay(public.port, 12 * 1024 * 1024);
    let exports: String = home
        .env()
        .iter()
        .map(|(k, v)| format!("{k}='{v}' "))
        .collect();
    let gyre = env!("CARGO_BIN_EXE_gyre");
    let command = format!(
        "env {exports} {gyre} registry login -k {}; env {exports} {gyre} registry pull -k 127.0.0.1:{relay}/team/big:v1; sleep 30",
        private.addr()
    );
    let terminal = support::Tmux::start("gyre-registry", 150, 30, &command);
    let screen_shows = |text: &str| terminal.screen_shows(text, Duration::from_secs(30));
    screen_shows("Username");
    terminal.send(&["bob", "Enter"]);
    screen_shows("Password");
    terminal.send(&["tty-pass", "Enter"]);
    let screen = screen_shows("logged in to");
    assert!(
        !screen.contains("tty-pass"),
        "the password is not echoed:\n{screen}"
    );
    let bar = screen_shows("MiB/");
    assert!(bar.contains("pulling 127.0.0.1:"), "{bar}");
    let done = screen_shows("pulled 127.0.0.1:");
    assert!(
        !done.contains("MiB/"),
        "the bar is cleared when the pull is done:\n{done}"
    );
}

#[test]
fn a_registry_behind_a_token_service_takes_the_stored_login() {
    let tokens = support::servers::TokenService::start("carol", "token-pass");
    let registry = Registry::with_token_service(&tokens);
    let home = Home::new();
    let app = TestApp::new(
        "spin_manifest_version = 2\n[application]\nname = \"tokens\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n[component.hello]\nsource = \"{guest:hello-wat}\"\n",
    );
    let reference = format!("{}/carol/tokens:v1", registry.addr());
    let stderr = home.fails(app.path(), &["registry", "push", "-k", &reference]);
    assert!(stderr.contains("gyre registry login"), "{stderr}");
    let stderr = home.fails(
        app.path(),
        &[
            "registry",
            "login",
            "-k",
            "-u",
            "carol",
            "-p",
            "wrong",
            &registry.addr(),
        ],
    );
    assert!(stderr.contains("refused these credentials"), "{stderr}");
    home.ok(
        app.path(),
        &[
            "registry",
            "login",
            "-k",
            "-u",
            "carol",
            "-p",
            "token-pass",
            &registry.addr(),
        ],
    );
    home.ok(app.path(), &["registry", "push", "-k", &reference]);
    home.ok(app.path(), &["registry", "pull", "-k", &reference]);
    assert!(
        tokens.issued.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the registry was reached with bearer tokens"
    );
    let up = home.up(&reference);
    assert_eq!(up.get("/").text(), "Hello, Gyre!\n");
}

#[test]
fn push_build_builds_the_app_before_pushing_it() {
    let registry = Registry::start();
    let home = Home::new();
    let app = TestApp::new(
        "spin_manifest_version = 2\n[application]\nname = \"built\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n[component.hello]\nsource = \"out/hello.wasm\"\n[component.hello.build]\ncommand = \"mkdir -p out && cp {guest:hello-wat} out/hello.wasm\"\n",
    );
    let reference = format!("{}/team/built:v1", registry.addr());
    let stderr = home.fails(app.path(), &["registry", "push", "-k", &reference]);
    assert!(
        stderr.contains("out/hello.wasm"),
        "unbuilt, the source is missing: {stderr}"
    );
    home.ok(
        app.path(),
        &["registry", "push", "--build", "-k", &reference],
    );
    let wasm = std::fs::read(support::guest("hello-wat")).expect("guest");
    let manifest = manifest(&registry, "team/built", "v1");
    assert_eq!(manifest["layers"][0]["digest"], sha256(&wasm).as_str());
    let lock = lock(&registry, "team/built", &manifest);
    assert_eq!(
        lock["components"][0]["metadata"]["build"]["command"],
        "mkdir -p out && cp ".to_string() + &support::guest("hello-wat") + " out/hello.wasm"
    );
}
