//! WAGI: running a WASI command as a CGI script.
//!
//! The request becomes environment variables, arguments and stdin; the
//! command's stdout is a CGI response (headers, blank line, body). Spin's
//! variable set and quirks are kept, since WAGI scripts depend on them.

use tracing::Instrument as _;

use anyhow::{Result, anyhow};
use gyre_engine::{HostState, InstanceConfig};
use http_body_util::{BodyExt as _, Full};
use wasmtime::component::InstancePre;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi_http::WasiBody;

use crate::body::{MAX_BUFFERED_BODY, ResponseBody, empty_response};
use crate::headers::WagiContext;
use gyre_cgi::{argv, parse_cgi_response};

pub(crate) struct WagiExecutor {
    pre: CommandPre<HostState>,
    argv: String,
}

impl WagiExecutor {
    pub(crate) fn new(pre: InstancePre<HostState>, argv: String) -> Result<Self> {
        let pre = CommandPre::new(pre).map_err(anyhow::Error::from)?;
        Ok(WagiExecutor { pre, argv })
    }

    pub(crate) async fn handle(
        &self,
        engine: &wasmtime::Engine,
        config: &InstanceConfig,
        limits: &gyre_engine::ComponentLimits,
        request: http::Request<WasiBody>,
        ctx: &WagiContext,
    ) -> Result<http::Response<ResponseBody>> {
        let (parts, body) = request.into_parts();
        let body = match http_body_util::Limited::new(body, MAX_BUFFERED_BODY)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => return Ok(empty_response(http::StatusCode::PAYLOAD_TOO_LARGE)),
        };
        let env = cgi_environment(&parts, ctx, body.len());
        let args = argv(
            &self.argv,
            parts.uri.path(),
            parts.uri.query().unwrap_or(""),
        );
        let stdout = MemoryOutputPipe::new(MAX_BUFFERED_BODY);
        let stdout_reader = stdout.clone();
        let mut store = config.new_store(engine, |b| {
            b.envs(&env);
            b.args(&args);
            b.stdin(MemoryInputPipe::new(body));
            b.stdout(stdout);
        })?;
        let watch = gyre_engine::RequestWatch::new();
        store.data_mut().watch_request(&watch);
        let command = self
            .pre
            .instantiate_async(&mut store)
            .instrument(gyre_trigger::instantiate_span(&config.component_id))
            .await
            .map_err(anyhow::Error::from)?;
        let outcome = command.wasi_cli_run().call_run(&mut store).await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(())) => return Err(anyhow!("the WAGI command exited with an error")),
            Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(exit) if exit.0 == 0 => {}
                Some(exit) => {
                    return Err(anyhow!("the WAGI command exited with status {}", exit.0));
                }
                None => {
                    return Err(crate::errors::explain(
                        anyhow::Error::from(e),
                        &watch,
                        limits,
                    ));
                }
            },
        }
        drop(store);
        let output = stdout_reader.contents();
        let parsed = match parse_cgi_response(&output) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(component = %config.component_id, "invalid CGI response: {e}");
                return Ok(if e.contains("Status") {
                    bad_gateway()
                } else {
                    empty_response(http::StatusCode::INTERNAL_SERVER_ERROR)
                });
            }
        };
        let mut builder = http::Response::builder().status(parsed.status);
        for (k, v) in parsed.headers {
            builder = builder.header(k, v);
        }
        let body = Full::new(output.slice(parsed.body_start..))
            .map_err(|never| match never {})
            .boxed_unsync();
        Ok(builder.body(body)?)
    }
}

fn cgi_environment(
    parts: &http::request::Parts,
    ctx: &WagiContext,
    content_length: usize,
) -> Vec<(String, String)> {
    let host = crate::headers::authority(&parts.uri, &parts.headers);
    let (server_name, server_port) = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => {
            (name.to_string(), port.to_string())
        }
        _ => (host.clone(), "80".to_string()),
    };
    let client_ip = ctx
        .client_addr
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let mut env = vec![
        ("AUTH_TYPE".to_string(), String::new()),
        ("CONTENT_LENGTH".to_string(), content_length.to_string()),
        // Spin reads this from a header literally named CONTENT_TYPE.
        ("CONTENT_TYPE".to_string(), header("CONTENT_TYPE")),
        ("GATEWAY_INTERFACE".to_string(), "CGI/1.1".to_string()),
        (
            "QUERY_STRING".to_string(),
            parts.uri.query().unwrap_or("").to_string(),
        ),
        ("REMOTE_ADDR".to_string(), client_ip.clone()),
        ("REMOTE_HOST".to_string(), client_ip),
        ("REMOTE_USER".to_string(), String::new()),
        ("REQUEST_METHOD".to_string(), parts.method.to_string()),
        ("SCRIPT_NAME".to_string(), ctx.component_route.clone()),
        ("PATH_INFO".to_string(), percent_decode(&ctx.path_info)),
        (
            "PATH_TRANSLATED".to_string(),
            percent_decode(&ctx.path_info),
        ),
        ("X_RAW_PATH_INFO".to_string(), ctx.path_info.clone()),
        ("SERVER_NAME".to_string(), server_name),
        ("SERVER_PORT".to_string(), server_port),
        ("SERVER_PROTOCOL".to_string(), "HTTP/1.1".to_string()),
        ("SERVER_SOFTWARE".to_string(), "WAGI/1".to_string()),
        ("X_FULL_URL".to_string(), ctx.full_url.clone()),
        ("X_MATCHED_ROUTE".to_string(), ctx.matched_route.clone()),
        ("X_COMPONENT_ROUTE".to_string(), ctx.component_route.clone()),
        (
            "X_RAW_COMPONENT_ROUTE".to_string(),
            ctx.matched_route.clone(),
        ),
        ("X_BASE_PATH".to_string(), "/".to_string()),
        (
            "X_CLIENT_ADDR".to_string(),
            ctx.client_addr.map(|a| a.to_string()).unwrap_or_default(),
        ),
    ];
    for (name, value) in &ctx.params {
        env.push((
            format!("X_PATH_MATCH_{}", name.to_ascii_uppercase()),
            value.clone(),
        ));
    }
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if n == "authorization" || n == "connection" || n.starts_with("spin-") {
            continue;
        }
        if let Ok(v) = value.to_str() {
            env.push((
                format!("HTTP_{}", n.to_ascii_uppercase().replace('-', "_")),
                v.to_string(),
            ));
        }
    }
    env
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Status for a CGI response that could not be parsed.
pub(crate) fn bad_gateway() -> http::Response<ResponseBody> {
    empty_response(http::StatusCode::BAD_GATEWAY)
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b/%2F"), "/a b//");
        assert_eq!(percent_decode("/100%"), "/100%");
    }
}
