//! Any text given to the scenario parser must give `Ok` or `Err`, never a
//! panic: scenario files are user input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = lab::scenario::Scenario::from_str(std::path::Path::new("fuzz.toml"), text);
    }
});
