//! IPVS generic-netlink messages: [`Service`] and [`Destination`] to and
//! from neli attributes. No I/O happens here; [`super::handle`] sends what
//! [`Request::build`] makes and feeds replies to the `parse_*` functions.
//!
//! The wire traps, each covered by a golden-byte test below:
//! - PROTOCOL is a u16 and SCHED_NAME carries its trailing NUL, else EINVAL;
//! - PORT is big-endian, ADDR is always 16 bytes;
//! - FLAGS is `{flags, mask}` in *host* order: big-endian is silently wrong;
//! - NETMASK holds the IPv4 mask in network order inside its u32;
//! - replies add HASHED (0x2) to the flags, interleave zero-length PAD
//!   attributes in STATS/STATS64, and carry TUN_* between WEIGHT and
//!   U_THRESH: decoding looks attributes up by type, never by position.

use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use neli::{
    ToBytes,
    genl::{AttrTypeBuilder, Genlmsghdr, GenlmsghdrBuilder, Nlattr, NlattrBuilder},
    types::{Buffer, GenlBuffer},
};

use super::consts::*;
use super::types::{
    Destination, DestinationEntry, ForwardMethod, IpvsInfo, Persistence, Protocol, Service,
    ServiceEntry, Stats, Timeouts,
};

/// An IPVS generic-netlink message: raw command byte and attribute numbers,
/// so the constants of [`super::consts`] are used as they are.
pub type IpvsMessage = Genlmsghdr<u8, u16>;

/// One attribute, its payload kept as bytes (nested ones included).
pub type Attr = Nlattr<u16, Buffer>;

