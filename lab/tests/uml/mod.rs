//! Runs an integration test on a kernel with real IPVS: the host's when it
//! has IPVS, else inside the lab's User-Mode Linux guest through the lab's
//! own runner. The test binary re-executes itself in the guest with only
//! that test selected; the guest's exit status becomes the test's verdict.
#![allow(dead_code)]

use std::ffi::OsString;

use lab::runner::{self, RunnerKind};

// Every test binary that has this module also has `common`.
use super::common::skipped;

/// Returns `true` when the caller should run the test body here (this
/// kernel has IPVS, possibly because we are the guest); `false` when the
/// body already ran — and passed — inside UML, or cannot run at all (no
/// root, or neither host IPVS nor a UML kernel), which prints
/// `SKIPPED: <why>`: the lab's rule for privileged tests.
pub fn on_ipvs_kernel(test_name: &str) -> bool {
    // The guest re-runs `test_name --exact`; a name that is not this test's
    // would select nothing there and pass with 0 tests run. libtest names
    // each test's thread after the test.
    if let Some(thread) = std::thread::current().name().filter(|n| *n != "main") {
        assert_eq!(
            thread, test_name,
            "on_ipvs_kernel needs the calling test's own name"
        );
    }
    if !nix::unistd::Uid::effective().is_root() {
        skipped(&format!("{test_name}: needs root (CAP_NET_ADMIN)"));
        return false;
    }
    if runner::in_guest() {
        let current = runner::describe_current();
        eprintln!(
            "[{test_name}] running inside the lab's User-Mode Linux guest, kernel {} ({})",
            current.release,
            current.origin.map_or("origin unknown", |o| o.describe())
        );
        return true;
    }
    let kind = match runner::resolve(runner::RunnerChoice::Auto) {
        Ok(kind) => kind,
        Err(e) => {
            skipped(&format!("{test_name}: needs a kernel with IPVS: {e}"));
            return false;
        }
    };
    match kind {
        RunnerKind::Host => {
            eprintln!("[{test_name}] running on the host kernel (it has IPVS)");
            true
        }
        RunnerKind::Uml => {
            let kernel = runner::uml::UmlKernel::locate().expect("UML kernel");
            let exe = std::env::current_exe().expect("test binary");
            let argv: Vec<OsString> = vec![
                exe.into(),
                test_name.into(),
                "--exact".into(),
                "--nocapture".into(),
                "--test-threads=1".into(),
            ];
            let job = runner::job::GuestJob::here(argv).expect("job");
            let opts = runner::uml::UmlOptions::new(env!("CARGO_BIN_EXE_lab"));
            let outcome = runner::uml::run(&kernel, &job, &opts).expect("booting UML");
            eprintln!(
                "[{test_name}] ran inside User-Mode Linux {} [{}] (guest ready after {:.2} s, total {:.2} s): exit {}",
                kernel.release,
                kernel.describe(),
                outcome.boot_to_ready.map_or(f64::NAN, |d| d.as_secs_f64()),
                outcome.total.as_secs_f64(),
                outcome.exit_code
            );
            assert_eq!(
                outcome.exit_code, 0,
                "{test_name} failed inside UML (its output is above)"
            );
            false
        }
    }
}
