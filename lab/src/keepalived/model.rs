//! What the lab takes from a keepalived.conf: its LVS virtual servers, with
//! keepalived's defaults applied, and a list of everything it left out.
//!
//! Every value here is the *effective* one: a key keepalived lets a real server
//! or checker inherit (keepalived.conf(5): "the virtual server setting is the
//! default for real servers, and the real server setting is the default for
//! checkers") is resolved, so a consumer never has to know the inheritance.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// keepalived's defaults, each with where it is stated.
pub mod defaults {
    /// `delay_loop`: keepalived.conf(5), "delay timer for checker polling (60
    /// seconds if not specified)".
    pub const DELAY_LOOP: f64 = 60.0;
    /// `connect_timeout`: keepalived.conf(5), "The default is 5 seconds".
    pub const CONNECT_TIMEOUT: f64 = 5.0;
    /// `retry`: keepalived.conf(5), "Default: 1 unless specified below" (only
    /// DNS_CHECK and the HTTP checkers differ).
    pub const RETRY: u32 = 1;
    /// `delay_before_retry`: keepalived.conf(5), "3 seconds for HTTP_GET and
    /// SSL_GET, and 1 second otherwise", so 1 for TCP_CHECK.
    pub const DELAY_BEFORE_RETRY: f64 = 1.0;
    /// `weight`: keepalived.conf(5), real_server "relative weight to use,
    /// default: 1".
    pub const WEIGHT: u32 = 1;
    /// `persistence_timeout` written without a value: keepalived.conf(5),
    /// "LVS persistence timeout in seconds, default 6 minutes".
    pub const PERSISTENCE_TIMEOUT: u32 = 360;
    /// `quorum`: keepalived.conf(5), "Defaults to 1".
    pub const QUORUM: u32 = 1;
    /// `hysteresis`: keepalived.conf(5), "Defaults to 0".
    pub const HYSTERESIS: u32 = 0;
    /// Largest weight: ipvsadm(8), "-w ... 0 through to 2147483647".
    pub const MAX_WEIGHT: u32 = 0x7fff_ffff;
}

/// The LVS scheduler (`lb_algo`, or `lvs_sched` in keepalived ≥ 2.0 docs).
///
/// Absent, it is [`LbAlgo::Wlc`]: keepalived.conf(5) names no default and
/// keepalived leaves the choice to IPVS, whose default is wlc (ipvsadm(8),
/// "wlc ... This is the default").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LbAlgo {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connection.
    Lc,
    /// Weighted least connection.
    #[default]
    Wlc,
    /// Locality-based least connection.
    Lblc,
    /// Locality-based least connection with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Maglev hashing.
    Mh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Weighted random twos choice.
    Twos,
}

impl LbAlgo {
    /// Every scheduler keepalived.conf(5) lists for `lvs_sched`.
    pub const ALL: [LbAlgo; 14] = [
        LbAlgo::Rr,
        LbAlgo::Wrr,
        LbAlgo::Lc,
        LbAlgo::Wlc,
        LbAlgo::Lblc,
        LbAlgo::Lblcr,
        LbAlgo::Dh,
        LbAlgo::Sh,
        LbAlgo::Mh,
        LbAlgo::Sed,
        LbAlgo::Nq,
        LbAlgo::Fo,
        LbAlgo::Ovf,
        LbAlgo::Twos,
    ];

    /// The kernel's scheduler name, as keepalived and ipvsadm write it.
    pub fn as_str(self) -> &'static str {
        match self {
            LbAlgo::Rr => "rr",
            LbAlgo::Wrr => "wrr",
            LbAlgo::Lc => "lc",
            LbAlgo::Wlc => "wlc",
            LbAlgo::Lblc => "lblc",
            LbAlgo::Lblcr => "lblcr",
            LbAlgo::Dh => "dh",
            LbAlgo::Sh => "sh",
            LbAlgo::Mh => "mh",
            LbAlgo::Sed => "sed",
            LbAlgo::Nq => "nq",
            LbAlgo::Fo => "fo",
            LbAlgo::Ovf => "ovf",
            LbAlgo::Twos => "twos",
        }
    }

    /// The scheduler named `s`; case-sensitive, since keepalived hands the
    /// name to the kernel unchanged and kernel names are lower case.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for LbAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The forwarding method (`lb_kind`, or `lvs_method`).
///
/// Absent, it is [`LbKind::Nat`]: keepalived.conf(5), "Override default LVS
/// forwarding method (default is NAT)".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LbKind {
    /// Masquerading.
    #[default]
    Nat,
    /// Direct routing: the lab's subject.
    Dr,
    /// IP-in-IP tunnelling (tunnel type options are not modelled).
    Tun,
}

