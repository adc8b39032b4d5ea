//! Reading a version 2 manifest into the normalised model.

use std::str::FromStr as _;

use indexmap::IndexMap;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{SourceFile, did_you_mean};
use crate::model::*;
use crate::names;
use crate::reader::{Result, Sp, TableReader, type_name};

/// A component reference of a trigger before inline components are hoisted.
enum ComponentRef<'a, 'i> {
    Named(Sp<String>),
    Inline(&'a Spanned<DeValue<'i>>),
}

struct RawTrigger<'a, 'i> {
    id: Option<Sp<String>>,
    trigger_type: String,
    component: Option<ComponentRef<'a, 'i>>,
    config: TriggerConfig,
    span: std::ops::Range<usize>,
}

pub(crate) fn parse(
    src: &SourceFile,
    doc: &DeTable<'_>,
    span: std::ops::Range<usize>,
    require_triggers: bool,
) -> Result<Manifest> {
    let mut top = TableReader::new(src, "", doc, span);
    top.ignore("spin_manifest_version");
    let mut warnings = Vec::new();

    let application = match top.table("application")? {
        Some(app) => parse_application(app, &mut warnings)?,
        None => {
            return Err(src
                .error(Some(0..0), "application", "missing required table")
                .with_help("add an `[application]` table with at least `name = \"...\"`"));
        }
    };

    let variables = match top.table("variables")? {
        Some(vars) => parse_variables(vars)?,
        None => IndexMap::new(),
    };

    let mut components = IndexMap::new();
    if let Some(table) = top.table("component")? {
        for (key, value) in table.entries() {
            let id = key.get_ref().to_string();
            let field = format!("component.{id}");
            names::check_kebab_id(&id).map_err(|e| {
                src.error(
                    Some(key.span()),
                    &field,
                    format!("invalid component id \"{id}\": {e}"),
                )
                .with_help("component ids are kebab-case, e.g. `my-component`")
            })?;
            let reader = TableReader::from_value(src, field, value)?;
            let component = parse_component(id.clone(), reader, &variables, &mut warnings)?;
            components.insert(id, component);
        }
    }

    let raw_triggers = match top.get("trigger") {
        Some(value) => parse_triggers(src, value, &mut warnings)?,
        None if !require_triggers => Vec::new(),
        None => {
            return Err(src
                .error(Some(0..0), "trigger", "missing required table: the application has no triggers")
                .with_help("add a trigger, e.g. `[[trigger.http]]` with `route = \"/...\"` and `component = \"my-component\"`"));
        }
    };
    top.finish()?;

    let triggers = normalise_triggers(
        src,
        raw_triggers,
        &mut components,
        &variables,
        &mut warnings,
    )?;
    validate_http_base(src, doc, &application)?;

    Ok(Manifest {
        source: src.clone(),
        version: ManifestVersion::V2,
        application,
        variables,
        triggers,
        components,
        warnings,
    })
}

fn parse_application(
    mut app: TableReader<'_, '_>,
    warnings: &mut Vec<String>,
) -> Result<Application> {
    let name = app.required_string("name")?.into_inner();
    let version = app
        .string("version")?
        .map(Spanned::into_inner)
        .unwrap_or_default();
    let description = app
        .string("description")?
        .map(Spanned::into_inner)
        .unwrap_or_default();
    let authors = app
        .string_list("authors")?
        .into_iter()
        .map(Spanned::into_inner)
        .collect();
    app.ignore("targets");
    app.ignore("tool");
    let mut http_base = None;
    let mut redis_address = None;
    if let Some(triggers) = app.table("trigger")? {
        for (key, value) in triggers.entries() {
            let ty = key.get_ref().as_ref();
            let path = format!("application.trigger.{ty}");
            let mut t = TableReader::from_value(app.src, path, value)?;
            match ty {
                "http" => {
                    http_base = t.string("base")?.map(Spanned::into_inner);
                    t.finish()?;
                }
                "redis" => {
                    redis_address = t.string("address")?.map(Spanned::into_inner);
                    t.finish()?;
                }
                other => warnings.push(format!(
                    "[application.trigger.{other}] is for a trigger type Gyre does not run; it is ignored"
                )),
            }
        }
    }
    app.finish()?;
    Ok(Application {
        name,
        version,
        description,
        authors,
        http_base,
        redis_address,
    })
}

fn validate_http_base(src: &SourceFile, doc: &DeTable<'_>, app: &Application) -> Result<()> {
    match app.http_base.as_deref() {
        None | Some("/") => Ok(()),
        Some(other) => {
            let span = doc
                .get("application")
                .and_then(|a| a.get_ref().as_table())
                .and_then(|a| a.get("trigger"))
                .and_then(|t| t.get_ref().as_table())
                .and_then(|t| t.get("http"))
                .and_then(|h| h.get_ref().as_table())
                .and_then(|h| h.get("base"))
                .map(|b| b.span());
            Err(src
                .error(
                    span,
                    "application.trigger.http.base",
                    format!("base \"{other}\" is not supported"),
                )
                .with_help("remove `base` and put the prefix in each trigger's `route`"))
        }
    }
}

