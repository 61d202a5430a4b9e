//! The scenario file as written: `scenarios/*.toml`, in keepalived's words.
//!
//! Parsing is strict (`deny_unknown_fields`) so that a typo is an error with
//! its line, column and key, never a silently ignored setting. Validation of
//! values that parse but make no sense lives in [`super::validate`].

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One scenario file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// One line: the question this scenario answers.
    pub description: String,
    /// The IPVS virtual server, in keepalived's words.
    pub virtual_server: VirtualServer,
    /// Addresses of the lab network (defaults reproduce the reference setup).
    #[serde(default)]
    pub network: Network,
    /// Director-wide IPVS settings (`ipvsadm --set`, `net.ipv4.vs.*`).
    #[serde(default)]
    pub ipvs: IpvsSettings,
    /// The load to drive through the VIP.
    #[serde(default)]
    pub load: Load,
    /// Timed events during the run.
    #[serde(default, rename = "phase")]
    pub phases: Vec<Phase>,
    /// The assertions that make the scenario a regression test.
    #[serde(default)]
    pub expect: Expect,
    /// Who drives IPVS during the run: the lab's own checker (default), or
    /// Debian's keepalived with a keepalived.conf generated from this file.
    #[serde(default)]
    pub director: DirectorKind,
    /// The real servers run this user command instead of `lab server`.
    #[serde(default)]
    pub server: Option<super::byo::ServerCommand>,
    /// The user's own client, run as a round in the client namespace.
    #[serde(default)]
    pub client: Option<super::byo::ClientCommand>,
    /// How the guest's clock runs (`[time] mode`).
    #[serde(default)]
    pub time: TimeSettings,
}

/// `[time]`: whether the scenario runs in real time or under UML time
/// travel, where idle time is skipped and hours of IPVS and keepalived
/// timers pass in seconds of host time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TimeSettings {
    /// `real` (default) or `travel`.
    #[serde(default)]
    pub mode: TimeMode,
}

/// How the clock of the kernel that runs the scenario advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TimeMode {
    /// Wall-clock time, on the host kernel or in UML.
    #[default]
    Real,
    /// UML booted with `time-travel`: the clock jumps over idle time, so
    /// every duration in the report is guest time (busy time still runs at
    /// the host's speed, so latency under load is kept).
    Travel,
}

impl TimeMode {
    /// The name used in scenario files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeMode::Real => "real",
            TimeMode::Travel => "travel",
        }
    }
}

/// Who manages the IPVS service while the load runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DirectorKind {
    /// The lab configures IPVS and runs its own checkers ([`crate::health`])
    /// for the real servers that have a `TCP_CHECK` or `GRPC_CHECK`.
    #[default]
    Lab,
    /// `/usr/sbin/keepalived` runs in the director namespace and configures
    /// IPVS itself from a generated keepalived.conf.
    Keepalived,
    /// The lab configures IPVS once and nothing checks health.
    Static,
}

/// keepalived's `virtual_server` block.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualServer {
    /// The virtual IP (exists only inside the lab's namespaces).
    pub vip: Ipv4Addr,
    /// The virtual port.
    pub port: u16,
    /// `TCP` (gRPC runs over TCP; `UDP` parses but is refused by validation).
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// The scheduler (`lb_algo`, alias `lvs_sched`): rr, wrr, lc, wlc, sh, mh, ...
    #[serde(alias = "lvs_sched")]
    pub lb_algo: String,
    /// The forwarding method (`lb_kind`, alias `lvs_method`): `DR` (NAT and TUN are refused).
    #[serde(default = "default_lb_kind", alias = "lvs_method")]
    pub lb_kind: String,
    /// Seconds a client IP stays pinned to its real server; absent or 0: no persistence.
    #[serde(default)]
    pub persistence_timeout: Option<u32>,
    /// Netmask grouping client addresses for persistence (default 255.255.255.255).
    #[serde(default)]
    pub persistence_granularity: Option<Ipv4Addr>,
    /// Seconds between health checks.
    #[serde(default = "default_delay_loop")]
    pub delay_loop: f64,
    /// Set weight 0 instead of removing a failed real server.
    #[serde(default)]
    pub inhibit_on_failure: bool,
    /// Minimum total weight of healthy servers before the sorry server is used.
    #[serde(default)]
    pub quorum: Option<u32>,
    /// A server used when the quorum is lost (address).
    #[serde(default)]
    pub sorry_server: Option<Ipv4Addr>,
    /// The real servers.
    #[serde(rename = "real_server")]
    pub real_servers: Vec<RealServer>,
}

