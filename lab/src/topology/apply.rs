//! Applies a [`TopologySpec`] to the kernel over rtnetlink, and owns the result.
//!
//! Every netlink socket is opened by a thread inside the namespace it talks to
//! (a netlink socket acts on the namespace it was created in, for its whole
//! life) and then driven on the caller's tokio runtime, so no thread of the
//! runtime ever changes namespace. The root namespace is never touched: the
//! veth pairs are created from the bridge namespace with their peer placed
//! straight into the host namespace by fd
//! (`ip link add v-<host> master br0 up type veth peer name eth0 netns <fd>`).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt, TryStreamExt};
use rtnetlink::packet_route::link::{
    BridgePortState, BridgeStpState, InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoVeth,
    LinkAttribute, LinkInfo, LinkMessage, State,
};
use rtnetlink::sys::{Socket, TokioSocket, protocols::NETLINK_ROUTE};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use super::spec::{
    BRIDGE_IFNAME, HOST_IFNAME, HostSpec, SpecError, TopologySpec, bridge_port_name,
};
use crate::netns::{NetNs, NetnsError};

/// How many address requests are in flight at once on one socket. Acks are
/// ~36 bytes, so 128 outstanding stay far below the socket's receive buffer.
const ADDRESS_WINDOW: usize = 128;
/// How often [`apply`] re-reads link states while waiting for them to be up.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Errors of bring-up and teardown. Each names the namespace and the object.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The spec is invalid; nothing was created.
    #[error("invalid topology")]
    Spec(#[from] SpecError),
    /// A namespace operation failed.
    #[error("namespace operation failed")]
    Netns(#[from] NetnsError),
    /// Opening the rtnetlink socket inside a namespace failed.
    #[error("namespace {ns}: opening an rtnetlink socket failed")]
    Socket {
        /// The namespace.
        ns: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A netlink request failed (the source carries the errno).
    #[error("namespace {ns}: {op} {object} failed")]
    Netlink {
        /// The namespace.
        ns: String,
        /// The `ip` command the request equals, e.g. `ip address add`.
        op: &'static str,
        /// The interface, address or route.
        object: String,
        /// The netlink error (boxed: it is large).
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// An interface that should exist does not.
    #[error("namespace {ns}: interface {ifname} not found")]
    LinkNotFound {
        /// The namespace.
        ns: String,
        /// The interface.
        ifname: String,
    },
    /// An interface did not come up in time.
    #[error("namespace {ns}: {ifname} not up after {waited:?} (last seen: {last})")]
    NotUp {
        /// The namespace.
        ns: String,
        /// The interface.
        ifname: String,
        /// How long [`apply`] waited.
        waited: Duration,
        /// Its last observed operstate / bridge port state.
        last: String,
    },
    /// Some namespaces could not be removed; the first error is the source.
    #[error("teardown left {count} namespace(s) behind")]
    Teardown {
        /// How many removals failed.
        count: usize,
        /// The first failure.
        #[source]
        first: NetnsError,
    },
}

/// Tuning of [`apply_with`].
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// How long to wait for every port and `eth0` to be operationally up.
    pub up_timeout: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            up_timeout: Duration::from_secs(10),
        }
    }
}

/// How long each phase of bring-up took.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct BringUpTimings {
    /// Creating the namespaces (bridge and hosts).
    pub namespaces: Duration,
    /// Creating the bridge and the veth pairs.
    pub links: Duration,
    /// `lo` up, addresses and routes in every host.
    pub addresses: Duration,
    /// Waiting until every port and `eth0` is up and forwarding.
    pub wait_up: Duration,
    /// All of bring-up.
    pub total: Duration,
}

/// What [`Topology::teardown`] measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct TeardownTimings {
    /// Unmounting and unlinking every namespace. The kernel frees the
    /// namespaces (and their devices) asynchronously after that.
    pub total: Duration,
}

