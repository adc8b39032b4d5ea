//! `gyre registry push | pull | login`, and the pull `gyre up -f REF` does
//! before it runs an app from a registry.
//!
//! Everything about the format and the protocol lives in `gyre-registry`;
//! this module turns flags into calls, draws the download bar and says what
//! happened in one line.

use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use gyre_registry::{Cache, PullObserver, RegistryClient, RegistryError};

use crate::term;

pub(crate) const EXAMPLES: &str = "\
Examples:
  gyre registry push registry.example.com/team/hello:v1             push ./spin.toml's app
  gyre registry push -f app/ --build 127.0.0.1:5000/team/hello:v1 -k
  gyre registry pull registry.example.com/team/hello:v1
  gyre registry login -u alice --password-stdin registry.example.com < token.txt
  gyre up -f registry.example.com/team/hello:v1                     pull (cached), then run";

#[derive(Subcommand, Debug)]
pub(crate) enum RegistryCommand {
    /// Push an application to a registry, in Spin's artifact format.
    Push(PushArgs),
    /// Pull an application into the local cache.
    Pull(PullArgs),
    /// Store credentials for a registry (in ~/.docker/config.json).
    Login(LoginArgs),
}

/// Flags every registry command has.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct RegistryFlags {
    /// Talk plain HTTP to the registry (a local, non-TLS one).
    #[arg(short = 'k', long)]
    pub(crate) insecure: bool,

    /// Where pulled artifacts are cached (default ~/.cache/gyre/registry).
    #[arg(long, env = "GYRE_REGISTRY_CACHE_DIR", value_name = "DIR")]
    pub(crate) registry_cache_dir: Option<PathBuf>,
}

impl RegistryFlags {
    pub(crate) fn cache(&self) -> Result<Cache> {
        let root = self
            .registry_cache_dir
            .clone()
            .or_else(Cache::default_root)
            .context("cannot find a cache directory: set HOME or GYRE_REGISTRY_CACHE_DIR")?;
        Ok(Cache::new(root))
    }

    /// Registry packages (`{ package, version }` sources and dependencies)
    /// for the app loader, through wasm-pkg's configuration and this cache.
    pub(crate) fn packages(&self) -> Result<gyre_app::Packages> {
        let config =
            gyre_registry::PackageConfig::read(gyre_registry::PackageConfig::default_path())?;
        let packages = gyre_registry::RegistryPackages::new(self.insecure, self.cache()?, config);
        Ok(gyre_app::Packages(Some(std::sync::Arc::new(packages))))
    }
}

#[derive(Args, Debug)]
pub(crate) struct PushArgs {
    /// The application: a spin.toml, or a directory holding one.
    #[arg(
        short = 'f',
        long = "from",
        visible_alias = "file",
        value_name = "APPLICATION"
    )]
    from: Option<PathBuf>,

    /// Build the application before pushing.
    #[arg(long)]
    build: bool,

    /// Push with this build profile (`[component.<id>.profile.<name>]`).
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,

    /// Annotation for the artifact's manifest, as KEY=VALUE (repeatable).
    #[arg(long = "annotation", value_name = "KEY=VALUE", value_parser = crate::parse_key_value)]
    annotations: Vec<(String, String)>,

    #[command(flatten)]
    flags: RegistryFlags,

    /// Where to push: REGISTRY/REPOSITORY:TAG.
    #[arg(value_name = "REFERENCE")]
    reference: String,
}

#[derive(Args, Debug)]
pub(crate) struct PullArgs {
    #[command(flatten)]
    flags: RegistryFlags,

    /// What to pull: REGISTRY/REPOSITORY[:TAG|@DIGEST].
    #[arg(value_name = "REFERENCE")]
    reference: String,
}

#[derive(Args, Debug)]
pub(crate) struct LoginArgs {
    /// User name.
    #[arg(short = 'u', long)]
    username: Option<String>,

    /// Password or token (visible to other users in the process list:
    /// prefer --password-stdin).
    #[arg(short = 'p', long, conflicts_with = "password_stdin")]
    password: Option<String>,

    /// Read the password or token from stdin.
    #[arg(long)]
    password_stdin: bool,

    #[command(flatten)]
    flags: RegistryFlags,

    /// The registry: HOST[:PORT].
    #[arg(value_name = "SERVER")]
    server: String,
}

