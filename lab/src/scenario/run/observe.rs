//! Watching IPVS and the servers: the 100 ms destination watcher (how
//! detection is timed), the once-a-second samples, the wait for IPVS's
//! counters to settle, `ipvsadm` as the independent reader, the connection
//! table, and the servers' own counters.
//!
//! An observation that fails is skipped, not fatal: observing must not
//! change the run's outcome.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::RunError;
use super::live::Origin;
use super::measurements::{IpvsChange, IpvsSample, ServerCount};
use super::peers::PeerLog;
use crate::error_chain;
use crate::ipvs::{ConnEntry, ConnLog, IpvsTable};
use crate::network::CLIENT_HOST;
use crate::network::Plan;
use crate::network::{BringupError, LabNetwork};
use crate::process::ChildGuard;
use crate::procstat::SockStat;
use crate::report::model::IpvsDestSample;

/// A change of the destination set, stamped when it was seen.
#[derive(Debug, Clone)]
pub(super) struct SeenChange {
    at: Instant,
    dest: String,
    from: Option<i32>,
    to: Option<i32>,
}

impl SeenChange {
    /// The change on the report's time axis.
    pub(super) fn rebase(&self, origin: Origin) -> IpvsChange {
        IpvsChange {
            t_s: origin.secs(self.at),
            dest: self.dest.clone(),
            from: self.from,
            to: self.to,
        }
    }
}

/// Polls the director's IPVS destinations every 100 ms and records every
/// change with its instant: this is how detection is timed for the lab's
/// checker and keepalived alike. One netlink dump costs about 1 ms.
pub(super) struct IpvsWatcher {
    handle: Option<crate::ipvs::IpvsHandle>,
    last_poll: Instant,
    last: Option<BTreeMap<String, i32>>,
    pub(super) changes: Vec<SeenChange>,
}

impl IpvsWatcher {
    /// Opens a netlink handle in the director and takes the first reading.
    pub(super) fn open(lab: &LabNetwork) -> Self {
        let handle = lab
            .director()
            .run(crate::ipvs::IpvsHandle::open)
            .ok()
            .and_then(Result::ok);
        let mut w = IpvsWatcher {
            handle,
            last_poll: Instant::now() - Duration::from_secs(1),
            last: None,
            changes: Vec::new(),
        };
        w.poll(lab.plan());
        w
    }

    /// Reads the destination set if 100 ms have passed, and records what
    /// changed since the last reading.
    pub(super) fn poll(&mut self, plan: &Plan) {
        if self.last_poll.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last_poll = Instant::now();
        let Some(now) = self.read(plan) else { return };
        let at = Instant::now();
        if let Some(last) = &self.last {
            let keys: BTreeSet<&String> = last.keys().chain(now.keys()).collect();
            for k in keys {
                let (from, to) = (last.get(k).copied(), now.get(k).copied());
                if from != to {
                    self.changes.push(SeenChange {
                        at,
                        dest: k.clone(),
                        from,
                        to,
                    });
                }
            }
        }
        self.last = Some(now);
    }

    /// Destination → weight; empty when the service is gone, `None` when
    /// the read failed.
    fn read(&self, plan: &Plan) -> Option<BTreeMap<String, i32>> {
        let h = self.handle.as_ref()?;
        match h.service(&plan.service).ok()? {
            Some(_) => Some(
                h.destinations(&plan.service)
                    .ok()?
                    .iter()
                    .map(|d| {
                        (
                            SocketAddr::new(d.destination.address, d.destination.port).to_string(),
                            d.destination.weight,
                        )
                    })
                    .collect(),
            ),
            None => Some(BTreeMap::new()),
        }
    }
}

/// A sentence for an IPVS change: `rs1 removed from IPVS (was weight 1)`.
pub(super) fn describe_change(plan: &Plan, c: &IpvsChange) -> String {
    let name = plan
        .servers
        .iter()
        .find(|s| s.destination_key() == c.dest)
        .map_or(c.dest.clone(), |s| s.name.clone());
    match (c.from, c.to) {
        (Some(w), None) => format!("{name} removed from IPVS (was weight {w})"),
        (None, Some(w)) => format!("{name} added to IPVS with weight {w}"),
        (Some(a), Some(b)) => format!("{name} weight {a} -> {b} in IPVS"),
        (None, None) => format!("{name} unchanged"),
    }
}

/// One IPVS sample, stamped when it was read.
#[derive(Debug, Clone)]
pub(super) struct SeenSample {
    at: Instant,
    templates: usize,
    destinations: Vec<IpvsDestSample>,
    client_sockets: Option<SockStat>,
}

