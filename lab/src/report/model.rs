//! The report model: exactly what `report.json` holds.
//!
//! The scenario engine fills a [`Report`]; everything else in this module only
//! reads it. Every field that a scenario may lack is an `Option`, a `Vec` or a
//! map with `#[serde(default)]`, so that an older or smaller `report.json`
//! still loads (baselines are compared across versions of the lab).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One scenario run, as written to `report.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Which scenario ran.
    pub scenario: ScenarioInfo,
    /// Where it ran: the host kernel or a User-Mode Linux guest.
    pub runner: RunnerInfo,
    /// Wall-clock start of the run, RFC 3339 (e.g. `2025-06-24T10:00:00Z`).
    #[serde(default)]
    pub started_at: String,
    /// Length of the measured run in seconds.
    #[serde(default)]
    pub duration_s: f64,
    /// How long the lab network took to build and to remove (absent in
    /// older reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    /// The virtual-server configuration as the scenario gave it.
    #[serde(default)]
    pub config: VirtualServerConfig,
    /// The load settings as the scenario gave them (shape owned by the load
    /// generator, so kept as JSON).
    #[serde(default)]
    pub load: serde_json::Value,
    /// The kernel's IPVS table at the end of the run.
    #[serde(default)]
    pub ipvs: IpvsSnapshot,
    /// A summary of `/proc/net/ip_vs_conn` at the end of the run.
    #[serde(default)]
    pub conn_table: ConnTableSummary,
    /// One row per real server.
    #[serde(default)]
    pub servers: Vec<ServerResult>,
    /// One row per client source address.
    #[serde(default)]
    pub clients: Vec<ClientResult>,
    /// Client-side RPC latency in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<LatencySummary>,
    /// How far the observed distribution is from the weights; `None` when
    /// nothing was observed or no server had a weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness: Option<Fairness>,
    /// The statistical settings the scenario was judged with (absent in
    /// older reports: `lab compare` then uses the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateSettings>,
    /// Successful RPCs per server (and errors) per time bucket.
    #[serde(default)]
    pub timeline: Timeline,
    /// What happened during the run, in time order.
    #[serde(default)]
    pub events: Vec<Event>,
    /// Failover measurements, for scenarios that inject a fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
    /// The IPVS state sampled about once a second while the load ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipvs_samples: Vec<IpvsSampleRow>,
    /// How a scale-out evened out (scenarios with a standby server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<super::rebalance::Rebalance>,
    /// Every persistence template's life as the once-a-second samples of
    /// the connection table saw it (empty without persistence).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_lives: Vec<TemplateLife>,
    /// Each load round on its own: when it ran and which server each client
    /// IP reached in it (what the scheduler expectations compare).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<RoundResult>,
    /// The phases as applied, with their real times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseRecord>,
    /// Where the "ideal" share of each server comes from.
    #[serde(default)]
    pub ideal_source: IdealSource,
    /// What managed IPVS during the run (the lab's checker or keepalived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub director: Option<DirectorReport>,
    /// Each `[expect]` entry of the scenario and its verdict.
    #[serde(default)]
    pub expectations: Vec<ExpectationResult>,
    /// Failed RPCs.
    #[serde(default)]
    pub errors: ErrorSummary,
    /// loadgen's connects summed over the rounds: attempts, failures by
    /// cause, connect latency (histograms added), SYN-retry buckets, how
    /// connections ended. Absent in reports from before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connects: Option<Connects>,
    /// Which server each connection went to, from the servers' identity,
    /// the kernel's connection table, or both compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<super::attribution::Attribution>,
    /// CPU time of loadgen, the servers and the kernel over the measured
    /// rounds, and peak memory (absent in older reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<super::resources::Resources>,
    /// Plain-language findings, e.g. "persistence pinned the single client IP
    /// to rs1: every connection went to one server".
    #[serde(default)]
    pub notes: Vec<String>,
    /// True when every expectation passed.
    #[serde(default)]
    pub passed: bool,
}

/// Bring-up and teardown of the lab network: namespaces, veth, bridge,
/// addresses, routes, DR sysctls and the IPVS service, then all of it
/// removed. Host time (the guest's clock under UML time travel).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// From the first namespace to the last IPVS destination, in ms.
    pub bringup_ms: f64,
    /// From the first removal to the last, in ms.
    pub teardown_ms: f64,
    /// Real servers in the network.
    pub real_servers: u32,
    /// Client source addresses.
    pub client_ips: u32,
}

