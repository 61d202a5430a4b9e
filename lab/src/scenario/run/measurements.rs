//! What one run measured, as plain data: the seam between the run (which
//! touches the kernel) and [`assemble`](crate::scenario::assemble),
//! [`failover`](crate::scenario::failover) and
//! [`expect`](crate::scenario::expect), which are pure functions of it.
//!
//! Every time here counts in seconds from the start of the measured load
//! of round 1, the origin of the report's timeline.

use std::time::Duration;

use bench::report::LoadReport;

use crate::ipvs::{ConnEntry, ConnLog, IpvsTable};
use crate::network::Plan;
use crate::report::model::{Event, IpvsDestSample};
use crate::scenario::run::peers::PeerLog;
use crate::scenario::spec::PhaseAction;

/// Everything one run measured, before it is judged.
#[derive(Debug, Clone)]
pub struct Measurements {
    /// The plan that ran.
    pub plan: Plan,
    /// One load report per round.
    pub rounds: Vec<LoadReport>,
    /// Per server (plan order): its own counters restricted to client
    /// addresses (`None`: it was not running or could not be asked).
    pub server_counts: Vec<Option<ServerCount>>,
    /// The IPVS table at the end, over netlink.
    pub ipvs: IpvsTable,
    /// `ipvsadm -Ln --stats --exact` run in the director, as the independent reader.
    pub ipvsadm_stats: Option<String>,
    /// The connection table at the end.
    pub conn_table: Vec<ConnEntry>,
    /// Every connection and template the table showed, sampled with
    /// [`Self::samples`] and once more at the end.
    pub conn_log: ConnLog,
    /// Per server (plan order): its established peers on the service port,
    /// read from its namespace's `/proc/net/tcp` at each sample.
    pub server_peers: Vec<PeerLog>,
    /// Each round's load generator, from its spawn to its exit.
    pub round_windows: Vec<(f64, f64)>,
    /// Timed events, sorted by time: phases, IPVS changes, health.
    pub events: Vec<Event>,
    /// The phases as applied, with their real times.
    pub applied: Vec<AppliedPhase>,
    /// Every change of the destination set, polled every 100 ms.
    pub ipvs_changes: Vec<IpvsChange>,
    /// The lab checker's state changes.
    pub health_changes: Vec<HealthChange>,
    /// IPVS state sampled about once a second while the load ran.
    pub samples: Vec<IpvsSample>,
    /// When each round's measured load started (empty: not recorded; the
    /// report then places rounds end to end with the idle gaps between).
    pub round_starts_s: Vec<f64>,
    /// Who managed IPVS.
    pub director: DirectorInfo,
    /// Bring-up duration.
    pub bringup: Duration,
    /// Teardown duration.
    pub teardown: Duration,
    /// Wall-clock start (RFC 3339).
    pub started_at: String,
    /// Whole run.
    pub elapsed: Duration,
    /// The `[client]` round, when the scenario has one.
    pub client: Option<ClientRun>,
    /// Per server (plan order): whether it ran the user's own command.
    pub user_servers: Vec<bool>,
    /// Files for the report folder (`servers/rs1.stdout`, ...): path
    /// inside the folder, content.
    pub files: Vec<(String, Vec<u8>)>,
    /// Per round, the kernel's and the servers' CPU over its measured phase.
    pub round_usage: Vec<RoundUsage>,
    /// The lab process's own peak RSS (`ru_maxrss`) at the end, KiB.
    pub lab_max_rss_kib: u64,
    /// The client namespace's ephemeral port range, when read.
    pub client_port_range: Option<(u16, u16)>,
}

/// The kernel's and the servers' CPU over one round's measured phase.
#[derive(Debug, Clone, Default)]
pub struct RoundUsage {
    /// Wall-clock seconds between the two samples.
    pub wall_s: f64,
    /// Clock ticks per second (`USER_HZ`).
    pub ticks_per_s: u64,
    /// `/proc/stat`'s aggregate ticks in the window, and the CPU count.
    pub kernel: Option<(crate::procstat::CpuTimes, usize)>,
    /// Per planned server: user s, sys s, `VmHWM` KiB (`None` when not
    /// running throughout).
    pub servers: Vec<Option<(f64, f64, u64)>>,
}

/// The user's client command as it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRun {
    /// The command of the first process, placeholders filled.
    pub command: String,
    /// `ip` or `once`.
    pub per: String,
    /// One per process.
    pub processes: Vec<ClientProcess>,
}

/// One client process.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientProcess {
    /// Its `{source}`.
    pub source: String,
    /// How it ended.
    pub exit: String,
    /// Seconds it ran.
    pub elapsed_s: f64,
}

/// A server's own view of the clients, asked over gRPC at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerCount {
    /// Successful RPCs from client addresses.
    pub rpcs: u64,
    /// Connections accepted from client addresses.
    pub connections: u64,
}

/// A phase as it was applied.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedPhase {
    /// When it was applied.
    pub t_s: f64,
    /// What it did.
    pub action: PhaseAction,
}

/// The IPVS state at one moment of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct IpvsSample {
    /// When it was read.
    pub t_s: f64,
    /// Persistence templates in the connection table.
    pub templates: usize,
    /// Every destination present, with its weight and connection counts.
    pub destinations: Vec<IpvsDestSample>,
    /// The client namespace's TCP sockets at that moment, when read.
    pub client_sockets: Option<crate::procstat::SockStat>,
}

/// One change of the IPVS destination set, as the fast watcher saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct IpvsChange {
    /// When it was seen.
    pub t_s: f64,
    /// The destination, `address:port`.
    pub dest: String,
    /// Its weight before (`None`: not in IPVS).
    pub from: Option<i32>,
    /// Its weight after (`None`: removed).
    pub to: Option<i32>,
}

/// A state change of the lab's own health checker.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthChange {
    /// When the checker decided.
    pub t_s: f64,
    /// The real server.
    pub server: String,
    /// Up (`true`) or down.
    pub up: bool,
}

/// One line keepalived wrote on its console.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// When the lab read it.
    pub t_s: f64,
    /// The line.
    pub line: String,
}

/// What managed IPVS during the run.
#[derive(Debug, Clone, Default)]
pub struct DirectorInfo {
    /// `lab` (own checker), `keepalived`, or `static`.
    pub kind: String,
    /// The keepalived.conf keepalived ran with.
    pub keepalived_conf: Option<String>,
    /// keepalived's console log.
    pub keepalived_log: Vec<LogLine>,
    /// Seconds from keepalived's start until IPVS held every destination.
    pub populated_s: Option<f64>,
}
