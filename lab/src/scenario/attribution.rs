//! Attribution without the server's help: IPVS balances connections, so
//! each connection's 4-tuple (client address and port, VIP and port) names
//! one real server in the director's connection table, and every RPC on
//! that connection went to that server. Pure: the table's lives come from
//! [`ConnLog`] (sampled during the run), the connections from the load
//! generator's records (`bench::report::ConnectionReport`: source address,
//! local port, RPCs, and the server's identity when the server tells it).
//!
//! - [`attribute`]: the join. When the replies carry a server identity (the
//!   demo server) the two are compared connection for connection; when they
//!   do not (a user's server, loadgen's generic mode) the table alone
//!   attributes. A connection the table never showed is counted as
//!   *unseen*; a 4-tuple the table showed on two servers during the
//!   connection's round (a reused client port) is *ambiguous*; neither is
//!   guessed.
//! - [`table_view`]: for runs without any load-generator records (a
//!   `[client]` that is the user's own program): per-server connections and
//!   per-client-IP server sets from the table alone. Call it with the run's
//!   `Measurements::conn_log` and [`Servers::of`] the plan.
//!
//! A reused port is told apart by time: the table keeps each 4-tuple's
//! lives with first and last sample times, and a connection of round *k*
//! belongs to a life that began while round *k*'s load generator ran.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use bench::report::LoadReport;

use crate::ipvs::{ConnLife, ConnLog};
use crate::network::Plan;
use crate::report::attribution::{
    Attribution, AttributionMethod, MAX_EXAMPLES, Mismatch, ServerSideCheck, TableCounts,
};
use crate::scenario::run::peers::PeerLog;

/// Slack around a round's window: the table is sampled about once a
/// second, so a connection can first show up that much after its round.
pub const WINDOW_SLACK_S: f64 = 1.5;

/// One connection the load generator recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConn {
    /// Its client end (source address and local port); `None` when the
    /// source was not recorded.
    pub client: Option<SocketAddr>,
    /// The server that answered, by its own identity (`None`: no identity).
    pub server: Option<String>,
    /// Successful RPCs over it.
    pub rpcs: u64,
    /// When its round's load generator ran (seconds on the report's axis).
    pub window: Option<(f64, f64)>,
}

/// The load generator's connections of every round, with their round's
/// window when it is known.
pub fn client_conns(rounds: &[LoadReport], windows: &[(f64, f64)]) -> Vec<ClientConn> {
    rounds
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            let window = windows.get(i).copied();
            r.connections.iter().map(move |c| ClientConn {
                client: c
                    .source
                    .parse::<IpAddr>()
                    .ok()
                    .map(|ip| SocketAddr::new(ip, c.local_port)),
                server: (!c.server.is_empty()).then(|| c.server.clone()),
                rpcs: c.rpcs,
                window,
            })
        })
        .collect()
}

/// The real servers by destination, the VIP, and the client addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct Servers {
    /// The VIP and port clients connect to.
    pub vip: SocketAddr,
    /// Server names in plan order.
    pub names: Vec<String>,
    /// Destination (`address:port`) → index into `names`.
    pub by_dest: HashMap<SocketAddr, usize>,
    /// The client addresses (table entries from elsewhere are not counted).
    pub clients: HashSet<IpAddr>,
}

impl Servers {
    /// The plan's servers, VIP and client addresses.
    pub fn of(plan: &Plan) -> Self {
        Servers {
            vip: plan.target,
            names: plan.servers.iter().map(|s| s.name.clone()).collect(),
            by_dest: plan
                .servers
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    (
                        SocketAddr::new(s.destination.address, s.destination.port),
                        i,
                    )
                })
                .collect(),
            clients: plan
                .client_addresses
                .iter()
                .map(|a| IpAddr::V4(*a))
                .collect(),
        }
    }

    /// A destination's server name, or the destination itself.
    pub fn name(&self, dest: SocketAddr) -> String {
        self.by_dest
            .get(&dest)
            .map_or_else(|| dest.to_string(), |i| self.names[*i].clone())
    }

    /// The table's connection lives from client addresses to the VIP.
    fn lives<'a>(&'a self, log: &'a ConnLog) -> impl Iterator<Item = (SocketAddr, &'a ConnLife)> {
        log.connections()
            .filter(move |(c, v, _)| *v == self.vip && self.clients.contains(&c.ip()))
            .map(|(c, _, l)| (c, l))
    }
}

/// What the table says about one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableSays {
    /// One real server.
    Server(SocketAddr),
    /// The table never showed the 4-tuple (in the connection's round).
    Unseen,
    /// The 4-tuple named several servers in the connection's round.
    Ambiguous(Vec<SocketAddr>),
}

