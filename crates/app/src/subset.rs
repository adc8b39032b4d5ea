//! `gyre up -c ID`: run a subset of an app's components, as Spin's
//! experimental `--component-id` (SpinKube's selective deployment).
//!
//! The manifest keeps the named components and the triggers that run them;
//! everything else is dropped before any source is read. A kept component
//! allowed to chain to a dropped one (`http://other.spin.internal`, or
//! `*.spin.internal`) would fail on its first such request, so that is an
//! error at start (spin-operator#357), naming the component to add.

use anyhow::{Result, bail};
use gyre_manifest::Manifest;

pub(crate) fn retain_components(manifest: &mut Manifest, keep: &[String]) -> Result<()> {
    let unknown: Vec<&str> = keep
        .iter()
        .filter(|id| !manifest.components.contains_key(id.as_str()))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = manifest.components.keys().map(String::as_str).collect();
        bail!(
            "--component-id names {} the app does not have; its components are: {}",
            unknown
                .iter()
                .map(|id| format!("`{id}`"))
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        );
    }
    for id in keep {
        let component = &manifest.components[id.as_str()];
        for entry in &component.allowed_outbound_hosts {
            let Some(target) = internal_target(entry) else {
                continue;
            };
            match target {
                "*" => bail!(
                    "component `{id}` may call every component of the app (`{entry}` in its \
                     allowed_outbound_hosts), but --component-id runs only {}; run them all, or \
                     narrow the entry to the components it calls",
                    keep.join(", ")
                ),
                other if !keep.iter().any(|k| k == other) => bail!(
                    "component `{id}` may call component `{other}` (`{entry}` in its \
                     allowed_outbound_hosts), which --component-id leaves out; add `-c {other}`"
                ),
                _ => {}
            }
        }
    }
    manifest.components.retain(|id, _| keep.contains(id));
    manifest.triggers.retain(|trigger| {
        trigger
            .component
            .as_ref()
            .is_some_and(|component| keep.contains(component))
    });
    Ok(())
}

/// The component a `*.spin.internal` allow-list entry reaches (`*` for any),
/// or `None` for any other entry.
fn internal_target(entry: &str) -> Option<&str> {
    let rest = entry.split_once("://").map_or(entry, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    host.strip_suffix(".spin.internal")
}

#[cfg(test)]
mod tests {
    use super::internal_target;

    #[test]
    fn internal_targets() {
        for (entry, target) in [
            ("http://backend.spin.internal", Some("backend")),
            ("https://backend.spin.internal:443/", Some("backend")),
            ("*://*.spin.internal", Some("*")),
            ("http://*.spin.internal:*", Some("*")),
            ("https://example.com", None),
            ("http://self", None),
            ("http://spin.internal.example.com", None),
        ] {
            assert_eq!(internal_target(entry), target, "{entry}");
        }
    }
}
