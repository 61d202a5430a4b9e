//! keepalived.conf ⇄ scenario, both directions, so that `keepalived/` stays a
//! leaf that knows nothing of scenarios.
//!
//! - [`to_scenario`]: a user's keepalived.conf as a lab scenario. The first
//!   `virtual_server` becomes the scenario's virtual server, its real
//!   servers' addresses shape the lab segment, and the director is Debian's
//!   keepalived with a config rendered from what was parsed. Everything the
//!   lab does not reproduce is listed by line, never silently dropped.
//! - [`keepalived_conf`]: a scenario's virtual server as the keepalived.conf
//!   model keepalived runs with (`director = "keepalived"`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use super::Scenario;
use super::spec::{
    DirectorKind, Expect, IpvsSettings, Load, Network, RealServer, ScenarioFile, TcpCheck,
    VirtualServer,
};
use crate::keepalived::model::{Ignored, KeepalivedConf, VirtualServerConf};

/// Why a keepalived.conf cannot become a scenario.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    /// No `virtual_server <ip> <port>` block at all.
    #[error("{path}: no `virtual_server <address> <port>` block the lab can run")]
    NoVirtualServer {
        /// The file.
        path: String,
    },
    /// The lab builds IPv4 networks only.
    #[error("{path}:{line}: {what} is IPv6; the lab builds IPv4 networks only")]
    NotIpv4 {
        /// The file.
        path: String,
        /// Where.
        line: usize,
        /// The address.
        what: String,
    },
    /// The real servers and the VIP leave no room for a director and the
    /// clients in any segment up to a /8 around them.
    #[error(
        "{path}: the real servers and the VIP fill every segment up to a /8 around them; the lab \
         needs one free address for the director and {clients} in a row for the clients"
    )]
    NoRoom {
        /// The file.
        path: String,
        /// How many client addresses are needed.
        clients: u32,
    },
}

/// How many client source addresses an imported scenario uses: enough for
/// persistence and round robin to show a spread.
pub const IMPORTED_CLIENT_IPS: u32 = 8;

/// A scenario built from a keepalived.conf, and what was left out.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The scenario.
    pub file: ScenarioFile,
    /// Everything not reproduced, by line.
    pub ignored: Vec<Ignored>,
}

fn v4(path: &str, line: usize, addr: IpAddr) -> Result<Ipv4Addr, ImportError> {
    match addr {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(a) => Err(ImportError::NotIpv4 {
            path: path.into(),
            line,
            what: a.to_string(),
        }),
    }
}

/// The smallest prefix (at least /24, at most /8) holding every address.
fn segment_for(addrs: &[Ipv4Addr]) -> ipnet::Ipv4Net {
    let first = u32::from(addrs[0]);
    let mut len = 24u8;
    while len > 8 {
        let mask = u32::MAX << (32 - len);
        if addrs.iter().all(|a| u32::from(*a) & mask == first & mask) {
            break;
        }
        len -= 1;
    }
    ipnet::Ipv4Net::new(addrs[0], len)
        .expect("prefix length 8..=24")
        .trunc()
}

/// The segment around `addrs` (their common /24, or wider), with the
/// director on the highest free host address and the clients on the lowest
/// free run of IMPORTED_CLIENT_IPS addresses. A segment the servers fill
/// (a whole /24 of real servers) is widened until both fit; `None` when
/// not even a /8 has room.
fn place_hosts(addrs: &[Ipv4Addr], vip: Ipv4Addr) -> Option<(ipnet::Ipv4Net, Ipv4Addr, Ipv4Addr)> {
    let taken = |a: Ipv4Addr| addrs.contains(&a) || a == vip;
    let narrowest = segment_for(addrs).prefix_len();
    (8..=narrowest).rev().find_map(|len| {
        let segment = ipnet::Ipv4Net::new(addrs[0], len).ok()?.trunc();
        let mut hosts = segment.hosts();
        let director = segment.hosts().rev().find(|a| !taken(*a))?;
        let mut run = 0u32;
        let mut base = None;
        for a in hosts.by_ref() {
            if taken(a) || a == director {
                run = 0;
                continue;
            }
            run += 1;
            if run == IMPORTED_CLIENT_IPS {
                base = Some(Ipv4Addr::from(u32::from(a) - (IMPORTED_CLIENT_IPS - 1)));
                break;
            }
        }
        Some((segment, director, base?))
    })
}

