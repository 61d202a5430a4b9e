//! `lab scenario`: load every scenario asked for (a malformed file fails
//! before any network), claim the outputs, run each on a kernel with IPVS,
//! print its summary and write its report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lab::exit;
use lab::runner::RunnerChoice;
use lab::scenario::run::{Progress, RunOptions};
use lab::scenario::spec::TimeMode;
use lab::scenario::{Scenario, ScenarioError};

use super::args::ScenarioArgs;
use super::error::{self, CliError, ExitOnError};
use super::prepare::{Prepared, current_clock, interrupt_flag, prepare};

/// Runs one or more scenarios, writes their reports, prints the summaries;
/// 0 when every expectation held, 1 otherwise.
pub(crate) fn scenario(choice: RunnerChoice, args: &ScenarioArgs) -> Result<ExitCode, CliError> {
    let (scenarios, ignored) = load(args)?;
    if let Some(d) = args.duration {
        check_duration(d, &scenarios)?;
    }
    if args.time_travel {
        check_time_travel(&scenarios)?;
    }
    let several = scenarios.len() > 1;
    let json_files: Vec<PathBuf> = args
        .json
        .iter()
        .flat_map(|p| {
            scenarios
                .iter()
                .map(move |s| lab::outputs::json_path_for(p, &s.name, several))
        })
        .collect();
    let claimed = lab::outputs::claim(&args.reports, &json_files).or_exit(exit::CANT_CREATE)?;
    tracing::debug!("claimed outputs {:?}", claimed.paths);
    let mut shared = claimed.paths.clone();
    shared.extend(scenarios.iter().flat_map(command_tmp_paths));
    let clocks = clocks(&scenarios, args);
    let result = match prepare(choice, false, &shared, &clocks) {
        Err(e) => Err(e),
        Ok(Prepared::Done(code)) => {
            if clocks.len() > 1 && code == ExitCode::SUCCESS {
                let travel = scenarios
                    .iter()
                    .filter(|s| clock_of(s, args) == TimeMode::Travel)
                    .count();
                println!(
                    "all {} scenarios passed ({} in real time, {travel} under time travel)",
                    scenarios.len(),
                    scenarios.len() - travel
                );
            }
            Ok(code)
        }
        Ok(Prepared::Here) => {
            // A guest runs the scenarios of its own clock; the host runner
            // (which refuses time travel) runs them all.
            let here = current_clock();
            let mine: Vec<Scenario> = scenarios
                .into_iter()
                .filter(|s| !lab::runner::in_guest() || clock_of(s, args) == here)
                .collect();
            host_neighbour_table(&mine).and_then(|()| run_scenarios(&mine, &ignored, args))
        }
    };
    if !matches!(result, Ok(code) if code == ExitCode::SUCCESS) {
        claimed.release_unused();
    }
    result
}

/// Where the host's `gc_thresh3` is read (the host runner only).
const HOST_GC_THRESH3: &str = "/proc/sys/net/ipv4/neigh/default/gc_thresh3";

/// On the host runner, refuses a scenario whose client IPs would overflow
/// the host kernel's neighbour table before anything is built. The lab's
/// own UML guest sizes its table itself (`runner::guest`); the host's is
/// the operator's, and the lab never changes a host sysctl.
fn host_neighbour_table(scenarios: &[Scenario]) -> Result<(), CliError> {
    if lab::runner::in_guest() {
        return Ok(());
    }
    let Some(cap) = std::fs::read_to_string(HOST_GC_THRESH3)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
    else {
        return Ok(());
    };
    match scenarios.iter().find_map(|s| neighbour_overflow(s, cap)) {
        Some(message) => Err(CliError::new(exit::UNAVAILABLE, message)),
        None => Ok(()),
    }
}

/// Neighbour entries a run needs at least: the director learns every
/// client from its ARP requests for the VIP, and some real server resolves
/// each client it answers; one kernel holds one table for every namespace.
fn neighbour_entries_needed(client_ips: u32, servers: usize) -> u64 {
    2 * u64::from(client_ips) + servers as u64 + 1
}

/// The one-paragraph error when `s` needs more entries than `cap`.
fn neighbour_overflow(s: &Scenario, cap: u64) -> Option<String> {
    let clients = s.file.network.client_ips;
    let need = neighbour_entries_needed(clients, s.file.virtual_server.real_servers.len());
    (need > cap).then(|| {
        format!(
            "{}: {clients} client IPs need about {need} neighbour (ARP) entries, more than this host's \
             net.ipv4.neigh.default.gc_thresh3 = {cap}. One kernel keeps one neighbour table for all its \
             network namespaces, so the run would hit \"neighbor table overflow\" and connects would time \
             out. The lab never changes the host's sysctls: raise the limits yourself (sysctl -w \
             net.ipv4.neigh.default.gc_thresh1=8192 net.ipv4.neigh.default.gc_thresh2=32768 \
             net.ipv4.neigh.default.gc_thresh3=65536), or run in the lab's own kernel, which sizes its \
             table itself: --runner uml",
            s.name
        )
    })
}

