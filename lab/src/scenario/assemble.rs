//! From what a run measured to the report: every independent view side by
//! side, fairness, plain-language notes, and the verdict of `[expect]`.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::Scenario;
use super::attribution::{PerClientRpcs, Servers, attribute, client_conns};
use super::expect::{evaluate, gate_settings, is_hash_scheduler};
use super::run::Measurements;
use super::run::measurements::IpvsSample;
use crate::ipvs::IpvsTable;
use crate::report::attribution::{Attribution, AttributionMethod};
use crate::report::fairness;
use crate::report::hgrm;
use crate::report::model::*;
use crate::report::resources::TablePeaks;

/// Builds the report and the merged latency histogram (µs) of all rounds.
pub fn assemble(scenario: &Scenario, m: &Measurements) -> (Report, Option<Histogram<u64>>) {
    let file = &scenario.file;
    let mut report = Report {
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            description: file.description.clone(),
            path: Some(scenario.path.display().to_string()),
        },
        runner: runner_info(),
        started_at: m.started_at.clone(),
        duration_s: m.elapsed.as_secs_f64(),
        timing: Some(Timing {
            bringup_ms: m.bringup.as_secs_f64() * 1000.0,
            teardown_ms: m.teardown.as_secs_f64() * 1000.0,
            real_servers: file.virtual_server.real_servers.len() as u32,
            client_ips: file.network.client_ips,
        }),
        config: config(scenario, m),
        load: serde_json::to_value(&file.load).unwrap_or_default(),
        ..Default::default()
    };

    report.ipvs = ipvs_snapshot(&m.ipvs);
    report.conn_table = conn_summary(&m.conn_table);
    report.conn_table.peak_templates = m
        .samples
        .iter()
        .map(|s| s.templates as u64)
        .chain(std::iter::once(report.conn_table.templates.len() as u64))
        .max()
        .unwrap_or(0);

    report.resources = resources(m);
    if let Some(tables) = table_peaks(m, file.network.client_ips) {
        report.resources.get_or_insert_with(Default::default).tables = Some(tables);
    }
    let tallies = ClientTallies::of(&m.rounds);
    report.errors = ErrorSummary {
        total: tallies.errors_by_status.values().sum(),
        by_status: tallies.errors_by_status.clone(),
    };
    let weights: Vec<u32> = file
        .virtual_server
        .real_servers
        .iter()
        .map(|r| r.weight.max(0) as u32)
        .collect();
    report.servers = server_results(&report, m, &tallies, &weights);
    report.clients = client_results(m);
    let (attribution, per_client) = attribution(m);
    if let Some(a) = &attribution
        && a.method == AttributionMethod::KernelTable
        && a.connections > 0
    {
        from_table(&mut report, a, &per_client);
    }
    report.attribution = attribution;
    let gate = gate_settings(file);
    let counts = fairness::unit_counts(&report, gate.unit);
    report.fairness = fairness::evaluate(gate.unit, &counts, &weights).map(|mut f| {
        f.informational = is_hash_scheduler(&file.virtual_server.lb_algo);
        f
    });
    let unit = gate.unit;
    report.gate = Some(gate);

    let merged = merged_histogram(&m.rounds);
    if let Some(h) = &merged {
        let mut summary = hgrm::latency_summary(h);
        summary.histogram_b64 = hgrm::encode_histogram_b64(h).ok();
        report.latency_us = Some(summary);
    }
    report.connects = connects(&m.rounds);
    report.timeline = timeline(&m.rounds, file.load.idle.as_secs_f64());
    report.rounds = round_results(m, file.load.idle.as_secs_f64());
    let load_end_s = report.rounds.last().map(|r| r.end_s);
    if let (Some(idle), Some(end_s)) = (
        report.connects.as_mut().and_then(|c| c.idle.as_mut()),
        load_end_s,
    ) {
        idle.server_halves = Some(server_halves(&idle.records, &m.server_peers, end_s));
    }
    report.phases = phase_records(m);
    report.ideal_source = super::scheduler::ideal_source(&report.config);
    super::scheduler::apply_kernel_mapping(&mut report, unit);
    report.events = m.events.clone();
    report.ipvs_samples = m
        .samples
        .iter()
        .map(|s| IpvsSampleRow {
            t_s: s.t_s,
            templates: s.templates as u64,
            destinations: s.destinations.clone(),
        })
        .collect();
    let persistence_s = f64::from(file.virtual_server.persistence_timeout.unwrap_or(0));
    if persistence_s > 0.0 {
        report.template_lives =
            super::templates::template_lives(&m.conn_log, &m.plan, persistence_s);
    }
    report.director = Some(director_report(&m.director));
    report.failover = super::failover::failover(scenario, m);
    report.rebalance = super::rebalance::measure(file, &report);

    report.notes = notes(scenario, &report, m);
    if let Some(note) = unit_override_note(scenario) {
        report.notes.push(note);
    }
    if let Some(f) = &report.failover {
        report.notes.extend(super::failover::notes(f));
    }
    report.notes.extend(super::templates::notes(
        &report.template_lives,
        persistence_s,
    ));
    report.notes.extend(super::byo_view::notes(m));
    if let Some(cross) = ipvsadm_cross_check(m) {
        report.notes.push(cross);
    }
    report.expectations = evaluate(&file.expect, &report);
    report.passed = report.expectations.iter().all(|e| e.passed);
    (report, merged)
}

