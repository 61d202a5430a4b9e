//! Synthetic reports for tests: a weighted round robin over three servers
//! with a failover in the middle, and many client IPs of which some are
//! pinned by persistence.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::fairness;
use super::hgrm;
use super::model::*;

/// A histogram of `n` RPC latencies (µs) with a long tail.
pub(crate) fn synthetic_histogram(n: u64) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..n {
        // xorshift: deterministic, no rand dependency in the report tests.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let u = (x % 1_000_000) as f64 / 1_000_000.0;
        // 250 µs median, exponential-ish tail up to tens of ms.
        let v = 180.0 + 100.0 * (-(1.0 - u).ln()) + if u > 0.995 { 20_000.0 * u } else { 0.0 };
        h.record(v as u64).unwrap();
    }
    h
}

/// A report with three servers (weights 1, 1, 2), `clients` client IPs and
/// a failover of `rs2` at t = 20 s.
pub(crate) fn synthetic_report(clients: usize) -> Report {
    let names = ["rs1", "rs2", "rs3"];
    let weights = [1u32, 1, 2];
    let mut client_rows = Vec::new();
    let mut per_server = [0u64; 3];
    for c in 0..clients {
        let mut seen = BTreeMap::new();
        let rpcs = 400 + (c as u64 * 37) % 200;
        let sticky = c % 3 != 0;
        if sticky {
            // Pinned: the persistence template picks by weight.
            let s = [0, 1, 2, 2][c % 4];
            seen.insert(names[s].to_owned(), rpcs);
            per_server[s] += rpcs;
        } else {
            let parts = [rpcs / 4, rpcs / 4, rpcs - 2 * (rpcs / 4)];
            for (s, p) in parts.iter().enumerate() {
                seen.insert(names[s].to_owned(), *p);
                per_server[s] += p;
            }
        }
        client_rows.push(ClientResult {
            address: format!("10.0.{}.{}", c / 250, 10 + c % 250),
            rpcs,
            servers_seen: seen,
            sticky,
            connections: Some(4),
            errors: if c == 1 { 3 } else { 0 },
        });
    }
    let conns = [40u64, 38, 82];
    let fair = fairness::evaluate(FairnessBasis::Rpcs, &per_server, &weights);
    let total: u64 = per_server.iter().sum();
    let ideal = fairness::ideal_shares(&weights);
    let servers = (0..3)
        .map(|i| ServerResult {
            name: names[i].to_owned(),
            address: format!("172.22.35.{}", i + 1),
            weight: weights[i],
            rpcs: per_server[i],
            server_rpcs: Some(per_server[i] + u64::from(i == 1)),
            connections: conns[i],
            ipvs_conns: Some(conns[i]),
            share: per_server[i] as f64 / total.max(1) as f64,
            ideal_share: ideal[i],
        })
        .collect();
    let destinations = (0..3)
        .map(|i| IpvsDestination {
            address: format!("172.22.35.{}", i + 1),
            port: 8080,
            weight: if i == 1 { 0 } else { weights[i] },
            forward: "DR".to_owned(),
            active_conns: 3,
            inactive_conns: 1,
            persist_conns: 2,
            stats: IpvsStats {
                conns: conns[i],
                inpkts: conns[i] * 50,
                outpkts: 0,
                inbytes: conns[i] * 4000,
                outbytes: 0,
            },
        })
        .collect();
    let hist = synthetic_histogram(20_000);
    let mut latency = hgrm::latency_summary(&hist);
    latency.histogram_b64 = Some(hgrm::encode_histogram_b64(&hist).unwrap());
    let buckets = (0..40u32)
        .map(|t| {
            let mut ok = BTreeMap::new();
            let down = (20..24).contains(&t);
            let gone = (20..32).contains(&t);
            ok.insert(
                "rs1".to_owned(),
                if down {
                    120
                } else {
                    250 + u64::from(t % 3) * 5
                },
            );
            ok.insert("rs2".to_owned(), if gone { 0 } else { 245 });
            ok.insert(
                "rs3".to_owned(),
                if down {
                    240
                } else {
                    500 + u64::from(t % 2) * 10
                },
            );
            TimelineBucket {
                t_s: f64::from(t),
                ok,
                errors: if down { 60 } else { 0 },
            }
        })
        .collect();
    Report {
        connects: None,
        scenario: ScenarioInfo {
            name: "wrr-failover".to_owned(),
            description: "Weighted round robin over three servers; rs2 fails at 20 s".to_owned(),
            path: Some("scenarios/wrr-failover.toml".to_owned()),
        },
        runner: RunnerInfo {
            kind: RunnerKind::Uml,
            kernel: "7.2.13".to_owned(),
            kernel_origin: Some("lab".to_owned()),
            kernel_source: Some("linux-source-7.2 7.2.13-1".to_owned()),
            build: Some(BuildInfo {
                profile: "release".to_owned(),
                opt_level: "3".to_owned(),
                debug_assertions: false,
            }),
            clock: ClockMode::Real,
        },
        started_at: "2025-06-24T10:00:00Z".to_owned(),
        duration_s: 40.0,
        timing: Some(Timing {
            bringup_ms: 31.0,
            teardown_ms: 2.0,
            real_servers: 2,
            client_ips: 1,
        }),
        config: VirtualServerConfig {
            vip: "192.168.122.1".to_owned(),
            port: 8080,
            protocol: "TCP".to_owned(),
            lb_algo: "wrr".to_owned(),
            lb_kind: "DR".to_owned(),
            persistence_timeout: Some(50),
            persistence_granularity: Some("255.255.255.255".to_owned()),
            delay_loop_s: Some(1.0),
            inhibit_on_failure: false,
            real_servers: (0..3)
                .map(|i| RealServerConfig {
                    name: names[i].to_owned(),
                    address: format!("172.22.35.{}", i + 1),
                    port: 8080,
                    weight: weights[i],
                    health_check: Some(HealthCheckConfig {
                        kind: "TCP_CHECK".to_owned(),
                        connect_timeout_s: Some(1.0),
                        retry: Some(3),
                        delay_before_retry_s: Some(2.0),
                        connect_port: Some(9090),
                        ..Default::default()
                    }),
                })
                .collect(),
        },
        load: serde_json::json!({"rpcs_per_channel": 100, "channels": 4, "duration_s": 40}),
        ipvs: IpvsSnapshot {
            services: vec![IpvsService {
                protocol: "TCP".to_owned(),
                address: "192.168.122.1".to_owned(),
                port: 8080,
                scheduler: "wrr".to_owned(),
                persistent: true,
                timeout: 50,
                netmask: Some("255.255.255.255".to_owned()),
                stats: IpvsStats {
                    conns: 160,
                    inpkts: 8000,
                    outpkts: 0,
                    inbytes: 640_000,
                    outbytes: 0,
                },
                destinations,
            }],
        },
        conn_table: ConnTableSummary {
            templates: vec![PersistTemplate {
                client: "10.0.0.10".to_owned(),
                dest: "172.22.35.1:8080".to_owned(),
                expires_s: 47,
            }],
            peak_templates: 40,
            connections: BTreeMap::from([
                ("172.22.35.1:8080".to_owned(), 4),
                ("172.22.35.3:8080".to_owned(), 8),
            ]),
        },
        servers,
        clients: client_rows,
        latency_us: Some(latency),
        fairness: fair,
        timeline: Timeline {
            bucket_s: 1.0,
            buckets,
        },
        events: vec![
            Event {
                t_s: 0.0,
                kind: EventKind::Phase,
                detail: "steady load".to_owned(),
            },
            Event {
                t_s: 20.0,
                kind: EventKind::Fault,
                detail: "blackhole rs2".to_owned(),
            },
            Event {
                t_s: 23.2,
                kind: EventKind::Health,
                detail: "TCP_CHECK rs2 down, removed".to_owned(),
            },
            Event {
                t_s: 32.0,
                kind: EventKind::Fault,
                detail: "rs2 restored".to_owned(),
            },
        ],
        failover: Some(Failover {
            failed_server: Some("rs2".to_owned()),
            detection_s: Some(3.2),
            recover_s: Some(4.1),
            failed_rpcs_by_status: BTreeMap::from([("Unavailable".to_owned(), 240)]),
            longest_blackhole_s: BTreeMap::from([
                ("10.0.0.10".to_owned(), 3.9),
                ("10.0.0.11".to_owned(), 0.0),
            ]),
            fault: Some("rs2 killed (SIGKILL)".to_owned()),
            fault_at_s: Some(20.0),
            checker: Some("lab TCP_CHECK".to_owned()),
            checker_detection_s: Some(3.1),
            worst_case_refused_s: Some(15.0),
            worst_case_timeout_s: Some(27.0),
            ..Default::default()
        }),
        ipvs_samples: Vec::new(),
        rebalance: None,
        template_lives: Vec::new(),
        rounds: Vec::new(),
        phases: Vec::new(),
        ideal_source: IdealSource::Weights,
        director: None,
        gate: None,
        expectations: vec![
            ExpectationResult {
                name: "max_deviation <= 0.10".to_owned(),
                passed: true,
                detail: "0.043".to_owned(),
                ..Default::default()
            },
            ExpectationResult {
                name: "failover.detection_s <= 5".to_owned(),
                passed: true,
                detail: "3.2 s".to_owned(),
                ..Default::default()
            },
            ExpectationResult {
                name: "errors.total == 0".to_owned(),
                passed: false,
                verdict: Verdict::Fail,
                detail: "240 failed RPCs (Unavailable)".to_owned(),
            },
        ],
        errors: ErrorSummary {
            total: 240,
            by_status: BTreeMap::from([("Unavailable".to_owned(), 240)]),
        },
        notes: vec![
            "persistence pinned most client IPs to one server for the 50 s timeout".to_owned(),
            "rs2 was removed by TCP_CHECK 3.2 s after the fault".to_owned(),
        ],
        attribution: None,
        resources: None,
        passed: false,
    }
}

