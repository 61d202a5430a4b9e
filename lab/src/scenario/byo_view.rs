//! What the report knows when the servers or the client are the user's:
//! no server identity in the replies, no `Stats` RPC, and with `[client]`
//! no RPC counts at all. Connections are then attributed from the
//! director's connection table: each entry's client address and real
//! server (pure; the table is read at the end of the run).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::run::Measurements;

/// Per client IP, connections per real server name, from the table's
/// connection entries (templates left out) for the scenario's service.
pub fn connections_by_client(m: &Measurements) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut by_client: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for e in m.conn_table.iter().filter(|e| !e.is_template) {
        if e.virtual_ != m.plan.target {
            continue;
        }
        let IpAddr::V4(client) = e.client.ip() else {
            continue;
        };
        if !m.plan.client_addresses.contains(&client) {
            continue;
        }
        let Some(server) = m
            .plan
            .servers
            .iter()
            .find(|s| IpAddr::V4(s.address) == e.dest.ip())
        else {
            continue;
        };
        *by_client
            .entry(client.to_string())
            .or_default()
            .entry(server.name.clone())
            .or_default() += 1;
    }
    by_client
}

/// Connections per real server name, summed over client IPs.
pub fn connections_by_server(m: &Measurements) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for per in connections_by_client(m).values() {
        for (server, n) in per {
            *out.entry(server.clone()).or_default() += n;
        }
    }
    out
}

/// The report's plain words about the user's own commands.
pub fn notes(m: &Measurements) -> Vec<String> {
    let mut notes = Vec::new();
    let user: Vec<&str> = m
        .plan
        .servers
        .iter()
        .zip(&m.user_servers)
        .filter(|(_, u)| **u)
        .map(|(s, _)| s.name.as_str())
        .collect();
    if !user.is_empty() {
        notes.push(format!(
            "Real server(s) {} ran your own command (their stdout and stderr are in servers/ in this folder). They report no identity and no counters, so their connections are counted from the director's connection table (/proc/net/ip_vs_conn, read at the end of the run), and ipvs_consistent compares that table with IPVS's per-destination statistics.",
            user.join(", ")
        ));
    }
    if let Some(c) = &m.client {
        let exits: Vec<String> = c
            .processes
            .iter()
            .map(|p| format!("{} {} after {:.1} s", p.source, p.exit, p.elapsed_s))
            .collect();
        notes.push(format!(
            "RPC counts: not available, the client is yours (`{}`, per = \"{}\": {}; its output is in clients/ in this folder). Distribution, persistence and fairness are per connection and per client IP, from the director's connection table and IPVS's statistics.",
            c.command,
            c.per,
            exits.join("; ")
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::ConnEntry;
    use crate::scenario::run::testdata;

    fn entry(client: &str, dest: &str, template: bool) -> ConnEntry {
        ConnEntry {
            protocol: None,
            client: client.parse().unwrap(),
            virtual_: "192.168.122.1:8080".parse().unwrap(),
            dest: dest.parse().unwrap(),
            state: "FIN_WAIT".into(),
            expires_s: 100,
            is_template: template,
            pe: None,
        }
    }

    #[test]
    fn the_table_attributes_connections_per_client_and_server() {
        let scenario = testdata::failover_scenario();
        let mut m = testdata::steady_measurements(&scenario);
        let c = m.plan.client_addresses[0];
        m.conn_table = vec![
            entry(&format!("{c}:40000"), "172.22.35.1:8080", false),
            entry(&format!("{c}:40001"), "172.22.35.1:8080", false),
            entry(&format!("{c}:0"), "172.22.35.1:8080", true),
            entry("10.9.9.9:40002", "172.22.35.2:8080", false),
        ];
        let by = connections_by_client(&m);
        assert_eq!(by.len(), 1);
        assert_eq!(by[&c.to_string()].get("rs1"), Some(&2));
        assert_eq!(connections_by_server(&m).get("rs2"), None);
    }

    /// With the user's servers and client only, the report counts the
    /// table's connections, judges stickiness from it, and says so.
    #[test]
    fn a_client_only_run_is_judged_on_the_tables_connections() {
        let scenario = testdata::failover_scenario();
        let mut m = testdata::steady_measurements(&scenario);
        let c = m.plan.client_addresses[0];
        m.rounds.clear();
        m.server_counts = vec![None; m.plan.servers.len()];
        m.user_servers = vec![true; m.plan.servers.len()];
        m.client = Some(crate::scenario::run::measurements::ClientRun {
            command: "client.py".into(),
            per: "ip".into(),
            processes: Vec::new(),
        });
        m.conn_table = (0..3)
            .map(|i| entry(&format!("{c}:{}", 40000 + i), "172.22.35.2:8080", false))
            .collect();
        let (report, _) = crate::scenario::assemble::assemble(&scenario, &m);
        let rs2 = report.servers.iter().find(|s| s.name == "rs2").unwrap();
        assert_eq!(rs2.connections, 3);
        assert_eq!(rs2.share, 1.0);
        assert_eq!(rs2.rpcs, 0);
        let client = report
            .clients
            .iter()
            .find(|x| x.address == c.to_string())
            .unwrap();
        assert!(client.sticky);
        assert_eq!(client.connections, Some(3));
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.starts_with("RPC counts: not available")),
            "{:?}",
            report.notes
        );
    }
}