pub(crate) fn parse_variables(vars: TableReader<'_, '_>) -> Result<IndexMap<String, Variable>> {
    let mut out = IndexMap::new();
    for (key, value) in vars.entries() {
        let name = key.get_ref().to_string();
        let field = format!("variables.{name}");
        names::check_lower_snake_id(&name).map_err(|e| {
            vars.src
                .error(
                    Some(key.span()),
                    &field,
                    format!("invalid variable name \"{name}\": {e}"),
                )
                .with_help("variable names are lower snake_case, e.g. `api_key`")
        })?;
        let mut v = TableReader::from_value(vars.src, field.clone(), value)?;
        let description = v.string("description")?.map(Spanned::into_inner);
        let required = v.bool("required")?.unwrap_or(false);
        let default = v.string("default")?.map(Spanned::into_inner);
        let secret = v.bool("secret")?.unwrap_or(false);
        let span = v.span.clone();
        v.finish()?;
        if required == default.is_some() {
            return Err(vars
                .src
                .error(Some(span), &field, "a variable must be `required` OR have a `default`")
                .with_help("write either `required = true` or `default = \"...\"`, not both and not neither"));
        }
        out.insert(
            name,
            Variable {
                description,
                required,
                default,
                secret,
            },
        );
    }
    Ok(out)
}

pub(crate) fn parse_component(
    id: String,
    c: TableReader<'_, '_>,
    app_variables: &IndexMap<String, Variable>,
    warnings: &mut Vec<String>,
) -> Result<Component> {
    parse_component_with(id, c, "variables", app_variables, warnings)
}

/// Reads a component table; `variables_key` is `config` in version 1.
pub(crate) fn parse_component_with(
    id: String,
    mut c: TableReader<'_, '_>,
    variables_key: &'static str,
    app_variables: &IndexMap<String, Variable>,
    warnings: &mut Vec<String>,
) -> Result<Component> {
    let span = c.span.clone();
    let description = c
        .string("description")?
        .map(Spanned::into_inner)
        .unwrap_or_default();
    let (source, source_span) = match c.get("source") {
        Some(v) => (parse_source(c.src, &c.field_path("source"), v)?, v.span()),
        None => {
            return Err(c
                .src
                .error(Some(span), c.field_path("source"), "missing required field")
                .with_help("add `source = \"path/to/component.wasm\"` (or `{ url = \"...\", digest = \"sha256:...\" }`)"));
        }
    };

    let files = match c.get("files") {
        None => Vec::new(),
        Some(v) => parse_files(c.src, &c.field_path("files"), v, warnings)?,
    };
    let exclude_files = c
        .string_list("exclude_files")?
        .into_iter()
        .map(Spanned::into_inner)
        .collect();

    let mut environment = IndexMap::new();
    for (k, v) in c.string_map("environment")? {
        environment.insert(k.into_inner(), v.into_inner());
    }

    let mut allowed_outbound_hosts = Vec::new();
    for host in c.string_list("allowed_outbound_hosts")? {
        check_outbound_host(&c, &host, app_variables)?;
        allowed_outbound_hosts.push(host.into_inner());
    }
    for host in c.string_list("allowed_http_hosts")? {
        warnings.push(format!(
            "component `{id}`: `allowed_http_hosts` is deprecated; use `allowed_outbound_hosts`"
        ));
        let converted = convert_allowed_http_host(host.get_ref()).map_err(|e| {
            c.error(host.span(), "allowed_http_hosts", e)
                .with_help("use `allowed_outbound_hosts = [\"https://example.com\"]`")
        })?;
        allowed_outbound_hosts.extend(converted);
    }

    let key_value_stores = labels(&mut c, "key_value_stores")?;
    let sqlite_databases = labels(&mut c, "sqlite_databases")?;

    let mut variables = IndexMap::new();
    for (name, template) in c.string_map(variables_key)? {
        let field = c.field_path(&format!("{variables_key}.{}", name.get_ref()));
        names::check_lower_snake_id(name.get_ref()).map_err(|e| {
            c.src
                .error(
                    Some(name.span()),
                    &field,
                    format!("invalid variable name \"{}\": {e}", name.get_ref()),
                )
                .with_help("component variable names are lower snake_case")
        })?;
        check_template(&c, &field, &template, app_variables)?;
        variables.insert(name.into_inner(), template.into_inner());
    }

    let ai_models = c
        .string_list("ai_models")?
        .into_iter()
        .map(Spanned::into_inner)
        .collect();
    let build = match c.table("build")? {
        Some(b) => Some(parse_build(b)?),
        None => None,
    };
    let dependencies = match c.table("dependencies")? {
        Some(d) => parse_dependencies(d)?,
        None => IndexMap::new(),
    };
    let dependencies_inherit_configuration = c
        .bool("dependencies_inherit_configuration")?
        .unwrap_or(false);
    let profiles = match c.table("profile")? {
        Some(p) => parse_profiles(p)?,
        None => IndexMap::new(),
    };
    c.ignore("tool");
    c.ignore("targets");
    c.finish()?;

    Ok(Component {
        id,
        description,
        source,
        files,
        exclude_files,
        environment,
        allowed_outbound_hosts,
        key_value_stores,
        sqlite_databases,
        variables,
        ai_models,
        build,
        dependencies,
        dependencies_inherit_configuration,
        profiles,
        span,
        source_span,
    })
}

