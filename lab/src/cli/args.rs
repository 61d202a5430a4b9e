//! The command line as clap types, each verb's options declared once: the
//! doc comments are the `--help` text, and the verbs take these structs as
//! they are.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use lab::runner::RunnerChoice;

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
pub(crate) struct Cli {
    /// Which kernel runs the lab: `auto` uses the host's when it has IPVS,
    /// else User-Mode Linux; `host` and `uml` force one.
    #[arg(long, value_enum, default_value_t = RunnerChoice::Auto, global = true)]
    pub(crate) runner: RunnerChoice,
    /// More diagnostics on stderr: -v info, -vv debug, -vvv trace.
    /// RUST_LOG (e.g. `lab=debug,rtnetlink=info`) overrides it.
    #[arg(long, short, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Verb,
}

// The doc comments are `--help` text first: `reports/<scenario>/<time>/`
// reads right there, so rustdoc may not take it for HTML.
#[allow(rustdoc::invalid_html_tags)]
// One `Verb` is parsed per process and matched once: boxing the large
// variants (the load generator's flags) would save nothing that matters.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub(crate) enum Verb {
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
    Scenario(ScenarioArgs),
    /// List the scenarios in scenarios/, each with its one-line description.
    List,
    /// Bring up a scenario's network, IPVS and gRPC servers, run a command in
    /// one host's namespace, tear everything down. Example:
    /// `lab exec rr-persistence --host director -- ipvsadm -Ln`.
    Exec(ExecArgs),
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
    Ipvs(IpvsArgs),
    /// Compare a report with a baseline: the distribution on the scenario's
    /// unit (chi-square homogeneity at alpha, or an equivalence margin) and
    /// failed RPCs against the error budget; exit 1 on a regression.
    Compare(CompareArgs),
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
        /// Boot the guest in time-travel mode (idle time skipped).
        #[arg(long)]
        time_travel: bool,
        /// The program and its arguments.
        #[arg(trailing_var_arg = true, required = true)]
        cmd: Vec<OsString>,
    },
}

// The option structs carry no doc comment of their own: clap would take it
// as the verb's help, in place of the variant's above.

#[derive(Args, Debug, Clone)]
pub(crate) struct ScenarioArgs {
    /// Scenario names (looked up in scenarios/) or paths.
    pub(crate) names: Vec<String>,
    /// Run every scenario in scenarios/.
    #[arg(long, conflicts_with = "names")]
    pub(crate) all: bool,
    /// Also write report.json to this path.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Where report folders are written.
    #[arg(long, default_value = "reports")]
    pub(crate) reports: PathBuf,
    /// Override each scenario's load duration (e.g. 2s, 500ms, 1m 30s; a
    /// bare number is seconds, as for loadgen and server).
    #[arg(long, value_parser = grpc_demo::duration::parse_duration)]
    pub(crate) duration: Option<Duration>,
    /// No progress line.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Run Debian's keepalived in the director (with a keepalived.conf
    /// generated from the scenario) instead of the lab's own checker.
    #[arg(long)]
    pub(crate) keepalived: bool,
    /// Build the scenario from your own keepalived.conf: its first
    /// virtual_server (VIP, scheduler, persistence, real servers,
    /// TCP_CHECK) in a lab network with the addresses it names, run by
    /// keepalived. Parts the lab does not reproduce (vrrp_instance,
    /// scripts, other checkers) are listed by line. Never touches the
    /// host's own network.
    #[arg(long, value_name = "PATH")]
    pub(crate) keepalived_conf: Option<PathBuf>,
    /// Run every scenario under User-Mode Linux time travel, as `[time]
    /// mode = "travel"` in each file does: the guest's clock skips idle
    /// time, so hours of IPVS and keepalived timers pass in seconds, and
    /// every figure is guest time. Needs the UML runner and a kernel with
    /// CONFIG_UML_TIME_TRAVEL_SUPPORT (the lab's own has it).
    #[arg(long)]
    pub(crate) time_travel: bool,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct ExecArgs {
    /// Scenario name or path.
    pub(crate) scenario: String,
    /// The host to run in: director, client1, rs1, rs2, ...
    #[arg(long, default_value = "director")]
    pub(crate) host: String,
    /// The command and its arguments (after `--`).
    #[arg(trailing_var_arg = true, required = true)]
    pub(crate) cmd: Vec<OsString>,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct IpvsArgs {
    /// Show connection/packet/byte counters (`ipvsadm -Ln --stats`).
    #[arg(long)]
    pub(crate) stats: bool,
    /// Print JSON instead.
    #[arg(long)]
    pub(crate) json: bool,
    /// The run id (default: $IPVSLAB_RUN inside lab exec/shell, else
    /// the current namespace).
    #[arg(long)]
    pub(crate) run: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct CompareArgs {
    /// The baseline report.json.
    pub(crate) baseline: PathBuf,
    /// The new report.json.
    pub(crate) report: PathBuf,
    /// Override the report's alpha (default: its `[expect] alpha`, else 1e-6).
    #[arg(long)]
    pub(crate) alpha: Option<f64>,
    /// Override the report's equivalence margin on each server's share.
    #[arg(long)]
    pub(crate) baseline_margin: Option<f64>,
    /// Override the report's error budget (failed RPCs beyond the baseline's).
    #[arg(long)]
    pub(crate) error_budget: Option<u64>,
    /// Print the comparison as JSON (rows, verdicts, settings) instead of a
    /// table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn scenario_options_parse_into_their_struct() {
        let cli = Cli::try_parse_from([
            "lab",
            "-vv",
            "scenario",
            "rr",
            "wrr",
            "--duration",
            "2s",
            "--quiet",
        ])
        .unwrap();
        assert_eq!(cli.verbose, 2);
        let Verb::Scenario(args) = cli.command else {
            panic!("not a scenario: {:?}", cli.command)
        };
        assert_eq!(args.names, ["rr", "wrr"]);
        assert_eq!(args.duration, Some(Duration::from_secs(2)));
        assert!(args.quiet && !args.all);
        assert_eq!(args.reports, PathBuf::from("reports"));
    }

    #[test]
    fn verbose_is_global_and_exec_keeps_its_command() {
        let cli = Cli::try_parse_from([
            "lab", "exec", "rr", "-v", "--host", "rs1", "--", "ipvsadm", "-v",
        ])
        .unwrap();
        assert_eq!(cli.verbose, 1);
        let Verb::Exec(args) = cli.command else {
            panic!("not exec: {:?}", cli.command)
        };
        assert_eq!(args.host, "rs1");
        assert_eq!(args.cmd, [OsString::from("ipvsadm"), OsString::from("-v")]);
    }
}