/// Said of every report timed under UML time travel.
pub const TIME_TRAVEL_NOTE: &str = "Time travel: the guest booted with `time-travel`, so its clock skipped every idle stretch. Every duration, phase time, idle gap, timeline and detection time in this report is guest time, the clock the kernel's IPVS and TCP timers saw. The load was paced (open loop), so the guest had idle time to skip; a latency is the guest's time for that RPC.";

/// Names an `[expect] basis` that differs from the unit the scheduler and
/// persistence give, so a reader knows the scenario chose what it counts.
fn unit_override_note(scenario: &Scenario) -> Option<String> {
    let mut derived_file = scenario.file.clone();
    derived_file.expect.basis = None;
    let (derived, _) = super::expect::unit_of(&derived_file);
    let (chosen, was_derived) = super::expect::unit_of(&scenario.file);
    (!was_derived && chosen != derived).then(|| {
        format!(
            "[expect] basis = \"{}\" counts {} per server; the unit of balancing of {}{} is {}.",
            chosen.as_str(),
            chosen.plural(),
            scenario.file.virtual_server.lb_algo,
            if scenario
                .file
                .virtual_server
                .persistence_timeout
                .is_some_and(|t| t > 0)
            {
                " with persistence"
            } else {
                ""
            },
            derived.plural()
        )
    })
}

/// The kernel this process runs on.
fn runner_info() -> RunnerInfo {
    let current = crate::runner::describe_current();
    RunnerInfo {
        kind: match current.kind {
            crate::runner::RunnerKind::Host => RunnerKind::Host,
            crate::runner::RunnerKind::Uml => RunnerKind::Uml,
        },
        kernel: current.release,
        kernel_origin: current.origin.map(|o| o.as_str().to_owned()),
        kernel_source: current.source,
        build: Some(crate::report::model::BuildInfo::of_this_binary()),
        clock: if crate::runner::guest_time_travel() {
            crate::report::model::ClockMode::Travel
        } else {
            crate::report::model::ClockMode::Real
        },
    }
}

/// The virtual server as configured, with each real server's check.
fn config(scenario: &Scenario, m: &Measurements) -> VirtualServerConfig {
    let vs = &scenario.file.virtual_server;
    VirtualServerConfig {
        vip: vs.vip.to_string(),
        port: vs.port,
        protocol: vs.protocol.clone(),
        lb_algo: vs.lb_algo.clone(),
        lb_kind: vs.lb_kind.clone(),
        persistence_timeout: vs.persistence_timeout,
        persistence_granularity: vs.persistence_granularity.map(|g| g.to_string()),
        delay_loop_s: Some(vs.delay_loop),
        inhibit_on_failure: vs.inhibit_on_failure,
        real_servers: m
            .plan
            .servers
            .iter()
            .zip(&vs.real_servers)
            .map(|(p, rs)| RealServerConfig {
                name: p.name.clone(),
                address: p.address.to_string(),
                port: p.port,
                weight: rs.weight.max(0) as u32,
                health_check: rs
                    .tcp_check
                    .as_ref()
                    .map(|c| HealthCheckConfig {
                        kind: "TCP_CHECK".into(),
                        connect_timeout_s: Some(c.connect_timeout),
                        retry: Some(c.retry),
                        delay_before_retry_s: Some(c.delay_before_retry),
                        connect_port: c.connect_port,
                        warmup_s: c.warmup,
                        alpha: c.alpha,
                        service: None,
                    })
                    .or_else(|| {
                        rs.grpc_check.as_ref().map(|c| HealthCheckConfig {
                            kind: "GRPC_CHECK".into(),
                            connect_timeout_s: Some(c.connect_timeout),
                            retry: Some(c.retry),
                            delay_before_retry_s: Some(c.delay_before_retry),
                            connect_port: None,
                            warmup_s: c.warmup,
                            alpha: false,
                            service: Some(c.service.clone()),
                        })
                    }),
            })
            .collect(),
    }
}

/// The load generator's own tallies, summed over rounds.
struct ClientTallies {
    /// Successful RPCs per server name.
    rpcs: BTreeMap<String, u64>,
    /// Failed RPCs per gRPC status.
    errors_by_status: BTreeMap<String, u64>,
    /// RPCs during warm-ups, not attributed per server.
    warmup_rpcs: u64,
}

impl ClientTallies {
    fn of(rounds: &[bench::report::LoadReport]) -> Self {
        let mut t = ClientTallies {
            rpcs: BTreeMap::new(),
            errors_by_status: BTreeMap::new(),
            warmup_rpcs: 0,
        };
        for r in rounds {
            for s in &r.servers {
                *t.rpcs.entry(s.name.clone()).or_default() += s.rpcs;
            }
            for (code, n) in &r.status_codes {
                if code != "OK" {
                    *t.errors_by_status.entry(code.clone()).or_default() += n;
                }
            }
            t.warmup_rpcs += r.warmup_rpcs;
        }
        t
    }
}