/// The scenario that produced a report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// Short name, e.g. `rr-persistence`.
    pub name: String,
    /// One line saying which question the scenario answers.
    #[serde(default)]
    pub description: String,
    /// The scenario file the run was read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Which kind of kernel ran the scenario.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerKind {
    /// The host's own kernel.
    #[default]
    Host,
    /// A User-Mode Linux guest (one CPU): latency describes UML, not production.
    Uml,
}

impl RunnerKind {
    /// The name used in `report.json` and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RunnerKind::Host => "host",
            RunnerKind::Uml => "uml",
        }
    }
}

/// Where a scenario ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunnerInfo {
    /// Host kernel or UML guest.
    pub kind: RunnerKind,
    /// `uname -r` of the kernel that ran IPVS.
    #[serde(default)]
    pub kernel: String,
    /// For a UML guest: where its kernel came from (`lab` for the lab's own
    /// build, `override` for IPVSLAB_UML_KERNEL, `distribution`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_origin: Option<String>,
    /// For the lab's own kernel: the Debian source it was built from
    /// (e.g. `linux-source-7.2 7.2.13-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_source: Option<String>,
    /// How the `lab` binary that measured (and its embedded load generator
    /// and servers) was compiled; `None` in reports from before it was
    /// recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildInfo>,
    /// `travel` when the guest was booted in UML time-travel mode: its clock
    /// skipped idle time, and every duration in the report is guest time.
    #[serde(default, skip_serializing_if = "ClockMode::is_real")]
    pub clock: ClockMode,
}

/// How the clock that timed the report advanced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    /// Wall-clock time.
    #[default]
    Real,
    /// UML time travel: idle time skipped; durations are guest time.
    Travel,
}

impl ClockMode {
    /// True for wall-clock time (the default, left out of report.json).
    pub fn is_real(&self) -> bool {
        *self == ClockMode::Real
    }
}

/// How the measuring binary was compiled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// Cargo's base profile: `release` or `debug`.
    pub profile: String,
    /// rustc's opt-level (`0`..`3`, `s`, `z`).
    pub opt_level: String,
    /// Whether debug assertions were compiled in.
    pub debug_assertions: bool,
}

impl BuildInfo {
    /// This binary's own build, recorded by `lab/build.rs`.
    pub fn of_this_binary() -> Self {
        BuildInfo {
            profile: env!("LAB_BUILD_PROFILE").to_owned(),
            opt_level: env!("LAB_BUILD_OPT_LEVEL").to_owned(),
            debug_assertions: cfg!(debug_assertions),
        }
    }

    /// False for an unoptimized (opt-level 0) build, whose latency and
    /// throughput describe the compiler's debug output, not the lab.
    pub fn optimized(&self) -> bool {
        self.opt_level != "0"
    }

    /// `release (opt-level 3)`.
    pub fn describe(&self) -> String {
        format!("{} (opt-level {})", self.profile, self.opt_level)
    }
}

impl RunnerInfo {
    /// True when the recorded build was unoptimized (an unrecorded build is
    /// not assumed to be either).
    pub fn unoptimized_build(&self) -> bool {
        self.build.as_ref().is_some_and(|b| !b.optimized())
    }

    /// True when the lab's own kernel build ran the scenario.
    pub fn lab_kernel(&self) -> bool {
        self.kernel_origin.as_deref() == Some("lab")
    }

    /// Where the kernel came from, for people: `the lab's own build of
    /// linux-source-7.2 7.2.13-1`.
    pub fn kernel_provenance(&self) -> String {
        match (self.kernel_origin.as_deref(), &self.kernel_source) {
            (Some("lab"), Some(src)) => format!("the lab's own build of {src}"),
            (Some("lab"), None) => "the lab's own build".to_owned(),
            (Some("override"), _) => "a kernel named by IPVSLAB_UML_KERNEL".to_owned(),
            (Some("distribution"), _) => "the distribution's user-mode-linux package".to_owned(),
            _ => "kernel origin not recorded".to_owned(),
        }
    }
}

