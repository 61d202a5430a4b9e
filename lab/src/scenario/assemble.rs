//! From what a run measured to the report: every independent view side by
//! side, fairness, plain-language notes, and the verdict of `[expect]`.

use std::collections::{BTreeMap, HashSet};

use hdrhistogram::Histogram;

use super::Scenario;
use super::expect::{evaluate, gate_settings, is_hash_scheduler};
use super::run::Measurements;
use crate::ipvs::IpvsTable;
use crate::report::fairness;
use crate::report::hgrm;
use crate::report::model::*;

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
    let gate = gate_settings(file);
    let counts = fairness::unit_counts(&report, gate.unit);
    report.fairness = fairness::evaluate(gate.unit, &counts, &weights).map(|mut f| {
        f.informational = is_hash_scheduler(&file.virtual_server.lb_algo);
        f
    });
    report.gate = Some(gate);

    let merged = merged_histogram(&m.rounds);
    if let Some(h) = &merged {
        let mut summary = hgrm::latency_summary(h);
        summary.histogram_b64 = hgrm::encode_histogram_b64(h).ok();
        report.latency_us = Some(summary);
    }
    report.timeline = timeline(&m.rounds, file.load.idle.as_secs_f64());
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
    report.director = Some(director_report(&m.director));
    report.failover = super::failover::failover(scenario, m);

    report.notes = notes(scenario, &report, m);
    if let Some(note) = unit_override_note(scenario) {
        report.notes.push(note);
    }
    if let Some(f) = &report.failover {
        report.notes.extend(super::failover::notes(f));
    }
    if let Some(cross) = ipvsadm_cross_check(m) {
        report.notes.push(cross);
    }
    report.expectations = evaluate(&file.expect, &report);
    report.passed = report.expectations.iter().all(|e| e.passed);
    (report, merged)
}

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
                connections: own.map(|o| o.connections).unwrap_or(0),
                ipvs_conns,
                share: 0.0,
                ideal_share: ideal[i],
            }
        })
        .collect();
    let rpc_counts: Vec<u64> = servers.iter().map(|s| s.rpcs).collect();
    for (s, share) in servers.iter_mut().zip(fairness::shares(&rpc_counts)) {
        s.share = share;
    }
    servers
}

/// Per client IP: the servers it reached, its errors and connections.
fn client_results(m: &Measurements) -> Vec<ClientResult> {
    let per_client = servers_per_client(&m.rounds);
    let mut client_errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut client_conns: BTreeMap<String, u64> = BTreeMap::new();
    for r in &m.rounds {
        for s in &r.sources {
            *client_errors.entry(s.address.clone()).or_default() += s.errors;
            *client_conns.entry(s.address.clone()).or_default() += s.connections;
        }
    }
    m.plan
        .client_addresses
        .iter()
        .map(|a| {
            let address = a.to_string();
            let seen = per_client.get(&address).cloned().unwrap_or_default();
            let seen: BTreeMap<String, u64> = seen.into_iter().filter(|(_, n)| *n > 0).collect();
            ClientResult {
                rpcs: seen.values().sum(),
                sticky: seen.len() == 1,
                servers_seen: seen,
                connections: client_conns.get(&address).copied(),
                errors: client_errors.get(&address).copied().unwrap_or(0),
                address,
            }
        })
        .collect()
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
            notes.push(format!(
                "persistence_timeout {timeout}: {sticky} of {clients} client IPs stayed on one real server; IPVS spread the client IPs, not the connections."
            ));
        }
        let templates = report.conn_table.templates.len();
        if templates > 0 {
            notes.push(format!(
                "{templates} persistence template(s) (client port 0) were live in /proc/net/ip_vs_conn at the end."
            ));
        }
    }
    if load.connection == super::spec::ConnectionModel::Channel
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
    let client_set: HashSet<&str> = report.clients.iter().map(|c| c.address.as_str()).collect();
    let foreign = report
        .conn_table
        .templates
        .iter()
        .filter(|t| !client_set.contains(t.client.as_str()))
        .count();
    if foreign > 0 {
        notes.push(format!(
            "{foreign} template(s) belong to addresses that are not clients."
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::run::measurements::LogLine;
    use crate::scenario::run::testdata::*;

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

    #[test]
    fn ipvsadm_disagreeing_is_a_note() {
        let s = failover_scenario();
        let mut m = failover_measurements(&s);
        m.ipvsadm_stats = Some(m.ipvsadm_stats.unwrap().replace("5000", "4999"));
        let note = ipvsadm_cross_check(&m).unwrap();
        assert!(note.starts_with("ipvsadm disagrees"), "{note}");
    }
}
