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
    checks.push(if privileged {
        check("root / CAP_NET_ADMIN", Outcome::Ok, "yes".into(), None)
    } else {
        check(
            "root / CAP_NET_ADMIN",
            Outcome::Fail,
            "missing".into(),
            Some("run as root (sudo -E)"),
        )
    });
    let netns = namespaces_work();
    checks.push(match &netns {
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
    });

    let kernel = runner::kernel_release();
    let host_ipvs = runner::host_has_ipvs();
    // Whether the chosen runner depends on UML, and so how bad its failures are.
    let needs_uml = match choice {
        runner::RunnerChoice::Host => false,
        runner::RunnerChoice::Uml => true,
        runner::RunnerChoice::Auto => !host_ipvs,
    };
    let uml_severity = if needs_uml {
        Outcome::Fail
    } else {
        Outcome::Warn
    };
    checks.push(if host_ipvs {
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
    });
    let uml = runner::uml::UmlKernel::locate();
    checks.push(match &uml {
        Ok(k) => check("User-Mode Linux kernel", Outcome::Ok, k.describe(), None),
        Err(e) => check(
            "User-Mode Linux kernel",
            uml_severity,
            lab::error_chain(e),
            Some("make deps (builds the lab's own UML kernel), or set IPVSLAB_UML_KERNEL"),
        ),
    });
    // A kernel that exists may still die at boot on this CPU: boot it.
    let booted = uml
        .as_ref()
        .ok()
        .filter(|_| !runner::in_guest())
        .map(runner::uml::probe);
    let uml_boots = match &booted {
        None => false,
        Some(Ok(outcome)) if outcome.exit_code == 0 => {
            checks.push(check(
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
            ));
            true
        }
        Some(Ok(outcome)) => {
            checks.push(check(
                "UML boot probe",
                uml_severity,
                format!("the guest's init exited {}", outcome.exit_code),
                Some("its message is above; `make deps` rebuilds the lab's kernel"),
            ));
            false
        }
        Some(Err(e)) => {
            checks.push(check(
                "UML boot probe",
                uml_severity,
                lab::error_chain(e),
                Some("see the cause above; `make deps` builds a kernel that boots here, or set IPVSLAB_UML_KERNEL"),
            ));
            false
        }
    };
    let tools: [(&'static str, &'static str, &str); 4] = [
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
    for (name, program, fix) in tools {
        checks.push(
            match runner::uml::find_on_path(program).or_else(|| {
                ["/usr/sbin", "/sbin"]
                    .iter()
                    .map(|d| Path::new(d).join(program))
                    .find(|p| p.is_file())
            }) {
                Some(p) => check(name, Outcome::Ok, p.display().to_string(), None),
                None => check(name, Outcome::Warn, "not found".into(), Some(fix)),
            },
        );
    }

    let base_ok = privileged && netns.is_ok();
    let runner = if !base_ok {
        None
    } else {
        match choice {
            runner::RunnerChoice::Host => host_ipvs.then_some(runner::RunnerKind::Host),
            runner::RunnerChoice::Uml => uml_boots.then_some(runner::RunnerKind::Uml),
            runner::RunnerChoice::Auto if host_ipvs => Some(runner::RunnerKind::Host),
            runner::RunnerChoice::Auto => uml_boots.then_some(runner::RunnerKind::Uml),
        }
    };
    Preflight { checks, runner }
}
