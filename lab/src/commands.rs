//! The verbs of the `lab` CLI that build networks, as library functions that
//! return an exit code; `main.rs` only parses and dispatches.
//!
//! Each verb that needs IPVS first resolves the runner: on a host without
//! IPVS the whole invocation is re-run inside User-Mode Linux, where the same
//! code then runs on the guest kernel.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::bringup::LabNetwork;
use crate::error_chain;
use crate::exit;
use crate::netns::RunId;
use crate::runner::{self, RunnerChoice, RunnerKind};
use crate::scenario::run::{Progress, RunOptions};
use crate::scenario::{Scenario, ScenarioError, plan};

/// Environment variable naming the lab run a command runs in (set by
/// `lab exec` and `lab shell`; read by `lab ipvs`).
pub const RUN_ENV: &str = "IPVSLAB_RUN";

/// Reports an error with its whole cause chain (`a: b: c`): the errno or
/// parse error at the bottom is usually the part that says what to fix.
fn fail_with(code: u8, e: &dyn std::error::Error) -> u8 {
    fail(code, error_chain(e))
}

fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    eprintln!("lab: {message}");
    code
}

fn scenario_error_code(e: &ScenarioError) -> u8 {
    match e {
        ScenarioError::NotFound { .. } => exit::USAGE,
        _ => exit::BAD_SCENARIO,
    }
}

/// Registers SIGINT/SIGTERM/SIGHUP to set a flag instead of killing the
/// process, so that guards run and nothing is left behind.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let _ = signal_hook::flag::register(s, Arc::clone(&flag));
    }
    flag
}

/// Common start of every verb that builds a network: the scenario loads,
/// we have privileges, and the runner is known. `Err` carries the exit code
/// (already reported); `Ok(None)` means the invocation ran in UML and its
/// exit code is in the `Err`... see [`Prepared`].
enum Prepared {
    /// Run here.
    Here,
    /// Ran inside UML with this exit code.
    Done(u8),
}

/// `shared` names host paths the job writes (reports): the guest sees them
/// even where its own `/tmp` would hide them.
fn prepare(choice: RunnerChoice, interactive: bool, shared: &[PathBuf]) -> Result<Prepared, u8> {
    if !crate::preflight::has_privileges() {
        return Err(fail(exit::NO_PERMISSION, crate::preflight::NO_PRIVILEGE));
    }
    let kind = runner::resolve(choice).map_err(|e| fail_with(runner_error_code(&e), &e))?;
    match kind {
        RunnerKind::Host => Ok(Prepared::Here),
        RunnerKind::Uml => match runner::rerun_self_in_uml(interactive, shared) {
            Ok(o) => Ok(Prepared::Done(o.exit_code.clamp(0, 255) as u8)),
            Err(e) => Err(fail_with(runner_error_code(&e), &e)),
        },
    }
}

/// The exit code for a runner error.
pub fn runner_error_code(e: &runner::RunnerError) -> u8 {
    match e {
        runner::RunnerError::Interrupted => 130,
        runner::RunnerError::NoIpvsNoUml { .. }
        | runner::RunnerError::HostHasNoIpvs { .. }
        | runner::RunnerError::UmlModulesMissing { .. }
        | runner::RunnerError::BadKernel { .. }
        | runner::RunnerError::NoStatus { .. } => exit::UNAVAILABLE,
        runner::RunnerError::NestedUml => exit::USAGE,
        _ => exit::OS_ERROR,
    }
}

/// Options of `lab scenario`.
#[derive(Debug, Clone)]
pub struct ScenarioArgs {
    /// Scenario names or paths (empty with `all`).
    pub names: Vec<String>,
    /// Run every scenario in `scenarios/`.
    pub all: bool,
    /// Also write report.json here.
    pub json: Option<PathBuf>,
    /// Where report folders go.
    pub reports: PathBuf,
    /// Override the load duration.
    pub duration: Option<Duration>,
    /// No progress line.
    pub quiet: bool,
    /// Run Debian's keepalived in the director instead of the lab's checker.
    pub keepalived: bool,
    /// Build the scenario from a user's keepalived.conf (run by keepalived).
    pub keepalived_conf: Option<PathBuf>,
}