fn labels(c: &mut TableReader<'_, '_>, key: &'static str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for label in c.string_list(key)? {
        names::check_label(label.get_ref()).map_err(|e| {
            c.error(
                label.span(),
                key,
                format!("invalid label \"{}\": {e}", label.get_ref()),
            )
            .with_help("labels look like `default`, `my-store` or `my_store`")
        })?;
        out.push(label.into_inner());
    }
    Ok(out)
}

fn check_template(
    c: &TableReader<'_, '_>,
    field: &str,
    template: &Sp<String>,
    app_variables: &IndexMap<String, Variable>,
) -> Result<()> {
    let used = names::template_variables(template.get_ref()).map_err(|e| {
        c.src
            .error(
                Some(template.span()),
                field,
                format!("invalid variable template: {e}"),
            )
            .with_help("templates look like `{{ variable_name }}`; there is no escaping")
    })?;
    for name in used {
        if !app_variables.contains_key(&name) {
            let defined: Vec<&str> = app_variables.keys().map(String::as_str).collect();
            let help = if defined.is_empty() {
                format!(
                    "declare it at the top level: `[variables]` then `{name} = {{ default = \"...\" }}`"
                )
            } else {
                format!("application variables: {}", defined.join(", "))
            };
            return Err(c
                .src
                .error(
                    Some(template.span()),
                    field,
                    format!("invalid variable template: unknown variable \"{name}\""),
                )
                .with_help(help));
        }
    }
    Ok(())
}

/// Checks an `allowed_outbound_hosts` entry with the same grammar the
/// host enforces (`gyre-outbound-networking`). Entries with templates are
/// checked once their variables are resolved, at load.
fn check_outbound_host(
    c: &TableReader<'_, '_>,
    host: &Sp<String>,
    app_variables: &IndexMap<String, Variable>,
) -> Result<()> {
    let field = c.field_path("allowed_outbound_hosts");
    check_template(c, &field, host, app_variables)?;
    let entry = host.get_ref();
    if entry.contains("{{") {
        return Ok(());
    }
    match gyre_outbound_networking::AllowedHost::parse(entry) {
        Ok(_) => Ok(()),
        Err(e) => {
            let error = c.src.error(
                Some(host.span()),
                &field,
                format!("\"{entry}\": {}", e.message),
            );
            Err(match e.help {
                Some(help) => error.with_help(help),
                None => error.with_help(
                    "entries look like `https://example.com`, `redis://localhost:6379` or `*://*:*` (any host, any port)",
                ),
            })
        }
    }
}

/// Converts a deprecated `allowed_http_hosts` entry as Spin does.
pub(crate) fn convert_allowed_http_host(host: &str) -> std::result::Result<Vec<String>, String> {
    if host == "insecure:allow-all" {
        return Ok(vec![
            "http://*:*".into(),
            "https://*:*".into(),
            "http://self".into(),
        ]);
    }
    if host == "self" {
        return Ok(vec!["http://self".into()]);
    }
    let bare = if let Some(rest) = host
        .strip_prefix("http://")
        .or_else(|| host.strip_prefix("https://"))
    {
        rest
    } else if host.contains("://") {
        return Err(format!(
            "One or more allowed_http_hosts entries was invalid: \"{host}\" (only http and https are allowed)"
        ));
    } else {
        host
    };
    let bare = bare.strip_suffix('/').unwrap_or(bare);
    if bare.is_empty() || bare.contains('/') {
        return Err(format!(
            "One or more allowed_http_hosts entries was invalid: \"{host}\" (paths are not allowed)"
        ));
    }
    Ok(vec![format!("http://{bare}"), format!("https://{bare}")])
}

