//! `fermyon:spin/llm@2.0.0` from a Python SDK 5 app, against an inferencing
//! server in the harness that speaks both of Spin's remote protocols (Spin's
//! own `/infer` + `/embed`, and OpenAI's `/v1/chat/completions` +
//! `/v1/embeddings`): the wire format Gyre sends, Spin's default
//! parameters, `ai_models` gating, and every misconfiguration's error.

mod support;

use serde_json::{Value, json};
use support::servers::LlmServer;
use support::{Gyre, TestApp};

const TOKEN: &str = "secret-token";

const LLM_APP: &str = r#"
spin_manifest_version = 2
[application]
name = "llm"
[[trigger.http]]
route = "/..."
component = "ai"
[component.ai]
source = "{guest:py5-state}"
ai_models = ["llama2-chat", "all-minilm-l6-v2", "slow", "huge"]
[[trigger.http]]
route = "/none/..."
component = "none"
[component.none]
source = "{guest:py5-state}"
"#;

/// `gyre up` with `[llm_compute]` pointing at `server` (`extra` adds keys).
fn up(server: &LlmServer, api_type: &str, extra: &str) -> (TestApp, Gyre) {
    let app = TestApp::new(LLM_APP);
    app.write(
        "runtime-config.toml",
        format!(
            "[llm_compute]\ntype = \"remote_http\"\nurl = \"{}\"\nauth_token = \"{TOKEN}\"\napi_type = \"{api_type}\"\n{extra}",
            server.url
        )
        .as_bytes(),
    );
    let gyre = Gyre::up(&app, &["--runtime-config-file", "runtime-config.toml"]);
    (app, gyre)
}