/// The virtual server as configured, in keepalived's vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualServerConfig {
    /// The virtual IP address.
    pub vip: String,
    /// The virtual port.
    pub port: u16,
    /// `TCP` or `UDP`.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// Scheduler: `rr`, `wrr`, `lc`, `wlc`, `sh`, `mh`, ...
    pub lb_algo: String,
    /// Forwarding method: `DR` for this lab.
    #[serde(default = "default_lb_kind")]
    pub lb_kind: String,
    /// Persistence timeout in seconds; `None` (or 0) means no persistence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence_timeout: Option<u32>,
    /// Persistence netmask, e.g. `255.255.255.255`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence_granularity: Option<String>,
    /// keepalived's `delay_loop`: seconds between health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_loop_s: Option<f64>,
    /// `inhibit_on_failure`: a failed server gets weight 0 instead of
    /// leaving IPVS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inhibit_on_failure: bool,
    /// The real servers behind the VIP.
    #[serde(default)]
    pub real_servers: Vec<RealServerConfig>,
}

impl Default for VirtualServerConfig {
    /// An empty TCP direct-routing virtual server.
    fn default() -> Self {
        Self {
            vip: String::new(),
            port: 0,
            protocol: default_protocol(),
            lb_algo: String::new(),
            lb_kind: default_lb_kind(),
            persistence_timeout: None,
            persistence_granularity: None,
            delay_loop_s: None,
            inhibit_on_failure: false,
            real_servers: Vec::new(),
        }
    }
}

fn default_protocol() -> String {
    "TCP".to_owned()
}

fn default_lb_kind() -> String {
    "DR".to_owned()
}

/// One configured real server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RealServerConfig {
    /// The lab's name for it, e.g. `rs1`.
    pub name: String,
    /// Its IP address.
    pub address: String,
    /// Its port (in DR it must equal the virtual port).
    pub port: u16,
    /// IPVS weight; 0 takes it out of rotation without removing it.
    pub weight: u32,
    /// Health check, if any, e.g. `TCP_CHECK` with its connect timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckConfig>,
}

/// A keepalived-style health check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckConfig {
    /// keepalived's checker name, e.g. `TCP_CHECK`.
    pub kind: String,
    /// `connect_timeout` in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_s: Option<f64>,
    /// `retry` (`nb_get_retry`): failed checks before the server is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<u32>,
    /// `delay_before_retry` in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_before_retry_s: Option<f64>,
    /// `connect_port`, when it differs from the real server's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_port: Option<u16>,
    /// `warmup` in seconds: the bound of the random delay before the first
    /// check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_s: Option<f64>,
    /// keepalived's `alpha` mode: servers start down.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alpha: bool,
    /// `GRPC_CHECK` only: the `grpc.health.v1` service asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// The IPVS table read back from the kernel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpvsSnapshot {
    /// Virtual services (usually one).
    #[serde(default)]
    pub services: Vec<IpvsService>,
}

/// One IPVS virtual service, as `ipvsadm -Ln --stats` would show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpvsService {
    /// `TCP` or `UDP`.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// Virtual address.
    pub address: String,
    /// Virtual port.
    pub port: u16,
    /// Scheduler name as the kernel reports it.
    pub scheduler: String,
    /// Whether `IP_VS_SVC_F_PERSISTENT` is set.
    #[serde(default)]
    pub persistent: bool,
    /// Persistence timeout in seconds.
    #[serde(default)]
    pub timeout: u32,
    /// Persistence netmask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netmask: Option<String>,
    /// Service totals.
    #[serde(default)]
    pub stats: IpvsStats,
    /// Real servers.
    #[serde(default)]
    pub destinations: Vec<IpvsDestination>,
}

/// One IPVS destination (real server) of a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpvsDestination {
    /// Real server address.
    pub address: String,
    /// Real server port.
    pub port: u16,
    /// Weight as the kernel holds it at the end of the run.
    pub weight: u32,
    /// `DR` (`Route`), `NAT` (`Masq`), `TUN`.
    #[serde(default)]
    pub forward: String,
    /// `IPVS_DEST_ATTR_ACTIVE_CONNS`.
    #[serde(default)]
    pub active_conns: u32,
    /// `IPVS_DEST_ATTR_INACT_CONNS`.
    #[serde(default)]
    pub inactive_conns: u32,
    /// `IPVS_DEST_ATTR_PERSIST_CONNS`: persistence templates pointing here.
    #[serde(default)]
    pub persist_conns: u32,
    /// Counters.
    #[serde(default)]
    pub stats: IpvsStats,
}