impl SeenSample {
    /// The sample on the report's time axis.
    pub(super) fn rebase(&self, origin: Origin) -> IpvsSample {
        IpvsSample {
            t_s: origin.secs(self.at),
            templates: self.templates,
            destinations: self.destinations.clone(),
            client_sockets: self.client_sockets,
        }
    }
}

/// What the samplers keep over the whole run: every connection-table
/// mapping and every server's established peers, on one clock
/// (seconds since `base`).
#[derive(Debug)]
pub(super) struct Trackers {
    base: Instant,
    pub(super) conn_log: ConnLog,
    pub(super) peers: Vec<PeerLog>,
}

impl Trackers {
    /// Empty trackers, one peer log per planned server.
    pub(super) fn new(plan: &Plan) -> Self {
        Trackers {
            base: Instant::now(),
            conn_log: ConnLog::new(),
            peers: vec![PeerLog::default(); plan.servers.len()],
        }
    }

    fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.base).as_secs_f64()
    }

    /// Folds in the director's connection table as read at `at`; the number
    /// of templates, `None` when it could not be read.
    pub(super) fn observe_table(&mut self, lab: &LabNetwork, at: Instant) -> Option<usize> {
        let text = lab
            .director()
            .run(crate::ipvs::conntable::read_conn_text)
            .ok()?
            .ok()?;
        Some(self.conn_log.observe_text(self.secs(at), &text))
    }

    /// Folds in each real server's established peers on its port, read in
    /// its own namespace (a server whose namespace cannot be entered is
    /// skipped for this sample).
    pub(super) fn observe_servers(&mut self, lab: &LabNetwork, at: Instant) {
        let t_s = self.secs(at);
        for (s, log) in lab.plan().servers.iter().zip(&mut self.peers) {
            let port = s.port;
            let Ok(ns) = lab.ns(&s.name) else { continue };
            if let Ok(peers) = ns.run(move || super::peers::read_established_peers(port)) {
                log.observe(t_s, &peers);
            }
        }
    }

    /// Both logs on the report's time axis.
    pub(super) fn rebase(mut self, origin: Origin) -> (ConnLog, Vec<PeerLog>) {
        let by = origin.secs(self.base);
        self.conn_log.shift(by);
        for p in &mut self.peers {
            p.shift(by);
        }
        (self.conn_log, self.peers)
    }
}

/// Reads the IPVS state once: persistence templates and, per destination,
/// weight and connection counts; folds the connection table and the
/// servers' peers into `trackers` on the way.
pub(super) fn sample(lab: &LabNetwork, at: Instant, trackers: &mut Trackers) -> Option<SeenSample> {
    let table = lab.ipvs(|h| h.table()).ok()?;
    let templates = trackers.observe_table(lab, at).unwrap_or(0);
    trackers.observe_servers(lab, at);
    let destinations = table
        .services
        .iter()
        .flat_map(|s| &s.destinations)
        .map(|d| IpvsDestSample {
            address: d.destination.address.to_string(),
            weight: d.destination.weight,
            active: d.active_conns,
            inactive: d.inactive_conns,
            persistent: d.persist_conns,
            conns: d.stats.conns,
        })
        .collect();
    Some(SeenSample {
        at,
        templates,
        destinations,
        client_sockets: client_sockstat(lab),
    })
}

/// The client namespace's TCP socket counts (`/proc/net/sockstat` is per
/// network namespace).
fn client_sockstat(lab: &LabNetwork) -> Option<SockStat> {
    let text = read_in_client(lab, "/proc/thread-self/net/sockstat")?;
    crate::procstat::parse_sockstat(&text).ok()
}

/// The client namespace's ephemeral port range (the sysctl is per network
/// namespace).
pub(super) fn client_port_range(lab: &LabNetwork) -> Option<(u16, u16)> {
    let text = read_in_client(lab, "/proc/sys/net/ipv4/ip_local_port_range")?;
    crate::procstat::parse_port_range(&text)
}

/// A `/proc` file as a thread inside the client namespace sees it: both the
/// `net` files and the `net` sysctls show the namespace of the thread that
/// opens them. `None` when the namespace or the file cannot be read.
fn read_in_client(lab: &LabNetwork, path: &'static str) -> Option<String> {
    lab.ns(CLIENT_HOST)
        .ok()?
        .run(move || std::fs::read_to_string(path))
        .ok()?
        .ok()
}

