//! `lab ipvs`: a lab director's IPVS table in `ipvsadm -Ln` layout, or JSON.

use std::process::ExitCode;

use lab::exit;
use lab::ipvs::format::{Listing, render};
use lab::ipvs::{IpvsError, IpvsHandle, IpvsTable};
use lab::netns::RunId;
use lab::scenario::plan;

use super::RUN_ENV;
use super::args::IpvsArgs;
use super::error::{CliError, ExitOnError};

/// Which director: `--run`, else `$IPVSLAB_RUN` (inside `lab exec`/`lab
/// shell`), else the namespace this process is in.
pub(crate) fn ipvs(args: &IpvsArgs) -> Result<ExitCode, CliError> {
    let run = args.run.clone().or_else(|| std::env::var(RUN_ENV).ok());
    let table = match run {
        Some(run) => {
            let id: RunId = run
                .parse()
                .map_err(|_| CliError::usage(format!("'{run}' is not a run id (like 1234-5)")))?;
            let name = lab::netns::ns_name(&id, plan::DIRECTOR_HOST);
            let ns = lab::netns::NetNs::open(&name)
                .or_exit_while(exit::USAGE, || format!("no running lab {run}"))?;
            ns.run(read).or_exit(exit::OS_ERROR)?
        }
        None => read(),
    }
    .or_exit(exit::UNAVAILABLE)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&table).expect("serializable")
        );
    } else {
        let listing = if args.stats {
            Listing::Stats
        } else {
            Listing::Plain
        };
        print!("{}", render(&table, listing));
    }
    Ok(ExitCode::SUCCESS)
}

/// The IPVS table of the namespace this thread is in.
fn read() -> Result<IpvsTable, IpvsError> {
    IpvsHandle::open()?.table()
}