/// `lab scenario`: runs one or more scenarios, writes their reports, prints
/// the summaries; 0 when every expectation held, 1 otherwise.
pub fn scenario(choice: RunnerChoice, args: &ScenarioArgs) -> u8 {
    // Load everything first: a malformed file fails before any network.
    let mut scenarios = Vec::new();
    if args.all {
        for (path, loaded) in crate::scenario::list() {
            match loaded {
                Ok(s) => scenarios.push(s),
                Err(e) => return fail(exit::BAD_SCENARIO, format!("{}: {e}", path.display())),
            }
        }
        if scenarios.is_empty() {
            return fail(exit::BAD_SCENARIO, "no scenarios found in scenarios/");
        }
    }
    for name in &args.names {
        match Scenario::load(name) {
            Ok(s) => scenarios.push(s),
            Err(e) => return fail_with(scenario_error_code(&e), &e),
        }
    }
    let mut ignored = Vec::new();
    if let Some(path) = &args.keepalived_conf {
        match import_keepalived_conf(path) {
            Ok((s, skipped)) => {
                scenarios.push(s);
                ignored = skipped;
            }
            Err(code) => return code,
        }
    }
    if scenarios.is_empty() {
        return fail(
            exit::USAGE,
            "name a scenario (see `lab list`) or pass --all",
        );
    }
    if let Some(d) = args.duration {
        // The file's own bounds hold for the command line too.
        if d.is_zero() || d.as_secs() > 3600 {
            return fail(
                exit::USAGE,
                format!(
                    "--duration {} must be more than 0 and at most one hour (as load.duration in a scenario)",
                    humantime::format_duration(d)
                ),
            );
        }
        // A shorter load would silently drop timed phases: refuse instead.
        for sc in &scenarios {
            let mut load = sc.file.load.clone();
            load.duration = d;
            let end = crate::scenario::validate::load_end(&load).unwrap_or(Duration::MAX);
            if let Some(p) = sc.file.phases.iter().find(|p| p.at >= end) {
                return fail(
                    exit::USAGE,
                    format!(
                        "--duration {} ends the load of {} before its phase at {} ({:?}); drop --duration or make it longer",
                        humantime::format_duration(d),
                        sc.name,
                        humantime::format_duration(p.at),
                        p.action
                    ),
                );
            }
        }
    }
    let several = scenarios.len() > 1;
    let json_files: Vec<PathBuf> = args
        .json
        .iter()
        .flat_map(|p| {
            scenarios
                .iter()
                .map(move |s| crate::outputs::json_path_for(p, &s.name, several))
        })
        .collect();
    let claimed = match crate::outputs::claim(&args.reports, &json_files) {
        Ok(c) => c,
        Err(e) => return fail_with(exit::CANT_CREATE, &e),
    };
    let code = match prepare(choice, false, &claimed.paths) {
        Err(code) | Ok(Prepared::Done(code)) => code,
        Ok(Prepared::Here) => run_scenarios(&scenarios, &ignored, args),
    };
    if code != exit::OK {
        claimed.release_unused();
    }
    code
}

