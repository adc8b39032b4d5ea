//! Any text as `spin.toml`: parsing either succeeds or gives an error that
//! renders (file, line, column) — it never panics.
#![no_main]

use gyre_manifest::{SourceFile, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = parse(SourceFile::new("spin.toml", text)) {
        let _ = e.to_string();
    }
});
