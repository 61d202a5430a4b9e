//! The load report: what `--json` writes and the lab reads back.
//!
//! Every type here is `Serialize + Deserialize` with snake_case fields, so
//! the lab can `serde_json::from_reader` the file into [`LoadReport`].
//! Counts cover the measured phase only unless a field says otherwise;
//! latencies cover successful RPCs only, in microseconds.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Version of this schema; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Number of recorded (successful) RPCs.
    pub count: u64,
    /// Smallest value.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stdev: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value.
    pub max: u64,
}

impl LatencySummary {
    /// Summarises a histogram of microseconds (all zeros when empty).
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            stdev: h.stdev(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One real server, identified by the name in its replies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerReport {
    /// `server_name` from the replies.
    pub name: String,
    /// The server's own address from the replies (the VIP in DR).
    pub address: String,
    /// Successful RPCs answered by this server.
    pub rpcs: u64,
    /// Failed RPCs whose status named this server (`x-server-name`).
    pub errors: u64,
    /// Successful RPCs during warmup (not in `rpcs`); `rpcs + warmup_rpcs`
    /// is what the server's own counter should say.
    pub warmup_rpcs: u64,
    /// Distinct server-side connection ids seen in the measured phase.
    pub connections: u64,
    /// Latency of this server's successful RPCs.
    pub latency_us: LatencySummary,
}

/// One client source address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceReport {
    /// The source IP (bound, or as seen by the server when unbound).
    pub address: String,
    /// Successful RPCs.
    pub rpcs: u64,
    /// Failed RPCs.
    pub errors: u64,
    /// Successful RPCs per server name.
    pub servers: BTreeMap<String, u64>,
    /// Distinct server connections used in the measured phase.
    pub connections: u64,
    /// Longest stretch without a successful completion from this source
    /// during the measured phase, including measure start → first success
    /// and last success → end.
    pub longest_gap_ms: f64,
    /// Latency of this source's successful RPCs (2 significant digits).
    pub latency_us: LatencySummary,
}

/// One TCP connection: in demo mode as the server identified it, in
/// generic mode as the client knows it.
///
/// `source` and `local_port` with the target are the connection's 4-tuple,
/// which names one real server in the director's IPVS connection table
/// (`/proc/net/ip_vs_conn`): that is how generic mode's connections are
/// attributed, without the server's help.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionReport {
    /// Source IP.
    pub source: String,
    /// The client's port: demo mode, as the server saw it (`peer_addr`);
    /// generic mode, the socket's local port read at connect time.
    pub local_port: u16,
    /// Server name; empty in generic mode (replies name no server).
    pub server: String,
    /// Demo mode: the server's connection id. Generic mode: loadgen's own
    /// connection serial (1, 2, ... in connect order).
    pub server_conn_id: u64,
    /// Successful RPCs over this connection in the measured phase.
    pub rpcs: u64,
}

/// One timeline interval of the measured phase, by completion time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelineBucket {
    /// Start of the interval, seconds since measure start.
    pub t_s: f64,
    /// Successful RPCs per server name.
    pub ok: BTreeMap<String, u64>,
    /// Failed RPCs per status code name.
    pub errors: BTreeMap<String, u64>,
}

