//! `lab up` and `lab down`: a scenario's network and IPVS kept running
//! after the command (host kernel with IPVS only), and removed again.

use std::process::ExitCode;

use lab::exit;
use lab::netns::RunId;
use lab::runner::{self, RunnerChoice, RunnerKind};
use lab::scenario::Scenario;

use super::error::{CliError, ExitOnError, chain};
use super::prepare::{bring_up, require_privileges};

/// `lab up`: builds the network, marks it kept, prints its namespaces.
pub(crate) fn up(choice: RunnerChoice, name: &str) -> Result<ExitCode, CliError> {
    let scenario = Scenario::load(name)?;
    require_privileges()?;
    if runner::resolve(choice)? == RunnerKind::Uml {
        return Err(CliError::new(
            exit::UNAVAILABLE,
            "this host has no IPVS, so the lab runs inside User-Mode Linux, which cannot outlive \
             the command; use `lab shell <scenario>` for an interactive session instead",
        ));
    }
    let run = RunId::new();
    let lab = bring_up(&scenario, run)?;
    lab::netns::mark_kept(&run).or_exit(exit::OS_ERROR)?;
    let plan = lab.keep();
    println!("lab {run} is up ({}); namespaces:", scenario.name);
    for h in &plan.topology.hosts {
        println!("  {:<10} {}", h.name, lab::netns::ns_name(&run, &h.name));
    }
    println!(
        "inspect: ip netns exec {} ipvsadm -Ln",
        lab::netns::ns_name(&run, "director")
    );
    println!("remove:  lab down {run}");
    Ok(ExitCode::SUCCESS)
}

/// `lab down`: removes the networks kept by `lab up`, or the one named.
pub(crate) fn down(run: Option<String>) -> Result<ExitCode, CliError> {
    require_privileges()?;
    let found = lab::netns::list_lab_namespaces().or_exit(exit::OS_ERROR)?;
    let mut runs: Vec<RunId> = found
        .into_iter()
        .map(|n| n.run)
        .filter(lab::netns::is_kept)
        .collect();
    runs.sort();
    runs.dedup();
    if let Some(want) = run {
        runs.retain(|r| r.to_string() == want);
        if runs.is_empty() {
            return Err(CliError::usage(format!("no lab {want} kept by `lab up`")));
        }
    }
    if runs.is_empty() {
        println!("no lab kept by `lab up`");
        return Ok(ExitCode::SUCCESS);
    }
    for r in runs {
        let removed = lab::netns::remove_run(&r)
            .or_exit_while(exit::OS_ERROR, || format!("removing lab {r}"))?;
        if let Err(e) = lab::netns::unmark_kept(&r) {
            // The namespaces are gone; a marker left behind only names a
            // run that no longer exists.
            tracing::warn!("lab {r}: {}", chain(&e));
        }
        println!("removed lab {r} ({} namespaces)", removed.removed.len());
    }
    Ok(ExitCode::SUCCESS)
}
