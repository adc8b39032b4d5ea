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
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index"))
            .expect("JSON");
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("manifest digest");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(blob(manifest_digest)).expect("manifest"))
            .expect("JSON");
    let rootfs = into.join("rootfs");
    std::fs::create_dir_all(&rootfs).expect("mkdir rootfs");
    for layer in manifest["layers"].as_array().expect("layers") {
        let digest = layer["digest"].as_str().expect("layer digest");
        run(Command::new("tar")
            .arg("-xf")
            .arg(blob(digest))
            .arg("-C")
            .arg(&rootfs));
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

    let inspect = skopeo_json(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]);
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");
    let config = skopeo_json(&[
        "inspect",
        "--config",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]);
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/bin/gyre"])
    );
    assert_eq!(config["config"]["User"], "65532:65532", "non-root");
    let raw = skopeo_json(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]);
    let size: u64 = raw["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["size"].as_u64().expect("size"))
        .sum();
    let binary_size = std::fs::metadata(env!("CARGO_BIN_EXE_gyre"))
        .expect("binary")
        .len();
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
        (
            "GYRE_REGISTRY_CACHE_DIR",
            home.path().join("registry").display().to_string(),
        ),
        (
            "DOCKER_CONFIG",
            home.path().join("docker").display().to_string(),
        ),
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
    let health = support::request(
        "GET",
        &format!("{local}/.well-known/spin/health"),
        &[],
        None,
    );
    assert_eq!(health.status, 200, "the probe path answers");
    let hello = support::request("GET", &format!("{local}/"), &[], None);
    assert_eq!(hello.text(), "Hello, Gyre!\n");
    assert!(
        std::fs::read_dir(workdir.path())
            .expect("workdir")
            .next()
            .is_none(),
        "nothing written to the working directory: logs go to stdout/stderr"
    );
    let status = up.terminate();
    assert!(status.success(), "SIGTERM drains and exits 0, got {status}");
}

/// `gyre kube scaffold ARGS`, as YAML documents.
fn scaffold(args: &[&str]) -> (String, Vec<serde_norway::Value>) {
    let mut cmd = gyre_command();
    cmd.current_dir(repo_root())
        .args(["kube", "scaffold"])
        .args(args);
    let yaml = run(&mut cmd);
    let documents = serde_norway::Deserializer::from_str(&yaml)
        .map(|d| {
            <serde_norway::Value as serde::Deserialize>::deserialize(d).expect("a YAML document")
        })
        .collect();
    (yaml, documents)
}

fn kind(document: &serde_norway::Value) -> &str {
    document["kind"].as_str().expect("kind")
}

fn typed<T: serde::de::DeserializeOwned>(document: &serde_norway::Value) -> T {
    serde_norway::from_value(document.clone()).expect("parses as its Kubernetes type")
}

const EXAMPLE_ARGS: [&str; 8] = [
    "-f",
    "registry.example.com/team/hello:v1",
    "--image",
    "registry.example.com/team/gyre:0.1.0",
    "--replicas",
    "3",
    "--runtime-config-file",
    "deploy/kubernetes/runtime-config.toml",
];

