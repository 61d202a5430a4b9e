//! Per-call attribution and recording.
//!
//! Callers write into a few [`Shard`]s (one per runtime thread) under a
//! mutex that is uncontended in the common single-thread case; the shards
//! are merged into a [`LoadReport`](crate::report::LoadReport) at the end.
//! Server names are interned to `u16` ids ([`ServerTable`]), so recording
//! a call indexes vectors and a small hash map, and never allocates once
//! a connection and server have been seen.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

use crate::wire::ReplyView;

/// Highest latency tracked, in µs (60 s); larger values saturate.
pub const MAX_LATENCY_US: u64 = 60_000_000;

/// A new latency histogram in µs with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

/// A smaller histogram (2 significant digits) for per-source latency, since
/// there can be thousands of sources.
pub fn new_small_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 2).expect("static histogram bounds are valid")
}

/// Identity of one server as first seen in its replies.
#[derive(Debug, Clone, Default)]
pub struct ServerIdent {
    /// `server_name`.
    pub name: String,
    /// `server_addr` (empty until a successful reply carries it).
    pub address: String,
}

/// Interns server names to small ids shared by all callers.
#[derive(Debug, Default)]
pub struct ServerTable {
    servers: RwLock<Vec<ServerIdent>>,
}

impl ServerTable {
    /// Id of `name`, registering it (with `address`) on first sight.
    pub fn id_of(&self, name: &[u8], address: &[u8]) -> u16 {
        {
            let servers = self.servers.read().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = servers.iter().position(|s| s.name.as_bytes() == name)
                && (address.is_empty() || !servers[i].address.is_empty())
            {
                return i as u16;
            }
        }
        let mut servers = self.servers.write().unwrap_or_else(|e| e.into_inner());
        let addr = String::from_utf8_lossy(address).into_owned();
        if let Some(i) = servers.iter().position(|s| s.name.as_bytes() == name) {
            if servers[i].address.is_empty() {
                servers[i].address = addr;
            }
            return i as u16;
        }
        let id = servers.len().min(u16::MAX as usize) as u16;
        if servers.len() < u16::MAX as usize {
            servers.push(ServerIdent {
                name: String::from_utf8_lossy(name).into_owned(),
                address: addr,
            });
        }
        id
    }

    /// Snapshot of all servers, indexed by id.
    pub fn snapshot(&self) -> Vec<ServerIdent> {
        self.servers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A caller-local cache in front of [`ServerTable`]: the last few names
/// seen, compared byte-wise, so the shared lock is taken only on a miss.
#[derive(Debug, Default)]
pub struct NameCache {
    entries: Vec<(Box<[u8]>, u16)>,
}

impl NameCache {
    /// Id of the server that sent `view`.
    pub fn id_of(&mut self, table: &ServerTable, view: &ReplyView<'_>) -> u16 {
        if let Some((_, id)) = self.entries.iter().find(|(n, _)| **n == *view.server_name) {
            return *id;
        }
        let id = table.id_of(view.server_name, view.server_addr);
        if self.entries.len() >= 8 {
            self.entries.remove(0);
        }
        self.entries.push((view.server_name.into(), id));
        id
    }
}

/// FxHash-style hasher for `(u16, u64)` keys: the keys are server-chosen
/// counters, not attacker-controlled, so SipHash's cost buys nothing.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Accumulated counts of one server in one shard.
#[derive(Debug)]
pub struct ServerAcc {
    /// Measured successful RPC latency.
    pub hist: Histogram<u64>,
    /// Measured successes.
    pub rpcs: u64,
    /// Measured failures attributed to this server.
    pub errors: u64,
    /// Warmup successes.
    pub warmup_rpcs: u64,
    /// Successes including warmup (progress).
    pub live_rpcs: u64,
}

impl Default for ServerAcc {
    fn default() -> Self {
        Self {
            hist: new_histogram(),
            rpcs: 0,
            errors: 0,
            warmup_rpcs: 0,
            live_rpcs: 0,
        }
    }
}

/// Accumulated counts of one source address in one shard.
#[derive(Debug)]
pub struct SourceAcc {
    /// Measured successful RPC latency.
    pub hist: Histogram<u64>,
    /// Measured successes.
    pub rpcs: u64,
    /// Measured failures.
    pub errors: u64,
    /// Measured successes per server id.
    pub per_server: Vec<u64>,
    /// Source IP as seen by the server, for unbound sources.
    pub observed_ip: Option<IpAddr>,
}

impl Default for SourceAcc {
    fn default() -> Self {
        Self {
            hist: new_small_histogram(),
            rpcs: 0,
            errors: 0,
            per_server: Vec::new(),
            observed_ip: None,
        }
    }
}

/// The server id of generic mode's replies, which name no server. It is
/// registered as the first (and only) server of the run's
/// [`ServerTable`], so recording indexes vectors as in the demo mode; the
/// report leaves it out of `servers` (see
/// [`LoadReport::servers`](crate::report::LoadReport::servers)).
pub const UNATTRIBUTED: u16 = 0;

/// The name [`UNATTRIBUTED`] is registered under (a timeline key).
pub const UNATTRIBUTED_NAME: &str = "unattributed";

/// The connection a success came over.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnSeen {
    /// The server's connection id (demo mode), or the client's connection
    /// serial (generic mode).
    pub id: u64,
    /// The client's port: as the server saw it (demo), or the socket's own
    /// local port at connect time (generic).
    pub local_port: u16,
    /// The client address as the server saw it (demo mode only).
    pub observed_ip: Option<IpAddr>,
}

/// One connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnAcc {
    /// Index of the source address.
    pub source: u32,
    /// The client's port (see [`ConnSeen::local_port`]).
    pub local_port: u16,
    /// Measured successes.
    pub rpcs: u64,
}

