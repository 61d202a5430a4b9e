//! The checks behind `lab check`: what this machine can do, and the fix for
//! what it cannot; also the privilege test every verb that builds a network
//! starts with. Only the CLI asks these questions, so they live with it.

use std::path::Path;

use lab::runner;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Works.
    Ok,
    /// Missing, but another runner or tool covers for it.
    Warn,
    /// Missing, and the lab cannot work without it.
    Fail,
}

/// One preflight check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// How it came out.
    pub outcome: Outcome,
    /// What was found.
    pub detail: String,
    /// What to do about it, when it is not Ok.
    pub fix: Option<String>,
}

/// All checks, and whether some runner can work.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preflight {
    /// Each check.
    pub checks: Vec<Check>,
    /// The runner `--runner auto` would use, if any.
    pub runner: Option<runner::RunnerKind>,
}

impl Preflight {
    /// True when no runner can work (the only case `lab check` fails).
    pub fn failed(&self) -> bool {
        self.runner.is_none() || self.checks.iter().any(|c| c.outcome == Outcome::Fail)
    }

    /// A plain-text table, one line per check plus its fix.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let mark = match c.outcome {
                Outcome::Ok => "ok  ",
                Outcome::Warn => "warn",
                Outcome::Fail => "FAIL",
            };
            out.push_str(&format!("{mark}  {:<22} {}\n", c.name, c.detail));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("      {:<22} fix: {fix}\n", ""));
            }
        }
        out.push_str(&match self.runner {
            Some(runner::RunnerKind::Host) => {
                "=> the lab runs on the host kernel (it has IPVS)\n".to_string()
            }
            Some(runner::RunnerKind::Uml) => "=> the lab runs inside User-Mode Linux\n".to_string(),
            None => "=> no runner can work here; see the fixes above\n".to_string(),
        });
        out
    }
}

fn check(name: &'static str, outcome: Outcome, detail: String, fix: Option<&str>) -> Check {
    Check {
        name,
        outcome,
        detail,
        fix: fix.map(str::to_owned),
    }
}

/// Effective capabilities of this process, from `/proc/self/status`.
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// Whether this process may create namespaces and configure networking.
pub fn has_privileges() -> bool {
    let caps = effective_caps();
    caps & (1 << CAP_NET_ADMIN) != 0 && caps & (1 << CAP_SYS_ADMIN) != 0
}

/// The one-paragraph error for a missing privilege.
pub const NO_PRIVILEGE: &str = "the lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to create network namespaces, \
     veth links and IPVS services; run it as root, e.g. `sudo -E cargo run -p lab -- ...`. \
     Nothing was created.";

/// Creates a network namespace on a throwaway thread (never named, never
/// mounted: it vanishes with the thread) to prove namespaces work here.
fn namespaces_work() -> Result<(), String> {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| "the probe thread panicked".to_string())?
}

/// Runs every check, judging whether the runner `choice` can work.
pub fn run(choice: runner::RunnerChoice) -> Preflight {
    let mut checks = Vec::new();
    let privileged = has_privileges();
    checks.push(privilege_check(privileged));
    let netns = namespaces_work();
    checks.push(namespaces_check(&netns));

    let kernel = runner::kernel_release();
    let host_ipvs = runner::host_has_ipvs();
    let uml_severity = uml_severity(choice, host_ipvs);
    checks.push(host_ipvs_check(choice, &kernel, host_ipvs));
    let uml = runner::uml::UmlKernel::locate();
    checks.push(uml_kernel_check(&uml, uml_severity));
    // A kernel that exists may still die at boot on this CPU: boot it.
    let booted = uml
        .as_ref()
        .ok()
        .filter(|_| !runner::in_guest())
        .map(runner::uml::probe);
    let uml_boots = matches!(&booted, Some(Ok(outcome)) if outcome.exit_code == 0);
    checks.extend(booted.map(|b| boot_probe_check(&b, uml_severity)));
    checks.extend(TOOLS.iter().map(tool_check));

    let runner = (privileged && netns.is_ok())
        .then(|| working_runner(choice, host_ipvs, uml_boots))
        .flatten();
    Preflight { checks, runner }
}