/// Runs the loaded scenarios here (on a kernel with IPVS) and prints the
/// verdict; the exit code of `lab scenario`.
fn run_scenarios(scenarios: &[Scenario], ignored: &[String], args: &ScenarioArgs) -> u8 {
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
            .then_some(crate::scenario::spec::DirectorKind::Keepalived),
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
            Err(code) => {
                if interrupted.load(Ordering::SeqCst) {
                    return 130;
                }
                if total == 1 {
                    return code;
                }
                first_error.get_or_insert(code);
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
    match (failed.is_empty(), first_error) {
        (true, _) => exit::OK,
        (false, Some(code)) => code,
        (false, None) => exit::FAILED,
    }
}

/// Runs one scenario and writes its report; with `several` scenarios in
/// the invocation, `--json PATH` becomes `<scenario>-PATH` for each. A
/// report that cannot be written is an error (73), never a silent loss.
fn run_one(
    s: &Scenario,
    opts: &RunOptions,
    args: &ScenarioArgs,
    several: bool,
) -> Result<bool, u8> {
    let measured = crate::scenario::run::execute(s, opts).map_err(|e| {
        let code = match e {
            crate::scenario::run::RunError::Interrupted => 130,
            _ => exit::FAILED,
        };
        fail(
            code,
            format!("scenario {} failed to run: {}", s.name, error_chain(&e)),
        )
    })?;
    let (report, histogram) = crate::scenario::assemble::assemble(s, &measured);
    let stamp = report
        .started_at
        .replace([':', '-'], "")
        .trim_end_matches('Z')
        .to_string();
    print!("{}", crate::report::summary::render_summary(&report));
    let parent = args.reports.join(&s.name);
    let dir = crate::outputs::new_report_dir(&parent, &format!("{stamp}Z")).map_err(|e| {
        fail(
            exit::CANT_CREATE,
            format!("cannot create a report folder in {}: {e}", parent.display()),
        )
    })?;
    match crate::report::write_report_dir(&dir, &report, histogram.as_ref()) {
        Ok(_) => println!("report: {}", dir.join(crate::report::REPORT_MD).display()),
        Err(e) => {
            return Err(fail(
                exit::CANT_CREATE,
                format!("writing the report failed: {}", error_chain(&e)),
            ));
        }
    }
    if let Some(path) = &args.json {
        let path = crate::outputs::json_path_for(path, &s.name, several);
        let text = crate::report::to_json(&report).map_err(|e| fail_with(exit::CANT_CREATE, &e))?;
        std::fs::write(&path, text).map_err(|e| {
            fail(
                exit::CANT_CREATE,
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
    }
    Ok(report.passed)
}

/// Plans `scenario` as run `run` and brings its network and IPVS up;
/// `Err` carries the exit code, already reported.
fn bring_up(scenario: &Scenario, run: RunId) -> Result<LabNetwork, u8> {
    let plan = plan::plan(scenario, run).map_err(|e| fail_with(exit::BAD_SCENARIO, &e))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail_with(exit::OS_ERROR, &e))?;
    rt.block_on(LabNetwork::up(plan))
        .map_err(|e| fail(exit::OS_ERROR, error_chain(&e)))
}

/// Parses a keepalived.conf and turns its first virtual server into a
/// scenario run by keepalived; returns it with one line per ignored part.
fn import_keepalived_conf(path: &Path) -> Result<(Scenario, Vec<String>), u8> {
    let conf =
        crate::keepalived::parse_file(path).map_err(|e| fail_with(exit::BAD_SCENARIO, &e))?;
    let imported = crate::keepalived::import::to_scenario(&conf, path)
        .map_err(|e| fail_with(exit::BAD_SCENARIO, &e))?;
    let problems = crate::scenario::validate::validate(&imported.file);
    if !problems.is_empty() {
        return Err(fail(
            exit::BAD_SCENARIO,
            ScenarioError::Invalid {
                path: path.to_path_buf(),
                problems,
            },
        ));
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

/// `lab exec` / `lab shell`: bring up a scenario's network, IPVS and gRPC
/// servers, run `cmd` in host `host`'s namespace, tear down; returns the
/// command's exit code.
pub fn exec(
    choice: RunnerChoice,
    name: &str,
    host: &str,
    cmd: Vec<OsString>,
    interactive: bool,
) -> u8 {
    let scenario = match Scenario::load(name) {
        Ok(s) => s,
        Err(e) => return fail_with(scenario_error_code(&e), &e),
    };
    let hosts: Vec<String> = ["director".to_string(), plan::CLIENT_HOST.to_string()]
        .into_iter()
        .chain(scenario.server_names())
        .collect();
    if !hosts.iter().any(|h| h == host) {
        return fail(
            exit::USAGE,
            format!(
                "no host '{host}' in scenario {} (hosts: {})",
                scenario.name,
                hosts.join(", ")
            ),
        );
    }
    match prepare(choice, interactive, &[]) {
        Err(code) => return code,
        Ok(Prepared::Done(code)) => return code,
        Ok(Prepared::Here) => {}
    }
    let interrupted = interrupt_flag();
    let run = RunId::new();
    let lab = match bring_up(&scenario, run) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let mut servers = Vec::new();
    for s in &lab.plan().servers {
        match crate::scenario::run::start_server(&lab, &exe, s, None) {
            Ok(g) => servers.push(g),
            Err(e) => return fail(exit::OS_ERROR, error_chain(&e)),
        }
    }
    let code = run_in_host(&lab, host, cmd, run, &interrupted, interactive);
    drop(servers);
    if let Err(e) = lab.teardown() {
        eprintln!("lab: teardown: {}", error_chain(&e));
    }
    code
}

fn run_in_host(
    lab: &LabNetwork,
    host: &str,
    cmd: Vec<OsString>,
    run: RunId,
    interrupted: &AtomicBool,
    interactive: bool,
) -> u8 {
    use crate::netns::CommandExt;
    let ns = match lab.ns(host) {
        Ok(ns) => ns,
        Err(e) => return fail_with(exit::USAGE, &e),
    };
    let (program, rest) = match cmd.split_first() {
        Some(x) => x,
        None => return fail(exit::USAGE, "no command given"),
    };
    let mut command = Command::new(program);
    command
        .args(rest)
        .env(RUN_ENV, run.to_string())
        .env("IPVSLAB_HOST", host)
        .env("PS1", format!("[ipvs-lab {host}] \\w# "));
    if let Err(e) = command.netns(ns) {
        return fail_with(exit::OS_ERROR, &e);
    }
    if interactive && runner::in_guest() {
        use std::os::unix::process::CommandExt as _;
        // In the UML guest the lab's stdin is con0 (/dev/tty0) without a
        // session to control it. Give the shell a session of its own with
        // that tty as its controlling terminal, with the usual line
        // discipline, so it has job control, echo and CR/LF handling, and
        // Ctrl-C reaches its foreground job.
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                let fd = libc::open(c"/dev/tty0".as_ptr(), libc::O_RDWR);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::ioctl(fd, libc::TIOCSCTTY, 1);
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(fd, &mut t) == 0 {
                    t.c_iflag |= libc::ICRNL;
                    t.c_oflag |= libc::OPOST | libc::ONLCR;
                    t.c_lflag |= libc::ICANON
                        | libc::ECHO
                        | libc::ECHOE
                        | libc::ECHOK
                        | libc::ISIG
                        | libc::IEXTEN;
                    libc::tcsetattr(fd, libc::TCSANOW, &t);
                }
                for target in 0..3 {
                    libc::dup2(fd, target);
                }
                if fd > 2 {
                    libc::close(fd);
                }
                Ok(())
            });
        }
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            return fail(
                exit::UNAVAILABLE,
                format!("cannot run {}: {e}", Path::new(program).display()),
            );
        }
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                use std::os::unix::process::ExitStatusExt;
                return status
                    .code()
                    .map(|c| c.clamp(0, 255) as u8)
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(0) as u8);
            }
            Ok(None) => {}
            Err(e) => return fail_with(exit::OS_ERROR, &e),
        }
        if interrupted.load(Ordering::SeqCst) {
            // The command got the same signal from the terminal; give it a
            // moment, then make sure it is gone before tearing down.
            std::thread::sleep(Duration::from_millis(200));
            let _ = child.kill();
            let _ = child.wait();
            return 130;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `lab ipvs`: the IPVS table of a lab's director in `ipvsadm -Ln` layout
/// (or JSON). Which director: `--run`, else `$IPVSLAB_RUN` (inside `lab
/// exec`/`lab shell`), else the namespace this process is in.
pub fn ipvs(run: Option<String>, stats: bool, json: bool) -> u8 {
    use crate::ipvs::format::{Listing, render};
    let run = run.or_else(|| std::env::var(RUN_ENV).ok());
    let read = || -> Result<crate::ipvs::IpvsTable, String> {
        let h = crate::ipvs::IpvsHandle::open().map_err(|e| error_chain(&e))?;
        h.table().map_err(|e| error_chain(&e))
    };
    let table = match run {
        Some(run) => {
            let Ok(id) = run.parse::<RunId>() else {
                return fail(
                    exit::USAGE,
                    format!("'{run}' is not a run id (like 1234-5)"),
                );
            };
            let name = crate::netns::ns_name(&id, plan::DIRECTOR_HOST);
            let ns = match crate::netns::NetNs::open(&name) {
                Ok(ns) => ns,
                Err(e) => return fail(exit::USAGE, format!("no running lab {run}: {e}")),
            };
            match ns.run(read) {
                Ok(r) => r,
                Err(e) => return fail_with(exit::OS_ERROR, &e),
            }
        }
        None => read(),
    };
    match table {
        Ok(t) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&t).expect("serializable")
                );
            } else {
                print!(
                    "{}",
                    render(
                        &t,
                        if stats {
                            Listing::Stats
                        } else {
                            Listing::Plain
                        }
                    )
                );
            }
            exit::OK
        }
        Err(e) => fail(exit::UNAVAILABLE, e),
    }
}

