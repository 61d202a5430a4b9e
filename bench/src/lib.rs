//! bench: the `loadgen` gRPC load generator for ipvs-lab.
//!
//! It measures *who* answered each RPC (server, connection, source address)
//! as well as how fast, because IPVS balances connections, not RPCs.
//! Layout:
//! - [`loadgen`]: flags ([`loadgen::LoadgenArgs`]), the run
//!   ([`loadgen::run`]) and the program ([`loadgen::main_with_args`]);
//! - [`report`]: [`report::LoadReport`], the `--json` schema, and `.hgrm` output;
//! - [`record`]: per-call attribution and histograms;
//! - [`method`]: generic mode, any unary method from a `.proto` or server
//!   reflection, the request from JSON, encoded once;
//! - [`h2`]: a lean gRPC unary client on the `h2` crate (no tower, no
//!   per-request tasks);
//! - [`connects`]: connect failures by cause, connect latency and SYN-retry
//!   buckets, how connections ended, the paced connect schedule;
//! - [`deadline`]: per-caller RPC deadlines without a timer per call;
//! - [`wire`]: pre-encoded requests and an allocation-free reply parser;
//! - [`sources`]: `--source-ips` lists and CIDR blocks.

// No unsafe code in this crate.
#![forbid(unsafe_code)]
// The unit-test build also links the dev-dependencies of the integration
// tests; unused dependencies are checked in the normal build.
#![cfg_attr(test, allow(unused_crate_dependencies))]

pub mod connects;
pub mod deadline;
pub mod h2;
pub mod loadgen;
pub mod method;
pub mod record;
pub mod report;
pub mod sources;
pub mod wire;