fn default_protocol() -> String {
    "TCP".into()
}
fn default_lb_kind() -> String {
    "DR".into()
}
fn default_delay_loop() -> f64 {
    6.0
}

/// keepalived's `real_server` block.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServer {
    /// The real server's own address.
    pub address: Ipv4Addr,
    /// Its port; in DR it must equal the virtual port.
    pub port: u16,
    /// IPVS weight (0 = quiescent).
    #[serde(default = "default_weight")]
    pub weight: i32,
    /// A name for reports; defaults to `rs1`, `rs2`, ... in file order.
    #[serde(default)]
    pub name: Option<String>,
    /// Upper connection threshold (0 = none).
    #[serde(default)]
    pub uthreshold: u32,
    /// Lower connection threshold (0 = none).
    #[serde(default)]
    pub lthreshold: u32,
    /// keepalived's TCP_CHECK.
    #[serde(default, rename = "TCP_CHECK")]
    pub tcp_check: Option<TcpCheck>,
    /// A gRPC health check (`grpc.health.v1`); keepalived has none.
    #[serde(default, rename = "GRPC_CHECK")]
    pub grpc_check: Option<GrpcCheck>,
    /// This server's own GOAWAY age, overriding `load.max_connection_age`:
    /// one server that ends its connections early makes connection
    /// lifetimes unequal, which is what tells `lc` from `rr`. Not a
    /// keepalived setting (the generated keepalived.conf leaves it out).
    #[serde(default, with = "humantime_serde")]
    pub max_connection_age: Option<Duration>,
    /// This server's own command (overrides `[server] command`), e.g. a
    /// different version on one server.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// A server held back for a scale-out: planned (namespace, address,
    /// routes) but neither started nor in IPVS when the load begins. An
    /// `add_destination` phase starts its server and adds it, as an
    /// operator adds capacity under load. Not a keepalived setting.
    #[serde(default)]
    pub standby: bool,
}

fn default_weight() -> i32 {
    1
}

/// keepalived's `TCP_CHECK` block.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpCheck {
    /// Seconds before a connect attempt fails.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: f64,
    /// Retries before the server is declared down (alias `nb_get_retry`).
    #[serde(default = "default_retry", alias = "nb_get_retry")]
    pub retry: u32,
    /// Seconds between retries.
    #[serde(default = "default_delay_before_retry")]
    pub delay_before_retry: f64,
    /// The port to connect to (default: the real server's port).
    #[serde(default)]
    pub connect_port: Option<u16>,
    /// Upper bound in seconds of the random delay before the first check
    /// (keepalived's default: `delay_loop`).
    #[serde(default)]
    pub warmup: Option<f64>,
    /// keepalived's alpha mode: servers start down and must pass a check first.
    #[serde(default)]
    pub alpha: bool,
}

fn default_connect_timeout() -> f64 {
    5.0
}
fn default_retry() -> u32 {
    1
}
fn default_delay_before_retry() -> f64 {
    1.0
}

/// A gRPC health check against `grpc.health.v1.Health/Check`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcCheck {
    /// Seconds before a check fails.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: f64,
    /// Retries before the server is declared down.
    #[serde(default = "default_retry")]
    pub retry: u32,
    /// Seconds between retries.
    #[serde(default = "default_delay_before_retry")]
    pub delay_before_retry: f64,
    /// The service name to ask about ("" = the whole server).
    #[serde(default)]
    pub service: String,
    /// Upper bound in seconds of the random delay before the first check
    /// (default: `delay_loop`).
    #[serde(default)]
    pub warmup: Option<f64>,
}

