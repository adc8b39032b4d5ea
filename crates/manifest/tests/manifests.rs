//! Manifests as data: invalid ones with the exact error each must give, and
//! valid ones with what they normalise to.

use gyre_manifest::{
    ComponentSource, FileMount, HttpExecutor, HttpRoute, ManifestVersion, SourceFile,
    TriggerConfig, parse,
};

const HEAD: &str = "spin_manifest_version = 2\n[application]\nname = \"app\"\n";

/// (case, manifest, expected `line:column`, expected pieces of the message).
/// Cases without `HEAD` write the whole file.
const INVALID: &[(&str, &str, &str, &[&str])] = &[
    (
        "no version",
        "[application]\nname = \"a\"\n",
        "1:1",
        &[
            "`spin_manifest_version`: missing required field",
            "spin_manifest_version = 2",
        ],
    ),
    (
        "version 3",
        "spin_manifest_version = 3\n",
        "1:25",
        &["invalid manifest version: 3"],
    ),
    (
        "version 2 as string",
        "spin_manifest_version = \"2\"\n",
        "1:25",
        &["written as an integer"],
    ),
    (
        "bad toml",
        "spin_manifest_version = 2\n[application\n",
        "2:",
        &["invalid TOML"],
    ),
    (
        "no application",
        "spin_manifest_version = 2\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n",
        "1:1",
        &["`application`: missing required table"],
    ),
    (
        "no name",
        "spin_manifest_version = 2\n[application]\nversion = \"1\"\n",
        "2:1",
        &["`application.name`: missing required field"],
    ),
    (
        "unknown app field",
        "spin_manifest_version = 2\n[application]\nname = \"a\"\nnmae = \"b\"\n",
        "4:1",
        &["`application.nmae`: unknown field", "valid fields here"],
    ),
    (
        "no triggers",
        HEAD,
        "1:1",
        &["`trigger`: missing required table", "[[trigger.http]]"],
    ),
    (
        "trigger not array",
        "spin_manifest_version = 2\n[application]\nname = \"a\"\n[trigger.http]\nroute = \"/\"\n",
        "4:1",
        &[
            "`trigger.http`: expected an array of tables",
            "[[trigger.http]]",
        ],
    ),
    (
        "undefined component",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"api\"\n[[trigger.http]]\nroute = \"/b\"\ncomponent = \"apx\"\n[component.api]\nsource = \"a.wasm\"\n[component.worker]\nsource = \"w.wasm\"\n",
        "9:13",
        &[
            "component `apx` is used by trigger #2 but not defined",
            "did you mean `api`?",
            "defined: api, worker",
        ],
    ),
    (
        "no route",
        "[[trigger.http]]\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n",
        "4:1",
        &["`trigger.http.route`: missing required field"],
    ),
    (
        "route number",
        "[[trigger.http]]\nroute = 5\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n",
        "5:9",
        &["expected a path string, found an integer"],
    ),
    (
        "private false",
        "[[trigger.http]]\nroute = { private = false }\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n",
        "5:9",
        &["must be `{ private = true }`"],
    ),
    (
        "neither component nor static",
        "[[trigger.http]]\nroute = \"/\"\n",
        "4:1",
        &["has neither a `component` nor a `static_response`"],
    ),
    (
        "both component and static",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\nstatic_response = { body = \"x\" }\n[component.a]\nsource = \"a.wasm\"\n",
        "4:1",
        &["has both a `component` and a `static_response`"],
    ),
    (
        "unknown trigger field",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\nroutes = \"/x\"\n[component.a]\nsource = \"a.wasm\"\n",
        "7:1",
        &[
            "`trigger.http.routes`: unknown field",
            "did you mean `route`?",
        ],
    ),
    (
        "bad executor",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\nexecutor = { type = \"cgi\" }\n[component.a]\nsource = \"a.wasm\"\n",
        "7:21",
        &[
            "unknown executor type \"cgi\"",
            "http (default), spin, wagi",
        ],
    ),
    (
        "wagi entrypoint",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\nexecutor = { type = \"wagi\", entrypoint = \"main\" }\n[component.a]\nsource = \"a.wasm\"\n",
        "7:42",
        &["WAGI entrypoint \"main\" is not supported"],
    ),
    (
        "static bad status",
        "[[trigger.http]]\nroute = \"/\"\nstatic_response = { status_code = 42 }\n",
        "6:35",
        &["42 is not an HTTP status code"],
    ),
    (
        "http base",
        "[application.trigger.http]\nbase = \"/api\"\n[[trigger.http]]\nroute = \"/\"\nstatic_response = {}\n",
        "5:8",
        &["base \"/api\" is not supported"],
    ),
    (
        "component id underscore",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"my_comp\"\n[component.my_comp]\nsource = \"a.wasm\"\n",
        "7:12",
        &["invalid component id \"my_comp\"", "'-', not '_'"],
    ),
    (
        "component id digit",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"1comp\"\n[component.1comp]\nsource = \"a.wasm\"\n",
        "7:12",
        &["must start with a letter"],
    ),
    (
        "no source",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\ndescription = \"x\"\n",
        "7:1",
        &["`component.a.source`: missing required field"],
    ),
    (
        "source number",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = 3\n",
        "8:10",
        &["expected a path or a table"],
    ),
    (
        "digest not sha256",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = { url = \"https://x/a.wasm\", digest = \"md5:abc\" }\n",
        "8:47",
        &["must start with `sha256:`"],
    ),
    (
        "digest short",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = { url = \"https://x/a.wasm\", digest = \"sha256:abc\" }\n",
        "8:47",
        &["64 hexadecimal digits"],
    ),
    (
        "source table incomplete",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = { url = \"https://x/a.wasm\" }\n",
        "8:10",
        &["needs `url` and `digest`"],
    ),
    (
        "unknown component field",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\nenviroment = { A = \"b\" }\n",
        "9:1",
        &[
            "`component.a.enviroment`: unknown field",
            "did you mean `environment`?",
        ],
    ),
    (
        "environment not strings",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\nenvironment = { A = 1 }\n",
        "9:21",
        &["expected a string, found an integer"],
    ),
    (
        "files dotdot",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\nfiles = [\"..\"]\n",
        "9:10",
        &["may not be or end in `.` or `..`"],
    ),
    (
        "files relative destination",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\nfiles = [{ source = \"s\", destination = \"d\" }]\n",
        "9:40",
        &["must be an absolute guest path"],
    ),
    (
        "files missing destination",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\nfiles = [{ source = \"s\" }]\n",
        "9:10",
        &["`component.a.files.destination`: missing required field"],
    ),
    (
        "kv label",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\nkey_value_stores = [\"my store\"]\n",
        "9:21",
        &["invalid label \"my store\"", "kebab-case or snake_case"],
    ),
    (
        "sqlite not list",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\nsqlite_databases = \"default\"\n",
        "9:20",
        &["expected an array of strings"],
    ),
    (
        "variable both",
        "[variables]\nv = { required = true, default = \"x\" }\n[[trigger.http]]\nroute = \"/\"\nstatic_response = {}\n",
        "5:5",
        &["must be `required` OR have a `default`"],
    ),
    (
        "variable neither",
        "[variables]\nv = { secret = true }\n[[trigger.http]]\nroute = \"/\"\nstatic_response = {}\n",
        "5:5",
        &["must be `required` OR have a `default`"],
    ),
    (
        "variable uppercase",
        "[variables]\nApi = { default = \"x\" }\n[[trigger.http]]\nroute = \"/\"\nstatic_response = {}\n",
        "5:1",
        &["invalid variable name \"Api\""],
    ),
    (
        "unknown variable in template",
        "[variables]\nhost = { default = \"x\" }\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\nvariables = { url = \"https://{{ hots }}\" }\n",
        "11:21",
        &["unknown variable \"hots\"", "application variables: host"],
    ),
    (
        "unmatched template",
        "[variables]\nhost = { default = \"x\" }\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\nvariables = { url = \"{{ host\" }\n",
        "11:21",
        &["unmatched `{{`"],
    ),
    (
        "outbound no scheme",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\nallowed_outbound_hosts = [\"example.com\"]\n",
        "9:27",
        &["\"example.com\": missing scheme", "https://example.com"],
    ),
    (
        "outbound path",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\nallowed_outbound_hosts = [\"https://example.com/api\"]\n",
        "9:27",
        &["a path is not allowed here"],
    ),
    (
        "outbound allow-all",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\nallowed_outbound_hosts = [\"insecure:allow-all\"]\n",
        "9:27",
        &["`*://*:*`"],
    ),
    (
        "duplicate trigger id",
        "[[trigger.http]]\nid = \"t\"\nroute = \"/\"\nstatic_response = {}\n[[trigger.http]]\nid = \"t\"\nroute = \"/b\"\nstatic_response = {}\n",
        "9:6",
        &["duplicate trigger id \"t\""],
    ),
    (
        "build without command",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n[component.a.build]\nworkdir = \"x\"\n",
        "9:1",
        &["`component.a.build.command`: missing required field"],
    ),
    (
        "dependency without package",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n[component.a.dependencies]\nhelper = \"1.0\"\n",
        "10:10",
        &["a plain dependency name needs `package`"],
    ),
    (
        "dependency two sources",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n[component.a.dependencies]\n\"a:b\" = { path = \"x.wasm\", version = \"1\" }\n",
        "10:9",
        &["exactly one of `version`, `path`, `url` or `component`"],
    ),
    (
        "http trigger dependency role",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\ndependencies = { auth = [] }\n[component.a]\nsource = \"a.wasm\"\n",
        "7:18",
        &["only take `middleware`"],
    ),
    (
        "redis no channel",
        "[[trigger.redis]]\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n",
        "4:1",
        &["`trigger.redis.channel`: missing required field"],
    ),
    (
        "v1 no trigger",
        "spin_manifest_version = \"1\"\nname = \"a\"\n",
        "1:1",
        &["`trigger`: missing required field"],
    ),
    (
        "v1 bad http host",
        "spin_manifest_version = \"1\"\nname = \"a\"\ntrigger = { type = \"http\" }\n[[component]]\nid = \"a\"\nsource = \"a.wasm\"\nallowed_http_hosts = [\"ftp://x\"]\n[component.trigger]\nroute = \"/\"\n",
        "7:23",
        &["allowed_http_hosts entries was invalid"],
    ),
];

fn full_text(body: &str) -> String {
    if body.starts_with("spin_manifest_version") || body.starts_with("[application]") {
        body.to_string()
    } else {
        format!("{HEAD}{body}")
    }
}

#[test]
fn invalid_manifests_give_located_errors() {
    assert!(INVALID.len() >= 30, "keep at least 30 cases");
    let mut failures = Vec::new();
    for (case, body, location, pieces) in INVALID {
        let text = full_text(body);
        let err = match parse(SourceFile::new("apps/demo/spin.toml", text.clone())) {
            Ok(_) => {
                failures.push(format!("{case}: parsed, but should fail"));
                continue;
            }
            Err(e) => e.to_string(),
        };
        let expected_prefix = format!("apps/demo/spin.toml:{location}");
        if !err.starts_with(&expected_prefix) {
            failures.push(format!(
                "{case}: expected location {expected_prefix}, got:\n{err}"
            ));
        }
        for piece in *pieces {
            if !err.contains(piece) {
                failures.push(format!("{case}: expected {piece:?} in:\n{err}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_error_names_a_fix() {
    // The TOML syntax error is the one case where the parser's own message is
    // the help.
    for (case, body, _, _) in INVALID.iter().filter(|c| c.0 != "bad toml") {
        let err = parse(SourceFile::new("spin.toml", full_text(body))).expect_err(case);
        assert!(err.help.is_some(), "{case}: no help in {err}");
    }
}

#[test]
fn inline_components_are_hoisted_and_trigger_ids_generated() {
    let text = format!(
        "{HEAD}[[trigger.http]]\nroute = \"/a/...\"\ncomponent = {{ source = \"a.wasm\" }}\n\
         [[trigger.http]]\nid = \"named\"\nroute = \"/b\"\ncomponent = {{ source = \"b.wasm\" }}\n\
         [[trigger.http]]\nroute = \"/c\"\ncomponent = \"c\"\n\
         [[trigger.http]]\nroute = \"/c2\"\ncomponent = \"c\"\n\
         [[trigger.http]]\nroute = \"/s\"\nstatic_response = {{ status_code = 201, body = \"made\" }}\n\
         [component.c]\nsource = \"c.wasm\"\n"
    );
    let m = parse(SourceFile::new("spin.toml", text)).expect("valid");
    let ids: Vec<(&str, Option<&str>)> = m
        .triggers
        .iter()
        .map(|t| (t.id.as_str(), t.component.as_deref()))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("inline-component1-http-trigger", Some("inline-component1")),
            ("named", Some("named-component")),
            ("c-http-trigger", Some("c")),
            ("http-trigger0", Some("c")),
            ("http-trigger1", None),
        ]
    );
    assert_eq!(
        m.components["named-component"].source,
        ComponentSource::Local("b.wasm".into())
    );
    let TriggerConfig::Http(h) = &m.triggers[4].config else {
        panic!("http trigger expected")
    };
    assert_eq!(h.static_response.as_ref().map(|s| s.status), Some(201));
}

#[test]
fn full_component_parses() {
    let text = format!(
        "{HEAD}[variables]\nhost = {{ default = \"example.com\" }}\ntoken = {{ required = true, secret = true }}\n\
         [[trigger.http]]\nroute = {{ private = true }}\ncomponent = \"full\"\nexecutor = {{ type = \"wagi\" }}\n\
         [component.full]\nsource = {{ url = \"https://example.com/a.wasm\", digest = \"sha256:{}\" }}\n\
         files = [\"static/**/*\", {{ source = \"assets\", destination = \"/assets\" }}]\n\
         exclude_files = [\"**/*.bak\"]\nenvironment = {{ MODE = \"test\" }}\n\
         allowed_outbound_hosts = [\"https://{{{{ host }}}}\", \"redis://localhost:6379\", \"*://*:*\", \"*://10.0.0.0/8:80\"]\n\
         key_value_stores = [\"default\", \"other_store\"]\nsqlite_databases = [\"default\"]\n\
         variables = {{ url = \"https://{{{{ host }}}}/x\", secret = \"{{{{ token }}}}\" }}\n\
         [component.full.build]\ncommand = [\"make\", \"make install\"]\nworkdir = \"src\"\nwatch = [\"src/**/*.c\"]\n",
        "a".repeat(64)
    );
    let m = parse(SourceFile::new("spin.toml", text)).expect("valid");
    let c = &m.components["full"];
    assert_eq!(c.files.len(), 2);
    assert_eq!(
        c.files[1],
        FileMount::Placement {
            source: "assets".into(),
            destination: "/assets".into()
        }
    );
    assert_eq!(c.environment["MODE"], "test");
    assert_eq!(c.key_value_stores, vec!["default", "other_store"]);
    assert_eq!(c.variables["url"], "https://{{ host }}/x");
    assert_eq!(c.build.as_ref().map(|b| b.commands.len()), Some(2));
    assert!(m.variables["token"].secret);
    let TriggerConfig::Http(h) = &m.triggers[0].config else {
        panic!("http trigger expected")
    };
    assert_eq!(h.route, HttpRoute::Private);
    assert!(matches!(h.executor, HttpExecutor::Wagi { .. }));
}

#[test]
fn version_1_is_converted() {
    let text = "spin_manifest_version = \"1\"\nname = \"old\"\nversion = \"1.0.0\"\ntrigger = { type = \"http\", base = \"/\" }\n\
        [variables]\nmsg = { default = \"hi\" }\n\
        [[component]]\nid = \"Hello_World\"\nsource = \"hello.wasm\"\nallowed_http_hosts = [\"example.com\"]\nconfig = { message = \"{{ msg }}\" }\n\
        [component.trigger]\nroute = \"/hello\"\n\
        [[component]]\nid = \"db\"\nsource = \"db.wasm\"\n[component.trigger]\nroute = \"/db\"\n";
    let m = parse(SourceFile::new("spin.toml", text)).expect("valid v1");
    assert_eq!(m.version, ManifestVersion::V1);
    assert_eq!(m.application.name, "old");
    assert_eq!(m.triggers[0].id, "trigger-hello-world");
    assert_eq!(m.triggers[0].component.as_deref(), Some("hello-world"));
    let hello = &m.components["hello-world"];
    assert_eq!(
        hello.allowed_outbound_hosts,
        vec!["http://example.com", "https://example.com"]
    );
    assert_eq!(hello.variables["message"], "{{ msg }}");
    assert_eq!(
        m.components["db"].allowed_outbound_hosts,
        vec!["redis://*:*", "mysql://*:*", "postgres://*:*"]
    );
}
