//! Route patterns and matching, as Spin routes requests.
//!
//! A route is normalised (leading `/` added, one trailing `/` removed) and
//! split into segments: exact text, `:name` parameters and an optional
//! trailing wildcard `/...` (legacy `/*`). Among the routes that match a
//! path, the most specific wins, comparing segment by segment: exact beats
//! parameter beats wildcard, so the order in the manifest does not matter.
//! Identical routes are not an error: the last one declared wins, the
//! others are reported as unreachable.

use std::fmt;

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Exact(String),
    Param(String),
}

/// A parsed route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    segments: Vec<Segment>,
    wildcard: bool,
}

/// Why a route string is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError(pub String);

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RouteError {}

impl RoutePattern {
    /// Parses a route as written in the manifest.
    pub fn parse(route: &str) -> Result<Self, RouteError> {
        let mut path = route.trim().to_string();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        let (base, wildcard) = if path == "/..." || path == "/*" {
            (String::new(), true)
        } else if let Some(base) = path
            .strip_suffix("/...")
            .or_else(|| path.strip_suffix("/*"))
        {
            (base.to_string(), true)
        } else {
            (path.strip_suffix('/').unwrap_or(&path).to_string(), false)
        };
        let mut segments = Vec::new();
        for seg in base.split('/').skip(1) {
            if seg.is_empty() {
                return Err(RouteError(format!(
                    "route \"{route}\" has an empty segment (`//`)"
                )));
            }
            if seg == "..." || seg == "*" {
                return Err(RouteError(format!(
                    "route \"{route}\": a wildcard may only end a route (`/...`)"
                )));
            }
            if let Some(name) = seg.strip_prefix(':') {
                if name.is_empty() {
                    return Err(RouteError(format!(
                        "route \"{route}\": a parameter needs a name, e.g. `:id`"
                    )));
                }
                segments.push(Segment::Param(name.to_string()));
            } else {
                segments.push(Segment::Exact(seg.to_string()));
            }
        }
        Ok(RoutePattern { segments, wildcard })
    }

    /// Whether the route ends with a wildcard.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The route without its wildcard, e.g. `/users/:id` (`""` for `/...`).
    pub fn base(&self) -> String {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Exact(e) => format!("/{e}"),
                Segment::Param(p) => format!("/:{p}"),
            })
            .collect()
    }

    /// Matches a request path (without query), returning what was captured
    /// and how specific the match is.
    fn matches(&self, path: &str) -> Option<(RouteMatchParts, Vec<u8>)> {
        // Specificity, segment by segment: exact 3, parameter 2, wildcard 1;
        // a route that ends exactly where the path ends scores 4 last, so
        // `/a` beats `/a/...` for `/a`.
        let mut pos = 0;
        let mut params = Vec::new();
        let mut score = Vec::with_capacity(self.segments.len() + 1);
        for seg in &self.segments {
            if !path[pos..].starts_with('/') {
                return None;
            }
            let start = pos + 1;
            let end = path[start..].find('/').map_or(path.len(), |i| start + i);
            let head = &path[start..end];
            if head.is_empty() {
                return None;
            }
            match seg {
                Segment::Exact(e) if e == head => score.push(3),
                Segment::Exact(_) => return None,
                Segment::Param(name) => {
                    params.push((name.clone(), head.to_string()));
                    score.push(2);
                }
            }
            pos = end;
        }
        let rest = &path[pos..];
        if self.wildcard {
            score.push(1);
            Some((
                RouteMatchParts {
                    params,
                    path_info: rest.to_string(),
                },
                score,
            ))
        } else if rest.is_empty() || rest == "/" {
            score.push(4);
            Some((
                RouteMatchParts {
                    params,
                    path_info: String::new(),
                },
                score,
            ))
        } else {
            None
        }
    }
}

struct RouteMatchParts {
    params: Vec<(String, String)>,
    path_info: String,
}