fn distinct_dests<'a>(lives: impl Iterator<Item = &'a ConnLife>) -> Vec<SocketAddr> {
    let set: BTreeSet<SocketAddr> = lives.map(|l| l.dest).collect();
    set.into_iter().collect()
}

fn verdict(dests: Vec<SocketAddr>) -> TableSays {
    match dests.as_slice() {
        [] => TableSays::Unseen,
        [one] => TableSays::Server(*one),
        _ => TableSays::Ambiguous(dests),
    }
}

/// The server the table gives one connection: the lives of its 4-tuple
/// that began in its round's window, else those visible in it, else (no
/// window) all of them.
pub fn table_server(log: &ConnLog, vip: SocketAddr, conn: &ClientConn) -> TableSays {
    let Some(client) = conn.client else {
        return TableSays::Unseen;
    };
    let lives = log.lives(client, vip);
    let Some((from, to)) = conn.window else {
        return verdict(distinct_dests(lives.iter()));
    };
    let began = distinct_dests(
        lives
            .iter()
            .filter(|l| l.first_s >= from - WINDOW_SLACK_S && l.first_s <= to + WINDOW_SLACK_S),
    );
    if !began.is_empty() {
        return verdict(began);
    }
    verdict(distinct_dests(
        lives
            .iter()
            .filter(|l| l.overlaps(from, to, WINDOW_SLACK_S)),
    ))
}

/// The join's per-client result: client IP → server → RPCs (table only).
pub type PerClientRpcs = BTreeMap<IpAddr, BTreeMap<String, u64>>;

/// Joins the load generator's connections with the table, compares with
/// the servers' identity where there is one, and cross-checks the table
/// with the servers' own peers (`peers`, plan order; may be empty).
pub fn attribute(
    conns: &[ClientConn],
    log: &ConnLog,
    servers: &Servers,
    peers: &[PeerLog],
) -> (Attribution, PerClientRpcs) {
    let mut a = Attribution {
        connections: conns.len() as u64,
        table_samples: log.samples(),
        table_templates: log.templates().count() as u64,
        per_server: servers
            .names
            .iter()
            .map(|n| (n.clone(), TableCounts::default()))
            .collect(),
        ..Default::default()
    };
    for (_, life) in servers.lives(log) {
        a.table_connections += 1;
        a.per_server
            .entry(servers.name(life.dest))
            .or_default()
            .table_connections += 1;
    }
    let mut per_client = PerClientRpcs::new();
    for c in conns {
        a.with_identity += u64::from(c.server.is_some());
        let says = table_server(log, servers.vip, c);
        let dest = match says {
            TableSays::Server(d) => d,
            TableSays::Unseen => {
                a.unseen += 1;
                a.unattributed_rpcs += c.rpcs;
                if a.unseen_examples.len() < MAX_EXAMPLES {
                    a.unseen_examples
                        .push(c.client.map_or_else(|| "unknown".into(), |s| s.to_string()));
                }
                continue;
            }
            TableSays::Ambiguous(_) => {
                a.ambiguous += 1;
                a.unattributed_rpcs += c.rpcs;
                continue;
            }
        };
        let name = servers.name(dest);
        a.in_table += 1;
        let counts = a.per_server.entry(name.clone()).or_default();
        counts.connections += 1;
        counts.rpcs += c.rpcs;
        if let Some(client) = c.client {
            *per_client
                .entry(client.ip())
                .or_default()
                .entry(name.clone())
                .or_default() += c.rpcs;
        }
        match &c.server {
            Some(own) if *own == name => a.agree += 1,
            Some(own) => {
                a.disagree += 1;
                if a.mismatches.len() < MAX_EXAMPLES {
                    a.mismatches.push(Mismatch {
                        client: c.client.map_or_else(|| "unknown".into(), |s| s.to_string()),
                        server_says: own.clone(),
                        table_says: name,
                    });
                }
            }
            None => {}
        }
    }
    a.method = method(&a);
    a.server_side = server_side(log, servers, peers);
    (a, per_client)
}

/// Which attribution the counts rest on.
fn method(a: &Attribution) -> AttributionMethod {
    if a.with_identity == 0 {
        AttributionMethod::KernelTable
    } else if a.table_samples == 0 || a.agree + a.disagree == 0 {
        AttributionMethod::ServerIdentity
    } else if a.disagree == 0 {
        AttributionMethod::BothAgree
    } else {
        AttributionMethod::BothDisagree
    }
}

