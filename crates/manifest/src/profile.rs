//! Build profiles (`[component.<id>.profile.<name>]`, `--profile NAME`):
//! a profile replaces a component's `source` and build command and merges
//! into its `environment` and `dependencies`, as Spin applies them.

use crate::{BuildConfig, Manifest, ManifestError};

impl Manifest {
    /// Applies profile `name` to every component that defines it; a name no
    /// component defines is an error.
    pub fn apply_profile(&mut self, name: &str) -> Result<(), ManifestError> {
        let mut found = false;
        for component in self.components.values_mut() {
            let Some(profile) = component.profiles.get(name).cloned() else {
                continue;
            };
            found = true;
            if let Some((source, span)) = profile.source {
                component.source = source;
                component.source_span = span;
            }
            if let Some(commands) = profile.build_commands {
                match &mut component.build {
                    Some(build) => build.commands = commands,
                    None => {
                        component.build = Some(BuildConfig {
                            commands,
                            workdir: None,
                            watch: Vec::new(),
                        })
                    }
                }
            }
            component.environment.extend(profile.environment);
            component.dependencies.extend(profile.dependencies);
        }
        if found {
            return Ok(());
        }
        let mut defined: Vec<&str> = self
            .components
            .values()
            .flat_map(|c| c.profiles.keys().map(String::as_str))
            .collect();
        defined.sort_unstable();
        defined.dedup();
        let error = self.source.error(
            None,
            "",
            format!("Profile {name} is not defined in this application"),
        );
        Err(if defined.is_empty() {
            error.with_help("add `[component.<id>.profile.<name>]` tables to define one")
        } else {
            error.with_help(format!("profiles defined: {}", defined.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{ComponentSource, SourceFile, parse};

    const MANIFEST: &str = r#"spin_manifest_version = 2
[application]
name = "profiles"
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "target/release/web.wasm"
environment = { MODE = "release", KEEP = "yes" }
[component.web.build]
command = "make release"
watch = ["src/**"]
[component.web.profile.debug]
source = "target/debug/web.wasm"
build.command = "make debug"
environment = { MODE = "debug" }
"#;

    fn manifest() -> crate::Manifest {
        parse(SourceFile::new("spin.toml", MANIFEST)).expect("manifest")
    }

    #[test]
    fn a_profile_replaces_source_and_build_and_merges_environment() {
        let mut m = manifest();
        m.apply_profile("debug").expect("debug");
        let web = &m.components["web"];
        assert_eq!(
            web.source,
            ComponentSource::Local("target/debug/web.wasm".into())
        );
        let build = web.build.as_ref().expect("build");
        assert_eq!(build.commands, ["make debug"]);
        assert_eq!(build.watch, ["src/**"]);
        assert_eq!(web.environment["MODE"], "debug");
        assert_eq!(web.environment["KEEP"], "yes");
    }

    #[test]
    fn an_undefined_profile_is_an_error_naming_the_defined_ones() {
        let error = manifest().apply_profile("fast").expect_err("undefined");
        let text = error.to_string();
        assert!(
            text.contains("Profile fast is not defined in this application"),
            "{text}"
        );
        assert!(text.contains("profiles defined: debug"), "{text}");
    }

    #[test]
    fn an_unknown_field_in_a_profile_is_refused() {
        let text = MANIFEST.replace("build.command = \"make debug\"", "files = [\"x\"]");
        let error = parse(SourceFile::new("spin.toml", text)).expect_err("unknown field");
        assert!(
            error.to_string().contains("component.web.profile.debug"),
            "{error}"
        );
    }
}
