//! The `lab` command line: parses arguments and dispatches; the work lives in
//! the library.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lab::runner::{self, RunnerChoice};
use lab::{commands, exit};

/// ipvs-lab: build a namespace network with real Linux IPVS in
/// direct-routing mode in front of gRPC servers, and measure how it
/// distributes, pins and serves traffic.
///
/// Every run builds its own namespaces (client, director, real servers and a
/// bridge, joined by veth links), never touches the host's root network
/// namespace, and removes everything on exit, error or Ctrl-C. Where the host
/// kernel has no IPVS, the lab boots Debian's User-Mode Linux kernel (which
/// has the real IPVS modules) and runs itself inside it.
///
/// Exit codes: 0 ok, 1 an expectation or command failed, 64 usage,
/// 65 bad scenario, 69 missing kernel feature or program, 77 not root.
#[derive(Parser, Debug)]
#[command(name = "lab", version, about, long_about)]
struct Cli {
    /// Which kernel runs the lab: `auto` uses the host's when it has IPVS,
    /// else User-Mode Linux; `host` and `uml` force one.
    #[arg(long, value_enum, default_value_t = RunnerChoice::Auto, global = true)]
    runner: RunnerChoice,
    #[command(subcommand)]
    command: Verb,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Preflight: root, namespaces, host IPVS, UML kernel, ipvsadm; prints the
    /// fix for each failing check. Fails only when no runner can work.
    Check {
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run scenarios end to end: network, IPVS, gRPC servers, load through
    /// the VIP, phases; then print a summary and write
    /// reports/<scenario>/<time>/ (report.json, report.md, SVG charts,
    /// latency.hgrm). Exit 0 when every expectation holds, 1 otherwise.
    Scenario {
        /// Scenario names (looked up in scenarios/) or paths.
        names: Vec<String>,
        /// Run every scenario in scenarios/.
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// Also write report.json to this path.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Where report folders are written.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
        /// Override each scenario's load duration (e.g. 2s).
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<std::time::Duration>,
        /// No progress line.
        #[arg(long, short)]
        quiet: bool,
        /// Run Debian's keepalived in the director (with a keepalived.conf
        /// generated from the scenario) instead of the lab's own checker.
        #[arg(long)]
        keepalived: bool,
        /// Build the scenario from your own keepalived.conf: its first
        /// virtual_server (VIP, scheduler, persistence, real servers,
        /// TCP_CHECK) in a lab network with the addresses it names, run by
        /// keepalived. Parts the lab does not reproduce (vrrp_instance,
        /// scripts, other checkers) are listed by line. Never touches the
        /// host's own network.
        #[arg(long, value_name = "PATH")]
        keepalived_conf: Option<PathBuf>,
    },
    /// List the scenarios in scenarios/, each with its one-line description.
    List,
    /// Bring up a scenario's network, IPVS and gRPC servers, run a command in
    /// one host's namespace, tear everything down. Example:
    /// `lab exec rr-persistence --host director -- ipvsadm -Ln`.
    Exec {
        /// Scenario name or path.
        scenario: String,
        /// The host to run in: director, client1, rs1, rs2, ...
        #[arg(long, default_value = "director")]
        host: String,
        /// The command and its arguments (after `--`).
        #[arg(trailing_var_arg = true, required = true)]
        cmd: Vec<OsString>,
    },
    /// Like exec, but an interactive shell ($SHELL or /bin/sh) in the host.
    Shell {
        /// Scenario name or path.
        scenario: String,
        /// The host to open the shell in.
        #[arg(long, default_value = "director")]
        host: String,
    },
    /// Build a scenario's network and IPVS and keep it running (host kernel
    /// with IPVS only; under UML use `lab shell`).
    Up {
        /// Scenario name or path.
        scenario: String,
    },
    /// Remove networks kept by `lab up` (all of them, or one run id).
    Down {
        /// The run id printed by `lab up`.
        run: Option<String>,
    },
    /// Print a lab director's IPVS table in `ipvsadm -Ln` layout.
    Ipvs {
        /// Show connection/packet/byte counters (`ipvsadm -Ln --stats`).
        #[arg(long)]
        stats: bool,
        /// Print JSON instead.
        #[arg(long)]
        json: bool,
        /// The run id (default: $IPVSLAB_RUN inside lab exec/shell, else
        /// the current namespace).
        #[arg(long)]
        run: Option<String>,
    },
    /// Compare a report with a baseline: shares, fairness and error rate;
    /// exit 1 when fairness or errors regress beyond the tolerance.
    Compare {
        /// The baseline report.json.
        baseline: PathBuf,
        /// The new report.json.
        report: PathBuf,
        /// Allowed absolute change of max deviation / Jain / error rate.
        #[arg(long, default_value_t = 0.05)]
        tolerance: f64,
    },
    /// The identity-tagged gRPC demo server (what the lab runs on each real server).
    Server(grpc_demo::server::ServerArgs),
    /// The gRPC load generator (what the lab runs in the client namespace).
    Loadgen(bench::loadgen::LoadgenArgs),
    /// Remove namespaces of lab runs whose process is gone (`lab up` runs
    /// are kept unless --all).
    Gc {
        /// Also remove networks kept by `lab up`.
        #[arg(long)]
        all: bool,
    },
    /// Run a command inside the lab's User-Mode Linux guest (IPVS loaded),
    /// without building a network. For debugging the runner.
    #[command(hide = true)]
    GuestRun {
        /// The program and its arguments.
        #[arg(trailing_var_arg = true, required = true)]
        cmd: Vec<OsString>,
    },
}

fn main() -> ExitCode {
    runner::guest::become_init_if_guest();
    let cli = match grpc_demo::cli::parse_or_usage::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match cli.command {
        Verb::Check { json } => {
            let report = lab::preflight::run(cli.runner);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serializable")
                );
            } else {
                print!("{}", report.render());
            }
            if report.failed() {
                ExitCode::from(exit::UNAVAILABLE)
            } else {
                ExitCode::SUCCESS
            }
        }
        Verb::List => list(),
        Verb::Scenario {
            names,
            all,
            json,
            reports,
            duration,
            quiet,
            keepalived,
            keepalived_conf,
        } => ExitCode::from(commands::scenario(
            cli.runner,
            &commands::ScenarioArgs {
                names,
                all,
                json,
                reports,
                duration,
                quiet,
                keepalived,
                keepalived_conf,
            },
        )),
        Verb::Exec {
            scenario,
            host,
            cmd,
        } => ExitCode::from(commands::exec(cli.runner, &scenario, &host, cmd, false)),
        Verb::Shell { scenario, host } => {
            let shell = std::env::var_os("SHELL").unwrap_or_else(|| "/bin/sh".into());
            ExitCode::from(commands::exec(
                cli.runner,
                &scenario,
                &host,
                vec![shell],
                true,
            ))
        }
        Verb::Up { scenario } => ExitCode::from(commands::up(cli.runner, &scenario)),
        Verb::Down { run } => ExitCode::from(commands::down(run)),
        Verb::Ipvs { stats, json, run } => ExitCode::from(commands::ipvs(run, stats, json)),
        Verb::Compare {
            baseline,
            report,
            tolerance,
        } => ExitCode::from(commands::compare(&baseline, &report, tolerance)),
        Verb::Server(args) => grpc_demo::server::main_with_args(args),
        Verb::Loadgen(args) => bench::loadgen::main_with_args(args),
        Verb::Gc { all } => gc(all),
        Verb::GuestRun { cmd } => guest_run(cmd),
    }
}