/// The clock `s` runs under: its `[time] mode`, or travel for all with
/// `--time-travel`.
fn clock_of(s: &Scenario, args: &ScenarioArgs) -> TimeMode {
    if args.time_travel {
        TimeMode::Travel
    } else {
        s.file.time.mode
    }
}

/// The distinct clocks the scenarios need, real time first: one UML boot
/// each.
fn clocks(scenarios: &[Scenario], args: &ScenarioArgs) -> Vec<TimeMode> {
    [TimeMode::Real, TimeMode::Travel]
        .into_iter()
        .filter(|c| scenarios.iter().any(|s| clock_of(s, args) == *c))
        .collect()
}

/// Every scenario named, listed by `--all` or imported from
/// `--keepalived-conf`, with one line per part of the keepalived.conf the
/// lab ignores.
fn load(args: &ScenarioArgs) -> Result<(Vec<Scenario>, Vec<String>), CliError> {
    let mut scenarios = Vec::new();
    if args.all {
        for (path, loaded) in lab::scenario::list() {
            let s = loaded.or_exit_while(exit::BAD_SCENARIO, || path.display().to_string())?;
            scenarios.push(s);
        }
        if scenarios.is_empty() {
            return Err(CliError::new(
                exit::BAD_SCENARIO,
                "no scenarios found in scenarios/",
            ));
        }
    }
    for name in &args.names {
        scenarios.push(Scenario::load(name)?);
    }
    let mut ignored = Vec::new();
    if let Some(path) = &args.keepalived_conf {
        let (s, skipped) = import_keepalived_conf(path)?;
        scenarios.push(s);
        ignored = skipped;
    }
    if scenarios.is_empty() {
        return Err(CliError::usage(
            "name a scenario (see `lab list`) or pass --all",
        ));
    }
    for s in &scenarios {
        s.check_commands()?;
    }
    Ok((scenarios, ignored))
}

/// `--duration` keeps to the file's own bounds, and may not end the load
/// before a timed phase (which would silently drop it).
fn check_duration(d: Duration, scenarios: &[Scenario]) -> Result<(), CliError> {
    if d.is_zero() || d.as_secs() > 3600 {
        return Err(CliError::usage(format!(
            "--duration {} must be more than 0 and at most one hour (as load.duration in a scenario)",
            humantime::format_duration(d)
        )));
    }
    for sc in scenarios {
        let mut load = sc.file.load.clone();
        load.duration = d;
        let end = lab::scenario::validate::load_end(&load).unwrap_or(Duration::MAX);
        if let Some(p) = sc.file.phases.iter().find(|p| p.at >= end) {
            return Err(CliError::usage(format!(
                "--duration {} ends the load of {} before its phase at {} ({:?}); drop --duration or make it longer",
                humantime::format_duration(d),
                sc.name,
                humantime::format_duration(p.at),
                p.action
            )));
        }
    }
    Ok(())
}

/// `--time-travel` puts every scenario under time travel, which only a
/// paced (open-loop) load survives.
fn check_time_travel(scenarios: &[Scenario]) -> Result<(), CliError> {
    match scenarios
        .iter()
        .find(|s| s.file.load.mode != lab::scenario::spec::LoadMode::Open)
    {
        Some(s) => Err(CliError::usage(format!(
            "--time-travel cannot run {}: its load is a closed loop. {}",
            s.name,
            lab::scenario::validate::TRAVEL_NEEDS_OPEN_LOOP
        ))),
        None => Ok(()),
    }
}

/// Runs the loaded scenarios here (on a kernel with IPVS) and prints the
/// verdict. With several scenarios a failed run is printed when it happens
/// and the others still run; the exit code is then the first failure's.
fn run_scenarios(
    scenarios: &[Scenario],
    ignored: &[String],
    args: &ScenarioArgs,
) -> Result<ExitCode, CliError> {
    for line in ignored {
        eprintln!("lab: {line}");
    }
    let interrupted = interrupt_flag();
    let opts = RunOptions {
        duration: args.duration,
        progress: if args.quiet {
            Progress::Quiet
        } else {
            Progress::detect()
        },
        interrupted: Arc::clone(&interrupted),
        director: args
            .keepalived
            .then_some(lab::scenario::spec::DirectorKind::Keepalived),
    };
    let mut failed = Vec::new();
    let mut first_error = None;
    let total = scenarios.len();
    for (i, s) in scenarios.iter().enumerate() {
        if total > 1 {
            eprintln!(
                "=== [{}/{}] {}: {}",
                i + 1,
                total,
                s.name,
                s.file.description
            );
        }
        match run_one(s, &opts, args, total > 1) {
            Ok(true) => {}
            Ok(false) => failed.push(s.name.clone()),
            Err(e) if interrupted.load(Ordering::SeqCst) => {
                return Err(e.with_code(exit::INTERRUPTED));
            }
            Err(e) if total == 1 => return Err(e),
            Err(e) => {
                error::print(&e);
                first_error.get_or_insert(e.code);
                failed.push(s.name.clone());
            }
        }
    }
    if total > 1 {
        if failed.is_empty() {
            println!("all {total} scenarios passed");
        } else {
            println!(
                "{} of {total} scenarios failed: {}",
                failed.len(),
                failed.join(", ")
            );
        }
    }
    Ok(ExitCode::from(match (failed.is_empty(), first_error) {
        (true, _) => exit::OK,
        (false, Some(code)) => code,
        (false, None) => exit::FAILED,
    }))
}