impl LbKind {
    /// The keyword value, upper case as keepalived requires.
    pub fn as_str(self) -> &'static str {
        match self {
            LbKind::Nat => "NAT",
            LbKind::Dr => "DR",
            LbKind::Tun => "TUN",
        }
    }

    /// The method named `s`; case-sensitive like keepalived's own check.
    pub fn from_name(s: &str) -> Option<Self> {
        [LbKind::Nat, LbKind::Dr, LbKind::Tun]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for LbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The L4 protocol of a virtual server.
///
/// Absent, it is [`Protocol::Tcp`]: keepalived.conf(5) names no default; IPVS
/// needs one for an address service and keepalived has always meant TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// TCP.
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The keyword value as keepalived documents it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// The protocol named `s`, case-insensitively as keepalived compares it.
    pub fn from_name(s: &str) -> Option<Self> {
        [Protocol::Tcp, Protocol::Udp, Protocol::Sctp]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The part of a keepalived.conf the lab understands, plus what it skipped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeepalivedConf {
    /// Every `virtual_server <ip> <port>` block, in file order.
    pub virtual_servers: Vec<VirtualServerConf>,
    /// Every statement left out, so a user sees exactly what the lab did not
    /// reproduce instead of a silently different setup.
    pub ignored: Vec<Ignored>,
}

/// A statement the lab did not take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// 1-based line of the statement's keyword.
    pub line: usize,
    /// The keyword and its values, with where it sat (`HTTP_GET in
    /// real_server 10.0.0.1 80`).
    pub what: String,
    /// Why it was left out.
    pub reason: IgnoreReason,
}

/// Why a statement was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IgnoreReason {
    /// Not about LVS (VRRP, global settings, static routes, BFD…): keepalived's
    /// other daemons, which the lab does not reproduce.
    NotLvs,
    /// An `include` line: the lab reads one file and never follows includes.
    Include,
    /// Valid keepalived that changes LVS behaviour in a way the lab cannot
    /// reproduce (fwmark and group services, non-TCP checkers…).
    Unsupported,
    /// Valid keepalived with no effect on what the lab measures (notify
    /// scripts, SNMP names, SMTP alerts, `virtualhost`…).
    NoEffect,
    /// A top-level keyword this parser does not know.
    UnknownKeyword,
    /// A second checker of a kind already taken for the same real server.
    Duplicate,
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IgnoreReason::NotLvs => "not part of LVS; the lab does not reproduce it",
            IgnoreReason::Include => "include files are not followed",
            IgnoreReason::Unsupported => "not supported by the lab",
            IgnoreReason::NoEffect => "no effect on what the lab measures",
            IgnoreReason::UnknownKeyword => "unknown top-level keyword",
            IgnoreReason::Duplicate => "only the first checker of a kind is used",
        })
    }
}

/// One `virtual_server <ip> <port> { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualServerConf {
    /// 1-based line of the `virtual_server` keyword.
    pub line: usize,
    /// The virtual IP.
    pub vip: IpAddr,
    /// The virtual port.
    pub port: u16,
    /// Seconds between health checks; [`defaults::DELAY_LOOP`] when absent.
    pub delay_loop: f64,
    /// The scheduler; see [`LbAlgo`] for its default.
    pub lb_algo: LbAlgo,
    /// The forwarding method; see [`LbKind`] for its default.
    pub lb_kind: LbKind,
    /// The L4 protocol; see [`Protocol`] for its default.
    pub protocol: Protocol,
    /// Client affinity in seconds; `None` when the service is not persistent.
    /// A bare `persistence_timeout`, or a `persistence_granularity` alone, means
    /// [`defaults::PERSISTENCE_TIMEOUT`], as keepalived does.
    pub persistence_timeout: Option<u32>,
    /// The netmask that groups clients for persistence; `None` means a single
    /// address (255.255.255.255, ipvsadm(8)'s default).
    pub persistence_granularity: Option<Ipv4Addr>,
    /// Minimum total weight of live servers; [`defaults::QUORUM`] when absent.
    pub quorum: u32,
    /// Quorum flap damper; [`defaults::HYSTERESIS`] when absent.
    pub hysteresis: u32,
    /// Server used when quorum is lost; its port is the virtual port when the
    /// file omits it.
    pub sorry_server: Option<SocketAddr>,
    /// Set a failed real server's weight to 0 instead of removing it.
    pub inhibit_on_failure: bool,
    /// Start with every real server down until its check passes.
    pub alpha: bool,
    /// Run quorum/real-server down notifiers on shutdown.
    pub omega: bool,
    /// The real servers, in file order.
    pub real_servers: Vec<RealServerConf>,
}

/// One `real_server <ip> [<port>] { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct RealServerConf {
    /// 1-based line of the `real_server` keyword.
    pub line: usize,
    /// The real server's address.
    pub address: IpAddr,
    /// Its port; the virtual port when the file omits it, since direct routing
    /// cannot change the destination port anyway.
    pub port: u16,
    /// IPVS weight; [`defaults::WEIGHT`] when absent.
    pub weight: u32,
    /// Effective `inhibit_on_failure`, inherited from the virtual server.
    pub inhibit_on_failure: bool,
    /// The TCP health check; `None` means no checker, so keepalived keeps the
    /// server in the pool unconditionally.
    pub tcp_check: Option<TcpCheckConf>,
}

/// A `TCP_CHECK { ... }` with inherited values resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpCheckConf {
    /// Seconds to wait for the connect; [`defaults::CONNECT_TIMEOUT`] when
    /// absent at every level.
    pub connect_timeout: f64,
    /// Extra attempts before a server is declared down (`retry`, legacy
    /// `nb_get_retry`); [`defaults::RETRY`] when absent.
    pub retry: u32,
    /// Seconds between those attempts; [`defaults::DELAY_BEFORE_RETRY`].
    pub delay_before_retry: f64,
    /// Port to connect to; the real server's port when absent.
    pub connect_port: u16,
    /// Address to connect to; the real server's address when absent.
    pub connect_ip: IpAddr,
    /// Maximum random delay before the first check; keepalived.conf(5):
    /// "Enabled by default, with the maximum at delay_loop", so it defaults to
    /// the effective `delay_loop`.
    pub warmup: f64,
    /// Seconds between checks of this checker; the virtual server's
    /// `delay_loop` unless the real server or checker overrides it.
    pub delay_loop: f64,
    /// Effective alpha mode for this checker, inherited like the rest.
    pub alpha: bool,
}