/// Per real server: what clients, the server itself and IPVS counted.
/// Needs `report.ipvs` filled.
fn server_results(
    report: &Report,
    m: &Measurements,
    tallies: &ClientTallies,
    weights: &[u32],
) -> Vec<ServerResult> {
    let ideal = fairness::ideal_shares(weights);
    let from_table = super::byo_view::connections_by_server(m);
    let mut servers: Vec<ServerResult> = m
        .plan
        .servers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let ipvs_conns = report
                .ipvs_destinations()
                .find(|d| d.address == p.address.to_string())
                .map(|d| d.stats.conns);
            let own = m.server_counts.get(i).copied().flatten();
            ServerResult {
                name: p.name.clone(),
                address: p.address.to_string(),
                weight: weights[i],
                rpcs: tallies.rpcs.get(&p.name).copied().unwrap_or(0),
                // With a warm-up the servers also counted warm-up RPCs,
                // which the load generator does not attribute per server.
                server_rpcs: if tallies.warmup_rpcs == 0 {
                    own.map(|o| o.rpcs)
                } else {
                    None
                },
                // A user's server cannot be asked: the kernel's table counts.
                connections: match own {
                    Some(o) => o.connections,
                    None if m.user_servers.get(i).copied().unwrap_or(false) => {
                        from_table.get(&p.name).copied().unwrap_or(0)
                    }
                    None => 0,
                },
                ipvs_conns,
                share: 0.0,
                ideal_share: ideal[i],
            }
        })
        .collect();
    // Without the load generator (the user's client only) there are no
    // RPC counts: the shares are of connections.
    let counts: Vec<u64> = if m.client.is_some() && m.rounds.is_empty() {
        servers.iter().map(|s| s.connections).collect()
    } else {
        servers.iter().map(|s| s.rpcs).collect()
    };
    for (s, share) in servers.iter_mut().zip(fairness::shares(&counts)) {
        s.share = share;
    }
    servers
}

/// The join of the load generator's connections with the connection table;
/// `None` when there is neither (nothing to attribute).
fn attribution(m: &Measurements) -> (Option<Attribution>, PerClientRpcs) {
    let conns = client_conns(&m.rounds, &m.round_windows);
    if conns.is_empty() && m.conn_log.samples() == 0 {
        return (None, PerClientRpcs::new());
    }
    let (a, per_client) = attribute(&conns, &m.conn_log, &Servers::of(&m.plan), &m.server_peers);
    (Some(a), per_client)
}

/// The replies named no server: per-server RPCs (and connections, where
/// the server could not say) and each client's servers come from the table.
fn from_table(report: &mut Report, a: &Attribution, per_client: &PerClientRpcs) {
    for s in &mut report.servers {
        let Some(t) = a.per_server.get(&s.name) else {
            continue;
        };
        s.rpcs = t.rpcs;
        if s.connections == 0 {
            s.connections = t.table_connections;
        }
    }
    let counts: Vec<u64> = report.servers.iter().map(|s| s.rpcs).collect();
    for (s, share) in report.servers.iter_mut().zip(fairness::shares(&counts)) {
        s.share = share;
    }
    for c in &mut report.clients {
        let Some(seen) = c
            .address
            .parse::<std::net::IpAddr>()
            .ok()
            .and_then(|ip| per_client.get(&ip))
        else {
            continue;
        };
        c.servers_seen = seen
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        c.rpcs = c.servers_seen.values().sum();
        c.sticky = c.servers_seen.len() == 1;
    }
}

/// Per client IP: the servers it reached, its errors and connections.
fn client_results(m: &Measurements) -> Vec<ClientResult> {
    let per_client = servers_per_client(&m.rounds);
    // With the user's client or servers, the kernel's table knows who went
    // where when no reply named its server.
    let from_table = if m.client.is_some() || m.user_servers.iter().any(|u| *u) {
        super::byo_view::connections_by_client(m)
    } else {
        BTreeMap::new()
    };
    let mut client_errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut client_conns: BTreeMap<String, u64> = BTreeMap::new();
    for r in &m.rounds {
        for s in &r.sources {
            *client_errors.entry(s.address.clone()).or_default() += s.errors;
            *client_conns.entry(s.address.clone()).or_default() += s.connections;
        }
    }
    let planned = |name: &str| m.plan.servers.iter().any(|s| s.name == name);
    m.plan
        .client_addresses
        .iter()
        .map(|a| {
            let address = a.to_string();
            let seen = per_client.get(&address).cloned().unwrap_or_default();
            let rpcs = seen.values().sum();
            let mut seen: BTreeMap<String, u64> = seen
                .into_iter()
                .filter(|(name, n)| *n > 0 && planned(name))
                .collect();
            let table = from_table.get(&address);
            // Never RPCs and connections mixed: the table only when the
            // replies named no server.
            if seen.is_empty()
                && let Some(t) = table
            {
                seen = t.clone();
            }
            let table_conns = table.map(|t| t.values().sum::<u64>());
            let round_conns = client_conns.get(&address).copied();
            ClientResult {
                rpcs,
                sticky: seen.len() == 1,
                servers_seen: seen,
                // The table holds the load generator's connections too.
                connections: if m.client.is_some() {
                    table_conns.or(round_conns)
                } else {
                    round_conns
                },
                errors: client_errors.get(&address).copied().unwrap_or(0),
                address,
            }
        })
        .collect()
}