/// Runs one scenario and writes its report; `Ok` says whether every
/// expectation held. With `several` scenarios in the invocation, `--json
/// PATH` becomes `<scenario>-PATH` for each. A report that cannot be
/// written is an error (73), never a silent loss.
fn run_one(
    s: &Scenario,
    opts: &RunOptions,
    args: &ScenarioArgs,
    several: bool,
) -> Result<bool, CliError> {
    let measured =
        lab::scenario::run::execute(s, opts).map_err(|e| error::run_failed(&s.name, e))?;
    let (report, histogram) = lab::scenario::assemble::assemble(s, &measured);
    let stamp = report
        .started_at
        .replace([':', '-'], "")
        .trim_end_matches('Z')
        .to_string();
    print!("{}", lab::report::summary::render_summary(&report));
    let parent = args.reports.join(&s.name);
    let dir = lab::outputs::new_report_dir(&parent, &format!("{stamp}Z"))
        .or_exit_while(exit::CANT_CREATE, || {
            format!("cannot create a report folder in {}", parent.display())
        })?;
    lab::report::write_report_dir(&dir, &report, histogram.as_ref())
        .or_exit_while(exit::CANT_CREATE, || "writing the report failed".into())?;
    write_command_logs(&dir, &measured.files)?;
    println!("report: {}", dir.join(lab::report::REPORT_MD).display());
    if let Some(path) = &args.json {
        let path = lab::outputs::json_path_for(path, &s.name, several);
        let text = lab::report::to_json(&report).or_exit(exit::CANT_CREATE)?;
        std::fs::write(&path, text).or_exit_while(exit::CANT_CREATE, || {
            format!("cannot write {}", path.display())
        })?;
    }
    Ok(report.passed)
}

/// The scenario file and what its `[server]`/`[client]` commands name
/// under `/tmp`: the UML guest covers `/tmp` with its own, and shares back
/// only what the run needs.
pub(crate) fn command_tmp_paths(s: &Scenario) -> Vec<PathBuf> {
    let file = &s.file;
    let args = file
        .server
        .iter()
        .flat_map(|c| c.command.iter())
        .chain(file.client.iter().flat_map(|c| c.command.iter()))
        .chain(
            file.virtual_server
                .real_servers
                .iter()
                .flat_map(|r| r.command.iter().flatten()),
        );
    let mut paths: Vec<PathBuf> = args
        .flat_map(|a| lab::runner::job::embedded_tmp_paths(a))
        .collect();
    paths.extend(std::path::absolute(&s.path));
    paths
}

/// The user commands' stdout and stderr (`servers/rs1.stdout`, ...) beside
/// the report.
fn write_command_logs(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), CliError> {
    for (name, bytes) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).or_exit_while(exit::CANT_CREATE, || {
                format!("cannot create {}", parent.display())
            })?;
        }
        std::fs::write(&path, bytes).or_exit_while(exit::CANT_CREATE, || {
            format!("cannot write {}", path.display())
        })?;
    }
    Ok(())
}

/// Parses a keepalived.conf and turns its first virtual server into a
/// scenario run by keepalived; returns it with one line per ignored part.
fn import_keepalived_conf(path: &Path) -> Result<(Scenario, Vec<String>), CliError> {
    let conf = lab::keepalived::parse_file(path).or_exit(exit::BAD_SCENARIO)?;
    let imported =
        lab::scenario::keepalived::to_scenario(&conf, path).or_exit(exit::BAD_SCENARIO)?;
    let problems = lab::scenario::validate::validate(&imported.file);
    if !problems.is_empty() {
        return Err(ScenarioError::Invalid {
            path: path.to_path_buf(),
            problems,
        }
        .into());
    }
    let ignored = imported
        .ignored
        .iter()
        .map(|i| {
            format!(
                "{}:{}: ignored {}: {}",
                path.display(),
                i.line,
                i.what,
                i.reason
            )
        })
        .collect();
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "keepalived".into());
    Ok((
        Scenario {
            name,
            path: path.to_path_buf(),
            file: imported.file,
        },
        ignored,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(client_ips: u32) -> Scenario {
        let text = include_str!("../../../scenarios/rr.toml")
            .replace("client_ips = 64", &format!("client_ips = {client_ips}"));
        Scenario::from_str(Path::new("big.toml"), &text).unwrap()
    }

    #[test]
    fn a_thousand_client_ips_overflow_the_default_neighbour_table() {
        let big = neighbour_overflow(&scenario(1000), 1024).expect("refused");
        assert!(big.contains("gc_thresh3 = 1024"), "{big}");
        assert!(big.contains("--runner uml"), "{big}");
        assert!(neighbour_overflow(&scenario(256), 1024).is_none());
        assert!(neighbour_overflow(&scenario(1000), 65536).is_none());
    }
}