/// Addresses of the lab network.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The one L2 segment everything shares.
    #[serde(default = "default_segment")]
    pub segment: ipnet::Ipv4Net,
    /// The director's own address on the segment.
    #[serde(default = "default_director")]
    pub director: Ipv4Addr,
    /// How many client source addresses (all in one client namespace).
    #[serde(default = "default_client_ips")]
    pub client_ips: u32,
    /// The first client address; the rest follow consecutively.
    #[serde(default = "default_client_base")]
    pub client_base: Ipv4Addr,
    /// `net.ipv4.ip_local_port_range` inside the client namespace only,
    /// `[first, last]`: a small range makes churned connections come back
    /// on source ports that IPVS still holds an entry for (the one-client-IP
    /// port reuse of kubernetes#70747).
    #[serde(default)]
    pub client_port_range: Option<[u16; 2]>,
    /// `net.ipv4.tcp_tw_reuse` inside the client namespace (0, 1 or 2). The
    /// client closes churned connections first, so their ports sit in
    /// `TIME_WAIT`; only with 1 may `connect()` take such a port again
    /// (kernel default 2: loopback only), which a small port range needs.
    #[serde(default)]
    pub client_tw_reuse: Option<u8>,
}

fn default_segment() -> ipnet::Ipv4Net {
    "172.22.0.0/16".parse().expect("static")
}
fn default_director() -> Ipv4Addr {
    Ipv4Addr::new(172, 22, 35, 254)
}
fn default_client_ips() -> u32 {
    1
}
fn default_client_base() -> Ipv4Addr {
    Ipv4Addr::new(172, 22, 36, 1)
}

impl Default for Network {
    fn default() -> Self {
        Self {
            segment: default_segment(),
            director: default_director(),
            client_ips: default_client_ips(),
            client_base: default_client_base(),
            client_port_range: None,
            client_tw_reuse: None,
        }
    }
}

/// Director-wide IPVS settings that keepalived leaves to the operator.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpvsSettings {
    /// Established TCP timeout in seconds (`ipvsadm --set TCP`; kernel default 900).
    #[serde(default)]
    pub timeout_tcp: Option<u32>,
    /// Timeout after a FIN in seconds (`ipvsadm --set _ TCPFIN`; default 120).
    /// In DR the director sees only the client's half of a close, so closed
    /// connections wait here, and keep their persistence template alive.
    #[serde(default)]
    pub timeout_tcp_fin: Option<u32>,
    /// UDP timeout in seconds (default 300).
    #[serde(default)]
    pub timeout_udp: Option<u32>,
    /// `net.ipv4.vs.<name>` sysctls set in the director before the load,
    /// e.g. `{ expire_nodest_conn = 1 }`.
    #[serde(default)]
    pub sysctls: std::collections::BTreeMap<String, i64>,
}

/// Closed loop (fixed concurrency) or open loop (fixed rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LoadMode {
    /// `concurrency` RPCs in flight at all times.
    #[default]
    Closed,
    /// `rps` RPCs per second, latency from the intended send time.
    Open,
}

/// How clients use connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionModel {
    /// `channels_per_ip` long-lived HTTP/2 channels per client IP.
    #[default]
    Channel,
    /// A new connection every `churn_rpcs` RPCs.
    Churn,
    /// A new connection for every RPC.
    PerRpc,
}

/// `[expect] first_rpc_after_idle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterIdleExpectation {
    /// Every channel's first RPC after a gap failed.
    Fails,
    /// Every channel's first RPC after a gap succeeded on its old connection.
    Succeeds,
}

