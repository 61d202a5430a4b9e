//! Failover figures from what a run measured: detection, recovery, what the
//! clients saw. Pure: a function of [`Measurements`] and the scenario, so
//! each figure is unit-tested on hand-made measurements.
//!
//! Times count from the start of the measured load, like the timeline.

use std::collections::BTreeMap;

use super::Scenario;
use super::plan::health_plan;
use super::run::Measurements;
use super::run::measurements::AppliedPhase;
use crate::network::ServerPlan;
use crate::report::model::{EventKind, Failover, Flap};

/// A bucket counts as recovered when it has no failed RPC and at least
/// this fraction of the pre-fault rate. Half, not more: the machines are
/// shared and a 1-CPU UML guest's rate swings by a third on its own.
pub const RECOVERED_RATE: f64 = 0.5;

/// The failover figures, when the scenario applied a fault, a drain or a
/// removal to a real server.
pub fn failover(scenario: &Scenario, m: &Measurements) -> Option<Failover> {
    let fault = m.applied.iter().find(|p| {
        p.action.server().is_some() && (p.action.is_fault() || p.action.is_ipvs_change())
    })?;
    let t_f = fault.t_s;
    let server = m.plan.server(fault.action.server()?)?;
    let mut f = Failover {
        failed_server: Some(server.name.clone()),
        fault_at_s: Some(t_f),
        fault: m
            .events
            .iter()
            .find(|e| e.t_s == t_f && matches!(e.kind, EventKind::Fault | EventKind::Weight))
            .map(|e| e.detail.clone()),
        ..Default::default()
    };
    if fault.action.is_fault() {
        detection(scenario, m, server, fault, &mut f);
    }
    let buckets = buckets(scenario, m);
    client_impact(&buckets, t_f, &mut f);
    let key = server.destination_key();
    f.ipvs_transitions = m
        .ipvs_changes
        .iter()
        .filter(|c| c.dest == key && c.t_s >= 0.0)
        .count() as u64;
    if fault.action.is_fault() {
        f.flaps = flaps(m, server, &buckets);
    }
    for r in &m.rounds {
        for src in &r.sources {
            let gap = src.longest_gap_ms / 1000.0;
            let e = f
                .longest_blackhole_s
                .entry(src.address.clone())
                .or_insert(0.0);
            *e = e.max(gap);
        }
    }
    f.client_view = Some(client_view(scenario, &f));
    Some(f)
}

/// How long the checker and IPVS took to take the server out, the
/// worst case for its check, and when a repair put it back.
fn detection(
    scenario: &Scenario,
    m: &Measurements,
    server: &ServerPlan,
    fault: &AppliedPhase,
    f: &mut Failover,
) {
    let (t_f, key) = (fault.t_s, server.destination_key());
    f.detection_s = m
        .ipvs_changes
        .iter()
        .find(|c| c.dest == key && c.t_s >= t_f && c.to.is_none_or(|w| w == 0))
        .map(|c| c.t_s - t_f);
    f.checker_detection_s = m
        .health_changes
        .iter()
        .find(|h| h.server == server.name && !h.up && h.t_s >= t_f)
        .map(|h| h.t_s - t_f);
    if let Some(hp) = health_plan(scenario, &m.plan)
        && let Some(check) = hp.checks.iter().find(|c| c.name == server.name)
    {
        let w = check.timing.worst_case();
        f.worst_case_refused_s = Some(w.refused.as_secs_f64());
        f.worst_case_timeout_s = Some(w.timeout.as_secs_f64());
        f.checker = Some(format!("{} {}", m.director.kind, check.kind.label()));
    } else {
        f.checker = Some(format!(
            "{} (no check for {})",
            m.director.kind, server.name
        ));
    }
    // The repair, and when IPVS had the server back at full weight.
    if let Some(t_r) = m
        .applied
        .iter()
        .find(|p| p.t_s > t_f && p.action.is_repair() && p.action.server() == fault.action.server())
        .map(|p| p.t_s)
    {
        let weight = server.destination.weight;
        f.readded_s = m
            .ipvs_changes
            .iter()
            .find(|c| c.dest == key && c.t_s >= t_r && c.to == Some(weight))
            .map(|c| c.t_s - t_r);
    }
}