/// Reports an error with its whole cause chain.
fn fail_with(code: u8, e: &dyn std::error::Error) -> ExitCode {
    fail(code, lab::error_chain(e))
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("lab: {message}");
    ExitCode::from(code)
}

fn list() -> ExitCode {
    let scenarios = lab::scenario::list();
    if scenarios.is_empty() {
        return fail(
            exit::BAD_SCENARIO,
            "no scenarios found: run from the checkout (scenarios/*.toml)",
        );
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
    if broken {
        ExitCode::from(exit::BAD_SCENARIO)
    } else {
        ExitCode::SUCCESS
    }
}

fn gc(all: bool) -> ExitCode {
    if !lab::preflight::has_privileges() {
        return fail(exit::NO_PERMISSION, lab::preflight::NO_PRIVILEGE);
    }
    let result = if all {
        lab::netns::list_lab_namespaces().and_then(|found| {
            let mut runs: Vec<_> = found.into_iter().map(|n| n.run).collect();
            runs.sort();
            runs.dedup();
            let mut removed = Vec::new();
            for run in runs {
                let r = lab::netns::remove_run(&run)?;
                removed.extend(r.removed);
            }
            Ok(removed)
        })
    } else {
        lab::netns::gc().map(|r| r.removed)
    };
    // UML kernels and run directories of runs whose `lab` was killed.
    let uml = runner::leftovers::gc(&std::env::temp_dir());
    for p in &uml.killed {
        println!("killed UML process {p}");
    }
    for d in &uml.removed_dirs {
        println!("removed {}", d.display());
    }
    for f in &uml.failed {
        eprintln!("lab: gc: {f}");
    }
    let uml_acted = !uml.killed.is_empty() || !uml.removed_dirs.is_empty();
    match result {
        Ok(removed) if removed.is_empty() && !uml_acted => {
            println!("nothing to remove");
            ExitCode::SUCCESS
        }
        Ok(removed) => {
            for name in removed {
                println!("removed {name}");
            }
            if uml.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(exit::OS_ERROR)
            }
        }
        Err(e) => fail(exit::OS_ERROR, lab::error_chain(&e)),
    }
}

fn guest_run(cmd: Vec<OsString>) -> ExitCode {
    if runner::in_guest() {
        return fail(exit::USAGE, runner::RunnerError::NestedUml);
    }
    let kernel = match runner::uml::UmlKernel::locate() {
        Ok(k) => k,
        Err(e) => return fail_with(exit::UNAVAILABLE, &e),
    };
    let job = match runner::job::GuestJob::here(cmd) {
        Ok(j) => j,
        Err(e) => return fail_with(exit::OS_ERROR, &e),
    };
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    match runner::uml::run(&kernel, &job, &runner::uml::UmlOptions::new(exe)) {
        Ok(o) => {
            eprintln!(
                "lab: UML guest ready after {:.2} s, total {:.2} s",
                o.boot_to_ready.map_or(f64::NAN, |d| d.as_secs_f64()),
                o.total.as_secs_f64()
            );
            ExitCode::from(o.exit_code.clamp(0, 255) as u8)
        }
        Err(e) => fail_with(commands::runner_error_code(&e), &e),
    }
}