/// One timeline interval.
#[derive(Debug, Clone, Default)]
pub struct Bucket {
    /// Successes per server id.
    pub ok: Vec<u64>,
    /// Failures per status code.
    pub errors: [u64; 17],
}

/// Everything recorded by the callers of one shard.
#[derive(Debug)]
pub struct Shard {
    /// Overall measured successful latency.
    pub overall: Histogram<u64>,
    /// By server id.
    pub servers: Vec<ServerAcc>,
    /// By source index.
    pub sources: Vec<SourceAcc>,
    /// By (server id, server connection id).
    pub conns: HashMap<(u16, u64), ConnAcc, BuildHasherDefault<FastHasher>>,
    /// Measured RPCs per status code (0 = OK).
    pub status: [u64; 17],
    /// Timeline of the measured phase.
    pub timeline: Vec<Bucket>,
    /// Measured successes.
    pub ok: u64,
    /// Measured failures.
    pub errors: u64,
    /// Warmup successes.
    pub warmup_ok: u64,
    /// Failures including warmup (progress).
    pub live_errors: u64,
}

impl Shard {
    /// An empty shard for `sources` source addresses.
    pub fn new(sources: usize) -> Self {
        Self {
            overall: new_histogram(),
            servers: Vec::new(),
            sources: (0..sources).map(|_| SourceAcc::default()).collect(),
            conns: HashMap::default(),
            status: [0; 17],
            timeline: Vec::new(),
            ok: 0,
            errors: 0,
            warmup_ok: 0,
            live_errors: 0,
        }
    }

    fn server(&mut self, id: u16) -> &mut ServerAcc {
        let i = id as usize;
        if self.servers.len() <= i {
            self.servers.resize_with(i + 1, ServerAcc::default);
        }
        &mut self.servers[i]
    }

    fn bucket(&mut self, idx: usize) -> &mut Bucket {
        if self.timeline.len() <= idx {
            self.timeline.resize_with(idx + 1, Bucket::default);
        }
        &mut self.timeline[idx]
    }

    /// Records a success named by the demo's reply. `bucket` is the
    /// timeline index (None in warmup).
    pub fn record_ok(
        &mut self,
        source: usize,
        server: u16,
        view: &ReplyView<'_>,
        latency_us: u64,
        bucket: Option<usize>,
    ) {
        let conn = ConnSeen {
            id: view.conn_id,
            local_port: view.peer_port().unwrap_or(0),
            observed_ip: view.peer_ip(),
        };
        self.record_ok_on(source, server, conn, latency_us, bucket);
    }

