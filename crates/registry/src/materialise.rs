//! A pulled artifact laid out as an ordinary application directory.
//!
//! `<cache>/apps/<manifest digest>/` holds a generated `spin.toml` and the
//! component Wasm and files, hard-linked from the blob store (copied where
//! links cannot be made). The manifest says what the lock says, in the
//! manifest's own terms, so the loader, its validation and its errors are
//! the same for a registry app as for a local one. The directory is built
//! beside its final place and renamed in, once per manifest digest: a
//! second start of the same artifact reuses it.

use std::path::{Component as PathComponent, Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use toml::{Table, Value as Toml};

use crate::locked::{ContentRef, LockedComponent};
use crate::{
    Cache, LockedApp, Pulled, SPIN_APPLICATION_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE,
    WASM_PACKAGE_MEDIA_TYPE,
};

/// Lays out `pulled` (all of whose blobs are in `cache`) and returns the
/// path of its `spin.toml`.
pub fn materialise(cache: &Cache, pulled: &Pulled) -> Result<PathBuf> {
    let hex = pulled
        .digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .with_context(|| format!("manifest digest {:?} is not a sha256 digest", pulled.digest))?;
    let apps = cache.root().join("apps");
    let app_dir = apps.join(hex);
    let manifest_path = app_dir.join("spin.toml");
    if manifest_path.is_file() {
        return Ok(manifest_path);
    }
    std::fs::create_dir_all(&apps).with_context(|| format!("cannot create {}", apps.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&apps)
        .with_context(|| format!("cannot create a directory in {}", apps.display()))?;
    let toml = match lock_bytes(cache, pulled)? {
        Some(bytes) => {
            let lock = LockedApp::from_json(&bytes)
                .map_err(anyhow::Error::msg)
                .with_context(|| {
                    format!(
                        "{} is not an application Gyre can run",
                        pulled.reference.whole()
                    )
                })?;
            lay_out_app(cache, &lock, staging.path())?
        }
        None => lay_out_package(cache, pulled, staging.path())?,
    };
    std::fs::write(staging.path().join("spin.toml"), toml)
        .context("cannot write the generated manifest")?;
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, &app_dir) {
        // Another start of the same artifact got there first: use its copy.
        let _ = std::fs::remove_dir_all(&staged);
        if !manifest_path.is_file() {
            return Err(e).with_context(|| format!("cannot create {}", app_dir.display()));
        }
    }
    Ok(manifest_path)
}

/// The lock: a layer of its media type, or (older Spin) the OCI config.
fn lock_bytes(cache: &Cache, pulled: &Pulled) -> Result<Option<Vec<u8>>> {
    let manifest = &pulled.manifest;
    let descriptor =
        manifest
            .layers
            .iter()
            .find(|l| l.media_type == SPIN_APPLICATION_MEDIA_TYPE)
            .or((manifest.config.media_type == SPIN_APPLICATION_MEDIA_TYPE)
                .then_some(&manifest.config));
    descriptor
        .map(|d| read_blob(cache, &d.digest, "the locked application"))
        .transpose()
}

fn read_blob(cache: &Cache, digest: &str, what: &str) -> Result<Vec<u8>> {
    let path = cache
        .existing_blob(digest)
        .with_context(|| format!("{what} ({digest}) is not in the cache; pull again"))?;
    std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
}

/// Places `content` at `dest`: inline bytes written, digests linked from
/// the blob store.
fn place(cache: &Cache, content: &ContentRef, dest: &Path, what: &str) -> Result<()> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    if let Some(bytes) = &content.inline {
        return std::fs::write(dest, bytes)
            .with_context(|| format!("cannot write {}", dest.display()));
    }
    let digest = content
        .digest
        .as_deref()
        .with_context(|| format!("{what} has neither inline content nor a digest"))?;
    let blob = cache.existing_blob(digest).with_context(|| {
        format!("{what} ({digest}) is in the lock but in no layer of the artifact")
    })?;
    if std::fs::hard_link(&blob, dest).is_err() {
        std::fs::copy(&blob, dest)
            .with_context(|| format!("cannot copy {} to {}", blob.display(), dest.display()))?;
    }
    Ok(())
}

