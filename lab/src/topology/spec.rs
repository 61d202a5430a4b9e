//! The pure description of a lab network: hosts, their roles, addresses and
//! routes on one L2 segment. No I/O here; [`TopologySpec::validate`] catches
//! everything the kernel would otherwise reject halfway through bring-up.
//!
//! Every host is a namespace with one interface, `eth0`, whose veth peer
//! `v-<host>` is a port of the bridge `br0` in the run's bridge namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::netns::{self, RunId};

/// The shared L2 segment of the default lab.
pub const DEFAULT_PREFIX: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(172, 22, 0, 0), 16);
/// The default virtual service address. It exists only inside the lab's
/// namespaces, never on the host.
pub const DEFAULT_VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 122, 1);
/// The director's default address on the segment.
pub const DEFAULT_DIRECTOR: Ipv4Addr = Ipv4Addr::new(172, 22, 35, 254);
/// The first real server's default address; the others follow (.2, .3, ...).
pub const FIRST_REAL_SERVER: Ipv4Addr = Ipv4Addr::new(172, 22, 35, 1);
/// The first client address; 172.22.36.0/22 and beyond hold 1,000+ of them.
pub const FIRST_CLIENT: Ipv4Addr = Ipv4Addr::new(172, 22, 36, 1);

/// Most addresses one host may carry on `eth0` (the scale target is 1,000
/// client source addresses).
pub const MAX_ADDRESSES_PER_HOST: usize = 4096;
/// Longest host name: the bridge-side veth is `v-<host>` and Linux interface
/// names hold at most 15 bytes (`IFNAMSIZ` - 1).
pub const MAX_HOST_NAME_LEN: usize = 13;
/// The host part of the bridge namespace's name; no host may use it.
pub const BRIDGE_HOST: &str = "bridge";
/// The bridge device inside the bridge namespace.
pub const BRIDGE_IFNAME: &str = "br0";
/// Each host's interface on the segment.
pub const HOST_IFNAME: &str = "eth0";

/// What a host does in the DR lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sends traffic to the VIP; may carry many source addresses.
    Client,
    /// Holds the VIP and runs IPVS.
    Director,
    /// Serves the VIP (held on `lo`) and answers clients directly.
    RealServer,
}

/// A static route `dest via via dev eth0`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSpec {
    /// Destination prefix (host bits must be zero).
    pub dest: Ipv4Net,
    /// Gateway: another host's address on the segment.
    pub via: Ipv4Addr,
}

/// One host (= one namespace with one `eth0`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSpec {
    /// Short name, `[a-z0-9-]`, at most [`MAX_HOST_NAME_LEN`] bytes.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Addresses on `eth0` with the segment's prefix length, all inside the
    /// segment. The first is the primary (the kernel's default source).
    pub addresses: Vec<Ipv4Addr>,
    /// Extra `/32` addresses on `eth0`, possibly outside the segment: the
    /// director's VIP. Only a director may hold them, since the holder
    /// answers ARP for them on the segment.
    #[serde(default)]
    pub vips: Vec<Ipv4Addr>,
    /// `/32` addresses on `lo`: a real server's VIP, which it accepts but
    /// (with `arp_ignore=1`) never announces.
    #[serde(default)]
    pub loopback_addresses: Vec<Ipv4Addr>,
    /// Static routes through other hosts.
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
}

impl HostSpec {
    /// The primary address (the first of [`HostSpec::addresses`]).
    pub fn primary(&self) -> Option<Ipv4Addr> {
        self.addresses.first().copied()
    }
}

/// A client of [`TopologySpec::dr_lab`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSpec {
    /// Host name.
    pub name: String,
    /// Its source addresses; the first is the primary.
    pub addresses: Vec<Ipv4Addr>,
}

/// A whole lab network for one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologySpec {
    /// The run the namespaces belong to (part of their names).
    pub run: RunId,
    /// The shared L2 segment; every `eth0` address lies inside it.
    pub prefix: Ipv4Net,
    /// The hosts; the bridge namespace is implicit.
    pub hosts: Vec<HostSpec>,
}

