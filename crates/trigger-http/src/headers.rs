//! The request as a guest sees it: absolute URI and Spin's `spin-*` headers.
//!
//! Exactly Spin's set is added (conformance tests reject any other `spin-*`
//! header), after the client's own headers, with `Connection` removed.

use std::net::SocketAddr;

use http::header::{CONNECTION, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Uri};

use crate::routes::RouteMatch;

/// What the trigger knows about a routed request.
pub struct RoutedRequest<'a, T> {
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The matched route.
    pub route: &'a RouteMatch<'a, T>,
    /// The client's address.
    pub client_addr: SocketAddr,
}

/// The authority the client addressed: `Host`, else the URI's, else
/// `localhost`.
pub fn authority(uri: &Uri, headers: &HeaderMap) -> String {
    headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".to_string())
}

/// Rewrites `uri` to the absolute form guests expect and adds the `spin-*`
/// headers for `routed`.
pub fn prepare<T>(
    uri: &mut Uri,
    headers: &mut HeaderMap,
    routed: &RoutedRequest<'_, T>,
) -> Result<(), http::Error> {
    let host = authority(uri, headers);
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let full_url = format!("{}://{host}{path_and_query}", routed.scheme);
    *uri = Uri::builder()
        .scheme(routed.scheme)
        .authority(host.as_str())
        .path_and_query(path_and_query.as_str())
        .build()?;
    headers.remove(CONNECTION);

    let route = routed.route;
    let mut add = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.append(HeaderName::from_static(name), v);
        }
    };
    add("spin-full-url", &full_url);
    add("spin-path-info", &route.path_info);
    add("spin-matched-route", route.route);
    add("spin-raw-component-route", route.route);
    add("spin-component-route", route.component_route);
    add("spin-base-path", "/");
    add("spin-client-addr", &routed.client_addr.to_string());
    for (name, value) in &route.params {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(param_header(name).as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(n, v);
        }
    }
    Ok(())
}

/// `spin-path-match-<name>` for a `:name` parameter.
pub fn param_header(name: &str) -> String {
    format!(
        "spin-path-match-{}",
        name.replace('_', "-").to_ascii_lowercase()
    )
}

/// What the router learned about a request, for the CGI variables.
#[derive(Debug, Clone, Default)]
pub(crate) struct WagiContext {
    pub(crate) client_addr: Option<SocketAddr>,
    pub(crate) full_url: String,
    pub(crate) matched_route: String,
    pub(crate) component_route: String,
    pub(crate) path_info: String,
    pub(crate) params: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::Router;

    #[test]
    fn spin_headers_for_a_parameterised_wildcard_route() {
        let (router, _) =
            Router::build([("/users/:userid/cart/...".to_string(), ())]).expect("valid");
        let m = router.route("/users/1/cart/items/3/edit").expect("match");
        let mut uri: Uri = "/users/1/cart/items/3/edit?theme=pink"
            .parse()
            .expect("uri");
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("example.com:8080"));
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        headers.insert("x-custom", HeaderValue::from_static("1"));
        let routed = RoutedRequest {
            scheme: "http",
            route: &m,
            client_addr: "127.0.0.1:5000".parse().expect("addr"),
        };
        prepare(&mut uri, &mut headers, &routed).expect("prepared");
        assert_eq!(
            uri.to_string(),
            "http://example.com:8080/users/1/cart/items/3/edit?theme=pink"
        );
        let got: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_string()))
            .collect();
        let want: Vec<(String, String)> = [
            ("host", "example.com:8080"),
            ("x-custom", "1"),
            (
                "spin-full-url",
                "http://example.com:8080/users/1/cart/items/3/edit?theme=pink",
            ),
            ("spin-path-info", "/items/3/edit"),
            ("spin-matched-route", "/users/:userid/cart/..."),
            ("spin-raw-component-route", "/users/:userid/cart/..."),
            ("spin-component-route", "/users/:userid/cart"),
            ("spin-base-path", "/"),
            ("spin-client-addr", "127.0.0.1:5000"),
            ("spin-path-match-userid", "1"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn parameter_header_names() {
        assert_eq!(param_header("path_segment"), "spin-path-match-path-segment");
        assert_eq!(param_header("ID"), "spin-path-match-id");
    }
}
