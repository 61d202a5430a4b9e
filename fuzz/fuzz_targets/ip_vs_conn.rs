//! Any text as `/proc/net/ip_vs_conn` must give `Ok` or `Err`, never a
//! panic: the table is read from a kernel the lab does not control.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = lab::ipvs::conntable::parse_conn_table(text);
        for line in text.lines() {
            let _ = lab::ipvs::conntable::parse_line(line);
        }
    }
});