/// The rounds' connect figures summed; latency and the SYN-retry buckets
/// from their histograms added (percentiles are not averaged). None when no
/// round reported a connect (reports from before the field).
fn connects(rounds: &[bench::report::LoadReport]) -> Option<Connects> {
    let mut out = Connects::default();
    let mut merged: Option<Histogram<u64>> = None;
    for r in rounds {
        let c = &r.connects;
        out.attempts += c.attempts;
        out.ok += c.ok;
        for (k, v) in &c.failed_by_cause {
            *out.failed_by_cause.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &c.ended_by {
            *out.ended_by.entry(k.clone()).or_default() += v;
        }
        if let Ok(h) = hgrm::decode_histogram_b64(&c.histogram_b64) {
            match &mut merged {
                Some(acc) => {
                    let _ = acc.add(&h);
                }
                None => merged = Some(h),
            }
        }
    }
    if out.attempts == 0 {
        return None;
    }
    out.idle = rounds.last().and_then(|r| idle_outcomes(&r.connects));
    if let Some(h) = &merged {
        out.latency_us = hgrm::latency_summary(h);
        out.latency_us.histogram_b64 = hgrm::encode_histogram_b64(h).ok();
        (out.syn_retry_1s, out.syn_retry_3s) = bench::connects::syn_retry_counts(h);
    }
    Some(out)
}

/// The per-gap summary of loadgen's connection records (None when it kept
/// none: channels not kept through gaps, and no keepalive).
fn idle_outcomes(c: &bench::report::ConnectReport) -> Option<IdleOutcomes> {
    if c.records.is_empty() {
        return None;
    }
    let mut gaps: BTreeMap<u32, GapOutcome> = BTreeMap::new();
    for seen in c.records.iter().flat_map(|r| &r.after_idle) {
        let g = gaps.entry(seen.gap).or_insert_with(|| GapOutcome {
            gap: seen.gap,
            ..GapOutcome::default()
        });
        g.channels += 1;
        g.ok += u64::from(seen.ok());
        g.reconnected += u64::from(seen.reconnected);
        *g.by_outcome.entry(seen.outcome.clone()).or_default() += 1;
        if !seen.server.is_empty() {
            *g.by_server.entry(seen.server.clone()).or_default() += 1;
        }
        if !seen.ok() && g.first_error.is_empty() {
            g.first_error = seen.detail.clone();
        }
    }
    Some(IdleOutcomes {
        gaps: gaps.into_values().collect(),
        keepalive: c.keepalive.clone(),
        records: c.records.clone(),
        records_dropped: c.records_dropped,
        // Filled once the servers' peers are joined in (`assemble`).
        server_halves: None,
    })
}

/// Every round's latency histogram added into one.
fn merged_histogram(rounds: &[bench::report::LoadReport]) -> Option<Histogram<u64>> {
    let mut merged: Option<Histogram<u64>> = None;
    for r in rounds {
        if let Ok(h) = hgrm::decode_histogram_b64(&r.histogram_b64) {
            match &mut merged {
                Some(acc) => {
                    let _ = acc.add(&h);
                }
                None => merged = Some(h),
            }
        }
    }
    merged
}

/// The real servers' half of the connections whose first RPC after a gap
/// failed: still established near the end of the load (`end_s`), closed,
/// or never seen by a read of the servers' peers.
fn server_halves(
    records: &[bench::report::ConnRecord],
    peers: &[super::run::peers::PeerLog],
    end_s: f64,
) -> ServerHalves {
    let mut out = ServerHalves::default();
    for r in records
        .iter()
        .filter(|r| r.after_idle.iter().any(|a| !a.ok()))
    {
        out.lost += 1;
        let last = r
            .local
            .parse::<std::net::SocketAddr>()
            .ok()
            .and_then(|local| {
                peers
                    .iter()
                    .filter_map(|p| p.peers.get(&local).map(|(_, last)| *last))
                    .reduce(f64::max)
            });
        match last {
            None => out.unseen += 1,
            Some(t) if t >= end_s - ServerHalves::WINDOW_S => out.still_established += 1,
            Some(_) => {}
        }
    }
    out
}

/// The rounds' timelines on one axis: each round starts after the ones
/// before it and their idle gaps.
fn timeline(rounds: &[bench::report::LoadReport], idle_s: f64) -> Timeline {
    let mut offset = 0.0;
    let mut buckets = Vec::new();
    let mut bucket_s = 0.5;
    for r in rounds {
        bucket_s = r.timeline_interval_s;
        for b in &r.timeline {
            buckets.push(TimelineBucket {
                t_s: offset + b.t_s,
                ok: b.ok.clone(),
                errors: b.errors.values().sum(),
            });
        }
        offset += r.duration_s + idle_s;
    }
    Timeline { bucket_s, buckets }
}

/// The applied phases, each server named as the plan names it.
fn phase_records(m: &Measurements) -> Vec<PhaseRecord> {
    use super::spec::PhaseAction;
    m.applied
        .iter()
        .map(|a| {
            let action = serde_json::to_value(&a.action)
                .ok()
                .and_then(|v| v.get("action").and_then(|x| x.as_str()).map(str::to_owned))
                .unwrap_or_default();
            let server = a.action.server().map(|name| {
                m.plan
                    .servers
                    .iter()
                    .find(|s| s.name == name || s.address.to_string() == name)
                    .map_or_else(|| name.to_owned(), |s| s.name.clone())
            });
            let weight = match a.action {
                PhaseAction::SetWeight { weight, .. } => Some(weight),
                _ => None,
            };
            PhaseRecord {
                t_s: a.t_s,
                action,
                server,
                weight,
            }
        })
        .collect()
}

/// Each round on the report's time axis, with its per-client mapping.
/// Without recorded starts the rounds are placed end to end with the idle
/// gaps between (an early bound: each loadgen also needs time to start).
fn round_results(m: &Measurements, idle_s: f64) -> Vec<RoundResult> {
    let mut offset = 0.0;
    m.rounds
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let start_s = m.round_starts_s.get(i).copied().unwrap_or(offset);
            offset = start_s + r.duration_s + idle_s;
            RoundResult {
                start_s,
                end_s: start_s + r.duration_s,
                clients: r
                    .sources
                    .iter()
                    .map(|src| {
                        let seen = src
                            .servers
                            .iter()
                            .filter(|(_, n)| **n > 0)
                            .map(|(k, n)| (k.clone(), *n))
                            .collect();
                        (src.address.clone(), seen)
                    })
                    .collect(),
                connections: r
                    .servers
                    .iter()
                    .map(|s| (s.name.clone(), s.connections))
                    .collect(),
            }
        })
        .collect()
}