/// Everything `loadgen` measured; exactly what `--json PATH` contains.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// `--target`.
    pub target: String,
    /// `closed` (concurrency) or `open` (rate, latency from intended send time).
    pub mode: String,
    /// Closed loop: callers; open loop: in-flight cap.
    pub concurrency: u64,
    /// Open loop: requested rate.
    pub target_rps: Option<f64>,
    /// `--channels` per source address.
    pub channels_per_source: u64,
    /// Connections opened by the load generator (initial + churn).
    pub channels_opened: u64,
    /// RPCs completed in the measured phase (ok + errors).
    pub total_rpcs: u64,
    /// Successful RPCs.
    pub ok_rpcs: u64,
    /// Failed RPCs.
    pub errors: u64,
    /// Successful RPCs during warmup (excluded everywhere else).
    pub warmup_rpcs: u64,
    /// Measured phase length, from its start until the last RPC completed.
    pub duration_s: f64,
    /// `total_rpcs / duration_s`.
    pub rps: f64,
    /// `ok_rpcs / duration_s`.
    pub ok_rps: f64,
    /// Latency of all successful RPCs.
    pub latency_us: LatencySummary,
    /// The overall histogram, HdrHistogram V2 serialization *without*
    /// deflate, base64 (standard alphabet, padded); values in µs.
    pub histogram_b64: String,
    /// Per server, by the name in its replies.
    ///
    /// **Empty in generic mode** ([`LoadReport::call`] is set): a foreign
    /// service's replies carry no server identity, and loadgen does not
    /// invent one. A placeholder entry would be summed, shared and judged
    /// as if it were a real server; an empty list says plainly "not
    /// attributed by the client". Attribute generic runs per connection
    /// instead ([`LoadReport::connections`], `source` + `local_port`,
    /// against the director's connection table); every RPC is still in
    /// `total_rpcs`, `ok_rpcs`, `errors` and `status_codes`.
    pub servers: Vec<ServerReport>,
    /// Per source address, in `--source-ips` order (in generic mode each
    /// source's `servers` map is empty, as above).
    pub sources: Vec<SourceReport>,
    /// Per connection with at least one measured success.
    pub connections: Vec<ConnectionReport>,
    /// Measured RPCs per gRPC status name (`OK`, `UNAVAILABLE`, ...). Every
    /// non-OK status counts as an error (unlike h2load, which counts any
    /// HTTP 200 as a success, whatever its `grpc-status`).
    pub status_codes: BTreeMap<String, u64>,
    /// `--timeline-interval` in seconds.
    pub timeline_interval_s: f64,
    /// Completions over time (in generic mode successes are under the one
    /// key `unattributed`).
    pub timeline: Vec<TimelineBucket>,
    /// RPC callers still running at the hard stop (should be 0).
    pub aborted_callers: u64,
    /// Generic mode (`--call`): what was called. Absent in demo mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallReport>,
    /// loadgen's own CPU time over the measured phase and its peak RSS
    /// (`getrusage(RUSAGE_SELF)`); absent in reports from before the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageReport>,
    /// Connection-level measurements over the whole run (initial connects,
    /// reconnects and churn, warmup included). Absent in reports older than
    /// the field.
    #[serde(default)]
    pub connects: ConnectReport,
}

/// A process's CPU time over a window, and its peak memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    /// User CPU seconds, all threads.
    pub user_s: f64,
    /// System CPU seconds, all threads.
    pub sys_s: f64,
    /// The window's wall-clock length.
    pub wall_s: f64,
    /// `(user_s + sys_s) / wall_s`: 1.0 is one CPU kept busy.
    pub cpu_share: f64,
    /// Peak resident set over the process's life (`ru_maxrss`), KiB.
    pub max_rss_kib: u64,
}