/// The load part of a scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Closed or open loop.
    #[serde(default)]
    pub mode: LoadMode,
    /// RPCs in flight (closed loop), spread over all channels.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Target rate (open loop).
    #[serde(default)]
    pub rps: Option<f64>,
    /// Measured duration.
    #[serde(default = "default_duration", with = "humantime_serde")]
    pub duration: Duration,
    /// Warm-up before measuring.
    #[serde(default, with = "humantime_serde")]
    pub warmup: Duration,
    /// HTTP/2 channels (connections) per client IP.
    #[serde(default = "default_channels")]
    pub channels_per_ip: u32,
    /// Connection model.
    #[serde(default)]
    pub connection: ConnectionModel,
    /// With `connection = "churn"`: RPCs per connection.
    #[serde(default)]
    pub churn_rpcs: Option<u32>,
    /// New connections per second while the channels first connect
    /// (loadgen `--connect-rate`; absent = loadgen's 600/s, which a
    /// one-CPU UML guest accepts).
    #[serde(default)]
    pub connect_rate: Option<u32>,
    /// Servers send GOAWAY after this connection age (HTTP/2 pinning remedy).
    #[serde(default, with = "humantime_serde")]
    pub max_connection_age: Option<Duration>,
    /// Echoed payload size in bytes.
    #[serde(default)]
    pub payload: u32,
    /// Per-RPC deadline.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Idle gaps: run the load in `rounds` bursts separated by `idle` (for
    /// persistence expiry).
    #[serde(default = "default_rounds")]
    pub rounds: u32,
    /// The idle gap between rounds.
    #[serde(default, with = "humantime_serde")]
    pub idle: Duration,
    /// Run every round in ONE load generator that keeps its HTTP/2
    /// connections open through the idle gaps (loadgen `--rounds --idle`),
    /// as an application's channel does; without it each round is a
    /// process of its own. Needs `rounds` >= 2.
    #[serde(default)]
    pub keep_channels: bool,
    /// gRPC keepalive: an HTTP/2 PING on every connection this often, busy
    /// or idle (loadgen `--keepalive`, grpc's `keepalive_time` with
    /// `permit_without_calls`).
    #[serde(default, with = "humantime_serde")]
    pub keepalive: Option<Duration>,
    /// Width of the report's timeline buckets (default 500 ms). The
    /// rebalance figures count RPCs per server in these buckets, so a
    /// scale-out scenario sets 100 ms.
    #[serde(default = "default_timeline_interval", with = "humantime_serde")]
    pub timeline_interval: Duration,
    /// Generic mode: the unary method loadgen calls instead of the demo's
    /// `WhoAmI`, `pkg.Service/Method` (`lab loadgen --call`).
    #[serde(default)]
    pub call: Option<String>,
    /// Generic mode: the `.proto` that defines `call`, relative to the
    /// current directory (where `lab` runs, as `scenarios/` itself is);
    /// its imports are looked up in its own directory. Without it, the
    /// servers' reflection service describes `call`.
    #[serde(default)]
    pub proto: Option<std::path::PathBuf>,
    /// Generic mode: the request message as a string of JSON (protobuf's
    /// JSON mapping, exactly what `--data` takes); default `{}`.
    #[serde(default)]
    pub data: Option<String>,
    /// Request headers (gRPC metadata) sent on every call, in any mode.
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
}

fn default_concurrency() -> u32 {
    4
}
fn default_duration() -> Duration {
    Duration::from_secs(3)
}
fn default_channels() -> u32 {
    1
}
fn default_timeout() -> Duration {
    Duration::from_secs(3)
}
fn default_rounds() -> u32 {
    1
}
fn default_timeline_interval() -> Duration {
    Duration::from_millis(500)
}

