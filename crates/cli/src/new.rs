//! `gyre new` and `gyre add`: run a template, asking for what is missing.
//!
//! The template engine (`gyre-templates`) never talks to the terminal: this
//! module gathers the name, the template and every parameter's value (from
//! `-v`, `--values-file`, the defaults with `-a`, or a prompt on a terminal)
//! and hands them over. Off a terminal a missing value is an error naming
//! the parameter and the flag that sets it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use gyre_templates::{Generate, Mode, Parameter, Template, TemplateStore};

use crate::term;

pub(crate) const NEW_EXAMPLES: &str = "\
Examples:
  gyre new                                   pick a template and answer its questions
  gyre new -t http-py hello -a               Python app `hello`, default answers
  gyre new -t http-js api -v http-path=/api/...
  gyre new -t http-empty shop --init         into the current directory
  gyre templates list                        what -t can name";

pub(crate) const ADD_EXAMPLES: &str = "\
Examples:
  gyre add -t http-py admin                  add component `admin` in ./admin
  gyre add -t redis-py worker -a -f app/spin.toml";

/// What `new` and `add` share.
#[derive(Args, Debug)]
pub(crate) struct TemplateRunArgs {
    /// Name of the new application or component.
    #[arg(value_name = "NAME")]
    name: Option<String>,

    /// Spin's older form `new TEMPLATE NAME`: the second word is the name.
    #[arg(value_name = "LEGACY_NAME", hide = true)]
    legacy_name: Option<String>,

    /// The template to use (`gyre templates list` shows them).
    #[arg(short = 't', long = "template", value_name = "TEMPLATE_ID")]
    template: Option<String>,

    /// Only offer templates with these tags when choosing one.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,

    /// Directory to create it in (default: the name).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: Option<PathBuf>,

    /// A parameter value, as NAME=VALUE (repeatable).
    #[arg(short = 'v', long = "value", value_name = "NAME=VALUE", value_parser = crate::parse_key_value)]
    values: Vec<(String, String)>,

    /// A TOML (or JSON) file of parameter values.
    #[arg(long = "values-file", value_name = "FILE")]
    values_file: Option<PathBuf>,

    /// Take the default of every parameter that has one instead of asking.
    #[arg(short = 'a', long = "accept-defaults")]
    accept_defaults: bool,

    /// Create it in the current directory.
    #[arg(long)]
    init: bool,

    /// Write into a directory that already has files.
    #[arg(long)]
    allow_overwrite: bool,

    /// Do not create a .gitignore.
    #[arg(long)]
    no_vcs: bool,
}

#[derive(Args, Debug)]
pub(crate) struct NewArgs {
    #[command(flatten)]
    run: TemplateRunArgs,
}

#[derive(Args, Debug)]
pub(crate) struct AddArgs {
    #[command(flatten)]
    run: TemplateRunArgs,

    /// The application's manifest (default: ./spin.toml).
    #[arg(short = 'f', long = "file", value_name = "APP_MANIFEST_FILE")]
    file: Option<PathBuf>,
}

pub(crate) fn store() -> Result<TemplateStore> {
    let dir = TemplateStore::default_dir()
        .context("cannot tell where templates are installed: set GYRE_DATA_DIR or HOME")?;
    Ok(TemplateStore::new(dir))
}

pub(crate) fn run_new(args: NewArgs) -> Result<ExitCode> {
    run(args.run, None)
}

pub(crate) fn run_add(args: AddArgs) -> Result<ExitCode> {
    let manifest = gyre_app::resolve_manifest_path(args.file.as_deref())?;
    run(args.run, Some(manifest))
}

