//! What each IPVS scheduler promises, judged from the report: the hash
//! schedulers' mapping (`mapping_stable`, `remap_fraction_*`), the weight-0
//! drain (`weight_zero_receives_new`), the least-connection rule
//! (`least_connection_respected`), and the notes that name a scheduler's
//! own cause for a distribution.
//!
//! Pure functions of the [`Report`]: rounds ([`RoundResult`]) carry each
//! client IP's servers, phases ([`PhaseRecord`]) their real times, the IPVS
//! samples the kernel's connection counts once a second. An expectation
//! that has no data to judge on says "cannot judge" and fails.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use crate::report::model::{
    ExpectationResult, FairnessBasis, IdealSource, PhaseRecord, Report, RoundResult, Verdict,
    VirtualServerConfig,
};

use super::expect::is_hash_scheduler;
use super::spec::Expect;

/// Time after a weight change before a round's connections count as new:
/// a round that started this long after the change opened all of its
/// connections after it.
pub const NEW_CONN_GRACE_S: f64 = 1.0;

/// Time after a weight change before IPVS's `conns` counter counts against
/// it: the kernel copies the counter from per-CPU counters on its 2 s
/// estimator tick, so a read can be 2 s stale; plus one second of grace.
pub const COUNTER_LAG_S: f64 = 3.0;

/// `least_connection_respected`'s default spread of active connections per
/// unit of weight: lc decides one connection at a time, and a sample can
/// fall between a GOAWAY and the reconnect it causes.
pub const DEFAULT_ACTIVE_SPREAD: f64 = 2.0;

/// Fewest IPVS samples taken under load that `least_connection_respected`
/// judges on.
pub const MIN_LOADED_SAMPLES: usize = 3;

/// Where the report's "ideal" share comes from for this configuration.
pub fn ideal_source(config: &VirtualServerConfig) -> IdealSource {
    if is_hash_scheduler(&config.lb_algo) {
        IdealSource::KernelMapping
    } else {
        IdealSource::Weights
    }
}

/// For a hash scheduler the expected share of a server is what the
/// clients the kernel hashed to it sent: the mapping is the scheduler's
/// own promise, and the spread of client IPs over servers is informational.
/// Sets each server's `ideal_share` from the per-client attribution.
pub fn apply_kernel_mapping(report: &mut Report, unit: FairnessBasis) {
    if report.ideal_source != IdealSource::KernelMapping {
        return;
    }
    let counts: Vec<u64> = match unit {
        // RPCs: what the clients the kernel hashed to each server sent.
        FairnessBasis::Rpcs => {
            let mut per_server: BTreeMap<&str, u64> = BTreeMap::new();
            for c in &report.clients {
                for (server, n) in &c.servers_seen {
                    *per_server.entry(server.as_str()).or_default() += n;
                }
            }
            report
                .servers
                .iter()
                .map(|s| per_server.get(s.name.as_str()).copied().unwrap_or(0))
                .collect()
        }
        // Connections, client IPs, groups: the kernel's mapping of them is
        // what it did.
        FairnessBasis::Connections | FairnessBasis::ClientIps | FairnessBasis::Groups => {
            crate::report::fairness::unit_counts(report, unit)
        }
    };
    let shares = crate::report::fairness::shares(&counts);
    for (s, share) in report.servers.iter_mut().zip(shares) {
        s.ideal_share = share;
    }
}

fn result(name: String, passed: bool, detail: String) -> ExpectationResult {
    // An expectation without the data to judge says so in its detail.
    let verdict = match (passed, detail.starts_with("cannot judge")) {
        (true, _) => Verdict::Pass,
        (false, true) => Verdict::CannotJudge,
        (false, false) => Verdict::Fail,
    };
    ExpectationResult::judged(name, verdict, detail)
}

/// Judges the scheduler expectations present in `expect`.
pub fn evaluate(expect: &Expect, report: &Report) -> Vec<ExpectationResult> {
    let mut out = Vec::new();
    if let Some(want) = expect.mapping_stable {
        let mask = match expect.mapping_granularity {
            Some(m) if m == Ipv4Addr::BROADCAST => None,
            Some(m) => Some(m),
            None => group_mask(&report.config),
        };
        out.push(mapping_stable(report, want, mask));
    }
    if expect.remap_fraction_max.is_some() || expect.remap_fraction_min.is_some() {
        out.push(remap_fraction(
            report,
            expect.remap_fraction_min,
            expect.remap_fraction_max,
        ));
    }
    if let Some(want) = expect.weight_zero_receives_new {
        out.push(weight_zero_receives_new(report, want));
    }
    if let Some(want) = expect.least_connection_respected {
        let spread = expect.active_spread_max.unwrap_or(DEFAULT_ACTIVE_SPREAD);
        out.push(least_connection_respected(report, want, spread));
    }
    out
}

