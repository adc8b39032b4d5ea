//! Registry credentials, kept where Docker, Podman's Docker mode and Spin
//! read them: `auths` in `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`). Reading goes through `docker_credential`, so
//! credential helpers (`credsStore`, `credHelpers`) work as they do for
//! `docker pull`; `gyre registry login` writes the `auths` entry and keeps
//! every other field of the file as it was.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde_json::{Map, Value};

/// The Docker config file credentials are read from and written to.
pub fn docker_config_path() -> Option<PathBuf> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))?;
    Some(dir.join("config.json"))
}

/// The server key `login` stores and lookups use: `https://registry.example.com` and
/// `registry.example.com` name the same registry, and Docker Hub is `index.docker.io`.
pub fn server_key(server: &str) -> String {
    let trimmed = server
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = trimmed.split('/').next().unwrap_or(trimmed);
    match host {
        "docker.io" | "registry-1.docker.io" => "index.docker.io".to_string(),
        other => other.to_string(),
    }
}

/// The credentials stored for `server`, or anonymous access.
pub fn auth_for(server: &str) -> RegistryAuth {
    let key = server_key(server);
    match docker_credential::get_credential(&key) {
        Ok(docker_credential::DockerCredential::UsernamePassword(user, pass)) => {
            RegistryAuth::Basic(user, pass)
        }
        Ok(docker_credential::DockerCredential::IdentityToken(token)) => {
            RegistryAuth::Bearer(token)
        }
        Err(e) => {
            tracing::debug!("no stored credentials for {key} ({e:?}); trying anonymously");
            RegistryAuth::Anonymous
        }
    }
}

/// Stores `user`/`password` for `server` in the Docker config file and
/// returns the file's path.
pub fn store_credentials(server: &str, user: &str, password: &str) -> Result<PathBuf> {
    let path = docker_config_path()
        .context("cannot find the Docker config file: set HOME or DOCKER_CONFIG")?;
    let mut config: Map<String, Value> = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not valid JSON; fix or remove it, then log in again",
                path.display()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let auths = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(auths) = auths else {
        anyhow::bail!("`auths` in {} is not an object", path.display());
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut entry = Map::new();
    entry.insert("auth".into(), Value::String(encoded));
    auths.insert(server_key(server), Value::Object(entry));
    let text = serde_json::to_vec_pretty(&config)?;
    crate::cache::write_atomically(&path, &text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {} to its owner", path.display()))?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_keys_name_the_registry_host() {
        for (input, key) in [
            ("registry.example.com", "registry.example.com"),
            ("https://registry.example.com", "registry.example.com"),
            ("https://registry.example.com/v2/", "registry.example.com"),
            ("docker.io", "index.docker.io"),
            ("127.0.0.1:5000", "127.0.0.1:5000"),
        ] {
            assert_eq!(server_key(input), key, "{input}");
        }
    }
}
