//! The configuration file (`config::Config::parse`): errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::config::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(c) = Config::parse(s, "fuzz.toml") {
            let _ = c.activate_lvs();
        }
    }
});
