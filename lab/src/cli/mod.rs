//! The `lab` command line, one module per verb. Each verb returns
//! `Result<ExitCode, CliError>`; `main.rs` prints a failure once, through
//! [`error::print()`], with its whole cause chain.
//!
//! - [`args`]: the clap types (`--help` is their doc comments).
//! - [`error`]: `CliError`, exit codes for library errors, the one printer.
//! - [`logging`]: `tracing` with `-v` and `RUST_LOG`.
//! - [`prepare`]: privileges, the runner, the re-run inside UML, bring-up.
//! - [`preflight`] and [`check`]: `lab check`.
//! - [`scenario`], [`exec`] (`exec`, `shell`), [`kept`] (`up`, `down`),
//!   [`ipvs`], [`compare`], [`list`], [`gc`], [`guest_run`]: the verbs.

pub(crate) mod args;
mod check;
mod compare;
pub(crate) mod error;
mod exec;
mod gc;
mod guest_run;
mod ipvs;
mod kept;
mod list;
pub(crate) mod logging;
mod preflight;
mod prepare;
mod scenario;

use std::process::ExitCode;

use args::{Cli, Verb};
use error::CliError;

/// Environment variable naming the lab run a command runs in (set by
/// `lab exec` and `lab shell`; read by `lab ipvs`).
pub(crate) const RUN_ENV: &str = "IPVSLAB_RUN";

/// Runs the verb the command line names.
pub(crate) fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    let runner = cli.runner;
    match cli.command {
        Verb::Check { json } => check::check(runner, json),
        Verb::Scenario(args) => scenario::scenario(runner, &args),
        Verb::List => list::list(),
        Verb::Exec(args) => exec::exec(runner, &args.scenario, &args.host, args.cmd, false),
        Verb::Shell { scenario, host } => exec::shell(runner, &scenario, &host),
        Verb::Up { scenario } => kept::up(runner, &scenario),
        Verb::Down { run } => kept::down(run),
        Verb::Ipvs(args) => ipvs::ipvs(&args),
        Verb::Compare(args) => compare::compare(&args),
        Verb::Server(args) => Ok(grpc_demo::server::main_with_args(args)),
        Verb::Loadgen(args) => Ok(bench::loadgen::main_with_args(args)),
        Verb::Gc { all } => gc::gc(all),
        Verb::GuestRun { time_travel, cmd } => guest_run::guest_run(time_travel, cmd),
    }
}
