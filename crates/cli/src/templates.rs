//! `gyre templates install | list | uninstall`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use gyre_templates::Origin;

use crate::term;

pub(crate) const EXAMPLES: &str = "\
Examples:
  gyre templates list
  gyre templates list --tag python
  gyre templates install --dir ./my-templates
  gyre templates install --git https://git.example/team/templates --upgrade
  gyre templates uninstall my-template";

#[derive(Subcommand, Debug)]
pub(crate) enum TemplatesCommand {
    /// Install templates from a directory or a git repository.
    Install(InstallArgs),
    /// List the templates `gyre new -t` can use.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Remove an installed template.
    #[command(visible_alias = "rm")]
    Uninstall {
        /// The template id.
        id: String,
    },
}

#[derive(Args, Debug)]
pub(crate) struct InstallArgs {
    /// A git repository (URL or local path) holding templates under `templates/`.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "dir",
        required_unless_present = "dir"
    )]
    git: Option<String>,
    /// The branch or tag to clone, with --git.
    #[arg(long, requires = "git")]
    branch: Option<String>,
    /// A local directory of templates.
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,
    /// Replace templates that are already installed.
    #[arg(long)]
    upgrade: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ListArgs {
    /// Only templates with all these tags.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
}

pub(crate) fn run(command: TemplatesCommand) -> Result<ExitCode> {
    let store = crate::new::store()?;
    match command {
        TemplatesCommand::Install(args) => {
            let report = match (&args.git, &args.dir) {
                (Some(url), _) => store.install_git(url, args.branch.as_deref(), args.upgrade)?,
                (None, Some(dir)) => {
                    let from = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
                    store.install_dir(dir, &from.display().to_string(), args.upgrade)?
                }
                (None, None) => bail!("give --git URL or --dir PATH"),
            };
            for id in &report.installed {
                eprintln!("{} installed template `{id}`", term::ok_mark());
            }
            for (id, why) in &report.skipped {
                eprintln!("{} skipped `{id}`: {why}", term::warning_label());
            }
            eprintln!("Templates are in {}", store.dir().display());
        }
        TemplatesCommand::List(args) => {
            let templates: Vec<_> = store
                .list()?
                .into_iter()
                .filter(|t| {
                    args.tags
                        .iter()
                        .all(|tag| t.tags.contains(&tag.to_lowercase()))
                })
                .collect();
            let width = templates
                .iter()
                .map(|t| t.id.len())
                .max()
                .unwrap_or(0)
                .max(4);
            println!("{:width$}  {:40}  TAGS", "NAME", "DESCRIPTION");
            for t in &templates {
                let from = match &t.origin {
                    Origin::BuiltIn => String::new(),
                    Origin::Installed { from } => format!("  (from {from})"),
                };
                println!(
                    "{:width$}  {:40}  {}{from}",
                    t.id,
                    t.description,
                    t.tags.join(", ")
                );
            }
        }
        TemplatesCommand::Uninstall { id } => {
            store.uninstall(&id)?;
            eprintln!("{} uninstalled template `{id}`", term::ok_mark());
        }
    }
    Ok(ExitCode::SUCCESS)
}