fn post(gyre: &Gyre, path: &str, body: &str) -> (u16, String) {
    let r = gyre.post(path, body.as_bytes());
    (r.status, r.text())
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Spin's defaults, as the Spin protocol carries them.
fn spin_defaults() -> Value {
    json!({"maxTokens": 100, "repeatPenalty": 1.1, "repeatPenaltyLastNTokenCount": 64,
           "temperature": 0.8, "topK": 40, "topP": 0.9})
}

/// f32 values, as the guest's parameters reach the wire.
fn approx_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            (x.as_f64().unwrap_or(f64::NAN) - y.as_f64().unwrap_or(f64::NAN)).abs() < 1e-6
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| approx_eq(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn spin_protocol_infer_and_embed() {
    let server = LlmServer::start(TOKEN);
    let (_app, gyre) = up(&server, "default", "");
    let (status, body) = post(&gyre, "/llm/infer?model=llama2-chat", "tell me a story");
    assert_eq!(status, 200, "{body}\n{}", gyre.stderr());
    assert_eq!(
        json_of(&body),
        json!({"text": "llama2-chat says: tell me a story", "usage": {"prompt": 4, "generated": 3}})
    );
    let (status, body) = post(&gyre, "/llm/infer?model=llama2-chat&max_tokens=7", "hi");
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &gyre,
        "/llm/embed?model=all-minilm-l6-v2",
        r#"["abc", "hello"]"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json_of(&body),
        json!({"embeddings": [[3.0, 0.5], [5.0, 0.5]], "usage": 2})
    );

    let requests = server.requests();
    let paths: Vec<&str> = requests.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(paths, ["/infer", "/infer", "/embed"]);
    for (_, auth, _) in &requests {
        assert_eq!(auth.as_deref(), Some("Bearer secret-token"));
    }
    // No parameters from the guest: Spin's defaults go on the wire.
    let (_, _, first) = &requests[0];
    assert_eq!(first["model"], "llama2-chat");
    assert_eq!(first["prompt"], "tell me a story");
    assert!(approx_eq(&first["options"], &spin_defaults()), "{first}");
    let (_, _, second) = &requests[1];
    let given = json!({"maxTokens": 7, "repeatPenalty": 1.5, "repeatPenaltyLastNTokenCount": 32,
                       "temperature": 0.25, "topK": 7, "topP": 0.5});
    assert!(approx_eq(&second["options"], &given), "{second}");
    assert_eq!(
        requests[2].2,
        json!({"model": "all-minilm-l6-v2", "input": ["abc", "hello"]})
    );
}

#[test]
fn openai_protocol_chat_completions_and_embeddings() {
    let server = LlmServer::start(TOKEN);
    let (_app, gyre) = up(&server, "open_ai", "");
    let (status, body) = post(&gyre, "/llm/infer?model=llama2-chat", "two words");
    assert_eq!(status, 200, "{body}\n{}", gyre.stderr());
    assert_eq!(
        json_of(&body),
        json!({"text": "llama2-chat chats: two words", "usage": {"prompt": 2, "generated": 4}})
    );
    let (status, body) = post(
        &gyre,
        "/llm/embed?model=all-minilm-l6-v2",
        r#"["a", "bb", "ccc"]"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json_of(&body),
        json!({"embeddings": [[1.0, 0.5], [2.0, 0.5], [3.0, 0.5]], "usage": 3}),
        "embeddings in input order, whatever order the server listed them in"
    );
    let requests = server.requests();
    let (path, auth, chat) = &requests[0];
    assert_eq!(
        (path.as_str(), auth.as_deref()),
        ("/v1/chat/completions", Some("Bearer secret-token"))
    );
    assert_eq!(chat["model"], "llama2-chat");
    assert_eq!(
        chat["messages"],
        json!([{"role": "user", "content": "two words"}])
    );
    assert_eq!(chat["max_tokens"], 100);
    assert_eq!(requests[1].0, "/v1/embeddings");
    assert_eq!(requests[1].2["input"], json!(["a", "bb", "ccc"]));
}

#[test]
fn models_not_granted_and_failing_servers_are_the_interfaces_errors() {
    let server = LlmServer::start(TOKEN);
    let (_app, gyre) = up(&server, "default", "timeout = \"1s\"\n");
    // (path, body, status, the error the guest sees)
    let cases: &[(&str, &str, u16, &str)] = &[
        (
            "/llm/infer?model=gpt-4",
            "x",
            409,
            "Error_InvalidInput: The component does not have access to use 'gpt-4'. To give the component access, add 'gpt-4' to the 'ai_models' key for the component in your spin.toml manifest.",
        ),
        (
            "/none/llm/embed?model=all-minilm-l6-v2",
            r#"["a"]"#,
            409,
            "Error_InvalidInput: The component does not have access to use 'all-minilm-l6-v2'.",
        ),
        ("/llm/infer?model=slow", "x", 409, "timed out"),
        (
            "/llm/infer?model=huge",
            "x",
            409,
            "the response is larger than 16 MiB",
        ),
    ];
    for (path, body, status, want) in cases {
        let (got, text) = post(&gyre, path, body);
        assert_eq!(got, *status, "{path}: {text}");
        assert!(
            text.starts_with(want) || text.contains(want),
            "{path}: want {want:?} in {text:?}"
        );
    }
    // The server still answers after all that.
    assert_eq!(post(&gyre, "/llm/infer?model=llama2-chat", "ok").0, 200);
}

#[test]
fn a_wrong_token_or_no_backend_is_a_runtime_error_that_says_what_to_do() {
    let server = LlmServer::start("another-token");
    let (_app, gyre) = up(&server, "default", "");
    let (status, text) = post(&gyre, "/llm/infer?model=llama2-chat", "x");
    assert_eq!(status, 409, "{text}");
    assert!(
        text.starts_with("Error_RuntimeError: ")
            && text.contains("/infer: the server answered 401"),
        "{text}"
    );

    let app = TestApp::new(LLM_APP);
    let gyre = Gyre::up(&app, &[]);
    let (status, text) = post(&gyre, "/llm/infer?model=llama2-chat", "x");
    assert_eq!(status, 409, "{text}");
    assert!(
        text.starts_with("Error_RuntimeError: no LLM backend is configured: add `[llm_compute]`"),
        "{text}"
    );
}

#[test]
fn a_bad_llm_compute_table_is_a_load_error_at_its_line() {
    // (runtime config, what the error must say)
    let cases = [
        (
            "[llm_compute]\ntype = \"remote_http\"\nurl = \"ftp://x\"\nauth_token = \"t\"\n",
            "runtime-config.toml:3",
        ),
        (
            "[llm_compute]\ntype = \"remote_http\"\nurl = \"http://x\"\nauth_token = \"t\"\napi_type = \"anthropic\"\n",
            "unknown api_type `anthropic`",
        ),
        (
            "[llm_compute]\ntype = \"remote_http\"\nurl = \"http://x\"\n",
            "auth_token",
        ),
        (
            "[llm_compute]\ntype = \"cloud\"\n",
            "unknown llm_compute type `cloud`",
        ),
    ];
    for (config, want) in cases {
        let app = TestApp::new(LLM_APP);
        app.write("runtime-config.toml", config.as_bytes());
        let stderr = support::up_fails(&app, &["--runtime-config-file", "runtime-config.toml"]);
        assert!(stderr.contains(want), "{config}: want {want:?} in {stderr}");
    }
}
