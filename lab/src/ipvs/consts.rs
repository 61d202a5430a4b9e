//! Numbers from the kernel's `include/uapi/linux/ip_vs.h`, spelled as there.
//!
//! Only the generic-netlink interface is mirrored (the legacy `IP_VS_SO_*`
//! socket options are not used). Each group below is one `enum` or `#define`
//! block of the header, in header order, so the two can be compared line by
//! line. Where the wire behaviour is surprising the doc comment says so; the
//! encoding itself lives in [`super::message`].

/// Generic-netlink family name (`IPVS_GENL_NAME`).
pub const IPVS_GENL_NAME: &str = "IPVS";
/// Generic-netlink family version (`IPVS_GENL_VERSION`), sent in every header.
pub const IPVS_GENL_VERSION: u8 = 0x1;

/// `IP_VS_VERSION_CODE` of the header; the kernel reports its own in GET_INFO.
pub const IP_VS_VERSION_CODE: u32 = 0x01_02_01;

/// `IP_VS_SCHEDNAME_MAXLEN`: scheduler names are at most 15 bytes plus NUL.
pub const IP_VS_SCHEDNAME_MAXLEN: usize = 16;
/// `IP_VS_PENAME_MAXLEN`: persistence-engine names, 15 bytes plus NUL.
pub const IP_VS_PENAME_MAXLEN: usize = 16;

// ---------------------------------------------------------------------------
// Virtual service flags (`IP_VS_SVC_F_*`), sent as the `flags` half of
// `struct ip_vs_flags { __u32 flags; __u32 mask; }` in *host* byte order.

/// Persistent service. A TIMEOUT alone does not enable persistence.
pub const IP_VS_SVC_F_PERSISTENT: u32 = 0x0001;
/// Kernel-internal "entry is hashed": every dump reports it, mask it out.
pub const IP_VS_SVC_F_HASHED: u32 = 0x0002;
/// One-packet scheduling (UDP only; ipvsadm `-o`).
pub const IP_VS_SVC_F_ONEPACKET: u32 = 0x0004;
/// Scheduler flag 1.
pub const IP_VS_SVC_F_SCHED1: u32 = 0x0008;
/// Scheduler flag 2.
pub const IP_VS_SVC_F_SCHED2: u32 = 0x0010;
/// Scheduler flag 3.
pub const IP_VS_SVC_F_SCHED3: u32 = 0x0020;
/// `sh` scheduler: fall back to another server when the hashed one is unavailable.
pub const IP_VS_SVC_F_SCHED_SH_FALLBACK: u32 = IP_VS_SVC_F_SCHED1;
/// `sh` scheduler: hash the source port too.
pub const IP_VS_SVC_F_SCHED_SH_PORT: u32 = IP_VS_SVC_F_SCHED2;
/// `mh` scheduler fallback (defined in `ip_vs_mh.c`, same bit as SCHED1).
pub const IP_VS_SVC_F_SCHED_MH_FALLBACK: u32 = IP_VS_SVC_F_SCHED1;
/// `mh` scheduler: hash the source port too (same bit as SCHED2).
pub const IP_VS_SVC_F_SCHED_MH_PORT: u32 = IP_VS_SVC_F_SCHED2;

// ---------------------------------------------------------------------------
// Connection flags (`IP_VS_CONN_F_*`): the forwarding method of a destination
// travels in IPVS_DEST_ATTR_FWD_METHOD as these values.

/// Mask of the forwarding-method bits.
pub const IP_VS_CONN_F_FWD_MASK: u32 = 0x0007;
/// Masquerading (NAT), ipvsadm `-m`, shown as `Masq`.
pub const IP_VS_CONN_F_MASQ: u32 = 0x0000;
/// Local node, shown as `Local`.
pub const IP_VS_CONN_F_LOCALNODE: u32 = 0x0001;
/// IP-in-IP tunnelling, ipvsadm `-i`, shown as `Tunnel`.
pub const IP_VS_CONN_F_TUNNEL: u32 = 0x0002;
/// Direct routing (gatewaying), ipvsadm `-g`, shown as `Route`.
pub const IP_VS_CONN_F_DROUTE: u32 = 0x0003;
/// Cache bypass.
pub const IP_VS_CONN_F_BYPASS: u32 = 0x0004;
/// The entry is a persistence template, not a connection.
pub const IP_VS_CONN_F_TEMPLATE: u32 = 0x1000;

