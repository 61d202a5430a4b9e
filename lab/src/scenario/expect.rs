//! The `[expect]` block, judged against a filled report. Pure: every
//! expectation is a function of the measurements, so each can be shown to
//! fail in a unit test.
//!
//! Timing figures are reported, never asserted: these machines are noisy.

use crate::report::fairness;
use crate::report::model::{ExpectationResult, FairnessBasis, GateSettings, Report, Verdict};

use super::spec::{
    AfterIdleExpectation, Basis, DistributionExpectation, DrainedTraffic, Expect, ScenarioFile,
};

/// Time after a drain or fault before its server's RPCs count against
/// `drained_traffic = "stops"`: RPCs already in flight may still finish.
pub const DRAIN_GRACE_S: f64 = 1.0;

/// Schedulers whose choice is a hash of an address (sh, mh, dh) or sticks to
/// the destination address (lblc, lblcr): their truth is the mapping, so
/// their split of client IPs against the weights is informational.
pub const HASH_SCHEDULERS: [&str; 5] = ["sh", "mh", "dh", "lblc", "lblcr"];

/// Whether `lb_algo` is one of [`HASH_SCHEDULERS`].
pub fn is_hash_scheduler(lb_algo: &str) -> bool {
    HASH_SCHEDULERS.contains(&lb_algo.to_ascii_lowercase().as_str())
}

/// The model's name for a basis.
pub fn fairness_basis(basis: Basis) -> FairnessBasis {
    match basis {
        Basis::Rpcs => FairnessBasis::Rpcs,
        Basis::Connections => FairnessBasis::Connections,
        Basis::ClientIps => FairnessBasis::ClientIps,
        Basis::Groups => FairnessBasis::Groups,
    }
}

/// The unit of balancing of a scenario and whether it was derived:
/// `[expect] basis` when given; otherwise client IPs (or persistence groups,
/// with a `persistence_granularity` coarser than /32) under persistence or a
/// hashing scheduler, since then the kernel decides once per client; else
/// connections, which rr/wrr/lc and their kin schedule one by one. RPCs are
/// never derived: only the client decides how RPCs ride on connections.
pub fn unit_of(file: &ScenarioFile) -> (FairnessBasis, bool) {
    if let Some(b) = file.expect.basis {
        return (fairness_basis(b), false);
    }
    let vs = &file.virtual_server;
    let persistent = vs.persistence_timeout.is_some_and(|t| t > 0);
    let unit = if persistent || is_hash_scheduler(&vs.lb_algo) {
        let grouped = persistent
            && vs
                .persistence_granularity
                .is_some_and(|g| g != std::net::Ipv4Addr::BROADCAST);
        if grouped {
            FairnessBasis::Groups
        } else {
            FairnessBasis::ClientIps
        }
    } else {
        FairnessBasis::Connections
    };
    (unit, true)
}

/// The statistical settings of a scenario: its `[expect]` values, or the
/// defaults of [`crate::report::fairness`].
pub fn gate_settings(file: &ScenarioFile) -> GateSettings {
    let (unit, unit_derived) = unit_of(file);
    let e = &file.expect;
    GateSettings {
        unit,
        unit_derived,
        alpha: e.alpha.unwrap_or(fairness::DEFAULT_ALPHA),
        margin: e.margin.unwrap_or(fairness::DEFAULT_MARGIN),
        baseline_margin: e.baseline_margin,
        error_budget: e.error_budget.unwrap_or(fairness::DEFAULT_ERROR_BUDGET),
    }
}

/// The defaults, for a report that carries no settings.
fn default_gate(unit: FairnessBasis) -> GateSettings {
    GateSettings {
        unit,
        unit_derived: true,
        alpha: fairness::DEFAULT_ALPHA,
        margin: fairness::DEFAULT_MARGIN,
        baseline_margin: None,
        error_budget: fairness::DEFAULT_ERROR_BUDGET,
    }
}

/// Judges every expectation present in `expect`, in the block's order.
pub fn evaluate(expect: &Expect, report: &Report) -> Vec<ExpectationResult> {
    [
        expect.distribution.map(|shape| distribution(report, shape)),
        expect
            .sticky_per_client
            .map(|want| sticky_per_client(report, want)),
        expect
            .min_clients_moved
            .map(|min| min_clients_moved(report, min)),
        expect.max_error_rate.map(|max| max_error_rate(report, max)),
        expect
            .templates_present
            .map(|want| templates_present(report, want)),
        expect
            .drained_traffic
            .map(|want| drained_traffic(report, want)),
        expect
            .fault_detected
            .map(|want| fault_detected(report, want)),
        expect
            .dominant_error
            .as_deref()
            .map(|want| dominant_error(report, want)),
        expect
            .first_rpc_after_idle
            .map(|want| first_rpc_after_idle(report, want)),
        expect
            .server_half_lingers
            .map(|want| server_half_lingers(report, want)),
        (expect.ipvs_consistent == Some(true)).then(|| {
            let (passed, detail) = ipvs_consistency(report);
            ExpectationResult::held("ipvs_consistent = true", passed, detail)
        }),
    ]
    .into_iter()
    .flatten()
    .chain(timer_expectations(expect, report))
    .chain(super::scheduler::evaluate(expect, report))
    .chain(super::stall::evaluate(expect, report))
    .chain(super::rebalance::evaluate(expect, report))
    .collect()
}