#[test]
fn the_deployment_runs_the_spintainer_command_line_with_probes_limits_and_the_config_secret() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Secret, Service};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    let (yaml, documents) = scaffold(&EXAMPLE_ARGS);
    let committed = std::fs::read_to_string(repo_root().join("deploy/kubernetes/deployment.yaml"))
        .expect("deploy/kubernetes/deployment.yaml");
    assert_eq!(
        yaml, committed,
        "deploy/kubernetes/deployment.yaml is what scaffold prints"
    );
    let kinds: Vec<&str> = documents.iter().map(kind).collect();
    assert_eq!(kinds, ["Secret", "Deployment", "Service"]);

    let secret: Secret = typed(&documents[0]);
    let config_text =
        std::fs::read_to_string(repo_root().join("deploy/kubernetes/runtime-config.toml"))
            .expect("runtime config");
    let secret_data = secret.string_data.expect("stringData");
    assert_eq!(secret_data["runtime-config.toml"], config_text);
    let secret_name = secret.metadata.name.expect("secret name");

    let deployment: Deployment = typed(&documents[1]);
    let spec = deployment.spec.expect("spec");
    assert_eq!(spec.replicas, Some(3));
    let pod = spec.template.spec.expect("pod spec");
    let pod_security = pod.security_context.expect("pod security context");
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(pod_security.run_as_user, Some(65532));
    let [container] = pod.containers.as_slice() else {
        panic!("one container");
    };
    assert_eq!(
        container.image.as_deref(),
        Some("registry.example.com/team/gyre:0.1.0")
    );
    let args = container.args.clone().expect("args");
    assert_eq!(
        args,
        [
            "up",
            "--listen",
            "0.0.0.0:80",
            "-f",
            "registry.example.com/team/hello:v1",
            "--runtime-config-file",
            "/runtime-config.toml"
        ],
        "the spintainer command line"
    );

    // The listener, the port, the probes and the Service agree.
    let listen_port: i32 = args[2]
        .rsplit(':')
        .next()
        .expect("port")
        .parse()
        .expect("number");
    let ports = container.ports.clone().expect("ports");
    let http = ports
        .iter()
        .find(|p| p.name.as_deref() == Some("http"))
        .expect("an http port");
    assert_eq!(http.container_port, listen_port);
    for probe in [&container.readiness_probe, &container.liveness_probe] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.clone())
            .expect("an httpGet probe");
        assert_eq!(get.path.as_deref(), Some("/.well-known/spin/health"));
        assert_eq!(get.port, IntOrString::String("http".into()));
    }
    let service: Service = typed(&documents[2]);
    let service_port = &service.spec.expect("service spec").ports.expect("ports")[0];
    assert_eq!(
        service_port.target_port,
        Some(IntOrString::String("http".into()))
    );

    // The config is mounted where --runtime-config-file points, from the Secret.
    let config_path = &args[args
        .iter()
        .position(|a| a == "--runtime-config-file")
        .expect("flag")
        + 1];
    let mounts = container.volume_mounts.clone().expect("mounts");
    let mount = mounts
        .iter()
        .find(|m| &m.mount_path == config_path)
        .expect("mounted at the path");
    assert_eq!(mount.sub_path.as_deref(), Some("runtime-config.toml"));
    let volumes = pod.volumes.expect("volumes");
    let volume = volumes
        .iter()
        .find(|v| v.name == mount.name)
        .expect("its volume");
    let from = volume.secret.as_ref().expect("a secret volume");
    assert_eq!(from.secret_name.as_ref(), Some(&secret_name));
    assert_eq!(
        from.items.as_ref().expect("items")[0].key,
        "runtime-config.toml"
    );

    // Locked down, with somewhere to cache.
    let security = container
        .security_context
        .clone()
        .expect("container security context");
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    let resources = container.resources.clone().expect("resources");
    assert!(resources.requests.expect("requests").contains_key("memory"));
    assert!(resources.limits.expect("limits").contains_key("memory"));
    assert!(
        mounts.iter().any(|m| m.mount_path == "/tmp"),
        "caches go to an emptyDir"
    );
}

#[test]
fn the_spinkube_pair_names_the_gyre_image_as_the_spintainer() {
    let mut args = EXAMPLE_ARGS.to_vec();
    args.extend(["--executor", "spintainer"]);
    let (yaml, documents) = scaffold(&args);
    let committed = std::fs::read_to_string(repo_root().join("deploy/kubernetes/spinkube.yaml"))
        .expect("deploy/kubernetes/spinkube.yaml");
    assert_eq!(
        yaml, committed,
        "deploy/kubernetes/spinkube.yaml is what scaffold prints"
    );
    let kinds: Vec<&str> = documents.iter().map(kind).collect();
    assert_eq!(kinds, ["Secret", "SpinAppExecutor", "SpinApp"]);
    let _: k8s_openapi::api::core::v1::Secret = typed(&documents[0]);
    let executor = &documents[1];
    assert_eq!(executor["apiVersion"], "core.spinkube.dev/v1alpha1");
    assert_eq!(executor["spec"]["createDeployment"], true);
    assert_eq!(
        executor["spec"]["deploymentConfig"]["spinImage"],
        "registry.example.com/team/gyre:0.1.0"
    );
    let app = &documents[2];
    assert_eq!(app["spec"]["executor"], executor["metadata"]["name"]);
    assert_eq!(app["spec"]["image"], "registry.example.com/team/hello:v1");
    assert_eq!(app["spec"]["replicas"], 3);
    assert_eq!(
        app["spec"]["runtimeConfig"]["loadFromSecret"],
        documents[0]["metadata"]["name"]
    );
    assert_eq!(
        app["spec"]["checks"]["readiness"]["httpGet"]["path"],
        "/.well-known/spin/health"
    );
    // The resource requirements are Kubernetes' own type.
    let _: k8s_openapi::api::core::v1::ResourceRequirements = typed(&app["spec"]["resources"]);
}

#[test]
fn scaffold_refuses_what_would_fail_in_the_cluster() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[key_value_store.default]\ntype = \"nonsense\"\n").expect("write");
    for (args, expected) in [
        (vec!["-f", "not a reference"], "is not a registry reference"),
        (
            vec![
                "-f",
                "registry.example.com/a/b:v1",
                "--runtime-config-file",
                broken.to_str().expect("utf8"),
            ],
            "nonsense",
        ),
    ] {
        let output = gyre_command()
            .args(["kube", "scaffold"])
            .args(&args)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