pub(crate) fn parse_source(
    src: &SourceFile,
    field: &str,
    v: &Spanned<DeValue<'_>>,
) -> Result<ComponentSource> {
    match v.get_ref() {
        DeValue::String(s) => {
            if s.is_empty() {
                return Err(src
                    .error(Some(v.span()), field, "source path is empty")
                    .with_help("give the path of the component's .wasm file"));
            }
            Ok(ComponentSource::Local(s.to_string()))
        }
        DeValue::Table(_) => {
            let mut t = TableReader::from_value(src, field, v)?;
            let url = t.string("url")?;
            let digest = t.string("digest")?;
            let registry = t.string("registry")?;
            let package = t.string("package")?;
            let version = t.string("version")?;
            t.finish()?;
            match (url, digest, package, version) {
                (Some(url), Some(digest), None, None) if registry.is_none() => {
                    if !digest.get_ref().starts_with("sha256:") {
                        return Err(src
                            .error(Some(digest.span()), format!("{field}.digest"), format!("digest \"{}\" must start with `sha256:`", digest.get_ref()))
                            .with_help("write `digest = \"sha256:<64 hex digits>\"`"));
                    }
                    let hex = &digest.get_ref()["sha256:".len()..];
                    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                        return Err(src
                            .error(Some(digest.span()), format!("{field}.digest"), "a sha256 digest has 64 hexadecimal digits")
                            .with_help("compute it with `sha256sum component.wasm`"));
                    }
                    Ok(ComponentSource::Remote {
                        url: url.into_inner(),
                        digest: digest.into_inner(),
                    })
                }
                (None, None, Some(package), Some(version)) => Ok(ComponentSource::Registry {
                    registry: registry.map(Spanned::into_inner),
                    package: package.into_inner(),
                    version: version.into_inner(),
                }),
                _ => Err(src
                    .error(Some(v.span()), field, "a source table needs `url` and `digest`, or `package` and `version`")
                    .with_help("e.g. `source = { url = \"https://.../app.wasm\", digest = \"sha256:...\" }`")),
            }
        }
        other => Err(src
            .error(
                Some(v.span()),
                field,
                format!("expected a path or a table, found {}", type_name(other)),
            )
            .with_help("e.g. `source = \"target/app.wasm\"`")),
    }
}

fn parse_files(
    src: &SourceFile,
    field: &str,
    v: &Spanned<DeValue<'_>>,
    warnings: &mut Vec<String>,
) -> Result<Vec<FileMount>> {
    let DeValue::Array(items) = v.get_ref() else {
        return Err(src
            .error(
                Some(v.span()),
                field,
                format!("expected an array, found {}", type_name(v.get_ref())),
            )
            .with_help(
                "e.g. `files = [\"static/**/*\", { source = \"assets\", destination = \"/\" }]`",
            ));
    };
    let mut out = Vec::new();
    for item in items {
        match item.get_ref() {
            DeValue::String(s) => {
                let s = s.to_string();
                let trimmed = s.trim_end_matches('/');
                if trimmed == "."
                    || trimmed == ".."
                    || trimmed.ends_with("/.")
                    || trimmed.ends_with("/..")
                {
                    return Err(src
                        .error(Some(item.span()), field, format!("\"{s}\" is not a valid files entry: it may not be or end in `.` or `..`"))
                        .with_help("name the directory's contents instead, e.g. `./*` or `dir/**/*`"));
                }
                if s == "*" || s == "**/*" {
                    warnings.push(format!("files entry \"{s}\" matches the whole application directory; did you mean \"./*\"?"));
                }
                out.push(FileMount::Pattern(s));
            }
            DeValue::Table(_) => {
                let mut t = TableReader::from_value(src, field, item)?;
                let source = t.required_string("source")?;
                let destination = t.required_string("destination")?;
                t.finish()?;
                if !destination.get_ref().starts_with('/') {
                    return Err(src
                        .error(
                            Some(destination.span()),
                            format!("{field}.destination"),
                            format!(
                                "destination \"{}\" must be an absolute guest path",
                                destination.get_ref()
                            ),
                        )
                        .with_help("start it with `/`, e.g. `destination = \"/static\"`"));
                }
                out.push(FileMount::Placement {
                    source: source.into_inner(),
                    destination: destination.into_inner(),
                });
            }
            other => {
                return Err(src
                    .error(
                        Some(item.span()),
                        field,
                        format!("expected a string or a table, found {}", type_name(other)),
                    )
                    .with_help(
                        "entries are paths/globs or `{ source = \"...\", destination = \"/...\" }`",
                    ));
            }
        }
    }
    Ok(out)
}

/// `[component.<id>.profile]`: one table per profile name.
fn parse_profiles(p: TableReader<'_, '_>) -> Result<IndexMap<String, ComponentProfile>> {
    let mut out = IndexMap::new();
    for (name, value) in p.entries() {
        let name = name.get_ref().to_string();
        let mut t = TableReader::from_value(p.src, p.field_path(&name), value)?;
        let source = match t.get("source") {
            Some(v) => Some((parse_source(t.src, &t.field_path("source"), v)?, v.span())),
            None => None,
        };
        let build_commands = match t.table("build")? {
            Some(mut b) => {
                let commands = build_commands(&mut b)?;
                b.finish()?;
                Some(commands)
            }
            None => None,
        };
        let environment = t
            .string_map("environment")?
            .into_iter()
            .map(|(k, v)| (k.into_inner(), v.into_inner()))
            .collect();
        let dependencies = match t.table("dependencies")? {
            Some(d) => parse_dependencies(d)?,
            None => IndexMap::new(),
        };
        t.finish()?;
        out.insert(
            name,
            ComponentProfile {
                source,
                build_commands,
                environment,
                dependencies,
            },
        );
    }
    Ok(out)
}

