//! The common start of every verb that builds a network: privileges, the
//! runner, and, on a host without IPVS, the whole invocation re-run inside
//! User-Mode Linux, where the same code then runs on the guest kernel.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use lab::exit;
use lab::netns::RunId;
use lab::network::LabNetwork;
use lab::runner::{self, RunnerChoice, RunnerKind};
use lab::scenario::spec::TimeMode;
use lab::scenario::{Scenario, plan};

use super::error::{CliError, ExitOnError};
use super::preflight;

/// Where the verb goes on after [`prepare`].
pub(crate) enum Prepared {
    /// This kernel has IPVS: run here.
    Here,
    /// The invocation ran inside UML and exited with this code (the guest
    /// printed its own output and errors).
    Done(ExitCode),
}

/// Fails with 77 unless this process may create namespaces.
pub(crate) fn require_privileges() -> Result<(), CliError> {
    if preflight::has_privileges() {
        Ok(())
    } else {
        Err(CliError::new(exit::NO_PERMISSION, preflight::NO_PRIVILEGE))
    }
}

/// Privileges, then the runner; on UML, runs the whole invocation there,
/// once per clock in `clocks` (a real-time guest and a time-travel guest
/// cannot be one boot), stopping at the first guest that fails. `shared`
/// names host paths the job writes (reports): the guest sees them even
/// where its own `/tmp` would hide them.
pub(crate) fn prepare(
    choice: RunnerChoice,
    interactive: bool,
    shared: &[PathBuf],
    clocks: &[TimeMode],
) -> Result<Prepared, CliError> {
    require_privileges()?;
    let kind = runner::resolve(choice)?;
    tracing::debug!("runner {kind:?} (asked for {choice:?}), clocks {clocks:?}");
    match kind {
        RunnerKind::Host => {
            if clocks.contains(&TimeMode::Travel) && !runner::in_guest() {
                return Err(runner::RunnerError::TimeTravelOnHost {
                    kernel: runner::kernel_release(),
                }
                .into());
            }
            Ok(Prepared::Here)
        }
        RunnerKind::Uml => {
            let mut code = exit::OK;
            for &clock in clocks {
                let travel = clock == TimeMode::Travel;
                let outcome = runner::rerun_self_in_uml(interactive, shared, travel)?;
                tracing::debug!(
                    "UML guest ({}) exited {} after {:.2} s",
                    clock.as_str(),
                    outcome.exit_code,
                    outcome.total.as_secs_f64()
                );
                code = outcome.exit_code.clamp(0, 255) as u8;
                if code != exit::OK {
                    break;
                }
            }
            Ok(Prepared::Done(ExitCode::from(code)))
        }
    }
}

/// The clock the current process runs under: inside the lab's guest, the
/// mode it was booted with; elsewhere real time.
pub(crate) fn current_clock() -> TimeMode {
    if runner::guest_time_travel() {
        TimeMode::Travel
    } else {
        TimeMode::Real
    }
}

/// Registers SIGINT/SIGTERM/SIGHUP to set a flag instead of killing the
/// process, so that guards run and nothing is left behind.
pub(crate) fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let _ = signal_hook::flag::register(s, Arc::clone(&flag));
    }
    flag
}

/// Plans `scenario` as run `run` and brings its network and IPVS up.
pub(crate) fn bring_up(scenario: &Scenario, run: RunId) -> Result<LabNetwork, CliError> {
    let plan = plan::plan(scenario, run).or_exit(exit::BAD_SCENARIO)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .or_exit(exit::OS_ERROR)?;
    let lab = rt.block_on(LabNetwork::up(plan)).or_exit(exit::OS_ERROR)?;
    tracing::debug!("lab {run} is up ({})", scenario.name);
    Ok(lab)
}