/// Why a [`TopologySpec`] is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// No hosts at all.
    #[error("the topology has no hosts")]
    NoHosts,
    /// The segment prefix is unusable.
    #[error("segment prefix {prefix}: {reason}")]
    InvalidPrefix {
        /// The prefix.
        prefix: Ipv4Net,
        /// Why.
        reason: &'static str,
    },
    /// A host name has bad characters or is empty.
    #[error("host name {name:?}: {reason}")]
    InvalidHostName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A host name is too long for `v-<host>` to be an interface name.
    #[error("host name {name:?} is longer than {max} bytes (v-<host> must fit in 15)")]
    HostNameTooLong {
        /// The name.
        name: String,
        /// The limit.
        max: usize,
    },
    /// A host is named like the bridge namespace.
    #[error("host name {name:?} is reserved for the bridge namespace")]
    ReservedHostName {
        /// The name.
        name: String,
    },
    /// Two hosts share a name.
    #[error("two hosts are named {name:?}")]
    DuplicateHost {
        /// The name.
        name: String,
    },
    /// More than one director.
    #[error("more than one director: {first} and {second}")]
    MoreThanOneDirector {
        /// The first director.
        first: String,
        /// Another one.
        second: String,
    },
    /// A host has no `eth0` address.
    #[error("host {host} has no address")]
    NoAddress {
        /// The host.
        host: String,
    },
    /// A host has more addresses than [`MAX_ADDRESSES_PER_HOST`].
    #[error("host {host} has {count} addresses; at most {max} are supported")]
    TooManyAddresses {
        /// The host.
        host: String,
        /// How many it has.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An `eth0` address lies outside the segment.
    #[error("host {host}: address {addr} is outside the segment {prefix}")]
    AddressOutsidePrefix {
        /// The host.
        host: String,
        /// The address.
        addr: Ipv4Addr,
        /// The segment.
        prefix: Ipv4Net,
    },
    /// An address can't be a host address (network, broadcast, loopback...).
    #[error("host {host}: {addr} cannot be used: {reason}")]
    UnusableAddress {
        /// The host.
        host: String,
        /// The address.
        addr: Ipv4Addr,
        /// Why.
        reason: &'static str,
    },
    /// An `eth0` address (or VIP) appears twice.
    #[error("address {addr} is on both {first} and {second}")]
    DuplicateAddress {
        /// The address.
        addr: Ipv4Addr,
        /// One holder.
        first: String,
        /// The other (may equal `first`).
        second: String,
    },
    /// A non-director holds a VIP on `eth0`; it would answer ARP for it.
    #[error("host {host} is not the director but holds {addr} on eth0 as a VIP")]
    VipOnNonDirector {
        /// The host.
        host: String,
        /// The VIP.
        addr: Ipv4Addr,
    },
    /// A loopback address equals some host's segment address.
    #[error("host {host}: loopback address {addr} is {owner}'s segment address")]
    LoopbackShadowsAddress {
        /// The host.
        host: String,
        /// The address.
        addr: Ipv4Addr,
        /// The host that owns it on the segment.
        owner: String,
    },
    /// The same loopback address twice on one host.
    #[error("host {host}: loopback address {addr} listed twice")]
    DuplicateLoopbackAddress {
        /// The host.
        host: String,
        /// The address.
        addr: Ipv4Addr,
    },
    /// A route's destination has host bits set.
    #[error("host {host}: route destination {dest} has host bits set")]
    RouteDestinationNotNormalized {
        /// The host.
        host: String,
        /// The destination.
        dest: Ipv4Net,
    },
    /// A route's gateway is not on the segment.
    #[error("host {host}: gateway {via} of route {dest} is not on-link ({prefix})")]
    RouteGatewayNotOnLink {
        /// The host.
        host: String,
        /// The destination.
        dest: Ipv4Net,
        /// The gateway.
        via: Ipv4Addr,
        /// The segment.
        prefix: Ipv4Net,
    },
    /// A route's gateway is the host itself.
    #[error("host {host}: gateway {via} of route {dest} is the host's own address")]
    RouteGatewayIsSelf {
        /// The host.
        host: String,
        /// The destination.
        dest: Ipv4Net,
        /// The gateway.
        via: Ipv4Addr,
    },
    /// A route's gateway is nobody's address.
    #[error("host {host}: gateway {via} of route {dest} belongs to no host")]
    RouteGatewayUnknown {
        /// The host.
        host: String,
        /// The destination.
        dest: Ipv4Net,
        /// The gateway.
        via: Ipv4Addr,
    },
    /// Two routes to the same destination on one host.
    #[error("host {host}: two routes to {dest}")]
    DuplicateRoute {
        /// The host.
        host: String,
        /// The destination.
        dest: Ipv4Net,
    },
}