/// Whether this process has the privileges to build a network.
fn privilege_check(privileged: bool) -> Check {
    if privileged {
        check("root / CAP_NET_ADMIN", Outcome::Ok, "yes".into(), None)
    } else {
        check(
            "root / CAP_NET_ADMIN",
            Outcome::Fail,
            "missing".into(),
            Some("run as root (sudo -E)"),
        )
    }
}

/// Whether a network namespace could be created.
fn namespaces_check(netns: &Result<(), String>) -> Check {
    match netns {
        Ok(()) => check(
            "network namespaces",
            Outcome::Ok,
            "unshare(CLONE_NEWNET) works".into(),
            None,
        ),
        Err(e) => check(
            "network namespaces",
            Outcome::Fail,
            format!("unshare(CLONE_NEWNET) failed: {e}"),
            Some("run as root on a kernel with CONFIG_NET_NS (containers need --privileged)"),
        ),
    }
}

/// How bad a UML failure is: fatal when the chosen runner depends on UML,
/// a warning otherwise.
fn uml_severity(choice: runner::RunnerChoice, host_ipvs: bool) -> Outcome {
    let needs_uml = match choice {
        runner::RunnerChoice::Host => false,
        runner::RunnerChoice::Uml => true,
        runner::RunnerChoice::Auto => !host_ipvs,
    };
    if needs_uml {
        Outcome::Fail
    } else {
        Outcome::Warn
    }
}

/// Whether the host kernel (`kernel`, its release) has IPVS; fatal only
/// when the host runner was asked for.
fn host_ipvs_check(choice: runner::RunnerChoice, kernel: &str, host_ipvs: bool) -> Check {
    if host_ipvs {
        check(
            "host IPVS",
            Outcome::Ok,
            format!("kernel {kernel} has ip_vs"),
            None,
        )
    } else {
        check(
            "host IPVS",
            if choice == runner::RunnerChoice::Host {
                Outcome::Fail
            } else {
                Outcome::Warn
            },
            format!("kernel {kernel} has no IPVS (no /proc/net/ip_vs, modprobe ip_vs failed)"),
            Some(
                "none needed if User-Mode Linux works (below); else use a kernel with CONFIG_IP_VS",
            ),
        )
    }
}

/// Whether a UML kernel was found.
fn uml_kernel_check(
    uml: &Result<runner::uml::UmlKernel, runner::RunnerError>,
    severity: Outcome,
) -> Check {
    match uml {
        Ok(k) => check("User-Mode Linux kernel", Outcome::Ok, k.describe(), None),
        Err(e) => check(
            "User-Mode Linux kernel",
            severity,
            lab::error_chain(e),
            Some("make deps (builds the lab's own UML kernel), or set IPVSLAB_UML_KERNEL"),
        ),
    }
}

/// How the boot probe of the UML kernel went.
fn boot_probe_check(
    booted: &Result<runner::uml::UmlOutcome, runner::RunnerError>,
    severity: Outcome,
) -> Check {
    match booted {
        Ok(outcome) if outcome.exit_code == 0 => check(
            "UML boot probe",
            Outcome::Ok,
            format!(
                "booted, ran init and powered off in {:.2} s{}",
                outcome.total.as_secs_f64(),
                outcome
                    .boot_to_ready
                    .map(|d| format!(" (ready after {:.2} s)", d.as_secs_f64()))
                    .unwrap_or_default()
            ),
            None,
        ),
        Ok(outcome) => check(
            "UML boot probe",
            severity,
            format!("the guest's init exited {}", outcome.exit_code),
            Some("its message is above; `make deps` rebuilds the lab's kernel"),
        ),
        Err(e) => check(
            "UML boot probe",
            severity,
            lab::error_chain(e),
            Some(
                "see the cause above; `make deps` builds a kernel that boots here, or set IPVSLAB_UML_KERNEL",
            ),
        ),
    }
}

