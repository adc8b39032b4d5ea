//! Any bytes as a WAGI script's stdout, and any strings as the request
//! path and query of its command line.
#![no_main]

use gyre_cgi::{argv, parse_cgi_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = parse_cgi_response(data) {
        assert!(parsed.body_start <= data.len());
        assert!((100..=999).contains(&parsed.status));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let (path, query) = text.split_once('?').unwrap_or((text, ""));
        let _ = argv("${SCRIPT_NAME} ${ARGS}", path, query);
    }
});