/// A lock path as a relative path of normal components only: a path from
/// a registry never escapes the directory it is placed in.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let relative = Path::new(path.trim_start_matches('/'));
    let normal = relative
        .components()
        .all(|c| matches!(c, PathComponent::Normal(_)));
    (normal && relative.components().next().is_some()).then(|| relative.to_path_buf())
}

fn lay_out_app(cache: &Cache, lock: &LockedApp, dir: &Path) -> Result<String> {
    let mut root = Table::new();
    root.insert("spin_manifest_version".into(), Toml::Integer(2));

    let mut application = Table::new();
    let text = |key: &str| lock.metadata_str(key).map(|s| Toml::String(s.to_string()));
    application.insert(
        "name".into(),
        text("name").unwrap_or_else(|| Toml::String("app".into())),
    );
    for key in ["version", "description"] {
        if let Some(value) = text(key) {
            application.insert(key.into(), value);
        }
    }
    if let Some(authors) = lock.metadata.get("authors").and_then(json_to_toml) {
        application.insert("authors".into(), authors);
    }
    if let Some(Toml::Table(triggers)) = lock.metadata.get("triggers").and_then(json_to_toml)
        && !triggers.is_empty()
    {
        application.insert("trigger".into(), Toml::Table(triggers));
    }
    root.insert("application".into(), Toml::Table(application));

    if !lock.variables.is_empty() {
        let mut variables = Table::new();
        for (name, v) in &lock.variables {
            let mut t = Table::new();
            match &v.default {
                Some(default) => t.insert("default".into(), Toml::String(default.clone())),
                None => t.insert("required".into(), Toml::Boolean(true)),
            };
            if v.secret {
                t.insert("secret".into(), Toml::Boolean(true));
            }
            if let Some(description) = &v.description {
                t.insert("description".into(), Toml::String(description.clone()));
            }
            variables.insert(name.clone(), Toml::Table(t));
        }
        root.insert("variables".into(), Toml::Table(variables));
    }

    let mut triggers = Table::new();
    for trigger in &lock.triggers {
        let config = json_to_toml(&trigger.trigger_config)
            .with_context(|| format!("trigger `{}` has no configuration table", trigger.id))?;
        let list = triggers
            .entry(trigger.trigger_type.clone())
            .or_insert_with(|| Toml::Array(Vec::new()));
        if let Toml::Array(list) = list {
            list.push(config);
        }
    }
    root.insert("trigger".into(), Toml::Table(triggers));

    let mut components = Table::new();
    for component in &lock.components {
        components.insert(
            component.id.clone(),
            Toml::Table(lay_out_component(cache, component, dir)?),
        );
    }
    root.insert("component".into(), Toml::Table(components));
    toml::to_string(&root).context("cannot write the generated manifest")
}