/// `command = "…"` or `command = ["…", …]`.
fn build_commands(b: &mut TableReader<'_, '_>) -> Result<Vec<String>> {
    Ok(match b.get("command") {
        None => {
            return Err(b
                .src
                .error(
                    Some(b.span.clone()),
                    b.field_path("command"),
                    "missing required field",
                )
                .with_help("add `command = \"...\"` (or a list of commands)"));
        }
        Some(v) => match v.get_ref() {
            DeValue::String(s) => vec![s.to_string()],
            DeValue::Array(items) => items
                .iter()
                .map(|i| b.as_string("command", i).map(Spanned::into_inner))
                .collect::<Result<_>>()?,
            other => {
                return Err(b.error(
                    v.span(),
                    "command",
                    format!(
                        "expected a string or an array of strings, found {}",
                        type_name(other)
                    ),
                ));
            }
        },
    })
}

fn parse_build(mut b: TableReader<'_, '_>) -> Result<BuildConfig> {
    let commands = build_commands(&mut b)?;
    let workdir = b.string("workdir")?.map(Spanned::into_inner);
    let watch = b
        .string_list("watch")?
        .into_iter()
        .map(Spanned::into_inner)
        .collect();
    b.finish()?;
    Ok(BuildConfig {
        commands,
        workdir,
        watch,
    })
}

fn parse_dependencies(deps: TableReader<'_, '_>) -> Result<IndexMap<String, ComponentDependency>> {
    let mut out = IndexMap::new();
    for (key, value) in deps.entries() {
        let name = key.get_ref().to_string();
        let field = deps.field_path(&name);
        let is_package = name.contains(':');
        if !is_package {
            names::check_kebab_id(&name).map_err(|e| {
                deps.src
                    .error(Some(key.span()), &field, format!("invalid dependency name \"{name}\": {e}"))
                    .with_help("use a package name `namespace:package[/interface][@version]` or a kebab-case name")
            })?;
        }
        let dep = match value.get_ref() {
            DeValue::String(version) => {
                if !is_package {
                    return Err(deps
                        .src
                        .error(
                            Some(value.span()),
                            &field,
                            "a plain dependency name needs `package`",
                        )
                        .with_help(format!(
                            "write `{name} = {{ version = \"{version}\", package = \"ns:pkg\" }}`"
                        )));
                }
                ComponentDependency {
                    source: Dependency::Package {
                        version: version.to_string(),
                        registry: None,
                        package: None,
                        export: None,
                    },
                    inherit_configuration: None,
                    span: value.span(),
                }
            }
            DeValue::Table(_) => parse_dependency_table(deps.src, &field, value, Some(is_package))?,
            other => {
                return Err(deps.src.error(
                    Some(value.span()),
                    &field,
                    format!(
                        "expected a version string or a table, found {}",
                        type_name(other)
                    ),
                ));
            }
        };
        out.insert(name, dep);
    }
    Ok(out)
}

/// A dependency or middleware table: `{ path }`, `{ url, digest }`,
/// `{ version, registry?, package? }` or `{ component }`, each with
/// `export` (dependencies only) and `inherit_configuration`.
/// `key_is_package` is `None` for middleware, which has no key.
fn parse_dependency_table(
    src: &SourceFile,
    field: &str,
    value: &Spanned<DeValue<'_>>,
    key_is_package: Option<bool>,
) -> Result<ComponentDependency> {
    let mut t = TableReader::from_value(src, field, value)?;
    let version = t.string("version")?.map(Spanned::into_inner);
    let registry = t.string("registry")?.map(Spanned::into_inner);
    let package = t.string("package")?.map(Spanned::into_inner);
    let path = t.string("path")?.map(Spanned::into_inner);
    let url = t.string("url")?.map(Spanned::into_inner);
    let digest = t.string("digest")?.map(Spanned::into_inner);
    let component = t.string("component")?.map(Spanned::into_inner);
    let export = match key_is_package {
        Some(_) => t.string("export")?.map(Spanned::into_inner),
        None => None,
    };
    let inherit_configuration = parse_inherit(&mut t)?;
    let span = t.span.clone();
    t.finish()?;
    let source = match (version, path, url, component) {
        (Some(version), None, None, None) => {
            if key_is_package != Some(true) && package.is_none() {
                let help = if key_is_package.is_none() {
                    "middleware from a registry names its package: add `package = \"namespace:package\"`"
                } else {
                    "add `package = \"namespace:package\"`"
                };
                return Err(src
                    .error(Some(span), field, "a plain dependency name needs `package`")
                    .with_help(help));
            }
            Dependency::Package {
                version,
                registry,
                package,
                export,
            }
        }
        (None, Some(path), None, None) => Dependency::Local { path, export },
        (None, None, Some(url), None) => match digest {
            Some(digest) => Dependency::Remote {
                url,
                digest,
                export,
            },
            None => {
                return Err(src
                    .error(Some(span), field, "a `url` dependency needs a `digest`")
                    .with_help("add `digest = \"sha256:...\"`"));
            }
        },
        (None, None, None, Some(component)) => Dependency::AppComponent { component, export },
        _ => {
            return Err(src
                .error(
                    Some(span),
                    field,
                    "a dependency takes exactly one of `version`, `path`, `url` or `component`",
                )
                .with_help("e.g. `{ path = \"deps/lib.wasm\" }`"));
        }
    };
    Ok(ComponentDependency {
        source,
        inherit_configuration,
        span,
    })
}

