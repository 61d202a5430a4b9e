//! grpc-demo: a gRPC server that tells every caller *who* answered, and a
//! client library that can connect from a chosen source address.
//!
//! IPVS balances TCP connections, not RPCs. To make that visible, each reply
//! names the real server, the connection it travelled on and the client
//! address the server saw. Layout:
//!
//! - [`pb`]: generated protobuf/tonic code for `proto/demo.proto`.
//! - [`server`]: the `Demo` service, health and reflection, the accept loop
//!   with per-connection ids and `max_connection_age`, and the CLI
//!   ([`server::ServerArgs`] and its `to_args`, [`server::main_with_args`]);
//!   the ready line ([`server::READY_LINE_PREFIX`]) it prints once it
//!   accepts connections.
//! - [`client`]: [`client::connect_from`], channels bound to a source address.
//! - [`duration`]: the one duration syntax (humantime's) of every CLI.
//! - [`cli`]: usage errors (exit 64), the `--threads` runtime, and
//!   [`cli::parse_args`] for flags structs.

// No unsafe code in this crate: sockets and signals go through nix.
#![forbid(unsafe_code)]
// The unit-test build also links the dev-dependencies of the integration
// tests; unused dependencies are checked in the normal build.
#![cfg_attr(test, allow(unused_crate_dependencies))]

pub mod cli;
pub mod client;
pub mod duration;
pub mod server;

/// Generated protobuf messages and tonic stubs for `ipvslab.demo.v1`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("ipvslab.demo.v1");
}

/// Encoded `FileDescriptorSet` of `demo.proto`, served by reflection so that
/// tools such as `grpcurl` work without the proto file.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/demo_descriptor.bin"));

/// Full path of the `WhoAmI` method, as used on the wire (`:path`). Load
/// generators that bypass the generated client (and h2load) need it.
pub const WHOAMI_PATH: &str = "/ipvslab.demo.v1.Demo/WhoAmI";

/// Full path of the `Stats` method.
pub const STATS_PATH: &str = "/ipvslab.demo.v1.Demo/Stats";
