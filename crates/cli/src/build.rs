//! `gyre build`: run every component's build command, then check what was
//! built (see `check`), so a broken app fails here rather than at `up`.
//!
//! On a terminal each component gets a spinner with its elapsed time and
//! its output stays out of the way unless the build fails; piped, every
//! command and output line is a plain line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Parser};
use gyre_build::{BuildObserver, BuildPlan};

use crate::term;

pub(crate) const EXAMPLES: &str = "\
Examples:
  gyre build                         build every component of ./spin.toml
  gyre build -c api -c worker        only these components
  gyre build --up --listen 127.0.0.1:8080   build, then run with these `up` flags";

#[derive(Args, Debug)]
pub(crate) struct BuildArgs {
    /// The application: a spin.toml, or a directory holding one.
    #[arg(
        short = 'f',
        long = "from",
        visible_alias = "file",
        value_name = "APPLICATION"
    )]
    pub(crate) from: Option<PathBuf>,

    /// Build only this component (repeatable).
    #[arg(short = 'c', long = "component-id", value_name = "ID")]
    pub(crate) components: Vec<String>,

    /// Build with this profile (`[component.<id>.profile.<name>]`).
    #[arg(long, value_name = "NAME")]
    pub(crate) profile: Option<String>,

    /// Run the application after a successful build.
    #[arg(short = 'u', long)]
    up: bool,

    /// Flags for `gyre up`, after --up.
    #[arg(
        requires = "up",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "UP_ARGS"
    )]
    up_args: Vec<String>,

    /// Do not compile and check the built components.
    #[arg(long)]
    skip_check: bool,
}

/// Parses the arguments given to `build --up`.
#[derive(Parser, Debug)]
#[command(name = "gyre up", no_binary_name = true)]
struct UpOnly {
    #[command(flatten)]
    up: crate::up::UpArgs,
}

pub(crate) fn run(args: BuildArgs) -> Result<ExitCode> {
    let manifest_path = gyre_app::resolve_manifest_path(args.from.as_deref())?;
    // Parse `up`'s flags before building, so a typo costs no build.
    let up_args = if args.up {
        let mut up = UpOnly::try_parse_from(&args.up_args)?.up;
        if up.from.is_none() {
            up.from = Some(manifest_path.clone());
        }
        if up.profile.is_none() {
            up.profile = args.profile.clone();
        }
        Some(up)
    } else {
        None
    };
    build_app(
        &manifest_path,
        args.profile.as_deref(),
        &args.components,
        !args.skip_check,
    )?;
    match up_args {
        Some(up) => crate::up::run(up),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// The manifest at `manifest_path` as the developer tools read it (an app
/// under construction), with `profile` applied.
pub(crate) fn manifest_for(
    manifest_path: &std::path::Path,
    profile: Option<&str>,
) -> Result<gyre_manifest::Manifest> {
    let mut manifest = gyre_manifest::load_in_progress(manifest_path)?;
    if let Some(profile) = profile {
        manifest.apply_profile(profile)?;
    }
    Ok(manifest)
}

/// Builds (and checks) the components of the app at `manifest_path`.
pub(crate) fn build_app(
    manifest_path: &std::path::Path,
    profile: Option<&str>,
    only: &[String],
    check: bool,
) -> Result<()> {
    let manifest = manifest_for(manifest_path, profile)?;
    let app_dir = gyre_app::app_dir(manifest_path);
    let plan = gyre_build::plan(&manifest, &app_dir, only)?;
    if plan.steps.is_empty() {
        eprintln!("None of the components have a build command.");
        return Ok(());
    }
    run_plan(&plan)?;
    if check {
        check_built(&manifest, &app_dir, &plan)?;
    }
    eprintln!("Finished building all components.");
    Ok(())
}

/// Runs every step; the first failure stops the build.
pub(crate) fn run_plan(plan: &BuildPlan) -> Result<()> {
    let observer = Observer::new();
    for step in &plan.steps {
        observer.start(&step.component);
        match gyre_build::run_step(step, &observer) {
            Ok(elapsed) => observer.finish(&step.component, elapsed),
            Err(e) => {
                observer.fail(&step.component);
                return Err(e);
            }
        }
    }
    Ok(())
}

fn check_built(
    manifest: &gyre_manifest::Manifest,
    app_dir: &std::path::Path,
    plan: &BuildPlan,
) -> Result<()> {
    let engine = crate::check::engine()?;
    let spinner = term::progress_on_stderr().then(|| spinner("checking the built components"));
    let mut problems = Vec::new();
    for step in &plan.steps {
        if crate::check::local_source(manifest, app_dir, &step.component).is_none() {
            continue;
        }
        match crate::check::check_component(&engine, manifest, app_dir, &step.component) {
            Ok(report) if !report.not_provided.is_empty() => {
                let line = format!(
                    "component `{}`: {} imported interfaces are not provided by Gyre (calls to them fail); `gyre doctor` lists them",
                    report.id,
                    report.not_provided.len()
                );
                match &spinner {
                    Some(s) => s.println(line),
                    None => eprintln!("{line}"),
                }
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    if !problems.is_empty() {
        bail!(
            "the build succeeded, but what it built will not run:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

pub(crate) fn spinner(message: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Spinners on a terminal, plain lines otherwise.
struct Observer {
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
    fancy: bool,
}

impl Observer {
    fn new() -> Self {
        Observer {
            bar: std::sync::Mutex::new(None),
            fancy: term::progress_on_stderr(),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&mut Option<indicatif::ProgressBar>)) {
        if let Ok(mut bar) = self.bar.lock() {
            f(&mut bar);
        }
    }

    fn start(&self, component: &str) {
        if self.fancy {
            self.with_bar(|bar| *bar = Some(spinner(&format!("building `{component}`"))));
        }
    }

    fn finish(&self, component: &str, elapsed: Duration) {
        let line = format!(
            "{} built `{component}` in {:.1} s",
            term::ok_mark(),
            elapsed.as_secs_f64()
        );
        self.with_bar(|bar| {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
        });
        eprintln!("{line}");
    }

    fn fail(&self, component: &str) {
        self.with_bar(|bar| {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
        });
        eprintln!("{} building `{component}` failed", term::fail_mark());
    }
}

impl BuildObserver for Observer {
    fn command_started(&self, component: &str, command: &str) {
        if self.fancy {
            self.with_bar(|bar| {
                if let Some(b) = bar {
                    b.set_message(format!("building `{component}`: {command}"));
                }
            });
        } else {
            eprintln!("Building component `{component}` with `{command}`");
        }
    }

    fn output_line(&self, _component: &str, line: &str) {
        if !self.fancy {
            eprintln!("{line}");
        }
    }
}