/// IPVS counters. In DR the director sees only inbound packets, so the
/// outbound counters stay at zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpvsStats {
    /// Connections scheduled.
    #[serde(default)]
    pub conns: u64,
    /// Packets in (client to server).
    #[serde(default)]
    pub inpkts: u64,
    /// Packets out (zero in DR).
    #[serde(default)]
    pub outpkts: u64,
    /// Bytes in.
    #[serde(default)]
    pub inbytes: u64,
    /// Bytes out (zero in DR).
    #[serde(default)]
    pub outbytes: u64,
}

/// Summary of the kernel's connection table (`/proc/net/ip_vs_conn`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnTableSummary {
    /// Persistence templates (entries with client port 0).
    #[serde(default)]
    pub templates: Vec<PersistTemplate>,
    /// The most templates seen at once while the load ran (sampled about
    /// once a second): templates can expire before the end of a run.
    #[serde(default)]
    pub peak_templates: u64,
    /// Ordinary connection entries per destination (`address:port` or name).
    #[serde(default)]
    pub connections: BTreeMap<String, u64>,
}

/// One persistence template: this client (or client network) is pinned to
/// this destination until it expires.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PersistTemplate {
    /// Client address (masked by the persistence granularity).
    pub client: String,
    /// Destination `address:port`.
    pub dest: String,
    /// Seconds left before the template expires.
    #[serde(default)]
    pub expires_s: u64,
}

/// What one real server received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerResult {
    /// The lab's name for the server, e.g. `rs1`.
    pub name: String,
    /// Its address (IP, or `IP:port`).
    pub address: String,
    /// Configured weight (used for the ideal share).
    #[serde(default)]
    pub weight: u32,
    /// Successful RPCs answered by this server, as counted by the clients
    /// (each reply names its server).
    #[serde(default)]
    pub rpcs: u64,
    /// The server's own RPC counter, to cross-check `rpcs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_rpcs: Option<u64>,
    /// TCP connections the clients saw land on this server.
    #[serde(default)]
    pub connections: u64,
    /// Connections IPVS scheduled to it (`stats.conns`), to cross-check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipvs_conns: Option<u64>,
    /// Observed share of the fairness basis (RPCs or connections), 0..=1.
    #[serde(default)]
    pub share: f64,
    /// Share the weights call for, 0..=1.
    #[serde(default)]
    pub ideal_share: f64,
}

/// What one client source address saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientResult {
    /// Client source IP.
    pub address: String,
    /// Successful RPCs from this address.
    #[serde(default)]
    pub rpcs: u64,
    /// Successful RPCs from this address per server name.
    #[serde(default)]
    pub servers_seen: BTreeMap<String, u64>,
    /// True when every RPC from this address reached one server.
    #[serde(default)]
    pub sticky: bool,
    /// Connections this address opened, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u64>,
    /// Failed RPCs from this address.
    #[serde(default)]
    pub errors: u64,
}

/// Connection-level figures of the load, over every round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Connects {
    /// Connect attempts (initial, reconnects, churn, retries).
    pub attempts: u64,
    /// Attempts that succeeded.
    pub ok: u64,
    /// Failed attempts per cause (`timeout`, `refused`, `reset`,
    /// `addr_not_available`, `other`).
    pub failed_by_cause: BTreeMap<String, u64>,
    /// Latency of successful connects (µs), from the added histograms.
    pub latency_us: LatencySummary,
    /// Connects that took [1.0 s, 1.1 s): one SYN retransmitted.
    pub syn_retry_1s: u64,
    /// Connects that took [3.0 s, 3.1 s): two SYNs retransmitted.
    pub syn_retry_3s: u64,
    /// Connections by how they ended (`goaway`, `reset_by_peer`,
    /// `closed_by_loadgen`).
    pub ended_by: BTreeMap<String, u64>,
    /// `keep_channels`: the first RPC of each channel after each idle
    /// gap, and every connection's record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleOutcomes>,
}

/// What channels kept open through idle gaps saw afterwards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdleOutcomes {
    /// One summary per gap.
    pub gaps: Vec<GapOutcome>,
    /// keepalive PINGs, when `[load] keepalive` was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<bench::report::KeepaliveReport>,
    /// Every connection, in connect order (bounded by loadgen).
    pub records: Vec<bench::report::ConnRecord>,
    /// Connections beyond loadgen's bound on `records`.
    #[serde(default)]
    pub records_dropped: u64,
    /// The real servers' half of the connections lost in a gap, from the
    /// lab's own reads of each server's established peers (absent in
    /// reports from before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_halves: Option<ServerHalves>,
}