/// `distribution`: the shape of the counts on the scenario's unit
/// (`report.gate`, set by the assembly). `even` and `weighted` are judged by
/// Pearson's chi-square against the shares at `alpha`, after a power check.
fn distribution(report: &Report, shape: DistributionExpectation) -> ExpectationResult {
    let gate = report
        .gate
        .clone()
        .unwrap_or_else(|| default_gate(FairnessBasis::Connections));
    let counts = fairness::unit_counts(report, gate.unit);
    let unit = gate.unit.plural();
    let total: u64 = counts.iter().sum();
    let name = format!("distribution = {shape:?}").to_lowercase();
    let share_text = report
        .servers
        .iter()
        .zip(fairness::shares(&counts))
        .zip(&counts)
        .map(|((s, share), n)| format!("{} {n} ({:.1}%)", s.name, share * 100.0))
        .collect::<Vec<_>>()
        .join(", ");
    let receiving = counts.iter().filter(|&&c| c > 0).count();
    if total == 0 {
        return ExpectationResult::held(&name, false, format!("no {unit} were counted"));
    }
    match shape {
        DistributionExpectation::Even | DistributionExpectation::Weighted => {
            let weights: Vec<u32> = if shape == DistributionExpectation::Even {
                vec![1; counts.len()]
            } else {
                report.servers.iter().map(|s| s.weight).collect()
            };
            goodness_of_fit(&name, report, &gate, &counts, &weights, &share_text)
        }
        DistributionExpectation::Single => ExpectationResult::held(
            &name,
            receiving == 1,
            format!("{unit}: {share_text}; {receiving} server(s) received traffic"),
        ),
        DistributionExpectation::Spread => ExpectationResult::held(
            &name,
            receiving >= 2,
            format!("{unit}: {share_text}; {receiving} server(s) received traffic"),
        ),
    }
}

/// The chi-square verdict of `even`/`weighted`: cannot judge (too few
/// units for the margin), unfair (p ≤ alpha), fair, or informational for a
/// hashing scheduler.
fn goodness_of_fit(
    name: &str,
    report: &Report,
    gate: &GateSettings,
    counts: &[u64],
    weights: &[u32],
    share_text: &str,
) -> ExpectationResult {
    let unit = gate.unit.plural();
    let n: u64 = counts.iter().sum();
    let Some(f) = fairness::evaluate(gate.unit, counts, weights) else {
        return ExpectationResult::held(
            name,
            false,
            format!("no weighted server to judge {unit} on"),
        );
    };
    let figures = format!(
        "{unit}: {share_text}; chi-square {:.2} (dof {}), p = {:.3e}, alpha {:.0e}; \
         Cramér's V {:.3}, max/mean {:.3}, max deviation {:.1} points",
        f.chi2,
        f.dof,
        f.chi2_p,
        gate.alpha,
        f.cramers_v,
        f.max_over_mean,
        f.max_deviation * 100.0
    );
    let lb_algo = report.config.lb_algo.as_str();
    if is_hash_scheduler(lb_algo) {
        return ExpectationResult::judged(
            name,
            Verdict::Informational,
            format!(
                "informational: {lb_algo} maps each client by a hash, so its split against the weights is no verdict (mapping_stable judges it); {figures}"
            ),
        );
    }
    let needed = fairness::required_n(weights, gate.alpha, gate.margin, fairness::POWER);
    if n < needed {
        return ExpectationResult::judged(
            name,
            Verdict::CannotJudge,
            format!(
                "cannot judge: {} more {unit} needed ({n} counted; {needed} detect a {:.0}-point deviation at alpha {:.0e} with power {}); {figures}",
                needed - n,
                gate.margin * 100.0,
                gate.alpha,
                fairness::POWER
            ),
        );
    }
    if f.chi2_p <= gate.alpha {
        ExpectationResult::judged(name, Verdict::Fail, format!("unfair: {figures}"))
    } else {
        ExpectationResult::judged(
            name,
            Verdict::Pass,
            format!("fair ({n} {unit}, {needed} needed): {figures}"),
        )
    }
}

