//! `lab compare`: what moved between a baseline report and a new one.

use std::process::ExitCode;

use lab::exit;

use super::args::CompareArgs;
use super::error::{CliError, ExitOnError};

/// Prints the comparison; fails (1) when the distribution or the errors
/// regress. The settings are the current report's own (its scenario's
/// `[expect]`, else the library defaults), each overridable by a flag. A report that is not one is bad input (65), as a bad
/// scenario is.
pub(crate) fn compare(args: &CompareArgs) -> Result<ExitCode, CliError> {
    let baseline = lab::report::read_report_json(&args.baseline).or_exit(exit::BAD_SCENARIO)?;
    let current = lab::report::read_report_json(&args.report).or_exit(exit::BAD_SCENARIO)?;
    let mut tolerance = lab::report::Tolerance::of(&current);
    if let Some(a) = args.alpha {
        tolerance.alpha = a;
    }
    if let Some(m) = args.baseline_margin {
        tolerance.baseline_margin = Some(m);
    }
    if let Some(b) = args.error_budget {
        tolerance.error_budget = b;
    }
    let cmp = lab::report::compare::compare(&baseline, &current, tolerance);
    if args.json {
        let out = serde_json::json!({ "regressed": cmp.regressed(), "comparison": cmp });
        println!("{out}");
    } else {
        print!("{}", cmp.render_text());
    }
    Ok(ExitCode::from(if cmp.regressed() {
        exit::FAILED
    } else {
        exit::OK
    }))
}
