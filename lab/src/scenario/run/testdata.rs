//! Realistic [`Measurements`] for unit tests, like `report/testdata.rs`
//! for the report model: the `failover-tcp-check` scenario as a run of it
//! looks, with `rs1` killed at 1.5 s, three failed checks, the checker
//! taking it out of IPVS at 10.6 s, and `rs2` carrying the load after.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use bench::report::{LoadReport, ServerReport, SourceReport, TimelineBucket};

use super::measurements::*;
use crate::ipvs::{
    ConnEntry, DestinationEntry, IpvsInfo, IpvsTable, Protocol, ServiceEntry, ServiceTable, Stats,
};
use crate::netns::RunId;
use crate::report::model::{Event, EventKind, IpvsDestSample};
use crate::scenario::Scenario;
use crate::scenario::plan::plan;
use crate::scenario::spec::PhaseAction;

/// When the fixture's phase killed `rs1`.
pub(crate) const FAULT_AT: f64 = 1.502;
/// When the lab checker declared `rs1` down.
pub(crate) const CHECKER_DOWN_AT: f64 = 10.604;
/// When the 100 ms watcher saw `rs1` leave IPVS.
pub(crate) const IPVS_REMOVED_AT: f64 = 10.65;
/// The timeline's bucket width.
pub(crate) const BUCKET_S: f64 = 0.5;
/// Successful RPCs per server per bucket while both serve.
pub(crate) const OK_PER_SERVER: u64 = 200;

/// The scenario the fixture ran.
pub(crate) fn failover_scenario() -> Scenario {
    Scenario::from_str(
        Path::new("scenarios/failover-tcp-check.toml"),
        include_str!("../../../../scenarios/failover-tcp-check.toml"),
    )
    .expect("the committed scenario loads")
}

