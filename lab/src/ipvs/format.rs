//! The IPVS table rendered exactly as `ipvsadm -Ln` (1.31) prints it, so a
//! report can show the familiar picture and a test can compare byte for byte
//! with the real tool.
//!
//! The column widths are those of ipvsadm's `print_title` and
//! `print_service_entry` (`%-28s %-7s %-6d %-10u %-10u`, `%-33s`, `%9llu`,
//! ...), including the trailing blanks of the destination lines. Services and
//! destinations are sorted like ipvsadm's `ipvs_cmp_services` and
//! `ipvs_cmp_dests`, whose address comparison is a wrapping 32-bit
//! subtraction read as `int`: that is why ipvsadm lists 192.168.122.1 before
//! 10.0.0.2. The sort is a merge sort like glibc's `qsort`, so it neither
//! panics nor differs when that comparison is not transitive.

use std::cmp::Ordering;
use std::fmt::Write;
use std::net::IpAddr;

use super::consts::{
    IP_VS_SVC_F_ONEPACKET, IP_VS_SVC_F_SCHED1, IP_VS_SVC_F_SCHED2, IP_VS_SVC_F_SCHED3,
};
use super::types::{DestinationEntry, IpvsTable, Service, ServiceEntry, Timeouts};

/// Which listing of `ipvsadm -Ln` to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `ipvsadm -Ln`: scheduler, flags, forward, weight, connections.
    Plain,
    /// `ipvsadm -Ln --stats`: totals.
    Stats,
    /// `ipvsadm -Ln --rate`: estimator rates.
    Rate,
    /// `ipvsadm -Ln --thresholds`.
    Thresholds,
    /// `ipvsadm -Ln --persistent-conn`.
    PersistentConn,
}

/// `ipvsadm -Ln`.
pub fn list(table: &IpvsTable) -> String {
    render(table, Listing::Plain)
}

/// `ipvsadm -Ln --stats`.
pub fn list_stats(table: &IpvsTable) -> String {
    render(table, Listing::Stats)
}

/// `ipvsadm -Ln --timeout`: `Timeout (tcp tcpfin udp): 900 120 300`.
pub fn timeouts(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp, t.tcp_fin, t.udp
    )
}

/// Any of the `ipvsadm -Ln` listings.
pub fn render(table: &IpvsTable, listing: Listing) -> String {
    render_with(table, listing, false)
}

/// Any listing, with `exact` as ipvsadm's `--exact` (counters in full, no
/// K/M/G/T abbreviation).
pub fn render_with(table: &IpvsTable, listing: Listing, exact: bool) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "IP Virtual Server version {} (size={})",
        table.info.version_string(),
        table.info.conn_table_size
    );
    out.push_str(title(listing));
    let mut services: Vec<_> = table.services.iter().collect();
    merge_sort(&mut services, &|a, b| {
        cmp_services(&a.entry.service, &b.entry.service)
    });
    for s in services {
        service_lines(&mut out, &s.entry, &s.destinations, listing, exact);
    }
    out
}

fn title(listing: Listing) -> &'static str {
    match listing {
        Listing::Plain => concat!(
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        ),
        Listing::Stats => concat!(
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
            "  -> RemoteAddress:Port\n"
        ),
        Listing::Rate => concat!(
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
            "  -> RemoteAddress:Port\n"
        ),
        Listing::Thresholds => concat!(
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n",
            "  -> RemoteAddress:Port\n"
        ),
        Listing::PersistentConn => concat!(
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n",
            "  -> RemoteAddress:Port\n"
        ),
    }
}

