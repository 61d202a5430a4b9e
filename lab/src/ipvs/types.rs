//! Pure data: what a virtual service, a real server and their counters are.
//!
//! Nothing here knows about netlink; [`super::message`] maps these to and
//! from attributes. Everything is `serde`-serializable so scenarios can
//! describe services and reports can embed what the kernel returned.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::consts;

/// Transport protocol of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (`IPPROTO_TCP`, 6).
    Tcp,
    /// UDP (`IPPROTO_UDP`, 17).
    Udp,
    /// SCTP (`IPPROTO_SCTP`, 132).
    Sctp,
}

impl Protocol {
    /// The IP protocol number, as sent in IPVS_SVC_ATTR_PROTOCOL.
    pub fn number(self) -> u16 {
        match self {
            Protocol::Tcp => consts::IPPROTO_TCP,
            Protocol::Udp => consts::IPPROTO_UDP,
            Protocol::Sctp => consts::IPPROTO_SCTP,
        }
    }

    /// The protocol for an IP protocol number, if IPVS supports it.
    pub fn from_number(n: u16) -> Option<Self> {
        match n {
            consts::IPPROTO_TCP => Some(Protocol::Tcp),
            consts::IPPROTO_UDP => Some(Protocol::Udp),
            consts::IPPROTO_SCTP => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The name ipvsadm and `/proc/net/ip_vs*` print: `TCP`, `UDP`, `SCTP`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// Parses the upper-case name used by `/proc/net/ip_vs_conn`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the director hands a packet to a real server (`IP_VS_CONN_F_*`).
///
/// Serialized with the short names a scenario file uses (`"dr"`, `"nat"`,
/// `"tun"`, `"local"`, `"bypass"`); [`ForwardMethod::ipvsadm_name`] gives
/// the column ipvsadm prints (`Route`, `Masq`, `Tunnel`, `Local`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ForwardMethod {
    /// NAT: the director rewrites the destination and sees the replies.
    #[serde(rename = "nat", alias = "masq", alias = "masquerade")]
    Masquerade,
    /// IP-in-IP tunnel to the real server.
    #[serde(rename = "tun", alias = "tunnel", alias = "ipip")]
    Tunnel,
    /// Direct routing: only the MAC changes; replies bypass the director.
    #[serde(rename = "dr", alias = "route", alias = "droute", alias = "gatewaying")]
    DirectRoute,
    /// Deliver locally on the director.
    #[serde(rename = "local", alias = "localnode")]
    LocalNode,
    /// Cache bypass.
    #[serde(rename = "bypass")]
    Bypass,
}

impl ForwardMethod {
    /// The value of IPVS_DEST_ATTR_FWD_METHOD.
    pub fn value(self) -> u32 {
        match self {
            ForwardMethod::Masquerade => consts::IP_VS_CONN_F_MASQ,
            ForwardMethod::LocalNode => consts::IP_VS_CONN_F_LOCALNODE,
            ForwardMethod::Tunnel => consts::IP_VS_CONN_F_TUNNEL,
            ForwardMethod::DirectRoute => consts::IP_VS_CONN_F_DROUTE,
            ForwardMethod::Bypass => consts::IP_VS_CONN_F_BYPASS,
        }
    }

    /// The method for connection flags; only the `IP_VS_CONN_F_FWD_MASK` bits count.
    pub fn from_value(v: u32) -> Option<Self> {
        match v & consts::IP_VS_CONN_F_FWD_MASK {
            consts::IP_VS_CONN_F_MASQ => Some(ForwardMethod::Masquerade),
            consts::IP_VS_CONN_F_LOCALNODE => Some(ForwardMethod::LocalNode),
            consts::IP_VS_CONN_F_TUNNEL => Some(ForwardMethod::Tunnel),
            consts::IP_VS_CONN_F_DROUTE => Some(ForwardMethod::DirectRoute),
            consts::IP_VS_CONN_F_BYPASS => Some(ForwardMethod::Bypass),
            _ => None,
        }
    }

    /// The `Forward` column of `ipvsadm -Ln`. ipvsadm has no name for bypass
    /// (it cannot create one); `Bypass` is ours.
    pub fn ipvsadm_name(self) -> &'static str {
        match self {
            ForwardMethod::Masquerade => "Masq",
            ForwardMethod::LocalNode => "Local",
            ForwardMethod::Tunnel => "Tunnel",
            ForwardMethod::DirectRoute => "Route",
            ForwardMethod::Bypass => "Bypass",
        }
    }
}

/// Persistence: a client address (masked by `netmask`) sticks to one real
/// server for `timeout_s` seconds after its last connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Persistence {
    /// Seconds a template outlives the last connection it controls
    /// (ipvsadm `-p`; ipvsadm and keepalived default to 360).
    pub timeout_s: u32,
    /// Persistence granularity for IPv4 services (ipvsadm `-M`): clients
    /// whose addresses agree under this mask share a template. For IPv6
    /// services the granularity is always /128 and this field is ignored.
    #[serde(default = "Persistence::host_netmask")]
    pub netmask: Ipv4Addr,
}

