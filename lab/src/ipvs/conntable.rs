//! The IPVS connection table, read from `/proc/net/ip_vs_conn`.
//!
//! Connection entries are not available over netlink. The kernel prints one
//! line per entry (`ip_vs_conn_seq_show`):
//!
//! ```text
//! Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
//! TCP AC162364 B8B8 C0A87A01 1F90 AC162301 1F90 ESTABLISHED     899
//! TCP AC162364 0000 C0A87A01 1F90 AC162301 1F90 NONE             59
//! ```
//!
//! IPv4 addresses and all ports are hex, IPv6 addresses are printed in full
//! with colons, `Expires` is decimal seconds, and a persistence engine may
//! append its name and data. Persistence templates have client port 0; those
//! of fwmark services have protocol `IP`.
//!
//! `/proc/net` follows the namespace of the process's *main* thread, so a
//! thread that entered the director's namespace must read
//! `/proc/thread-self/net/ip_vs_conn`, which [`read_conn_table`] does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::types::Protocol;

/// Where the calling thread's namespace shows its connection table.
pub const THREAD_CONN_TABLE: &str = "/proc/thread-self/net/ip_vs_conn";

/// One connection or persistence template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnEntry {
    /// TCP, UDP or SCTP; `None` for `IP`, the templates of fwmark services.
    pub protocol: Option<Protocol>,
    /// Client address and port (port 0 for a template).
    pub client: SocketAddr,
    /// Virtual address and port.
    pub virtual_: SocketAddr,
    /// Real server chosen.
    pub dest: SocketAddr,
    /// Protocol state: `ESTABLISHED`, `SYN_RECV`, `FIN_WAIT`, `TIME_WAIT`,
    /// `UDP`, ...; for templates `NONE` (seen on 6.1 while its connection
    /// was still SYN_RECV) or `ASSURED`.
    pub state: String,
    /// Seconds until the entry expires.
    pub expires_s: u32,
    /// A persistence template (client port 0), not a connection.
    pub is_template: bool,
    /// Persistence engine name and data, when one is in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pe: Option<String>,
}

/// Reading or parsing the table failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnTableError {
    /// The file could not be read (no IPVS loaded gives NotFound).
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line does not have the kernel's format.
    #[error("line {line_no} of the IPVS connection table: {reason}: {line:?}")]
    Parse {
        /// 1-based line number, header included.
        line_no: usize,
        /// The line.
        line: String,
        /// What is wrong.
        reason: ParseReason,
    },
}

/// What is wrong with a connection-table line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseReason {
    /// Fewer than the 9 fixed columns.
    #[error("too few columns")]
    Columns,
    /// The protocol is not TCP, UDP, SCTP or IP.
    #[error("unknown protocol")]
    Protocol,
    /// An address is neither 8 hex digits nor an IPv6 address.
    #[error("bad address")]
    Address,
    /// A port is not 4 hex digits.
    #[error("bad port")]
    Port,
    /// Expires is not a decimal number.
    #[error("bad expiry")]
    Expires,
}

fn parse_addr(s: &str) -> Result<IpAddr, ParseReason> {
    if s.contains(':') {
        s.parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| ParseReason::Address)
    } else if s.len() == 8 {
        u32::from_str_radix(s, 16)
            .map(|v| IpAddr::V4(Ipv4Addr::from(v)))
            .map_err(|_| ParseReason::Address)
    } else {
        Err(ParseReason::Address)
    }
}

fn parse_port(s: &str) -> Result<u16, ParseReason> {
    if s.len() != 4 {
        return Err(ParseReason::Port);
    }
    u16::from_str_radix(s, 16).map_err(|_| ParseReason::Port)
}

/// The columns of one entry line that attribution needs, borrowed from the
/// line: no allocation, so a sampler can go through 100k entries a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnRow<'a> {
    /// The protocol column as printed (`TCP`, `UDP`, `SCTP`, `IP`).
    pub protocol: &'a str,
    /// Client address and port (port 0 for a template).
    pub client: SocketAddr,
    /// Virtual address and port.
    pub virtual_: SocketAddr,
    /// Real server chosen.
    pub dest: SocketAddr,
    /// Protocol state as printed.
    pub state: &'a str,
    /// Seconds until the entry expires.
    pub expires_s: u32,
    /// The rest of the line: persistence engine name and data, if any.
    pub rest: &'a str,
}

impl ConnRow<'_> {
    /// A persistence template (client port 0), not a connection.
    pub fn is_template(&self) -> bool {
        self.client.port() == 0
    }
}

/// Parses the fixed columns of one entry line (not the header).
pub fn parse_row(line: &str) -> Result<ConnRow<'_>, ParseReason> {
    let line = line.trim_start();
    let mut rest = line;
    let mut next = || {
        let word_start = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        let tail = &rest[word_start..];
        let word_end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        let word = &tail[..word_end];
        rest = &tail[word_end..];
        (!word.is_empty())
            .then_some(word)
            .ok_or(ParseReason::Columns)
    };
    let protocol = next()?;
    let client_ip = parse_addr(next()?)?;
    let client_port = parse_port(next()?)?;
    let virtual_ip = parse_addr(next()?)?;
    let virtual_port = parse_port(next()?)?;
    let dest_ip = parse_addr(next()?)?;
    let dest_port = parse_port(next()?)?;
    let state = next()?;
    let expires_s = next()?.parse().map_err(|_| ParseReason::Expires)?;
    Ok(ConnRow {
        protocol,
        client: SocketAddr::new(client_ip, client_port),
        virtual_: SocketAddr::new(virtual_ip, virtual_port),
        dest: SocketAddr::new(dest_ip, dest_port),
        state,
        expires_s,
        rest: rest.trim(),
    })
}