/// IPVS's per-destination counters are copied from per-CPU counters on the
/// estimator's 2 s tick, so a read right after traffic can show stale
/// values. Read until two reads a second apart agree, at least 2.2 s after
/// the load ended (bounded: 10 s).
pub(super) fn settle_ipvs(
    lab: &LabNetwork,
    interrupted: &AtomicBool,
) -> Result<IpvsTable, RunError> {
    let start = Instant::now();
    let mut last: Option<IpvsTable> = None;
    loop {
        if interrupted.load(Ordering::SeqCst) {
            return Err(RunError::Interrupted);
        }
        let table = lab.ipvs(|h| h.table())?;
        let stable = last
            .as_ref()
            .is_some_and(|prev| counters(prev) == counters(&table));
        if (stable && start.elapsed() >= Duration::from_millis(2200))
            || start.elapsed() > Duration::from_secs(10)
        {
            return Ok(table);
        }
        last = Some(table);
        std::thread::sleep(Duration::from_millis(1000));
    }
}

fn counters(t: &IpvsTable) -> Vec<(u64, u64, u64)> {
    t.services
        .iter()
        .flat_map(|s| &s.destinations)
        .map(|d| (d.stats.conns, d.stats.inpkts, d.stats.outpkts))
        .collect()
}

/// `/proc/net/ip_vs_conn` in the director.
pub(super) fn conn_table(lab: &LabNetwork) -> Result<Vec<ConnEntry>, RunError> {
    Ok(lab
        .director()
        .run(crate::ipvs::read_conn_table)
        .map_err(BringupError::from)?
        .unwrap_or_default())
}

/// Runs `ipvsadm ARGS` in the director namespace (the independent reader).
pub(super) fn ipvsadm_in(lab: &LabNetwork, args: &[&str]) -> Option<String> {
    use crate::netns::CommandExt;
    let mut cmd = Command::new("ipvsadm");
    cmd.args(args).stdin(Stdio::null());
    cmd.netns(lab.director()).ok()?;
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Each server's own counters (plan order), `None` for one that is not
/// running or cannot be asked (a fault may have cut it off).
pub(super) fn server_counts(
    lab: &LabNetwork,
    servers: &mut [Option<ChildGuard>],
    user: &[bool],
) -> Vec<Option<ServerCount>> {
    let plan = lab.plan();
    let clients: Vec<IpAddr> = plan
        .client_addresses
        .iter()
        .map(|a| IpAddr::V4(*a))
        .collect();
    plan.servers
        .iter()
        .zip(servers)
        .enumerate()
        .map(|(i, (s, guard))| {
            // A user's own server has no `Stats` RPC to ask.
            let alive = !user.get(i).copied().unwrap_or(false)
                && guard.as_mut().is_some_and(|g| g.try_wait().is_none());
            let addr = SocketAddr::new(IpAddr::V4(s.address), s.port);
            if !alive {
                return None;
            }
            server_counters(lab, addr, &clients)
                .inspect_err(
                    |e| tracing::warn!(server = %s.name, "its own counters could not be read: {e}"),
                )
                .ok()
        })
        .collect()
}

/// Asks a server for its own counters over gRPC from the director's
/// namespace (whose address is not a client's, so the question itself is
/// not counted), and sums what it saw from client addresses.
fn server_counters(
    lab: &LabNetwork,
    addr: SocketAddr,
    clients: &[IpAddr],
) -> Result<ServerCount, String> {
    let clients: HashSet<String> = clients.iter().map(|a| a.to_string()).collect();
    lab.director()
        .run(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                    .map_err(|e| e.to_string())?
                    .connect_timeout(Duration::from_secs(3))
                    .timeout(Duration::from_secs(5))
                    .connect()
                    .await
                    .map_err(|e| error_chain(&e))?;
                let mut client = grpc_demo::pb::demo_client::DemoClient::new(channel);
                let reply = client
                    .stats(grpc_demo::pb::StatsRequest {})
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner();
                let mut count = ServerCount {
                    rpcs: 0,
                    connections: 0,
                };
                for p in reply.peers.iter().filter(|p| clients.contains(&p.peer_ip)) {
                    count.rpcs += p.rpcs;
                    count.connections += p.connections;
                }
                Ok(count)
            })
        })
        .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_rebases_before_and_after() {
        let t0 = Instant::now();
        let origin = Origin(t0 + Duration::from_secs(2));
        assert_eq!(origin.secs(t0 + Duration::from_millis(3500)), 1.5);
        assert_eq!(origin.secs(t0), -2.0);
    }
}
