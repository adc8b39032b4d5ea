//! Lines of `allowed_outbound_hosts` entries, the last line a URL to check.
//! Parsing and matching never panic, and an entry that allows everything
//! allows the URL whenever it parses.
#![no_main]

use gyre_outbound_networking::AllowedHosts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines: Vec<&str> = text.split('\n').collect();
    let url = lines.pop().unwrap_or_default();
    for entry in &lines {
        if let Err(e) = AllowedHosts::parse(&[entry]) {
            let _ = e.to_string();
        }
    }
    if let Ok(allowed) = AllowedHosts::parse(&lines) {
        let _ = allowed.allows_url(url);
    }
});
