//! Any text as `runtime-config.toml`, and any string as a size or duration.
#![no_main]

use std::path::Path;

use gyre_manifest::{SourceFile, parse_duration, parse_runtime_config, parse_size};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = parse_runtime_config(SourceFile::new("runtime-config.toml", text), Path::new("/app")) {
        let _ = e.to_string();
    }
    let _ = parse_size(text);
    let _ = parse_duration(text);
});