/// Each table connection against the servers' own established peers at
/// the same samples: on the named server, on none, or on another one.
fn server_side(log: &ConnLog, servers: &Servers, peers: &[PeerLog]) -> Option<ServerSideCheck> {
    if peers.iter().all(|p| p.samples == 0) {
        return None;
    }
    let seen = |i: usize, client: SocketAddr, life: &ConnLife| {
        peers
            .get(i)
            .and_then(|p| p.peers.get(&client))
            .is_some_and(|(first, last)| *first <= life.last_s && *last >= life.first_s)
    };
    let mut c = ServerSideCheck::default();
    for (client, life) in servers.lives(log) {
        let Some(&own) = servers.by_dest.get(&life.dest) else {
            continue;
        };
        c.checked += 1;
        if seen(own, client, life) {
            c.confirmed += 1;
        } else if let Some(other) = (0..servers.names.len()).find(|&i| seen(i, client, life)) {
            c.elsewhere += 1;
            if c.elsewhere_examples.len() < MAX_EXAMPLES {
                c.elsewhere_examples.push(format!(
                    "{client} on {}, table says {}",
                    servers.names[other], servers.names[own]
                ));
            }
        } else {
            c.not_seen += 1;
        }
    }
    Some(c)
}

/// What the table alone shows, for runs with no load-generator records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableView {
    /// Connections (lives) per server name, every plan server present.
    pub per_server: BTreeMap<String, u64>,
    /// Per client IP: server name → connections.
    pub per_client: BTreeMap<IpAddr, BTreeMap<String, u64>>,
    /// Per client IP: the servers its persistence templates named.
    pub templates: BTreeMap<IpAddr, BTreeSet<String>>,
}