/// A live lab network: owns every namespace it created.
///
/// Dropping it removes the namespaces (hosts first, then the bridge: fields
/// drop in declaration order); [`Topology::teardown`] does the same and
/// reports errors; [`Topology::keep`] leaves the network in place.
#[derive(Debug)]
pub struct Topology {
    spec: TopologySpec,
    /// Same order as `spec.hosts`. Declared before `bridge`: dropped first.
    hosts: Vec<NetNs>,
    bridge: NetNs,
    timings: BringUpTimings,
}

impl Topology {
    /// The spec this network was built from.
    pub fn spec(&self) -> &TopologySpec {
        &self.spec
    }

    /// The namespace of host `name`.
    pub fn host(&self, name: &str) -> Option<&NetNs> {
        let i = self.spec.hosts.iter().position(|h| h.name == name)?;
        self.hosts.get(i)
    }

    /// Every host with its namespace, in spec order.
    pub fn hosts(&self) -> impl Iterator<Item = (&HostSpec, &NetNs)> {
        self.spec.hosts.iter().zip(&self.hosts)
    }

    /// The bridge namespace.
    pub fn bridge(&self) -> &NetNs {
        &self.bridge
    }

    /// How long bring-up took.
    pub fn timings(&self) -> BringUpTimings {
        self.timings
    }

    /// Removes every namespace (hosts, then the bridge), carrying on past
    /// failures; returns the first failure.
    pub fn teardown(self) -> Result<TeardownTimings, TopologyError> {
        let start = Instant::now();
        let mut failures = Vec::new();
        for ns in self.hosts.into_iter().chain([self.bridge]) {
            if let Err(e) = ns.remove() {
                failures.push(e);
            }
        }
        let timings = TeardownTimings {
            total: start.elapsed(),
        };
        let count = failures.len();
        match failures.into_iter().next() {
            None => Ok(timings),
            Some(first) => Err(TopologyError::Teardown { count, first }),
        }
    }