/// `lab up`: build a scenario's network and IPVS and leave it running (host
/// kernel with IPVS only).
pub fn up(choice: RunnerChoice, name: &str) -> u8 {
    let scenario = match Scenario::load(name) {
        Ok(s) => s,
        Err(e) => return fail_with(scenario_error_code(&e), &e),
    };
    if !crate::preflight::has_privileges() {
        return fail(exit::NO_PERMISSION, crate::preflight::NO_PRIVILEGE);
    }
    match runner::resolve(choice) {
        Ok(RunnerKind::Host) => {}
        Ok(RunnerKind::Uml) => {
            return fail(
                exit::UNAVAILABLE,
                "this host has no IPVS, so the lab runs inside User-Mode Linux, which cannot outlive \
                 the command; use `lab shell <scenario>` for an interactive session instead",
            );
        }
        Err(e) => return fail_with(runner_error_code(&e), &e),
    }
    let run = RunId::new();
    let lab = match bring_up(&scenario, run) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if let Err(e) = crate::netns::mark_kept(&run) {
        return fail_with(exit::OS_ERROR, &e);
    }
    let plan = lab.keep();
    println!("lab {run} is up ({}); namespaces:", scenario.name);
    for h in &plan.topology.hosts {
        println!("  {:<10} {}", h.name, crate::netns::ns_name(&run, &h.name));
    }
    println!(
        "inspect: ip netns exec {} ipvsadm -Ln",
        crate::netns::ns_name(&run, "director")
    );
    println!("remove:  lab down {run}");
    exit::OK
}

