//! `lab list`: the scenarios in scenarios/, one line each.

use std::process::ExitCode;

use lab::exit;

use super::error::CliError;

/// One line per scenario with its description; a file that does not load
/// is listed as BROKEN with its reason and makes the exit code 65.
pub(crate) fn list() -> Result<ExitCode, CliError> {
    let scenarios = lab::scenario::list();
    if scenarios.is_empty() {
        return Err(CliError::new(
            exit::BAD_SCENARIO,
            "no scenarios found: run from the checkout (scenarios/*.toml)",
        ));
    }
    let mut broken = false;
    for (path, loaded) in scenarios {
        match loaded {
            Ok(s) => println!("{:<30} {}", s.name, s.file.description),
            Err(e) => {
                broken = true;
                let name = path.file_stem().unwrap_or_default().to_string_lossy();
                println!("{name:<30} BROKEN: {e}");
            }
        }
    }
    Ok(ExitCode::from(if broken {
        exit::BAD_SCENARIO
    } else {
        exit::OK
    }))
}