/// One 13 s round: both servers until the fault, errors while IPVS still
/// schedules to the dead `rs1`, then `rs2` alone at the full rate.
fn round(fault: bool) -> LoadReport {
    let buckets = 26;
    let mut timeline = Vec::new();
    let (mut ok1, mut ok2, mut failed) = (0, 0, 0);
    for i in 0..buckets {
        let t_s = i as f64 * BUCKET_S;
        let mut ok = BTreeMap::new();
        let mut errors = BTreeMap::new();
        if !fault || t_s + BUCKET_S <= FAULT_AT {
            ok.insert("rs1".to_string(), OK_PER_SERVER);
            ok.insert("rs2".to_string(), OK_PER_SERVER);
        } else if t_s < IPVS_REMOVED_AT {
            ok.insert("rs2".to_string(), OK_PER_SERVER + 100);
            errors.insert("UNAVAILABLE".to_string(), 6);
        } else {
            ok.insert("rs2".to_string(), 2 * OK_PER_SERVER);
        }
        ok1 += ok.get("rs1").copied().unwrap_or(0);
        ok2 += ok.get("rs2").copied().unwrap_or(0);
        failed += errors.values().sum::<u64>();
        timeline.push(TimelineBucket { t_s, ok, errors });
    }
    let sources = (1..=4)
        .map(|c| SourceReport {
            address: format!("10.0.0.{c}"),
            rpcs: (ok1 + ok2) / 4,
            errors: failed / 4,
            servers: [("rs1".to_string(), ok1 / 4), ("rs2".to_string(), ok2 / 4)].into(),
            connections: if fault { 5 } else { 2 },
            longest_gap_ms: if fault { 240.0 } else { 3.0 },
            ..Default::default()
        })
        .collect();
    let hist = crate::report::testdata::synthetic_histogram(2_000);
    LoadReport {
        schema: 1,
        mode: "closed".into(),
        concurrency: 8,
        channels_per_source: 2,
        total_rpcs: ok1 + ok2 + failed,
        ok_rpcs: ok1 + ok2,
        errors: failed,
        duration_s: buckets as f64 * BUCKET_S,
        histogram_b64: crate::report::hgrm::encode_histogram_b64(&hist).unwrap(),
        servers: vec![
            ServerReport {
                name: "rs1".into(),
                address: "172.22.35.1:8080".into(),
                rpcs: ok1,
                ..Default::default()
            },
            ServerReport {
                name: "rs2".into(),
                address: "172.22.35.2:8080".into(),
                rpcs: ok2,
                ..Default::default()
            },
        ],
        sources,
        status_codes: [
            ("OK".to_string(), ok1 + ok2),
            ("UNAVAILABLE".to_string(), failed),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect(),
        timeline_interval_s: BUCKET_S,
        timeline,
        ..Default::default()
    }
}

/// `rs2` alone in IPVS at the end (the checker removed `rs1`).
fn final_table(m: &Measurements, fault: bool) -> IpvsTable {
    let destinations = m
        .plan
        .servers
        .iter()
        .filter(|s| !fault || s.name == "rs2")
        .map(|s| DestinationEntry {
            destination: s.destination,
            active_conns: 8,
            inactive_conns: 0,
            persist_conns: 0,
            stats: Stats {
                conns: 12,
                inpkts: 5_000,
                outpkts: 0,
                inbytes: 400_000,
                outbytes: 0,
                ..Default::default()
            },
        })
        .collect();
    IpvsTable {
        info: IpvsInfo {
            version: 0x010201,
            conn_table_size: 4096,
        },
        services: vec![ServiceTable {
            entry: ServiceEntry {
                service: m.plan.service.clone(),
                pe_name: None,
                stats: Stats::default(),
            },
            destinations,
        }],
    }
}

/// What `ipvsadm -Ln --stats --exact` prints for `table`.
fn ipvsadm_text(table: &IpvsTable) -> String {
    let mut text = String::from(
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\nTCP  192.168.122.1:8080                 0        0        0        0        0\n",
    );
    for d in table.services.iter().flat_map(|s| &s.destinations) {
        text.push_str(&format!(
            "  -> {}:{}                 {}     {}        {}   {}        {}\n",
            d.destination.address,
            d.destination.port,
            d.stats.conns,
            d.stats.inpkts,
            d.stats.outpkts,
            d.stats.inbytes,
            d.stats.outbytes
        ));
    }
    text
}

fn event(t_s: f64, kind: EventKind, detail: &str) -> Event {
    Event {
        t_s,
        kind,
        detail: detail.into(),
    }
}

/// The measurements of a steady run: nothing applied, nothing failed.
pub(crate) fn steady_measurements(scenario: &Scenario) -> Measurements {
    let plan = plan(scenario, RunId::from_parts(4242, 7)).expect("the scenario plans");
    let mut m = Measurements {
        server_counts: vec![
            Some(ServerCount {
                rpcs: 5_200,
                connections: 4,
            });
            plan.servers.len()
        ],
        plan,
        rounds: vec![round(false)],
        ipvs: IpvsTable {
            info: IpvsInfo {
                version: 0,
                conn_table_size: 0,
            },
            services: Vec::new(),
        },
        ipvsadm_stats: None,
        conn_table: Vec::new(),
        conn_log: crate::ipvs::ConnLog::new(),
        server_peers: Vec::new(),
        round_windows: Vec::new(),
        events: Vec::new(),
        applied: Vec::new(),
        ipvs_changes: Vec::new(),
        health_changes: Vec::new(),
        samples: (0..13)
            .map(|t| IpvsSample {
                t_s: t as f64 + 0.02,
                templates: 0,
                destinations: ["172.22.35.1", "172.22.35.2"]
                    .map(|address| IpvsDestSample {
                        address: address.into(),
                        weight: 1,
                        active: 4,
                        inactive: 0,
                        persistent: 0,
                        conns: 0,
                    })
                    .into(),
                client_sockets: Some(crate::procstat::SockStat {
                    in_use: 8 + t,
                    orphan: 0,
                    time_wait: 100 * t,
                }),
            })
            .collect(),
        round_starts_s: Vec::new(),
        round_usage: Vec::new(),
        lab_max_rss_kib: 0,
        client_port_range: Some((40000, 40999)),
        director: DirectorInfo {
            kind: "lab".into(),
            ..Default::default()
        },
        bringup: Duration::from_millis(180),
        teardown: Duration::from_millis(90),
        started_at: "2026-12-02T00:00:00Z".into(),
        elapsed: Duration::from_secs(16),
        client: None,
        user_servers: vec![false; 2],
        files: Vec::new(),
    };
    m.ipvs = final_table(&m, false);
    m.ipvsadm_stats = Some(ipvsadm_text(&m.ipvs));
    m
}

/// The measurements of `failover-tcp-check`: `rs1` killed at [`FAULT_AT`],
/// declared down at [`CHECKER_DOWN_AT`], gone from IPVS at
/// [`IPVS_REMOVED_AT`].
pub(crate) fn failover_measurements(scenario: &Scenario) -> Measurements {
    let mut m = steady_measurements(scenario);
    m.rounds = vec![round(true)];
    m.server_counts[0] = None;
    m.ipvs = final_table(&m, true);
    m.ipvsadm_stats = Some(ipvsadm_text(&m.ipvs));
    let rs1 = m.plan.servers[0].clone();
    m.conn_table = vec![ConnEntry {
        protocol: Some(Protocol::Tcp),
        client: SocketAddr::new(IpAddr::V4(m.plan.client_addresses[0]), 40_000),
        virtual_: m.plan.target,
        dest: SocketAddr::new(IpAddr::V4(m.plan.servers[1].address), 8080),
        state: "ESTABLISHED".into(),
        expires_s: 890,
        is_template: false,
        pe: None,
    }];
    m.applied = vec![AppliedPhase {
        t_s: FAULT_AT,
        action: PhaseAction::KillServer {
            server: "rs1".into(),
        },
    }];
    m.health_changes = vec![HealthChange {
        t_s: CHECKER_DOWN_AT,
        server: "rs1".into(),
        up: false,
    }];
    m.ipvs_changes = vec![IpvsChange {
        t_s: IPVS_REMOVED_AT,
        dest: rs1.destination_key(),
        from: Some(1),
        to: None,
    }];
    m.events = vec![
        event(FAULT_AT, EventKind::Fault, "rs1 killed (SIGKILL)"),
        event(
            1.6,
            EventKind::Check,
            "rs1 TCP_CHECK failed: connection refused",
        ),
        event(
            4.6,
            EventKind::Check,
            "rs1 TCP_CHECK failed: connection refused",
        ),
        event(
            7.6,
            EventKind::Check,
            "rs1 TCP_CHECK failed: connection refused",
        ),
        event(
            CHECKER_DOWN_AT,
            EventKind::Health,
            "rs1 down after 4 failed checks",
        ),
        event(
            IPVS_REMOVED_AT,
            EventKind::Ipvs,
            "rs1 removed from IPVS (was weight 1)",
        ),
    ];
    m
}