/// `inherit_configuration = true | false | ["variables", ...]`.
fn parse_inherit(t: &mut TableReader<'_, '_>) -> Result<Option<InheritConfiguration>> {
    let Some(value) = t.get("inherit_configuration") else {
        return Ok(None);
    };
    match value.get_ref() {
        DeValue::Boolean(true) => Ok(Some(InheritConfiguration::All)),
        DeValue::Boolean(false) => Ok(Some(InheritConfiguration::Only(Vec::new()))),
        DeValue::Array(_) => Ok(Some(InheritConfiguration::Only(
            t.string_list("inherit_configuration")?
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
        ))),
        other => Err(t
            .error(
                value.span(),
                "inherit_configuration",
                format!(
                    "expected a boolean or an array of strings, found {}",
                    type_name(other)
                ),
            )
            .with_help("e.g. `inherit_configuration = [\"key_value_stores\", \"variables\"]`")),
    }
}

fn parse_triggers<'a, 'i>(
    src: &'a SourceFile,
    value: &'a Spanned<DeValue<'i>>,
    warnings: &mut Vec<String>,
) -> Result<Vec<RawTrigger<'a, 'i>>> {
    let table = TableReader::from_value(src, "trigger", value)?;
    let mut out = Vec::new();
    for (key, value) in table.entries() {
        let ty = key.get_ref().to_string();
        let field = format!("trigger.{ty}");
        let DeValue::Array(items) = value.get_ref() else {
            return Err(src
                .error(
                    Some(value.span()),
                    &field,
                    format!(
                        "expected an array of tables, found {}",
                        type_name(value.get_ref())
                    ),
                )
                .with_help(format!("write each trigger as `[[trigger.{ty}]]`")));
        };
        if !matches!(ty.as_str(), "http" | "redis" | "cron") {
            warnings.push(format!(
                "trigger type `{ty}` is not built into Gyre; its triggers will not run"
            ));
        }
        for item in items {
            let mut t = TableReader::from_value(src, &field, item)?;
            let id = t.string("id")?;
            let component = match t.get("component") {
                None => None,
                Some(v) => match v.get_ref() {
                    DeValue::String(s) => {
                        Some(ComponentRef::Named(Spanned::new(v.span(), s.to_string())))
                    }
                    DeValue::Table(_) => Some(ComponentRef::Inline(v)),
                    other => {
                        return Err(t
                            .error(
                                v.span(),
                                "component",
                                format!(
                                    "expected a component id or an inline table, found {}",
                                    type_name(other)
                                ),
                            )
                            .with_help("e.g. `component = \"my-component\"`"));
                    }
                },
            };
            t.ignore("components");
            let config = match ty.as_str() {
                "http" => TriggerConfig::Http(parse_http_trigger(&mut t)?),
                "redis" => TriggerConfig::Redis(parse_redis_trigger(&mut t)?),
                "cron" => TriggerConfig::Cron(parse_cron_trigger(&mut t)?),
                _ => TriggerConfig::Other,
            };
            if matches!(config, TriggerConfig::Other) {
                // Other trigger types own their configuration; nothing to check here.
            } else {
                t.finish()?;
            }
            out.push(RawTrigger {
                id,
                trigger_type: ty.clone(),
                component,
                config,
                span: item.span(),
            });
        }
    }
    Ok(out)
}

