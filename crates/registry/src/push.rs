//! `gyre registry push`: an application as Spin's OCI artifact.
//!
//! The lock is built from the loaded application (so v1 manifests, inline
//! components and `{ url, digest }` sources arrive already resolved), then
//! every component's Wasm and files become layers exactly as Spin assembles
//! them: one Wasm layer per component, one data layer per file (content of
//! at most 128 bytes inlined into the lock instead, and its layer skipped),
//! or, with `SPIN_OCI_ARCHIVE_LAYERS` or more than 499 layers, one
//! gzipped tar per component beside the per-file entries. Layers are
//! deduplicated by digest and the lock goes last.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::{Context as _, Result};
use gyre_app::App;
use gyre_app::manifest::{Component, HttpExecutor, HttpRoute, Manifest, Trigger, TriggerConfig};
use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::OciImageManifest;
use serde_json::{Map, Value, json};

use crate::locked::{
    ContentPath, ContentRef, LockedApp, LockedComponent, LockedSource, LockedTrigger,
    LockedVariable, SERVICE_CHAINING,
};
use crate::{
    ARCHIVE_LAYERS_ENV, ARCHIVE_MEDIA_TYPE, DATA_MEDIA_TYPE, LOCKED_APP_DIGEST_LABEL,
    MAX_INLINED_CONTENT_SIZE, MAX_LAYER_COUNT, RegistryClient, SPIN_APPLICATION_MEDIA_TYPE,
    WASM_LAYER_MEDIA_TYPE,
};

/// How to push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// `--annotation KEY=VALUE`: added to the manifest; they win over the
    /// inferred ones.
    pub annotations: BTreeMap<String, String>,
    /// Files as one archive layer per component even below the layer limit
    /// (also when `SPIN_OCI_ARCHIVE_LAYERS` is set).
    pub archive_layers: bool,
}

/// What was pushed.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest's digest, when the registry said.
    pub digest: Option<String>,
    /// Layers in the manifest (the lock included).
    pub layers: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Whether files went as archive layers.
    pub archived: bool,
}

/// Whether layers are one per file or one archive per component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Assembly {
    Simple,
    Archive,
}

