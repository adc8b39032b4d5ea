//! Reading a version 1 manifest, converted to the version 2 model as Spin
//! converts it.

use indexmap::IndexMap;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::SourceFile;
use crate::model::*;
use crate::reader::{Result, TableReader, type_name};
use crate::v2;

pub(crate) fn parse(
    src: &SourceFile,
    doc: &DeTable<'_>,
    span: std::ops::Range<usize>,
) -> Result<Manifest> {
    let mut top = TableReader::new(src, "", doc, span.clone());
    top.ignore("spin_manifest_version");
    top.ignore("spin_version");
    let mut warnings = vec![
        "this is a version 1 manifest; it is converted on load (version 2 is recommended)"
            .to_string(),
    ];
    let name = top.required_string("name")?.into_inner();
    let version = top
        .string("version")?
        .map(Spanned::into_inner)
        .unwrap_or_default();
    let description = top
        .string("description")?
        .map(Spanned::into_inner)
        .unwrap_or_default();
    let authors = top
        .string_list("authors")?
        .into_iter()
        .map(Spanned::into_inner)
        .collect();

    let Some(mut trigger) = top.table("trigger")? else {
        return Err(src
            .error(Some(span), "trigger", "missing required field")
            .with_help("add `trigger = { type = \"http\" }`"));
    };
    let trigger_type = trigger.required_string("type")?;
    let trigger_type_span = trigger_type.span();
    let trigger_type = trigger_type.into_inner();
    let base = trigger.string("base")?.map(Spanned::into_inner);
    let address = trigger.string("address")?.map(Spanned::into_inner);
    trigger.finish()?;

    let variables = match top.table("variables")? {
        Some(vars) => v2::parse_variables(vars)?,
        None => IndexMap::new(),
    };

    let mut components = IndexMap::new();
    let mut triggers = Vec::new();
    if let Some(list) = top.get("component") {
        let DeValue::Array(items) = list.get_ref() else {
            return Err(src
                .error(
                    Some(list.span()),
                    "component",
                    format!(
                        "expected an array of tables, found {}",
                        type_name(list.get_ref())
                    ),
                )
                .with_help("in a version 1 manifest each component is a `[[component]]` table"));
        };
        for item in items {
            let mut c = TableReader::from_value(src, "component", item)?;
            let raw_id = c.required_string("id")?.into_inner();
            // Spin fixes up version 1 ids rather than rejecting them.
            let id = raw_id.replace('_', "-").to_lowercase();
            let trigger_config = match c.table("trigger")? {
                Some(mut t) => {
                    let tspan = t.span.clone();
                    let config = match trigger_type.as_str() {
                        "http" => TriggerConfig::Http(v2::parse_http_trigger(&mut t)?),
                        "redis" => TriggerConfig::Redis(v2::parse_redis_trigger(&mut t)?),
                        _ => TriggerConfig::Other,
                    };
                    if !matches!(config, TriggerConfig::Other) {
                        t.finish()?;
                    }
                    Some((config, tspan))
                }
                None => None,
            };
            let span = c.span.clone();
            let mut component =
                v2::parse_component_with(id.clone(), c, "config", &variables, &mut warnings)?;
            if component.allowed_outbound_hosts.is_empty() {
                component.allowed_outbound_hosts = vec![
                    "redis://*:*".into(),
                    "mysql://*:*".into(),
                    "postgres://*:*".into(),
                ];
            }
            if let Some((config, tspan)) = trigger_config {
                triggers.push(Trigger {
                    id: format!("trigger-{id}"),
                    trigger_type: trigger_type.clone(),
                    component: Some(id.clone()),
                    config,
                    span: tspan,
                });
            } else {
                return Err(src
                    .error(
                        Some(span),
                        format!("component.{raw_id}.trigger"),
                        "missing required field",
                    )
                    .with_help("add `[component.trigger]` with `route = \"/...\"`"));
            }
            components.insert(id, component);
        }
    }
    top.finish()?;

    if triggers.is_empty() {
        return Err(src
            .error(
                Some(trigger_type_span),
                "component",
                "No triggers in app: the manifest has no components",
            )
            .with_help("add a `[[component]]` with a `[component.trigger]`"));
    }

    let application = Application {
        name,
        version,
        description,
        authors,
        http_base: if trigger_type == "http" { base } else { None },
        redis_address: if trigger_type == "redis" {
            address
        } else {
            None
        },
    };
    if let Some(b) = &application.http_base
        && b != "/"
    {
        return Err(src
            .error(
                None,
                "trigger.base",
                format!("base \"{b}\" is not supported"),
            )
            .with_help("remove `base` and put the prefix in each component's route"));
    }
    Ok(Manifest {
        source: src.clone(),
        version: ManifestVersion::V1,
        application,
        variables,
        triggers,
        components,
        warnings,
    })
}