pub(crate) fn parse_http_trigger(t: &mut TableReader<'_, '_>) -> Result<HttpTrigger> {
    let route = match t.get("route") {
        None => {
            return Err(t
                .src
                .error(
                    Some(t.span.clone()),
                    t.field_path("route"),
                    "missing required field",
                )
                .with_help(
                    "add `route = \"/...\"` (every path) or a path such as `route = \"/api/...\"`",
                ));
        }
        Some(v) => match v.get_ref() {
            DeValue::String(s) => HttpRoute::Path(s.to_string()),
            DeValue::Table(_) => {
                let mut r = TableReader::from_value(t.src, t.field_path("route"), v)?;
                let private = r.bool("private")?;
                r.finish()?;
                match private {
                    Some(true) => HttpRoute::Private,
                    _ => {
                        return Err(t
                            .error(v.span(), "route", "a route table must be `{ private = true }`")
                            .with_help("write a path such as `route = \"/...\"`, or `route = { private = true }` for a component reachable only by service chaining"));
                    }
                }
            }
            other => {
                return Err(t
                    .error(
                        v.span(),
                        "route",
                        format!("expected a path string, found {}", type_name(other)),
                    )
                    .with_help("e.g. `route = \"/hello\"`"));
            }
        },
    };
    let executor = match t.get("executor") {
        None => HttpExecutor::Http,
        Some(v) => {
            let mut e = TableReader::from_value(t.src, t.field_path("executor"), v)?;
            let ty = e.required_string("type")?;
            let argv = e.string("argv")?;
            let entrypoint = e.string("entrypoint")?;
            e.finish()?;
            match ty.get_ref().as_str() {
                "http" | "spin" => HttpExecutor::Http,
                "wagi" => {
                    if let Some(ep) = entrypoint
                        && ep.get_ref() != "_start"
                    {
                        return Err(t
                            .error(
                                ep.span(),
                                "executor.entrypoint",
                                format!("WAGI entrypoint \"{}\" is not supported", ep.get_ref()),
                            )
                            .with_help(
                                "remove `entrypoint`: WAGI modules are run through `_start`",
                            ));
                    }
                    HttpExecutor::Wagi {
                        argv: argv
                            .map(Spanned::into_inner)
                            .unwrap_or_else(|| "${SCRIPT_NAME} ${ARGS}".into()),
                    }
                }
                other => {
                    return Err(t
                        .error(
                            ty.span(),
                            "executor.type",
                            format!("unknown executor type \"{other}\""),
                        )
                        .with_help("valid executor types: http (default), spin, wagi"));
                }
            }
        }
    };
    let static_response = match t.table("static_response")? {
        None => None,
        Some(mut s) => {
            let status = match s.integer("status_code")? {
                None => 200,
                Some(code) => match u16::try_from(*code.get_ref()) {
                    Ok(c) if (100..=999).contains(&c) => c,
                    _ => {
                        return Err(s
                            .error(
                                code.span(),
                                "status_code",
                                format!("{} is not an HTTP status code", code.get_ref()),
                            )
                            .with_help("use a code from 100 to 999, e.g. 200 or 404"));
                    }
                },
            };
            let headers = s
                .string_map("headers")?
                .into_iter()
                .map(|(k, v)| (k.into_inner(), v.into_inner()))
                .collect();
            let body = s.string("body")?.map(Spanned::into_inner);
            s.finish()?;
            Some(StaticResponse {
                status,
                headers,
                body,
            })
        }
    };
    let mut middleware = Vec::new();
    if let Some(deps) = t.table("dependencies")? {
        for (key, value) in deps.entries() {
            let field = deps.field_path(key.get_ref());
            if key.get_ref() != "middleware" {
                return Err(deps
                    .src
                    .error(
                        Some(key.span()),
                        field,
                        "HTTP triggers only take `middleware` dependencies",
                    )
                    .with_help("write `dependencies.middleware = [...]`"));
            }
            let DeValue::Array(items) = value.get_ref() else {
                return Err(deps
                    .src
                    .error(
                        Some(value.span()),
                        field,
                        format!("expected an array of tables, found {}", type_name(value.get_ref())),
                    )
                    .with_help("e.g. `dependencies.middleware = [{ path = \"auth.wasm\" }]`, outermost first"));
            };
            for item in items {
                if !matches!(item.get_ref(), DeValue::Table(_)) {
                    return Err(deps
                        .src
                        .error(
                            Some(item.span()),
                            &field,
                            format!("expected a table, found {}", type_name(item.get_ref())),
                        )
                        .with_help("each middleware is `{ path = ... }`, `{ url = ..., digest = ... }`, `{ component = ... }` or `{ version = ..., package = ... }`"));
                }
                middleware.push(parse_dependency_table(deps.src, &field, item, None)?);
            }
        }
    }
    Ok(HttpTrigger {
        route,
        executor,
        static_response,
        middleware,
    })
}

pub(crate) fn parse_redis_trigger(t: &mut TableReader<'_, '_>) -> Result<RedisTrigger> {
    let channel = t.required_string("channel")?.into_inner();
    let address = t.string("address")?.map(Spanned::into_inner);
    let filter = t
        .string_map("filter")?
        .into_iter()
        .map(|(k, v)| (k.into_inner(), v.into_inner()))
        .collect();
    Ok(RedisTrigger {
        channel,
        address,
        filter,
    })
}

/// `cron_expression`, in the format of Spin's cron trigger plugin: six
/// fields (`sec min hour day-of-month month day-of-week`) or seven (a year
/// last). A five-field Unix crontab line is refused with the fix.
pub(crate) fn parse_cron_trigger(t: &mut TableReader<'_, '_>) -> Result<CronTrigger> {
    let expression = t.required_string("cron_expression")?;
    let fields = expression.get_ref().split_whitespace().count();
    let problem = match fields {
        6 | 7 => cron::Schedule::from_str(expression.get_ref())
            .err()
            .map(|e| format!("invalid cron expression {:?}: {e}", expression.get_ref())),
        5 => Some(format!(
            "cron expression {:?} has 5 fields; Spin's cron trigger counts seconds first",
            expression.get_ref()
        )),
        n => Some(format!(
            "cron expression {:?} has {n} fields; it needs 6 or 7",
            expression.get_ref()
        )),
    };
    if let Some(problem) = problem {
        return Err(t
            .error(expression.span(), "cron_expression", problem)
            .with_help("write `sec min hour day-of-month month day-of-week [year]`, e.g. `\"*/5 * * * * *\"` for every 5 seconds or `\"0 0 * * * *\"` hourly"));
    }
    Ok(CronTrigger {
        expression: expression.into_inner(),
    })
}