/// Whether a real server learnt that a connection died in an idle gap.
/// In DR the director's RST for a forgotten entry goes to the client only:
/// the server's socket stays established until the server itself sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerHalves {
    /// Connections whose first RPC after a gap failed (the client's half
    /// was reset).
    pub lost: u64,
    /// Of those, the ones their real server still listed as established
    /// in the last [`Self::WINDOW_S`] s of the load: it never learnt.
    pub still_established: u64,
    /// Of those, the ones no read of a server's peers ever saw (no figure).
    pub unseen: u64,
}

impl ServerHalves {
    /// How close to the end of the load a sighting counts as "still
    /// established" (the peers are read about once a second).
    pub const WINDOW_S: f64 = 2.0;
}

/// The first RPCs after one idle gap, over all channels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GapOutcome {
    /// 1 for the gap before round 2.
    pub gap: u32,
    /// Channels whose first RPC was recorded.
    pub channels: u64,
    /// Of which succeeded.
    pub ok: u64,
    /// Outcomes: `ok` or a status code, with counts.
    pub by_outcome: BTreeMap<String, u64>,
    /// Channels whose first RPC went over a new connection.
    pub reconnected: u64,
    /// The servers that answered, with counts.
    pub by_server: BTreeMap<String, u64>,
    /// The first error's message, if any failed (`connection reset`...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub first_error: String,
}

impl Connects {
    /// Failed attempts, all causes.
    pub fn failed(&self) -> u64 {
        self.failed_by_cause.values().sum()
    }
}

/// Latency percentiles (microseconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest recorded value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Number of recorded RPCs.
    pub count: u64,
    /// The full histogram, HdrHistogram V2 (optionally deflated), base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram_b64: Option<String>,
}

/// The unit of balancing: what one draw of the scheduler is, and so what the
/// fairness figures count. IPVS schedules connections; with persistence (or a
/// hashing scheduler) it pins client IPs, or groups of them after the
/// `persistence_granularity` mask; RPCs only follow the connections they ride
/// on, so they are the unit only when a scenario says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FairnessBasis {
    /// RPCs per server.
    #[default]
    Rpcs,
    /// Connections per server (what IPVS schedules without persistence).
    Connections,
    /// Client source addresses per server (persistence, sh/mh/dh/lblc/lblcr).
    ClientIps,
    /// Persistence groups (client addresses after the granularity mask).
    Groups,
}

/// The same type by the name the reports use.
pub type BalanceUnit = FairnessBasis;

impl FairnessBasis {
    /// The name used in `report.json` and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FairnessBasis::Rpcs => "rpcs",
            FairnessBasis::Connections => "connections",
            FairnessBasis::ClientIps => "client_ips",
            FairnessBasis::Groups => "groups",
        }
    }

    /// In words, plural: "connections", "client IPs".
    pub fn plural(self) -> &'static str {
        match self {
            FairnessBasis::Rpcs => "RPCs",
            FairnessBasis::Connections => "connections",
            FairnessBasis::ClientIps => "client IPs",
            FairnessBasis::Groups => "persistence groups",
        }
    }
}

/// How far the observed distribution is from the weights. See
/// [`crate::report::fairness`] for the definitions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fairness {
    /// The unit of balancing that was counted (`basis` in older reports).
    #[serde(rename = "unit", alias = "basis")]
    pub basis: FairnessBasis,
    /// The count per server on that unit, in server order (empty in older
    /// reports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<u64>,
    /// max over servers of |share − ideal|, as a fraction (0.1 = 10 points).
    pub max_deviation: f64,
    /// max over weighted servers of |share − ideal| / ideal.
    #[serde(default)]
    pub max_relative_deviation: f64,
    /// Jain's index over weight-normalised counts: 1 = perfectly fair,
    /// 1/n = everything on one server.
    pub jain: f64,
    /// Pearson's chi-square statistic against the ideal.
    pub chi2: f64,
    /// Probability of a chi-square at least this large if the scheduler were
    /// drawing at the ideal shares; small means "not the weights".
    pub chi2_p: f64,
    /// Degrees of freedom (weighted servers − 1).
    pub dof: u32,
    /// Effect size: Cramér's V of the goodness of fit,
    /// `sqrt(chi2 / (N · dof))`; 0 = the weights exactly, 1 = all on one.
    #[serde(default)]
    pub cramers_v: f64,
    /// Effect size: the largest weight-normalised count over their mean
    /// (1 = exactly the weights).
    #[serde(default)]
    pub max_over_mean: f64,
    /// True when the figures against the weights are shown for information
    /// only: a hashing scheduler's truth is its mapping, not the weights.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub informational: bool,
}