/// One row per fault of `server`: detection until its repair (or the
/// next fault), the repair's re-add, and the RPCs that failed until the
/// next fault. A long run that flaps a server many times is judged flap by
/// flap, not only by its first fault.
fn flaps(m: &Measurements, server: &ServerPlan, buckets: &[Bucket]) -> Vec<Flap> {
    let key = server.destination_key();
    let mine = |p: &&AppliedPhase| {
        p.action
            .server()
            .and_then(|s| m.plan.server(s))
            .map(|s| &s.name)
            == Some(&server.name)
    };
    let faults: Vec<f64> = m
        .applied
        .iter()
        .filter(mine)
        .filter(|p| p.action.is_fault())
        .map(|p| p.t_s)
        .collect();
    faults
        .iter()
        .enumerate()
        .map(|(i, &t_f)| {
            let next = faults.get(i + 1).copied().unwrap_or(f64::INFINITY);
            let repaired_at_s = m
                .applied
                .iter()
                .filter(mine)
                .find(|p| p.t_s > t_f && p.t_s < next && p.action.is_repair())
                .map(|p| p.t_s);
            let until = repaired_at_s.unwrap_or(next);
            let detection_s = m
                .ipvs_changes
                .iter()
                .find(|c| {
                    c.dest == key && c.t_s >= t_f && c.t_s < until && c.to.is_none_or(|w| w == 0)
                })
                .map(|c| c.t_s - t_f);
            let readded_s = repaired_at_s.and_then(|t_r| {
                m.ipvs_changes
                    .iter()
                    .find(|c| {
                        c.dest == key
                            && c.t_s >= t_r
                            && c.t_s < next
                            && c.to == Some(server.destination.weight)
                    })
                    .map(|c| c.t_s - t_r)
            });
            let failed_rpcs = buckets
                .iter()
                .filter(|b| b.t_s + b.width_s > t_f && b.t_s < next)
                .map(|b| b.errors.values().sum::<u64>())
                .sum();
            Flap {
                fault_at_s: t_f,
                detection_s,
                repaired_at_s,
                readded_s,
                failed_rpcs,
            }
        })
        .collect()
}

/// One timeline bucket, summed over servers, on the report's time axis.
struct Bucket {
    t_s: f64,
    width_s: f64,
    ok: u64,
    errors: BTreeMap<String, u64>,
}

impl Bucket {
    /// No failed RPC and at least [`RECOVERED_RATE`] of `base` RPCs/s.
    fn recovered(&self, base: f64) -> bool {
        self.errors.values().sum::<u64>() == 0
            && self.ok as f64 / self.width_s >= RECOVERED_RATE * base
    }
}

/// Every round's buckets, each round after the ones before and their idle gaps.
fn buckets(scenario: &Scenario, m: &Measurements) -> Vec<Bucket> {
    let idle = scenario.file.load.idle.as_secs_f64();
    let mut buckets = Vec::new();
    let mut offset = 0.0;
    for r in &m.rounds {
        for b in &r.timeline {
            buckets.push(Bucket {
                t_s: offset + b.t_s,
                width_s: r.timeline_interval_s,
                ok: b.ok.values().sum(),
                errors: b.errors.clone(),
            });
        }
        offset += r.duration_s + idle;
    }
    buckets
}

/// The rate before the fault, the RPCs that failed after it, and when the
/// rate came back.
fn client_impact(buckets: &[Bucket], t_f: f64, f: &mut Failover) {
    let before: Vec<&Bucket> = buckets
        .iter()
        .filter(|b| b.t_s + b.width_s <= t_f)
        .collect();
    // The first bucket includes the ramp-up: leave it out when there is more.
    let steady = if before.len() > 1 {
        &before[1..]
    } else {
        &before[..]
    };
    if !steady.is_empty() {
        let secs: f64 = steady.iter().map(|b| b.width_s).sum();
        let ok: u64 = steady.iter().map(|b| b.ok).sum();
        f.baseline_rps = Some(ok as f64 / secs);
    }
    let after: Vec<&Bucket> = buckets.iter().filter(|b| b.t_s + b.width_s > t_f).collect();
    for b in &after {
        for (code, n) in &b.errors {
            *f.failed_rpcs_by_status.entry(code.clone()).or_default() += n;
        }
    }
    let Some(base) = f.baseline_rps else { return };
    // The last bucket may be cut short by the end of the load.
    let judged = if after.len() > 2 {
        &after[..after.len() - 1]
    } else {
        &after[..]
    };
    if let Some(last_bad) = judged.iter().rposition(|b| !b.recovered(base)) {
        if last_bad + 1 < judged.len() {
            f.recover_s = Some((judged[last_bad + 1].t_s - t_f).max(0.0));
        }
    } else if !judged.is_empty() {
        f.recover_s = Some(0.0);
    }
}