fn normalise_triggers(
    src: &SourceFile,
    raw: Vec<RawTrigger<'_, '_>>,
    components: &mut IndexMap<String, Component>,
    variables: &IndexMap<String, Variable>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Trigger>> {
    // Explicit trigger ids must be unique.
    let mut ids: Vec<String> = Vec::new();
    for t in &raw {
        if let Some(id) = &t.id {
            if ids.contains(id.get_ref()) {
                return Err(src
                    .error(
                        Some(id.span()),
                        format!("trigger.{}.id", t.trigger_type),
                        format!("duplicate trigger id \"{}\"", id.get_ref()),
                    )
                    .with_help(
                        "give each trigger its own id, or leave `id` out to have one generated",
                    ));
            }
            ids.push(id.get_ref().clone());
        }
    }

    let explicit_names: Vec<String> = components.keys().cloned().collect();
    let mut inline_count = 0;
    let mut with_components = Vec::new();
    for (index, t) in raw.into_iter().enumerate() {
        let component = match t.component {
            None => None,
            Some(ComponentRef::Named(name)) => {
                if !components.contains_key(name.get_ref()) {
                    let mut defined: Vec<&str> =
                        explicit_names.iter().map(String::as_str).collect();
                    defined.sort_unstable();
                    let mut help = if defined.is_empty() {
                        format!(
                            "define it with `[component.{}]` and a `source`, or write the component inline",
                            name.get_ref()
                        )
                    } else {
                        format!("defined: {}", defined.join(", "))
                    };
                    if let Some(close) = did_you_mean(name.get_ref(), defined.iter().copied()) {
                        help = format!("did you mean `{close}`? {help}");
                    }
                    return Err(src
                        .error(
                            Some(name.span()),
                            format!("trigger.{}.component", t.trigger_type),
                            format!(
                                "component `{}` is used by trigger #{} but not defined",
                                name.get_ref(),
                                index + 1
                            ),
                        )
                        .with_help(help));
                }
                Some(name.into_inner())
            }
            Some(ComponentRef::Inline(value)) => {
                inline_count += 1;
                let preferred =
                    t.id.as_ref()
                        .map(|id| format!("{}-component", id.get_ref()));
                let id = match preferred {
                    Some(p)
                        if names::check_kebab_id(&p).is_ok() && !components.contains_key(&p) =>
                    {
                        p
                    }
                    _ => {
                        let mut n = inline_count;
                        loop {
                            let candidate = format!("inline-component{n}");
                            if !components.contains_key(&candidate) {
                                break candidate;
                            }
                            n += 1;
                        }
                    }
                };
                let reader = TableReader::from_value(
                    src,
                    format!("trigger.{}.component", t.trigger_type),
                    value,
                )?;
                let component = parse_component(id.clone(), reader, variables, warnings)?;
                components.insert(id.clone(), component);
                Some(id)
            }
        };
        with_components.push((t.id, t.trigger_type, component, t.config, t.span));
    }

    let mut triggers = Vec::new();
    let mut counters: IndexMap<String, usize> = IndexMap::new();
    for (id, trigger_type, component, config, span) in with_components {
        let id = match id {
            Some(id) => id.into_inner(),
            None => {
                let preferred = component
                    .as_ref()
                    .map(|c| format!("{c}-{trigger_type}-trigger"));
                match preferred {
                    Some(p) if !ids.contains(&p) => p,
                    _ => {
                        let counter = counters.entry(trigger_type.clone()).or_insert(0);
                        loop {
                            let candidate = format!("{trigger_type}-trigger{counter}");
                            *counter += 1;
                            if !ids.contains(&candidate) {
                                break candidate;
                            }
                        }
                    }
                }
            }
        };
        ids.push(id.clone());
        if let TriggerConfig::Http(http) = &config {
            match (&component, &http.static_response) {
                (None, None) => {
                    return Err(src
                        .error(Some(span), "trigger.http", format!("trigger `{id}` has neither a `component` nor a `static_response`"))
                        .with_help("add `component = \"...\"`, or `static_response = { status_code = 200, body = \"...\" }`"));
                }
                (Some(_), Some(_)) => {
                    return Err(src
                        .error(
                            Some(span),
                            "trigger.http",
                            format!(
                                "trigger `{id}` has both a `component` and a `static_response`"
                            ),
                        )
                        .with_help("keep one of them"));
                }
                _ => {}
            }
        }
        if matches!(config, TriggerConfig::Redis(_)) && component.is_none() {
            return Err(src
                .error(
                    Some(span),
                    "trigger.redis.component",
                    "missing required field",
                )
                .with_help("add `component = \"...\"`"));
        }
        triggers.push(Trigger {
            id,
            trigger_type,
            component,
            config,
            span,
        });
    }
    Ok(triggers)
}