/// The persistence netmask that groups client IPs, when persistence is on.
pub fn group_mask(config: &VirtualServerConfig) -> Option<Ipv4Addr> {
    if config.persistence_timeout.unwrap_or(0) == 0 {
        return None;
    }
    config
        .persistence_granularity
        .as_deref()
        .and_then(|g| g.parse().ok())
        .filter(|m| *m != Ipv4Addr::BROADCAST)
}

/// The group a client address belongs to: its address under `mask`, or
/// itself.
pub fn group_of(client: &str, mask: Option<Ipv4Addr>) -> String {
    match (client.parse::<Ipv4Addr>(), mask) {
        (Ok(a), Some(m)) => Ipv4Addr::from(a.to_bits() & m.to_bits()).to_string(),
        _ => client.to_owned(),
    }
}

/// The per-round view of the clients; a report without rounds (older
/// reports) counts as one round of its per-client totals.
fn rounds_of(report: &Report) -> Vec<RoundResult> {
    if !report.rounds.is_empty() {
        return report.rounds.clone();
    }
    vec![RoundResult {
        clients: report
            .clients
            .iter()
            .map(|c| (c.address.clone(), c.servers_seen.clone()))
            .collect(),
        ..Default::default()
    }]
}

/// `mapping_stable`: each group (a client IP, or a persistence group)
/// reached one server over all its members and all rounds.
fn mapping_stable(report: &Report, want: bool, mask: Option<Ipv4Addr>) -> ExpectationResult {
    let name = format!("mapping_stable = {want}");
    let rounds = rounds_of(report);
    let mut groups: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for r in &rounds {
        for (client, seen) in &r.clients {
            let servers = groups.entry(group_of(client, mask)).or_default();
            servers.extend(
                seen.iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(s, _)| s.as_str()),
            );
        }
    }
    groups.retain(|_, s| !s.is_empty());
    if groups.is_empty() {
        return result(
            name,
            false,
            "cannot judge: no client IP completed an RPC".into(),
        );
    }
    let unit = match mask {
        Some(m) => format!("persistence groups (mask {m})"),
        None => "client IPs".to_owned(),
    };
    let stable = groups.values().filter(|s| s.len() == 1).count();
    let first_unstable = groups
        .iter()
        .find(|(_, s)| s.len() > 1)
        .map(|(g, s)| {
            format!(
                "; e.g. {g} reached {}",
                s.iter().copied().collect::<Vec<_>>().join(", ")
            )
        })
        .unwrap_or_default();
    let all = stable == groups.len();
    result(
        name,
        all == want,
        format!(
            "{stable} of {} {unit} reached one and the same server over {} round(s){first_unstable}",
            groups.len(),
            rounds.len()
        ),
    )
}

/// The server a client reached most in one round.
fn main_server(seen: &BTreeMap<String, u64>) -> Option<&str> {
    seen.iter()
        .filter(|(_, n)| **n > 0)
        .max_by_key(|(_, n)| **n)
        .map(|(s, _)| s.as_str())
}

/// How the client IPs moved across a destination change.
#[derive(Debug, Clone, PartialEq)]
pub struct Remap {
    /// The phase that changed the destinations.
    pub phase: PhaseRecord,
    /// The rounds compared (0-based): the last before, the first after.
    pub rounds: (usize, usize),
    /// Client IPs that completed RPCs in both rounds.
    pub compared: usize,
    /// Of those, the ones whose (main) server changed.
    pub moved: usize,
    /// Of the moved ones, those whose server left rotation (removed or
    /// weight 0): they had to move.
    pub forced: usize,
}

impl Remap {
    /// `moved / compared`.
    pub fn fraction(&self) -> f64 {
        if self.compared == 0 {
            0.0
        } else {
            self.moved as f64 / self.compared as f64
        }
    }
}