impl Persistence {
    /// The default granularity: one client address per template.
    pub fn host_netmask() -> Ipv4Addr {
        Ipv4Addr::BROADCAST
    }

    /// Persistence per client address for `timeout_s` seconds.
    pub fn per_client(timeout_s: u32) -> Self {
        Persistence {
            timeout_s,
            netmask: Self::host_netmask(),
        }
    }
}

/// A virtual service, as configured (ipvsadm `-A -t|-u|--sctp-service|-f`).
///
/// It is identified by `fwmark` when that is set (then `protocol` is
/// meaningless, `port` is 0 and `address` only gives the address family),
/// otherwise by `(protocol, address, port)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Service {
    /// Transport protocol.
    pub protocol: Protocol,
    /// Virtual IP.
    pub address: IpAddr,
    /// Virtual port.
    pub port: u16,
    /// Firewall mark, for fwmark services (ipvsadm `-f`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    /// Scheduler name: `rr`, `wrr`, `lc`, `wlc`, `sh`, `mh`, ...
    pub scheduler: String,
    /// Persistence, if any. Setting it sets `IP_VS_SVC_F_PERSISTENT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<Persistence>,
    /// Further `IP_VS_SVC_F_*` flags, e.g. [`consts::IP_VS_SVC_F_ONEPACKET`]
    /// or the scheduler flags. PERSISTENT is derived from `persistence` and
    /// HASHED is kernel-internal: neither is ever kept here.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flags: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Service {
    /// A TCP service without persistence.
    pub fn tcp(address: IpAddr, port: u16, scheduler: &str) -> Self {
        Service {
            protocol: Protocol::Tcp,
            address,
            port,
            fwmark: None,
            scheduler: scheduler.to_owned(),
            persistence: None,
            flags: 0,
        }
    }

    /// A UDP service without persistence.
    pub fn udp(address: IpAddr, port: u16, scheduler: &str) -> Self {
        Service {
            protocol: Protocol::Udp,
            ..Service::tcp(address, port, scheduler)
        }
    }

    /// An IPv4 firewall-mark service.
    pub fn fwmark(mark: u32, scheduler: &str) -> Self {
        Service {
            fwmark: Some(mark),
            ..Service::tcp(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0, scheduler)
        }
    }

    /// The same service with persistence.
    pub fn with_persistence(mut self, persistence: Persistence) -> Self {
        self.persistence = Some(persistence);
        self
    }

    /// The virtual address and port.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }

    /// Whether `other` names the same kernel service (same identity),
    /// whatever its scheduler, persistence or flags.
    pub fn same_identity(&self, other: &Service) -> bool {
        match (self.fwmark, other.fwmark) {
            (Some(a), Some(b)) => a == b && self.address.is_ipv4() == other.address.is_ipv4(),
            (None, None) => {
                self.protocol == other.protocol
                    && self.address == other.address
                    && self.port == other.port
            }
            _ => false,
        }
    }
}

/// `TCP 192.168.122.1:8080`, `FWM 7`: how errors and logs name a service.
impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fwmark {
            Some(mark) if self.address.is_ipv6() => write!(f, "FWM {mark} IPv6"),
            Some(mark) => write!(f, "FWM {mark}"),
            None => write!(f, "{} {}", self.protocol, self.socket_addr()),
        }
    }
}

/// A real server of a service, as configured (ipvsadm `-a`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Destination {
    /// Real-server address.
    pub address: IpAddr,
    /// Real-server port (0 for fwmark services that keep the client's port).
    pub port: u16,
    /// Forwarding method.
    pub forward: ForwardMethod,
    /// Weight; 0 quiesces the server (no new connections).
    pub weight: i32,
    /// Upper connection threshold, 0 for none (ipvsadm `-x`).
    #[serde(default)]
    pub upper_threshold: u32,
    /// Lower connection threshold (ipvsadm `-y`).
    #[serde(default)]
    pub lower_threshold: u32,
}

impl Destination {
    /// A direct-routing destination without thresholds.
    pub fn dr(address: SocketAddr, weight: i32) -> Self {
        Destination::new(address, ForwardMethod::DirectRoute, weight)
    }

    /// A destination without thresholds.
    pub fn new(address: SocketAddr, forward: ForwardMethod, weight: i32) -> Self {
        Destination {
            address: address.ip(),
            port: address.port(),
            forward,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }

    /// The real server's address and port.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }
}

/// `172.22.35.1:8080`, `[2001:db8::10]:80`.
impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.socket_addr())
    }
}

/// Counters of a service or destination.
///
/// Totals (`conns` .. `outbytes`) count since creation or the last ZERO.
/// Rates (`cps` .. `outbps`) come from the kernel's estimator, which runs
/// about every 2 s, so both lag traffic by up to one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets in (client to server).
    pub inpkts: u64,
    /// Packets out (server to client); 0 for DR and tunnel.
    pub outpkts: u64,
    /// Bytes in.
    pub inbytes: u64,
    /// Bytes out; 0 for DR and tunnel.
    pub outbytes: u64,
    /// Connections per second.
    pub cps: u64,
    /// Packets in per second.
    pub inpps: u64,
    /// Packets out per second.
    pub outpps: u64,
    /// Bytes in per second.
    pub inbps: u64,
    /// Bytes out per second.
    pub outbps: u64,
}