/// Per-server connections and per-client-IP server sets from the table
/// alone (only entries from client addresses to the VIP count).
pub fn table_view(log: &ConnLog, servers: &Servers) -> TableView {
    let mut v = TableView {
        per_server: servers.names.iter().map(|n| (n.clone(), 0)).collect(),
        ..Default::default()
    };
    for (client, life) in servers.lives(log) {
        let name = servers.name(life.dest);
        *v.per_server.entry(name.clone()).or_default() += 1;
        *v.per_client
            .entry(client.ip())
            .or_default()
            .entry(name)
            .or_default() += 1;
    }
    for (client, vip, life) in log.templates() {
        if vip == servers.vip && servers.clients.contains(&client) {
            v.templates
                .entry(client)
                .or_default()
                .insert(servers.name(life.dest));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n";
    const VIP: &str = "192.168.122.1:8080";

    /// A table line: client 172.22.35.100:`cport` to rs`rs`.
    fn line(cport: u16, rs: u8, state: &str) -> String {
        format!("TCP AC162364 {cport:04X} C0A87A01 1F90 AC1623{rs:02X} 1F90 {state:<11} 899\n")
    }

    fn table(lines: &[String]) -> String {
        let mut s = HEAD.to_owned();
        s.extend(lines.iter().map(String::as_str));
        s
    }

    fn servers() -> Servers {
        Servers {
            vip: VIP.parse().unwrap(),
            names: vec!["rs1".into(), "rs2".into()],
            by_dest: HashMap::from([
                ("172.22.35.1:8080".parse().unwrap(), 0),
                ("172.22.35.2:8080".parse().unwrap(), 1),
            ]),
            clients: HashSet::from(["172.22.35.100".parse().unwrap()]),
        }
    }

    fn conn(port: u16, server: Option<&str>, rpcs: u64, window: Option<(f64, f64)>) -> ClientConn {
        ClientConn {
            client: Some(SocketAddr::new("172.22.35.100".parse().unwrap(), port)),
            server: server.map(str::to_owned),
            rpcs,
            window,
        }
    }

    fn log_of(samples: &[(f64, Vec<String>)]) -> ConnLog {
        let mut log = ConnLog::new();
        for (t, lines) in samples {
            log.observe_text(*t, &table(lines));
        }
        log
    }

    #[test]
    fn both_agree_connection_for_connection() {
        let log = log_of(&[(
            1.0,
            vec![line(40000, 1, "ESTABLISHED"), line(40001, 2, "ESTABLISHED")],
        )]);
        let conns = [
            conn(40000, Some("rs1"), 10, None),
            conn(40001, Some("rs2"), 7, None),
        ];
        let (a, per_client) = attribute(&conns, &log, &servers(), &[]);
        assert_eq!(a.method, AttributionMethod::BothAgree);
        assert_eq!((a.agree, a.disagree, a.unseen), (2, 0, 0));
        assert_eq!(a.per_server["rs1"].rpcs, 10);
        assert_eq!(a.per_server["rs2"].connections, 1);
        assert_eq!(per_client.values().next().unwrap()["rs2"], 7);
        assert!(a.server_side.is_none());
    }

    #[test]
    fn a_disagreement_is_counted_and_shown() {
        let log = log_of(&[(
            1.0,
            vec![line(40000, 1, "ESTABLISHED"), line(40001, 2, "ESTABLISHED")],
        )]);
        let conns = [
            conn(40000, Some("rs1"), 10, None),
            conn(40001, Some("rs1"), 7, None),
        ];
        let (a, _) = attribute(&conns, &log, &servers(), &[]);
        assert_eq!(a.method, AttributionMethod::BothDisagree);
        assert_eq!((a.agree, a.disagree), (1, 1));
        assert_eq!(
            a.mismatches,
            [Mismatch {
                client: "172.22.35.100:40001".into(),
                server_says: "rs1".into(),
                table_says: "rs2".into(),
            }]
        );
    }

    #[test]
    fn without_identity_the_table_attributes_and_unseen_is_counted() {
        let log = log_of(&[(1.0, vec![line(40000, 2, "ESTABLISHED")])]);
        let conns = [conn(40000, None, 10, None), conn(40009, None, 3, None)];
        let (a, _) = attribute(&conns, &log, &servers(), &[]);
        assert_eq!(a.method, AttributionMethod::KernelTable);
        assert_eq!((a.in_table, a.unseen, a.unattributed_rpcs), (1, 1, 3));
        assert_eq!(a.unseen_examples, ["172.22.35.100:40009"]);
        assert_eq!(a.per_server["rs2"].rpcs, 10);
        assert_eq!(a.per_server["rs1"], TableCounts::default());
    }

    #[test]
    fn a_port_reused_by_a_later_round_is_told_apart_by_time() {
        // Round 1 (0-3 s): port 40000 on rs1, closing; round 2 (10-13 s):
        // the same port reopened on rs2 while the old entry still showed.
        let log = log_of(&[
            (1.0, vec![line(40000, 1, "ESTABLISHED")]),
            (5.0, vec![line(40000, 1, "TIME_WAIT")]),
            (11.0, vec![line(40000, 2, "ESTABLISHED")]),
        ]);
        let conns = [
            conn(40000, Some("rs1"), 10, Some((0.0, 3.0))),
            conn(40000, Some("rs2"), 20, Some((10.0, 13.0))),
        ];
        let (a, _) = attribute(&conns, &log, &servers(), &[]);
        assert_eq!((a.agree, a.disagree, a.ambiguous), (2, 0, 0), "{a:?}");
        // Without the windows the same 4-tuple names two servers.
        let blind = [conn(40000, Some("rs1"), 10, None)];
        let (a, _) = attribute(&blind, &log, &servers(), &[]);
        assert_eq!((a.ambiguous, a.agree), (1, 0));
        assert_eq!(a.method, AttributionMethod::ServerIdentity);
    }

    #[test]
    fn server_side_peers_confirm_or_contradict_the_table() {
        let log = log_of(&[(
            1.0,
            vec![
                line(40000, 1, "ESTABLISHED"),
                line(40001, 2, "ESTABLISHED"),
                line(40002, 2, "ESTABLISHED"),
            ],
        )]);
        let peer = |p: u16| SocketAddr::new("172.22.35.100".parse().unwrap(), p);
        let mut rs1 = PeerLog::default();
        rs1.observe(1.0, &[peer(40000), peer(40001)]);
        let rs2 = PeerLog {
            samples: 1,
            ..Default::default()
        };
        let (a, _) = attribute(&[], &log, &servers(), &[rs1, rs2]);
        let c = a.server_side.unwrap();
        assert_eq!(
            (c.checked, c.confirmed, c.elsewhere, c.not_seen),
            (3, 1, 1, 1)
        );
        assert_eq!(
            c.elsewhere_examples,
            ["172.22.35.100:40001 on rs1, table says rs2"]
        );
    }

    #[test]
    fn table_view_needs_no_load_generator() {
        let log = log_of(&[(
            1.0,
            vec![
                line(0, 1, "NONE"),
                line(40000, 1, "ESTABLISHED"),
                line(40001, 1, "ESTABLISHED"),
            ],
        )]);
        let v = table_view(&log, &servers());
        assert_eq!(
            v.per_server,
            BTreeMap::from([("rs1".into(), 2), ("rs2".into(), 0)])
        );
        let ip: IpAddr = "172.22.35.100".parse().unwrap();
        assert_eq!(v.per_client[&ip]["rs1"], 2);
        assert_eq!(v.templates[&ip], BTreeSet::from(["rs1".to_owned()]));
    }
}