/// The outcome of routing a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'a, T> {
    /// What the route leads to.
    pub target: &'a T,
    /// The route as written (normalised), e.g. `/users/:id/...`.
    pub route: &'a str,
    /// The route without its wildcard, e.g. `/users/:id`.
    pub component_route: &'a str,
    /// `:name` captures, in order.
    pub params: Vec<(String, String)>,
    /// The part of the path matched by the wildcard, e.g. `/a/b`.
    pub path_info: String,
}

struct Entry<T> {
    pattern: RoutePattern,
    display: String,
    base: String,
    target: T,
}

/// A routing table.
pub struct Router<T> {
    entries: Vec<Entry<T>>,
}

/// A route that can never be reached because a later identical one wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// The route.
    pub route: String,
    /// Index (in insertion order) of the shadowed entry.
    pub index: usize,
}

impl<T> Router<T> {
    /// Builds a router from `(route, target)` pairs in manifest order.
    pub fn build(
        routes: impl IntoIterator<Item = (String, T)>,
    ) -> Result<(Self, Vec<Unreachable>), RouteError> {
        let mut entries: Vec<Entry<T>> = Vec::new();
        for (route, target) in routes {
            let pattern = RoutePattern::parse(&route)?;
            let base = pattern.base();
            let display = if pattern.wildcard {
                format!("{base}/...")
            } else if base.is_empty() {
                "/".to_string()
            } else {
                base.clone()
            };
            entries.push(Entry {
                pattern,
                display,
                base,
                target,
            });
        }
        let mut unreachable = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            if entries[i + 1..]
                .iter()
                .any(|later| later.pattern == e.pattern)
            {
                unreachable.push(Unreachable {
                    route: e.display.clone(),
                    index: i,
                });
            }
        }
        Ok((Router { entries }, unreachable))
    }

    /// Finds the most specific route for `path` (no query string).
    pub fn route<'a>(&'a self, path: &str) -> Option<RouteMatch<'a, T>> {
        let mut best: Option<(Vec<u8>, usize, RouteMatchParts)> = None;
        for (i, entry) in self.entries.iter().enumerate() {
            if let Some((parts, score)) = entry.pattern.matches(path) {
                // `>=` so that among identical routes the last declared wins.
                if best.as_ref().is_none_or(|(b, _, _)| score >= *b) {
                    best = Some((score, i, parts));
                }
            }
        }
        let (_, i, parts) = best?;
        let entry = &self.entries[i];
        Some(RouteMatch {
            target: &entry.target,
            route: &entry.display,
            component_route: &entry.base,
            params: parts.params,
            path_info: parts.path_info,
        })
    }

    /// Every route with its target, in manifest order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, bool, &T)> {
        self.entries
            .iter()
            .map(|e| (e.display.as_str(), e.pattern.wildcard, &e.target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (routes in manifest order, request path, expected (route, params, path-info)).
    #[allow(clippy::type_complexity)]
    const CASES: &[(&[&str], &str, Option<(&str, &[(&str, &str)], &str)>)] = &[
        (&["/..."], "/", Some(("/...", &[], "/"))),
        (
            &["/..."],
            "/anything/at/all",
            Some(("/...", &[], "/anything/at/all")),
        ),
        (&["/hello"], "/hello", Some(("/hello", &[], ""))),
        (&["/hello"], "/hello/", Some(("/hello", &[], ""))),
        (&["/hello"], "/hello/x", None),
        (&["/hello"], "/hell", None),
        (&["/hello"], "/", None),
        (&["/"], "/", Some(("/", &[], ""))),
        (&["/"], "/x", None),
        (&["/test/..."], "/test", Some(("/test/...", &[], ""))),
        (&["/test/..."], "/test/", Some(("/test/...", &[], "/"))),
        (&["/test/..."], "/test/x/", Some(("/test/...", &[], "/x/"))),
        (&["/test/..."], "/testing", None),
        (&["/test/*"], "/test/a", Some(("/test/...", &[], "/a"))),
        (&["test/..."], "/test/a", Some(("/test/...", &[], "/a"))),
        (&["/a/"], "/a", Some(("/a", &[], ""))),
        // Exact beats wildcard, whatever the order.
        (&["/a/...", "/a/b"], "/a/b", Some(("/a/b", &[], ""))),
        (&["/a/b", "/a/..."], "/a/b", Some(("/a/b", &[], ""))),
        (&["/a/b", "/a/..."], "/a/c", Some(("/a/...", &[], "/c"))),
        // Longest prefix wins.
        (
            &["/...", "/a/...", "/a/b/..."],
            "/a/b/c",
            Some(("/a/b/...", &[], "/c")),
        ),
        (
            &["/a/b/...", "/a/...", "/..."],
            "/a/x",
            Some(("/a/...", &[], "/x")),
        ),
        (
            &["/a/b/...", "/a/...", "/..."],
            "/z",
            Some(("/...", &[], "/z")),
        ),
        // Parameters.
        (
            &["/users/:id"],
            "/users/42",
            Some(("/users/:id", &[("id", "42")], "")),
        ),
        (&["/users/:id"], "/users", None),
        (
            &["/users/:userid/..."],
            "/users/42/hello/",
            Some(("/users/:userid/...", &[("userid", "42")], "/hello/")),
        ),
        (
            &["/users/:userid/cart/..."],
            "/users/1/cart/items/3/edit",
            Some((
                "/users/:userid/cart/...",
                &[("userid", "1")],
                "/items/3/edit",
            )),
        ),
        (
            &["/base/:path_segment/:path_end/..."],
            "/base/path/end/rest",
            Some((
                "/base/:path_segment/:path_end/...",
                &[("path_segment", "path"), ("path_end", "end")],
                "/rest",
            )),
        ),
        // Exact beats parameter, parameter beats wildcard.
        (
            &["/users/:id", "/users/me"],
            "/users/me",
            Some(("/users/me", &[], "")),
        ),
        (
            &["/users/me", "/users/:id"],
            "/users/you",
            Some(("/users/:id", &[("id", "you")], "")),
        ),
        (
            &["/users/...", "/users/:id"],
            "/users/7",
            Some(("/users/:id", &[("id", "7")], "")),
        ),
    ];

    #[test]
    fn routing_table() {
        for (routes, path, expected) in CASES {
            let (router, _) =
                Router::build(routes.iter().enumerate().map(|(i, r)| (r.to_string(), i)))
                    .expect("valid routes");
            let got = router
                .route(path)
                .map(|m| (m.route.to_string(), m.params.clone(), m.path_info.clone()));
            let expected = expected.map(|(r, p, i)| {
                (
                    r.to_string(),
                    p.iter()
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .collect::<Vec<_>>(),
                    i.to_string(),
                )
            });
            assert_eq!(got, expected, "routes {routes:?}, path {path}");
        }
    }

    #[test]
    fn identical_routes_last_wins_and_others_are_unreachable() {
        let (router, unreachable) = Router::build([
            ("/a".to_string(), 1),
            ("/b".to_string(), 2),
            ("/a/".to_string(), 3),
        ])
        .expect("valid");
        assert_eq!(router.route("/a").map(|m| *m.target), Some(3));
        assert_eq!(
            unreachable,
            vec![Unreachable {
                route: "/a".into(),
                index: 0
            }]
        );
    }

    #[test]
    fn invalid_routes() {
        for bad in ["/a//b", "/a/.../b", "/:"] {
            assert!(RoutePattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn component_route_drops_the_wildcard() {
        let (router, _) = Router::build([("/users/:id/...".to_string(), ())]).expect("valid");
        let m = router.route("/users/1/x").expect("match");
        assert_eq!(m.component_route, "/users/:id");
        let (router, _) = Router::build([("/...".to_string(), ())]).expect("valid");
        assert_eq!(router.route("/x").expect("match").component_route, "");
    }
}