// ---------------------------------------------------------------------------
// Tunnel types and encapsulation flags (IPVS_DEST_ATTR_TUN_*).

/// IP-in-IP tunnel.
pub const IP_VS_CONN_F_TUNNEL_TYPE_IPIP: u8 = 0;
/// GUE tunnel.
pub const IP_VS_CONN_F_TUNNEL_TYPE_GUE: u8 = 1;
/// GRE tunnel.
pub const IP_VS_CONN_F_TUNNEL_TYPE_GRE: u8 = 2;

// ---------------------------------------------------------------------------
// Commands (`IPVS_CMD_*`), the `cmd` byte of the generic-netlink header.

/// Add a service (`ipvsadm -A`).
pub const IPVS_CMD_NEW_SERVICE: u8 = 1;
/// Modify a service (`ipvsadm -E`).
pub const IPVS_CMD_SET_SERVICE: u8 = 2;
/// Delete a service (`ipvsadm -D`).
pub const IPVS_CMD_DEL_SERVICE: u8 = 3;
/// Get one service, or all with `NLM_F_DUMP`.
pub const IPVS_CMD_GET_SERVICE: u8 = 4;
/// Add a destination (`ipvsadm -a`).
pub const IPVS_CMD_NEW_DEST: u8 = 5;
/// Modify a destination (`ipvsadm -e`).
pub const IPVS_CMD_SET_DEST: u8 = 6;
/// Delete a destination (`ipvsadm -d`).
pub const IPVS_CMD_DEL_DEST: u8 = 7;
/// Dump the destinations of the service named by a nested SERVICE attribute.
pub const IPVS_CMD_GET_DEST: u8 = 8;
/// Start a sync daemon.
pub const IPVS_CMD_NEW_DAEMON: u8 = 9;
/// Stop a sync daemon.
pub const IPVS_CMD_DEL_DAEMON: u8 = 10;
/// Get sync daemon status.
pub const IPVS_CMD_GET_DAEMON: u8 = 11;
/// Set timeouts (`ipvsadm --set`).
pub const IPVS_CMD_SET_CONFIG: u8 = 12;
/// Get timeouts (`ipvsadm -L --timeout`).
pub const IPVS_CMD_GET_CONFIG: u8 = 13;
/// Only used as the command of a GET_INFO reply.
pub const IPVS_CMD_SET_INFO: u8 = 14;
/// Get version and connection-table size.
pub const IPVS_CMD_GET_INFO: u8 = 15;
/// Zero counters, of one service or all (`ipvsadm -Z`).
pub const IPVS_CMD_ZERO: u8 = 16;
/// Remove every service and destination (`ipvsadm -C`).
pub const IPVS_CMD_FLUSH: u8 = 17;

// ---------------------------------------------------------------------------
// Top-level attributes (`IPVS_CMD_ATTR_*`).

/// Nested service attributes (`IPVS_SVC_ATTR_*`).
pub const IPVS_CMD_ATTR_SERVICE: u16 = 1;
/// Nested destination attributes (`IPVS_DEST_ATTR_*`).
pub const IPVS_CMD_ATTR_DEST: u16 = 2;
/// Nested sync-daemon attributes (`IPVS_DAEMON_ATTR_*`).
pub const IPVS_CMD_ATTR_DAEMON: u16 = 3;
/// TCP established timeout, u32 seconds.
pub const IPVS_CMD_ATTR_TIMEOUT_TCP: u16 = 4;
/// TCP FIN-wait timeout, u32 seconds.
pub const IPVS_CMD_ATTR_TIMEOUT_TCP_FIN: u16 = 5;
/// UDP timeout, u32 seconds.
pub const IPVS_CMD_ATTR_TIMEOUT_UDP: u16 = 6;

// ---------------------------------------------------------------------------
// Service attributes (`IPVS_SVC_ATTR_*`), inside IPVS_CMD_ATTR_SERVICE.

