//! Taking an app off the machine: the container image (built by
//! `deploy/image/build.sh`, inspected with `skopeo`, its own binary run
//! with SpinKube's spintainer command line) and the Kubernetes manifests
//! `gyre kube scaffold` prints, parsed with the `k8s-openapi` types.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::servers::Registry;
use support::{Gyre, TestApp, gyre_command, repo_root, shared_cache_dir};

fn run(cmd: &mut Command) -> String {
    let output = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn skopeo_json(args: &[&str]) -> Value {
    let out = run(Command::new("skopeo").args(args));
    serde_json::from_str(&out).expect("skopeo JSON")
}

/// The image's root filesystem, unpacked from its (single) layer.
fn unpack_image(reference: &str, into: &Path) {
    let layout = into.join("layout");
    run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:gyre", layout.display()),
    ]));
    let blob = |digest: &str| layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index")).expect("JSON");
    let manifest_digest = index["manifests"][0]["digest"].as_str().expect("manifest digest");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(blob(manifest_digest)).expect("manifest")).expect("JSON");
    let rootfs = into.join("rootfs");
    std::fs::create_dir_all(&rootfs).expect("mkdir rootfs");
    for layer in manifest["layers"].as_array().expect("layers") {
        let digest = layer["digest"].as_str().expect("layer digest");
        run(Command::new("tar").arg("-xf").arg(blob(digest)).arg("-C").arg(&rootfs));
    }
}

#[test]
fn the_image_runs_an_app_from_the_same_registry_with_the_spintainer_command_line() {
    let registry = Registry::start();
    let image = format!("{}/gyre:test", registry.addr());
    run(Command::new("bash")
        .arg(repo_root().join("deploy/image/build.sh"))
        .args(["--insecure", &image])
        .env("GYRE_BINARY", env!("CARGO_BIN_EXE_gyre")));

    let inspect = skopeo_json(&["inspect", "--tls-verify=false", &format!("docker://{image}")]);
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");
    let config = skopeo_json(&["inspect", "--config", "--tls-verify=false", &format!("docker://{image}")]);
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/usr/bin/gyre"]));
    assert_eq!(config["config"]["User"], "65532:65532", "non-root");
    let raw = skopeo_json(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{image}")]);
    let size: u64 = raw["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["size"].as_u64().expect("size"))
        .sum();
    let binary_size = std::fs::metadata(env!("CARGO_BIN_EXE_gyre")).expect("binary").len();
    eprintln!("image: {size} bytes compressed; binary {binary_size} bytes");
    assert!(
        size < binary_size / 2 + 8 * 1024 * 1024,
        "the image is the (compressed) binary, its libraries and certificates: {size} bytes"
    );

    // An app in the same registry, and the binary from the image's layer
    // (run by the image's own dynamic loader and libraries).
    let home = tempfile::tempdir().expect("home");
    let app = TestApp::new(
        "spin_manifest_version = 2\n[application]\nname = \"hello\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n[component.hello]\nsource = \"{guest:hello-wat}\"\nkey_value_stores = [\"default\"]\n",
    );
    let app_ref = format!("{}/team/hello:v1", registry.addr());
    let cache_env = [
        ("GYRE_REGISTRY_CACHE_DIR", home.path().join("registry").display().to_string()),
        ("DOCKER_CONFIG", home.path().join("docker").display().to_string()),
    ];
    run(gyre_command()
        .current_dir(app.path())
        .args(["registry", "push", "-k", &app_ref])
        .envs(cache_env.iter().map(|(k, v)| (*k, v.as_str()))));

    let unpacked = tempfile::tempdir().expect("unpack dir");
    unpack_image(&image, unpacked.path());
    let rootfs = unpacked.path().join("rootfs");
    let runtime_config = home.path().join("runtime-config.toml");
    std::fs::write(
        &runtime_config,
        format!(
            "[key_value_store.default]\ntype = \"spin\"\npath = \"{}\"\n",
            home.path().join("kv.db").display()
        ),
    )
    .expect("write runtime config");
    let port = support::servers::free_port().to_string();
    let loader = rootfs.join("lib64/ld-linux-x86-64.so.2");
    let libraries = rootfs.join("lib/x86_64-linux-gnu");
    let gyre_in_image = rootfs.join("usr/bin/gyre");
    let workdir = tempfile::tempdir().expect("workdir");
    let env: Vec<(&str, String)> = cache_env
        .iter()
        .cloned()
        .chain([
            ("GYRE_INSECURE_REGISTRIES", registry.addr()),
            ("GYRE_CACHE_DIR", shared_cache_dir().display().to_string()),
        ])
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // `--library-path DIR PROGRAM ARGS…`, then exactly what spintainer runs.
    let args: Vec<String> = vec![
        "--library-path".into(),
        libraries.display().to_string(),
        gyre_in_image.display().to_string(),
        "up".into(),
        "--listen".into(),
        port.clone(),
        "-f".into(),
        app_ref.clone(),
        "--runtime-config-file".into(),
        runtime_config.display().to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let up = Gyre::start_program(&loader, workdir.path(), &args, &env);
    assert!(up.base.ends_with(&format!(":{port}")), "{}", up.base);
    let local = format!("http://127.0.0.1:{port}");
    let health = support::request("GET", &format!("{local}/.well-known/spin/health"), &[], None);
    assert_eq!(health.status, 200, "the probe path answers");
    let hello = support::request("GET", &format!("{local}/"), &[], None);
    assert_eq!(hello.text(), "Hello, Gyre!\n");
    assert!(
        std::fs::read_dir(workdir.path()).expect("workdir").next().is_none(),
        "nothing written to the working directory: logs go to stdout/stderr"
    );
    let status = up.terminate();
    assert!(status.success(), "SIGTERM drains and exits 0, got {status}");
}
