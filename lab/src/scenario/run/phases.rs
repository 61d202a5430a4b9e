//! The scenario's `[[phase]]`s: which are due, what each does to the lab
//! (faults, weights, sysctls), and the kind of event it is reported as.

use std::time::{Duration, Instant};

use super::servers::Launcher;
use crate::error_chain;
use crate::network::LabNetwork;
use crate::process::ChildGuard;
use crate::report::model::EventKind;
use crate::scenario::Scenario;
use crate::scenario::spec::PhaseAction;

/// The phases not applied yet, the next one last.
pub(super) struct PendingPhases(Vec<(Duration, PhaseAction)>);

impl PendingPhases {
    /// Every phase of `scenario`, in time order.
    pub(super) fn of(scenario: &Scenario) -> Self {
        let mut pending: Vec<(Duration, PhaseAction)> = scenario
            .file
            .phases
            .iter()
            .map(|p| (p.at, p.action.clone()))
            .collect();
        pending.sort_by_key(|(at, _)| *at);
        pending.reverse();
        PendingPhases(pending)
    }

    /// When the next phase is due, from the origin (`None`: none left).
    pub(super) fn next_at(&self) -> Option<Duration> {
        self.0.last().map(|(at, _)| *at)
    }

    /// Takes the next phase if it is due at `now`, its time counting from
    /// `origin`.
    pub(super) fn due(&mut self, origin: Instant, now: Instant) -> Option<(Duration, PhaseAction)> {
        if self.0.last().is_some_and(|(at, _)| now >= origin + *at) {
            self.0.pop()
        } else {
            None
        }
    }
}

/// The event kind a phase is reported as. No wildcard: a new action must
/// say what it is.
pub(super) fn phase_kind(action: &PhaseAction) -> EventKind {
    match action {
        PhaseAction::SetWeight { .. }
        | PhaseAction::RemoveDestination { .. }
        | PhaseAction::AddDestination { .. } => EventKind::Weight,
        PhaseAction::Sysctl { .. } => EventKind::Sysctl,
        PhaseAction::StopServer { .. }
        | PhaseAction::KillServer { .. }
        | PhaseAction::StartServer { .. }
        | PhaseAction::LinkDown { .. }
        | PhaseAction::LinkUp { .. }
        | PhaseAction::Blackhole { .. }
        | PhaseAction::Unblackhole { .. } => EventKind::Fault,
    }
}

