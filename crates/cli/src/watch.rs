//! `gyre watch`: build, serve, and on every change rebuild what changed and
//! swap it into the running server — no restart, no dropped request.
//!
//! The watcher runs on its own thread: it waits for a debounced batch of
//! changes (`gyre-watch` says what they mean), runs the builds they call
//! for, takes in what those builds wrote (so a build never starts another
//! one), and sends the server a [`Reload`]. The server (`up`) compiles the
//! new version off the request path and swaps it in; a failed build or
//! load leaves the last good version serving.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use gyre_watch::{Changes, WatchPlan, Watcher};

use crate::term;
use crate::up::{Reload, UpArgs};

pub(crate) const EXAMPLES: &str = "\
Examples:
  gyre watch                              build, serve, rebuild and reload on every change
  gyre watch --listen 127.0.0.1:0 -e MODE=dev
  gyre watch --skip-build -d 500          reload on changed sources only; wait 500 ms for quiet";

/// `-c` is `--clear` here, as in `spin watch`; `--component-id` keeps its long form.
#[derive(Args, Debug)]
#[command(mut_arg("component_ids", |arg| arg.short(None)))]
pub(crate) struct WatchArgs {
    /// Milliseconds of quiet to wait for after a change before acting.
    #[arg(short = 'd', long, default_value_t = 100, value_name = "MS")]
    debounce: u64,

    /// Do not build: reload when a component's source file changes.
    #[arg(long)]
    skip_build: bool,

    /// Clear the screen before each rebuild.
    #[arg(short = 'c', long)]
    clear: bool,

    /// Every `gyre up` flag.
    #[command(flatten)]
    up: UpArgs,
}

pub(crate) fn run(args: WatchArgs) -> Result<ExitCode> {
    let manifest_path = gyre_app::resolve_manifest_path(args.up.from.as_deref())?;
    if !args.skip_build {
        crate::build::build_app(&manifest_path, args.up.profile.as_deref(), &[], false)?;
    }
    let runtime_config = args.up.runtime_config_file.clone();
    let profile = args.up.profile.clone();
    let plan = plan(
        &manifest_path,
        profile.as_deref(),
        runtime_config.as_deref(),
    )?;
    let watcher = Watcher::new(&plan)?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let loop_state = WatchLoop {
        manifest_path,
        profile,
        runtime_config,
        plan,
        watcher,
        debounce: Duration::from_millis(args.debounce),
        skip_build: args.skip_build,
        clear: args.clear,
        reloads: tx,
    };
    std::thread::Builder::new()
        .name("gyre-watch".into())
        .spawn(move || loop_state.run())
        .context("cannot start the watcher thread")?;
    crate::up::run_with_reloads(args.up, Some(rx))
}

fn plan(
    manifest_path: &std::path::Path,
    profile: Option<&str>,
    runtime_config: Option<&std::path::Path>,
) -> Result<WatchPlan> {
    let manifest = crate::build::manifest_for(manifest_path, profile)?;
    WatchPlan::new(&manifest, manifest_path, runtime_config)
}

struct WatchLoop {
    manifest_path: PathBuf,
    profile: Option<String>,
    runtime_config: Option<PathBuf>,
    plan: WatchPlan,
    watcher: Watcher,
    debounce: Duration,
    skip_build: bool,
    clear: bool,
    reloads: tokio::sync::mpsc::UnboundedSender<Reload>,
}

impl WatchLoop {
    fn run(mut self) {
        while let Some(paths) = self.watcher.next_batch(self.debounce) {
            if paths.is_empty() {
                continue;
            }
            let changes = self.plan.classify(&paths);
            if changes.is_empty() {
                continue;
            }
            if !self.act(changes) {
                break;
            }
        }
    }

    /// Builds and reloads for one batch; `false` once the server is gone.
    fn act(&mut self, mut changes: Changes) -> bool {
        if changes.reload_app {
            // A changed manifest may change what is watched.
            match plan(
                &self.manifest_path,
                self.profile.as_deref(),
                self.runtime_config.as_deref(),
            ) {
                Ok(plan) => match Watcher::new(&plan) {
                    Ok(watcher) => {
                        self.plan = plan;
                        self.watcher = watcher;
                    }
                    Err(e) => eprintln!("{} {e:#}", term::warning_label()),
                },
                Err(e) => {
                    eprintln!(
                        "{} the manifest does not load; still serving the previous version: {e:#}",
                        term::fail_mark()
                    );
                    return true;
                }
            }
        }
        if !changes.rebuild.is_empty() && !self.skip_build {
            if self.clear {
                let _ = console::Term::stderr().clear_screen();
            }
            let only: Vec<String> = changes.rebuild.iter().cloned().collect();
            let built = (|| -> Result<()> {
                let manifest =
                    crate::build::manifest_for(&self.manifest_path, self.profile.as_deref())?;
                let dir = gyre_app::app_dir(&self.manifest_path);
                let plan = gyre_build::plan(&manifest, &dir, &only)?;
                crate::build::run_plan(&plan)
            })();
            // What the build wrote is taken in now: it may reload
            // (a built source, a `files` directory) but never rebuilds.
            let written = self
                .watcher
                .drain(self.debounce.max(Duration::from_millis(50)));
            let after = self.plan.classify(&written);
            changes.reload_components.extend(after.reload_components);
            changes.reload_app |= after.reload_app;
            if let Err(e) = built {
                eprintln!(
                    "{} {e:#}\n  still serving the previous version; fix it and save again",
                    term::fail_mark()
                );
                return true;
            }
            changes
                .reload_components
                .extend(changes.rebuild.iter().cloned());
        }
        let request = if changes.reload_app {
            Reload::App
        } else if !changes.reload_components.is_empty() {
            Reload::Components(changes.reload_components.into_iter().collect())
        } else {
            return true;
        };
        self.reloads.send(request).is_ok()
    }
}
