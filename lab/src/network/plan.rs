//! What the kernel will be told for one lab network: the topology spec, the
//! IPVS service and destinations, timeouts and sysctls. Pure data: a
//! scenario builds it (`scenario::plan`), [`super::LabNetwork`] applies it.

use std::net::{Ipv4Addr, SocketAddr};

use crate::ipvs::{Destination, Service};
use crate::topology::spec::TopologySpec;

/// Name of the (single) client host.
pub const CLIENT_HOST: &str = "client1";
/// Name of the director host.
pub const DIRECTOR_HOST: &str = "director";

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
    /// Held back for a scale-out: not started and not in IPVS at bring-up.
    pub standby: bool,
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
    /// Sysctls of the client namespace alone (its ephemeral port range,
    /// `tcp_tw_reuse`), written before any load.
    pub client_sysctls: Vec<crate::dr::Sysctl>,
}

impl ServerPlan {
    /// The destination as `address:port`, the way IPVS listings name it.
    pub fn destination_key(&self) -> String {
        SocketAddr::new(self.destination.address, self.destination.port).to_string()
    }
}

impl Plan {
    /// Finds a real server by name or address, as phases name them.
    pub fn server(&self, name_or_addr: &str) -> Option<&ServerPlan> {
        self.servers
            .iter()
            .find(|s| s.name == name_or_addr || s.address.to_string() == name_or_addr)
    }
}
