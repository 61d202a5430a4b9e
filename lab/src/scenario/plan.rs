//! From a validated scenario to what the kernel will be told: the topology
//! spec, the IPVS service and its destinations. Pure: no kernel is touched.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::ipvs::{Destination, Persistence, Service};
use crate::netns::RunId;
use crate::topology::spec::{HostSpec, Role, RouteSpec, SpecError, TopologySpec};

use super::Scenario;

// The plan's types are the lab network's; they are built here from a scenario.
pub use crate::network::{CLIENT_HOST, DIRECTOR_HOST, Plan, ServerPlan};

/// keepalived's default persistence timeout when persistence is on but no
/// timeout is given (`IPVS_SVC_PERSISTENT_TIMEOUT`).
pub const KEEPALIVED_DEFAULT_PERSISTENCE_S: u32 = 360;

/// Builds the plan for `scenario` in run `run`.
pub fn plan(scenario: &Scenario, run: RunId) -> Result<Plan, SpecError> {
    let vs = &scenario.file.virtual_server;
    let net = &scenario.file.network;
    let names = scenario.server_names();

    let mut service = Service::tcp(IpAddr::V4(vs.vip), vs.port, &vs.lb_algo);
    if let Some(timeout) = vs.persistence_timeout.filter(|t| *t > 0) {
        let mut p = Persistence::per_client(timeout);
        if let Some(mask) = vs.persistence_granularity {
            p.netmask = mask;
        }
        service = service.with_persistence(p);
    }

    let servers: Vec<ServerPlan> = vs
        .real_servers
        .iter()
        .zip(&names)
        .map(|(rs, name)| {
            let mut destination =
                Destination::dr(SocketAddr::new(IpAddr::V4(rs.address), rs.port), rs.weight);
            destination.upper_threshold = rs.uthreshold;
            destination.lower_threshold = rs.lthreshold;
            ServerPlan {
                name: name.clone(),
                address: rs.address,
                port: rs.port,
                destination,
                standby: rs.standby,
            }
        })
        .collect();

    let first = u32::from(net.client_base);
    let client_addresses: Vec<Ipv4Addr> = (0..net.client_ips)
        .map(|i| Ipv4Addr::from(first + i))
        .collect();

    let vip_route = RouteSpec {
        dest: ipnet::Ipv4Net::new(vs.vip, 32).expect("/32 is valid"),
        via: net.director,
    };
    let mut hosts = vec![HostSpec {
        name: DIRECTOR_HOST.into(),
        role: Role::Director,
        addresses: vec![net.director],
        vips: vec![vs.vip],
        loopback_addresses: vec![],
        routes: vec![],
    }];
    hosts.extend(servers.iter().map(|s| HostSpec {
        name: s.name.clone(),
        role: Role::RealServer,
        addresses: vec![s.address],
        vips: vec![],
        loopback_addresses: vec![vs.vip],
        routes: vec![],
    }));
    hosts.push(HostSpec {
        name: CLIENT_HOST.into(),
        role: Role::Client,
        addresses: client_addresses.clone(),
        vips: vec![],
        loopback_addresses: vec![],
        routes: vec![vip_route],
    });
    let topology = TopologySpec {
        run,
        prefix: net.segment,
        hosts,
    };
    topology.validate()?;
    Ok(Plan {
        topology,
        service,
        servers,
        client_addresses,
        target: SocketAddr::new(IpAddr::V4(vs.vip), vs.port),
        timeouts: crate::ipvs::Timeouts {
            tcp: scenario.file.ipvs.timeout_tcp.unwrap_or(0),
            tcp_fin: scenario.file.ipvs.timeout_tcp_fin.unwrap_or(0),
            udp: scenario.file.ipvs.timeout_udp.unwrap_or(0),
        },
        ipvs_sysctls: scenario
            .file
            .ipvs
            .sysctls
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
        client_sysctls: client_sysctls(net),
    })
}

/// `[network] client_port_range` and `client_tw_reuse` as the client
/// namespace's sysctls (`ip_local_port_range` takes "first last").
fn client_sysctls(net: &crate::scenario::spec::Network) -> Vec<crate::dr::Sysctl> {
    let mut v = Vec::new();
    if let Some([first, last]) = net.client_port_range {
        v.push(crate::dr::Sysctl::new(
            "net.ipv4.ip_local_port_range",
            format!("{first} {last}"),
        ));
    }
    if let Some(reuse) = net.client_tw_reuse {
        v.push(crate::dr::Sysctl::new(
            "net.ipv4.tcp_tw_reuse",
            reuse.to_string(),
        ));
    }
    v
}

