//! Building an application's components: `[component.<id>.build]`.
//!
//! [`plan`] orders the components to build (a component another one
//! depends on — `dependencies = { x = { component = "y" } }` or a `path`
//! that is another component's `source` — builds first; otherwise manifest
//! order) and [`run_step`] runs one component's commands through the shell
//! in its `workdir`, streaming each output line to a [`BuildObserver`] and
//! keeping the last lines for the error. The first failure stops the
//! build with a [`BuildFailed`] naming the component, the command, its exit
//! status and the end of its output. This crate does not print: the CLI's
//! observer decides between spinners and plain lines.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use gyre_manifest::{ComponentSource, Dependency, Manifest};

/// How many lines of a failed command's output the error keeps.
pub const TAIL_LINES: usize = 20;

/// One component to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStep {
    /// The component id.
    pub component: String,
    /// Shell commands, run in order.
    pub commands: Vec<String>,
    /// Where they run (the manifest's directory joined with `workdir`).
    pub workdir: PathBuf,
}

/// What a build found to do.
#[derive(Debug, Clone, Default)]
pub struct BuildPlan {
    /// Components with a build command, dependencies first.
    pub steps: Vec<BuildStep>,
    /// Components without one (nothing to do for them).
    pub without_command: Vec<String>,
}

/// Orders the components of `manifest` (all of them, or those in `only`).
pub fn plan(manifest: &Manifest, app_dir: &Path, only: &[String]) -> Result<BuildPlan> {
    for id in only {
        if !manifest.components.contains_key(id) {
            let known: Vec<&str> = manifest.components.keys().map(String::as_str).collect();
            bail!(
                "`-c {id}`: the application has no component `{id}`; components: {}",
                known.join(", ")
            );
        }
    }
    let selected: Vec<&str> = manifest
        .components
        .keys()
        .map(String::as_str)
        .filter(|id| only.is_empty() || only.iter().any(|o| o == id))
        .collect();
    let mut ordered: Vec<&str> = Vec::new();
    let mut visiting: Vec<&str> = Vec::new();
    for id in &selected {
        visit(manifest, id, &selected, &mut ordered, &mut visiting)?;
    }
    let mut plan = BuildPlan::default();
    for id in ordered {
        let component = &manifest.components[id];
        match &component.build {
            Some(build) if !build.commands.is_empty() => plan.steps.push(BuildStep {
                component: id.to_string(),
                commands: build.commands.clone(),
                workdir: match &build.workdir {
                    Some(dir) => app_dir.join(dir),
                    None => app_dir.to_path_buf(),
                },
            }),
            _ => plan.without_command.push(id.to_string()),
        }
    }
    Ok(plan)
}

/// Depth-first: a component's dependencies that are components of the app
/// go before it.
fn visit<'m>(
    manifest: &'m Manifest,
    id: &'m str,
    selected: &[&'m str],
    ordered: &mut Vec<&'m str>,
    visiting: &mut Vec<&'m str>,
) -> Result<()> {
    if ordered.contains(&id) {
        return Ok(());
    }
    if visiting.contains(&id) {
        bail!(
            "components depend on each other in a circle: {} -> {id}",
            visiting.join(" -> ")
        );
    }
    visiting.push(id);
    for dependency in built_dependencies(manifest, id) {
        if selected.contains(&dependency) {
            visit(manifest, dependency, selected, ordered, visiting)?;
        }
    }
    visiting.pop();
    ordered.push(id);
    Ok(())
}

/// The components of the app whose output `id` composes in.
fn built_dependencies<'m>(manifest: &'m Manifest, id: &str) -> Vec<&'m str> {
    let Some(component) = manifest.components.get(id) else {
        return Vec::new();
    };
    component
        .dependencies
        .values()
        .filter_map(|dependency| match &dependency.source {
            Dependency::AppComponent { component, .. } => manifest
                .components
                .get_key_value(component)
                .map(|(k, _)| k.as_str()),
            Dependency::Local { path, .. } => manifest
                .components
                .iter()
                .find(|(_, c)| matches!(&c.source, ComponentSource::Local(s) if same_path(s, path)))
                .map(|(k, _)| k.as_str()),
            _ => None,
        })
        .collect()
}

fn same_path(a: &str, b: &str) -> bool {
    let norm = |p: &str| p.trim_start_matches("./").to_string();
    norm(a) == norm(b)
}

/// Hears about a build as it runs.
pub trait BuildObserver {
    /// A command of `component` starts.
    fn command_started(&self, component: &str, command: &str);
    /// A line of its output (stdout and stderr interleaved).
    fn output_line(&self, component: &str, line: &str);
}

