//! Any bytes given to the keepalived.conf parser must give `Ok` or `Err`,
//! never a panic, a hang or a stack overflow (lexing, parsing and importing):
//! users hand the lab their files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(conf) = lab::keepalived::parse_str(text) {
            // Importing it as a scenario must not panic either.
            let _ = lab::scenario::keepalived::to_scenario(&conf, std::path::Path::new("fuzz.conf"));
            // What we render from a parsed file must parse again.
            for vs in &conf.virtual_servers {
                let rendered =
                    lab::keepalived::render_conf(vs, &lab::keepalived::RenderOptions::default());
                assert!(
                    lab::keepalived::parse_str(&rendered).is_ok(),
                    "rendered config does not parse:\n{rendered}"
                );
            }
        }
    }
});