    /// Records a success on connection `conn` of `server` (in generic mode
    /// [`UNATTRIBUTED`] and the client's own connection serial).
    pub fn record_ok_on(
        &mut self,
        source: usize,
        server: u16,
        conn: ConnSeen,
        latency_us: u64,
        bucket: Option<usize>,
    ) {
        let Some(bucket) = bucket else {
            let s = self.server(server);
            s.warmup_rpcs += 1;
            s.live_rpcs += 1;
            self.warmup_ok += 1;
            return;
        };
        self.ok += 1;
        self.status[0] += 1;
        self.overall.saturating_record(latency_us);
        let s = self.server(server);
        s.rpcs += 1;
        s.live_rpcs += 1;
        s.hist.saturating_record(latency_us);
        let src = &mut self.sources[source];
        src.rpcs += 1;
        src.hist.saturating_record(latency_us);
        let i = server as usize;
        if src.per_server.len() <= i {
            src.per_server.resize(i + 1, 0);
        }
        src.per_server[i] += 1;
        if src.observed_ip.is_none() {
            src.observed_ip = conn.observed_ip;
        }
        let c = self
            .conns
            .entry((server, conn.id))
            .or_insert_with(|| ConnAcc {
                source: source as u32,
                local_port: conn.local_port,
                rpcs: 0,
            });
        c.rpcs += 1;
        let b = self.bucket(bucket);
        if b.ok.len() <= i {
            b.ok.resize(i + 1, 0);
        }
        b.ok[i] += 1;
    }

    /// Records a failure with gRPC status `code`, attributed to `server` if
    /// the status named one.
    pub fn record_err(
        &mut self,
        source: usize,
        code: usize,
        server: Option<u16>,
        bucket: Option<usize>,
    ) {
        self.live_errors += 1;
        let Some(bucket) = bucket else { return };
        let code = code.min(16);
        self.errors += 1;
        self.status[code] += 1;
        self.sources[source].errors += 1;
        if let Some(id) = server {
            self.server(id).errors += 1;
        }
        self.bucket(bucket).errors[code] += 1;
    }
}

/// Longest-gap tracking of one source, shared by all its callers (which may
/// record into different shards), lock-free.
#[derive(Debug, Default)]
pub struct GapTracker {
    /// Nanoseconds since measure start of the latest success.
    last_ns: AtomicU64,
    /// Longest gap so far, in nanoseconds.
    max_gap_ns: AtomicU64,
}

impl GapTracker {
    /// Notes a success at `t_ns` after measure start.
    pub fn success(&self, t_ns: u64) {
        let prev = self.last_ns.fetch_max(t_ns, Ordering::Relaxed);
        if t_ns > prev {
            self.max_gap_ns.fetch_max(t_ns - prev, Ordering::Relaxed);
        }
    }

    /// Longest gap in ms, given the end of the measured phase.
    pub fn longest_gap_ms(&self, end_ns: u64) -> f64 {
        let last = self.last_ns.load(Ordering::Relaxed);
        let max = self.max_gap_ns.load(Ordering::Relaxed);
        max.max(end_ns.saturating_sub(last)) as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable() {
        let t = ServerTable::default();
        let a = t.id_of(b"rs1", b"");
        let b = t.id_of(b"rs2", b"10.0.0.2:80");
        assert_eq!(t.id_of(b"rs1", b"10.0.0.1:80"), a);
        assert_ne!(a, b);
        let snap = t.snapshot();
        assert_eq!(snap[a as usize].address, "10.0.0.1:80");
        let mut cache = NameCache::default();
        let view = ReplyView {
            server_name: b"rs2",
            ..Default::default()
        };
        assert_eq!(cache.id_of(&t, &view), b);
        assert_eq!(cache.id_of(&t, &view), b);
    }

    #[test]
    fn gaps_include_start_and_end() {
        let g = GapTracker::default();
        g.success(100_000_000);
        g.success(150_000_000);
        assert_eq!(g.longest_gap_ms(200_000_000), 100.0);
        assert_eq!(g.longest_gap_ms(500_000_000), 350.0);
        let none = GapTracker::default();
        assert_eq!(none.longest_gap_ms(1_000_000_000), 1000.0);
    }
}