impl Default for Load {
    fn default() -> Self {
        Self {
            mode: LoadMode::default(),
            concurrency: default_concurrency(),
            rps: None,
            duration: default_duration(),
            warmup: Duration::ZERO,
            channels_per_ip: default_channels(),
            connection: ConnectionModel::default(),
            churn_rpcs: None,
            connect_rate: None,
            max_connection_age: None,
            payload: 0,
            timeout: default_timeout(),
            rounds: default_rounds(),
            idle: Duration::ZERO,
            keep_channels: false,
            keepalive: None,
            timeline_interval: default_timeline_interval(),
            call: None,
            proto: None,
            data: None,
            metadata: Default::default(),
        }
    }
}

/// A timed event during the run. (Unknown keys are caught by the action's
/// own `deny_unknown_fields`: serde cannot deny them here with `flatten`.)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Phase {
    /// When, from the start of the measured load.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// What happens.
    #[serde(flatten)]
    pub action: PhaseAction,
}

/// What a phase does. Faults name a real server by name (`rs1`) or address.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum PhaseAction {
    /// Set a destination's IPVS weight (0 drains it).
    SetWeight {
        /// The real server.
        server: String,
        /// The new weight.
        weight: i32,
    },
    /// Stop the server gracefully (SIGTERM: GOAWAY and drain).
    StopServer {
        /// The real server.
        server: String,
    },
    /// Kill the server (SIGKILL).
    KillServer {
        /// The real server.
        server: String,
    },
    /// Start a stopped or killed server again.
    StartServer {
        /// The real server.
        server: String,
    },
    /// Take the server's link down.
    LinkDown {
        /// The real server.
        server: String,
    },
    /// Bring the server's link back up.
    LinkUp {
        /// The real server.
        server: String,
    },
    /// Drop all traffic inside the server's namespace (nftables).
    Blackhole {
        /// The real server.
        server: String,
    },
    /// Remove a blackhole.
    Unblackhole {
        /// The real server.
        server: String,
    },
    /// Delete the destination from IPVS (`ipvsadm -d`), as keepalived does
    /// when a check fails without `inhibit_on_failure`; the server keeps
    /// running.
    RemoveDestination {
        /// The real server.
        server: String,
    },
    /// Add the destination back with its configured weight (`ipvsadm -a`).
    AddDestination {
        /// The real server.
        server: String,
    },
    /// Set an IPVS sysctl (`net.ipv4.vs.<name>`) in the director.
    Sysctl {
        /// e.g. `expire_nodest_conn`.
        name: String,
        /// The value.
        value: String,
    },
}

impl PhaseAction {
    /// The real server this action targets, if any.
    pub fn server(&self) -> Option<&str> {
        match self {
            PhaseAction::SetWeight { server, .. }
            | PhaseAction::StopServer { server }
            | PhaseAction::KillServer { server }
            | PhaseAction::StartServer { server }
            | PhaseAction::LinkDown { server }
            | PhaseAction::LinkUp { server }
            | PhaseAction::Blackhole { server }
            | PhaseAction::Unblackhole { server }
            | PhaseAction::RemoveDestination { server }
            | PhaseAction::AddDestination { server } => Some(server),
            PhaseAction::Sysctl { .. } => None,
        }
    }

    /// Whether this action breaks a real server (what a health checker is
    /// meant to notice), as opposed to an operator's IPVS change or a repair.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            PhaseAction::StopServer { .. }
                | PhaseAction::KillServer { .. }
                | PhaseAction::LinkDown { .. }
                | PhaseAction::Blackhole { .. }
        )
    }

    /// Whether this action takes a server out of rotation through IPVS
    /// itself (a drain, a removal).
    pub fn is_ipvs_change(&self) -> bool {
        matches!(
            self,
            PhaseAction::SetWeight { .. } | PhaseAction::RemoveDestination { .. }
        )
    }

    /// Whether this action changes the destination set or its weights, so
    /// that a hash scheduler may map client IPs anew.
    pub fn changes_destinations(&self) -> bool {
        matches!(
            self,
            PhaseAction::SetWeight { .. }
                | PhaseAction::RemoveDestination { .. }
                | PhaseAction::AddDestination { .. }
        )
    }

    /// Whether this action undoes a fault.
    pub fn is_repair(&self) -> bool {
        matches!(
            self,
            PhaseAction::StartServer { .. }
                | PhaseAction::LinkUp { .. }
                | PhaseAction::Unblackhole { .. }
                | PhaseAction::AddDestination { .. }
        )
    }
}

