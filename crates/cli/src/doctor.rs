//! `gyre doctor`: everything that would stop or hobble `gyre up`, found
//! without serving — the manifest and runtime config, each component's
//! source, the handler it exports, the engine it lands on, and the imports
//! Gyre does not provide. Exit 1 on an error, 0 with warnings only.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use gyre_manifest::{ComponentSource, ManifestVersion};

use crate::term;

pub(crate) const EXAMPLES: &str = "\
Examples:
  gyre doctor                     check ./spin.toml
  gyre doctor -f app/ --runtime-config-file app/runtime-config.toml";

#[derive(Args, Debug)]
pub(crate) struct DoctorArgs {
    /// The application: a spin.toml, or a directory holding one.
    #[arg(
        short = 'f',
        long = "from",
        visible_alias = "file",
        value_name = "APPLICATION"
    )]
    from: Option<PathBuf>,

    /// A runtime config file to validate with it.
    #[arg(long, env = "RUNTIME_CONFIG_FILE", value_name = "FILE")]
    runtime_config_file: Option<PathBuf>,
}

#[derive(Default)]
struct Findings {
    errors: usize,
    warnings: usize,
}

impl Findings {
    fn error(&mut self, message: impl std::fmt::Display) {
        self.errors += 1;
        eprintln!("  {} {message}", term::error_label());
    }

    fn warning(&mut self, message: impl std::fmt::Display) {
        self.warnings += 1;
        eprintln!("  {} {message}", term::warning_label());
    }
}

pub(crate) fn run(args: DoctorArgs) -> Result<ExitCode> {
    let manifest_path = gyre_app::resolve_manifest_path(args.from.as_deref())?;
    let mut findings = Findings::default();
    eprintln!("Checking {}", manifest_path.display());
    let manifest = match gyre_manifest::load_in_progress(&manifest_path) {
        Ok(m) => m,
        Err(e) => {
            findings.error(e);
            return Ok(summary(&findings));
        }
    };
    if manifest.version == ManifestVersion::V1 {
        findings.warning(
            "this is a version 1 manifest (Spin 1.x). Gyre runs it, but version 2 is current: \
             move `[[component]]` to `[component.<id>]` with `[[trigger.<type>]]` entries and set `spin_manifest_version = 2`",
        );
    }
    for warning in &manifest.warnings {
        findings.warning(warning);
    }
    if manifest.triggers.is_empty() {
        findings.warning("the application has no triggers: `gyre up` will refuse to start it");
    }
    if let Some(rc) = &args.runtime_config_file {
        match gyre_manifest::load_runtime_config(rc) {
            Ok(config) => {
                for warning in &config.warnings {
                    findings.warning(warning);
                }
            }
            Err(e) => findings.error(e),
        }
    }
    let app_dir = gyre_app::app_dir(&manifest_path);
    let engine = crate::check::engine()?;
    for (id, component) in &manifest.components {
        eprintln!("component `{id}`");
        match &component.source {
            ComponentSource::Local(path) => {
                let full = app_dir.join(path);
                if !full.is_file() {
                    if component.build.is_some() {
                        findings.error(format!(
                            "its source {path} does not exist: run `gyre build` (the component has a build command)"
                        ));
                    } else {
                        findings.error(format!("its source {path} does not exist"));
                    }
                    continue;
                }
                let size = std::fs::metadata(&full).map(|m| m.len()).unwrap_or(0);
                eprintln!("  source   {path} ({:.1} MB)", size as f64 / 1e6);
            }
            ComponentSource::Remote { url, .. } => {
                eprintln!("  source   {url} (downloaded and checked by `gyre up`)");
                continue;
            }
            ComponentSource::Registry {
                package, version, ..
            } => {
                findings.error(format!(
                    "its source is the registry package {package}@{version}; registry sources are not supported by Gyre yet"
                ));
                continue;
            }
        }
        match crate::check::check_component(&engine, &manifest, &app_dir, id) {
            Ok(report) => {
                eprintln!("  handler  {}", report.handler);
                eprintln!(
                    "  engine   {}",
                    if report.engine == "concurrent" {
                        "concurrent (component-model async)"
                    } else {
                        "synchronous (no component-model async: faster calls)"
                    }
                );
                for import in &report.not_provided {
                    findings.warning(format!(
                        "component `{id}` imports {import}, which Gyre does not provide yet; calls to it will fail"
                    ));
                }
            }
            Err(e) => findings.error(format!("{e:#}")),
        }
    }
    Ok(summary(&findings))
}

fn summary(findings: &Findings) -> ExitCode {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if findings.errors > 0 {
        eprintln!(
            "{} {}, {}",
            term::fail_mark(),
            plural(findings.errors, "error"),
            plural(findings.warnings, "warning")
        );
        ExitCode::from(1)
    } else {
        eprintln!(
            "{} no errors, {}",
            term::ok_mark(),
            plural(findings.warnings, "warning")
        );
        ExitCode::SUCCESS
    }
}