/// A host tool the lab can use: check name, program, how to install it.
type Tool = (&'static str, &'static str, &'static str);

/// The optional host tools, in the order `lab check` lists them.
const TOOLS: [Tool; 4] = [
    (
        "ipvsadm",
        "ipvsadm",
        "apt-get install ipvsadm (the independent IPVS reader)",
    ),
    ("iproute2 (ip)", "ip", "apt-get install iproute2"),
    (
        "keepalived",
        "keepalived",
        "apt-get install keepalived (for --keepalived runs)",
    ),
    (
        "h2load",
        "h2load",
        "apt-get install nghttp2-client (for make bench-loadgen)",
    ),
];

/// Whether a tool is on PATH or in the sbin directories (which a non-root
/// PATH often lacks).
fn tool_check(&(name, program, fix): &Tool) -> Check {
    match runner::uml::find_on_path(program).or_else(|| {
        ["/usr/sbin", "/sbin"]
            .iter()
            .map(|d| Path::new(d).join(program))
            .find(|p| p.is_file())
    }) {
        Some(p) => check(name, Outcome::Ok, p.display().to_string(), None),
        None => check(name, Outcome::Warn, "not found".into(), Some(fix)),
    }
}

/// The runner `choice` resolves to, given what works here (root and
/// namespaces assumed).
fn working_runner(
    choice: runner::RunnerChoice,
    host_ipvs: bool,
    uml_boots: bool,
) -> Option<runner::RunnerKind> {
    match choice {
        runner::RunnerChoice::Host => host_ipvs.then_some(runner::RunnerKind::Host),
        runner::RunnerChoice::Uml => uml_boots.then_some(runner::RunnerKind::Uml),
        runner::RunnerChoice::Auto if host_ipvs => Some(runner::RunnerKind::Host),
        runner::RunnerChoice::Auto => uml_boots.then_some(runner::RunnerKind::Uml),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runner::{RunnerChoice, RunnerKind};

    #[test]
    fn uml_failures_are_fatal_only_when_the_choice_needs_uml() {
        assert_eq!(uml_severity(RunnerChoice::Uml, true), Outcome::Fail);
        assert_eq!(uml_severity(RunnerChoice::Auto, false), Outcome::Fail);
        assert_eq!(uml_severity(RunnerChoice::Auto, true), Outcome::Warn);
        assert_eq!(uml_severity(RunnerChoice::Host, false), Outcome::Warn);
    }

    #[test]
    fn a_host_without_ipvs_fails_only_the_host_runner() {
        let host = host_ipvs_check(RunnerChoice::Host, "6.1", false);
        assert_eq!(host.outcome, Outcome::Fail);
        assert!(host.fix.is_some());
        let auto = host_ipvs_check(RunnerChoice::Auto, "6.1", false);
        assert_eq!(auto.outcome, Outcome::Warn);
        let ok = host_ipvs_check(RunnerChoice::Host, "6.1", true);
        assert_eq!(ok.outcome, Outcome::Ok);
        assert_eq!(ok.detail, "kernel 6.1 has ip_vs");
        assert_eq!(ok.fix, None);
    }

    #[test]
    fn auto_prefers_the_host_then_uml() {
        assert_eq!(
            working_runner(RunnerChoice::Auto, true, true),
            Some(RunnerKind::Host)
        );
        assert_eq!(
            working_runner(RunnerChoice::Auto, false, true),
            Some(RunnerKind::Uml)
        );
        assert_eq!(working_runner(RunnerChoice::Auto, false, false), None);
        assert_eq!(working_runner(RunnerChoice::Host, false, true), None);
        assert_eq!(
            working_runner(RunnerChoice::Uml, true, true),
            Some(RunnerKind::Uml)
        );
        assert_eq!(working_runner(RunnerChoice::Uml, true, false), None);
    }
}