/// Address family, u16 (`AF_INET` 2, `AF_INET6` 10).
pub const IPVS_SVC_ATTR_AF: u16 = 1;
/// Protocol, **u16** (a u8 gets EINVAL): 6 TCP, 17 UDP, 132 SCTP.
pub const IPVS_SVC_ATTR_PROTOCOL: u16 = 2;
/// Virtual address, 16 bytes (`union nf_inet_addr`), IPv4 in the first 4.
pub const IPVS_SVC_ATTR_ADDR: u16 = 3;
/// Virtual port, u16 **big-endian**.
pub const IPVS_SVC_ATTR_PORT: u16 = 4;
/// Firewall mark, u32; when present the service is identified by it alone.
pub const IPVS_SVC_ATTR_FWMARK: u16 = 5;
/// Scheduler name, string **with** its trailing NUL.
pub const IPVS_SVC_ATTR_SCHED_NAME: u16 = 6;
/// `struct ip_vs_flags { flags, mask }`, both u32 in host byte order.
pub const IPVS_SVC_ATTR_FLAGS: u16 = 7;
/// Persistence timeout, u32 seconds.
pub const IPVS_SVC_ATTR_TIMEOUT: u16 = 8;
/// Persistence netmask, u32 whose bytes are the mask in network order (IPv4),
/// or the prefix length in host order (IPv6). Required on NEW/SET.
pub const IPVS_SVC_ATTR_NETMASK: u16 = 9;
/// Nested 32-bit statistics (`IPVS_STATS_ATTR_*`).
pub const IPVS_SVC_ATTR_STATS: u16 = 10;
/// Persistence-engine name (e.g. `sip`), string.
pub const IPVS_SVC_ATTR_PE_NAME: u16 = 11;
/// Nested 64-bit statistics (`IPVS_STATS_ATTR_*`).
pub const IPVS_SVC_ATTR_STATS64: u16 = 12;

// ---------------------------------------------------------------------------
// Destination attributes (`IPVS_DEST_ATTR_*`), inside IPVS_CMD_ATTR_DEST.

/// Real-server address, 16 bytes.
pub const IPVS_DEST_ATTR_ADDR: u16 = 1;
/// Real-server port, u16 big-endian.
pub const IPVS_DEST_ATTR_PORT: u16 = 2;
/// Forwarding method, u32 (`IP_VS_CONN_F_*` values).
pub const IPVS_DEST_ATTR_FWD_METHOD: u16 = 3;
/// Weight, u32 on the wire, signed in the kernel.
pub const IPVS_DEST_ATTR_WEIGHT: u16 = 4;
/// Upper connection threshold, u32 (0 = none).
pub const IPVS_DEST_ATTR_U_THRESH: u16 = 5;
/// Lower connection threshold, u32.
pub const IPVS_DEST_ATTR_L_THRESH: u16 = 6;
/// Active connections, u32 (replies only).
pub const IPVS_DEST_ATTR_ACTIVE_CONNS: u16 = 7;
/// Inactive connections, u32 (replies only).
pub const IPVS_DEST_ATTR_INACT_CONNS: u16 = 8;
/// Persistence templates pointing at this destination, u32 (replies only).
pub const IPVS_DEST_ATTR_PERSIST_CONNS: u16 = 9;
/// Nested 32-bit statistics.
pub const IPVS_DEST_ATTR_STATS: u16 = 10;
/// Address family of the destination, u16 (kernel 3.18+).
pub const IPVS_DEST_ATTR_ADDR_FAMILY: u16 = 11;
/// Nested 64-bit statistics.
pub const IPVS_DEST_ATTR_STATS64: u16 = 12;
/// Tunnel type, u8. Replies carry it between WEIGHT and U_THRESH.
pub const IPVS_DEST_ATTR_TUN_TYPE: u16 = 13;
/// Tunnel port, u16 big-endian.
pub const IPVS_DEST_ATTR_TUN_PORT: u16 = 14;
/// Tunnel flags, u16.
pub const IPVS_DEST_ATTR_TUN_FLAGS: u16 = 15;

