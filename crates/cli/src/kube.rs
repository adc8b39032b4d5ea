//! `gyre kube scaffold`: Kubernetes manifests that run an app from a
//! registry.
//!
//! Two shapes, both on existing engines. `--executor deployment` (the
//! default) is plain Kubernetes: a Deployment running the Gyre image with
//! exactly SpinKube's spintainer command line, probes on Spin's health
//! path, requests and limits, a non-root user, a read-only root filesystem
//! (caches on an emptyDir at /tmp), the runtime config from a Secret
//! mounted where `--runtime-config-file` points, and a Service.
//! `--executor spintainer` is for clusters with SpinKube's operator: a
//! `SpinAppExecutor` whose `spinImage` is the Gyre image, and a `SpinApp`
//! using it; the operator then builds the same Deployment.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

pub(crate) const EXAMPLES: &str = "\
Examples:
  gyre kube scaffold -f registry.example.com/team/hello:v1 --image registry.example.com/team/gyre:0.1.0 | kubectl apply -f -
  gyre kube scaffold -f registry.example.com/team/hello:v1 --replicas 3 --runtime-config-file runtime-config.toml
  gyre kube scaffold -f registry.example.com/team/hello:v1 --executor spintainer   for SpinKube's operator";

/// The port the app listens on in the pod (SpinKube's default).
pub(crate) const CONTAINER_PORT: u16 = 80;
/// Where the runtime config is mounted (where SpinKube mounts it).
pub(crate) const RUNTIME_CONFIG_PATH: &str = "/runtime-config.toml";
/// Spin's health path, probed for readiness and liveness.
pub(crate) const HEALTH_PATH: &str = "/.well-known/spin/health";
/// The non-root user of the image (`deploy/image`).
const IMAGE_USER: i64 = 65532;

#[derive(Subcommand, Debug)]
pub(crate) enum KubeCommand {
    /// Print Kubernetes manifests that run an app from a registry.
    #[command(after_help = EXAMPLES)]
    Scaffold(ScaffoldArgs),
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Executor {
    /// A plain Deployment and Service.
    Deployment,
    /// A SpinKube SpinAppExecutor (spintainer) and SpinApp.
    Spintainer,
}

#[derive(Args, Debug)]
pub(crate) struct ScaffoldArgs {
    /// The application: a registry reference (push it first with
    /// `gyre registry push`).
    #[arg(short = 'f', long = "from", value_name = "REFERENCE")]
    from: String,

    /// Pods to run.
    #[arg(long, default_value_t = 2)]
    replicas: u32,

    /// What runs the app.
    #[arg(long, value_enum, default_value_t = Executor::Deployment)]
    executor: Executor,

    /// Runtime config to put in a Secret and mount at /runtime-config.toml.
    #[arg(long, value_name = "FILE")]
    runtime_config_file: Option<PathBuf>,

    /// The Gyre image (build it with deploy/image/build.sh).
    #[arg(long, default_value = concat!("gyre:", env!("CARGO_PKG_VERSION")))]
    image: String,

    /// Name of the Kubernetes objects (default: the repository's last part).
    #[arg(long)]
    name: Option<String>,

