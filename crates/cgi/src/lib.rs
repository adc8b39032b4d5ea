//! The CGI protocol as WAGI uses it.
//!
//! A WAGI component is a WASI command: the request arrives as arguments,
//! environment variables and stdin, and the response is whatever the
//! command writes to stdout — CGI headers, a blank line, the body. The
//! parsing lives in its own crate, free of Wasmtime, because it reads
//! bytes a guest controls: it is fuzzed (`fuzz/`) and must never panic.

/// `${SCRIPT_NAME} ${ARGS}` expanded and split on spaces.
pub fn argv(template: &str, path: &str, query: &str) -> Vec<String> {
    let args = query.replace('&', " ");
    template
        .replace("${SCRIPT_NAME}", path)
        .replace("${ARGS}", &args)
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A parsed CGI response: status, headers, and where the body starts.
#[derive(Debug, PartialEq, Eq)]
pub struct CgiResponse {
    /// Status code.
    pub status: u16,
    /// Headers to send (the `Status` pseudo-header removed).
    pub headers: Vec<(String, String)>,
    /// Offset of the body in the output.
    pub body_start: usize,
}

/// Parses a CGI script's output. Never panics, whatever the bytes.
pub fn parse_cgi_response(output: &[u8]) -> Result<CgiResponse, String> {
    if output.is_empty() {
        return Err("the script wrote nothing to stdout".into());
    }
    let mut headers = Vec::new();
    let mut status: Option<u16> = None;
    let mut pos = 0;
    let mut body_start = output.len();
    while pos < output.len() {
        let end = output[pos..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(output.len(), |i| pos + i);
        let line = &output[pos..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos = (end + 1).min(output.len());
        if line.is_empty() {
            body_start = pos;
            break;
        }
        let line =
            std::str::from_utf8(line).map_err(|_| "a header line is not UTF-8".to_string())?;
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("header line without `:`: {line:?}"));
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("");
            match code.parse::<u16>() {
                Ok(c) if (100..=999).contains(&c) => status = Some(c),
                _ => return Err(format!("invalid Status header {value:?}")),
            }
        } else {
            headers.push((name.to_string(), value.to_string()));
        }
        if end == output.len() {
            body_start = output.len();
        }
    }
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    let status = match status {
        Some(s) => s,
        None if has("location") => 302,
        None if has("content-type") => 200,
        None => return Err("Exactly one of 'location' or 'content-type' must be specified".into()),
    };
    if http::StatusCode::from_u16(status).is_err() {
        return Err(format!("invalid status {status}"));
    }
    for (k, v) in &headers {
        if http::HeaderName::from_bytes(k.as_bytes()).is_err()
            || http::HeaderValue::from_str(v).is_err()
        {
            return Err(format!("invalid header {k:?}"));
        }
    }
    Ok(CgiResponse {
        status,
        headers,
        body_start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_responses() {
        let ok =
            parse_cgi_response(b"Content-Type: text/plain\r\nX-A: b\r\n\r\nhello").expect("valid");
        assert_eq!(ok.status, 200);
        assert_eq!(
            ok.headers,
            vec![
                ("Content-Type".into(), "text/plain".into()),
                ("X-A".into(), "b".into())
            ]
        );
        assert_eq!(ok.body_start, 36);
        let redirect = parse_cgi_response(b"Location: /x\n\n").expect("valid");
        assert_eq!(redirect.status, 302);
        let status = parse_cgi_response(b"Status: 404 Not Found\nContent-Type: text/plain\n\nno")
            .expect("valid");
        assert_eq!(status.status, 404);
        assert!(parse_cgi_response(b"").is_err());
        assert!(
            parse_cgi_response(b"X-Only: 1\n\nbody")
                .expect_err("no type")
                .contains("Exactly one of")
        );
        assert!(parse_cgi_response(b"Status: abc\n\n").is_err());
        assert!(parse_cgi_response(b"garbage\n\n").is_err());
        assert!(parse_cgi_response(&[0xff, 0xfe, b':', b'\n']).is_err());
    }

    #[test]
    fn argv_from_template() {
        assert_eq!(
            argv("${SCRIPT_NAME} ${ARGS}", "/assert-args", "x=y"),
            vec!["/assert-args", "x=y"]
        );
        assert_eq!(
            argv("${SCRIPT_NAME} ${ARGS}", "/a", "x=1&y=2"),
            vec!["/a", "x=1", "y=2"]
        );
        assert_eq!(argv("${SCRIPT_NAME} ${ARGS}", "/a", ""), vec!["/a"]);
    }
}