impl RegistryClient {
    /// Pushes `app` (loaded with every component, used or not) to
    /// `reference`.
    pub async fn push(
        &self,
        app: &App,
        reference: &oci_client::Reference,
        options: &PushOptions,
    ) -> Result<Pushed> {
        refuse_compositions(app)?;
        let (lock, layers, archived) = assemble(app, options)?;
        let annotations = annotations(&lock, &options.annotations);
        let lock_json = serde_json::to_vec(&lock).context("cannot serialise the lock")?;
        let lock_layer = ImageLayer::new(lock_json, SPIN_APPLICATION_MEDIA_TYPE.to_string(), None);
        let lock_digest = lock_layer.sha256_digest();
        let mut layers = layers;
        layers.push(lock_layer);

        let config_file = oci_client::config::ConfigFile {
            architecture: oci_client::config::Architecture::Wasm,
            os: oci_client::config::Os::Other("Wasip1".to_string()),
            config: Some(oci_client::config::Config {
                labels: Some(
                    [(LOCKED_APP_DIGEST_LABEL.to_string(), lock_digest)]
                        .into_iter()
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        let config = Config::oci_v1_from_config_file(config_file, None)
            .context("cannot build the OCI config")?;
        let manifest = OciImageManifest::build(&layers, &config, Some(annotations));
        let bytes = layers.iter().map(|l| l.data.len() as u64).sum();
        let auth = crate::auth_for(reference.resolve_registry());
        let response = self
            .oci
            .push(reference, &layers, config, &auth, Some(manifest))
            .await
            .map_err(|e| self.error(e, reference))?;
        Ok(Pushed {
            digest: digest_from_url(&response.manifest_url),
            layers: layers.len(),
            bytes,
            archived,
        })
    }
}

/// The lock and its layers (without the lock's own layer), falling back to
/// archive layers past the registry's layer limit as Spin does.
/// Spin pushes a component with dependencies or middleware composed (its
/// deny adapter standing in for what they do not inherit). Gyre's
/// composition links those imports to Gyre's own host functions, which
/// Spin would not find, and the lock of Spin's `--compose=false` layout is
/// not written yet: such an app is refused rather than pushed without them.
fn refuse_compositions(app: &App) -> Result<()> {
    if let Some((id, _)) = app
        .components
        .iter()
        .find(|(_, c)| !c.composition.is_empty())
    {
        anyhow::bail!(
            "component `{id}` has dependencies or middleware, which `gyre registry push` cannot \
             ship yet (it would push the component without them); push the composed component \
             instead (e.g. `wac plug`), or push with Spin"
        );
    }
    Ok(())
}

fn assemble(app: &App, options: &PushOptions) -> Result<(LockedApp, Vec<ImageLayer>, bool)> {
    let forced = options.archive_layers || std::env::var_os(ARCHIVE_LAYERS_ENV).is_some();
    if !forced {
        let (lock, layers) = assemble_in(app, Assembly::Simple)?;
        if layers.len() < MAX_LAYER_COUNT {
            return Ok((lock, layers, false));
        }
    }
    let (lock, layers) = assemble_in(app, Assembly::Archive)?;
    Ok((lock, layers, true))
}

fn assemble_in(app: &App, mode: Assembly) -> Result<(LockedApp, Vec<ImageLayer>)> {
    let mut layers = Layers::default();
    let mut components = Vec::new();
    for (id, component) in &app.components {
        let wasm = ImageLayer::new(
            component.wasm.clone(),
            WASM_LAYER_MEDIA_TYPE.to_string(),
            None,
        );
        let source = LockedSource {
            content_type: "application/wasm".to_string(),
            content: content_ref(&wasm),
        };
        layers.add(wasm);
        let files = match &component.root_dir {
            Some(root) => file_layers(root, mode, &mut layers)
                .with_context(|| format!("cannot pack the files of component `{id}`"))?,
            None => Vec::new(),
        };
        components.push(locked_component(&component.manifest, source, files));
    }
    let mut lock = LockedApp {
        spin_lock_version: 0,
        must_understand: Vec::new(),
        metadata: app_metadata(&app.manifest),
        host_requirements: Map::new(),
        variables: app
            .manifest
            .variables
            .iter()
            .map(|(name, v)| {
                let variable = LockedVariable {
                    description: v.description.clone(),
                    default: v.default.clone(),
                    secret: v.secret,
                };
                (name.clone(), variable)
            })
            .collect(),
        triggers: app
            .manifest
            .triggers
            .iter()
            .map(locked_trigger)
            .collect::<Result<_>>()?,
        components,
    };
    if lock
        .components
        .iter()
        .any(|c| !c.host_requirements.is_empty())
    {
        lock.must_understand
            .push("component_host_requirements".to_string());
    }
    Ok((lock, layers.into_vec()))
}

/// Layers in order of first appearance, each digest once.
#[derive(Default)]
struct Layers {
    seen: HashSet<String>,
    layers: Vec<ImageLayer>,
}

impl Layers {
    fn add(&mut self, layer: ImageLayer) {
        if self.seen.insert(layer.sha256_digest()) {
            self.layers.push(layer);
        }
    }

    fn into_vec(self) -> Vec<ImageLayer> {
        self.layers
    }
}

/// Spin's content reference for a layer: its digest, plus the bytes when
/// they are small enough to inline.
fn content_ref(layer: &ImageLayer) -> ContentRef {
    ContentRef {
        source: None,
        inline: (layer.data.len() <= MAX_INLINED_CONTENT_SIZE).then(|| layer.data.to_vec()),
        digest: Some(layer.sha256_digest()),
    }
}

/// The files under a component's root, as lock entries and layers.
fn file_layers(root: &Path, mode: Assembly, layers: &mut Layers) -> Result<Vec<ContentPath>> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry?;
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(root)
            .context("a walked file lies under its root")?;
        // Registries carry portable paths, whatever the pushing host.
        let path = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let bytes = std::fs::read(entry.path())
            .with_context(|| format!("cannot read {}", entry.path().display()))?;
        let layer = ImageLayer::new(bytes, DATA_MEDIA_TYPE.to_string(), None);
        let content = content_ref(&layer);
        // Small content lives in the lock only: some registries refuse
        // very small blobs.
        if mode == Assembly::Simple && content.inline.is_none() {
            layers.add(layer);
        }
        files.push(ContentPath { content, path });
    }
    if mode == Assembly::Archive {
        layers.add(ImageLayer::new(
            archive(root)?,
            ARCHIVE_MEDIA_TYPE.to_string(),
            None,
        ));
    }
    Ok(files)
}

/// A gzipped tar of everything under `root`, paths relative to it.
fn archive(root: &Path) -> Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(encoder);
    tar.append_dir_all(".", root)
        .with_context(|| format!("cannot archive {}", root.display()))?;
    let encoder = tar.into_inner().context("cannot finish the archive")?;
    encoder.finish().context("cannot compress the archive")
}

fn locked_component(
    component: &Component,
    source: LockedSource,
    files: Vec<ContentPath>,
) -> LockedComponent {
    let mut metadata = Map::new();
    if !component.description.is_empty() {
        metadata.insert("description".into(), json!(component.description));
    }
    metadata.insert(
        "allowed_outbound_hosts".into(),
        json!(component.allowed_outbound_hosts),
    );
    metadata.insert("key_value_stores".into(), json!(component.key_value_stores));
    metadata.insert("databases".into(), json!(component.sqlite_databases));
    metadata.insert("ai_models".into(), json!(component.ai_models));
    if let Some(build) = &component.build {
        let command = match build.commands.as_slice() {
            [one] => json!(one),
            many => json!(many),
        };
        let mut b = Map::new();
        b.insert("command".into(), command);
        if let Some(workdir) = &build.workdir {
            b.insert("workdir".into(), json!(workdir));
        }
        if !build.watch.is_empty() {
            b.insert("watch".into(), json!(build.watch));
        }
        metadata.insert("build".into(), Value::Object(b));
    }
    let mut host_requirements = Map::new();
    if component
        .allowed_outbound_hosts
        .iter()
        .any(|h| h.contains(".spin.internal"))
    {
        host_requirements.insert(SERVICE_CHAINING.into(), json!("required"));
    }
    LockedComponent {
        id: component.id.clone(),
        metadata,
        source,
        env: component
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        files,
        config: component
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        dependencies: Map::new(),
        host_requirements,
    }
}

fn app_metadata(manifest: &Manifest) -> Map<String, Value> {
    let app = &manifest.application;
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(app.name));
    if !app.version.is_empty() {
        metadata.insert("version".into(), json!(app.version));
    }
    if !app.description.is_empty() {
        metadata.insert("description".into(), json!(app.description));
    }
    metadata.insert("authors".into(), json!(app.authors));
    let mut triggers = Map::new();
    if let Some(base) = &app.http_base {
        triggers.insert("http".into(), json!({ "base": base }));
    }
    if let Some(address) = &app.redis_address {
        triggers.insert("redis".into(), json!({ "address": address }));
    }
    // Older hosts read the trigger type from `metadata.trigger`; Spin
    // writes it when the app has one trigger type.
    let mut types: Vec<&str> = manifest
        .triggers
        .iter()
        .map(|t| t.trigger_type.as_str())
        .collect();
    types.dedup();
    if let [only] = types.as_slice() {
        let mut trigger = triggers
            .get(*only)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        trigger.insert("type".into(), json!(only));
        metadata.insert("trigger".into(), Value::Object(trigger));
    }
    metadata.insert("triggers".into(), Value::Object(triggers));
    metadata
}