// ---------------------------------------------------------------------------
// Sync-daemon attributes (`IPVS_DAEMON_ATTR_*`); mirrored, not used.

/// Daemon state (`IP_VS_STATE_*`), u32.
pub const IPVS_DAEMON_ATTR_STATE: u16 = 1;
/// Multicast interface name, string.
pub const IPVS_DAEMON_ATTR_MCAST_IFN: u16 = 2;
/// Sync ID, u32.
pub const IPVS_DAEMON_ATTR_SYNC_ID: u16 = 3;
/// UDP payload size, u16.
pub const IPVS_DAEMON_ATTR_SYNC_MAXLEN: u16 = 4;
/// IPv4 multicast group.
pub const IPVS_DAEMON_ATTR_MCAST_GROUP: u16 = 5;
/// IPv6 multicast group.
pub const IPVS_DAEMON_ATTR_MCAST_GROUP6: u16 = 6;
/// Multicast base port, u16.
pub const IPVS_DAEMON_ATTR_MCAST_PORT: u16 = 7;
/// Multicast TTL, u8.
pub const IPVS_DAEMON_ATTR_MCAST_TTL: u16 = 8;

// ---------------------------------------------------------------------------
// Statistics attributes (`IPVS_STATS_ATTR_*`), inside STATS and STATS64.
// In STATS, CONNS/INPKTS/OUTPKTS and the rates are u32 and the byte counters
// u64; in STATS64 everything is u64. Both may interleave zero-length PADs.

/// Connections scheduled.
pub const IPVS_STATS_ATTR_CONNS: u16 = 1;
/// Incoming packets.
pub const IPVS_STATS_ATTR_INPKTS: u16 = 2;
/// Outgoing packets (stays 0 for DR: the director never sees replies).
pub const IPVS_STATS_ATTR_OUTPKTS: u16 = 3;
/// Incoming bytes.
pub const IPVS_STATS_ATTR_INBYTES: u16 = 4;
/// Outgoing bytes.
pub const IPVS_STATS_ATTR_OUTBYTES: u16 = 5;
/// Current connection rate (per second, estimator).
pub const IPVS_STATS_ATTR_CPS: u16 = 6;
/// Current incoming packet rate.
pub const IPVS_STATS_ATTR_INPPS: u16 = 7;
/// Current outgoing packet rate.
pub const IPVS_STATS_ATTR_OUTPPS: u16 = 8;
/// Current incoming byte rate.
pub const IPVS_STATS_ATTR_INBPS: u16 = 9;
/// Current outgoing byte rate.
pub const IPVS_STATS_ATTR_OUTBPS: u16 = 10;
/// Zero-length alignment padding for the u64 attributes: skip it.
pub const IPVS_STATS_ATTR_PAD: u16 = 11;

// ---------------------------------------------------------------------------
// GET_INFO reply attributes (`IPVS_INFO_ATTR_*`), at top level.

/// IPVS version number, u32 (`0x010201` is 1.2.1).
pub const IPVS_INFO_ATTR_VERSION: u16 = 1;
/// Size of the connection hash table, u32.
pub const IPVS_INFO_ATTR_CONN_TAB_SIZE: u16 = 2;

// ---------------------------------------------------------------------------
// From elsewhere in the kernel / libc, used on the wire.

/// `AF_INET`, as the u16 of IPVS_SVC_ATTR_AF.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u16 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: u16 = 17;
/// `IPPROTO_SCTP`.
pub const IPPROTO_SCTP: u16 = 132;

#[cfg(test)]
mod tests {
    use super::*;

    /// The libc crate carries a few of the same numbers: they must agree.
    #[test]
    fn agrees_with_libc() {
        assert_eq!(AF_INET, libc::AF_INET as u16);
        assert_eq!(AF_INET6, libc::AF_INET6 as u16);
        assert_eq!(IPPROTO_TCP, libc::IPPROTO_TCP as u16);
        assert_eq!(IPPROTO_UDP, libc::IPPROTO_UDP as u16);
        assert_eq!(IPPROTO_SCTP, libc::IPPROTO_SCTP as u16);
    }
}