/// The seed question, `rr-persistence`: one client IP, two servers, round
/// robin with persistence: everything lands on rs1.
pub(crate) fn pinned_report() -> Report {
    let mut r = synthetic_report(1);
    r.scenario = ScenarioInfo {
        name: "rr-persistence".to_owned(),
        description: "One client IP, rr with persistence_timeout 50: where do RPCs go?".to_owned(),
        path: Some("scenarios/rr-persistence.toml".to_owned()),
    };
    r.runner.kind = RunnerKind::Host;
    r.config.lb_algo = "rr".to_owned();
    r.config.real_servers.truncate(2);
    r.config.real_servers[1].weight = 1;
    r.ipvs.services[0].destinations.truncate(2);
    r.ipvs.services[0].scheduler = "rr".to_owned();
    let counts = [4000u64, 0];
    let conns = [16u64, 0];
    r.servers.truncate(2);
    for (i, s) in r.servers.iter_mut().enumerate() {
        s.weight = 1;
        s.rpcs = counts[i];
        s.server_rpcs = Some(counts[i]);
        s.connections = conns[i];
        s.ipvs_conns = Some(conns[i]);
        s.share = counts[i] as f64 / 4000.0;
        s.ideal_share = 0.5;
    }
    r.clients = vec![ClientResult {
        address: "10.0.0.10".to_owned(),
        rpcs: 4000,
        servers_seen: BTreeMap::from([("rs1".to_owned(), 4000)]),
        sticky: true,
        connections: Some(16),
        errors: 0,
    }];
    r.fairness = fairness::evaluate(FairnessBasis::Rpcs, &counts, &[1, 1]);
    for b in &mut r.timeline.buckets {
        b.ok = BTreeMap::from([("rs1".to_owned(), 100), ("rs2".to_owned(), 0)]);
        b.errors = 0;
    }
    r.events.truncate(1);
    r.failover = None;
    r.errors = ErrorSummary::default();
    r.notes = vec![
        "persistence pinned the single client IP to rs1: every connection went to one server"
            .to_owned(),
    ];
    r.expectations = vec![ExpectationResult {
        name: "servers_reached == 1".to_owned(),
        passed: true,
        detail: "1 (rs1)".to_owned(),
        ..Default::default()
    }];
    r.passed = true;
    r
}