    /// A `kubernetes.io/dockerconfigjson` Secret with credentials for the
    /// app's registry (deployment executor).
    #[arg(long, value_name = "SECRET")]
    registry_secret: Option<String>,
}

pub(crate) fn run(command: KubeCommand) -> Result<ExitCode> {
    match command {
        KubeCommand::Scaffold(args) => {
            let documents = scaffold(&args)?;
            print!("{}", to_yaml(&documents)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The manifests, as YAML documents separated by `---`.
pub(crate) fn to_yaml(documents: &[Value]) -> Result<String> {
    let mut out = String::new();
    for document in documents {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(document).context("cannot write YAML")?);
    }
    Ok(out)
}

fn scaffold(args: &ScaffoldArgs) -> Result<Vec<Value>> {
    let reference = gyre_registry::parse_reference(&args.from)?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => gyre_registry::repository_name(reference.repository())
            .chars()
            .take(63)
            .collect(),
    };
    if name.is_empty() || name.len() > 63 {
        bail!("{name:?} is not a Kubernetes object name: give one with --name");
    }
    let runtime_config = args
        .runtime_config_file
        .as_ref()
        .map(|path| {
            // Parsed first: a broken config fails here, not in the pod.
            gyre_manifest::load_runtime_config(path)?;
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
        })
        .transpose()?;
    let secret_name = format!("{name}-runtime-config");
    let mut documents = Vec::new();
    if let Some(config) = &runtime_config {
        documents.push(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": secret_name, "labels": labels(&name) },
            "type": "Opaque",
            "stringData": { "runtime-config.toml": config },
        }));
    }
    match args.executor {
        Executor::Deployment => {
            let whole = reference.whole();
            documents.push(deployment(
                args,
                &name,
                &whole,
                runtime_config.is_some().then_some(secret_name.as_str()),
            ));
            documents.push(service(&name));
        }
        Executor::Spintainer => {
            documents.push(json!({
                "apiVersion": "core.spinkube.dev/v1alpha1",
                "kind": "SpinAppExecutor",
                "metadata": { "name": "gyre" },
                "spec": {
                    "createDeployment": true,
                    "deploymentConfig": {
                        "installDefaultCACerts": true,
                        "spinImage": args.image,
                    },
                },
            }));
            let mut spec = json!({
                "image": reference.whole(),
                "executor": "gyre",
                "replicas": args.replicas,
                "checks": {
                    "readiness": { "httpGet": { "path": HEALTH_PATH } },
                    "liveness": { "httpGet": { "path": HEALTH_PATH } },
                },
                "resources": resources(),
            });
            if runtime_config.is_some() {
                spec["runtimeConfig"] = json!({ "loadFromSecret": secret_name });
            }
            documents.push(json!({
                "apiVersion": "core.spinkube.dev/v1alpha1",
                "kind": "SpinApp",
                "metadata": { "name": name },
                "spec": spec,
            }));
        }
    }
    Ok(documents)
}

/// SpinKube's spintainer command line for `reference`.
pub(crate) fn spintainer_args(reference: &str, runtime_config: bool) -> Vec<String> {
    let mut args = vec![
        "up".to_string(),
        "--listen".to_string(),
        format!("0.0.0.0:{CONTAINER_PORT}"),
        "-f".to_string(),
        reference.to_string(),
    ];
    if runtime_config {
        args.extend([
            "--runtime-config-file".to_string(),
            RUNTIME_CONFIG_PATH.to_string(),
        ]);
    }
    args
}

fn labels(name: &str) -> Value {
    json!({ "app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "gyre" })
}

fn resources() -> Value {
    json!({
        "requests": { "cpu": "100m", "memory": "128Mi" },
        "limits": { "cpu": "1", "memory": "512Mi" },
    })
}

fn deployment(args: &ScaffoldArgs, name: &str, reference: &str, secret: Option<&str>) -> Value {
    let probe = |period: u32| {
        json!({
            "httpGet": { "path": HEALTH_PATH, "port": "http" },
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        })
    };
    let mut volumes = vec![json!({ "name": "tmp", "emptyDir": {} })];
    let mut mounts = vec![json!({ "name": "tmp", "mountPath": "/tmp" })];
    let mut env = vec![json!({ "name": "XDG_CACHE_HOME", "value": "/tmp/gyre-cache" })];
    if let Some(secret) = secret {
        volumes.push(json!({
            "name": "runtime-config",
            "secret": {
                "secretName": secret,
                "items": [{ "key": "runtime-config.toml", "path": "runtime-config.toml" }],
            },
        }));
        mounts.push(json!({
            "name": "runtime-config",
            "mountPath": RUNTIME_CONFIG_PATH,
            "subPath": "runtime-config.toml",
            "readOnly": true,
        }));
    }
    if let Some(registry_secret) = &args.registry_secret {
        volumes.push(json!({
            "name": "registry-credentials",
            "secret": {
                "secretName": registry_secret,
                "items": [{ "key": ".dockerconfigjson", "path": "config.json" }],
            },
        }));
        mounts.push(
            json!({ "name": "registry-credentials", "mountPath": "/docker", "readOnly": true }),
        );
        env.push(json!({ "name": "DOCKER_CONFIG", "value": "/docker" }));
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "labels": labels(name) },
        "spec": {
            "replicas": args.replicas,
            "selector": { "matchLabels": { "app.kubernetes.io/name": name } },
            "template": {
                "metadata": { "labels": labels(name) },
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": IMAGE_USER,
                        "runAsGroup": IMAGE_USER,
                        "seccompProfile": { "type": "RuntimeDefault" },
                        // Port 80 without root or capabilities (a safe
                        // sysctl, allowed by default since Kubernetes 1.22).
                        "sysctls": [{ "name": "net.ipv4.ip_unprivileged_port_start", "value": "0" }],
                    },
                    // Longer than `gyre up`'s drain (10 s by default).
                    "terminationGracePeriodSeconds": 30,
                    "containers": [{
                        "name": "gyre",
                        "image": args.image,
                        "args": spintainer_args(reference, secret.is_some()),
                        "ports": [{ "name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP" }],
                        "env": env,
                        "readinessProbe": probe(5),
                        "livenessProbe": probe(10),
                        "resources": resources(),
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["ALL"] },
                        },
                        "volumeMounts": mounts,
                    }],
                    "volumes": volumes,
                },
            },
        },
    })
}

fn service(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": name, "labels": labels(name) },
        "spec": {
            "selector": { "app.kubernetes.io/name": name },
            "ports": [{ "name": "http", "port": 80, "targetPort": "http", "protocol": "TCP" }],
        },
    })
}
