//! IPVS over generic netlink, in the rust-netlink style: the wire format is
//! kept apart from the effects.
//!
//! - [`consts`]: the numbers of `linux/ip_vs.h`.
//! - [`types`]: pure data (services, destinations, counters), serde-ready.
//! - [`message`]: services and destinations to and from netlink attributes,
//!   no I/O, golden-byte tested.
//! - [`handle`]: [`IpvsHandle`], the socket that talks to the kernel IPVS of
//!   one network namespace; one method per `ipvsadm` operation.
//! - [`conntable`]: the connection table of `/proc/net/ip_vs_conn`, which is
//!   not available over netlink.
//! - [`connlog`]: every mapping the connection table showed over a run's
//!   samples, with first and last seen times (for attribution).
//! - [`format`](mod@format): `ipvsadm -Ln` and `ipvsadm -Ln --stats`, byte for byte.

pub mod connlog;
pub mod conntable;
pub mod consts;
pub mod format;
pub mod handle;
pub mod message;
pub mod types;

pub use connlog::{ConnLife, ConnLog};
pub use conntable::{ConnEntry, ConnTableError, read_conn_table};
pub use handle::{IpvsError, IpvsHandle, Op};
pub use types::{
    Destination, DestinationEntry, ForwardMethod, IpvsInfo, IpvsTable, Persistence, Protocol,
    Service, ServiceEntry, ServiceTable, Stats, Timeouts,
};
