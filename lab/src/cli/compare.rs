//! `lab compare`: what moved between a baseline report and a new one.

use std::process::ExitCode;

use lab::exit;

use super::args::CompareArgs;
use super::error::{CliError, ExitOnError};

/// Prints the comparison; fails (1) when fairness or errors regress beyond
/// the tolerance. A report that is not one is bad input (65), as a bad
/// scenario is.
pub(crate) fn compare(args: &CompareArgs) -> Result<ExitCode, CliError> {
    let baseline = lab::report::read_report_json(&args.baseline).or_exit(exit::BAD_SCENARIO)?;
    let current = lab::report::read_report_json(&args.report).or_exit(exit::BAD_SCENARIO)?;
    let cmp = lab::report::compare::compare(&baseline, &current, args.tolerance);
    print!("{}", cmp.render_text());
    Ok(ExitCode::from(if cmp.regressed() {
        exit::FAILED
    } else {
        exit::OK
    }))
}