/// Whether a line of the file is an entry (not the header, not blank).
pub fn is_entry_line(line: &str) -> bool {
    !line.trim().is_empty() && !line.starts_with("Pro ")
}

/// Parses one entry line (not the header).
pub fn parse_line(line: &str) -> Result<ConnEntry, ParseReason> {
    let row = parse_row(line)?;
    let protocol = match row.protocol {
        "IP" => None,
        p => Some(Protocol::from_name(p).ok_or(ParseReason::Protocol)?),
    };
    Ok(ConnEntry {
        protocol,
        client: row.client,
        virtual_: row.virtual_,
        dest: row.dest,
        state: row.state.to_owned(),
        expires_s: row.expires_s,
        is_template: row.is_template(),
        pe: (!row.rest.is_empty())
            .then(|| row.rest.split_whitespace().collect::<Vec<_>>().join(" ")),
    })
}

/// Parses the whole file: the header line (if present) is skipped, as are
/// blank lines.
pub fn parse_conn_table(text: &str) -> Result<Vec<ConnEntry>, ConnTableError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| is_entry_line(l))
        .map(|(i, l)| {
            parse_line(l).map_err(|reason| ConnTableError::Parse {
                line_no: i + 1,
                line: l.to_owned(),
                reason,
            })
        })
        .collect()
}

/// The raw text of the calling thread's table (see [`read_conn_table`]), for
/// callers that parse only what they need with [`parse_row`].
pub fn read_conn_text() -> Result<String, ConnTableError> {
    std::fs::read_to_string(THREAD_CONN_TABLE).map_err(|source| ConnTableError::Read {
        path: PathBuf::from(THREAD_CONN_TABLE),
        source,
    })
}

/// Reads and parses a connection table file.
pub fn read_conn_table_from(path: &Path) -> Result<Vec<ConnEntry>, ConnTableError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConnTableError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_conn_table(&text)
}

/// The connection table of the **calling thread's** network namespace, from
/// [`THREAD_CONN_TABLE`] (not `/proc/net/...`, which follows the main thread).
/// `ipvsadm -Lnc` shows the same entries.
pub fn read_conn_table() -> Result<Vec<ConnEntry>, ConnTableError> {
    read_conn_table_from(Path::new(THREAD_CONN_TABLE))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP AC162364 0000 C0A87A01 1F90 AC162301 1F90 ASSURED          59
TCP AC162364 B8B8 C0A87A01 1F90 AC162301 1F90 ESTABLISHED     899
UDP 0A000064 D431 0A000001 0035 0A000101 0035 UDP             299
IP  AC162364 0000 00000007 0000 0A010101 0000 ASSURED         359
TCP 2001:0db8:0000:0000:0000:0000:0000:0064 C350 2001:0db8:0000:0000:0000:0000:0000:0001 0050 2001:0db8:0000:0000:0000:0000:0000:0010 0050 SYN_RECV         56
UDP 0A000064 13C4 0A000001 13C4 0A000102 13C4 UDP             179 sip 1234@host
";

    #[test]
    fn parses_templates_connections_and_ipv6() {
        let t = parse_conn_table(SAMPLE).unwrap();
        assert_eq!(t.len(), 6);
        assert_eq!(
            t[0],
            ConnEntry {
                protocol: Some(Protocol::Tcp),
                client: "172.22.35.100:0".parse().unwrap(),
                virtual_: "192.168.122.1:8080".parse().unwrap(),
                dest: "172.22.35.1:8080".parse().unwrap(),
                state: "ASSURED".into(),
                expires_s: 59,
                is_template: true,
                pe: None,
            }
        );
        assert_eq!(t[1].client, "172.22.35.100:47288".parse().unwrap());
        assert_eq!(t[1].state, "ESTABLISHED");
        assert_eq!(t[1].expires_s, 899);
        assert!(!t[1].is_template);
        assert_eq!(t[2].protocol, Some(Protocol::Udp));
        assert_eq!(t[2].dest, "10.0.1.1:53".parse().unwrap());
        // Fwmark template: protocol IP, the mark where the VIP would be.
        assert_eq!(t[3].protocol, None);
        assert!(t[3].is_template);
        assert_eq!(t[4].client, "[2001:db8::64]:50000".parse().unwrap());
        assert_eq!(t[4].dest, "[2001:db8::10]:80".parse().unwrap());
        assert_eq!(t[5].pe.as_deref(), Some("sip 1234@host"));
    }

    #[test]
    fn empty_table_is_just_the_header() {
        let t = parse_conn_table(
            "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n",
        )
        .unwrap();
        assert!(t.is_empty());
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let err = parse_conn_table("Pro FromIP\nTCP AC16 0000\n").unwrap_err();
        match err {
            ConnTableError::Parse {
                line_no, reason, ..
            } => {
                assert_eq!(line_no, 2);
                assert_eq!(reason, ParseReason::Address);
            }
            other => panic!("{other}"),
        }
        assert_eq!(
            parse_line("TCP AC162364 0000 C0A87A01 1F90 AC162301"),
            Err(ParseReason::Columns)
        );
        assert_eq!(
            parse_line("ICMP AC162364 0000 C0A87A01 1F90 AC162301 1F90 X 1"),
            Err(ParseReason::Protocol)
        );
        assert_eq!(
            parse_line("TCP AC162364 0000 C0A87A01 1F90 AC162301 1F90 X soon"),
            Err(ParseReason::Expires)
        );
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let err = read_conn_table_from(Path::new("/nonexistent/ip_vs_conn")).unwrap_err();
        assert!(matches!(err, ConnTableError::Read { .. }));
    }
}