/// The statistical settings a run was judged with, from `[expect]` or the
/// defaults in [`crate::report::fairness`]; `lab compare` reads them from the
/// report, so the CLI, the library and CI share one story.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GateSettings {
    /// The unit of balancing the scenario is judged on.
    pub unit: FairnessBasis,
    /// Whether the unit was derived (false: `[expect] basis` chose it).
    #[serde(default)]
    pub unit_derived: bool,
    /// Significance level of every test (fails at p ≤ alpha).
    pub alpha: f64,
    /// The smallest deviation of a share (absolute) the test must detect
    /// with power 0.8; it sizes the sample.
    pub margin: f64,
    /// An equivalence margin for the baseline comparison: when set, each
    /// server's share may differ from the baseline's by at most this much,
    /// instead of the chi-square homogeneity test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_margin: Option<f64>,
    /// Failed RPCs this run may have beyond the baseline's.
    pub error_budget: u64,
}

/// Per-server throughput over time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Bucket width in seconds.
    #[serde(default)]
    pub bucket_s: f64,
    /// Buckets in time order.
    #[serde(default)]
    pub buckets: Vec<TimelineBucket>,
}

/// One time bucket of the timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelineBucket {
    /// Bucket start, seconds since the run started.
    pub t_s: f64,
    /// Successful RPCs per server name in this bucket.
    #[serde(default)]
    pub ok: BTreeMap<String, u64>,
    /// Failed RPCs in this bucket.
    #[serde(default)]
    pub errors: u64,
}

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A load phase started.
    Phase,
    /// A real server's weight changed.
    Weight,
    /// A health checker changed a server's state.
    Health,
    /// A fault was injected or lifted.
    Fault,
    /// The IPVS destination set changed (seen by the 100 ms watcher).
    Ipvs,
    /// A health check failed while retries were left (no change yet).
    Check,
    /// An IPVS sysctl was set in the director (`net.ipv4.vs.*`).
    Sysctl,
    /// Anything else (also what unknown kinds load as).
    #[serde(other)]
    Other,
}

impl EventKind {
    /// The name used in `report.json` and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Phase => "phase",
            EventKind::Weight => "weight",
            EventKind::Health => "health",
            EventKind::Fault => "fault",
            EventKind::Ipvs => "ipvs",
            EventKind::Check => "check",
            EventKind::Sysctl => "sysctl",
            EventKind::Other => "other",
        }
    }
}

/// Something that happened during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since the run started.
    pub t_s: f64,
    /// What kind of event.
    pub kind: EventKind,
    /// What exactly, e.g. `rs2 weight 1 -> 0` or `blackhole rs1`.
    #[serde(default)]
    pub detail: String,
}

/// Where [`ServerResult::ideal_share`] comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdealSource {
    /// The weights' shares (rr, wrr, the lc family).
    #[default]
    Weights,
    /// A hash scheduler (sh, mh, dh, lblc, lblcr): each server's share of
    /// what the clients it was hashed to sent, the kernel's own mapping.
    /// The weight shares and chi-square are then informational only.
    KernelMapping,
}

impl IdealSource {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            IdealSource::Weights => "weights",
            IdealSource::KernelMapping => "kernel mapping",
        }
    }
}

/// One phase as it was applied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// When, seconds on the report's time axis.
    pub t_s: f64,
    /// The scenario's action name, e.g. `set_weight`, `remove_destination`.
    pub action: String,
    /// The real server's name, when the action targets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The new weight of a `set_weight`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

/// One load round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundResult {
    /// When its measured load started, seconds on the report's time axis.
    pub start_s: f64,
    /// When its last RPC completed.
    pub end_s: f64,
    /// Client IP → server name → successful RPCs in this round.
    #[serde(default)]
    pub clients: BTreeMap<String, BTreeMap<String, u64>>,
    /// Server name → connections the clients saw land on it in this round.
    #[serde(default)]
    pub connections: BTreeMap<String, u64>,
}

/// The IPVS state at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpvsSampleRow {
    /// Seconds since the measured load started.
    pub t_s: f64,
    /// Persistence templates in the connection table.
    #[serde(default)]
    pub templates: u64,
    /// Every destination present at that moment.
    #[serde(default)]
    pub destinations: Vec<IpvsDestSample>,
}

