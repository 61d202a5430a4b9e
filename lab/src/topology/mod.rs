//! The lab network: a validated description ([`spec`]) and its application
//! to the kernel over rtnetlink ([`apply`](mod@apply)).
//!
//! The shape is always one L2 segment: a bridge `br0` in its own namespace,
//! and one namespace per host whose `eth0` is a veth into that bridge.

pub mod apply;
#[forbid(unsafe_code)]
pub mod spec;

pub use apply::{
    ApplyOptions, BringUpTimings, TeardownTimings, Topology, TopologyError, apply, apply_with,
};
pub use spec::{ClientSpec, HostSpec, Role, RouteSpec, SpecError, TopologySpec};
