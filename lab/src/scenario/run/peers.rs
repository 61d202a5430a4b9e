//! The server side's own view of its connections, read without the
//! server's help: the established TCP peers on the service port, from
//! `/proc/thread-self/net/tcp` and `tcp6` of a thread inside the real
//! server's namespace (what `ss -tn state established '( sport = :PORT )'`
//! shows there). Sampled with the IPVS table, it cross-checks the table's
//! attribution for any server, the user's own included.
//!
//! `/proc/net/tcp` prints addresses as the kernel's `__be32` words in hex,
//! in the host's byte order (`0100007F` is 127.0.0.1 on x86), and ports
//! as plain hex. An IPv4 client of a server bound to `[::]` shows up in
//! `tcp6` as `::ffff:a.b.c.d`; it is kept as IPv4.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The calling thread's IPv4 TCP sockets.
const THREAD_TCP: &str = "/proc/thread-self/net/tcp";
/// The calling thread's IPv6 TCP sockets.
const THREAD_TCP6: &str = "/proc/thread-self/net/tcp6";
/// `st` of an established socket (`TCP_ESTABLISHED`).
const ESTABLISHED: &str = "01";

fn parse_word(hex: &str) -> Option<[u8; 4]> {
    u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
}

fn parse_ip(hex: &str) -> Option<IpAddr> {
    match hex.len() {
        8 => parse_word(hex).map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&parse_word(hex.get(i * 8..i * 8 + 8)?)?);
            }
            let v6 = Ipv6Addr::from(bytes);
            Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        _ => None,
    }
}

fn parse_endpoint(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    Some(SocketAddr::new(
        parse_ip(ip)?,
        u16::from_str_radix(port, 16).ok()?,
    ))
}

/// The remote ends of the established sockets whose local port is
/// `local_port`, from the text of `/proc/net/tcp` or `tcp6`. Lines that do
/// not parse (the header among them) are skipped.
pub fn established_peers(text: &str, local_port: u16) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut cols = line.split_whitespace().skip(1);
            let local = parse_endpoint(cols.next()?)?;
            let remote = parse_endpoint(cols.next()?)?;
            (cols.next()? == ESTABLISHED && local.port() == local_port).then_some(remote)
        })
        .collect()
}

/// The calling thread's established peers on `local_port`, IPv4 and IPv6.
/// A file that cannot be read (no IPv6) counts as empty.
pub fn read_established_peers(local_port: u16) -> Vec<SocketAddr> {
    [THREAD_TCP, THREAD_TCP6]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| established_peers(&text, local_port))
        .collect()
}

/// One real server's peers over a run: each established peer (client
/// address and port) with the first and last sample that showed it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerLog {
    /// Peer → (first seen, last seen), in seconds on the run's axis.
    pub peers: HashMap<SocketAddr, (f64, f64)>,
    /// Samples that could be read.
    pub samples: u32,
}

impl PeerLog {
    /// Folds in one sample taken at `t_s`.
    pub fn observe(&mut self, t_s: f64, peers: &[SocketAddr]) {
        for p in peers {
            let e = self.peers.entry(*p).or_insert((t_s, t_s));
            e.1 = t_s;
        }
        self.samples += 1;
    }

    /// Moves every time by `by_s`.
    pub fn shift(&mut self, by_s: f64) {
        for (first, last) in self.peers.values_mut() {
            *first += by_s;
            *last += by_s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_v4(ip: Ipv4Addr) -> String {
        format!("{:08X}", u32::from_ne_bytes(ip.octets()))
    }

    #[test]
    fn parses_v4_and_v4_mapped_v6_and_keeps_only_established_on_the_port() {
        let vip = hex_v4(Ipv4Addr::new(192, 168, 122, 1));
        let client = hex_v4(Ipv4Addr::new(172, 22, 35, 100));
        let tcp = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             0: {vip}:1F90 {client}:9C40 01 00000000:00000000 00:00000000 00000000 0 0 1 1\n\
             1: {vip}:1F90 {client}:9C41 06 00000000:00000000 00:00000000 00000000 0 0 2 1\n\
             2: {vip}:0050 {client}:9C42 01 00000000:00000000 00:00000000 00000000 0 0 3 1\n\
             3: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 4 1\n"
        );
        assert_eq!(
            established_peers(&tcp, 8080),
            ["172.22.35.100:40000".parse::<SocketAddr>().unwrap()]
        );
        let mapped = |ip: Ipv4Addr| {
            let b = ip.to_ipv6_mapped().octets();
            b.chunks(4)
                .map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
                .collect::<String>()
        };
        let tcp6 = format!(
            "  sl  local_address                         remote_address                        st\n\
             0: {}:1F90 {}:9C43 01 00000000:00000000 00:00000000 00000000 0 0 5 1\n",
            mapped(Ipv4Addr::new(192, 168, 122, 1)),
            mapped(Ipv4Addr::new(172, 22, 35, 101)),
        );
        assert_eq!(
            established_peers(&tcp6, 8080),
            ["172.22.35.101:40003".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn peer_log_keeps_first_and_last_sighting() {
        let p: SocketAddr = "172.22.35.100:40000".parse().unwrap();
        let mut log = PeerLog::default();
        log.observe(1.0, &[p]);
        log.observe(2.0, &[]);
        log.observe(3.0, &[p]);
        log.shift(-1.0);
        assert_eq!(log.peers[&p], (0.0, 2.0));
        assert_eq!(log.samples, 3);
    }

    /// Our reader against `ss`, on a real socket pair in this namespace.
    #[test]
    fn agrees_with_ss_on_a_real_connection() {
        let Ok(ss) = std::process::Command::new("ss").arg("-V").output() else {
            println!("SKIPPED: ss (iproute2) is not installed");
            return;
        };
        assert!(ss.status.success());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_server_side, _) = listener.accept().unwrap();
        let ours = read_established_peers(port);
        let out = std::process::Command::new("ss")
            .args(["-tnH", "state", "established"])
            .arg(format!("( sport = :{port} )"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        // With a state filter ss prints: Recv-Q Send-Q Local Peer.
        let theirs: Vec<SocketAddr> = text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3)?.parse().ok())
            .collect();
        assert_eq!(ours, theirs, "ss printed {text:?}");
        assert_eq!(ours, [client.local_addr().unwrap()]);
    }
}