/// One destination in an [`IpvsSampleRow`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpvsDestSample {
    /// Real server address.
    pub address: String,
    /// Weight at that moment.
    pub weight: i32,
    /// Active (established) connections.
    #[serde(default)]
    pub active: u32,
    /// Inactive connections.
    #[serde(default)]
    pub inactive: u32,
    /// Persistence templates pointing here.
    #[serde(default)]
    pub persistent: u32,
    /// Connections scheduled here so far (`stats.conns`; the kernel copies
    /// it from per-CPU counters on its 2 s estimator tick, so it lags).
    #[serde(default)]
    pub conns: u64,
}

/// Who managed IPVS while the load ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectorReport {
    /// `lab` (the lab's own checker), `keepalived` or `static`.
    pub kind: String,
    /// The keepalived.conf keepalived ran with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalived_conf: Option<String>,
    /// Seconds from keepalived's start until IPVS held every destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub populated_s: Option<f64>,
    /// keepalived's console log, each line prefixed with its time in seconds
    /// since the measured load started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keepalived_log: Vec<String>,
}

/// Failover measurements; each is `None` when the scenario could not measure it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Failover {
    /// The server that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_server: Option<String>,
    /// Seconds from the fault until the health checker removed the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_s: Option<f64>,
    /// Seconds from the fault until every client succeeded again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_s: Option<f64>,
    /// RPCs that failed because of the fault, by gRPC status.
    #[serde(default)]
    pub failed_rpcs_by_status: BTreeMap<String, u64>,
    /// Longest stretch without a successful RPC, per client address, seconds.
    #[serde(default)]
    pub longest_blackhole_s: BTreeMap<String, f64>,
    /// The fault (or drain) as applied, e.g. `rs1 killed (SIGKILL)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// When it was applied, seconds since the measured load started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_at_s: Option<f64>,
    /// Who was checking: `lab TCP_CHECK`, `keepalived TCP_CHECK`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checker: Option<String>,
    /// Seconds from the fault until the lab's checker declared the server
    /// down (its own clock; `detection_s` is what IPVS showed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checker_detection_s: Option<f64>,
    /// keepalived's worst case from the check settings when connects are
    /// refused at once: `delay_loop + retry × delay_before_retry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_case_refused_s: Option<f64>,
    /// keepalived's worst case when connects hang: the above plus
    /// `(retry + 1) × connect_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_case_timeout_s: Option<f64>,
    /// Seconds from the repair (restart, link up, ...) until the server was
    /// back in IPVS with its weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readded_s: Option<f64>,
    /// Successful RPCs per second before the fault (the "normal" rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_rps: Option<f64>,
    /// What the clients saw, in one sentence (hangs until the deadline, or
    /// fast errors and a reconnect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_view: Option<String>,
    /// Every fault applied to the failed server, one row each, with its
    /// detection, repair and failed RPCs (one row for a single fault).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flaps: Vec<Flap>,
    /// Changes of the failed server's IPVS entry (removed, re-added,
    /// reweighted) the 100 ms watcher saw from the start of the load on.
    #[serde(default)]
    pub ipvs_transitions: u64,
}

/// One fault of a real server and what followed it, until its next fault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Flap {
    /// When the fault was applied, seconds since the measured load started.
    pub fault_at_s: f64,
    /// Seconds from the fault until IPVS no longer scheduled to the server
    /// (removed or weight 0); `None`: not before its repair or the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_s: Option<f64>,
    /// When the repair was applied (`None`: not repaired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repaired_at_s: Option<f64>,
    /// Seconds from the repair until IPVS had the server back at its weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readded_s: Option<f64>,
    /// RPCs that failed from the fault until the next fault (or the end).
    pub failed_rpcs: u64,
}

/// One life of a persistence template (client port 0) in the connection
/// table, with the connections of its client IP that it controlled. Times
/// are the once-a-second samples' (seconds since the measured load
/// started), so each is good to about a second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TemplateLife {
    /// The client address (or its persistence-netmask network).
    pub client: String,
    /// The real server it pinned the client to.
    pub server: String,
    /// The first sample that showed it.
    pub first_seen_s: f64,
    /// The last sample that showed it.
    pub last_seen_s: f64,
    /// It was gone before the last sample (false: still in the table).
    pub expired: bool,
    /// The first sample of the newest connection from this client during
    /// the template's life: the kernel re-arms the template to
    /// `persistence_timeout` at each new connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_connect_s: Option<f64>,
    /// The last sample that showed any of those connections (FIN_WAIT and
    /// TIME_WAIT included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_conn_seen_s: Option<f64>,
    /// `last_seen_s - last_connect_s` of an expired template: how long it
    /// outlived the newest connection (persistence_timeout when no
    /// connection was left when its timer fired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_s: Option<f64>,
    /// A connection it controlled was still in the table when its timer
    /// first fired, so the kernel re-armed it (for 60 s at a time).
    pub rearmed: bool,
}