/// A request could not be turned into attributes.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The kernel takes at most 15 bytes (`IP_VS_SCHEDNAME_MAXLEN` - 1).
    #[error("scheduler name {0:?} must be 1 to 15 bytes without NUL")]
    SchedulerName(String),
    /// neli refused to build an attribute or header.
    #[error("building netlink attribute {attr}")]
    Build {
        /// Which attribute (or `"genl header"`).
        attr: &'static str,
        /// neli's builder or serializer error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A reply could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A required attribute is absent.
    #[error("reply lacks attribute {0}")]
    Missing(&'static str),
    /// An attribute has a size its type cannot have.
    #[error("attribute {attr} has {len} bytes, expected {expected}")]
    Length {
        /// The attribute.
        attr: &'static str,
        /// Its payload length.
        len: usize,
        /// What was expected, e.g. `"4"`.
        expected: &'static str,
    },
    /// AF is neither `AF_INET` nor `AF_INET6`.
    #[error("unknown address family {0}")]
    AddressFamily(u16),
    /// PROTOCOL is not TCP, UDP or SCTP.
    #[error("unknown protocol number {0}")]
    Protocol(u16),
    /// FWD_METHOD is outside the known methods.
    #[error("unknown forwarding method {0:#x}")]
    ForwardMethod(u32),
    /// A name attribute is not UTF-8.
    #[error("attribute {0} is not UTF-8")]
    Utf8(&'static str),
    /// The nested attributes of a container could not be parsed.
    #[error("malformed nested attributes in {attr}")]
    Nested {
        /// The container.
        attr: &'static str,
        /// neli's parse error.
        #[source]
        source: neli::err::DeError,
    },
}

/// One IPVS request, with what it needs to name its object.
///
/// Commands that change state (NEW/SET/DEL/FLUSH/ZERO/SET_CONFIG) must be sent
/// with `NLM_F_ACK`, else a success gets no reply at all; dumps
/// ([`Request::is_dump`]) with `NLM_F_DUMP`.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// NEW_SERVICE with the full service (`ipvsadm -A`).
    NewService(&'a Service),
    /// SET_SERVICE with the full service (`ipvsadm -E`).
    SetService(&'a Service),
    /// DEL_SERVICE, identity only (`ipvsadm -D`).
    DelService(&'a Service),
    /// GET_SERVICE of one service, identity only.
    GetService(&'a Service),
    /// GET_SERVICE dump of all services.
    DumpServices,
    /// NEW_DEST: service identity plus the full destination (`ipvsadm -a`).
    NewDest(&'a Service, &'a Destination),
    /// SET_DEST (`ipvsadm -e`).
    SetDest(&'a Service, &'a Destination),
    /// DEL_DEST: service identity plus destination address (`ipvsadm -d`).
    DelDest(&'a Service, &'a Destination),
    /// GET_DEST dump of one service's destinations.
    DumpDests(&'a Service),
    /// FLUSH (`ipvsadm -C`).
    Flush,
    /// ZERO of one service, or of everything (`ipvsadm -Z [-t ..]`).
    Zero(Option<&'a Service>),
    /// GET_CONFIG: the timeouts.
    GetConfig,
    /// SET_CONFIG: the timeouts (0 = unchanged).
    SetConfig(&'a Timeouts),
    /// GET_INFO: version and connection-table size.
    GetInfo,
}

impl Request<'_> {
    /// The `IPVS_CMD_*` byte.
    pub fn command(&self) -> u8 {
        match self {
            Request::NewService(_) => IPVS_CMD_NEW_SERVICE,
            Request::SetService(_) => IPVS_CMD_SET_SERVICE,
            Request::DelService(_) => IPVS_CMD_DEL_SERVICE,
            Request::GetService(_) | Request::DumpServices => IPVS_CMD_GET_SERVICE,
            Request::NewDest(..) => IPVS_CMD_NEW_DEST,
            Request::SetDest(..) => IPVS_CMD_SET_DEST,
            Request::DelDest(..) => IPVS_CMD_DEL_DEST,
            Request::DumpDests(_) => IPVS_CMD_GET_DEST,
            Request::Flush => IPVS_CMD_FLUSH,
            Request::Zero(_) => IPVS_CMD_ZERO,
            Request::GetConfig => IPVS_CMD_GET_CONFIG,
            Request::SetConfig(_) => IPVS_CMD_SET_CONFIG,
            Request::GetInfo => IPVS_CMD_GET_INFO,
        }
    }

    /// Whether the request is a dump (`NLM_F_DUMP`, multi-part reply).
    pub fn is_dump(&self) -> bool {
        matches!(self, Request::DumpServices | Request::DumpDests(_))
    }

    /// Whether the request changes kernel state (send with `NLM_F_ACK`).
    pub fn is_change(&self) -> bool {
        !matches!(
            self,
            Request::GetService(_)
                | Request::DumpServices
                | Request::DumpDests(_)
                | Request::GetConfig
                | Request::GetInfo
        )
    }

    /// The top-level attributes.
    pub fn attrs(&self) -> Result<GenlBuffer<u16, Buffer>, EncodeError> {
        let attrs: Vec<Attr> = match *self {
            Request::NewService(s) | Request::SetService(s) => vec![service_attr(s)?],
            Request::DelService(s) | Request::GetService(s) | Request::DumpDests(s) => {
                vec![service_id_attr(s)?]
            }
            Request::Zero(Some(s)) => vec![service_id_attr(s)?],
            Request::NewDest(s, d) | Request::SetDest(s, d) => {
                vec![service_id_attr(s)?, dest_attr(d)?]
            }
            Request::DelDest(s, d) => vec![service_id_attr(s)?, dest_id_attr(d)?],
            Request::SetConfig(t) => timeout_attrs(t)?,
            Request::DumpServices
            | Request::Flush
            | Request::Zero(None)
            | Request::GetConfig
            | Request::GetInfo => Vec::new(),
        };
        Ok(attrs.into_iter().collect())
    }

    /// The generic-netlink message (header plus attributes).
    pub fn build(&self) -> Result<IpvsMessage, EncodeError> {
        GenlmsghdrBuilder::default()
            .cmd(self.command())
            .version(IPVS_GENL_VERSION)
            .attrs(self.attrs()?)
            .build()
            .map_err(|e| build_err("genl header", e))
    }
}

/// The bytes of a message, as they follow the `nlmsghdr` on the wire.
pub fn to_bytes(msg: &IpvsMessage) -> Result<Vec<u8>, EncodeError> {
    let mut cursor = Cursor::new(Vec::new());
    msg.to_bytes(&mut cursor)
        .map_err(|e| build_err("genl message", e))?;
    Ok(cursor.into_inner())
}

/// A message from the bytes that follow the `nlmsghdr` on the wire (the
/// inverse of [`to_bytes`]); what the kernel sends is untrusted input here.
pub fn from_bytes(bytes: &[u8]) -> Result<IpvsMessage, DecodeError> {
    use neli::FromBytesWithInput;
    IpvsMessage::from_bytes_with_input(&mut Cursor::new(bytes), bytes.len()).map_err(|source| {
        DecodeError::Nested {
            attr: "genl message",
            source,
        }
    })
}

// ---------------------------------------------------------------------------
// Encoding

fn build_err(attr: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> EncodeError {
    EncodeError::Build {
        attr,
        source: Box::new(e),
    }
}

/// One attribute with a serializable payload.
fn attr<P>(ty: u16, name: &'static str, payload: P) -> Result<Attr, EncodeError>
where
    P: neli::Size + neli::ToBytes,
{
    NlattrBuilder::default()
        .nla_type(
            AttrTypeBuilder::default()
                .nla_type(ty)
                .build()
                .map_err(|e| build_err(name, e))?,
        )
        .nla_payload(payload)
        .build()
        .map_err(|e| build_err(name, e))
}

/// A nested attribute holding `children`; neli sets `NLA_F_NESTED` and pads.
fn nested(ty: u16, name: &'static str, children: &[Attr]) -> Result<Attr, EncodeError> {
    let mut container = attr(ty, name, Buffer::new())?;
    for child in children {
        container = container.nest(child).map_err(|e| build_err(name, e))?;
    }
    Ok(container)
}

/// `AF_INET` or `AF_INET6`.
fn family(addr: &IpAddr) -> u16 {
    match addr {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

/// `union nf_inet_addr`: 16 bytes, IPv4 in the first 4, the rest zero.
fn inet_addr(addr: &IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match addr {
        IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => out = a.octets(),
    }
    out
}

/// The attributes that identify a service: AF plus FWMARK, or AF,
/// PROTOCOL, ADDR and PORT. Enough for DEL/GET and for destination commands.
fn service_id_children(s: &Service) -> Result<Vec<Attr>, EncodeError> {
    let mut v = vec![attr(
        IPVS_SVC_ATTR_AF,
        "IPVS_SVC_ATTR_AF",
        family(&s.address),
    )?];
    match s.fwmark {
        Some(mark) => v.push(attr(IPVS_SVC_ATTR_FWMARK, "IPVS_SVC_ATTR_FWMARK", mark)?),
        None => {
            v.push(attr(
                IPVS_SVC_ATTR_PROTOCOL,
                "IPVS_SVC_ATTR_PROTOCOL",
                s.protocol.number(),
            )?);
            v.push(attr(
                IPVS_SVC_ATTR_ADDR,
                "IPVS_SVC_ATTR_ADDR",
                inet_addr(&s.address),
            )?);
            v.push(attr(
                IPVS_SVC_ATTR_PORT,
                "IPVS_SVC_ATTR_PORT",
                s.port.to_be_bytes(),
            )?);
        }
    }
    Ok(v)
}

/// The nested SERVICE attribute with identity only.
pub fn service_id_attr(s: &Service) -> Result<Attr, EncodeError> {
    nested(
        IPVS_CMD_ATTR_SERVICE,
        "IPVS_CMD_ATTR_SERVICE",
        &service_id_children(s)?,
    )
}

/// The nested SERVICE attribute with everything NEW/SET_SERVICE require:
/// identity, SCHED_NAME, FLAGS, TIMEOUT and NETMASK (the kernel answers
/// EINVAL when any of the last four is missing).
pub fn service_attr(s: &Service) -> Result<Attr, EncodeError> {
    if s.scheduler.is_empty()
        || s.scheduler.len() >= IP_VS_SCHEDNAME_MAXLEN
        || s.scheduler.contains('\0')
    {
        return Err(EncodeError::SchedulerName(s.scheduler.clone()));
    }
    let mut v = service_id_children(s)?;
    // `&str` payloads get their trailing NUL from neli; the kernel needs it.
    v.push(attr(
        IPVS_SVC_ATTR_SCHED_NAME,
        "IPVS_SVC_ATTR_SCHED_NAME",
        s.scheduler.as_str(),
    )?);
    let mut flags = s.flags & !(IP_VS_SVC_F_HASHED | IP_VS_SVC_F_PERSISTENT);
    if s.persistence.is_some() {
        flags |= IP_VS_SVC_F_PERSISTENT;
    }
    // struct ip_vs_flags, host order; a full mask makes SET_SERVICE replace
    // all flags, as ipvsadm and the Go libraries do.
    let mut ip_vs_flags = [0u8; 8];
    ip_vs_flags[..4].copy_from_slice(&flags.to_ne_bytes());
    ip_vs_flags[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
    v.push(attr(
        IPVS_SVC_ATTR_FLAGS,
        "IPVS_SVC_ATTR_FLAGS",
        ip_vs_flags,
    )?);
    let timeout = s.persistence.map_or(0, |p| p.timeout_s);
    v.push(attr(
        IPVS_SVC_ATTR_TIMEOUT,
        "IPVS_SVC_ATTR_TIMEOUT",
        timeout,
    )?);
    let netmask = match s.address {
        // The mask's octets in network order, read by the kernel as __be32.
        IpAddr::V4(_) => s
            .persistence
            .map_or(Persistence::host_netmask(), |p| p.netmask)
            .octets(),
        // IPv6 services take a prefix length, as a plain host-order u32.
        IpAddr::V6(_) => 128u32.to_ne_bytes(),
    };
    v.push(attr(
        IPVS_SVC_ATTR_NETMASK,
        "IPVS_SVC_ATTR_NETMASK",
        netmask,
    )?);
    nested(IPVS_CMD_ATTR_SERVICE, "IPVS_CMD_ATTR_SERVICE", &v)
}

/// ADDR and PORT, which identify a destination within its service.
fn dest_address_attrs(d: &Destination) -> Result<[Attr; 2], EncodeError> {
    Ok([
        attr(
            IPVS_DEST_ATTR_ADDR,
            "IPVS_DEST_ATTR_ADDR",
            inet_addr(&d.address),
        )?,
        attr(
            IPVS_DEST_ATTR_PORT,
            "IPVS_DEST_ATTR_PORT",
            d.port.to_be_bytes(),
        )?,
    ])
}

/// ADDR_FAMILY, which the kernel reads last (kernels from 3.18 on).
fn dest_family_attr(d: &Destination) -> Result<Attr, EncodeError> {
    attr(
        IPVS_DEST_ATTR_ADDR_FAMILY,
        "IPVS_DEST_ATTR_ADDR_FAMILY",
        family(&d.address),
    )
}

/// The nested DEST attribute with address, port and family only (DEL_DEST).
pub fn dest_id_attr(d: &Destination) -> Result<Attr, EncodeError> {
    let [addr, port] = dest_address_attrs(d)?;
    nested(
        IPVS_CMD_ATTR_DEST,
        "IPVS_CMD_ATTR_DEST",
        &[addr, port, dest_family_attr(d)?],
    )
}

/// The nested DEST attribute with everything NEW/SET_DEST require:
/// FWD_METHOD, WEIGHT, U_THRESH and L_THRESH beside the address.
pub fn dest_attr(d: &Destination) -> Result<Attr, EncodeError> {
    let [addr, port] = dest_address_attrs(d)?;
    nested(
        IPVS_CMD_ATTR_DEST,
        "IPVS_CMD_ATTR_DEST",
        &[
            addr,
            port,
            attr(
                IPVS_DEST_ATTR_FWD_METHOD,
                "IPVS_DEST_ATTR_FWD_METHOD",
                d.forward.value(),
            )?,
            // Signed in the kernel, u32 on the wire: same bits.
            attr(
                IPVS_DEST_ATTR_WEIGHT,
                "IPVS_DEST_ATTR_WEIGHT",
                d.weight as u32,
            )?,
            attr(
                IPVS_DEST_ATTR_U_THRESH,
                "IPVS_DEST_ATTR_U_THRESH",
                d.upper_threshold,
            )?,
            attr(
                IPVS_DEST_ATTR_L_THRESH,
                "IPVS_DEST_ATTR_L_THRESH",
                d.lower_threshold,
            )?,
            dest_family_attr(d)?,
        ],
    )
}

/// The three top-level timeout attributes of SET_CONFIG.
pub fn timeout_attrs(t: &Timeouts) -> Result<Vec<Attr>, EncodeError> {
    Ok(vec![
        attr(
            IPVS_CMD_ATTR_TIMEOUT_TCP,
            "IPVS_CMD_ATTR_TIMEOUT_TCP",
            t.tcp,
        )?,
        attr(
            IPVS_CMD_ATTR_TIMEOUT_TCP_FIN,
            "IPVS_CMD_ATTR_TIMEOUT_TCP_FIN",
            t.tcp_fin,
        )?,
        attr(
            IPVS_CMD_ATTR_TIMEOUT_UDP,
            "IPVS_CMD_ATTR_TIMEOUT_UDP",
            t.udp,
        )?,
    ])
}

// ---------------------------------------------------------------------------
// Decoding

/// Attributes of one level, looked up by type (never by position).
struct Attrs<'a>(&'a [Attr]);

impl<'a> Attrs<'a> {
    fn get(&self, ty: u16) -> Option<&'a [u8]> {
        self.0
            .iter()
            .find(|a| *a.nla_type().nla_type() == ty)
            .map(|a| a.nla_payload().as_ref())
    }

    fn attr(&self, ty: u16) -> Option<&'a Attr> {
        self.0.iter().find(|a| *a.nla_type().nla_type() == ty)
    }

    fn req(&self, ty: u16, name: &'static str) -> Result<&'a [u8], DecodeError> {
        self.get(ty).ok_or(DecodeError::Missing(name))
    }
}

fn len_err(attr: &'static str, len: usize, expected: &'static str) -> DecodeError {
    DecodeError::Length {
        attr,
        len,
        expected,
    }
}

fn read_u16(b: &[u8], name: &'static str) -> Result<u16, DecodeError> {
    <[u8; 2]>::try_from(b)
        .map(u16::from_ne_bytes)
        .map_err(|_| len_err(name, b.len(), "2"))
}

fn read_be16(b: &[u8], name: &'static str) -> Result<u16, DecodeError> {
    <[u8; 2]>::try_from(b)
        .map(u16::from_be_bytes)
        .map_err(|_| len_err(name, b.len(), "2"))
}

fn read_u32(b: &[u8], name: &'static str) -> Result<u32, DecodeError> {
    <[u8; 4]>::try_from(b)
        .map(u32::from_ne_bytes)
        .map_err(|_| len_err(name, b.len(), "4"))
}

fn read_string(b: &[u8], name: &'static str) -> Result<String, DecodeError> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    std::str::from_utf8(&b[..end])
        .map(str::to_owned)
        .map_err(|_| DecodeError::Utf8(name))
}

fn read_family(b: &[u8], name: &'static str) -> Result<u16, DecodeError> {
    match read_u16(b, name)? {
        f @ (AF_INET | AF_INET6) => Ok(f),
        f => Err(DecodeError::AddressFamily(f)),
    }
}

fn read_addr(b: &[u8], af: u16, name: &'static str) -> Result<IpAddr, DecodeError> {
    match af {
        AF_INET if b.len() >= 4 => Ok(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        AF_INET6 => <[u8; 16]>::try_from(b)
            .map(|o| IpAddr::V6(Ipv6Addr::from(o)))
            .map_err(|_| len_err(name, b.len(), "16")),
        AF_INET => Err(len_err(name, b.len(), "16")),
        other => Err(DecodeError::AddressFamily(other)),
    }
}

fn unspecified(af: u16) -> IpAddr {
    if af == AF_INET6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// Parses the children of a nested attribute.
fn children(a: &Attr, name: &'static str) -> Result<GenlBuffer<u16, Buffer>, DecodeError> {
    a.get_attr_handle::<u16>()
        .map(|h| h.get_attrs().iter().cloned().collect())
        .map_err(|source| DecodeError::Nested { attr: name, source })
}

/// Decodes a STATS or STATS64 container. Each counter is read by its size
/// (u32 or u64: STATS mixes both), and zero-length PADs are skipped.
pub fn parse_stats(container: &Attr) -> Result<Stats, DecodeError> {
    let attrs = children(container, "STATS")?;
    let mut s = Stats::default();
    for a in attrs.iter() {
        let b: &[u8] = a.nla_payload().as_ref();
        let value = match b.len() {
            0 => continue, // IPVS_STATS_ATTR_PAD
            4 => u64::from(u32::from_ne_bytes(b.try_into().expect("length checked"))),
            8 => u64::from_ne_bytes(b.try_into().expect("length checked")),
            n => return Err(len_err("IPVS_STATS_ATTR_*", n, "4 or 8")),
        };
        let slot = match *a.nla_type().nla_type() {
            IPVS_STATS_ATTR_CONNS => &mut s.conns,
            IPVS_STATS_ATTR_INPKTS => &mut s.inpkts,
            IPVS_STATS_ATTR_OUTPKTS => &mut s.outpkts,
            IPVS_STATS_ATTR_INBYTES => &mut s.inbytes,
            IPVS_STATS_ATTR_OUTBYTES => &mut s.outbytes,
            IPVS_STATS_ATTR_CPS => &mut s.cps,
            IPVS_STATS_ATTR_INPPS => &mut s.inpps,
            IPVS_STATS_ATTR_OUTPPS => &mut s.outpps,
            IPVS_STATS_ATTR_INBPS => &mut s.inbps,
            IPVS_STATS_ATTR_OUTBPS => &mut s.outbps,
            _ => continue,
        };
        *slot = value;
    }
    Ok(s)
}

/// STATS64 when present (kernels 4.x+), else the 32-bit STATS.
fn stats_of(attrs: &Attrs<'_>, stats64: u16, stats: u16) -> Result<Stats, DecodeError> {
    match attrs.attr(stats64).or_else(|| attrs.attr(stats)) {
        Some(a) => parse_stats(a),
        None => Ok(Stats::default()),
    }
}

fn top_level<'a>(
    msg: &'a IpvsMessage,
    ty: u16,
    name: &'static str,
) -> Result<&'a Attr, DecodeError> {
    msg.attrs()
        .iter()
        .find(|a| *a.nla_type().nla_type() == ty)
        .ok_or(DecodeError::Missing(name))
}

/// Decodes the nested attributes of a SERVICE container.
pub fn parse_service_attr(container: &Attr) -> Result<ServiceEntry, DecodeError> {
    let buf = children(container, "IPVS_CMD_ATTR_SERVICE")?;
    let a = Attrs(buf.as_ref());
    let af = read_family(
        a.req(IPVS_SVC_ATTR_AF, "IPVS_SVC_ATTR_AF")?,
        "IPVS_SVC_ATTR_AF",
    )?;
    let fwmark = match a.get(IPVS_SVC_ATTR_FWMARK) {
        Some(b) => Some(read_u32(b, "IPVS_SVC_ATTR_FWMARK")?).filter(|&m| m != 0),
        None => None,
    };
    let (protocol, address, port) = if fwmark.is_some() {
        // Fwmark services carry no protocol, address or port; the kernel
        // keeps them as TCP internally.
        (Protocol::Tcp, unspecified(af), 0)
    } else {
        let n = read_u16(
            a.req(IPVS_SVC_ATTR_PROTOCOL, "IPVS_SVC_ATTR_PROTOCOL")?,
            "IPVS_SVC_ATTR_PROTOCOL",
        )?;
        let protocol = Protocol::from_number(n).ok_or(DecodeError::Protocol(n))?;
        let address = read_addr(
            a.req(IPVS_SVC_ATTR_ADDR, "IPVS_SVC_ATTR_ADDR")?,
            af,
            "IPVS_SVC_ATTR_ADDR",
        )?;
        let port = read_be16(
            a.req(IPVS_SVC_ATTR_PORT, "IPVS_SVC_ATTR_PORT")?,
            "IPVS_SVC_ATTR_PORT",
        )?;
        (protocol, address, port)
    };
    let scheduler = read_string(
        a.req(IPVS_SVC_ATTR_SCHED_NAME, "IPVS_SVC_ATTR_SCHED_NAME")?,
        "IPVS_SVC_ATTR_SCHED_NAME",
    )?;
    let fb = a.req(IPVS_SVC_ATTR_FLAGS, "IPVS_SVC_ATTR_FLAGS")?;
    if fb.len() != 8 {
        return Err(len_err("IPVS_SVC_ATTR_FLAGS", fb.len(), "8"));
    }
    let raw_flags = read_u32(&fb[..4], "IPVS_SVC_ATTR_FLAGS")?;
    let timeout_s = match a.get(IPVS_SVC_ATTR_TIMEOUT) {
        Some(b) => read_u32(b, "IPVS_SVC_ATTR_TIMEOUT")?,
        None => 0,
    };
    let netmask = match (af, a.get(IPVS_SVC_ATTR_NETMASK)) {
        (AF_INET, Some(b)) => {
            let o: [u8; 4] = b
                .try_into()
                .map_err(|_| len_err("IPVS_SVC_ATTR_NETMASK", b.len(), "4"))?;
            Ipv4Addr::from(o)
        }
        _ => Persistence::host_netmask(),
    };
    let persistence =
        (raw_flags & IP_VS_SVC_F_PERSISTENT != 0).then_some(Persistence { timeout_s, netmask });
    let pe_name = match a.get(IPVS_SVC_ATTR_PE_NAME) {
        Some(b) => Some(read_string(b, "IPVS_SVC_ATTR_PE_NAME")?).filter(|s| !s.is_empty()),
        None => None,
    };
    Ok(ServiceEntry {
        service: Service {
            protocol,
            address,
            port,
            fwmark,
            scheduler,
            persistence,
            flags: raw_flags & !(IP_VS_SVC_F_HASHED | IP_VS_SVC_F_PERSISTENT),
        },
        pe_name,
        stats: stats_of(&a, IPVS_SVC_ATTR_STATS64, IPVS_SVC_ATTR_STATS)?,
    })
}

/// Decodes one GET_SERVICE reply (a dump part or the single answer).
pub fn parse_service(msg: &IpvsMessage) -> Result<ServiceEntry, DecodeError> {
    parse_service_attr(top_level(
        msg,
        IPVS_CMD_ATTR_SERVICE,
        "IPVS_CMD_ATTR_SERVICE",
    )?)
}

/// Decodes the nested attributes of a DEST container. `default_af` is the
/// service's family, used when the kernel (before 3.18) omits ADDR_FAMILY.
pub fn parse_dest_attr(container: &Attr, default_af: u16) -> Result<DestinationEntry, DecodeError> {
    let buf = children(container, "IPVS_CMD_ATTR_DEST")?;
    let a = Attrs(buf.as_ref());
    let af = match a.get(IPVS_DEST_ATTR_ADDR_FAMILY) {
        Some(b) => read_family(b, "IPVS_DEST_ATTR_ADDR_FAMILY")?,
        None => default_af,
    };
    let u32_or_0 = |ty, name| a.get(ty).map_or(Ok(0), |b| read_u32(b, name));
    let fwd = read_u32(
        a.req(IPVS_DEST_ATTR_FWD_METHOD, "IPVS_DEST_ATTR_FWD_METHOD")?,
        "IPVS_DEST_ATTR_FWD_METHOD",
    )?;
    Ok(DestinationEntry {
        destination: Destination {
            address: read_addr(
                a.req(IPVS_DEST_ATTR_ADDR, "IPVS_DEST_ATTR_ADDR")?,
                af,
                "IPVS_DEST_ATTR_ADDR",
            )?,
            port: read_be16(
                a.req(IPVS_DEST_ATTR_PORT, "IPVS_DEST_ATTR_PORT")?,
                "IPVS_DEST_ATTR_PORT",
            )?,
            forward: ForwardMethod::from_value(fwd).ok_or(DecodeError::ForwardMethod(fwd))?,
            weight: read_u32(
                a.req(IPVS_DEST_ATTR_WEIGHT, "IPVS_DEST_ATTR_WEIGHT")?,
                "IPVS_DEST_ATTR_WEIGHT",
            )? as i32,
            upper_threshold: u32_or_0(IPVS_DEST_ATTR_U_THRESH, "IPVS_DEST_ATTR_U_THRESH")?,
            lower_threshold: u32_or_0(IPVS_DEST_ATTR_L_THRESH, "IPVS_DEST_ATTR_L_THRESH")?,
        },
        active_conns: u32_or_0(IPVS_DEST_ATTR_ACTIVE_CONNS, "IPVS_DEST_ATTR_ACTIVE_CONNS")?,
        inactive_conns: u32_or_0(IPVS_DEST_ATTR_INACT_CONNS, "IPVS_DEST_ATTR_INACT_CONNS")?,
        persist_conns: u32_or_0(IPVS_DEST_ATTR_PERSIST_CONNS, "IPVS_DEST_ATTR_PERSIST_CONNS")?,
        stats: stats_of(&a, IPVS_DEST_ATTR_STATS64, IPVS_DEST_ATTR_STATS)?,
    })
}

/// Decodes one part of a GET_DEST dump.
pub fn parse_dest(msg: &IpvsMessage, default_af: u16) -> Result<DestinationEntry, DecodeError> {
    parse_dest_attr(
        top_level(msg, IPVS_CMD_ATTR_DEST, "IPVS_CMD_ATTR_DEST")?,
        default_af,
    )
}

/// Decodes a GET_CONFIG reply.
pub fn parse_timeouts(msg: &IpvsMessage) -> Result<Timeouts, DecodeError> {
    let get = |ty, name| read_u32(top_level(msg, ty, name)?.nla_payload().as_ref(), name);
    Ok(Timeouts {
        tcp: get(IPVS_CMD_ATTR_TIMEOUT_TCP, "IPVS_CMD_ATTR_TIMEOUT_TCP")?,
        tcp_fin: get(
            IPVS_CMD_ATTR_TIMEOUT_TCP_FIN,
            "IPVS_CMD_ATTR_TIMEOUT_TCP_FIN",
        )?,
        udp: get(IPVS_CMD_ATTR_TIMEOUT_UDP, "IPVS_CMD_ATTR_TIMEOUT_UDP")?,
    })
}

/// Decodes a GET_INFO reply.
pub fn parse_info(msg: &IpvsMessage) -> Result<IpvsInfo, DecodeError> {
    let get = |ty, name| read_u32(top_level(msg, ty, name)?.nla_payload().as_ref(), name);
    Ok(IpvsInfo {
        version: get(IPVS_INFO_ATTR_VERSION, "IPVS_INFO_ATTR_VERSION")?,
        conn_table_size: get(IPVS_INFO_ATTR_CONN_TAB_SIZE, "IPVS_INFO_ATTR_CONN_TAB_SIZE")?,
    })
}

/// The address family of a service, for [`parse_dest`].
pub fn service_family(s: &Service) -> u16 {
    family(&s.address)
}

#[cfg(test)]
mod tests {
    //! Golden bytes, written out by hand from `ip_vs.h` and `ip_vs_ctl.c`,
    //! one line per attribute. Host-order fields are written little-endian,
    //! so the byte-level tests only run on little-endian machines.

    use super::*;
    use neli::FromBytesWithInput;

    fn reference_service() -> Service {
        Service::tcp("192.168.122.1".parse().unwrap(), 8080, "rr")
            .with_persistence(Persistence::per_client(60))
    }

    fn parse_msg(bytes: &[u8]) -> IpvsMessage {
        IpvsMessage::from_bytes_with_input(&mut Cursor::new(bytes), bytes.len()).unwrap()
    }

    fn emit(req: Request<'_>) -> Vec<u8> {
        to_bytes(&req.build().unwrap()).unwrap()
    }

    #[rustfmt::skip]
    const NEW_SERVICE_REFERENCE: &[u8] = &[
        0x01, 0x01, 0x00, 0x00,             // genl: cmd NEW_SERVICE, version 1, reserved
        0x54, 0x00, 0x01, 0x80,             // SERVICE: len 84, type 1 | NLA_F_NESTED
        0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // AF: u16 2 (AF_INET) + pad
        0x06, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, // PROTOCOL: u16 6 (TCP) + pad
        0x14, 0x00, 0x03, 0x00,             // ADDR: len 20, 16 bytes
        0xc0, 0xa8, 0x7a, 0x01,             //   192.168.122.1
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //   zeros up to 16 bytes
        0x06, 0x00, 0x04, 0x00, 0x1f, 0x90, 0x00, 0x00, // PORT: 8080 big-endian + pad
        0x07, 0x00, 0x06, 0x00, b'r', b'r', 0x00, 0x00, // SCHED_NAME: "rr" NUL + pad
        0x0c, 0x00, 0x07, 0x00,             // FLAGS: len 12
        0x01, 0x00, 0x00, 0x00,             //   flags PERSISTENT, host order
        0xff, 0xff, 0xff, 0xff,             //   mask: all flags
        0x08, 0x00, 0x08, 0x00, 0x3c, 0x00, 0x00, 0x00, // TIMEOUT: u32 60
        0x08, 0x00, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff, // NETMASK: 255.255.255.255
    ];

    #[test]
    #[cfg(target_endian = "little")]
    fn emit_new_service_reference() {
        let svc = reference_service();
        assert_eq!(emit(Request::NewService(&svc)), NEW_SERVICE_REFERENCE);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn emit_set_service_differs_only_in_command() {
        let svc = reference_service();
        let bytes = emit(Request::SetService(&svc));
        assert_eq!(bytes[0], IPVS_CMD_SET_SERVICE);
        assert_eq!(&bytes[1..], &NEW_SERVICE_REFERENCE[1..]);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn emit_netmask_is_network_order_and_flags_host_order() {
        let svc =
            Service::udp("10.0.0.1".parse().unwrap(), 53, "wrr").with_persistence(Persistence {
                timeout_s: 300,
                netmask: "255.255.255.0".parse().unwrap(),
            });
        let mut svc = svc;
        svc.flags = IP_VS_SVC_F_ONEPACKET | IP_VS_SVC_F_HASHED; // HASHED is never sent
        let bytes = emit(Request::NewService(&svc));
        #[rustfmt::skip]
        let tail: &[u8] = &[
            0x0c, 0x00, 0x07, 0x00,             // FLAGS
            0x05, 0x00, 0x00, 0x00,             //   PERSISTENT | ONEPACKET, host order
            0xff, 0xff, 0xff, 0xff,             //   mask
            0x08, 0x00, 0x08, 0x00, 0x2c, 0x01, 0x00, 0x00, // TIMEOUT: u32 300
            0x08, 0x00, 0x09, 0x00, 0xff, 0xff, 0xff, 0x00, // NETMASK: 255.255.255.0 as-is
        ];
        assert!(bytes.ends_with(tail), "{bytes:02x?}");
        // PROTOCOL 17 as u16, PORT 53 big-endian
        assert!(
            bytes
                .windows(8)
                .any(|w| w == [0x06, 0x00, 0x02, 0x00, 0x11, 0x00, 0x00, 0x00])
        );
        assert!(
            bytes
                .windows(8)
                .any(|w| w == [0x06, 0x00, 0x04, 0x00, 0x00, 0x35, 0x00, 0x00])
        );
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn emit_service_without_persistence_still_sends_timeout_and_netmask() {
        let svc = Service::tcp("10.0.0.3".parse().unwrap(), 80, "wlc");
        let bytes = emit(Request::NewService(&svc));
        #[rustfmt::skip]
        let tail: &[u8] = &[
            0x08, 0x00, 0x06, 0x00, b'w', b'l', b'c', 0x00, // SCHED_NAME "wlc" NUL, no pad
            0x0c, 0x00, 0x07, 0x00, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // FLAGS 0 / all
            0x08, 0x00, 0x08, 0x00, 0, 0, 0, 0,                 // TIMEOUT 0
            0x08, 0x00, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff,     // NETMASK /32 (required)
        ];
        assert!(bytes.ends_with(tail), "{bytes:02x?}");
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn emit_del_service_and_fwmark_identity() {
        let svc = reference_service();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x03, 0x01, 0x00, 0x00,             // genl: DEL_SERVICE, version 1
            0x30, 0x00, 0x01, 0x80,             // SERVICE: len 48, nested
            0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // AF_INET
            0x06, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, // TCP
            0x14, 0x00, 0x03, 0x00, 0xc0, 0xa8, 0x7a, 0x01, // ADDR 192.168.122.1
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0x06, 0x00, 0x04, 0x00, 0x1f, 0x90, 0x00, 0x00, // PORT 8080
        ];
        assert_eq!(emit(Request::DelService(&svc)), expected);

        let fw = Service::fwmark(7, "rr");
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x03, 0x01, 0x00, 0x00,             // genl: DEL_SERVICE
            0x14, 0x00, 0x01, 0x80,             // SERVICE: len 20, nested
            0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // AF_INET
            0x08, 0x00, 0x05, 0x00, 0x07, 0x00, 0x00, 0x00, // FWMARK 7, nothing else
        ];
        assert_eq!(emit(Request::DelService(&fw)), expected);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn emit_new_dest_dr() {
        let svc = reference_service();
        let dest = Destination::dr("172.22.35.1:8080".parse().unwrap(), 1);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x05, 0x01, 0x00, 0x00,             // genl: NEW_DEST, version 1
            0x30, 0x00, 0x01, 0x80,             // SERVICE (identity only): len 48, nested
            0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // AF_INET
            0x06, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, // TCP
            0x14, 0x00, 0x03, 0x00, 0xc0, 0xa8, 0x7a, 0x01, // ADDR 192.168.122.1
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0x06, 0x00, 0x04, 0x00, 0x1f, 0x90, 0x00, 0x00, // PORT 8080
            0x48, 0x00, 0x02, 0x80,             // DEST: len 72, type 2 | nested
            0x14, 0x00, 0x01, 0x00, 0xac, 0x16, 0x23, 0x01, // ADDR 172.22.35.1
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0x06, 0x00, 0x02, 0x00, 0x1f, 0x90, 0x00, 0x00, // PORT 8080 big-endian
            0x08, 0x00, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, // FWD_METHOD 3 (DROUTE)
            0x08, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, // WEIGHT 1
            0x08, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, // U_THRESH 0
            0x08, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, // L_THRESH 0
            0x06, 0x00, 0x0b, 0x00, 0x02, 0x00, 0x00, 0x00, // ADDR_FAMILY AF_INET
        ];
        assert_eq!(emit(Request::NewDest(&svc, &dest)), expected);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn emit_small_requests() {
        // FLUSH, GET_INFO, GET_CONFIG, ZERO(all) and the dump carry no attributes.
        assert_eq!(emit(Request::Flush), [0x11, 0x01, 0x00, 0x00]);
        assert_eq!(emit(Request::GetInfo), [0x0f, 0x01, 0x00, 0x00]);
        assert_eq!(emit(Request::GetConfig), [0x0d, 0x01, 0x00, 0x00]);
        assert_eq!(emit(Request::Zero(None)), [0x10, 0x01, 0x00, 0x00]);
        assert_eq!(emit(Request::DumpServices), [0x04, 0x01, 0x00, 0x00]);
        let t = Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x0c, 0x01, 0x00, 0x00,                         // genl: SET_CONFIG
            0x08, 0x00, 0x04, 0x00, 0x84, 0x03, 0x00, 0x00, // TIMEOUT_TCP 900
            0x08, 0x00, 0x05, 0x00, 0x78, 0x00, 0x00, 0x00, // TIMEOUT_TCP_FIN 120
            0x08, 0x00, 0x06, 0x00, 0x2c, 0x01, 0x00, 0x00, // TIMEOUT_UDP 300
        ];
        assert_eq!(emit(Request::SetConfig(&t)), expected);
    }

    #[test]
    fn scheduler_name_is_checked() {
        let mut svc = reference_service();
        svc.scheduler = "a-very-long-scheduler".into();
        assert!(matches!(
            Request::NewService(&svc).build(),
            Err(EncodeError::SchedulerName(_))
        ));
        svc.scheduler = String::new();
        assert!(Request::NewService(&svc).build().is_err());
        // Identity-only requests do not need a scheduler.
        assert!(Request::DelService(&svc).build().is_ok());
    }

    /// A GET_SERVICE dump part as 6.1 sends it: containers without
    /// NLA_F_NESTED, flags with HASHED, STATS mixing u32 and u64 with PADs,
    /// then STATS64.
    #[rustfmt::skip]
    const SERVICE_REPLY: &[u8] = &[
        0x01, 0x01, 0x00, 0x00,             // genl: cmd NEW_SERVICE (dump parts use it)
        0x48, 0x01, 0x01, 0x00,             // SERVICE: len 328, type 1, no nested flag
        0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // AF_INET
        0x06, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, // PROTOCOL TCP
        0x14, 0x00, 0x03, 0x00, 0xc0, 0xa8, 0x7a, 0x01, // ADDR 192.168.122.1
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x06, 0x00, 0x04, 0x00, 0x1f, 0x90, 0x00, 0x00, // PORT 8080
        0x07, 0x00, 0x06, 0x00, b'r', b'r', 0x00, 0x00, // SCHED_NAME "rr"
        0x0c, 0x00, 0x07, 0x00,             // FLAGS
        0x03, 0x00, 0x00, 0x00,             //   PERSISTENT | HASHED
        0xff, 0xff, 0xff, 0xff,             //   mask
        0x08, 0x00, 0x08, 0x00, 0x3c, 0x00, 0x00, 0x00, // TIMEOUT 60
        0x08, 0x00, 0x09, 0x00, 0xff, 0xff, 0xff, 0x00, // NETMASK 255.255.255.0
        0x64, 0x00, 0x0a, 0x00,             // STATS: len 100
        0x08, 0x00, 0x01, 0x00, 0x05, 0x00, 0x00, 0x00, //   CONNS u32 5
        0x08, 0x00, 0x02, 0x00, 0x2a, 0x00, 0x00, 0x00, //   INPKTS u32 42
        0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, //   OUTPKTS u32 0
        0x04, 0x00, 0x0b, 0x00,             //   PAD, zero length
        0x0c, 0x00, 0x04, 0x00, 0xb8, 0x0b, 0, 0, 0, 0, 0, 0, // INBYTES u64 3000
        0x04, 0x00, 0x0b, 0x00,             //   PAD
        0x0c, 0x00, 0x05, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, //   OUTBYTES u64 0
        0x08, 0x00, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, //   CPS u32 1
        0x08, 0x00, 0x07, 0x00, 0x02, 0x00, 0x00, 0x00, //   INPPS u32 2
        0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, //   OUTPPS u32 0
        0x08, 0x00, 0x09, 0x00, 0x90, 0x01, 0x00, 0x00, //   INBPS u32 400
        0x08, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, //   OUTBPS u32 0
        0x90, 0x00, 0x0c, 0x00,             // STATS64: len 144
        0x04, 0x00, 0x0b, 0x00,             //   PAD
        0x0c, 0x00, 0x01, 0x00, 0x05, 0, 0, 0, 0x01, 0, 0, 0, // CONNS u64 2^32 + 5
        0x0c, 0x00, 0x02, 0x00, 0x2a, 0, 0, 0, 0, 0, 0, 0, //   INPKTS 42
        0x04, 0x00, 0x0b, 0x00,             //   PAD
        0x0c, 0x00, 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, //   OUTPKTS 0
        0x0c, 0x00, 0x04, 0x00, 0xb8, 0x0b, 0, 0, 0, 0, 0, 0, // INBYTES 3000
        0x04, 0x00, 0x0b, 0x00,             //   PAD
        0x0c, 0x00, 0x05, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, //   OUTBYTES 0
        0x0c, 0x00, 0x06, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, // CPS 1
        0x04, 0x00, 0x0b, 0x00,             //   PAD
        0x0c, 0x00, 0x07, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, // INPPS 2
        0x0c, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, //   OUTPPS 0
        0x04, 0x00, 0x0b, 0x00,             //   PAD
        0x0c, 0x00, 0x09, 0x00, 0x90, 0x01, 0, 0, 0, 0, 0, 0, // INBPS 400
        0x0c, 0x00, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, //   OUTBPS 0
    ];

    #[test]
    #[cfg(target_endian = "little")]
    fn parse_service_reply() {
        let msg = parse_msg(SERVICE_REPLY);
        let entry = parse_service(&msg).unwrap();
        let expected = Service::tcp("192.168.122.1".parse().unwrap(), 8080, "rr").with_persistence(
            Persistence {
                timeout_s: 60,
                netmask: "255.255.255.0".parse().unwrap(),
            },
        );
        // HASHED is masked out and PERSISTENT became `persistence`.
        assert_eq!(entry.service, expected);
        assert_eq!(entry.service.flags, 0);
        assert_eq!(entry.pe_name, None);
        // STATS64 wins over STATS (its CONNS does not fit a u32).
        assert_eq!(
            entry.stats,
            Stats {
                conns: (1 << 32) + 5,
                inpkts: 42,
                outpkts: 0,
                inbytes: 3000,
                outbytes: 0,
                cps: 1,
                inpps: 2,
                outpps: 0,
                inbps: 400,
                outbps: 0,
            }
        );
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn parse_32bit_stats_with_pads() {
        let msg = parse_msg(SERVICE_REPLY);
        let svc = &msg.attrs().as_ref()[0];
        let buf = children(svc, "SERVICE").unwrap();
        let stats = Attrs(buf.as_ref())
            .attr(IPVS_SVC_ATTR_STATS)
            .unwrap()
            .clone();
        let s = parse_stats(&stats).unwrap();
        assert_eq!((s.conns, s.inpkts, s.inbytes, s.inbps), (5, 42, 3000, 400));
    }

    #[test]
    fn round_trip_services() {
        let mut onepacket = Service::udp("10.0.0.1".parse().unwrap(), 53, "wrr");
        onepacket.flags = IP_VS_SVC_F_ONEPACKET;
        let mut sh =
            Service::tcp("10.0.0.2".parse().unwrap(), 443, "sh").with_persistence(Persistence {
                timeout_s: 300,
                netmask: "255.255.0.0".parse().unwrap(),
            });
        sh.flags = IP_VS_SVC_F_SCHED_SH_FALLBACK | IP_VS_SVC_F_SCHED_SH_PORT;
        let v6 = Service::tcp("2001:db8::1".parse().unwrap(), 80, "rr")
            .with_persistence(Persistence::per_client(360));
        let mut sctp = Service::tcp("10.0.0.4".parse().unwrap(), 9, "lc");
        sctp.protocol = Protocol::Sctp;
        for svc in [
            reference_service(),
            onepacket,
            sh,
            v6,
            sctp,
            Service::fwmark(7, "rr"),
        ] {
            // What we send for NEW_SERVICE is what a dump part carries
            // (modulo stats), so it must decode to the same service.
            let attr = service_attr(&svc).unwrap();
            let entry = parse_service_attr(&attr).unwrap();
            assert_eq!(entry.service, svc);
            assert_eq!(entry.stats, Stats::default());
        }
    }

    /// A GET_DEST dump part as 6.1 sends it: TUN_TYPE/PORT/FLAGS between
    /// WEIGHT and U_THRESH, ADDR_FAMILY late, 32-bit STATS only.
    #[rustfmt::skip]
    const DEST_REPLY: &[u8] = &[
        0x05, 0x01, 0x00, 0x00,             // genl: cmd NEW_DEST
        0xb4, 0x00, 0x02, 0x00,             // DEST: len 180, type 2
        0x14, 0x00, 0x01, 0x00, 0xac, 0x16, 0x23, 0x02, // ADDR 172.22.35.2
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x06, 0x00, 0x02, 0x00, 0x1f, 0x90, 0x00, 0x00, // PORT 8080
        0x08, 0x00, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, // FWD_METHOD DROUTE
        0x08, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, // WEIGHT 0 (quiescent)
        0x05, 0x00, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x00, // TUN_TYPE u8 0 + pad
        0x06, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x00, // TUN_PORT 0
        0x06, 0x00, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, // TUN_FLAGS 0
        0x08, 0x00, 0x05, 0x00, 0x64, 0x00, 0x00, 0x00, // U_THRESH 100
        0x08, 0x00, 0x06, 0x00, 0x0a, 0x00, 0x00, 0x00, // L_THRESH 10
        0x08, 0x00, 0x07, 0x00, 0x03, 0x00, 0x00, 0x00, // ACTIVE_CONNS 3
        0x08, 0x00, 0x08, 0x00, 0x04, 0x00, 0x00, 0x00, // INACT_CONNS 4
        0x08, 0x00, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, // PERSIST_CONNS 1
        0x06, 0x00, 0x0b, 0x00, 0x02, 0x00, 0x00, 0x00, // ADDR_FAMILY AF_INET
        0x3c, 0x00, 0x0a, 0x00,             // STATS: len 60
        0x08, 0x00, 0x01, 0x00, 0x07, 0x00, 0x00, 0x00, //   CONNS 7
        0x08, 0x00, 0x02, 0x00, 0x63, 0x00, 0x00, 0x00, //   INPKTS 99
        0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, //   OUTPKTS 0 (DR)
        0x04, 0x00, 0x0b, 0x00,             //   PAD
        0x0c, 0x00, 0x04, 0x00, 0x10, 0x27, 0, 0, 0, 0, 0, 0, // INBYTES 10000
        0x04, 0x00, 0x0b, 0x00,             //   PAD
        0x0c, 0x00, 0x05, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, //   OUTBYTES 0
    ];

    #[test]
    #[cfg(target_endian = "little")]
    fn parse_dest_reply_out_of_order() {
        let msg = parse_msg(DEST_REPLY);
        let d = parse_dest(&msg, AF_INET).unwrap();
        assert_eq!(
            d,
            DestinationEntry {
                destination: Destination {
                    address: "172.22.35.2".parse().unwrap(),
                    port: 8080,
                    forward: ForwardMethod::DirectRoute,
                    weight: 0,
                    upper_threshold: 100,
                    lower_threshold: 10,
                },
                active_conns: 3,
                inactive_conns: 4,
                persist_conns: 1,
                stats: Stats {
                    conns: 7,
                    inpkts: 99,
                    inbytes: 10000,
                    ..Stats::default()
                },
            }
        );
    }

    #[test]
    fn round_trip_destinations() {
        let mut d = Destination::new(
            "[2001:db8::10]:80".parse().unwrap(),
            ForwardMethod::Tunnel,
            100,
        );
        d.upper_threshold = 5;
        d.lower_threshold = 2;
        for dest in [d, Destination::dr("172.22.35.1:8080".parse().unwrap(), -1)] {
            let attr = dest_attr(&dest).unwrap();
            // No ADDR_FAMILY fallback needed: it is sent.
            let entry = parse_dest_attr(&attr, 0).unwrap();
            assert_eq!(entry.destination, dest);
        }
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn parse_info_and_config_replies() {
        #[rustfmt::skip]
        let info: &[u8] = &[
            0x0e, 0x01, 0x00, 0x00,                         // genl: cmd SET_INFO (the reply)
            0x08, 0x00, 0x01, 0x00, 0x01, 0x02, 0x01, 0x00, // VERSION 0x010201
            0x08, 0x00, 0x02, 0x00, 0x00, 0x10, 0x00, 0x00, // CONN_TAB_SIZE 4096
        ];
        let i = parse_info(&parse_msg(info)).unwrap();
        assert_eq!(
            i,
            IpvsInfo {
                version: 0x010201,
                conn_table_size: 4096
            }
        );
        #[rustfmt::skip]
        let config: &[u8] = &[
            0x0c, 0x01, 0x00, 0x00,                         // genl: cmd SET_CONFIG (the reply)
            0x08, 0x00, 0x04, 0x00, 0x84, 0x03, 0x00, 0x00, // TIMEOUT_TCP 900
            0x08, 0x00, 0x05, 0x00, 0x78, 0x00, 0x00, 0x00, // TIMEOUT_TCP_FIN 120
            0x08, 0x00, 0x06, 0x00, 0x2c, 0x01, 0x00, 0x00, // TIMEOUT_UDP 300
        ];
        let t = parse_timeouts(&parse_msg(config)).unwrap();
        assert_eq!(
            t,
            Timeouts {
                tcp: 900,
                tcp_fin: 120,
                udp: 300
            }
        );
    }

    #[test]
    fn decode_errors_name_the_attribute() {
        let msg = parse_msg(&[0x04, 0x01, 0x00, 0x00]);
        assert!(matches!(
            parse_service(&msg),
            Err(DecodeError::Missing("IPVS_CMD_ATTR_SERVICE"))
        ));
        #[rustfmt::skip]
        let bad_af: &[u8] = &[
            0x04, 0x01, 0x00, 0x00,
            0x0c, 0x00, 0x01, 0x00,                         // SERVICE len 12
            0x06, 0x00, 0x01, 0x00, 0x07, 0x00, 0x00, 0x00, // AF 7
        ];
        assert!(matches!(
            parse_service(&parse_msg(bad_af)),
            Err(DecodeError::AddressFamily(7))
        ));
    }
}