fn lay_out_component(cache: &Cache, component: &LockedComponent, dir: &Path) -> Result<Table> {
    let id = &component.id;
    if safe_relative(id).is_none() || id.contains('/') {
        bail!("component id {id:?} in the lock is not a valid id");
    }
    if !component.dependencies.is_empty() {
        let names: Vec<&String> = component.dependencies.keys().collect();
        bail!(
            "component `{id}` has dependencies the pusher did not compose ({names:?}); Gyre does not compose components yet: push it with Spin's default composition, or compose it with `wac plug`"
        );
    }
    let mut t = Table::new();
    let wasm = format!("wasm/{id}.wasm");
    place(
        cache,
        &component.source.content,
        &dir.join(&wasm),
        &format!("the Wasm of component `{id}`"),
    )?;
    t.insert("source".into(), Toml::String(wasm));
    if !component.files.is_empty() {
        let assets = format!("assets/{id}");
        for file in &component.files {
            let relative = safe_relative(&file.path).with_context(|| {
                format!("component `{id}` lists a file at {:?}, which is not a relative path inside the component", file.path)
            })?;
            place(
                cache,
                &file.content,
                &dir.join(&assets).join(relative),
                &format!("file {:?} of component `{id}`", file.path),
            )?;
        }
        let mut mount = Table::new();
        mount.insert("source".into(), Toml::String(assets));
        mount.insert("destination".into(), Toml::String("/".into()));
        t.insert("files".into(), Toml::Array(vec![Toml::Table(mount)]));
    }
    let metadata_keys = [
        ("description", "description"),
        ("allowed_outbound_hosts", "allowed_outbound_hosts"),
        ("key_value_stores", "key_value_stores"),
        ("databases", "sqlite_databases"),
        ("ai_models", "ai_models"),
    ];
    for (lock_key, manifest_key) in metadata_keys {
        if let Some(value) = component.metadata.get(lock_key).and_then(json_to_toml) {
            t.insert(manifest_key.into(), value);
        }
    }
    let strings = |map: &std::collections::BTreeMap<String, String>| {
        Toml::Table(
            map.iter()
                .map(|(k, v)| (k.clone(), Toml::String(v.clone())))
                .collect(),
        )
    };
    if !component.env.is_empty() {
        t.insert("environment".into(), strings(&component.env));
    }
    if !component.config.is_empty() {
        t.insert("variables".into(), strings(&component.config));
    }
    Ok(t)
}

/// A plain Wasm package: its one Wasm layer served on `/...`, as a bare
/// `.wasm` is.
fn lay_out_package(cache: &Cache, pulled: &Pulled, dir: &Path) -> Result<String> {
    let wasm_layers: Vec<_> = pulled
        .manifest
        .layers
        .iter()
        .filter(|l| {
            l.media_type == WASM_PACKAGE_MEDIA_TYPE || l.media_type == WASM_LAYER_MEDIA_TYPE
        })
        .collect();
    let [layer] = wasm_layers.as_slice() else {
        let types: Vec<&str> = pulled
            .manifest
            .layers
            .iter()
            .map(|l| l.media_type.as_str())
            .collect();
        bail!(
            "{} is neither a Spin application (no {SPIN_APPLICATION_MEDIA_TYPE} layer) nor a Wasm package (one {WASM_PACKAGE_MEDIA_TYPE} layer); its layers are {types:?}",
            pulled.reference.whole()
        );
    };
    let name = pulled
        .reference
        .repository()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let id = gyre_app::manifest::names::kebab_id_from(name);
    let content = ContentRef {
        digest: Some(layer.digest.clone()),
        ..ContentRef::default()
    };
    let wasm = format!("wasm/{id}.wasm");
    place(cache, &content, &dir.join(&wasm), "the package's Wasm")?;
    Ok(gyre_app::manifest::bare_component_manifest(name, &wasm))
}

/// A repository's last segment in kebab case: lowercase letters and
/// digits, single dashes between runs (`team/Hello_World` → `hello-world`).
/// Fit for a Kubernetes object name.
pub fn repository_name(repository: &str) -> String {
    let last = repository.rsplit('/').next().unwrap_or(repository);
    let mut name = String::new();
    for c in last.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('-') && !name.is_empty() {
            name.push('-');
        }
    }
    name.trim_end_matches('-').to_string()
}

fn json_to_toml(value: &Value) -> Option<Toml> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => Toml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Toml::Integer(i),
            None => Toml::Float(n.as_f64()?),
        },
        Value::String(s) => Toml::String(s.clone()),
        Value::Array(items) => Toml::Array(items.iter().filter_map(json_to_toml).collect()),
        Value::Object(map) => Toml::Table(
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), json_to_toml(v)?)))
                .collect(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_paths_stay_inside() {
        for (path, ok) in [
            ("static/index.html", true),
            ("/static/a.txt", true),
            ("../etc/passwd", false),
            ("a/../../b", false),
            ("", false),
        ] {
            assert_eq!(safe_relative(path).is_some(), ok, "{path}");
        }
    }
}
