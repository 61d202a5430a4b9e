//! `lab guest-run` (hidden): a command inside the lab's User-Mode Linux
//! guest without a network, for debugging the runner.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use lab::exit;
use lab::runner::{self, RunnerError};

use super::error::{CliError, ExitOnError};

/// Boots the guest, runs `cmd`, says how long it took; exits with the
/// command's code.
pub(crate) fn guest_run(time_travel: bool, cmd: Vec<OsString>) -> Result<ExitCode, CliError> {
    if runner::in_guest() {
        return Err(RunnerError::NestedUml.into());
    }
    let kernel = runner::uml::UmlKernel::locate().or_exit(exit::UNAVAILABLE)?;
    let job = runner::job::GuestJob::here(cmd).or_exit(exit::OS_ERROR)?;
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    if time_travel && !kernel.supports_time_travel() {
        return Err(RunnerError::NoTimeTravel {
            kernel: kernel.binary,
        }
        .into());
    }
    let mut opts = runner::uml::UmlOptions::new(exe);
    opts.time_travel = time_travel;
    let o = runner::uml::run(&kernel, &job, &opts)?;
    // This line is what the verb is for, so it is printed, not logged.
    eprintln!(
        "lab: UML guest ready after {:.2} s, total {:.2} s",
        o.boot_to_ready.map_or(f64::NAN, |d| d.as_secs_f64()),
        o.total.as_secs_f64()
    );
    Ok(ExitCode::from(o.exit_code.clamp(0, 255) as u8))
}
