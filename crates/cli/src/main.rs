//! `gyre`: run Spin applications.
//!
//! Only this crate talks to the terminal: it parses arguments into validated
//! settings once, prints the startup listing, echoes guest output and
//! reports errors as one chain (`Error: …` then `Caused by:` lines) with
//! exit code 1.

mod build;
mod check;
mod doctor;
mod kube;
mod new;
mod registry;
mod templates;
mod term;
mod up;
mod watch;

/// Serving allocates and frees many small, short-lived objects per request
/// (hyper's buffers, Wasmtime's stores and tables); mimalloc's thread-local
/// free lists make that measurably cheaper than the system allocator
/// (`bench/run.sh`). Built without transparent huge pages (`no_thp`): with
/// them its arena was backed by 2 MiB pages, 14 MB resident at idle for a
/// few MB of heap, for no measurable gain per request.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run Spin applications, unchanged, faster.
#[derive(Parser, Debug)]
#[command(name = "gyre", version, about, long_about = None, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "\
Examples:
  gyre new -t http-py hello -a             create an app from a template
  gyre build                               build every component of ./spin.toml
  gyre up                                  run ./spin.toml on 127.0.0.1:3000
  gyre up -f path/to/app --listen 127.0.0.1:8080
  gyre up --listen 127.0.0.1:0 --format json   pick a free port, print routes as JSON
  gyre up -e LOG_LEVEL=debug               set an environment variable in every component";

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new application from a template.
    #[command(visible_alias = "n", after_help = new::NEW_EXAMPLES)]
    New(new::NewArgs),
    /// Add a component to an application from a template.
    #[command(visible_alias = "a", after_help = new::ADD_EXAMPLES)]
    Add(new::AddArgs),
    /// Build the application's components.
    #[command(visible_alias = "b", after_help = build::EXAMPLES)]
    Build(build::BuildArgs),
    /// Start the application.
    #[command(visible_alias = "u", after_help = up::EXAMPLES)]
    Up(up::UpArgs),
    /// Build, serve, and rebuild and reload in place on every change.
    #[command(visible_alias = "w", after_help = watch::EXAMPLES)]
    Watch(watch::WatchArgs),
    /// Check an application without running it.
    #[command(after_help = doctor::EXAMPLES)]
    Doctor(doctor::DoctorArgs),
    /// Install, list and remove templates.
    #[command(visible_alias = "template", after_help = templates::EXAMPLES)]
    Templates {
        #[command(subcommand)]
        command: templates::TemplatesCommand,
    },
    /// Push, pull and log in to OCI registries (Spin's artifact format).
    #[command(visible_alias = "oci", after_help = registry::EXAMPLES)]
    Registry {
        #[command(subcommand)]
        command: registry::RegistryCommand,
    },
    /// Kubernetes manifests for an app in a registry.
    Kube {
        #[command(subcommand)]
        command: kube::KubeCommand,
    },
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  gyre completions bash > ~/.local/share/bash-completion/completions/gyre
  gyre completions zsh > ~/.zfunc/_gyre
  gyre completions fish > ~/.config/fish/completions/gyre.fish";

/// Parses `KEY=VALUE` arguments (`-e`, `-v`, `--key-value`).
pub(crate) fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

fn main() -> ExitCode {
    term::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::New(args) => new::run_new(args),
        Command::Add(args) => new::run_add(args),
        Command::Build(args) => build::run(args),
        Command::Up(args) => up::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Templates { command } => templates::run(command),
        Command::Registry { command } => registry::run(command),
        Command::Kube { command } => kube::run(command),
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Cli::command(), "gyre", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{} {err}", term::error_label());
            let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
            if !causes.is_empty() {
                eprintln!("\nCaused by:");
                for (i, cause) in causes.iter().enumerate() {
                    if causes.len() == 1 {
                        eprintln!("    {cause}");
                    } else {
                        eprintln!("    {i}: {cause}");
                    }
                }
            }
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    /// Clap checks a command's flags (unique names, short options, conflicts)
    /// only when that command is parsed; this checks every subcommand at once.
    #[test]
    fn every_command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