/// A build command failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "building component `{component}` failed: `{command}` {status} (in {workdir}){}",
    tail_text(.tail)
)]
pub struct BuildFailed {
    /// The component id.
    pub component: String,
    /// The command that failed.
    pub command: String,
    /// How it ended.
    pub status: ExitText,
    /// Where it ran.
    pub workdir: String,
    /// Its last lines of output.
    pub tail: Vec<String>,
}

/// How a command ended, worded for the error.
#[derive(Debug)]
pub struct ExitText(String);

impl std::fmt::Display for ExitText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn exit_text(status: ExitStatus) -> ExitText {
    ExitText(match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => "was killed by a signal".to_string(),
    })
}

fn tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        " and printed nothing".to_string()
    } else {
        format!("; its last output:\n    {}", tail.join("\n    "))
    }
}

/// Runs one component's commands in order; the first failure stops it.
pub fn run_step(step: &BuildStep, observer: &dyn BuildObserver) -> Result<Duration> {
    let started = Instant::now();
    if !step.workdir.is_dir() {
        bail!(
            "building component `{}`: its workdir {} does not exist",
            step.component,
            step.workdir.display()
        );
    }
    for command in &step.commands {
        observer.command_started(&step.component, command);
        let (status, tail) = run_command(command, &step.workdir, |line| {
            observer.output_line(&step.component, line);
        })
        .map_err(|e| {
            anyhow::anyhow!(
                "building component `{}`: cannot run `{command}` in {}: {e}",
                step.component,
                step.workdir.display()
            )
        })?;
        if !status.success() {
            return Err(BuildFailed {
                component: step.component.clone(),
                command: command.clone(),
                status: exit_text(status),
                workdir: step.workdir.display().to_string(),
                tail,
            }
            .into());
        }
    }
    Ok(started.elapsed())
}

/// Runs `sh -c command`, passing each output line on and keeping the last
/// [`TAIL_LINES`].
fn run_command(
    command: &str,
    workdir: &Path,
    mut line: impl FnMut(&str),
) -> std::io::Result<(ExitStatus, Vec<String>)> {
    let (reader, writer) = std::io::pipe()?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .spawn()?;
    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
    for text in BufReader::new(reader).lines() {
        let Ok(text) = text else { break };
        line(&text);
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(text);
    }
    let status = child.wait()?;
    Ok((status, tail.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Quiet;
    impl BuildObserver for Quiet {
        fn command_started(&self, _: &str, _: &str) {}
        fn output_line(&self, _: &str, _: &str) {}
    }

    fn manifest(text: &str) -> Manifest {
        gyre_manifest::parse(gyre_manifest::SourceFile::new(
            Path::new("spin.toml"),
            text.to_string(),
        ))
        .expect("valid manifest")
    }

    #[test]
    fn dependencies_build_first_then_manifest_order() {
        let m = manifest(
            r#"spin_manifest_version = 2
[application]
name = "a"
[[trigger.http]]
route = "/..."
component = "front"
[component.front]
source = "front.wasm"
build = { command = "make front" }
dependencies = { "gyre:lib/api" = { path = "lib/lib.wasm" } }
[component.plain]
source = "plain.wasm"
[component.lib]
source = "lib/lib.wasm"
build = { command = "make lib", workdir = "lib" }
"#,
        );
        let plan = plan(&m, Path::new("/app"), &[]).expect("plan");
        let order: Vec<&str> = plan.steps.iter().map(|s| s.component.as_str()).collect();
        assert_eq!(order, ["lib", "front"]);
        assert_eq!(plan.steps[0].workdir, Path::new("/app/lib"));
        assert_eq!(plan.without_command, ["plain"]);
        let err = super::plan(&m, Path::new("/app"), &["nope".into()]).expect_err("unknown");
        assert!(err.to_string().contains("no component `nope`"), "{err}");
    }

    #[test]
    fn a_failed_command_names_component_command_status_and_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let step = BuildStep {
            component: "api".into(),
            commands: vec![
                "echo first".into(),
                "echo oops >&2; exit 3".into(),
                "echo never".into(),
            ],
            workdir: dir.path().to_path_buf(),
        };
        let err = run_step(&step, &Quiet).expect_err("fails");
        let failed = err.downcast_ref::<BuildFailed>().expect("BuildFailed");
        assert_eq!(failed.component, "api");
        assert_eq!(failed.command, "echo oops >&2; exit 3");
        assert_eq!(failed.status.to_string(), "exited with status 3");
        assert_eq!(failed.tail, ["oops"]);
    }
}