/// Turns the first virtual server of `conf` into a scenario run by
/// keepalived; further virtual servers are listed as ignored.
pub fn to_scenario(conf: &KeepalivedConf, path: &Path) -> Result<Imported, ImportError> {
    let shown = path.display().to_string();
    let mut ignored = conf.ignored.clone();
    let Some((vs, rest)) = conf.virtual_servers.split_first() else {
        return Err(ImportError::NoVirtualServer { path: shown });
    };
    for other in rest {
        ignored.push(Ignored {
            line: other.line,
            what: format!("virtual_server {} {}", other.vip, other.port),
            reason: crate::keepalived::model::IgnoreReason::Unsupported,
        });
    }
    let vip = v4(&shown, vs.line, vs.vip)?;
    let mut servers = Vec::new();
    for rs in &vs.real_servers {
        servers.push((v4(&shown, rs.line, rs.address)?, rs));
    }
    if servers.is_empty() {
        return Err(ImportError::NoVirtualServer { path: shown });
    }
    let addrs: Vec<Ipv4Addr> = servers.iter().map(|(a, _)| *a).collect();
    let (segment, director, client_base) =
        place_hosts(&addrs, vip).ok_or_else(|| ImportError::NoRoom {
            path: shown.clone(),
            clients: IMPORTED_CLIENT_IPS,
        })?;

    let file = ScenarioFile {
        description: format!(
            "keepalived.conf {shown}: virtual_server {} {} (line {}), run by keepalived",
            vs.vip, vs.port, vs.line
        ),
        virtual_server: virtual_server(vs, vip, &servers),
        network: Network {
            segment,
            director,
            client_ips: IMPORTED_CLIENT_IPS,
            client_base,
            ..Network::default()
        },
        ipvs: IpvsSettings::default(),
        load: Load {
            concurrency: 16,
            channels_per_ip: 2,
            ..Load::default()
        },
        phases: Vec::new(),
        expect: imported_expect(vs.persistence_timeout),

        director: DirectorKind::Keepalived,
        time: Default::default(),
        server: None,
        client: None,
    };
    Ok(Imported { file, ignored })
}

/// What an imported file's run must show. With `persistence_timeout` the
/// kernel must keep templates and pin each client IP to one real server
/// (the load is shorter than any timeout keepalived accepts and its
/// channels live for the whole run, so no template can expire mid-run).
fn imported_expect(persistence_timeout: Option<u32>) -> Expect {
    let persistent = persistence_timeout.is_some_and(|t| t > 0);
    Expect {
        max_error_rate: Some(0.01),
        ipvs_consistent: Some(true),
        sticky_per_client: persistent.then_some(true),
        templates_present: persistent.then_some(true),
        ..Expect::default()
    }
}

fn virtual_server(
    vs: &VirtualServerConf,
    vip: Ipv4Addr,
    servers: &[(Ipv4Addr, &crate::keepalived::model::RealServerConf)],
) -> VirtualServer {
    VirtualServer {
        vip,
        port: vs.port,
        protocol: vs.protocol.as_str().to_string(),
        lb_algo: vs.lb_algo.as_str().to_string(),
        lb_kind: vs.lb_kind.as_str().to_string(),
        persistence_timeout: vs.persistence_timeout,
        persistence_granularity: vs.persistence_granularity,
        delay_loop: vs.delay_loop,
        inhibit_on_failure: vs.inhibit_on_failure,
        quorum: (vs.quorum != 1).then_some(vs.quorum),
        sorry_server: vs.sorry_server.and_then(|s| match s.ip() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }),
        real_servers: servers
            .iter()
            .map(|(address, rs)| RealServer {
                address: *address,
                port: rs.port,
                weight: i32::try_from(rs.weight).unwrap_or(i32::MAX),
                name: None,
                uthreshold: 0,
                lthreshold: 0,
                tcp_check: rs.tcp_check.as_ref().map(|c| TcpCheck {
                    connect_timeout: c.connect_timeout,
                    retry: c.retry,
                    delay_before_retry: c.delay_before_retry,
                    connect_port: Some(c.connect_port),
                    warmup: Some(c.warmup),
                    alpha: c.alpha,
                }),
                grpc_check: None,
                max_connection_age: None,
                command: None,
                standby: false,
            })
            .collect(),
    }
}