/// `addr:port`, IPv6 in brackets, as ipvsadm's numeric `addrport_to_anyname`.
fn addr_port(addr: &IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// `TCP  192.168.122.1:8080`, `FWM  7`: the service column.
fn service_name(s: &Service) -> String {
    match s.fwmark {
        Some(mark) if s.address.is_ipv6() => format!("FWM  {mark} IPv6"),
        Some(mark) => format!("FWM  {mark}"),
        None => format!("{}  {}", s.protocol.name(), addr_port(&s.address, s.port)),
    }
}

/// ` (sh-fallback,sh-port)`: scheduler flags, named per scheduler.
fn sched_flags(s: &Service) -> String {
    let names: [&str; 3] = match s.scheduler.as_str() {
        "sh" => ["sh-fallback", "sh-port", "flag-3"],
        "mh" => ["mh-fallback", "mh-port", "flag-3"],
        _ => ["flag-1", "flag-2", "flag-3"],
    };
    let set: Vec<&str> = [IP_VS_SVC_F_SCHED1, IP_VS_SVC_F_SCHED2, IP_VS_SVC_F_SCHED3]
        .iter()
        .zip(names)
        .filter(|(bit, _)| s.flags & **bit != 0)
        .map(|(_, name)| name)
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!(" ({})", set.join(","))
    }
}

/// ipvsadm's `print_largenum`: 9 columns, then K/M/G/T; with `--exact`
/// the full number, one blank before it, at least 9 columns.
fn largenum(out: &mut String, n: u64, exact: bool) {
    if exact {
        let digits = n.to_string();
        let width = if digits.len() <= 8 {
            9
        } else {
            digits.len() + 1
        };
        let _ = write!(out, "{digits:>width$}");
        return;
    }
    let _ = match n {
        0..100_000_000 => write!(out, "{n:9}"),
        100_000_000..1_000_000_000 => write!(out, "{:8}K", n / 1_000),
        1_000_000_000..100_000_000_000 => write!(out, "{:8}M", n / 1_000_000),
        100_000_000_000..100_000_000_000_000 => write!(out, "{:8}G", n / 1_000_000_000),
        _ => write!(out, "{:8}T", n / 1_000_000_000_000),
    };
}

fn service_lines(
    out: &mut String,
    entry: &ServiceEntry,
    dests: &[DestinationEntry],
    listing: Listing,
    exact: bool,
) {
    let s = &entry.service;
    let name = service_name(s);
    match listing {
        Listing::Stats | Listing::Rate => {
            let st = &entry.stats;
            let _ = write!(out, "{name:<33}");
            let nums = if listing == Listing::Stats {
                [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes]
            } else {
                [st.cps, st.inpps, st.outpps, st.inbps, st.outbps]
            };
            for n in nums {
                largenum(out, n, exact);
            }
        }
        Listing::Plain | Listing::Thresholds | Listing::PersistentConn => {
            let _ = write!(out, "{name} {}{}", s.scheduler, sched_flags(s));
            if let Some(p) = &s.persistence {
                let _ = write!(out, " persistent {}", p.timeout_s);
                // IPv6 granularity is always /128 here, which ipvsadm omits.
                if s.address.is_ipv4() && p.netmask != super::types::Persistence::host_netmask() {
                    let _ = write!(out, " mask {}", p.netmask);
                }
                if let Some(pe) = &entry.pe_name {
                    let _ = write!(out, " pe {pe}");
                }
            }
            if s.flags & IP_VS_SVC_F_ONEPACKET != 0 {
                out.push_str(" ops");
            }
        }
    }
    out.push('\n');

    let mut dests: Vec<&DestinationEntry> = dests.iter().collect();
    merge_sort(&mut dests, &|a, b| cmp_dests(a, b));
    for d in dests {
        let dest = &d.destination;
        let dname = addr_port(&dest.address, dest.port);
        let st = &d.stats;
        let _ = match listing {
            Listing::Plain => writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                dest.forward.ipvsadm_name(),
                dest.weight,
                d.active_conns,
                d.inactive_conns
            ),
            Listing::Stats => {
                let _ = write!(out, "  -> {dname:<28}");
                for n in [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes] {
                    largenum(out, n, exact);
                }
                writeln!(out)
            }
            Listing::Rate => {
                // The packet rates are printed as `%8u` of the u32 kernel values.
                let _ = write!(
                    out,
                    "  -> {dname:<28} {:8} {:8} {:8}",
                    st.cps as u32, st.inpps as u32, st.outpps as u32
                );
                largenum(out, st.inbps, exact);
                largenum(out, st.outbps, exact);
                writeln!(out)
            }
            Listing::Thresholds => writeln!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                dest.upper_threshold, dest.lower_threshold, d.active_conns, d.inactive_conns
            ),
            Listing::PersistentConn => writeln!(
                out,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                dest.weight, d.persist_conns, d.active_conns, d.inactive_conns
            ),
        };
    }
}

