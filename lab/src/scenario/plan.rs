//! From a validated scenario to what the kernel will be told: the topology
//! spec, the IPVS service and its destinations. Pure: no kernel is touched.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::ipvs::{Destination, Persistence, Service};
use crate::netns::RunId;
use crate::topology::spec::{HostSpec, Role, RouteSpec, SpecError, TopologySpec};

use super::Scenario;

/// Name of the (single) client host.
pub const CLIENT_HOST: &str = "client1";
/// Name of the director host.
pub const DIRECTOR_HOST: &str = "director";

/// keepalived's default persistence timeout when persistence is on but no
/// timeout is given (`IPVS_SVC_PERSISTENT_TIMEOUT`).
pub const KEEPALIVED_DEFAULT_PERSISTENCE_S: u32 = 360;

/// One real server of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerPlan {
    /// Host and report name (`rs1`).
    pub name: String,
    /// Its address on the segment.
    pub address: Ipv4Addr,
    /// The port the gRPC server listens on (the VIP's port: DR keeps ports).
    pub port: u16,
    /// Its IPVS destination.
    pub destination: Destination,
}

/// Everything the kernel will be told for one run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The network.
    pub topology: TopologySpec,
    /// The IPVS virtual service.
    pub service: Service,
    /// The real servers, in file order.
    pub servers: Vec<ServerPlan>,
    /// The client host's source addresses.
    pub client_addresses: Vec<Ipv4Addr>,
    /// The VIP and port clients connect to.
    pub target: SocketAddr,
    /// IPVS timeouts to set (0 = leave the kernel's).
    pub timeouts: crate::ipvs::Timeouts,
    /// `net.ipv4.vs.*` sysctls to set in the director.
    pub ipvs_sysctls: Vec<(String, String)>,
}

impl Plan {
    /// Finds a real server by name or address, as phases name them.
    pub fn server(&self, name_or_addr: &str) -> Option<&ServerPlan> {
        self.servers
            .iter()
            .find(|s| s.name == name_or_addr || s.address.to_string() == name_or_addr)
    }
}

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
}