fn run(mut args: TemplateRunArgs, manifest: Option<PathBuf>) -> Result<ExitCode> {
    let mode = match &manifest {
        None => Mode::NewApplication,
        Some(m) => Mode::AddComponent {
            manifest: m.clone(),
        },
    };
    let noun = if manifest.is_some() {
        "component"
    } else {
        "application"
    };
    // `gyre new http-py hello`: Spin's older order.
    if let Some(legacy) = args.legacy_name.take() {
        if args.template.is_some() {
            bail!("unexpected argument {legacy:?}: the template is given with -t, the name once");
        }
        args.template = args.name.replace(legacy);
    }
    let store = store()?;
    let template = match &args.template {
        Some(id) => store.get(id)?,
        None => choose_template(&store, &mode, &args.tags)?,
    };
    if !template.supports(&mode) {
        bail!(
            "template `{}` cannot {}",
            template.id,
            if manifest.is_some() {
                "add a component (use it with `gyre new`)"
            } else {
                "create an application (use it with `gyre add`)"
            }
        );
    }
    let name = match (&args.name, args.init) {
        (Some(name), _) => name.clone(),
        (None, true) => std::env::current_dir()?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .context("the current directory has no name to use: give NAME")?,
        (None, false) if term::interactive() => {
            dialoguer::Input::<String>::with_theme(&*term::theme())
                .with_prompt(format!("Enter a name for your new {noun}"))
                .validate_with(|s: &String| validate_name(s))
                .interact_text()?
        }
        (None, false) => bail!(
            "the new {noun} needs a name: `gyre {} -t {} NAME`",
            if manifest.is_some() { "add" } else { "new" },
            template.id
        ),
    };
    validate_name(&name).map_err(|e| anyhow::anyhow!("{e}"))?;
    let output = match (&args.output, args.init) {
        (Some(_), true) => {
            bail!("--init creates into the current directory; it cannot be used with --output")
        }
        (Some(dir), false) => dir.clone(),
        (None, true) => PathBuf::from("."),
        (None, false) => PathBuf::from(&name),
    };
    let values = gather_values(&template, &mode, &args)?;
    let generated = template.generate(&Generate {
        mode,
        name: name.clone(),
        output,
        values,
        authors: gyre_templates::git_authors(),
        no_vcs: args.no_vcs,
        allow_overwrite: args.allow_overwrite || args.init,
    })?;
    let shown = display_dir(&generated.dir);
    match &generated.manifest {
        None => {
            eprintln!(
                "{} Created {noun} `{name}` from template `{}` in {shown}",
                term::ok_mark(),
                template.id
            );
            if shown != "." {
                eprintln!("\nNext:\n  cd {shown}\n  gyre build --up");
            } else {
                eprintln!("\nNext:\n  gyre build --up");
            }
        }
        Some(manifest) => {
            eprintln!(
                "{} Added component `{name}` from template `{}` in {shown}; {} updated",
                term::ok_mark(),
                template.id,
                manifest.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A name becomes the component id through `kebab_case`; it needs a letter.
fn validate_name(name: &str) -> std::result::Result<(), String> {
    if name.trim().is_empty() {
        return Err("the name is empty".into());
    }
    if !name.chars().any(|c| c.is_ascii_alphabetic()) {
        return Err(format!(
            "{name:?} has no letter: a component id is made from it"
        ));
    }
    if name.contains(['/', '\\']) {
        return Err(format!(
            "{name:?} contains a path separator: give the directory with --output"
        ));
    }
    Ok(())
}

fn display_dir(dir: &Path) -> String {
    let shown = dir.display().to_string();
    if shown.is_empty() { ".".into() } else { shown }
}

fn choose_template(store: &TemplateStore, mode: &Mode, tags: &[String]) -> Result<Template> {
    let mut templates: Vec<Template> = store
        .list()?
        .into_iter()
        .filter(|t| t.supports(mode))
        .filter(|t| tags.iter().all(|tag| t.tags.contains(&tag.to_lowercase())))
        .collect();
    if templates.is_empty() {
        bail!("no template matches the tags {}", tags.join(", "));
    }
    if !term::interactive() {
        let ids: Vec<&str> = templates.iter().map(|t| t.id.as_str()).collect();
        bail!("choose a template with -t; templates: {}", ids.join(", "));
    }
    let items: Vec<String> = templates
        .iter()
        .map(|t| format!("{} ({})", t.id, t.description))
        .collect();
    let noun = match mode {
        Mode::NewApplication => "your application",
        Mode::AddComponent { .. } => "the new component",
    };
    let chosen = dialoguer::Select::with_theme(&*term::theme())
        .with_prompt(format!("Pick a template to start {noun} with"))
        .items(&items)
        .default(0)
        .interact()?;
    Ok(templates.swap_remove(chosen))
}

/// Every parameter's value, from the command line, the values file, the
/// defaults or the user, in that order.
fn gather_values(
    template: &Template,
    mode: &Mode,
    args: &TemplateRunArgs,
) -> Result<HashMap<String, String>> {
    let mut given: HashMap<String, String> = match &args.values_file {
        Some(path) => read_values_file(path)?,
        None => HashMap::new(),
    };
    given.extend(args.values.iter().cloned());
    for (id, value) in &given {
        match template.parameter(id) {
            None => bail!(
                "template `{}` has no parameter `{id}`; its parameters: {}",
                template.id,
                template
                    .parameters(mode)?
                    .iter()
                    .map(|p| p.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(p) => p
                .validate(value)
                .map_err(|e| anyhow::anyhow!("-v {id}: {e}"))?,
        }
    }
    let mut values = HashMap::new();
    for parameter in template.parameters(mode)? {
        let value = match given.remove(&parameter.id) {
            Some(v) => v,
            None => match (&parameter.default, args.accept_defaults) {
                (Some(default), true) => default.clone(),
                _ if term::interactive() => prompt(parameter)?,
                _ => bail!(
                    "no value for parameter `{}` ({}): pass `-v {}=VALUE`{}",
                    parameter.id,
                    parameter.prompt,
                    parameter.id,
                    if parameter.default.is_some() {
                        ", or `-a` to accept the defaults"
                    } else {
                        ""
                    }
                ),
            },
        };
        values.insert(parameter.id.clone(), value);
    }
    Ok(values)
}

/// Asks for one value; a bad answer is explained and asked again.
fn prompt(parameter: &Parameter) -> Result<String> {
    let theme = term::theme();
    if let Some(allowed) = &parameter.allowed_values {
        let default = parameter
            .default
            .as_ref()
            .and_then(|d| allowed.iter().position(|a| a == d))
            .unwrap_or(0);
        let chosen = dialoguer::Select::with_theme(&*theme)
            .with_prompt(&parameter.prompt)
            .items(allowed)
            .default(default)
            .interact()?;
        return Ok(allowed[chosen].clone());
    }
    let mut input = dialoguer::Input::<String>::with_theme(&*theme)
        .with_prompt(&parameter.prompt)
        .allow_empty(true)
        .validate_with(|s: &String| parameter.validate(s));
    if let Some(default) = &parameter.default {
        input = input.default(default.clone());
    }
    Ok(input.interact_text()?)
}

fn read_values_file(path: &Path) -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--values-file: cannot read {}", path.display()))?;
    let table: toml::Table = if path.extension().is_some_and(|e| e == "json") {
        let json: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
            .with_context(|| format!("--values-file {}: not a JSON object", path.display()))?;
        json.into_iter()
            .map(|(k, v)| {
                (
                    k,
                    toml::Value::String(v.as_str().map_or_else(|| v.to_string(), str::to_string)),
                )
            })
            .collect()
    } else {
        text.parse()
            .with_context(|| format!("--values-file {}: not valid TOML", path.display()))?
    };
    table
        .into_iter()
        .map(|(k, v)| match v {
            toml::Value::String(s) => Ok((k, s)),
            other => Ok((k, other.to_string())),
        })
        .collect()
}