/// `ntohl(a) - ntohl(b)` computed in `unsigned` and read as `int`.
fn wrapping_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// Address comparison of libipvs: per 32-bit word, wrapping.
fn cmp_addr(a: &IpAddr, b: &IpAddr) -> i32 {
    let words = |ip: &IpAddr| -> Vec<u32> {
        match ip {
            IpAddr::V4(v4) => vec![u32::from(*v4)],
            IpAddr::V6(v6) => v6
                .octets()
                .chunks(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        }
    };
    words(a)
        .into_iter()
        .zip(words(b))
        .map(|(x, y)| wrapping_diff(x, y))
        .find(|&r| r != 0)
        .unwrap_or(0)
}

fn family(ip: &IpAddr) -> i32 {
    if ip.is_ipv4() { 2 } else { 10 }
}

/// libipvs `ipvs_cmp_services`: fwmark, family, protocol, address, port.
fn cmp_services(a: &Service, b: &Service) -> i32 {
    let r = wrapping_diff(a.fwmark.unwrap_or(0), b.fwmark.unwrap_or(0));
    if r != 0 {
        return r;
    }
    let r = family(&a.address) - family(&b.address);
    if r != 0 {
        return r;
    }
    // Fwmark services are TCP inside the kernel.
    let proto = |s: &Service| {
        if s.fwmark.is_some() {
            6
        } else {
            i32::from(s.protocol.number())
        }
    };
    let r = proto(a) - proto(b);
    if r != 0 {
        return r;
    }
    let r = cmp_addr(&a.address, &b.address);
    if r != 0 {
        return r;
    }
    i32::from(a.port) - i32::from(b.port)
}

/// libipvs `ipvs_cmp_dests`: family, address, port.
fn cmp_dests(a: &DestinationEntry, b: &DestinationEntry) -> i32 {
    let (a, b) = (&a.destination, &b.destination);
    let r = family(&a.address) - family(&b.address);
    if r != 0 {
        return r;
    }
    let r = cmp_addr(&a.address, &b.address);
    if r != 0 {
        return r;
    }
    i32::from(a.port) - i32::from(b.port)
}

/// glibc's `msort`: top-down merge sort, left half of size n/2, taking from
/// the left while `cmp <= 0`. Total for any comparator, however inconsistent.
fn merge_sort<T: Copy>(v: &mut [T], cmp: &dyn Fn(&T, &T) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    merge_sort(&mut v[..n1], cmp);
    merge_sort(&mut v[n1..], cmp);
    let (mut i, mut j) = (0, n1);
    let mut merged = Vec::with_capacity(n);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]).cmp(&0) != Ordering::Greater {
            merged.push(v[i]);
            i += 1;
        } else {
            merged.push(v[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..n1]);
    merged.extend_from_slice(&v[j..n]);
    v.copy_from_slice(&merged);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::consts::{IP_VS_SVC_F_SCHED_SH_FALLBACK, IP_VS_SVC_F_SCHED_SH_PORT};
    use crate::ipvs::types::{
        Destination, ForwardMethod, IpvsInfo, Persistence, ServiceTable, Stats,
    };

    fn entry(service: Service) -> ServiceEntry {
        ServiceEntry {
            service,
            pe_name: None,
            stats: Stats::default(),
        }
    }

    fn dest(addr: &str, forward: ForwardMethod, weight: i32) -> DestinationEntry {
        DestinationEntry {
            destination: Destination::new(addr.parse().unwrap(), forward, weight),
            active_conns: 0,
            inactive_conns: 0,
            persist_conns: 0,
            stats: Stats::default(),
        }
    }

    /// The services ipvsadm 1.31 listed in UML (6.1.176), in the kernel's
    /// hash order (that of `/proc/net/ip_vs`), destinations reversed.
    fn uml_table() -> IpvsTable {
        use ForwardMethod::*;
        let reference = Service::tcp("192.168.122.1".parse().unwrap(), 8080, "rr")
            .with_persistence(Persistence::per_client(60));
        let mut sh =
            Service::tcp("10.0.0.2".parse().unwrap(), 443, "sh").with_persistence(Persistence {
                timeout_s: 300,
                netmask: "255.255.255.0".parse().unwrap(),
            });
        sh.flags = IP_VS_SVC_F_SCHED_SH_FALLBACK | IP_VS_SVC_F_SCHED_SH_PORT;
        let v6 = Service::tcp("2001:db8::1".parse().unwrap(), 80, "rr")
            .with_persistence(Persistence::per_client(360));
        IpvsTable {
            info: IpvsInfo {
                version: 0x010201,
                conn_table_size: 4096,
            },
            services: vec![
                ServiceTable {
                    entry: entry(Service::udp("10.0.0.1".parse().unwrap(), 53, "wrr")),
                    destinations: vec![
                        dest("10.0.1.3:53", Tunnel, 100),
                        dest("10.0.1.2:5353", Masquerade, 0),
                        dest("10.0.1.1:53", Masquerade, 5),
                    ],
                },
                ServiceTable {
                    entry: entry(v6),
                    destinations: vec![dest("[2001:db8::10]:80", DirectRoute, 1)],
                },
                ServiceTable {
                    entry: entry(sh),
                    destinations: vec![dest("10.0.0.2:443", DirectRoute, 1)],
                },
                ServiceTable {
                    entry: entry(reference),
                    destinations: vec![
                        dest("172.22.35.2:8080", DirectRoute, 1),
                        dest("172.22.35.1:8080", DirectRoute, 1),
                    ],
                },
                ServiceTable {
                    entry: entry(Service::fwmark(7, "rr")),
                    destinations: vec![dest("10.1.1.1:0", DirectRoute, 1)],
                },
            ],
        }
    }

    /// Captured from `ipvsadm -Ln` in UML; note the trailing blanks.
    const IPVSADM_LN: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.168.122.1:8080 rr persistent 60
  -> 172.22.35.1:8080             Route   1      0          0         
  -> 172.22.35.2:8080             Route   1      0          0         
TCP  10.0.0.2:443 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0
  -> 10.0.0.2:443                 Route   1      0          0         
UDP  10.0.0.1:53 wrr
  -> 10.0.1.1:53                  Masq    5      0          0         
  -> 10.0.1.2:5353                Masq    0      0          0         
  -> 10.0.1.3:53                  Tunnel  100    0          0         
TCP  [2001:db8::1]:80 rr persistent 360
  -> [2001:db8::10]:80            Route   1      0          0         
FWM  7 rr
  -> 10.1.1.1:0                   Route   1      0          0         
";

    /// Captured from `ipvsadm -Ln --stats` in UML.
    const IPVSADM_LN_STATS: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  192.168.122.1:8080                  0        0        0        0        0
  -> 172.22.35.1:8080                    0        0        0        0        0
  -> 172.22.35.2:8080                    0        0        0        0        0
TCP  10.0.0.2:443                        0        0        0        0        0
  -> 10.0.0.2:443                        0        0        0        0        0
UDP  10.0.0.1:53                         0        0        0        0        0
  -> 10.0.1.1:53                         0        0        0        0        0
  -> 10.0.1.2:5353                       0        0        0        0        0
  -> 10.0.1.3:53                         0        0        0        0        0
TCP  [2001:db8::1]:80                    0        0        0        0        0
  -> [2001:db8::10]:80                   0        0        0        0        0
FWM  7                                   0        0        0        0        0
  -> 10.1.1.1:0                          0        0        0        0        0
";

    /// Captured from `ipvsadm -Ln --persistent-conn` in UML.
    const IPVSADM_LN_PERSISTENT_CONN: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  192.168.122.1:8080 rr persistent 60
  -> 172.22.35.1:8080             1         0           0          0         
  -> 172.22.35.2:8080             1         0           0          0         
TCP  10.0.0.2:443 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0
  -> 10.0.0.2:443                 1         0           0          0         
UDP  10.0.0.1:53 wrr
  -> 10.0.1.1:53                  5         0           0          0         
  -> 10.0.1.2:5353                0         0           0          0         
  -> 10.0.1.3:53                  100       0           0          0         
TCP  [2001:db8::1]:80 rr persistent 360
  -> [2001:db8::10]:80            1         0           0          0         
FWM  7 rr
  -> 10.1.1.1:0                   1         0           0          0         
";

    #[test]
    fn plain_listing_matches_ipvsadm() {
        assert_eq!(list(&uml_table()), IPVSADM_LN);
    }

    #[test]
    fn stats_listing_matches_ipvsadm() {
        assert_eq!(list_stats(&uml_table()), IPVSADM_LN_STATS);
    }

    #[test]
    fn persistent_conn_listing_matches_ipvsadm() {
        assert_eq!(
            render(&uml_table(), Listing::PersistentConn),
            IPVSADM_LN_PERSISTENT_CONN
        );
    }

    #[test]
    fn thresholds_and_rate_titles() {
        let t = render(&uml_table(), Listing::Thresholds);
        assert!(t.contains(
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n"
        ));
        assert!(t.contains(
            "  -> 10.0.1.3:53                  0          0          0          0         \n"
        ));
        let r = render(&uml_table(), Listing::Rate);
        assert!(r.contains(
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n"
        ));
        assert!(r.contains(
            "FWM  7                                   0        0        0        0        0\n"
        ));
    }

    #[test]
    fn large_numbers_abbreviate_like_ipvsadm() {
        let cases = [
            (0, "        0"),
            (99_999_999, " 99999999"),
            (100_000_000, "  100000K"),
            (999_999_999, "  999999K"),
            (1_000_000_000, "    1000M"),
            (99_999_999_999, "   99999M"),
            (100_000_000_000, "     100G"),
            (100_000_000_000_000, "     100T"),
        ];
        for (n, expected) in cases {
            let mut s = String::new();
            largenum(&mut s, n, false);
            assert_eq!(s, expected, "{n}");
        }
        for (n, expected) in [
            (0, "        0"),
            (12_345_678, " 12345678"),
            (123_456_789, " 123456789"),
            (100_000_000_000, " 100000000000"),
        ] {
            let mut s = String::new();
            largenum(&mut s, n, true);
            assert_eq!(s, expected, "{n} exact");
        }
    }

    #[test]
    fn counters_and_connections_in_columns() {
        let mut table = uml_table();
        table.services.truncate(0);
        let mut e = entry(
            Service::tcp("192.168.122.1".parse().unwrap(), 8080, "rr")
                .with_persistence(Persistence::per_client(60)),
        );
        e.stats.conns = 12;
        e.stats.inpkts = 345;
        e.stats.inbytes = 123_456_789;
        let mut d = dest("172.22.35.1:8080", ForwardMethod::DirectRoute, 1);
        d.active_conns = 3;
        d.inactive_conns = 17;
        d.stats = e.stats;
        table.services.push(ServiceTable {
            entry: e,
            destinations: vec![d],
        });
        assert!(list(&table).ends_with(
            "TCP  192.168.122.1:8080 rr persistent 60\n  \
             -> 172.22.35.1:8080             Route   1      3          17        \n"
        ));
        assert!(list_stats(&table).ends_with(
            "TCP  192.168.122.1:8080                 12      345        0  123456K        0\n  \
             -> 172.22.35.1:8080                   12      345        0  123456K        0\n"
        ));
    }

    #[test]
    fn wrapping_comparison_and_total_sort() {
        // ipvsadm's int subtraction puts 192.168.x before 10.x ...
        let a = Service::tcp("192.168.122.1".parse().unwrap(), 1, "rr");
        let b = Service::tcp("10.0.0.2".parse().unwrap(), 1, "rr");
        assert!(cmp_services(&a, &b) < 0);
        // ... and is not transitive across three far-apart addresses; the
        // merge sort must still terminate with a permutation.
        let mut v = vec![0u32, 0x6000_0000, 0xc000_0000, 5, 0x9000_0000];
        merge_sort(&mut v, &|x, y| wrapping_diff(*x, *y));
        let mut sorted = v.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 5, 0x6000_0000, 0x9000_0000, 0xc000_0000]);
    }

    #[test]
    fn timeouts_line() {
        let t = Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        };
        assert_eq!(timeouts(&t), "Timeout (tcp tcpfin udp): 900 120 300\n");
    }
}