/// What an expectation concluded. `CannotJudge` is not `Fail`: the sample
/// was too small to tell fair from unfair at the scenario's alpha and
/// margin. Both fail the scenario.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// It held.
    #[default]
    Pass,
    /// It did not hold.
    Fail,
    /// Too little data to judge; fails the scenario.
    CannotJudge,
    /// Shown, never fails (e.g. a hashing scheduler against the weights).
    Informational,
}

impl Verdict {
    /// Whether this verdict lets the scenario pass.
    pub fn passes(self) -> bool {
        matches!(self, Verdict::Pass | Verdict::Informational)
    }

    /// The word shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::CannotJudge => "CANNOT JUDGE",
            Verdict::Informational => "INFO",
        }
    }
}

/// One `[expect]` entry and its verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExpectationResult {
    /// The expectation, e.g. `max_deviation <= 0.05`.
    pub name: String,
    /// Whether it held (`verdict.passes()`).
    pub passed: bool,
    /// The verdict in full (older reports: derived from `passed`).
    #[serde(default)]
    pub verdict: Verdict,
    /// The measured value and why it passed or failed.
    #[serde(default)]
    pub detail: String,
}

impl ExpectationResult {
    /// A result with this verdict; `passed` follows it.
    pub fn judged(name: impl Into<String>, verdict: Verdict, detail: String) -> Self {
        ExpectationResult {
            name: name.into(),
            passed: verdict.passes(),
            verdict,
            detail,
        }
    }

    /// Pass when the expectation `held`, else Fail.
    pub fn held(name: impl Into<String>, held: bool, detail: String) -> Self {
        Self::judged(
            name,
            if held { Verdict::Pass } else { Verdict::Fail },
            detail,
        )
    }

    /// The verdict, consistent with `passed` even for an older report
    /// (which has no `verdict` and reads as a pass).
    pub fn effective_verdict(&self) -> Verdict {
        match (self.passed, self.verdict.passes()) {
            (false, true) => Verdict::Fail,
            (true, false) => Verdict::Pass,
            _ => self.verdict,
        }
    }
}

/// Failed RPCs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorSummary {
    /// All failed RPCs.
    #[serde(default)]
    pub total: u64,
    /// Failed RPCs by gRPC status (e.g. `Unavailable`) or transport error.
    #[serde(default)]
    pub by_status: BTreeMap<String, u64>,
}

impl Report {
    /// Every IPVS destination of every service.
    pub fn ipvs_destinations(&self) -> impl Iterator<Item = &IpvsDestination> {
        self.ipvs.services.iter().flat_map(|s| &s.destinations)
    }

    /// Successful RPCs over all servers.
    pub fn total_rpcs(&self) -> u64 {
        self.servers.iter().map(|s| s.rpcs).sum()
    }

    /// Failed RPCs over all attempted RPCs (0 when nothing was attempted).
    pub fn error_rate(&self) -> f64 {
        let attempted = self.total_rpcs() + self.errors.total;
        if attempted == 0 {
            0.0
        } else {
            self.errors.total as f64 / attempted as f64
        }
    }

    /// The IPVS destination that corresponds to a server row, matched by
    /// address (`IP` or `IP:port`).
    pub fn ipvs_destination(&self, server: &ServerResult) -> Option<&IpvsDestination> {
        self.ipvs
            .services
            .iter()
            .flat_map(|s| s.destinations.iter())
            .find(|d| {
                if server.address == d.address {
                    return true;
                }
                // `IP:port`, including `[v6]:port`.
                match server.address.parse::<std::net::SocketAddr>() {
                    Ok(sa) => sa.port() == d.port && d.address.parse().ok() == Some(sa.ip()),
                    Err(_) => false,
                }
            })
    }

    /// Server names in report order (the order charts and tables use).
    pub fn server_names(&self) -> Vec<&str> {
        self.servers.iter().map(|s| s.name.as_str()).collect()
    }
}