/// Who managed IPVS, with keepalived's log lines stamped.
fn director_report(d: &super::run::measurements::DirectorInfo) -> DirectorReport {
    DirectorReport {
        kind: d.kind.clone(),
        keepalived_conf: d.keepalived_conf.clone(),
        populated_s: d.populated_s,
        keepalived_log: d
            .keepalived_log
            .iter()
            .map(|l| format!("{:8.3} {}", l.t_s, l.line))
            .collect(),
    }
}

fn ipvs_snapshot(table: &IpvsTable) -> IpvsSnapshot {
    IpvsSnapshot {
        services: table
            .services
            .iter()
            .map(|s| {
                let svc = &s.entry.service;
                IpvsService {
                    protocol: svc.protocol.name().to_string(),
                    address: svc.address.to_string(),
                    port: svc.port,
                    scheduler: svc.scheduler.clone(),
                    persistent: svc.persistence.is_some(),
                    timeout: svc.persistence.as_ref().map_or(0, |p| p.timeout_s),
                    netmask: svc.persistence.as_ref().map(|p| p.netmask.to_string()),
                    stats: stats(&s.entry.stats),
                    destinations: s
                        .destinations
                        .iter()
                        .map(|d| IpvsDestination {
                            address: d.destination.address.to_string(),
                            port: d.destination.port,
                            weight: d.destination.weight.max(0) as u32,
                            forward: d.destination.forward.ipvsadm_name().to_string(),
                            active_conns: d.active_conns,
                            inactive_conns: d.inactive_conns,
                            persist_conns: d.persist_conns,
                            stats: stats(&d.stats),
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}

fn stats(s: &crate::ipvs::Stats) -> IpvsStats {
    IpvsStats {
        conns: s.conns,
        inpkts: s.inpkts,
        outpkts: s.outpkts,
        inbytes: s.inbytes,
        outbytes: s.outbytes,
    }
}

fn conn_summary(entries: &[crate::ipvs::ConnEntry]) -> ConnTableSummary {
    let mut summary = ConnTableSummary::default();
    for e in entries {
        if e.is_template {
            summary.templates.push(PersistTemplate {
                client: e.client.ip().to_string(),
                dest: e.dest.to_string(),
                expires_s: u64::from(e.expires_s),
            });
        } else {
            *summary.connections.entry(e.dest.to_string()).or_default() += 1;
        }
    }
    summary
}

/// Compares the netlink counters with `ipvsadm -Ln --stats --exact`.
fn ipvsadm_cross_check(m: &Measurements) -> Option<String> {
    let text = m.ipvsadm_stats.as_ref()?;
    let mut agree = 0;
    let mut disagree = Vec::new();
    for svc in &m.ipvs.services {
        for d in &svc.destinations {
            let needle = format!("{}:{}", d.destination.address, d.destination.port);
            let Some(line) = text
                .lines()
                .find(|l| l.contains("->") && l.contains(&needle))
            else {
                disagree.push(format!("{needle} missing from ipvsadm"));
                continue;
            };
            let nums: Vec<u64> = line
                .split_whitespace()
                .skip(2)
                .filter_map(|w| w.parse().ok())
                .collect();
            // Columns: Conns InPkts OutPkts InBytes OutBytes.
            let ours = [
                d.stats.conns,
                d.stats.inpkts,
                d.stats.outpkts,
                d.stats.inbytes,
                d.stats.outbytes,
            ];
            if nums.len() >= 5 && nums[..5] == ours {
                agree += 1;
            } else {
                disagree.push(format!("{needle}: netlink {ours:?}, ipvsadm {nums:?}"));
            }
        }
    }
    Some(if disagree.is_empty() {
        format!(
            "`ipvsadm -Ln --stats --exact`, run in the director as an independent reader, shows the same connection, packet and byte counters as the lab's netlink client for all {agree} destinations."
        )
    } else {
        format!(
            "ipvsadm disagrees with the netlink counters: {}",
            disagree.join("; ")
        )
    })
}

/// Plain-language findings, the sentences a person should take away.
fn notes(scenario: &Scenario, report: &Report, m: &Measurements) -> Vec<String> {
    let mut notes = Vec::new();
    let vs = &scenario.file.virtual_server;
    let load = &scenario.file.load;
    let clients = report.clients.len();
    let receiving: Vec<&ServerResult> = report.servers.iter().filter(|s| s.rpcs > 0).collect();
    let channels = clients as u32 * load.channels_per_ip;

    if let Some(timeout) = vs.persistence_timeout.filter(|t| *t > 0) {
        let sticky = report.clients.iter().filter(|c| c.sticky).count();
        if clients == 1 {
            if let Some(c) = report.clients.first()
                && c.sticky
            {
                let server = c.servers_seen.keys().next().cloned().unwrap_or_default();
                notes.push(format!(
                    "persistence_timeout {timeout} pinned the single client IP {} to {server}: all {} of its connections went to one real server, and the other server(s) got nothing. With one client IP, persistence means no load balancing at all.",
                    c.address,
                    report.servers.iter().map(|s| s.connections).sum::<u64>()
                ));
            }
        } else if m.rounds.len() > 1 {
            // Stickiness within each round, movement across the idle gaps.
            let sticky_each_round = m.rounds.iter().all(|r| {
                r.sources
                    .iter()
                    .all(|src| src.servers.values().filter(|n| **n > 0).count() <= 1)
            });
            let moved = clients - sticky;
            notes.push(format!(
                "persistence_timeout {timeout}: within each round every client IP {} one real server; across the {:?} idle gaps {moved} of {clients} client IPs moved to another server once their templates had expired.",
                if sticky_each_round { "stayed on" } else { "did not always stay on" },
                load.idle
            ));
        } else {
            notes.push(super::scheduler::persistence_spread_note(report, timeout));
        }
        let templates = report.conn_table.templates.len();
        if templates > 0 {
            notes.push(format!(
                "{templates} persistence template(s) (client port 0) were live in /proc/net/ip_vs_conn at the end."
            ));
        }
    }
    let hashed = super::scheduler::single_server_cause(report);
    if let Some(cause) = &hashed {
        notes.push(cause.clone());
    }
    if hashed.is_none()
        && load.connection == super::spec::ConnectionModel::Channel
        && load.max_connection_age.is_none()
        && receiving.len() == 1
        && report.servers.len() > 1
        && vs.persistence_timeout.unwrap_or(0) == 0
    {
        notes.push(format!(
            "All RPCs reached {} over {channels} long-lived HTTP/2 channel(s): IPVS balances connections, not RPCs, so a channel stays on the server it was first scheduled to.",
            receiving[0].name
        ));
    }
    if let Some(age) = load.max_connection_age
        && receiving.len() > 1
    {
        notes.push(format!(
            "max_connection_age {:?} made the servers send GOAWAY; clients reconnected and IPVS scheduled the new connections, spreading RPCs over {} servers.",
            age,
            receiving.len()
        ));
    }
    let out: u64 = report.ipvs_destinations().map(|d| d.stats.outpkts).sum();
    let inp: u64 = report.ipvs_destinations().map(|d| d.stats.inpkts).sum();
    if inp > 0 && out == 0 {
        notes.push(format!(
            "Direct routing confirmed: the director forwarded {inp} inbound packets and saw 0 outbound; the real servers answered the clients directly from the VIP."
        ));
    }
    notes.extend(super::scheduler::template_owner_notes(report));
    notes.push(format!(
        "Measured on the {} runner, kernel {}{}, by a {} build; bring-up {:.0} ms, teardown {:.0} ms. Latency from a 1-CPU UML guest describes UML, not production; distribution and persistence are the kernel's own.",
        report.runner.kind.as_str(),
        report.runner.kernel,
        match report.runner.kind {
            RunnerKind::Uml => format!(" ({})", report.runner.kernel_provenance()),
            RunnerKind::Host => String::new(),
        },
        report
            .runner
            .build
            .as_ref()
            .map_or_else(|| "not recorded".to_owned(), |b| b.describe()),
        m.bringup.as_secs_f64() * 1000.0,
        m.teardown.as_secs_f64() * 1000.0
    ));
    if report.runner.clock == crate::report::model::ClockMode::Travel {
        notes.push(TIME_TRAVEL_NOTE.to_owned());
    }
    notes
}

/// Per-client servers across all rounds: address → server → RPCs.
fn servers_per_client(
    rounds: &[bench::report::LoadReport],
) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in rounds {
        for src in &r.sources {
            let entry = out.entry(src.address.clone()).or_default();
            for (server, n) in &src.servers {
                *entry.entry(server.clone()).or_default() += n;
            }
        }
    }
    out
}

/// The `resources` section: loadgen's own CPU from its reports, the
/// kernel's and the servers' from the lab's samples, summed over rounds.
/// `None` when nothing was measured (a `[client]`-only run).
fn resources(m: &Measurements) -> Option<crate::report::resources::Resources> {
    use crate::report::resources::{KernelCpu, ProcessCpu, Resources};
    let rpcs: u64 = m.rounds.iter().map(|r| r.total_rpcs).sum();
    let per_rpc = |cpu_s: f64| (rpcs > 0).then(|| cpu_s * 1e6 / rpcs as f64);
    let share = |cpu_s: f64, wall_s: f64| if wall_s > 0.0 { cpu_s / wall_s } else { 0.0 };
    let usages: Vec<_> = m.rounds.iter().filter_map(|r| r.usage.as_ref()).collect();
    let loadgen = (!usages.is_empty()).then(|| {
        let (user_s, sys_s, wall_s) = usages.iter().fold((0.0, 0.0, 0.0), |a, u| {
            (a.0 + u.user_s, a.1 + u.sys_s, a.2 + u.wall_s)
        });
        ProcessCpu {
            name: "loadgen".into(),
            user_s,
            sys_s,
            wall_s,
            cpu_share: share(user_s + sys_s, wall_s),
            cpu_us_per_rpc: per_rpc(user_s + sys_s),
            max_rss_kib: usages.iter().map(|u| u.max_rss_kib).max().unwrap_or(0),
        }
    });
    let mut servers = Vec::new();
    for (i, s) in m.plan.servers.iter().enumerate() {
        let mut p = ProcessCpu {
            name: s.name.clone(),
            ..Default::default()
        };
        let mut seen = false;
        for u in &m.round_usage {
            if let Some(Some((user_s, sys_s, hwm))) = u.servers.get(i) {
                seen = true;
                p.user_s += user_s;
                p.sys_s += sys_s;
                p.wall_s += u.wall_s;
                p.max_rss_kib = p.max_rss_kib.max(*hwm);
            }
        }
        if seen {
            p.cpu_share = share(p.user_s + p.sys_s, p.wall_s);
            p.cpu_us_per_rpc = per_rpc(p.user_s + p.sys_s);
            servers.push(p);
        }
    }
    let mut kernel_ticks = None::<(crate::procstat::CpuTimes, usize, u64)>;
    for u in &m.round_usage {
        if let Some((t, cpus)) = &u.kernel {
            kernel_ticks = Some(match kernel_ticks {
                None => (*t, *cpus, u.ticks_per_s),
                Some((sum, c, hz)) => (sum.plus(t), c.max(*cpus), hz),
            });
        }
    }
    let kernel = kernel_ticks
        .filter(|(t, _, _)| t.total() > 0)
        .map(|(t, cpus, hz)| {
            let total = t.total() as f64;
            KernelCpu {
                cpus,
                wall_s: total / cpus as f64 / hz.max(1) as f64,
                busy_share: t.busy() as f64 / total,
                idle_share: (t.idle + t.iowait) as f64 / total,
                softirq_share: t.softirq as f64 / total,
                system_share: t.system as f64 / total,
                user_share: (t.user + t.nice) as f64 / total,
            }
        });
    if loadgen.is_none() && servers.is_empty() && kernel.is_none() {
        return None;
    }
    let servers_cpu_s: f64 = servers.iter().map(|p| p.user_s + p.sys_s).sum();
    Some(Resources {
        servers_cpu_us_per_rpc: (!servers.is_empty())
            .then(|| per_rpc(servers_cpu_s))
            .flatten(),
        loadgen,
        servers,
        kernel,
        lab_max_rss_kib: m.lab_max_rss_kib,
        tables: None,
    })
}

/// The largest IPVS table and client socket counts among the samples;
/// `None` without samples.
fn table_peaks(m: &Measurements, client_ips: u32) -> Option<TablePeaks> {
    if m.samples.is_empty() {
        return None;
    }
    let entries = |s: &IpvsSample| {
        s.templates as u64
            + s.destinations
                .iter()
                .map(|d| u64::from(d.active) + u64::from(d.inactive))
                .sum::<u64>()
    };
    let sockets = || m.samples.iter().filter_map(|s| s.client_sockets);
    Some(TablePeaks {
        ipvs_entries: m.samples.iter().map(entries).max().unwrap_or(0),
        client_time_wait: sockets().map(|s| s.time_wait).max(),
        client_in_use: sockets().map(|s| s.in_use).max(),
        client_port_range: m.client_port_range.map(|(lo, hi)| [lo, hi]),
        client_ips,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::run::measurements::LogLine;
    use crate::scenario::run::testdata::*;

    #[test]
    fn a_lost_connection_still_read_on_its_server_at_the_end_lingered() {
        use crate::scenario::run::peers::PeerLog;
        let record = |local: &str, outcome: &str| bench::report::ConnRecord {
            local: local.into(),
            after_idle: vec![bench::report::AfterIdle {
                gap: 1,
                outcome: outcome.into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let records = [
            record("172.22.39.1:40000", "UNKNOWN"), // lingers to the end
            record("172.22.39.1:40001", "UNKNOWN"), // closed before the end
            record("172.22.39.1:40002", "UNKNOWN"), // never read
            record("172.22.39.1:40003", "ok"),      // not lost
        ];
        let mut rs1 = PeerLog::default();
        rs1.observe(1.0, &["172.22.39.1:40000".parse().unwrap()]);
        rs1.observe(1.0, &["172.22.39.1:40001".parse().unwrap()]);
        rs1.observe(990.0, &["172.22.39.1:40000".parse().unwrap()]);
        let halves = server_halves(&records, &[PeerLog::default(), rs1], 991.0);
        assert_eq!(
            halves,
            ServerHalves {
                lost: 3,
                still_established: 1,
                unseen: 1,
            }
        );
    }

    fn kinds(report: &Report) -> Vec<String> {
        let v = serde_json::to_value(&report.events).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn events_keep_their_kinds_and_times() {
        let s = failover_scenario();
        let m = failover_measurements(&s);
        let (report, _) = assemble(&s, &m);
        assert_eq!(report.events, m.events);
        assert_eq!(
            kinds(&report),
            ["fault", "check", "check", "check", "health", "ipvs"]
        );
        assert_eq!(report.events[0].t_s, FAULT_AT);
    }

    #[test]
    fn a_sysctl_phase_is_reported_as_sysctl_not_other() {
        let s = failover_scenario();
        let mut m = failover_measurements(&s);
        m.events.insert(
            0,
            Event {
                t_s: 0.5,
                kind: EventKind::Sysctl,
                detail: "net.ipv4.vs.expire_nodest_conn = 1".into(),
            },
        );
        let (report, _) = assemble(&s, &m);
        assert_eq!(kinds(&report)[0], "sysctl");
    }

    #[test]
    fn the_largest_tables_come_from_the_samples() {
        let s = failover_scenario();
        let mut m = steady_measurements(&s);
        // One sample holds more entries than the others: 2 templates plus
        // 4 + 1 and 4 + 0 connections.
        m.samples[5].templates = 2;
        m.samples[5].destinations[0].inactive = 1;
        let (report, _) = assemble(&s, &m);
        let t = report.resources.unwrap().tables.unwrap();
        assert_eq!(t.ipvs_entries, 11);
        // The test data's sample t holds 8 + t sockets and 100 t in TIME_WAIT.
        assert_eq!(
            (t.client_in_use, t.client_time_wait),
            (Some(20), Some(1200))
        );
        assert_eq!(t.client_port_range, Some([40000, 40999]));
        assert_eq!(t.ephemeral_ports(), Some(1000 * u64::from(t.client_ips)));
        m.samples.clear();
        assert!(
            assemble(&s, &m)
                .0
                .resources
                .is_none_or(|r| r.tables.is_none())
        );
    }

    #[test]
    fn later_rounds_are_rebased_after_the_earlier_ones_and_the_idle_gap() {
        let mut s = failover_scenario();
        s.file.load.idle = std::time::Duration::from_secs(2);
        let mut m = steady_measurements(&s);
        m.rounds.push(m.rounds[0].clone());
        let (report, _) = assemble(&s, &m);
        let per_round = m.rounds[0].timeline.len();
        let buckets = &report.timeline.buckets;
        assert_eq!(buckets.len(), 2 * per_round);
        assert_eq!(buckets[0].t_s, 0.0);
        // Round 1 lasted 13 s, then 2 s idle.
        assert_eq!(buckets[per_round].t_s, 15.0);
        assert_eq!(report.timeline.bucket_s, BUCKET_S);
        // Samples and events stay on the origin's axis.
        assert_eq!(report.ipvs_samples[1].t_s, m.samples[1].t_s);
        assert_eq!(
            report.ipvs_samples[1].destinations,
            m.samples[1].destinations
        );
    }

    #[test]
    fn every_view_of_a_failover_lands_in_the_report() {
        let s = failover_scenario();
        let mut m = failover_measurements(&s);
        m.director.keepalived_log = vec![LogLine {
            t_s: -0.5,
            line: "Keepalived_healthcheckers: TCP connection to [172.22.35.1]:tcp:8080 failed"
                .into(),
        }];
        let (report, hist) = assemble(&s, &m);
        assert!(hist.is_some() && report.latency_us.is_some());
        // rs1 was dead at the end: no counters of its own.
        assert_eq!(report.servers[0].server_rpcs, None);
        assert_eq!(report.servers[0].connections, 0);
        assert_eq!(report.servers[1].server_rpcs, Some(5_200));
        assert_eq!(report.servers[1].ipvs_conns, Some(12));
        assert_eq!(report.errors.by_status["UNAVAILABLE"], 114);
        let director = report.director.as_ref().unwrap();
        assert_eq!(
            director.keepalived_log[0],
            "  -0.500 Keepalived_healthcheckers: TCP connection to [172.22.35.1]:tcp:8080 failed"
        );
        let f = report.failover.as_ref().expect("a failover");
        assert_eq!(f.failed_server.as_deref(), Some("rs1"));
        assert!(
            report.notes.iter().any(|n| n.contains(
                "shows the same connection, packet and byte counters as the lab's netlink client for all 1 destinations"
            )),
            "{:?}",
            report.notes
        );
        assert!(report.expectations.iter().any(|e| e.name.contains("fault")));
    }

    /// A conn-table line: `client` to `dest` through `vip`.
    fn table_line(
        client: std::net::SocketAddr,
        vip: std::net::SocketAddr,
        dest: std::net::SocketAddr,
    ) -> String {
        let hex = |a: std::net::SocketAddr| match a {
            std::net::SocketAddr::V4(v4) => {
                format!("{:08X} {:04X}", u32::from(*v4.ip()), v4.port())
            }
            std::net::SocketAddr::V6(_) => unreachable!("the lab's plans are IPv4"),
        };
        format!(
            "TCP {} {} {} ESTABLISHED 899\n",
            hex(client),
            hex(vip),
            hex(dest)
        )
    }

    #[test]
    fn without_server_identity_the_table_gives_the_per_server_counts() {
        let s = failover_scenario();
        let mut m = steady_measurements(&s);
        let client = std::net::IpAddr::V4(m.plan.client_addresses[0]);
        let vip = m.plan.target;
        let dests: Vec<std::net::SocketAddr> = m
            .plan
            .servers
            .iter()
            .map(|p| std::net::SocketAddr::new(p.destination.address, p.destination.port))
            .collect();
        // What a load generator without server identity reports.
        let round = &mut m.rounds[0];
        round.servers.clear();
        for src in &mut round.sources {
            src.servers.clear();
        }
        round.connections = (0..4u16)
            .map(|i| bench::report::ConnectionReport {
                source: client.to_string(),
                local_port: 40_000 + i,
                server: String::new(),
                server_conn_id: u64::from(i),
                rpcs: 100 * (u64::from(i) + 1),
            })
            .collect();
        m.server_counts = vec![None; m.plan.servers.len()];
        let mut text = String::from(
            "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n",
        );
        for i in 0..4u16 {
            let c = std::net::SocketAddr::new(client, 40_000 + i);
            text.push_str(&table_line(c, vip, dests[usize::from(i) % 2]));
        }
        m.conn_log.observe_text(1.0, &text);
        let (report, _) = assemble(&s, &m);
        let a = report.attribution.as_ref().expect("attributed");
        assert_eq!(a.method, AttributionMethod::KernelTable);
        assert_eq!((a.in_table, a.unseen), (4, 0));
        assert_eq!(report.servers[0].rpcs, 100 + 300);
        assert_eq!(report.servers[1].rpcs, 200 + 400);
        assert_eq!(report.servers[0].connections, 2);
        assert_eq!(report.servers[1].share, 0.6);
        let c = &report.clients[0];
        assert_eq!(c.rpcs, 1_000);
        assert_eq!(c.servers_seen.len(), 2);
        assert!(!c.sticky);
    }

    #[test]
    fn ipvsadm_disagreeing_is_a_note() {
        let s = failover_scenario();
        let mut m = failover_measurements(&s);
        m.ipvsadm_stats = Some(m.ipvsadm_stats.unwrap().replace("5000", "4999"));
        let note = ipvsadm_cross_check(&m).unwrap();
        assert!(note.starts_with("ipvsadm disagrees"), "{note}");
    }
}
