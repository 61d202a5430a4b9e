//! `lab check`: runs the preflight checks and prints them, as a table or JSON.

use std::process::ExitCode;

use lab::exit;
use lab::runner::RunnerChoice;

use super::error::CliError;
use super::preflight;

/// Prints every check; fails (69) only when no runner can work here.
pub(crate) fn check(choice: RunnerChoice, json: bool) -> Result<ExitCode, CliError> {
    let report = preflight::run(choice);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serializable")
        );
    } else {
        print!("{}", report.render());
    }
    // The checks themselves say what failed, so there is no error to print.
    Ok(if report.failed() {
        ExitCode::from(exit::UNAVAILABLE)
    } else {
        ExitCode::SUCCESS
    })
}