/// `sticky_per_client`: whether every client IP reached one server.
fn sticky_per_client(report: &Report, want: bool) -> ExpectationResult {
    let sticky = report
        .clients
        .iter()
        .filter(|c| c.servers_seen.len() == 1)
        .count();
    let n = report.clients.len();
    let passed = n > 0 && (sticky == n) == want;
    let detail = format!("{sticky} of {n} client IPs reached exactly one real server");
    ExpectationResult::held(format!("sticky_per_client = {want}"), passed, detail)
}

/// The expectations about timers over a long (time-travel) run: template
/// lifetimes, detection per flap, IPVS transitions.
fn timer_expectations(expect: &Expect, report: &Report) -> Vec<ExpectationResult> {
    [
        expect
            .template_lifetime_s
            .map(|range| template_lifetime(report, range)),
        expect.max_detection_s.map(|max| max_detection(report, max)),
        expect
            .ipvs_transitions
            .map(|want| ipvs_transitions(report, want)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `template_lifetime_s = [lo, hi]`.
fn template_lifetime(report: &Report, [lo, hi]: [f64; 2]) -> ExpectationResult {
    let timed: Vec<f64> = report
        .template_lives
        .iter()
        .filter(|l| !l.rearmed)
        .filter_map(|l| l.lifetime_s)
        .collect();
    let outside = timed.iter().filter(|t| !(lo..=hi).contains(*t)).count();
    let min = timed.iter().copied().reduce(f64::min);
    let max = timed.iter().copied().reduce(f64::max);
    let detail = match (min, max) {
        (Some(a), Some(b)) => format!(
            "{} expired template(s) lived {a:.1}-{b:.1} s after their newest connection; {outside} outside [{lo}, {hi}]",
            timed.len()
        ),
        _ => "no template expired while the connection table was sampled".into(),
    };
    ExpectationResult::held(
        format!("template_lifetime_s = [{lo}, {hi}]"),
        !timed.is_empty() && outside == 0,
        detail,
    )
}

/// `max_detection_s`: every flap detected within the bound.
fn max_detection(report: &Report, max: f64) -> ExpectationResult {
    let name = format!("max_detection_s = {max}");
    let Some(f) = &report.failover else {
        return ExpectationResult::held(&name, false, "no fault was applied".into());
    };
    let undetected = f.flaps.iter().filter(|p| p.detection_s.is_none()).count();
    let worst = f
        .flaps
        .iter()
        .filter_map(|p| p.detection_s)
        .fold(0.0_f64, f64::max);
    ExpectationResult::held(
        &name,
        !f.flaps.is_empty() && undetected == 0 && worst <= max,
        format!(
            "{} fault(s), {undetected} not detected before the repair; slowest detection {worst:.2} s",
            f.flaps.len()
        ),
    )
}

/// `ipvs_transitions`: the failed server's IPVS entry changed this often.
fn ipvs_transitions(report: &Report, want: u64) -> ExpectationResult {
    let got = report.failover.as_ref().map_or(0, |f| f.ipvs_transitions);
    ExpectationResult::held(
        format!("ipvs_transitions = {want}"),
        got == want,
        format!("{got} changes of the failed server's IPVS entry"),
    )
}

/// `min_clients_moved`: client IPs that reached more than one server.
fn min_clients_moved(report: &Report, min: u32) -> ExpectationResult {
    let moved = report
        .clients
        .iter()
        .filter(|c| c.servers_seen.len() > 1)
        .count();
    ExpectationResult::held(
        format!("min_clients_moved = {min}"),
        moved as u64 >= u64::from(min),
        format!(
            "{moved} of {} client IPs reached more than one real server",
            report.clients.len()
        ),
    )
}

/// `max_error_rate`: failed RPCs over attempted ones.
fn max_error_rate(report: &Report, max: f64) -> ExpectationResult {
    let rate = report.error_rate();
    ExpectationResult::held(
        format!("max_error_rate = {max}"),
        rate <= max && report.total_rpcs() > 0,
        format!(
            "{} failed of {} attempted RPCs ({:.3}%)",
            report.errors.total,
            report.total_rpcs() + report.errors.total,
            rate * 100.0
        ),
    )
}

/// `templates_present`: persistence templates seen during the run.
fn templates_present(report: &Report, want: bool) -> ExpectationResult {
    let end = report.conn_table.templates.len() as u64;
    let peak = report.conn_table.peak_templates.max(end);
    ExpectationResult::held(
        format!("templates_present = {want}"),
        (peak > 0) == want,
        format!(
            "up to {peak} persistence template(s) in /proc/net/ip_vs_conn during the run, {end} at the end"
        ),
    )
}

/// `drained_traffic`: RPCs a drained or broken server still answered.
fn drained_traffic(report: &Report, want: DrainedTraffic) -> ExpectationResult {
    let name = format!("drained_traffic = {want:?}").to_lowercase();
    let (passed, detail) = match drained_rpcs(report) {
        None => (false, "the scenario drained or broke no server".to_string()),
        Some((server, at, n)) => {
            let passed = match want {
                DrainedTraffic::Continues => n > 0,
                DrainedTraffic::Stops => n == 0,
            };
            (
                passed,
                format!(
                    "{server} answered {n} RPCs from {:.1} s on ({DRAIN_GRACE_S:.0} s after the change at {at:.2} s)",
                    at + DRAIN_GRACE_S
                ),
            )
        }
    };
    ExpectationResult::held(&name, passed, detail)
}

/// `fault_detected`: whether the faulty server left IPVS.
fn fault_detected(report: &Report, want: bool) -> ExpectationResult {
    let (passed, detail) = match &report.failover {
        Some(f) => match f.detection_s {
            Some(d) => (
                want,
                format!(
                    "{} left IPVS {d:.2} s after the fault",
                    f.failed_server.as_deref().unwrap_or("the server")
                ),
            ),
            None => (
                !want,
                format!(
                    "{} was still in IPVS with its weight when the load ended",
                    f.failed_server.as_deref().unwrap_or("the server")
                ),
            ),
        },
        None => (false, "the scenario injected no fault".to_string()),
    };
    ExpectationResult::held(format!("fault_detected = {want}"), passed, detail)
}

/// `first_rpc_after_idle`: every channel's first RPC after every gap
/// failed, or succeeded over its old connection. Cannot be judged without
/// a recorded gap.
fn first_rpc_after_idle(report: &Report, want: AfterIdleExpectation) -> ExpectationResult {
    let name = match want {
        AfterIdleExpectation::Fails => "first_rpc_after_idle = fails",
        AfterIdleExpectation::Succeeds => "first_rpc_after_idle = succeeds",
    };
    let gaps = report
        .connects
        .as_ref()
        .and_then(|c| c.idle.as_ref())
        .map(|i| i.gaps.as_slice())
        .unwrap_or_default();
    if gaps.iter().all(|g| g.channels == 0) {
        return ExpectationResult::judged(
            name,
            Verdict::CannotJudge,
            "no first RPC after an idle gap was recorded".into(),
        );
    }
    let passed = gaps.iter().all(|g| match want {
        AfterIdleExpectation::Fails => g.ok == 0,
        AfterIdleExpectation::Succeeds => g.ok == g.channels && g.reconnected == 0,
    });
    let detail = gaps
        .iter()
        .map(|g| {
            format!(
                "gap {}: {}/{} ok, {} reconnected",
                g.gap, g.ok, g.channels, g.reconnected
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    ExpectationResult::held(name, passed, detail)
}

/// `server_half_lingers`: the servers' half of the connections lost in a
/// gap, still established at the end (`true`: all of them) or not at all.
fn server_half_lingers(report: &Report, want: bool) -> ExpectationResult {
    let name = format!("server_half_lingers = {want}");
    let halves = report
        .connects
        .as_ref()
        .and_then(|c| c.idle.as_ref())
        .and_then(|i| i.server_halves.as_ref());
    let Some(h) = halves.filter(|h| h.lost > h.unseen) else {
        return ExpectationResult::judged(
            &name,
            Verdict::CannotJudge,
            "no connection lost in an idle gap was seen on a server".into(),
        );
    };
    let seen = h.lost - h.unseen;
    let passed = if want {
        h.still_established == seen
    } else {
        h.still_established == 0
    };
    ExpectationResult::held(
        &name,
        passed,
        format!(
            "{} of {seen} lost connections still established on their server in the last {:.0} s of load ({} never seen)",
            h.still_established,
            crate::report::model::ServerHalves::WINDOW_S,
            h.unseen
        ),
    )
}

/// `dominant_error`: the most frequent failure status.
fn dominant_error(report: &Report, want: &str) -> ExpectationResult {
    let top = report
        .errors
        .by_status
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(c, n)| (c.clone(), *n));
    let listing = report
        .errors
        .by_status
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (passed, detail) = match top {
        None => (false, "no RPC failed".to_string()),
        Some((code, _)) => (status_eq(&code, want), format!("failed RPCs: {listing}")),
    };
    ExpectationResult::held(format!("dominant_error = {want}"), passed, detail)
}

/// Whether two gRPC status names are the same code, whatever the spelling:
/// `DeadlineExceeded`, `DEADLINE_EXCEEDED` and `deadline_exceeded` agree.
pub fn status_eq(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| *c != '_')
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    norm(a) == norm(b)
}

/// The server the first fault or drain targeted, when it happened, and the
/// RPCs it answered in timeline buckets starting [`DRAIN_GRACE_S`] or more
/// after it.
pub fn drained_rpcs(report: &Report) -> Option<(String, f64, u64)> {
    let f = report.failover.as_ref()?;
    let server = f.failed_server.clone()?;
    let at = f.fault_at_s?;
    let n = report
        .timeline
        .buckets
        .iter()
        .filter(|b| b.t_s >= at + DRAIN_GRACE_S)
        .map(|b| b.ok.get(&server).copied().unwrap_or(0))
        .sum();
    Some((server, at, n))
}

/// Client tallies, server counters and IPVS statistics must tell one story:
/// - each server's own RPC counter equals what the clients attributed to it;
/// - IPVS scheduled as many connections to each destination as the server
///   accepted from client addresses;
/// - the director forwarded packets to every server that served RPCs;
/// - in DR the replies bypass the director: its outbound counters are 0.
pub fn ipvs_consistency(report: &Report) -> (bool, String) {
    let mut problems = Vec::new();
    let mut checked = 0;
    for s in &report.servers {
        if let Some(server_rpcs) = s.server_rpcs
            && server_rpcs != s.rpcs
        {
            problems.push(format!(
                "{}: clients counted {} RPCs, the server {}",
                s.name, s.rpcs, server_rpcs
            ));
        }
        let Some(dest) = report.ipvs_destination(s) else {
            problems.push(format!("{}: no IPVS destination for {}", s.name, s.address));
            continue;
        };
        checked += 1;
        if let Some(ipvs_conns) = s.ipvs_conns
            && ipvs_conns != s.connections
        {
            problems.push(format!(
                "{}: IPVS scheduled {} connections, the server accepted {} from clients",
                s.name, ipvs_conns, s.connections
            ));
        }
        if s.rpcs > 0 && dest.stats.inpkts == 0 {
            problems.push(format!(
                "{}: served {} RPCs but IPVS forwarded no packets to it",
                s.name, s.rpcs
            ));
        }
        if dest.stats.outpkts != 0 || dest.stats.outbytes != 0 {
            problems.push(format!(
                "{}: the director saw {} outbound packets; in DR replies must bypass it",
                s.name, dest.stats.outpkts
            ));
        }
    }
    if checked == 0 {
        problems.push("no IPVS statistics were collected".into());
    }
    let attributed = report
        .attribution
        .as_ref()
        .filter(|a| a.agree + a.disagree > 0);
    if let Some(a) = attributed.filter(|a| a.disagree > 0) {
        problems.push(format!(
            "the servers' identity and the kernel connection table disagree on {} of {} connections: {}",
            a.disagree,
            a.agree + a.disagree,
            a.mismatch_text()
        ));
    }
    if problems.is_empty() {
        let out: u64 = report.ipvs_destinations().map(|d| d.stats.outpkts).sum();
        let joined = attributed.map_or_else(String::new, |a| {
            format!(
                "; server identity and connection table agree on all {} connections both saw",
                a.agree
            )
        });
        (
            true,
            format!(
                "client, server and IPVS counts agree for {checked} server(s); director outbound packets {out} (DR){joined}"
            ),
        )
    } else {
        (false, problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::*;
    use std::collections::BTreeMap;

    fn server(name: &str, addr: &str, rpcs: u64, conns: u64) -> ServerResult {
        ServerResult {
            name: name.into(),
            address: addr.into(),
            weight: 1,
            rpcs,
            server_rpcs: Some(rpcs),
            connections: conns,
            ipvs_conns: Some(conns),
            ..Default::default()
        }
    }

    fn dest(addr: &str, conns: u64, inpkts: u64, outpkts: u64) -> IpvsDestination {
        IpvsDestination {
            address: addr.into(),
            port: 8080,
            weight: 1,
            forward: "dr".into(),
            stats: IpvsStats {
                conns,
                inpkts,
                outpkts,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn client(addr: &str, seen: &[(&str, u64)]) -> ClientResult {
        ClientResult {
            address: addr.into(),
            rpcs: seen.iter().map(|(_, n)| n).sum(),
            servers_seen: seen
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect::<BTreeMap<_, _>>(),
            sticky: seen.len() == 1,
            ..Default::default()
        }
    }

    fn report(rpcs: [u64; 2], conns: [u64; 2]) -> Report {
        Report {
            servers: vec![
                server("rs1", "172.22.35.1", rpcs[0], conns[0]),
                server("rs2", "172.22.35.2", rpcs[1], conns[1]),
            ],
            ipvs: IpvsSnapshot {
                services: vec![IpvsService {
                    destinations: vec![
                        dest("172.22.35.1", conns[0], 10 * rpcs[0], 0),
                        dest("172.22.35.2", conns[1], 10 * rpcs[1], 0),
                    ],
                    ..Default::default()
                }],
            },
            clients: vec![client("172.22.36.1", &[("rs1", rpcs[0])])],
            ..Default::default()
        }
    }

    fn expect() -> Expect {
        Expect::default()
    }

    /// `report` judged on `unit` with the default alpha and margin.
    fn on(mut r: Report, unit: FairnessBasis) -> Report {
        r.gate = Some(default_gate(unit));
        r
    }

    fn judge(e: &Expect, r: &Report) -> Vec<bool> {
        evaluate(e, r).iter().map(|x| x.passed).collect()
    }

    fn verdicts(e: &Expect, r: &Report) -> Vec<Verdict> {
        evaluate(e, r).iter().map(|x| x.verdict).collect()
    }

    #[test]
    fn timer_expectations_can_fail() {
        let mut r = Report::default();
        let mut e = Expect {
            template_lifetime_s: Some([1799.0, 1802.0]),
            max_detection_s: Some(10.0),
            ipvs_transitions: Some(2),
            ..Default::default()
        };
        let verdicts = |e: &Expect, r: &Report| -> Vec<bool> {
            timer_expectations(e, r).iter().map(|x| x.passed).collect()
        };
        // Nothing measured: each fails rather than passing vacuously.
        assert_eq!(verdicts(&e, &r), [false, false, false]);
        r.template_lives = vec![TemplateLife {
            lifetime_s: Some(1800.4),
            expired: true,
            ..Default::default()
        }];
        r.failover = Some(Failover {
            flaps: vec![Flap {
                fault_at_s: 5.0,
                detection_s: Some(9.6),
                ..Default::default()
            }],
            ipvs_transitions: 2,
            ..Default::default()
        });
        assert_eq!(verdicts(&e, &r), [true, true, true]);
        e.template_lifetime_s = Some([1900.0, 1930.0]);
        e.max_detection_s = Some(9.0);
        e.ipvs_transitions = Some(3);
        assert_eq!(verdicts(&e, &r), [false, false, false]);
        // An undetected flap fails whatever the bound.
        e.max_detection_s = Some(100.0);
        r.failover.as_mut().unwrap().flaps.push(Flap::default());
        assert!(!timer_expectations(&e, &r)[1].passed);
    }

    #[test]
    fn even_is_fair_unfair_or_cannot_judge() {
        let mut e = expect();
        e.distribution = Some(DistributionExpectation::Even);
        let conns = FairnessBasis::Connections;
        // 1,020 connections (822 needed), 500/520: fair.
        let fair = on(report([10, 10], [500, 520]), conns);
        assert_eq!(verdicts(&e, &fair), [Verdict::Pass]);
        // 700/320: p far below 1e-6.
        let unfair = on(report([10, 10], [700, 320]), conns);
        let r = &evaluate(&e, &unfair)[0];
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(!r.passed);
        assert!(r.detail.starts_with("unfair:"), "{}", r.detail);
        assert!(r.detail.contains("Cramér's V"), "{}", r.detail);
        // 8 connections: too few to tell, which is not "unfair" but fails.
        let small = on(report([10, 10], [4, 4]), conns);
        let r = &evaluate(&e, &small)[0];
        assert_eq!(r.verdict, Verdict::CannotJudge);
        assert!(!r.passed);
        let needed = fairness::required_n(&[1, 1], 1e-6, 0.10, fairness::POWER);
        let want = format!("cannot judge: {} more connections needed", needed - 8);
        assert!(r.detail.starts_with(&want), "{}", r.detail);
        // A wider margin makes the same sample judgeable... of 8: still not.
        let mut wide = small.clone();
        wide.gate.as_mut().unwrap().margin = 0.45;
        assert_eq!(verdicts(&e, &wide), [Verdict::CannotJudge]);
        // The same counts on RPCs, judged on RPCs.
        let rpcs = on(report([500, 520], [4, 4]), FairnessBasis::Rpcs);
        assert_eq!(verdicts(&e, &rpcs), [Verdict::Pass]);
    }

    #[test]
    fn a_hashing_scheduler_against_the_weights_is_informational() {
        let mut e = expect();
        e.distribution = Some(DistributionExpectation::Even);
        let mut r = on(report([10, 10], [900, 100]), FairnessBasis::Connections);
        assert_eq!(verdicts(&e, &r), [Verdict::Fail]);
        r.config.lb_algo = "sh".into();
        let got = &evaluate(&e, &r)[0];
        assert_eq!(got.verdict, Verdict::Informational);
        assert!(got.passed);
        assert!(
            got.detail.starts_with("informational: sh"),
            "{}",
            got.detail
        );
    }

    #[test]
    fn single_and_spread_shapes() {
        let even = on(report([500, 520], [4, 4]), FairnessBasis::Rpcs);
        let single = on(report([1000, 0], [8, 0]), FairnessBasis::Rpcs);
        let mut e = expect();
        e.distribution = Some(DistributionExpectation::Single);
        assert_eq!(judge(&e, &single), [true]);
        assert_eq!(judge(&e, &even), [false]);
        e.distribution = Some(DistributionExpectation::Spread);
        assert_eq!(judge(&e, &even), [true]);
        assert_eq!(judge(&e, &single), [false]);
    }

    #[test]
    fn weighted_uses_the_weights() {
        let mut r = on(report([10, 10], [750, 250]), FairnessBasis::Connections);
        r.servers[0].weight = 3;
        let mut e = expect();
        e.distribution = Some(DistributionExpectation::Weighted);
        assert_eq!(verdicts(&e, &r), [Verdict::Pass]);
        e.distribution = Some(DistributionExpectation::Even);
        assert_eq!(verdicts(&e, &r), [Verdict::Fail]);
    }

    #[test]
    fn client_ips_and_groups_are_counted_per_server() {
        let mut r = report([10, 10], [1, 1]);
        r.clients = vec![
            client("172.22.36.1", &[("rs1", 10)]),
            client("172.22.36.2", &[("rs1", 5), ("rs2", 5)]),
            client("172.22.37.1", &[("rs2", 3)]),
            client("172.22.37.2", &[("rs2", 0)]),
        ];
        // A moved IP counts toward each server it was given; 0 RPCs, none.
        assert_eq!(fairness::unit_counts(&r, FairnessBasis::ClientIps), [2, 2]);
        r.config.persistence_granularity = Some("255.255.255.0".into());
        // Two /24 groups: the first reached both servers, the second rs2.
        assert_eq!(fairness::unit_counts(&r, FairnessBasis::Groups), [1, 2]);
    }

    #[test]
    fn the_unit_follows_the_scheduler_and_persistence() {
        let file = |algo: &str, persistence: Option<u32>, gran: Option<&str>| {
            let mut f: ScenarioFile = toml::from_str(&format!(
                "description = \"t\"\n[virtual_server]\nvip = \"192.168.122.1\"\nport = 8080\nlb_algo = \"{algo}\"\n[[virtual_server.real_server]]\naddress = \"172.22.35.1\"\nport = 8080\n"
            ))
            .unwrap();
            f.virtual_server.persistence_timeout = persistence;
            f.virtual_server.persistence_granularity = gran.map(|g| g.parse().unwrap());
            f
        };
        assert_eq!(
            unit_of(&file("rr", None, None)),
            (FairnessBasis::Connections, true)
        );
        assert_eq!(
            unit_of(&file("wlc", Some(0), None)),
            (FairnessBasis::Connections, true)
        );
        assert_eq!(
            unit_of(&file("rr", Some(60), None)),
            (FairnessBasis::ClientIps, true)
        );
        assert_eq!(
            unit_of(&file("sh", None, None)),
            (FairnessBasis::ClientIps, true)
        );
        assert_eq!(
            unit_of(&file("rr", Some(60), Some("255.255.255.0"))),
            (FairnessBasis::Groups, true)
        );
        let mut rpcs = file("rr", Some(60), None);
        rpcs.expect.basis = Some(Basis::Rpcs);
        assert_eq!(unit_of(&rpcs), (FairnessBasis::Rpcs, false));
        let g = gate_settings(&rpcs);
        assert_eq!((g.alpha, g.margin, g.error_budget), (1e-6, 0.10, 0));
    }

    #[test]
    fn stickiness_and_moves() {
        let mut r = report([10, 10], [1, 1]);
        r.clients = vec![
            client("172.22.36.1", &[("rs1", 10)]),
            client("172.22.36.2", &[("rs1", 5), ("rs2", 5)]),
        ];
        let mut e = expect();
        e.sticky_per_client = Some(true);
        assert_eq!(judge(&e, &r), [false]);
        e.sticky_per_client = None;
        e.min_clients_moved = Some(1);
        assert_eq!(judge(&e, &r), [true]);
        e.min_clients_moved = Some(2);
        assert_eq!(judge(&e, &r), [false]);
        r.clients.pop();
        e.min_clients_moved = None;
        e.sticky_per_client = Some(true);
        assert_eq!(judge(&e, &r), [true]);
    }

    #[test]
    fn error_rate_and_templates() {
        let mut r = report([100, 100], [1, 1]);
        let mut e = expect();
        e.max_error_rate = Some(0.0);
        assert_eq!(judge(&e, &r), [true]);
        r.errors.total = 3;
        assert_eq!(judge(&e, &r), [false]);
        e.max_error_rate = None;
        e.templates_present = Some(true);
        assert_eq!(judge(&e, &r), [false]);
        r.conn_table.templates.push(PersistTemplate {
            client: "172.22.36.1".into(),
            dest: "172.22.35.1:8080".into(),
            expires_s: 59,
        });
        assert_eq!(judge(&e, &r), [true]);
    }

    #[test]
    fn drained_traffic_tells_continue_from_stop() {
        let mut r = report([100, 100], [1, 1]);
        let mut e = expect();
        e.drained_traffic = Some(DrainedTraffic::Stops);
        assert_eq!(judge(&e, &r), [false], "no drain happened");
        r.failover = Some(Failover {
            failed_server: Some("rs1".into()),
            fault_at_s: Some(1.0),
            ..Default::default()
        });
        let bucket = |t: f64, rs1: u64| TimelineBucket {
            t_s: t,
            ok: BTreeMap::from([("rs1".to_string(), rs1), ("rs2".to_string(), 50)]),
            errors: 0,
        };
        // rs1 answers during the grace second only: it stopped.
        r.timeline.buckets = vec![
            bucket(0.5, 40),
            bucket(1.5, 10),
            bucket(2.0, 0),
            bucket(2.5, 0),
        ];
        assert_eq!(judge(&e, &r), [true]);
        e.drained_traffic = Some(DrainedTraffic::Continues);
        assert_eq!(judge(&e, &r), [false]);
        r.timeline.buckets.push(bucket(3.0, 7));
        assert_eq!(judge(&e, &r), [true]);
        e.drained_traffic = Some(DrainedTraffic::Stops);
        assert_eq!(judge(&e, &r), [false]);
    }

    #[test]
    fn fault_detection_and_dominant_error() {
        let mut r = report([100, 100], [1, 1]);
        let mut e = expect();
        e.fault_detected = Some(true);
        assert_eq!(judge(&e, &r), [false], "no fault at all");
        r.failover = Some(Failover {
            failed_server: Some("rs1".into()),
            fault_at_s: Some(1.0),
            ..Default::default()
        });
        assert_eq!(judge(&e, &r), [false], "never left IPVS");
        r.failover.as_mut().unwrap().detection_s = Some(2.5);
        assert_eq!(judge(&e, &r), [true]);
        e.fault_detected = Some(false);
        assert_eq!(judge(&e, &r), [false]);

        let mut e = expect();
        e.dominant_error = Some("DeadlineExceeded".into());
        assert_eq!(judge(&e, &r), [false], "no error at all");
        r.errors.by_status = BTreeMap::from([
            ("DEADLINE_EXCEEDED".to_string(), 12),
            ("UNAVAILABLE".to_string(), 3),
        ]);
        assert_eq!(judge(&e, &r), [true]);
        e.dominant_error = Some("Unavailable".into());
        assert_eq!(judge(&e, &r), [false]);
    }

    #[test]
    fn ipvs_consistency_catches_each_disagreement() {
        let good = report([100, 80], [2, 2]);
        assert!(ipvs_consistency(&good).0, "{}", ipvs_consistency(&good).1);

        let mut server_disagrees = good.clone();
        server_disagrees.servers[0].server_rpcs = Some(99);
        assert!(!ipvs_consistency(&server_disagrees).0);

        let mut conns_disagree = good.clone();
        conns_disagree.servers[1].ipvs_conns = Some(3);
        assert!(!ipvs_consistency(&conns_disagree).0);

        let mut not_dr = good.clone();
        not_dr.ipvs.services[0].destinations[0].stats.outpkts = 7;
        assert!(!ipvs_consistency(&not_dr).0);

        let mut no_packets = good.clone();
        no_packets.ipvs.services[0].destinations[1].stats.inpkts = 0;
        assert!(!ipvs_consistency(&no_packets).0);

        let mut missing = good.clone();
        missing.ipvs.services.clear();
        assert!(!ipvs_consistency(&missing).0);

        let mut joined = good;
        joined.attribution = Some(crate::report::attribution::Attribution {
            agree: 5,
            ..Default::default()
        });
        let (ok, detail) = ipvs_consistency(&joined);
        assert!(
            ok && detail.contains("agree on all 5 connections"),
            "{detail}"
        );
        let a = joined.attribution.as_mut().unwrap();
        a.disagree = 1;
        a.mismatches.push(crate::report::attribution::Mismatch {
            client: "172.22.35.100:40000".into(),
            server_says: "rs1".into(),
            table_says: "rs2".into(),
        });
        let (ok, detail) = ipvs_consistency(&joined);
        assert!(!ok, "{detail}");
        assert!(detail.contains("disagree on 1 of 6 connections: 172.22.35.100:40000: server says rs1, table says rs2"), "{detail}");
    }
}