/// Every connect attempt of a run and how the connections ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectReport {
    /// Connect attempts, initial and later (reconnects, churn, retries of
    /// lanes whose connect failed).
    pub attempts: u64,
    /// Attempts that succeeded.
    pub ok: u64,
    /// Failed attempts per cause: `timeout`, `refused`, `reset`,
    /// `addr_not_available`, `other` (non-zero ones only).
    pub failed_by_cause: BTreeMap<String, u64>,
    /// Latency of the successful connects (TCP and HTTP/2 preface), µs.
    pub latency_us: LatencySummary,
    /// Their histogram, encoded as [`LoadReport::histogram_b64`].
    pub histogram_b64: String,
    /// Successful connects that took [1.0 s, 1.1 s): one SYN retransmitted.
    pub syn_retry_1s: u64,
    /// Successful connects that took [3.0 s, 3.1 s): two SYNs retransmitted.
    pub syn_retry_3s: u64,
    /// Connections by how they ended: `goaway`, `reset_by_peer`,
    /// `closed_by_loadgen` (non-zero ones only).
    pub ended_by: BTreeMap<String, u64>,
    /// Each connection of the process, in connect order, at most
    /// [`crate::connects::MAX_RECORDS`] (the rest counted in
    /// `records_dropped`): filled when the run had idle gaps (`--rounds`)
    /// or keepalive, else empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<ConnRecord>,
    /// Connections beyond the bound on `records`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub records_dropped: u64,
    /// HTTP/2 keepalive PINGs (`--keepalive`), absent without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<KeepaliveReport>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One connection of the load generator, from its connect to its end.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnRecord {
    /// loadgen's serial of the connection (1, 2, ... in connect order).
    pub serial: u64,
    /// Its local address (source IP and port), the client half of the
    /// 4-tuple IPVS keys its entry on.
    pub local: String,
    /// Connect latency (TCP and HTTP/2 preface), µs.
    pub connect_us: u64,
    /// The first RPC of its lane after each idle gap it was the lane's
    /// connection through.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_idle: Vec<AfterIdle>,
    /// How it ended: `goaway`, `reset_by_peer`, `closed_by_loadgen`, or
    /// `open` (still open when the report was written).
    pub ended: String,
}

/// The outcome of the first RPC a lane sent after an idle gap.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AfterIdle {
    /// Which gap: 1 is the one before round 2.
    pub gap: u32,
    /// `ok`, or the gRPC status code's name as in `status_codes`
    /// (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, ...).
    pub outcome: String,
    /// The error's message (a transport reset reads `connection reset`
    /// or `broken pipe` here); empty on success.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The server that answered; empty when none did.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server: String,
    /// The RPC went over another connection than the one the lane had
    /// before the gap (that one was found closed and replaced).
    pub reconnected: bool,
    /// The serial of the connection the RPC went over.
    pub used_serial: u64,
}

impl AfterIdle {
    /// Whether the RPC succeeded.
    pub fn ok(&self) -> bool {
        self.outcome == "ok"
    }
}

/// HTTP/2 PINGs sent as gRPC keepalive (keepalive_time with
/// permit_without_calls: on every open connection, busy or idle).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeepaliveReport {
    /// The interval between PINGs on a connection, s.
    pub interval_s: f64,
    /// PINGs sent.
    pub pings: u64,
    /// PINGs acknowledged.
    pub acks: u64,
    /// PINGs not acknowledged within the timeout (the connection is then
    /// given up, as grpc does).
    pub timeouts: u64,
}

/// What a multi-round loadgen (`--rounds N`) writes to `--json`: one
/// report per round (each round's measured phase on its own), with the
/// whole process's connection measurements in the last round's `connects`
/// (the others' are empty, so sums over rounds stay right).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundsReport {
    /// The rounds, in order.
    pub rounds: Vec<LoadReport>,
}

impl ConnectReport {
    /// Failed attempts, all causes.
    pub fn failed(&self) -> u64 {
        self.failed_by_cause.values().sum()
    }
}

/// The method of a generic-mode run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallReport {
    /// The HTTP/2 path called, `/pkg.Service/Method`.
    pub method: String,
    /// `proto` (`--proto`) or `reflection` (the server's reflection service).
    pub described_by: String,
    /// The first successful reply in protobuf JSON (warmup included), to
    /// check that the server answered what was meant; absent when no call
    /// succeeded.
    pub first_reply: Option<String>,
}

/// Canonical gRPC status names, indexed by code.
pub const STATUS_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