/// The keepalived.conf model of `scenario`'s virtual server, for running
/// Debian's keepalived in the director. keepalived's own defaults are made
/// explicit where the lab's differ (`warmup` is `delay_loop` in both).
/// A `GRPC_CHECK` has no keepalived equivalent: such a server gets no
/// checker, so keepalived keeps it in the pool unconditionally.
pub fn keepalived_conf(scenario: &Scenario) -> crate::keepalived::VirtualServerConf {
    use crate::keepalived::{LbAlgo, LbKind, Protocol, RealServerConf, TcpCheckConf};
    let vs = &scenario.file.virtual_server;
    crate::keepalived::VirtualServerConf {
        line: 0,
        vip: IpAddr::V4(vs.vip),
        port: vs.port,
        delay_loop: vs.delay_loop,
        lb_algo: LbAlgo::from_name(&vs.lb_algo).unwrap_or_default(),
        lb_kind: LbKind::Dr,
        protocol: Protocol::Tcp,
        persistence_timeout: vs.persistence_timeout.filter(|t| *t > 0),
        persistence_granularity: vs.persistence_granularity,
        quorum: vs.quorum.unwrap_or(1),
        hysteresis: 0,
        sorry_server: vs
            .sorry_server
            .map(|a| SocketAddr::new(IpAddr::V4(a), vs.port)),
        inhibit_on_failure: vs.inhibit_on_failure,
        alpha: false,
        omega: false,
        real_servers: vs
            .real_servers
            .iter()
            .map(|rs| RealServerConf {
                line: 0,
                address: IpAddr::V4(rs.address),
                port: rs.port,
                weight: rs.weight.max(0) as u32,
                inhibit_on_failure: vs.inhibit_on_failure,
                tcp_check: rs.tcp_check.as_ref().map(|c| TcpCheckConf {
                    connect_timeout: c.connect_timeout,
                    retry: c.retry,
                    delay_before_retry: c.delay_before_retry,
                    connect_port: c.connect_port.unwrap_or(rs.port),
                    connect_ip: IpAddr::V4(rs.address),
                    warmup: c.warmup.unwrap_or(vs.delay_loop),
                    delay_loop: vs.delay_loop,
                    alpha: c.alpha,
                }),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference setup preceded by parts the lab does not run.
    fn reference_with_vrrp() -> String {
        format!(
            "! the reference setup, with parts the lab does not run\n\
             vrrp_instance VI_1 {{\n    state MASTER\n    interface eth0\n    virtual_router_id 51\n\
             \x20   virtual_ipaddress {{ 192.168.122.1 }}\n}}\n{}",
            crate::keepalived::tests::REFERENCE
        )
    }

    #[test]
    fn the_reference_conf_becomes_a_valid_keepalived_scenario() {
        let conf = crate::keepalived::parse_str(&reference_with_vrrp()).unwrap();
        let imported = to_scenario(&conf, Path::new("keepalived.conf")).unwrap();
        let f = &imported.file;
        assert_eq!(f.director, DirectorKind::Keepalived);
        assert_eq!(f.virtual_server.vip, Ipv4Addr::new(192, 168, 122, 1));
        assert_eq!(f.virtual_server.lb_algo, "rr");
        assert_eq!(f.virtual_server.lb_kind.to_uppercase(), "DR");
        assert_eq!(f.virtual_server.persistence_timeout, Some(60));
        // persistence_timeout makes the run expect pinned IPs and templates.
        assert_eq!(f.expect.sticky_per_client, Some(true));
        assert_eq!(f.expect.templates_present, Some(true));
        assert_eq!(imported_expect(None).sticky_per_client, None);
        assert_eq!(imported_expect(Some(0)).templates_present, None);
        assert_eq!(f.virtual_server.real_servers.len(), 2);
        let check = f.virtual_server.real_servers[0].tcp_check.as_ref().unwrap();
        assert_eq!((check.connect_timeout, check.retry), (3.0, 3));
        assert_eq!(f.network.segment.to_string(), "172.22.35.0/24");
        assert_eq!(f.network.director, Ipv4Addr::new(172, 22, 35, 254));
        assert_eq!(f.network.client_base, Ipv4Addr::new(172, 22, 35, 3));
        // The VRRP block is reported, by line.
        assert!(
            imported
                .ignored
                .iter()
                .any(|i| i.line == 2 && i.what.contains("vrrp_instance")),
            "{:?}",
            imported.ignored
        );
        // And the result passes the same validation as a scenario file.
        let problems = super::super::validate::validate(f);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn ipv6_and_empty_files_are_refused_with_the_line() {
        let v6 =
            "virtual_server 2001:db8::1 80 {\n lb_kind DR\n real_server 2001:db8::2 80 {\n }\n}\n";
        let conf = crate::keepalived::parse_str(v6).unwrap();
        assert!(matches!(
            to_scenario(&conf, Path::new("k.conf")),
            Err(ImportError::NotIpv4 { line: 1, .. })
        ));
        let empty = crate::keepalived::parse_str("global_defs {\n router_id x\n}\n").unwrap();
        assert!(matches!(
            to_scenario(&empty, Path::new("k.conf")),
            Err(ImportError::NoVirtualServer { .. })
        ));
    }

    /// A keepalived.conf with real servers at `10.9.9.<host>` for each host.
    fn conf_with_servers(hosts: impl Iterator<Item = u32>) -> String {
        let mut text = String::from("virtual_server 10.9.8.1 80 {\n lb_kind DR\n");
        for h in hosts {
            text.push_str(&format!(" real_server 10.9.9.{h} 80 {{\n weight 1\n }}\n"));
        }
        text.push_str("}\n");
        text
    }

    #[test]
    fn a_full_or_strided_slash_24_of_servers_never_panics() {
        // Issue 10, finding 6: stride 8 left no run of 8 free client
        // addresses, the full /24 no address at all; both panicked.
        for (hosts, what) in [
            ((1..=254).step_by(8).collect::<Vec<u32>>(), "stride 8"),
            ((1..=254).collect(), "the full /24"),
        ] {
            let conf = crate::keepalived::parse_str(&conf_with_servers(hosts.into_iter())).unwrap();
            let imported =
                to_scenario(&conf, Path::new("k.conf")).unwrap_or_else(|e| panic!("{what}: {e}"));
            let net = &imported.file.network;
            let servers: Vec<Ipv4Addr> = imported
                .file
                .virtual_server
                .real_servers
                .iter()
                .map(|r| r.address)
                .collect();
            assert!(net.segment.contains(&net.director), "{what}");
            assert!(!servers.contains(&net.director), "{what}");
            let first = u32::from(net.client_base);
            for c in first..first + IMPORTED_CLIENT_IPS {
                let c = Ipv4Addr::from(c);
                assert!(net.segment.contains(&c) && !servers.contains(&c) && c != net.director);
            }
        }
    }

    #[test]
    fn the_segment_widens_to_hold_every_real_server() {
        let s = segment_for(&[Ipv4Addr::new(10, 1, 2, 3), Ipv4Addr::new(10, 1, 7, 9)]);
        assert_eq!(s.to_string(), "10.1.0.0/21");
    }

    #[test]
    fn keepalived_conf_round_trips_through_the_parser() {
        let text = include_str!("../../../scenarios/rr-persistence.toml");
        let s = Scenario::from_str(Path::new("rr-persistence.toml"), text).unwrap();
        let vs = keepalived_conf(&s);
        let conf = crate::keepalived::render_conf(&vs, &Default::default());
        let parsed = crate::keepalived::parse_str(&conf).expect("renders valid keepalived");
        let back = &parsed.virtual_servers[0];
        assert_eq!(back.real_servers.len(), 2);
        assert_eq!(back.persistence_timeout, Some(60));
        let c = back.real_servers[0].tcp_check.as_ref().unwrap();
        assert_eq!(
            (c.connect_timeout, c.retry, c.delay_before_retry),
            (3.0, 3, 3.0)
        );
        assert_eq!(c.connect_port, 8080);
        // Only global_defs (router_id) is outside LVS.
        assert!(
            parsed.ignored.iter().all(|i| i.what == "global_defs"),
            "{:?}",
            parsed.ignored
        );
    }
}