/// `lab down`: remove a network kept by `lab up` (or all of them).
pub fn down(run: Option<String>) -> u8 {
    if !crate::preflight::has_privileges() {
        return fail(exit::NO_PERMISSION, crate::preflight::NO_PRIVILEGE);
    }
    let found = match crate::netns::list_lab_namespaces() {
        Ok(f) => f,
        Err(e) => return fail_with(exit::OS_ERROR, &e),
    };
    let mut runs: Vec<RunId> = found
        .into_iter()
        .map(|n| n.run)
        .filter(crate::netns::is_kept)
        .collect();
    runs.sort();
    runs.dedup();
    if let Some(want) = run {
        runs.retain(|r| r.to_string() == want);
        if runs.is_empty() {
            return fail(exit::USAGE, format!("no lab {want} kept by `lab up`"));
        }
    }
    if runs.is_empty() {
        println!("no lab kept by `lab up`");
        return exit::OK;
    }
    for r in runs {
        match crate::netns::remove_run(&r) {
            Ok(rep) => {
                let _ = crate::netns::unmark_kept(&r);
                println!("removed lab {r} ({} namespaces)", rep.removed.len());
            }
            Err(e) => return fail_with(exit::OS_ERROR, &e),
        }
    }
    exit::OK
}

/// `lab compare`: what moved between a baseline report and a new one; fails
/// (1) when fairness or errors regress beyond the tolerance.
pub fn compare(baseline: &Path, current: &Path, tolerance: f64) -> u8 {
    let read = |p: &Path| crate::report::read_report_json(p).map_err(|e| error_chain(&e));
    let (b, c) = match (read(baseline), read(current)) {
        (Ok(b), Ok(c)) => (b, c),
        // A report that is not one is bad input (65), as a bad scenario is.
        (Err(e), _) | (_, Err(e)) => return fail(exit::BAD_SCENARIO, e),
    };
    let cmp = crate::report::compare::compare(&b, &c, tolerance);
    print!("{}", cmp.render_text());
    if cmp.regressed() {
        exit::FAILED
    } else {
        exit::OK
    }
}