impl TopologySpec {
    /// Checks everything that does not need the kernel. `apply` refuses an
    /// invalid spec before creating anything.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.check_prefix()?;
        if self.hosts.is_empty() {
            return Err(SpecError::NoHosts);
        }
        let mut names = BTreeSet::new();
        let mut director: Option<&str> = None;
        // Segment addresses and VIPs on eth0 -> holder.
        let mut owners: BTreeMap<Ipv4Addr, &str> = BTreeMap::new();
        for host in &self.hosts {
            check_host_name(&host.name)?;
            if !names.insert(host.name.as_str()) {
                return Err(SpecError::DuplicateHost {
                    name: host.name.clone(),
                });
            }
            if host.role == Role::Director {
                if let Some(first) = director {
                    return Err(SpecError::MoreThanOneDirector {
                        first: first.to_owned(),
                        second: host.name.clone(),
                    });
                }
                director = Some(&host.name);
            }
            self.check_addresses(host, &mut owners)?;
        }
        for host in &self.hosts {
            self.check_loopback(host, &owners)?;
            self.check_routes(host, &owners)?;
        }
        Ok(())
    }

    fn check_prefix(&self) -> Result<(), SpecError> {
        let reason = if self.prefix.prefix_len() > 30 {
            Some("longer than /30 leaves no room for hosts")
        } else if self.prefix.network() != self.prefix.addr() {
            Some("host bits are set")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(SpecError::InvalidPrefix {
                prefix: self.prefix,
                reason,
            }),
            None => Ok(()),
        }
    }

    fn check_addresses<'a>(
        &self,
        host: &'a HostSpec,
        owners: &mut BTreeMap<Ipv4Addr, &'a str>,
    ) -> Result<(), SpecError> {
        if host.addresses.is_empty() {
            return Err(SpecError::NoAddress {
                host: host.name.clone(),
            });
        }
        if host.addresses.len() > MAX_ADDRESSES_PER_HOST {
            return Err(SpecError::TooManyAddresses {
                host: host.name.clone(),
                count: host.addresses.len(),
                max: MAX_ADDRESSES_PER_HOST,
            });
        }
        for &addr in &host.addresses {
            if !self.prefix.contains(&addr) {
                return Err(SpecError::AddressOutsidePrefix {
                    host: host.name.clone(),
                    addr,
                    prefix: self.prefix,
                });
            }
            if addr == self.prefix.network() || addr == self.prefix.broadcast() {
                return Err(SpecError::UnusableAddress {
                    host: host.name.clone(),
                    addr,
                    reason: "network or broadcast address of the segment",
                });
            }
        }
        if !host.vips.is_empty() && host.role != Role::Director {
            return Err(SpecError::VipOnNonDirector {
                host: host.name.clone(),
                addr: host.vips[0],
            });
        }
        for &addr in &host.vips {
            check_unicast(&host.name, addr)?;
        }
        for &addr in host.addresses.iter().chain(&host.vips) {
            if let Some(first) = owners.insert(addr, &host.name) {
                return Err(SpecError::DuplicateAddress {
                    addr,
                    first: first.to_owned(),
                    second: host.name.clone(),
                });
            }
        }
        Ok(())
    }

    fn check_loopback(
        &self,
        host: &HostSpec,
        owners: &BTreeMap<Ipv4Addr, &str>,
    ) -> Result<(), SpecError> {
        let mut seen = BTreeSet::new();
        for &addr in &host.loopback_addresses {
            check_unicast(&host.name, addr)?;
            if !seen.insert(addr) {
                return Err(SpecError::DuplicateLoopbackAddress {
                    host: host.name.clone(),
                    addr,
                });
            }
            // The VIP may sit on the director's eth0 and on real servers' lo;
            // but a loopback copy of a segment address would steal its traffic.
            match owners.get(&addr) {
                Some(owner) if self.prefix.contains(&addr) => {
                    return Err(SpecError::LoopbackShadowsAddress {
                        host: host.name.clone(),
                        addr,
                        owner: (*owner).to_owned(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn check_routes(
        &self,
        host: &HostSpec,
        owners: &BTreeMap<Ipv4Addr, &str>,
    ) -> Result<(), SpecError> {
        let mut dests = BTreeSet::new();
        for route in &host.routes {
            let (dest, via) = (route.dest, route.via);
            let name = || host.name.clone();
            if dest.network() != dest.addr() {
                return Err(SpecError::RouteDestinationNotNormalized { host: name(), dest });
            }
            if !dests.insert(dest) {
                return Err(SpecError::DuplicateRoute { host: name(), dest });
            }
            if !self.prefix.contains(&via) {
                return Err(SpecError::RouteGatewayNotOnLink {
                    host: name(),
                    dest,
                    via,
                    prefix: self.prefix,
                });
            }
            match owners.get(&via) {
                Some(owner) if *owner == host.name => {
                    return Err(SpecError::RouteGatewayIsSelf {
                        host: name(),
                        dest,
                        via,
                    });
                }
                Some(_) => {}
                None => {
                    return Err(SpecError::RouteGatewayUnknown {
                        host: name(),
                        dest,
                        via,
                    });
                }
            }
        }
        Ok(())
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The director, if any.
    pub fn director(&self) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| h.role == Role::Director)
    }

    /// The hosts with `role`, in spec order.
    pub fn with_role(&self, role: Role) -> impl Iterator<Item = &HostSpec> {
        self.hosts.iter().filter(move |h| h.role == role)
    }

    /// The namespace name of `host` in this run.
    pub fn ns_name(&self, host: &str) -> String {
        netns::ns_name(&self.run, host)
    }

    /// The namespace name of the bridge.
    pub fn bridge_ns_name(&self) -> String {
        netns::ns_name(&self.run, BRIDGE_HOST)
    }

    /// The standard DR network: a director with `vip`/32 on its `eth0` and
    /// `director_addr` on the segment; real servers `rs1`, `rs2`, ... with
    /// their addresses on `eth0` and `vip`/32 on `lo`; clients with their
    /// addresses on `eth0` and a route `vip/32 via director_addr`.
    ///
    /// Why the VIP sits on the director's `eth0` (not `lo`): IPVS only needs
    /// the VIP to be a local address so that packets to it reach the
    /// `LOCAL_IN` hook where IPVS schedules them; either device does that.
    /// On `eth0` the director is, as in a real LVS-DR setup, the one host of
    /// the segment that answers ARP for the VIP, while the real servers hold
    /// it on `lo` and stay silent (`arp_ignore=1`). So a client reaches the
    /// VIP through the director whether it routes via the director's address
    /// (what this builder configures) or resolves the VIP on-link.
    pub fn dr_lab(
        run: RunId,
        vip: Ipv4Addr,
        real_servers: &[Ipv4Addr],
        clients: &[ClientSpec],
        director_addr: Ipv4Addr,
    ) -> Result<TopologySpec, SpecError> {
        let vip_route = RouteSpec {
            dest: Ipv4Net::new(vip, 32).expect("/32 is a valid prefix length"),
            via: director_addr,
        };
        let mut hosts = vec![HostSpec {
            name: "director".into(),
            role: Role::Director,
            addresses: vec![director_addr],
            vips: vec![vip],
            loopback_addresses: vec![],
            routes: vec![],
        }];
        hosts.extend(real_servers.iter().enumerate().map(|(i, &addr)| HostSpec {
            name: format!("rs{}", i + 1),
            role: Role::RealServer,
            addresses: vec![addr],
            vips: vec![],
            loopback_addresses: vec![vip],
            routes: vec![],
        }));
        hosts.extend(clients.iter().map(|c| HostSpec {
            name: c.name.clone(),
            role: Role::Client,
            addresses: c.addresses.clone(),
            vips: vec![],
            loopback_addresses: vec![],
            routes: vec![vip_route.clone()],
        }));
        let spec = TopologySpec {
            run,
            prefix: DEFAULT_PREFIX,
            hosts,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// The reference network: director, two real servers, one client with
    /// one address, all on the default addresses.
    pub fn reference(run: RunId) -> TopologySpec {
        Self::dr_lab(
            run,
            DEFAULT_VIP,
            &sequential_addresses(FIRST_REAL_SERVER, 2),
            &[ClientSpec {
                name: "client1".into(),
                addresses: vec![FIRST_CLIENT],
            }],
            DEFAULT_DIRECTOR,
        )
        .expect("the reference network is valid")
    }
}

/// `count` consecutive addresses starting at `first` (wrapping is the
/// caller's problem: validation rejects addresses outside the segment).
pub fn sequential_addresses(first: Ipv4Addr, count: usize) -> Vec<Ipv4Addr> {
    let first = u32::from(first);
    (0..count as u32)
        .map(|i| Ipv4Addr::from(first.wrapping_add(i)))
        .collect()
}

/// `count` default client addresses: 172.22.36.1 upward.
pub fn client_addresses(count: usize) -> Vec<Ipv4Addr> {
    sequential_addresses(FIRST_CLIENT, count)
}

/// The name of the bridge port (bridge-side veth) of `host`.
pub fn bridge_port_name(host: &str) -> String {
    format!("v-{host}")
}

fn check_host_name(name: &str) -> Result<(), SpecError> {
    let invalid = |reason| SpecError::InvalidHostName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name.len() > MAX_HOST_NAME_LEN {
        return Err(SpecError::HostNameTooLong {
            name: name.to_owned(),
            max: MAX_HOST_NAME_LEN,
        });
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(invalid("only a-z, 0-9 and '-' are allowed"));
    }
    if name.starts_with('-') {
        return Err(invalid("must not start with '-'"));
    }
    if name == BRIDGE_HOST {
        return Err(SpecError::ReservedHostName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

fn check_unicast(host: &str, addr: Ipv4Addr) -> Result<(), SpecError> {
    let reason = if addr.is_unspecified() {
        Some("unspecified")
    } else if addr.is_loopback() {
        Some("loopback range")
    } else if addr.is_multicast() {
        Some("multicast")
    } else if addr.is_broadcast() {
        Some("broadcast")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(SpecError::UnusableAddress {
            host: host.to_owned(),
            addr,
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn base() -> TopologySpec {
        TopologySpec::reference(RunId::from_parts(1, 1))
    }

    fn host<'a>(spec: &'a mut TopologySpec, name: &str) -> &'a mut HostSpec {
        spec.hosts.iter_mut().find(|h| h.name == name).unwrap()
    }

    #[test]
    fn reference_network_is_valid_and_standard() {
        let spec = base();
        spec.validate().unwrap();
        let names: Vec<_> = spec.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["director", "rs1", "rs2", "client1"]);
        let d = spec.director().unwrap();
        assert_eq!(d.addresses, [DEFAULT_DIRECTOR]);
        assert_eq!(d.vips, [DEFAULT_VIP]);
        let rs2 = spec.host("rs2").unwrap();
        assert_eq!(rs2.addresses, [ip("172.22.35.2")]);
        assert_eq!(rs2.loopback_addresses, [DEFAULT_VIP]);
        let c = spec.host("client1").unwrap();
        assert_eq!(c.addresses, [ip("172.22.36.1")]);
        assert_eq!(
            c.routes,
            [RouteSpec {
                dest: net("192.168.122.1/32"),
                via: DEFAULT_DIRECTOR
            }]
        );
        assert_eq!(spec.ns_name("rs1"), "ipvslab-1-1-rs1");
        assert_eq!(spec.bridge_ns_name(), "ipvslab-1-1-bridge");
    }

    #[test]
    fn thousand_client_addresses_fit_the_segment() {
        let addrs = client_addresses(1000);
        assert_eq!(addrs[0], ip("172.22.36.1"));
        assert_eq!(addrs[999], ip("172.22.39.232"));
        let spec = TopologySpec::dr_lab(
            RunId::from_parts(1, 2),
            DEFAULT_VIP,
            &sequential_addresses(FIRST_REAL_SERVER, 2),
            &[ClientSpec {
                name: "client1".into(),
                addresses: client_addresses(MAX_ADDRESSES_PER_HOST),
            }],
            DEFAULT_DIRECTOR,
        );
        assert!(spec.is_ok(), "{spec:?}");
    }

    #[test]
    fn spec_round_trips_through_json() {
        let spec = base();
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains("\"real_server\""), "{json}");
        let back: TopologySpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
    }

    type Mutate = fn(&mut TopologySpec);
    type Expect = fn(&SpecError) -> bool;

    #[test]
    fn validation_table() {
        let cases: &[(&str, Mutate, Expect)] = &[
            (
                "no hosts",
                |s| s.hosts.clear(),
                |e| *e == SpecError::NoHosts,
            ),
            (
                "prefix with host bits",
                |s| s.prefix = Ipv4Net::new(ip("172.22.1.0"), 16).unwrap(),
                |e| matches!(e, SpecError::InvalidPrefix { .. }),
            ),
            (
                "prefix /31",
                |s| s.prefix = net("172.22.0.0/31"),
                |e| matches!(e, SpecError::InvalidPrefix { .. }),
            ),
            (
                "duplicate host names",
                |s| host(s, "rs2").name = "rs1".into(),
                |e| matches!(e, SpecError::DuplicateHost { name } if name == "rs1"),
            ),
            (
                "host named like the bridge",
                |s| host(s, "rs2").name = BRIDGE_HOST.into(),
                |e| matches!(e, SpecError::ReservedHostName { .. }),
            ),
            (
                "host name too long for v-<host>",
                |s| host(s, "rs2").name = "abcdefghijklmn".into(),
                |e| matches!(e, SpecError::HostNameTooLong { max: 13, .. }),
            ),
            (
                "host name with upper case",
                |s| host(s, "rs2").name = "RS2".into(),
                |e| matches!(e, SpecError::InvalidHostName { .. }),
            ),
            (
                "host name with a slash",
                |s| host(s, "rs2").name = "a/b".into(),
                |e| matches!(e, SpecError::InvalidHostName { .. }),
            ),
            (
                "empty host name",
                |s| host(s, "rs2").name = String::new(),
                |e| matches!(e, SpecError::InvalidHostName { .. }),
            ),
            (
                "two directors",
                |s| host(s, "rs2").role = Role::Director,
                |e| {
                    matches!(e, SpecError::MoreThanOneDirector { first, second }
                    if first == "director" && second == "rs2")
                },
            ),
            (
                "host without address",
                |s| host(s, "rs1").addresses.clear(),
                |e| matches!(e, SpecError::NoAddress { host } if host == "rs1"),
            ),
            (
                "too many addresses",
                |s| host(s, "client1").addresses = client_addresses(MAX_ADDRESSES_PER_HOST + 1),
                |e| matches!(e, SpecError::TooManyAddresses { count: 4097, .. }),
            ),
            (
                "address outside the prefix",
                |s| host(s, "rs1").addresses = vec![ip("10.0.0.1")],
                |e| matches!(e, SpecError::AddressOutsidePrefix { .. }),
            ),
            (
                "network address of the segment",
                |s| host(s, "rs1").addresses = vec![ip("172.22.0.0")],
                |e| matches!(e, SpecError::UnusableAddress { .. }),
            ),
            (
                "broadcast address of the segment",
                |s| host(s, "rs1").addresses = vec![ip("172.22.255.255")],
                |e| matches!(e, SpecError::UnusableAddress { .. }),
            ),
            (
                "duplicate address across hosts",
                |s| host(s, "client1").addresses.push(ip("172.22.35.2")),
                |e| {
                    matches!(e, SpecError::DuplicateAddress { first, second, .. }
                    if first == "rs2" && second == "client1")
                },
            ),
            (
                "duplicate address within a host",
                |s| host(s, "client1").addresses.push(ip("172.22.36.1")),
                |e| matches!(e, SpecError::DuplicateAddress { .. }),
            ),
            (
                "VIP on a real server's eth0",
                |s| host(s, "rs1").vips.push(DEFAULT_VIP),
                |e| matches!(e, SpecError::VipOnNonDirector { .. }),
            ),
            (
                "multicast VIP",
                |s| host(s, "director").vips = vec![ip("224.0.0.1")],
                |e| matches!(e, SpecError::UnusableAddress { .. }),
            ),
            (
                "loopback address shadowing another host",
                |s| host(s, "rs1").loopback_addresses.push(ip("172.22.35.2")),
                |e| matches!(e, SpecError::LoopbackShadowsAddress { owner, .. } if owner == "rs2"),
            ),
            (
                "loopback address twice",
                |s| host(s, "rs1").loopback_addresses.push(DEFAULT_VIP),
                |e| matches!(e, SpecError::DuplicateLoopbackAddress { .. }),
            ),
            (
                "loopback range on lo",
                |s| host(s, "rs1").loopback_addresses.push(ip("127.0.0.2")),
                |e| matches!(e, SpecError::UnusableAddress { .. }),
            ),
            (
                "route gateway not on-link",
                |s| host(s, "client1").routes[0].via = ip("10.1.1.1"),
                |e| matches!(e, SpecError::RouteGatewayNotOnLink { .. }),
            ),
            (
                "route gateway is nobody",
                |s| host(s, "client1").routes[0].via = ip("172.22.99.99"),
                |e| matches!(e, SpecError::RouteGatewayUnknown { .. }),
            ),
            (
                "route gateway is self",
                |s| host(s, "client1").routes[0].via = ip("172.22.36.1"),
                |e| matches!(e, SpecError::RouteGatewayIsSelf { .. }),
            ),
            (
                "route destination with host bits",
                |s| host(s, "client1").routes[0].dest = Ipv4Net::new(ip("10.0.0.1"), 8).unwrap(),
                |e| matches!(e, SpecError::RouteDestinationNotNormalized { .. }),
            ),
            (
                "duplicate route",
                |s| {
                    let c = host(s, "client1");
                    let r = c.routes[0].clone();
                    c.routes.push(r);
                },
                |e| matches!(e, SpecError::DuplicateRoute { .. }),
            ),
        ];
        for (label, mutate, expect) in cases {
            let mut spec = base();
            mutate(&mut spec);
            match spec.validate() {
                Ok(()) => panic!("{label}: accepted"),
                Err(e) => assert!(expect(&e), "{label}: unexpected error {e:?}"),
            }
        }
    }

    #[test]
    fn valid_variations_are_accepted() {
        let cases: &[(&str, Mutate)] = &[
            ("no director", |s| {
                s.hosts.retain(|h| h.role != Role::Director)
            }),
            ("dashes in names", |s| host(s, "rs2").name = "rs-2".into()),
            ("13-byte name", |s| {
                host(s, "rs2").name = "abcdefghijklm".into()
            }),
            ("second loopback address", |s| {
                host(s, "rs1").loopback_addresses.push(ip("192.168.122.2"))
            }),
        ];
        for (label, mutate) in cases {
            let mut spec = base();
            // Routes via the director must go when the director goes.
            mutate(&mut spec);
            if spec.director().is_none() {
                spec.hosts.iter_mut().for_each(|h| h.routes.clear());
            }
            assert_eq!(spec.validate(), Ok(()), "{label}");
        }
    }
}