/// The remap across the first phase that changes the destination set,
/// or why it cannot be measured.
pub fn remap(report: &Report) -> Result<Remap, String> {
    let phase = report
        .phases
        .iter()
        .find(|p| {
            matches!(
                p.action.as_str(),
                "set_weight" | "remove_destination" | "add_destination"
            )
        })
        .ok_or("cannot judge: no phase removed, added or reweighted a real server")?;
    let t = phase.t_s;
    let before = report.rounds.iter().rposition(|r| r.end_s <= t);
    let after = report.rounds.iter().position(|r| r.start_s >= t);
    let (Some(b), Some(a)) = (before, after) else {
        return Err(format!(
            "cannot judge: the {} at {t:.2} s is not between two rounds (rounds at {}); put it in an idle gap",
            phase.action,
            report
                .rounds
                .iter()
                .map(|r| format!("{:.1}–{:.1} s", r.start_s, r.end_s))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let left_rotation = phase.action == "remove_destination" || phase.weight == Some(0);
    let (mut compared, mut moved, mut forced) = (0, 0, 0);
    for (client, seen) in &report.rounds[b].clients {
        let Some(was) = main_server(seen) else {
            continue;
        };
        let Some(now) = report.rounds[a].clients.get(client).and_then(main_server) else {
            continue;
        };
        compared += 1;
        if was != now {
            moved += 1;
            if left_rotation && phase.server.as_deref() == Some(was) {
                forced += 1;
            }
        }
    }
    if compared == 0 {
        return Err("cannot judge: no client IP completed RPCs in both rounds".into());
    }
    Ok(Remap {
        phase: phase.clone(),
        rounds: (b, a),
        compared,
        moved,
        forced,
    })
}

/// `remap_fraction_min` / `remap_fraction_max`.
fn remap_fraction(report: &Report, min: Option<f64>, max: Option<f64>) -> ExpectationResult {
    let bounds = match (min, max) {
        (Some(lo), Some(hi)) => format!("{lo} <= remap_fraction <= {hi}"),
        (Some(lo), None) => format!("remap_fraction >= {lo}"),
        (None, Some(hi)) => format!("remap_fraction <= {hi}"),
        (None, None) => "remap_fraction".to_owned(),
    };
    match remap(report) {
        Err(why) => result(bounds, false, why),
        Ok(r) => {
            let f = r.fraction();
            let passed = min.is_none_or(|lo| f >= lo) && max.is_none_or(|hi| f <= hi);
            let server = r.phase.server.as_deref().unwrap_or("?");
            let unforced = if r.forced == r.moved {
                String::new()
            } else {
                format!(
                    ", {} moved although their server stayed",
                    r.moved - r.forced
                )
            };
            result(
                bounds,
                passed,
                format!(
                    "{} of {} client IPs ({:.1} %) changed server between round {} and round {} across the {} of {server} at {:.2} s; {} of them had been on {server}{unforced}",
                    r.moved,
                    r.compared,
                    f * 100.0,
                    r.rounds.0 + 1,
                    r.rounds.1 + 1,
                    r.phase.action,
                    r.phase.t_s,
                    r.forced,
                ),
            )
        }
    }
}

/// New connections a weight-0 destination took after the change: per
/// round that started [`NEW_CONN_GRACE_S`] after it, and IPVS's `conns`
/// counter from [`COUNTER_LAG_S`] after it to the last sample.
#[derive(Debug, Clone, PartialEq)]
pub struct AfterDrain {
    /// The drained server and when.
    pub phase: PhaseRecord,
    /// Rounds that started after the change, and their connections to it.
    pub rounds: Vec<(usize, u64)>,
    /// Growth of the `conns` counter (first and last sample judged, and the
    /// growth), when two samples fall late enough.
    pub counter: Option<(f64, f64, u64)>,
}

impl AfterDrain {
    /// New connections seen by either source.
    pub fn new_connections(&self) -> u64 {
        self.rounds.iter().map(|(_, n)| n).sum::<u64>() + self.counter.map_or(0, |c| c.2)
    }
}

/// What reached the server of the first `set_weight … 0`, or why it cannot
/// be judged.
pub fn after_drain(report: &Report) -> Result<AfterDrain, String> {
    let phase = report
        .phases
        .iter()
        .find(|p| p.action == "set_weight" && p.weight == Some(0))
        .ok_or("cannot judge: no phase set a weight to 0")?;
    let server = phase.server.clone().unwrap_or_default();
    let t = phase.t_s;
    let rounds: Vec<(usize, u64)> = report
        .rounds
        .iter()
        .enumerate()
        .filter(|(_, r)| r.start_s >= t + NEW_CONN_GRACE_S)
        .map(|(i, r)| (i, r.connections.get(&server).copied().unwrap_or(0)))
        .collect();
    let address = report
        .servers
        .iter()
        .find(|s| s.name == server)
        .map(|s| s.address.clone());
    let conns_at: Vec<(f64, u64)> = report
        .ipvs_samples
        .iter()
        .filter(|s| s.t_s >= t + COUNTER_LAG_S)
        .filter_map(|s| {
            let d = s
                .destinations
                .iter()
                .find(|d| Some(&d.address) == address.as_ref())?;
            Some((s.t_s, d.conns))
        })
        .collect();
    let counter = match (conns_at.first(), conns_at.last()) {
        (Some(first), Some(last)) if conns_at.len() >= 2 => {
            Some((first.0, last.0, last.1.saturating_sub(first.1)))
        }
        _ => None,
    };
    if rounds.is_empty() && counter.is_none() {
        return Err(format!(
            "cannot judge: no round started {NEW_CONN_GRACE_S:.0} s after {server}'s weight went to 0 at {t:.2} s, and fewer than two IPVS samples fall {COUNTER_LAG_S:.0} s after it; add a round after the change or make the load longer"
        ));
    }
    Ok(AfterDrain {
        phase: phase.clone(),
        rounds,
        counter,
    })
}

/// `weight_zero_receives_new`.
fn weight_zero_receives_new(report: &Report, want: bool) -> ExpectationResult {
    let name = format!("weight_zero_receives_new = {want}");
    match after_drain(report) {
        Err(why) => result(name, false, why),
        Ok(d) => {
            let server = d.phase.server.as_deref().unwrap_or("?");
            let mut parts = Vec::new();
            if !d.rounds.is_empty() {
                parts.push(format!(
                    "{} new connection(s) in the round(s) {} that started after the change",
                    d.rounds.iter().map(|(_, n)| n).sum::<u64>(),
                    d.rounds
                        .iter()
                        .map(|(i, _)| (i + 1).to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if let Some((from, to, grew)) = d.counter {
                parts.push(format!(
                    "IPVS conns counter grew by {grew} from {from:.1} s to {to:.1} s"
                ));
            }
            let received = d.new_connections() > 0;
            result(
                name,
                received == want,
                format!(
                    "{server} weight 0 at {:.2} s: {}",
                    d.phase.t_s,
                    parts.join("; ")
                ),
            )
        }
    }
}

/// The spread of active connections per unit of weight at each IPVS sample
/// taken while a round's load ran: (time, max − min).
pub fn active_spreads(report: &Report) -> Vec<(f64, f64)> {
    report
        .ipvs_samples
        .iter()
        .filter(|s| {
            report
                .rounds
                .iter()
                .any(|r| s.t_s >= r.start_s && s.t_s <= r.end_s)
        })
        .filter_map(|s| {
            let per_weight: Vec<f64> = s
                .destinations
                .iter()
                .filter(|d| d.weight > 0)
                .map(|d| f64::from(d.active) / f64::from(d.weight))
                .collect();
            let total: u32 = s.destinations.iter().map(|d| d.active).sum();
            if per_weight.len() < 2 || total == 0 {
                return None;
            }
            let max = per_weight.iter().copied().fold(f64::MIN, f64::max);
            let min = per_weight.iter().copied().fold(f64::MAX, f64::min);
            Some((s.t_s, max - min))
        })
        .collect()
}

/// `least_connection_respected`: lc (wlc) sends each new connection to the
/// destination with the fewest active connections (per weight), so when
/// connection lifetimes differ between servers, it keeps ActiveConn level
/// where rr lets the long-lived servers pile up. Judged on the median
/// spread over the samples under load, because one sample can fall between
/// a batch of GOAWAYs and the reconnects they cause.
fn least_connection_respected(report: &Report, want: bool, spread_max: f64) -> ExpectationResult {
    let name = format!("least_connection_respected = {want}");
    let spreads = active_spreads(report);
    if spreads.len() < MIN_LOADED_SAMPLES {
        return result(
            name,
            false,
            format!(
                "cannot judge: {} IPVS sample(s) with active connections fell inside a round, {MIN_LOADED_SAMPLES} needed; make the load longer",
                spreads.len()
            ),
        );
    }
    let mut sorted: Vec<f64> = spreads.iter().map(|(_, s)| *s).collect();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let (worst_t, worst) = spreads
        .iter()
        .copied()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("not empty");
    let respected = median <= spread_max;
    result(
        name,
        respected == want,
        format!(
            "median spread of ActiveConn per weight over {} samples under load: {median:.1} (lc keeps it within {spread_max}); worst {worst:.1} at {worst_t:.1} s",
            spreads.len()
        ),
    )
}

/// Why every RPC reached one server, when a scheduler hashes it there:
/// dh hashes the destination (one VIP, one server); sh and mh hash the
/// source (one client IP, or one persistence group, one server).
pub fn single_server_cause(report: &Report) -> Option<String> {
    let receiving: Vec<&str> = report
        .servers
        .iter()
        .filter(|s| s.rpcs > 0)
        .map(|s| s.name.as_str())
        .collect();
    if receiving.len() != 1 || report.servers.len() < 2 {
        return None;
    }
    let server = receiving[0];
    let algo = report.config.lb_algo.as_str();
    match algo {
        "dh" | "lblc" | "lblcr" => Some(format!(
            "All RPCs reached {server} because {algo} schedules by a hash of the destination address: every connection goes to the one VIP {}, so one server takes them all. This is the scheduler's rule, not HTTP/2 channels; dh spreads only over many destination addresses.",
            report.config.vip
        )),
        "sh" | "mh" => {
            let groups = groups_of_clients(report);
            (groups.len() == 1).then(|| {
                format!(
                    "All RPCs reached {server} because {algo} schedules by a hash of the source address and every client shares one {}: one hash, one server.",
                    if group_mask(&report.config).is_some() { "persistence group" } else { "IP" }
                )
            })
        }
        _ => None,
    }
}

/// Client addresses per group (persistence granularity applied).
fn groups_of_clients(report: &Report) -> BTreeMap<String, Vec<&str>> {
    let mask = group_mask(&report.config);
    let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for c in &report.clients {
        groups
            .entry(group_of(&c.address, mask))
            .or_default()
            .push(c.address.as_str());
    }
    groups
}

/// The persistence note for many client IPs in one round: how IPVS placed
/// them, in the unit persistence really uses.
pub fn persistence_spread_note(report: &Report, timeout: u32) -> String {
    let clients = report.clients.len();
    let sticky = report.clients.iter().filter(|c| c.sticky).count();
    let used: BTreeSet<&str> = report
        .clients
        .iter()
        .flat_map(|c| c.servers_seen.keys().map(String::as_str))
        .collect();
    let groups = groups_of_clients(report);
    let grouping = match group_mask(&report.config) {
        Some(m) if groups.len() < clients => format!(
            " persistence_granularity {m} put the {clients} client IPs into {} group(s), one template each, so IPVS placed {} unit(s), not {clients}.",
            groups.len(),
            groups.len()
        ),
        _ => String::new(),
    };
    if used.len() <= 1 {
        format!(
            "persistence_timeout {timeout}: all {clients} client IPs reached one real server{}.{grouping}",
            used.iter()
                .next()
                .map(|s| format!(", {s}"))
                .unwrap_or_default()
        )
    } else {
        format!(
            "persistence_timeout {timeout}: {sticky} of {clients} client IPs stayed on one real server; IPVS spread the client {} over {} servers, not the connections.{grouping}",
            if grouping.is_empty() { "IPs" } else { "groups" },
            used.len()
        )
    }
}

/// Notes on whose persistence templates these are: a template of a masked
/// group address belongs to the clients of that group; only the rest are
/// foreign.
pub fn template_owner_notes(report: &Report) -> Vec<String> {
    let groups = groups_of_clients(report);
    let masked = group_mask(&report.config).is_some();
    let clients: BTreeSet<&str> = report.clients.iter().map(|c| c.address.as_str()).collect();
    let mut group_templates = Vec::new();
    let mut foreign = 0;
    for t in &report.conn_table.templates {
        // A group address can also be a client's own (172.22.37.0 in a
        // range that crosses a /24): under a mask it is the group's.
        match groups.get(&t.client) {
            Some(members) if masked => {
                group_templates.push(format!("{} ({} client IPs)", t.client, members.len()))
            }
            _ if clients.contains(t.client.as_str()) => {}
            _ => foreign += 1,
        }
    }
    let mut notes = Vec::new();
    if !group_templates.is_empty() {
        notes.push(format!(
            "{} template(s) belong to persistence groups, the client addresses under persistence_granularity {}: {}.",
            group_templates.len(),
            report.config.persistence_granularity.as_deref().unwrap_or("?"),
            group_templates.join(", ")
        ));
    }
    if foreign > 0 {
        notes.push(format!(
            "{foreign} template(s) belong to addresses that are neither clients nor their persistence groups."
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::*;

    fn seen(server: &str, n: u64) -> BTreeMap<String, u64> {
        BTreeMap::from([(server.to_owned(), n)])
    }

    /// A round from (client, server) pairs, 10 RPCs each.
    fn round(start_s: f64, end_s: f64, map: &[(&str, &str)]) -> RoundResult {
        let mut connections: BTreeMap<String, u64> = BTreeMap::new();
        for (_, s) in map {
            *connections.entry((*s).to_owned()).or_default() += 1;
        }
        RoundResult {
            start_s,
            end_s,
            clients: map
                .iter()
                .map(|(c, s)| ((*c).to_owned(), seen(s, 10)))
                .collect(),
            connections,
        }
    }

    fn servers(names: &[&str]) -> Vec<ServerResult> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| ServerResult {
                name: (*n).into(),
                address: format!("172.22.35.{}", i + 1),
                weight: 1,
                ..Default::default()
            })
            .collect()
    }

    fn report(algo: &str, rounds: Vec<RoundResult>) -> Report {
        let mut clients: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for r in &rounds {
            for (c, s) in &r.clients {
                let e = clients.entry(c.clone()).or_default();
                for (k, n) in s {
                    *e.entry(k.clone()).or_default() += n;
                }
            }
        }
        Report {
            config: VirtualServerConfig {
                vip: "192.168.122.1".into(),
                lb_algo: algo.into(),
                ..Default::default()
            },
            servers: servers(&["rs1", "rs2", "rs3", "rs4"]),
            clients: clients
                .into_iter()
                .map(|(address, servers_seen)| ClientResult {
                    rpcs: servers_seen.values().sum(),
                    sticky: servers_seen.len() == 1,
                    address,
                    servers_seen,
                    ..Default::default()
                })
                .collect(),
            rounds,
            ..Default::default()
        }
    }

    fn judge(e: &Expect, r: &Report) -> Vec<bool> {
        evaluate(e, r).iter().map(|x| x.passed).collect()
    }

    const A: &str = "172.22.36.1";
    const B: &str = "172.22.36.2";
    const C: &str = "172.22.37.1";

    #[test]
    fn mapping_stable_needs_one_server_per_ip_in_every_round() {
        let stable = report(
            "sh",
            vec![
                round(0.0, 2.0, &[(A, "rs1"), (B, "rs2"), (C, "rs3")]),
                round(3.0, 5.0, &[(A, "rs1"), (B, "rs2"), (C, "rs3")]),
            ],
        );
        let e = Expect {
            mapping_stable: Some(true),
            ..Default::default()
        };
        assert_eq!(judge(&e, &stable), [true]);
        let mut moved = stable.clone();
        moved.rounds[1] = round(3.0, 5.0, &[(A, "rs1"), (B, "rs4"), (C, "rs3")]);
        assert_eq!(judge(&e, &moved), [false]);
        let e = Expect {
            mapping_stable: Some(false),
            ..Default::default()
        };
        assert_eq!(judge(&e, &moved), [true]);
        assert_eq!(judge(&e, &stable), [false]);
        // Nothing measured: cannot judge, whatever is wanted.
        assert_eq!(judge(&e, &report("sh", vec![])), [false]);
    }

    #[test]
    fn mapping_stable_groups_clients_by_the_granularity_mask() {
        let mut r = report(
            "rr",
            vec![round(0.0, 2.0, &[(A, "rs1"), (B, "rs2"), (C, "rs3")])],
        );
        let e = Expect {
            mapping_stable: Some(true),
            ..Default::default()
        };
        // Without persistence each IP is its own unit: stable.
        assert_eq!(judge(&e, &r), [true]);
        // With a /24 group, A and B share one template: they must agree.
        r.config.persistence_timeout = Some(60);
        r.config.persistence_granularity = Some("255.255.255.0".into());
        let results = evaluate(&e, &r);
        assert!(!results[0].passed);
        assert!(
            results[0].detail.contains("1 of 2 persistence groups"),
            "{}",
            results[0].detail
        );
        r.rounds[0] = round(0.0, 2.0, &[(A, "rs2"), (B, "rs2"), (C, "rs3")]);
        assert_eq!(judge(&e, &r), [true]);
        // A scenario that declares its /24 unit still judges by it when the
        // service lost its granularity (the mutated twin).
        r.rounds[0] = round(0.0, 2.0, &[(A, "rs1"), (B, "rs2"), (C, "rs3")]);
        r.config.persistence_granularity = None;
        assert_eq!(judge(&e, &r), [true]);
        let declared = Expect {
            mapping_stable: Some(true),
            mapping_granularity: Some(Ipv4Addr::new(255, 255, 255, 0)),
            ..Default::default()
        };
        assert_eq!(judge(&declared, &r), [false]);
    }

    fn remap_report(after: &[(&str, &str)], phase_at: f64) -> Report {
        let before: Vec<(&str, &str)> = vec![
            ("172.22.36.1", "rs1"),
            ("172.22.36.2", "rs2"),
            ("172.22.36.3", "rs3"),
            ("172.22.36.4", "rs4"),
        ];
        let mut r = report("mh", vec![round(0.0, 2.0, &before), round(3.5, 5.5, after)]);
        r.phases = vec![PhaseRecord {
            t_s: phase_at,
            action: "remove_destination".into(),
            server: Some("rs4".into()),
            weight: None,
        }];
        r
    }

    #[test]
    fn remap_fraction_counts_clients_whose_server_changed() {
        // Only rs4's client moved: 1 of 4, forced.
        let minimal = remap_report(
            &[
                ("172.22.36.1", "rs1"),
                ("172.22.36.2", "rs2"),
                ("172.22.36.3", "rs3"),
                ("172.22.36.4", "rs1"),
            ],
            2.7,
        );
        let m = remap(&minimal).unwrap();
        assert_eq!((m.compared, m.moved, m.forced, m.rounds), (4, 1, 1, (0, 1)));
        // Everyone moved: 4 of 4, one forced.
        let reshuffled = remap_report(
            &[
                ("172.22.36.1", "rs2"),
                ("172.22.36.2", "rs3"),
                ("172.22.36.3", "rs1"),
                ("172.22.36.4", "rs2"),
            ],
            2.7,
        );
        assert_eq!(remap(&reshuffled).unwrap().moved, 4);
        let max = Expect {
            remap_fraction_max: Some(0.3),
            ..Default::default()
        };
        assert_eq!(judge(&max, &minimal), [true]);
        assert_eq!(judge(&max, &reshuffled), [false]);
        let min = Expect {
            remap_fraction_min: Some(0.5),
            ..Default::default()
        };
        assert_eq!(judge(&min, &minimal), [false]);
        assert_eq!(judge(&min, &reshuffled), [true]);
    }

    #[test]
    fn remap_cannot_be_judged_without_a_phase_between_rounds() {
        let e = Expect {
            remap_fraction_max: Some(1.0),
            ..Default::default()
        };
        // The phase falls inside round 2: no clean before and after.
        let inside = remap_report(&[("172.22.36.1", "rs1")], 4.0);
        let r = evaluate(&e, &inside);
        assert!(
            !r[0].passed && r[0].detail.starts_with("cannot judge"),
            "{}",
            r[0].detail
        );
        let mut none = inside;
        none.phases.clear();
        assert_eq!(judge(&e, &none), [false]);
    }

    fn drain_report(round2_rs1_conns: u64, counter: &[(f64, u64)]) -> Report {
        let mut r = report(
            "mh",
            vec![
                round(0.0, 2.0, &[(A, "rs1"), (B, "rs2")]),
                round(4.0, 6.0, &[(A, "rs3"), (B, "rs2")]),
            ],
        );
        r.rounds[1]
            .connections
            .insert("rs1".into(), round2_rs1_conns);
        r.phases = vec![PhaseRecord {
            t_s: 2.5,
            action: "set_weight".into(),
            server: Some("rs1".into()),
            weight: Some(0),
        }];
        r.ipvs_samples = counter
            .iter()
            .map(|&(t_s, conns)| IpvsSampleRow {
                t_s,
                destinations: vec![IpvsDestSample {
                    address: "172.22.35.1".into(),
                    conns,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
        r
    }

    #[test]
    fn weight_zero_receives_new_reads_rounds_and_the_conns_counter() {
        let e = Expect {
            weight_zero_receives_new: Some(false),
            ..Default::default()
        };
        assert_eq!(judge(&e, &drain_report(0, &[])), [true]);
        assert_eq!(judge(&e, &drain_report(3, &[])), [false]);
        // The counter grows after the lag: new connections, even though the
        // round's clients missed them.
        let grew = drain_report(0, &[(1.0, 10), (6.0, 12), (7.0, 15)]);
        assert_eq!(judge(&e, &grew), [false]);
        // Growth before the lag has passed is the estimator catching up.
        let stale = drain_report(0, &[(3.0, 12), (6.0, 15), (7.0, 15)]);
        assert_eq!(judge(&e, &stale), [true]);
        let e = Expect {
            weight_zero_receives_new: Some(true),
            ..Default::default()
        };
        assert_eq!(judge(&e, &drain_report(3, &[])), [true]);
        // No round after, no samples: cannot judge.
        let mut blind = drain_report(0, &[]);
        blind.rounds.pop();
        let r = evaluate(&e, &blind);
        assert!(!r[0].passed && r[0].detail.starts_with("cannot judge"));
    }

    fn lc_report(actives: &[[u32; 4]]) -> Report {
        let mut r = report("lc", vec![round(0.0, 10.0, &[(A, "rs1")])]);
        r.ipvs_samples = actives
            .iter()
            .enumerate()
            .map(|(i, a)| IpvsSampleRow {
                t_s: 1.0 + i as f64,
                destinations: a
                    .iter()
                    .enumerate()
                    .map(|(j, &active)| IpvsDestSample {
                        address: format!("172.22.35.{}", j + 1),
                        weight: 1,
                        active,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        r
    }

    #[test]
    fn least_connection_tells_level_active_counts_from_piled_up_ones() {
        let e = Expect {
            least_connection_respected: Some(true),
            ..Default::default()
        };
        // lc: level, with one transient sample after a batch of GOAWAYs.
        let level = lc_report(&[
            [16, 16, 16, 16],
            [15, 16, 17, 16],
            [0, 16, 16, 16],
            [16, 17, 16, 15],
        ]);
        assert_eq!(judge(&e, &level), [true]);
        // rr with one short-lived server: its actives drain, the others pile up.
        let piled = lc_report(&[
            [10, 18, 18, 18],
            [4, 20, 20, 20],
            [1, 21, 21, 21],
            [0, 21, 21, 22],
        ]);
        assert_eq!(judge(&e, &piled), [false]);
        let e = Expect {
            least_connection_respected: Some(false),
            ..Default::default()
        };
        assert_eq!(judge(&e, &piled), [true]);
        // Samples outside every round, or too few: cannot judge.
        let mut idle = level.clone();
        idle.rounds[0].end_s = 0.5;
        assert_eq!(judge(&e, &idle), [false]);
        // Weights normalise: wlc with weights 2:1 keeps 2:1 actives.
        let mut wlc = lc_report(&[[32, 16, 16, 16], [31, 16, 16, 15], [32, 16, 17, 16]]);
        for s in &mut wlc.ipvs_samples {
            s.destinations[0].weight = 2;
        }
        let e = Expect {
            least_connection_respected: Some(true),
            ..Default::default()
        };
        assert_eq!(judge(&e, &wlc), [true]);
    }

    #[test]
    fn dh_names_destination_hashing_as_the_cause() {
        let mut r = report("dh", vec![round(0.0, 2.0, &[(A, "rs1"), (B, "rs1")])]);
        r.servers[0].rpcs = 20;
        let note = single_server_cause(&r).expect("one server took all");
        assert!(note.contains("destination address"), "{note}");
        assert!(note.contains("192.168.122.1"), "{note}");
        assert!(note.contains("not HTTP/2 channels"), "{note}");
        // rr putting everything on one server is not a hash's doing.
        r.config.lb_algo = "rr".into();
        assert_eq!(single_server_cause(&r), None);
        // sh with two client IPs that hash apart is no single-server story;
        // with a /24 persistence group they are one unit.
        r.config.lb_algo = "sh".into();
        assert_eq!(single_server_cause(&r), None);
        r.config.persistence_timeout = Some(60);
        r.config.persistence_granularity = Some("255.255.255.0".into());
        let note = single_server_cause(&r).expect("one group");
        assert!(note.contains("persistence group"), "{note}");
    }

    #[test]
    fn persistence_note_does_not_claim_a_spread_onto_one_server() {
        let mut r = report("rr", vec![round(0.0, 2.0, &[(A, "rs1"), (B, "rs1")])]);
        r.config.persistence_timeout = Some(60);
        let one = persistence_spread_note(&r, 60);
        assert!(!one.contains("spread"), "{one}");
        assert!(
            one.contains("all 2 client IPs reached one real server, rs1"),
            "{one}"
        );
        r.config.persistence_granularity = Some("255.255.255.0".into());
        let grouped = persistence_spread_note(&r, 60);
        assert!(grouped.contains("into 1 group(s)"), "{grouped}");
        let spread = report("rr", vec![round(0.0, 2.0, &[(A, "rs1"), (C, "rs2")])]);
        let note = persistence_spread_note(&spread, 60);
        assert!(
            note.contains("IPVS spread the client IPs over 2 servers"),
            "{note}"
        );
    }

    #[test]
    fn group_templates_are_not_foreign() {
        let mut r = report("rr", vec![round(0.0, 2.0, &[(A, "rs1"), (B, "rs1")])]);
        r.config.persistence_timeout = Some(60);
        r.config.persistence_granularity = Some("255.255.255.0".into());
        let template = |client: &str| PersistTemplate {
            client: client.into(),
            dest: "172.22.35.1:8080".into(),
            expires_s: 50,
        };
        // 172.22.37.0 is a client and the address of its own /24 group.
        r.clients.push(ClientResult {
            address: "172.22.37.0".into(),
            ..Default::default()
        });
        r.conn_table.templates = vec![template("172.22.36.0"), template("172.22.37.0")];
        let notes = template_owner_notes(&r);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("2 template(s) belong to persistence groups"),
            "{notes:?}"
        );
        assert!(
            notes[0].contains("172.22.36.0 (2 client IPs), 172.22.37.0 (1 client IPs)"),
            "{notes:?}"
        );
        assert!(!notes[0].contains("not clients"), "{notes:?}");
        r.conn_table.templates.push(template("10.9.9.0"));
        let notes = template_owner_notes(&r);
        assert!(
            notes[1].contains("1 template(s) belong to addresses that are neither"),
            "{notes:?}"
        );
        // Without the mask the group address 172.22.36.0 is foreign, and
        // 172.22.37.0 is a client's own.
        r.config.persistence_granularity = None;
        let notes = template_owner_notes(&r);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("2 template(s) belong to addresses that are neither"),
            "{notes:?}"
        );
    }

    #[test]
    fn hash_schedulers_take_the_ideal_from_the_kernel_mapping() {
        let mut r = report(
            "sh",
            vec![round(0.0, 2.0, &[(A, "rs1"), (B, "rs1"), (C, "rs2")])],
        );
        r.ideal_source = ideal_source(&r.config);
        assert_eq!(r.ideal_source, IdealSource::KernelMapping);
        apply_kernel_mapping(&mut r, FairnessBasis::Rpcs);
        let ideal: Vec<f64> = r.servers.iter().map(|s| s.ideal_share).collect();
        assert!(
            (ideal[0] - 2.0 / 3.0).abs() < 1e-9 && (ideal[1] - 1.0 / 3.0).abs() < 1e-9,
            "{ideal:?}"
        );
        assert_eq!(ideal[2], 0.0);
        r.config.lb_algo = "wrr".into();
        assert_eq!(ideal_source(&r.config), IdealSource::Weights);
    }
}