/// The `[[trigger.<type>]]` table as Spin's lock carries it.
fn locked_trigger(trigger: &Trigger) -> Result<LockedTrigger> {
    let mut config = Map::new();
    if let Some(component) = &trigger.component {
        config.insert("component".into(), json!(component));
    }
    match &trigger.config {
        TriggerConfig::Http(http) => {
            let route = match &http.route {
                HttpRoute::Path(p) => json!(p),
                HttpRoute::Private => json!({ "private": true }),
            };
            config.insert("route".into(), route);
            if let HttpExecutor::Wagi { argv } = &http.executor {
                config.insert("executor".into(), json!({ "type": "wagi", "argv": argv }));
            }
            if let Some(r) = &http.static_response {
                let mut response = Map::new();
                response.insert("status_code".into(), json!(r.status));
                if !r.headers.is_empty() {
                    let headers: Map<String, Value> = r
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), json!(v)))
                        .collect();
                    response.insert("headers".into(), Value::Object(headers));
                }
                if let Some(body) = &r.body {
                    response.insert("body".into(), json!(body));
                }
                config.insert("static_response".into(), Value::Object(response));
            }
        }
        TriggerConfig::Redis(redis) => {
            config.insert("channel".into(), json!(redis.channel));
            if let Some(address) = &redis.address {
                config.insert("address".into(), json!(address));
            }
            if !redis.filter.is_empty() {
                let filter: Map<String, Value> = redis
                    .filter
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect();
                config.insert("filter".into(), Value::Object(filter));
            }
        }
        TriggerConfig::Cron(cron) => {
            config.insert("cron_expression".into(), json!(cron.expression));
        }
        TriggerConfig::Other => anyhow::bail!(
            "trigger `{}` is of type `{}`, which Gyre cannot run or push",
            trigger.id,
            trigger.trigger_type
        ),
    }
    Ok(LockedTrigger {
        id: trigger.id.clone(),
        trigger_type: trigger.trigger_type.clone(),
        trigger_config: Value::Object(config),
    })
}

/// Spin's inferred annotations, under the explicit ones.
fn annotations(
    lock: &LockedApp,
    explicit: &BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    let mut all = explicit.clone();
    let mut infer = |key: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            all.entry(key.to_string()).or_insert(value);
        }
    };
    let authors = lock
        .metadata
        .get("authors")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        });
    infer("org.opencontainers.image.authors", authors);
    infer(
        "org.opencontainers.image.title",
        lock.metadata_str("name").map(String::from),
    );
    infer(
        "org.opencontainers.image.description",
        lock.metadata_str("description").map(String::from),
    );
    infer(
        "org.opencontainers.image.version",
        lock.metadata_str("version").map(String::from),
    );
    infer(
        "org.opencontainers.image.created",
        Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    );
    all
}

/// The digest at the end of a manifest URL (`…/manifests/sha256:…`).
fn digest_from_url(url: &str) -> Option<String> {
    let last = url.rsplit('/').next()?;
    last.starts_with("sha256:").then(|| last.to_string())
}
