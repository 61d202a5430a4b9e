//! Any bytes as an IPVS generic-netlink reply must decode to `Ok` or `Err`,
//! never a panic: every decoder the handle uses on kernel replies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lab::ipvs::message;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = message::from_bytes(data) else {
        return;
    };
    let _ = message::parse_service(&msg);
    let _ = message::parse_dest(&msg, libc_af_inet());
    let _ = message::parse_timeouts(&msg);
    let _ = message::parse_info(&msg);
});

/// AF_INET, without a libc dependency for one constant.
fn libc_af_inet() -> u16 {
    2
}