/// Applies one phase; returns a sentence for the report's event list.
pub(super) fn apply_phase(
    lab: &LabNetwork,
    servers: &mut [Option<ChildGuard>],
    launcher: &Launcher,
    action: &PhaseAction,
) -> Result<String, String> {
    let plan = lab.plan();
    let target = action.server().map(|name| {
        plan.servers
            .iter()
            .position(|s| s.name == name || s.address.to_string() == name)
            .expect("validated: phases name known servers")
    });
    let name = target
        .map(|i| plan.servers[i].name.clone())
        .unwrap_or_default();
    match action {
        PhaseAction::SetWeight { weight, .. } => {
            let i = target.expect("has a server");
            let mut dest = plan.servers[i].destination;
            dest.weight = *weight;
            let service = plan.service.clone();
            lab.ipvs(move |h| h.edit_destination(&service, &dest))
                .map_err(|e| error_chain(&e))?;
            Ok(format!("{name} weight set to {weight}"))
        }
        PhaseAction::RemoveDestination { .. } => {
            let dest = plan.servers[target.expect("has a server")].destination;
            let service = plan.service.clone();
            lab.ipvs(move |h| h.delete_destination(&service, &dest))
                .map_err(|e| error_chain(&e))?;
            Ok(format!(
                "{name} deleted from IPVS (ipvsadm -d), server still running"
            ))
        }
        PhaseAction::AddDestination { .. } => {
            let i = target.expect("has a server");
            // A standby server is not running yet: it starts (and is ready)
            // before IPVS sends it a connection, as an operator's scale-out
            // would do it.
            let started = if servers[i].is_none() && plan.servers[i].standby {
                servers[i] = Some(launcher.start(lab, i).map_err(|e| error_chain(&e))?);
                "started and "
            } else {
                ""
            };
            let dest = plan.servers[i].destination;
            let service = plan.service.clone();
            lab.ipvs(move |h| h.add_destination(&service, &dest))
                .map_err(|e| error_chain(&e))?;
            Ok(format!("{name} {started}added to IPVS (ipvsadm -a)"))
        }
        PhaseAction::StopServer { .. } | PhaseAction::KillServer { .. } => {
            let i = target.expect("has a server");
            let (signal, verb) = if matches!(action, PhaseAction::KillServer { .. }) {
                (libc::SIGKILL, "killed (SIGKILL)")
            } else {
                (libc::SIGTERM, "stopped (SIGTERM, GOAWAY)")
            };
            if let Some(g) = &servers[i] {
                g.signal(signal);
            }
            Ok(format!("{name} {verb}"))
        }
        PhaseAction::StartServer { .. } => {
            let i = target.expect("has a server");
            if let Some(mut old) = servers[i].take() {
                old.wait_timeout(Duration::from_secs(5));
            }
            let guard = launcher.start(lab, i).map_err(|e| error_chain(&e))?;
            servers[i] = Some(guard);
            Ok(format!("{name} started"))
        }
        PhaseAction::LinkDown { .. } | PhaseAction::LinkUp { .. } => {
            let up = matches!(action, PhaseAction::LinkUp { .. });
            let ns = lab.ns(&name).map_err(|e| error_chain(&e))?;
            crate::faults::set_link(ns, crate::topology::spec::HOST_IFNAME, up)
                .map_err(|e| error_chain(&e))?;
            Ok(format!(
                "{name} link {} (ip link set eth0 {} in its namespace)",
                if up { "up" } else { "down" },
                if up { "up" } else { "down" }
            ))
        }
        PhaseAction::Blackhole { .. } => {
            crate::faults::blackhole(lab.topology().bridge(), &name)
                .map_err(|e| error_chain(&e))?;
            Ok(format!(
                "{name} blackholed (every frame to and from it dropped)"
            ))
        }
        PhaseAction::Unblackhole { .. } => {
            crate::faults::unblackhole(lab.topology().bridge(), &name)
                .map_err(|e| error_chain(&e))?;
            Ok(format!("{name} blackhole lifted"))
        }
        PhaseAction::Sysctl { name, value } => {
            crate::dr::set_ipvs_sysctl(lab.director(), name, value).map_err(|e| error_chain(&e))?;
            Ok(format!("net.ipv4.vs.{name} = {value}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One action of every kind. The match has no wildcard, so a new
    /// variant does not compile until it is listed here too.
    fn one_of_each() -> Vec<PhaseAction> {
        let server = || "rs1".to_string();
        let all = vec![
            PhaseAction::SetWeight {
                server: server(),
                weight: 0,
            },
            PhaseAction::StopServer { server: server() },
            PhaseAction::KillServer { server: server() },
            PhaseAction::StartServer { server: server() },
            PhaseAction::LinkDown { server: server() },
            PhaseAction::LinkUp { server: server() },
            PhaseAction::Blackhole { server: server() },
            PhaseAction::Unblackhole { server: server() },
            PhaseAction::RemoveDestination { server: server() },
            PhaseAction::AddDestination { server: server() },
            PhaseAction::Sysctl {
                name: "expire_nodest_conn".into(),
                value: "1".into(),
            },
        ];
        for a in &all {
            match a {
                PhaseAction::SetWeight { .. }
                | PhaseAction::StopServer { .. }
                | PhaseAction::KillServer { .. }
                | PhaseAction::StartServer { .. }
                | PhaseAction::LinkDown { .. }
                | PhaseAction::LinkUp { .. }
                | PhaseAction::Blackhole { .. }
                | PhaseAction::Unblackhole { .. }
                | PhaseAction::RemoveDestination { .. }
                | PhaseAction::AddDestination { .. }
                | PhaseAction::Sysctl { .. } => {}
            }
        }
        all
    }

    #[test]
    fn no_phase_is_reported_as_other() {
        for action in one_of_each() {
            let kind = phase_kind(&action);
            assert_ne!(kind, EventKind::Other, "{action:?} is reported as other");
            // And report.json reads the kind back as itself, not as `other`.
            let json = serde_json::to_value(kind).unwrap();
            let back: EventKind = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(back, kind, "{action:?} written as {json}");
        }
    }

    #[test]
    fn phase_kinds_are_the_report_strings() {
        let kinds: Vec<&str> = one_of_each()
            .iter()
            .map(|a| phase_kind(a).as_str())
            .collect();
        assert_eq!(
            kinds,
            [
                "weight", "fault", "fault", "fault", "fault", "fault", "fault", "fault", "weight",
                "weight", "sysctl"
            ]
        );
    }

    #[test]
    fn pending_phases_come_due_in_time_order() {
        let text = include_str!("../../../../scenarios/failover-tcp-check.toml").replace(
            "[expect]",
            "[[phase]]\nat = \"500ms\"\naction = \"set_weight\"\nserver = \"rs2\"\nweight = 2\n\n[expect]",
        );
        let s = Scenario::from_str(std::path::Path::new("t.toml"), &text).unwrap();
        let mut pending = PendingPhases::of(&s);
        let origin = Instant::now();
        assert!(pending.due(origin, origin).is_none());
        let first = pending
            .due(origin, origin + Duration::from_secs(2))
            .unwrap();
        assert_eq!(first.0, Duration::from_millis(500));
        let second = pending
            .due(origin, origin + Duration::from_secs(2))
            .unwrap();
        assert!(matches!(second.1, PhaseAction::KillServer { .. }));
        assert!(
            pending
                .due(origin, origin + Duration::from_secs(99))
                .is_none()
        );
    }
}