/// The lab checker's plan for `scenario`: one checker per real server with
/// a `TCP_CHECK` or `GRPC_CHECK` (TCP wins when both are given, as
/// keepalived takes the first checker). `None` when no server has a check.
///
/// keepalived's inheritance is applied: `warmup` defaults to `delay_loop`,
/// `connect_port` to the real server's port.
pub fn health_plan(scenario: &Scenario, plan: &Plan) -> Option<crate::health::HealthPlan> {
    use crate::health::{CheckKind, CheckTiming, ServerCheck};
    let vs = &scenario.file.virtual_server;
    let secs = |s: f64| Duration::from_secs_f64(s.max(0.0));
    let delay_loop = secs(vs.delay_loop);
    let checks: Vec<ServerCheck> = vs
        .real_servers
        .iter()
        .zip(&plan.servers)
        .filter_map(|(rs, sp)| {
            let (kind, timing, port) = if let Some(c) = &rs.tcp_check {
                let timing = CheckTiming {
                    delay_loop,
                    connect_timeout: secs(c.connect_timeout),
                    retry: c.retry,
                    delay_before_retry: secs(c.delay_before_retry),
                    warmup: c.warmup.map_or(delay_loop, secs),
                    alpha: c.alpha,
                };
                (CheckKind::Tcp, timing, c.connect_port.unwrap_or(rs.port))
            } else if let Some(c) = &rs.grpc_check {
                let timing = CheckTiming {
                    delay_loop,
                    connect_timeout: secs(c.connect_timeout),
                    retry: c.retry,
                    delay_before_retry: secs(c.delay_before_retry),
                    warmup: c.warmup.map_or(delay_loop, secs),
                    alpha: false,
                };
                let kind = CheckKind::Grpc {
                    service: c.service.clone(),
                };
                (kind, timing, rs.port)
            } else {
                return None;
            };
            Some(ServerCheck {
                name: sp.name.clone(),
                destination: sp.destination,
                connect: SocketAddr::new(IpAddr::V4(rs.address), port),
                kind,
                timing,
                inhibit_on_failure: vs.inhibit_on_failure,
            })
        })
        .collect();
    if checks.is_empty() {
        return None;
    }
    Some(crate::health::HealthPlan {
        service: plan.service.clone(),
        checks,
        quorum: vs.quorum.unwrap_or(1),
        hysteresis: 0,
        sorry_server: vs
            .sorry_server
            .map(|a| Destination::dr(SocketAddr::new(IpAddr::V4(a), vs.port), 1)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::ForwardMethod;
    use std::path::Path;

    #[test]
    fn reference_plan_matches_keepalived() {
        let text = include_str!("../../../scenarios/rr-persistence.toml");
        let s = Scenario::from_str(Path::new("rr-persistence.toml"), text).unwrap();
        let p = plan(&s, RunId::from_parts(1, 1)).unwrap();
        assert_eq!(p.service.scheduler, "rr");
        assert_eq!(p.service.port, 8080);
        let persistence = p.service.persistence.expect("persistent");
        assert_eq!(persistence.timeout_s, 60);
        assert_eq!(persistence.netmask, Ipv4Addr::BROADCAST);
        assert_eq!(p.servers.len(), 2);
        for s in &p.servers {
            assert_eq!(s.destination.forward, ForwardMethod::DirectRoute);
            assert_eq!(s.destination.weight, 1);
        }
        let director = p.topology.director().unwrap();
        assert_eq!(director.vips, vec![Ipv4Addr::new(192, 168, 122, 1)]);
        let rs1 = p.topology.host("rs1").unwrap();
        assert_eq!(
            rs1.loopback_addresses,
            vec![Ipv4Addr::new(192, 168, 122, 1)]
        );
        let client = p.topology.host(CLIENT_HOST).unwrap();
        assert_eq!(client.routes[0].via, Ipv4Addr::new(172, 22, 35, 254));
        assert_eq!(p.client_addresses, vec![Ipv4Addr::new(172, 22, 36, 1)]);
    }

    #[test]
    fn health_plan_applies_keepalived_inheritance() {
        let text = include_str!("../../../scenarios/rr-persistence.toml");
        let s = Scenario::from_str(Path::new("rr-persistence.toml"), text).unwrap();
        let p = plan(&s, RunId::from_parts(1, 1)).unwrap();
        let h = health_plan(&s, &p).expect("TCP_CHECK on both servers");
        assert_eq!(h.checks.len(), 2);
        let c = &h.checks[0];
        assert_eq!(c.connect.to_string(), "172.22.35.1:8080");
        assert_eq!(c.timing.delay_loop, Duration::from_secs(6));
        assert_eq!(
            c.timing.warmup,
            Duration::from_secs(6),
            "warmup defaults to delay_loop"
        );
        assert_eq!(c.timing.retry, 3);
        assert!(!c.inhibit_on_failure);
        assert_eq!(h.quorum, 1);
        let plain = include_str!("../../../scenarios/rr.toml");
        let s = Scenario::from_str(Path::new("rr.toml"), plain).unwrap();
        let p = plan(&s, RunId::from_parts(1, 1)).unwrap();
        assert!(health_plan(&s, &p).is_none());
    }
}