/// What a drained (weight 0) or removed server should still receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrainedTraffic {
    /// It keeps answering RPCs after the change (persistence templates or
    /// live connections still steer clients to it).
    Continues,
    /// It answers no RPC from one second after the change to the end.
    Stops,
}

/// The expected distribution shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DistributionExpectation {
    /// Equal shares.
    Even,
    /// Shares proportional to the weights.
    Weighted,
    /// Everything on one server.
    Single,
    /// More than one server received traffic.
    Spread,
}

/// The unit the distribution counts (the unit of balancing). Absent, it is
/// derived from the scheduler and persistence: see
/// [`super::expect::unit_of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// RPCs per server (what gRPC users feel; only the client controls it).
    Rpcs,
    /// Connections per server (what IPVS schedules without persistence).
    Connections,
    /// Client IPs per server (what persistence and hashing schedulers pin).
    ClientIps,
    /// Persistence groups per server (client IPs after the granularity mask).
    Groups,
}

/// The assertions of a scenario; absent ones are not checked.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The distribution shape.
    #[serde(default)]
    pub distribution: Option<DistributionExpectation>,
    /// What the distribution counts; absent: derived from the scheduler and
    /// persistence (connections, client IPs or groups).
    #[serde(default)]
    pub basis: Option<Basis>,
    /// The smallest absolute deviation of a share (0.10 = 10 points) the
    /// fairness test must detect with power 0.8; it sets how many units the
    /// scenario needs. `tolerance` is its old name.
    #[serde(default, alias = "tolerance")]
    pub margin: Option<f64>,
    /// Significance level: the distribution test and the baseline
    /// comparison fail at p ≤ alpha (default 1e-6).
    #[serde(default)]
    pub alpha: Option<f64>,
    /// Compare with the baseline by an equivalence margin on each server's
    /// share (absolute) instead of the chi-square homogeneity test.
    #[serde(default)]
    pub baseline_margin: Option<f64>,
    /// Failed RPCs this run may have beyond its baseline's (default 0).
    #[serde(default)]
    pub error_budget: Option<u64>,
    /// Every client IP reaches exactly one server.
    #[serde(default)]
    pub sticky_per_client: Option<bool>,
    /// Maximum fraction of failed RPCs.
    #[serde(default)]
    pub max_error_rate: Option<f64>,
    /// Client tallies, server counters and IPVS statistics agree, and the
    /// director's outbound counters are 0 (DR).
    #[serde(default)]
    pub ipvs_consistent: Option<bool>,
    /// Persistence templates are visible in the connection table at the end.
    #[serde(default)]
    pub templates_present: Option<bool>,
    /// At least this many client IPs saw more than one server.
    #[serde(default)]
    pub min_clients_moved: Option<u32>,
    /// After the first phase that targets a server (fault, drain or
    /// removal), whether that server keeps answering RPCs.
    #[serde(default)]
    pub drained_traffic: Option<DrainedTraffic>,
    /// After the first fault, the IPVS table changed for the failed server
    /// (removed, or weight 0) before the load ended: the checker noticed.
    #[serde(default)]
    pub fault_detected: Option<bool>,
    /// The most frequent failed-RPC status, e.g. `DeadlineExceeded` (clients
    /// hang until the deadline) or `Unavailable` (fast errors). Fails when
    /// no RPC failed.
    #[serde(default)]
    pub dominant_error: Option<String>,
    /// Every client IP, or every persistence group after the
    /// `persistence_granularity` mask, reached one and the same server in
    /// every round (sh, mh, dh, persistence). See [`super::scheduler`].
    #[serde(default)]
    pub mapping_stable: Option<bool>,
    /// The netmask `mapping_stable` groups client IPs by, when it should
    /// not follow the service's own `persistence_granularity`: a scenario
    /// about /24 groups says so here, so that a setup that lost its
    /// granularity fails instead of being judged per IP.
    #[serde(default)]
    pub mapping_granularity: Option<Ipv4Addr>,
    /// With `[load] keep_channels`: what the first RPC of every channel
    /// sees after each idle gap. `fails`: every one failed (the connection
    /// was lost in the gap without either end knowing); `succeeds`: every
    /// one succeeded over the connection it had before the gap.
    #[serde(default)]
    pub first_rpc_after_idle: Option<AfterIdleExpectation>,
    /// With `first_rpc_after_idle = "fails"`: whether the real servers'
    /// half of the lost connections was still established at the end of
    /// the load (`true`: every one; `false`: none), read from the servers'
    /// own sockets. In DR nobody tells the server.
    #[serde(default)]
    pub server_half_lingers: Option<bool>,
    /// Most client IPs whose server changed between the round before and
    /// the round after the first phase that removes, adds or reweights a
    /// real server (0.30 = 30 %).
    #[serde(default)]
    pub remap_fraction_max: Option<f64>,
    /// Fewest such client IPs (a fraction), e.g. to show that sh remaps
    /// more than the removed server's own clients.
    #[serde(default)]
    pub remap_fraction_min: Option<f64>,
    /// Whether a destination set to weight 0 by a phase still receives new
    /// connections (`false`: none from the change plus a grace on).
    #[serde(default)]
    pub weight_zero_receives_new: Option<bool>,
    /// The lc/wlc rule held: at the IPVS samples taken while the load ran,
    /// the active connections per unit of weight stayed within
    /// `active_spread_max` of each other (median over the samples).
    #[serde(default)]
    pub least_connection_respected: Option<bool>,
    /// The spread `least_connection_respected` allows (default 2).
    #[serde(default)]
    pub active_spread_max: Option<f64>,
    /// Largest share of successful connects that took [1.0 s, 1.1 s), the
    /// signature of one dropped SYN (0.01 = 1 %). See [`super::stall`].
    #[serde(default)]
    pub connect_1s_share_max: Option<f64>,
    /// Smallest such share, for a cell that must show the stall.
    #[serde(default)]
    pub connect_1s_share_min: Option<f64>,
    /// `[low, high]` seconds: every expired persistence template that was
    /// not re-armed outlived its client's newest connection by a time in
    /// this range, and at least one expired (see [`super::templates`]).
    #[serde(default)]
    pub template_lifetime_s: Option<[f64; 2]>,
    /// Every fault of the failed server was taken out of IPVS within this
    /// many seconds (before its repair), and there was at least one.
    #[serde(default)]
    pub max_detection_s: Option<f64>,
    /// Exactly this many changes of the failed server's IPVS entry from the
    /// start of the load on (each removal and re-add counts one).
    #[serde(default)]
    pub ipvs_transitions: Option<u64>,
    /// After a scale-out (a `standby` server added): the servers reached
    /// max/mean < 1.2 over 1 s windows, held for 3 windows, within this
    /// many seconds of the add. See [`super::rebalance`].
    #[serde(default)]
    pub time_to_fairness_max_s: Option<f64>,
    /// ... and not before this many seconds (never fair counts as
    /// infinitely late), for a setup that must not rebalance.
    #[serde(default)]
    pub time_to_fairness_min_s: Option<f64>,
    /// A hot spot that long windows hide: the 90th percentile of max/mean
    /// of the per-server RPCs over 100 ms windows is at least this many
    /// times the median over 5 s windows (a dashboard's), from fairness on.
    #[serde(default)]
    pub hot_spot_ratio_min: Option<f64>,
    /// No such hot spot: the same ratio is at most this (an operator's gate).
    #[serde(default)]
    pub hot_spot_ratio_max: Option<f64>,
}
