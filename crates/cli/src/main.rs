//! `gyre`: run Spin applications.
//!
//! Only this crate talks to the terminal: it parses arguments into validated
//! settings once, prints the startup listing, echoes guest output and
//! reports errors as one chain (`Error: …` then `Caused by:` lines) with
//! exit code 1.

mod up;

/// Serving allocates and frees many small, short-lived objects per request
/// (hyper's buffers, Wasmtime's stores and tables); mimalloc's thread-local
/// free lists make that measurably cheaper than the system allocator
/// (`bench/run.sh`).
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
  gyre up                                  run ./spin.toml on 127.0.0.1:3000
  gyre up -f path/to/app --listen 127.0.0.1:8080
  gyre up --listen 127.0.0.1:0 --format json   pick a free port, print routes as JSON
  gyre up -e LOG_LEVEL=debug               set an environment variable in every component";

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the application (alias: u).
    #[command(visible_alias = "u", after_help = up::EXAMPLES)]
    Up(up::UpArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("Error: {err}");
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