pub(crate) fn run(command: RegistryCommand) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match command {
            RegistryCommand::Push(args) => push(args).await,
            RegistryCommand::Pull(args) => pull(args).await,
            RegistryCommand::Login(args) => login(args).await,
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn push(args: PushArgs) -> Result<()> {
    let reference = gyre_registry::parse_reference(&args.reference)?;
    let manifest_path = gyre_app::resolve_manifest_path(args.from.as_deref())?;
    if args.build {
        crate::build::build_app(&manifest_path, args.profile.as_deref(), &[], true)?;
    }
    let app = gyre_app::load(
        &manifest_path,
        &gyre_app::LoadOptions {
            download_cache: gyre_engine::default_cache_dir().map(|d| d.with_file_name("downloads")),
            include_unused: true,
            packages: args.flags.packages()?,
            profile: args.profile.clone(),
            ..Default::default()
        },
    )
    .await?;
    let options = gyre_registry::PushOptions {
        annotations: args.annotations.into_iter().collect(),
        archive_layers: false,
    };
    let spinner = term::progress_on_stderr()
        .then(|| crate::build::spinner(&format!("pushing to {}", reference.whole())));
    let client = RegistryClient::new(args.flags.insecure);
    let pushed = client.push(&app, &reference, &options).await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let pushed = pushed.with_context(|| format!("cannot push {}", reference.whole()))?;
    eprintln!(
        "{} pushed {} ({} layers{}, {})",
        term::ok_mark(),
        reference.whole(),
        pushed.layers,
        if pushed.archived {
            ", files archived"
        } else {
            ""
        },
        human_bytes(pushed.bytes),
    );
    // The digest on stdout, alone, for scripts (as Spin prints it).
    if let Some(digest) = pushed.digest {
        println!("Pushed with digest {digest}");
    }
    Ok(())
}

async fn pull(args: PullArgs) -> Result<()> {
    let reference = gyre_registry::parse_reference(&args.reference)?;
    let cache = args.flags.cache()?;
    let started = std::time::Instant::now();
    let pulled = pull_with_progress(&reference, &cache, args.flags.insecure).await?;
    gyre_registry::materialise(&cache, &pulled)?;
    eprintln!(
        "{} pulled {} ({}, {} fetched in {} ms)",
        term::ok_mark(),
        reference.whole(),
        pulled.digest,
        human_bytes(pulled.fetched_bytes),
        started.elapsed().as_millis()
    );
    Ok(())
}

/// Pulls `reference` into `cache` with a progress bar on terminals.
pub(crate) async fn pull_with_progress(
    reference: &gyre_registry::Reference,
    cache: &Cache,
    insecure: bool,
) -> Result<gyre_registry::Pulled> {
    let client = RegistryClient::new(insecure);
    let bar = Bar::new(&reference.whole());
    let pulled = client.pull(reference, cache, &bar).await;
    bar.finish();
    pulled
}

/// Resolves a `gyre up -f REF`: pulls (or, with the registry unreachable,
/// takes the copy pulled before), lays the app out, and returns its
/// manifest.
pub(crate) async fn app_from_registry(text: &str, flags: &RegistryFlags) -> Result<PathBuf> {
    let reference = gyre_registry::parse_reference(text)?;
    let cache = flags.cache()?;
    let pulled = match pull_with_progress(&reference, &cache, flags.insecure).await {
        Ok(pulled) => pulled,
        Err(e) => {
            let unreachable = e
                .downcast_ref::<RegistryError>()
                .is_some_and(RegistryError::is_unreachable);
            match gyre_registry::cached(&reference, &cache) {
                Some(pulled) if unreachable => {
                    tracing::warn!(
                        "{e}; running the copy of {} pulled before ({})",
                        reference.whole(),
                        pulled.digest
                    );
                    pulled
                }
                _ => return Err(e.context(format!("cannot pull {}", reference.whole()))),
            }
        }
    };
    gyre_registry::materialise(&cache, &pulled)
}

/// Whether `gyre up -f TEXT` names a registry artifact: not a path that
/// exists, and shaped like REGISTRY/REPOSITORY.
pub(crate) fn looks_like_reference(text: &std::path::Path) -> bool {
    if text.exists() {
        return false;
    }
    let Some(text) = text.to_str() else {
        return false;
    };
    let first = text.split('/').next().unwrap_or_default();
    let has_registry =
        text.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    has_registry
        && !text.ends_with(".toml")
        && !text.ends_with(".wasm")
        && gyre_registry::parse_reference(text).is_ok()
}

async fn login(args: LoginArgs) -> Result<()> {
    let username = match args.username {
        Some(u) => u,
        None if term::interactive() => dialoguer::Input::<String>::with_theme(&*term::theme())
            .with_prompt("Username")
            .interact_text()?,
        None => bail!("give the user name with -u/--username"),
    };
    let password = if args.password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the password from stdin")?;
        text.trim_end_matches(['\r', '\n']).to_string()
    } else {
        match args.password {
            Some(p) => p,
            None if std::io::stdin().is_terminal() => {
                dialoguer::Password::with_theme(&*term::theme())
                    .with_prompt("Password")
                    .interact()?
            }
            None => bail!("give the password with --password-stdin (or -p)"),
        }
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    let server = gyre_registry::server_key(&args.server);
    let client = RegistryClient::new(args.flags.insecure);
    client
        .check_login(
            &server,
            &gyre_registry::RegistryAuth::Basic(username.clone(), password.clone()),
        )
        .await
        .with_context(|| format!("cannot log in to {server}"))?;
    let path = gyre_registry::store_credentials(&server, &username, &password)?;
    eprintln!(
        "{} logged in to {server} as {username} (credentials in {})",
        term::ok_mark(),
        path.display()
    );
    Ok(())
}

/// A download bar on terminals; nothing otherwise.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
}

impl Bar {
    fn new(what: &str) -> Self {
        let bar = term::progress_on_stderr().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner:.cyan} pulling {msg} [{bar:30.cyan/dim}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(what.to_string());
            bar
        });
        Self { bar }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl PullObserver for Bar {
    fn fetching(&self, _layers: usize, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(bytes);
        }
    }

    fn progress(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