/// One sentence: did clients hang until the deadline, or fail fast?
fn client_view(scenario: &Scenario, f: &Failover) -> String {
    let deadline = scenario.file.load.timeout.as_secs_f64();
    let worst_gap = f
        .longest_blackhole_s
        .values()
        .copied()
        .fold(0.0_f64, f64::max);
    let total: u64 = f.failed_rpcs_by_status.values().sum();
    let dominant = f
        .failed_rpcs_by_status
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(c, _)| c.as_str());
    match dominant {
        None => format!(
            "no RPC failed; the longest stretch without a success for one client IP was {worst_gap:.2} s"
        ),
        Some(code) if super::expect::status_eq(code, "DeadlineExceeded") => format!(
            "clients hung until the {deadline:.1} s deadline: {total} failed RPCs, mostly DeadlineExceeded; longest stretch without a success {worst_gap:.2} s"
        ),
        Some(code) => format!(
            "fast errors and a reconnect: {total} failed RPCs, mostly {code}; longest stretch without a success {worst_gap:.2} s (deadline {deadline:.1} s)"
        ),
    }
}

/// Sentences comparing the measured detection with keepalived's worst case.
pub fn notes(f: &Failover) -> Vec<String> {
    let mut out = Vec::new();
    let server = f.failed_server.as_deref().unwrap_or("the server");
    if let (Some(d), Some(refused), Some(timeout)) = (
        f.detection_s,
        f.worst_case_refused_s,
        f.worst_case_timeout_s,
    ) {
        out.push(format!(
            "{} took {server} out of IPVS {d:.2} s after the fault; keepalived's worst case for these check settings is {refused:.1} s when connects are refused at once and {timeout:.1} s when they hang.",
            f.checker.as_deref().unwrap_or("the checker")
        ));
    } else if f.worst_case_refused_s.is_some() && f.detection_s.is_none() {
        out.push(format!(
            "The checker had not taken {server} out of IPVS when the load ended."
        ));
    }
    if let Some(r) = f.readded_s {
        out.push(format!(
            "{server} was back in IPVS {r:.2} s after the repair."
        ));
    }
    if let Some(v) = &f.client_view {
        out.push(format!("What clients saw: {v}."));
    }
    if f.flaps.len() > 1 {
        let detections: Vec<f64> = f.flaps.iter().filter_map(|p| p.detection_s).collect();
        let failed: u64 = f.flaps.iter().map(|p| p.failed_rpcs).sum();
        let (lo, hi) = (
            detections.iter().copied().fold(f64::INFINITY, f64::min),
            detections.iter().copied().fold(0.0_f64, f64::max),
        );
        out.push(format!(
            "{} faults of {server}: {} detected ({lo:.2}-{hi:.2} s), {} IPVS transitions, {failed} failed RPCs in all.",
            f.flaps.len(),
            detections.len(),
            f.ipvs_transitions
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::run::measurements::{AppliedPhase, IpvsChange};
    use crate::scenario::run::testdata::*;
    use crate::scenario::spec::PhaseAction;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn detection_is_timed_from_the_fault_to_the_ipvs_change() {
        let s = failover_scenario();
        let f = failover(&s, &failover_measurements(&s)).expect("a fault was applied");
        assert_eq!(f.failed_server.as_deref(), Some("rs1"));
        assert_eq!(f.fault_at_s, Some(FAULT_AT));
        assert_eq!(f.fault.as_deref(), Some("rs1 killed (SIGKILL)"));
        assert!(close(f.detection_s, IPVS_REMOVED_AT - FAULT_AT), "{f:?}");
        assert!(
            close(f.checker_detection_s, CHECKER_DOWN_AT - FAULT_AT),
            "{f:?}"
        );
        // keepalived's worst case for retry 3, delay_before_retry 3.
        let refused = f.worst_case_refused_s.expect("the server has a check");
        assert!((9.0..=10.0).contains(&refused), "{refused}");
        assert!(f.checker.as_deref().unwrap().starts_with("lab "), "{f:?}");
        // Not repaired in this run.
        assert_eq!(f.readded_s, None);
    }

    #[test]
    fn recovery_is_the_first_good_bucket_after_the_last_bad_one() {
        let s = failover_scenario();
        let f = failover(&s, &failover_measurements(&s)).unwrap();
        // Both servers at OK_PER_SERVER per 0.5 s before the fault; the
        // first bucket is left out as ramp-up.
        assert!(close(f.baseline_rps, 4.0 * OK_PER_SERVER as f64), "{f:?}");
        // Errors through the bucket holding the IPVS removal (10.5..11.0).
        assert!(close(f.recover_s, 11.0 - FAULT_AT), "{f:?}");
        assert_eq!(f.failed_rpcs_by_status["UNAVAILABLE"], 19 * 6);
        assert_eq!(f.longest_blackhole_s["10.0.0.1"], 0.24);
        let view = f.client_view.as_deref().unwrap();
        assert!(
            view.starts_with("fast errors and a reconnect: 114 failed RPCs, mostly UNAVAILABLE"),
            "{view}"
        );
    }

    #[test]
    fn a_repair_is_timed_until_ipvs_has_the_full_weight_back() {
        let s = failover_scenario();
        let mut m = failover_measurements(&s);
        let key = m.plan.servers[0].destination_key();
        m.applied.push(AppliedPhase {
            t_s: 12.0,
            action: PhaseAction::StartServer {
                server: "rs1".into(),
            },
        });
        m.ipvs_changes.push(IpvsChange {
            t_s: 12.75,
            dest: key,
            from: None,
            to: Some(1),
        });
        let f = failover(&s, &m).unwrap();
        assert!(close(f.readded_s, 0.75), "{f:?}");
        assert!(
            notes(&f)
                .iter()
                .any(|n| n == "rs1 was back in IPVS 0.75 s after the repair.")
        );
    }

    #[test]
    fn an_undetected_fault_says_so() {
        let s = failover_scenario();
        let mut m = failover_measurements(&s);
        m.ipvs_changes.clear();
        m.health_changes.clear();
        let f = failover(&s, &m).unwrap();
        assert_eq!((f.detection_s, f.checker_detection_s), (None, None));
        let notes = notes(&f);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("had not taken rs1 out of IPVS")),
            "{notes:?}"
        );
    }

    #[test]
    fn every_flap_is_timed_on_its_own() {
        let s = failover_scenario();
        let mut m = failover_measurements(&s);
        let key = m.plan.servers[0].destination_key();
        let phase = |t_s: f64, start: bool| AppliedPhase {
            t_s,
            action: if start {
                PhaseAction::StartServer {
                    server: "rs1".into(),
                }
            } else {
                PhaseAction::StopServer {
                    server: "172.22.35.1".into(),
                }
            },
        };
        let change = |t_s: f64, to: Option<i32>| IpvsChange {
            t_s,
            dest: key.clone(),
            from: None,
            to,
        };
        m.applied
            .extend([phase(12.0, true), phase(20.0, false), phase(40.0, true)]);
        m.ipvs_changes.extend([
            change(-2.0, Some(1)),
            change(13.0, Some(1)),
            change(29.5, None),
            change(44.0, Some(1)),
        ]);
        let f = failover(&s, &m).unwrap();
        assert_eq!(f.ipvs_transitions, 4, "{f:?}");
        assert_eq!(f.flaps.len(), 2, "{f:?}");
        assert!(close(f.flaps[0].detection_s, IPVS_REMOVED_AT - FAULT_AT));
        assert!(close(f.flaps[0].readded_s, 1.0));
        // Every failed RPC of the fixture falls before the second fault.
        assert_eq!(f.flaps[0].failed_rpcs, 19 * 6);
        assert!(close(f.flaps[1].detection_s, 9.5), "{:?}", f.flaps[1]);
        assert_eq!(f.flaps[1].repaired_at_s, Some(40.0));
        assert!(close(f.flaps[1].readded_s, 4.0));
        assert_eq!(f.flaps[1].failed_rpcs, 0);
        assert!(
            notes(&f)
                .iter()
                .any(|n| n
                    .starts_with("2 faults of rs1: 2 detected (9.15-9.50 s), 4 IPVS transitions")),
            "{:?}",
            notes(&f)
        );
    }

    #[test]
    fn no_fault_no_failover() {
        let s = failover_scenario();
        assert_eq!(failover(&s, &steady_measurements(&s)), None);
    }
}