    /// Takes ownership of a network that [`Topology::keep`] left in place
    /// (`lab down`, `lab exec`): opens the bridge and host namespaces of
    /// `spec`. Nothing is created; the returned guard removes them on drop.
    pub fn adopt(spec: TopologySpec) -> Result<Topology, TopologyError> {
        spec.validate()?;
        let bridge = NetNs::adopt(&spec.bridge_ns_name())?;
        let hosts = spec
            .hosts
            .iter()
            .map(|h| NetNs::adopt(&spec.ns_name(&h.name)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Topology {
            spec,
            hosts,
            bridge,
            timings: BringUpTimings::default(),
        })
    }

    /// Disarms every guard and returns the spec: the network outlives this
    /// process (`lab up`; pair it with [`crate::netns::mark_kept`]).
    pub fn keep(self) -> TopologySpec {
        for ns in self.hosts {
            ns.keep();
        }
        self.bridge.keep();
        self.spec
    }
}

/// Builds the network described by `spec` with default options; see
/// [`apply_with`].
pub async fn apply(spec: &TopologySpec) -> Result<Topology, TopologyError> {
    apply_with(spec, &ApplyOptions::default()).await
}

/// Builds the network described by `spec`:
/// 1. validates the spec (nothing is created for an invalid one);
/// 2. creates the bridge namespace and one namespace per host;
/// 3. in the bridge namespace: `br0` (STP off, forward delay 0, up) and one
///    veth pair per host, its bridge end `v-<host>` enslaved and up, its
///    other end created directly in the host namespace as `eth0` (set up
///    from inside the host namespace in step 4);
/// 4. in every host: `lo` up, the `eth0` addresses (pipelined), the `/32`
///    VIPs, the loopback addresses and the routes;
/// 5. waits (bounded polling) until `br0`, every port and every `eth0` are
///    operationally up and every port forwards. A port comes up only when
///    the kernel's linkwatch work runs, which can be ~1 s after the link was
///    set up; traffic sent before that is dropped (a lost first SYN costs a
///    1 s retransmit), so bring-up ends only when the segment really works.
///
/// On any error, everything created so far is removed before returning.
/// Must be called within a tokio runtime (current-thread or multi-thread).
pub async fn apply_with(
    spec: &TopologySpec,
    options: &ApplyOptions,
) -> Result<Topology, TopologyError> {
    spec.validate()?;
    let start = Instant::now();
    let mut timings = BringUpTimings::default();

    // Guards first: if anything below fails, dropping them rolls back.
    let bridge = NetNs::create(&spec.bridge_ns_name())?;
    let mut hosts = Vec::with_capacity(spec.hosts.len());
    for host in &spec.hosts {
        hosts.push(NetNs::create(&spec.ns_name(&host.name))?);
    }
    timings.namespaces = start.elapsed();

    let phase = Instant::now();
    let br_nl = Netlink::connect(&bridge)?;
    br_nl.set_up("lo").await?;
    br_nl.create_bridge().await?;
    let br_index = br_nl.index(BRIDGE_IFNAME).await?;
    futures::future::try_join_all(
        spec.hosts
            .iter()
            .zip(&hosts)
            .map(|(host, ns)| br_nl.create_port(&host.name, br_index, ns)),
    )
    .await?;
    timings.links = phase.elapsed();

    let phase = Instant::now();
    let host_nls = hosts
        .iter()
        .map(Netlink::connect)
        .collect::<Result<Vec<_>, _>>()?;
    futures::future::try_join_all(
        spec.hosts
            .iter()
            .zip(&host_nls)
            .map(|(host, nl)| configure_host(spec, host, nl)),
    )
    .await?;
    timings.addresses = phase.elapsed();

    let phase = Instant::now();
    let deadline = Instant::now() + options.up_timeout;
    let ports: Vec<String> = spec
        .hosts
        .iter()
        .map(|h| bridge_port_name(&h.name))
        .collect();
    wait_bridge_up(&br_nl, &ports, deadline, options.up_timeout).await?;
    futures::future::try_join_all(
        host_nls
            .iter()
            .map(|nl| wait_link_up(nl, HOST_IFNAME, deadline, options.up_timeout)),
    )
    .await?;
    timings.wait_up = phase.elapsed();
    timings.total = start.elapsed();

    Ok(Topology {
        spec: spec.clone(),
        hosts,
        bridge,
        timings,
    })
}

async fn configure_host(
    spec: &TopologySpec,
    host: &HostSpec,
    nl: &Netlink,
) -> Result<(), TopologyError> {
    nl.set_up("lo").await?;
    nl.set_up(HOST_IFNAME).await?;
    let eth0 = nl.index(HOST_IFNAME).await?;
    let lo = nl.index("lo").await?;
    let plen = spec.prefix.prefix_len();
    // The primary first: the kernel makes the first address of a subnet the
    // primary (default source) and the others secondaries.
    let (primary, rest) = host
        .addresses
        .split_first()
        .expect("validated: every host has an address");
    nl.add_address(eth0, HOST_IFNAME, *primary, plen).await?;
    let extra = rest
        .iter()
        .map(|&a| (eth0, HOST_IFNAME, a, plen))
        .chain(host.vips.iter().map(|&a| (eth0, HOST_IFNAME, a, 32)))
        .chain(host.loopback_addresses.iter().map(|&a| (lo, "lo", a, 32)));
    stream::iter(extra)
        .map(|(index, ifname, addr, plen)| nl.add_address(index, ifname, addr, plen))
        .buffer_unordered(ADDRESS_WINDOW)
        .try_collect::<()>()
        .await?;
    for route in &host.routes {
        nl.add_route(eth0, route.dest.addr(), route.dest.prefix_len(), route.via)
            .await?;
    }
    Ok(())
}

async fn wait_bridge_up(
    nl: &Netlink,
    ports: &[String],
    deadline: Instant,
    timeout: Duration,
) -> Result<(), TopologyError> {
    poll_until(deadline, timeout, &nl.ns, || async {
        let links = nl.dump_links().await?;
        let mut pending = None;
        for name in std::iter::once(BRIDGE_IFNAME).chain(ports.iter().map(String::as_str)) {
            let Some(link) = links.iter().find(|l| link_name(l) == Some(name)) else {
                return Err(TopologyError::LinkNotFound {
                    ns: nl.ns.clone(),
                    ifname: name.to_owned(),
                });
            };
            let oper = oper_state(link);
            let port = port_state(link);
            let ready = oper == Some(State::Up)
                && (name == BRIDGE_IFNAME || port == Some(BridgePortState::Forwarding));
            if !ready && pending.is_none() {
                pending = Some((
                    name.to_owned(),
                    format!("operstate {oper:?}, port {port:?}"),
                ));
            }
        }
        Ok(pending)
    })
    .await
}

async fn wait_link_up(
    nl: &Netlink,
    ifname: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), TopologyError> {
    poll_until(deadline, timeout, &nl.ns, || async {
        let link = nl.get_link(ifname).await?;
        let oper = oper_state(&link);
        Ok((oper != Some(State::Up)).then(|| (ifname.to_owned(), format!("operstate {oper:?}"))))
    })
    .await
}

/// Calls `check` until it reports nothing pending (`Ok(None)`) or the
/// deadline passes; `Some((ifname, state))` names what is not ready yet.
async fn poll_until<F, Fut>(
    deadline: Instant,
    timeout: Duration,
    ns: &str,
    mut check: F,
) -> Result<(), TopologyError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<(String, String)>, TopologyError>>,
{
    loop {
        match check().await? {
            None => return Ok(()),
            Some((ifname, last)) if Instant::now() >= deadline => {
                return Err(TopologyError::NotUp {
                    ns: ns.to_owned(),
                    ifname,
                    waited: timeout,
                    last,
                });
            }
            Some(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

fn link_name(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

fn oper_state(link: &LinkMessage) -> Option<State> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::OperState(s) => Some(*s),
        _ => None,
    })
}

fn port_state(link: &LinkMessage) -> Option<BridgePortState> {
    link.attributes
        .iter()
        .filter_map(|a| match a {
            LinkAttribute::LinkInfo(infos) => Some(infos),
            _ => None,
        })
        .flatten()
        .filter_map(|i| match i {
            LinkInfo::PortData(InfoPortData::BridgePort(p)) => Some(p),
            _ => None,
        })
        .flatten()
        .find_map(|p| match p {
            InfoBridgePort::State(s) => Some(*s),
            _ => None,
        })
}

/// An rtnetlink connection bound to one namespace. Dropping it stops the
/// connection task and closes the socket, which would otherwise keep the
/// namespace alive.
struct Netlink {
    ns: String,
    handle: Handle,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Netlink {
    /// Opens the socket on a thread inside `ns` and drives it here.
    fn connect(ns: &NetNs) -> Result<Netlink, TopologyError> {
        let name = ns.name().to_owned();
        let socket_err = |source| TopologyError::Socket {
            ns: name.clone(),
            source,
        };
        let socket = ns
            .run(|| -> std::io::Result<Socket> {
                let socket = Socket::new(NETLINK_ROUTE)?;
                // Extended acks give netlink errors the kernel's message.
                socket.set_ext_ack(true)?;
                Ok(socket)
            })?
            .map_err(socket_err)?;
        // SAFETY: into_raw_fd hands over the socket's sole ownership; this
        // registers it with the current runtime's reactor.
        let socket = unsafe { TokioSocket::from_raw_fd(socket.into_raw_fd()) };
        let (connection, handle, _) = rtnetlink::from_socket(socket);
        Ok(Netlink {
            ns: name,
            handle,
            task: tokio::spawn(connection),
        })
    }

    fn err(
        &self,
        op: &'static str,
        object: impl Into<String>,
    ) -> impl FnOnce(rtnetlink::Error) -> TopologyError {
        let ns = self.ns.clone();
        let object = object.into();
        move |source| TopologyError::Netlink {
            ns,
            op,
            object,
            source: Box::new(source),
        }
    }

    /// `ip link show <ifname>`.
    async fn get_link(&self, ifname: &str) -> Result<LinkMessage, TopologyError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(ifname.to_owned())
            .execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(link),
            Ok(None) => Err(TopologyError::LinkNotFound {
                ns: self.ns.clone(),
                ifname: ifname.to_owned(),
            }),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => {
                Err(TopologyError::LinkNotFound {
                    ns: self.ns.clone(),
                    ifname: ifname.to_owned(),
                })
            }
            Err(e) => Err(self.err("ip link show", ifname)(e)),
        }
    }

    /// `ip link show`.
    async fn dump_links(&self) -> Result<Vec<LinkMessage>, TopologyError> {
        self.handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(self.err("ip link show", "(all)"))
    }

    async fn index(&self, ifname: &str) -> Result<u32, TopologyError> {
        Ok(self.get_link(ifname).await?.header.index)
    }

    /// `ip link set <ifname> up`.
    async fn set_up(&self, ifname: &str) -> Result<(), TopologyError> {
        let index = self.index(ifname).await?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(self.err("ip link set up", ifname))
    }

    /// `ip link add br0 up type bridge stp_state 0 forward_delay 0 mcast_snooping 0`.
    ///
    /// With STP off a port forwards as soon as it has carrier; forward delay 0
    /// makes that hold even if someone turns STP on. Multicast snooping is
    /// irrelevant to the lab's unicast traffic and only adds IGMP/MLD work.
    async fn create_bridge(&self) -> Result<(), TopologyError> {
        self.handle
            .link()
            .add(
                LinkBridge::new(BRIDGE_IFNAME)
                    .stp_state(BridgeStpState::Disabled)
                    .forward_delay(0)
                    .mcast_snooping(false)
                    .build(),
            )
            .execute()
            .await
            .map_err(self.err("ip link add type bridge", BRIDGE_IFNAME))
    }

    /// `ip link add v-<host> master br0 up type veth peer name eth0 netns <ns>`:
    /// one request creates both ends, the peer directly inside the host
    /// namespace (so it never exists in the bridge's, nor in the root one).
    ///
    /// The peer is *not* flagged up here: the kernel configures the peer
    /// before it links the two ends, and opening a veth without its peer
    /// fails (`veth_open` returns `ENOTCONN`). `configure_host` sets `eth0`
    /// up from inside the host namespace instead.
    async fn create_port(
        &self,
        host: &str,
        bridge_index: u32,
        host_ns: &NetNs,
    ) -> Result<(), TopologyError> {
        let port = bridge_port_name(host);
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(HOST_IFNAME)
            .setns_by_fd(host_ns.fd().as_raw_fd())
            .build();
        let message = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(port.clone())
            .controller(bridge_index)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(self.err("ip link add type veth", port))
    }

    /// `ip address add <addr>/<plen> dev <ifname>`.
    async fn add_address(
        &self,
        index: u32,
        ifname: &str,
        addr: Ipv4Addr,
        plen: u8,
    ) -> Result<(), TopologyError> {
        self.handle
            .address()
            .add(index, IpAddr::V4(addr), plen)
            .execute()
            .await
            .map_err(self.err("ip address add", format!("{addr}/{plen} dev {ifname}")))
    }

    /// `ip route add <dest>/<plen> via <via> dev eth0`.
    async fn add_route(
        &self,
        index: u32,
        dest: Ipv4Addr,
        plen: u8,
        via: Ipv4Addr,
    ) -> Result<(), TopologyError> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dest, plen)
            .gateway(via)
            .output_interface(index)
            .build();
        self.handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(self.err("ip route add", format!("{dest}/{plen} via {via}")))
    }
}