/// A service as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEntry {
    /// The configuration (flags without HASHED).
    pub service: Service,
    /// Persistence-engine name, if one is set (e.g. `sip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pe_name: Option<String>,
    /// Counters.
    pub stats: Stats,
}

/// A destination as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationEntry {
    /// The configuration.
    pub destination: Destination,
    /// Established connections (TCP ESTABLISHED, ...).
    pub active_conns: u32,
    /// Other connections (SYN_RECV, FIN_WAIT, TIME_WAIT, UDP, ...).
    pub inactive_conns: u32,
    /// Persistence templates steering clients to this destination.
    pub persist_conns: u32,
    /// Counters.
    pub stats: Stats,
}

/// Connection timeouts in seconds (ipvsadm `--set tcp tcpfin udp`).
///
/// When setting, 0 leaves that timeout unchanged: the kernel skips zeros.
/// Kernel defaults: tcp 900, tcp_fin 120, udp 300.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timeouts {
    /// Established TCP.
    pub tcp: u32,
    /// TCP after FIN.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
}

/// General information (GET_INFO): the first line of `ipvsadm -Ln`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IpvsInfo {
    /// Version code, `0x010201` for 1.2.1.
    pub version: u32,
    /// Buckets in the connection hash table (`ip_vs_conn_tab_bits`).
    pub conn_table_size: u32,
}

impl IpvsInfo {
    /// `1.2.1`.
    pub fn version_string(&self) -> String {
        format!(
            "{}.{}.{}",
            (self.version >> 16) & 0xff,
            (self.version >> 8) & 0xff,
            self.version & 0xff
        )
    }
}

/// One service with its destinations, as listed together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTable {
    /// The service.
    pub entry: ServiceEntry,
    /// Its destinations, in kernel order.
    pub destinations: Vec<DestinationEntry>,
}

/// The whole IPVS table of a namespace: what `ipvsadm -Ln` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpvsTable {
    /// Version and connection-table size.
    pub info: IpvsInfo,
    /// Services in kernel (hash) order; [`super::format`] sorts like ipvsadm.
    pub services: Vec<ServiceTable>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_method_serializes_short_and_accepts_aliases() {
        let json = serde_json::to_string(&ForwardMethod::DirectRoute).unwrap();
        assert_eq!(json, "\"dr\"");
        assert_eq!(
            serde_json::to_string(&ForwardMethod::Masquerade).unwrap(),
            "\"nat\""
        );
        assert_eq!(
            serde_json::to_string(&ForwardMethod::Tunnel).unwrap(),
            "\"tun\""
        );
        let m: ForwardMethod = serde_json::from_str("\"route\"").unwrap();
        assert_eq!(m, ForwardMethod::DirectRoute);
        let m: ForwardMethod = serde_json::from_str("\"masq\"").unwrap();
        assert_eq!(m, ForwardMethod::Masquerade);
    }

    #[test]
    fn forward_method_values_round_trip_and_mask() {
        for m in [
            ForwardMethod::Masquerade,
            ForwardMethod::LocalNode,
            ForwardMethod::Tunnel,
            ForwardMethod::DirectRoute,
            ForwardMethod::Bypass,
        ] {
            assert_eq!(ForwardMethod::from_value(m.value()), Some(m));
        }
        // Other connection flags above the mask do not change the method.
        assert_eq!(
            ForwardMethod::from_value(0x0003 | consts::IP_VS_CONN_F_TEMPLATE),
            Some(ForwardMethod::DirectRoute)
        );
        assert_eq!(ForwardMethod::from_value(5), None);
    }

    #[test]
    fn service_from_scenario_toml_defaults() {
        let svc: Service = toml::from_str(
            r#"
            protocol = "tcp"
            address = "192.168.122.1"
            port = 8080
            scheduler = "rr"
            persistence = { timeout_s = 60 }
            "#,
        )
        .unwrap();
        assert_eq!(
            svc,
            Service::tcp("192.168.122.1".parse().unwrap(), 8080, "rr")
                .with_persistence(Persistence::per_client(60))
        );
        assert_eq!(svc.to_string(), "TCP 192.168.122.1:8080");
    }

    #[test]
    fn identity_ignores_configuration() {
        let a = Service::tcp("10.0.0.1".parse().unwrap(), 80, "rr");
        let mut b = a.clone();
        b.scheduler = "wlc".into();
        b.persistence = Some(Persistence::per_client(10));
        assert!(a.same_identity(&b));
        assert!(!a.same_identity(&Service::udp(a.address, 80, "rr")));
        assert!(Service::fwmark(7, "rr").same_identity(&Service::fwmark(7, "wrr")));
        assert!(!Service::fwmark(7, "rr").same_identity(&a));
    }

    #[test]
    fn info_version_string() {
        let info = IpvsInfo {
            version: 0x010201,
            conn_table_size: 4096,
        };
        assert_eq!(info.version_string(), "1.2.1");
    }
}