impl LoadReport {
    /// Human summary table (what `loadgen` prints on stderr at the end).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let l = &self.latency_us;
        let _ = writeln!(
            s,
            "{} rpcs in {:.2}s = {:.0} rps ({} ok, {} errors, {} warmup) against {} [{}]",
            self.total_rpcs,
            self.duration_s,
            self.rps,
            self.ok_rpcs,
            self.errors,
            self.warmup_rpcs,
            self.target,
            self.mode
        );
        let _ = writeln!(
            s,
            "latency µs: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {:.0}",
            l.p50, l.p90, l.p99, l.p999, l.max, l.mean
        );
        let _ = writeln!(
            s,
            "{:<16} {:<24} {:>10} {:>7} {:>6} {:>9} {:>9}",
            "server", "address", "rpcs", "share", "conns", "p50 µs", "p99 µs"
        );
        for sv in &self.servers {
            let share = if self.ok_rpcs > 0 {
                100.0 * sv.rpcs as f64 / self.ok_rpcs as f64
            } else {
                0.0
            };
            let _ = writeln!(
                s,
                "{:<16} {:<24} {:>10} {:>6.1}% {:>6} {:>9} {:>9}",
                sv.name,
                sv.address,
                sv.rpcs,
                share,
                sv.connections,
                sv.latency_us.p50,
                sv.latency_us.p99
            );
        }
        if self.sources.len() > 1 || self.sources.iter().any(|x| x.errors > 0) {
            let _ = writeln!(
                s,
                "{:<24} {:>10} {:>7} {:>6} {:>8}  servers",
                "source", "rpcs", "errors", "conns", "gap ms"
            );
            for src in self.sources.iter().take(32) {
                let servers: Vec<String> = src
                    .servers
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let _ = writeln!(
                    s,
                    "{:<24} {:>10} {:>7} {:>6} {:>8.1}  {}",
                    src.address,
                    src.rpcs,
                    src.errors,
                    src.connections,
                    src.longest_gap_ms,
                    servers.join(" ")
                );
            }
            if self.sources.len() > 32 {
                let _ = writeln!(
                    s,
                    "... {} more sources in the JSON report",
                    self.sources.len() - 32
                );
            }
        }
        let codes: Vec<String> = self
            .status_codes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(s, "status: {}", codes.join(" "));
        let c = &self.connects;
        let failed: Vec<String> = c
            .failed_by_cause
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let ended: Vec<String> = c.ended_by.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            s,
            "connects: {} attempts, {} ok, {} failed [{}]; µs p50 {} p99 {} max {}; SYN-retry buckets 1s={} 3s={}; ended: {}",
            c.attempts,
            c.ok,
            c.failed(),
            failed.join(" "),
            c.latency_us.p50,
            c.latency_us.p99,
            c.latency_us.max,
            c.syn_retry_1s,
            c.syn_retry_3s,
            if ended.is_empty() {
                "-".to_string()
            } else {
                ended.join(" ")
            }
        );
        if let Some(call) = &self.call {
            let _ = writeln!(
                s,
                "generic call {} (described by {}): replies name no server, so servers are not attributed here; {} connections in the JSON report",
                call.method,
                call.described_by,
                self.connections.len()
            );
            if let Some(reply) = &call.first_reply {
                let _ = writeln!(s, "first reply: {reply}");
            }
        }
        s
    }
}

/// Writes a histogram of microseconds in HdrHistogram's percentile
/// distribution text format (as `outputPercentileDistribution` with 5 ticks
/// per half distance), values in milliseconds: output value scaling ratio
/// 1000 (µs → ms). HdrHistogram plotters read this format.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut s = String::new();
    let scale = 1000.0;
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if h.is_empty() {
        return s;
    }
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let value = v.value_iterated_to() as f64 / scale;
        if q < 1.0 {
            let _ = writeln!(
                s,
                "{:>12.3} {:>2.12} {:>10} {:>14.2}",
                value,
                q,
                total,
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(s, "{:>12.3} {:>2.12} {:>10}", value, q, total);
        }
    }
    let _ = writeln!(
        s,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean() / scale,
        h.stdev() / scale
    );
    let _ = writeln!(
        s,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        h.max() as f64 / scale,
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        (2u64 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two()
    );
    s
}
