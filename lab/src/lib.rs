//! ipvs-lab: a network-namespace lab for Linux IPVS direct routing in front of
//! gRPC servers.
//!
//! Layout (each module separates the pure description from its kernel effects):
//! - [`netns`]: named network namespaces owned by RAII guards, unique per run.
//! - [`topology`]: the validated network spec ([`topology::spec`]) and its
//!   application over rtnetlink ([`topology::apply`]).
//! - [`ipvs`]: IPVS over generic netlink: constants mirroring `linux/ip_vs.h`,
//!   message encoding without I/O, and the `Handle` that talks to the kernel.
//! - [`dr`]: the real-server and director tweaks that direct routing needs.
//! - [`health`]: keepalived-style health checkers (TCP_CHECK, gRPC health)
//!   running in the director.
//! - [`faults`]: link down/up and blackholes inside the lab's namespaces.
//! - [`scenario`]: scenario files: parse, validate, plan, run, measure, expect.
//! - [`report`]: the JSON model, Markdown and SVG rendering, baseline comparison.
//! - [`runner`]: run on the host kernel, or inside User-Mode Linux when the host
//!   has no IPVS.
//! - [`outputs`]: report and JSON paths, claimed before anything is built.
//! - [`exit`]: exit codes scripts can rely on.

pub mod bringup;
pub mod dr;
pub mod exit;
pub mod faults;
pub mod health;
pub mod ipvs;
pub mod keepalived;
pub mod netns;
pub mod outputs;
pub mod process;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod topology;

/// Formats an error with its sources, `a: b: c`: the lab's errors keep the
/// errno or parse error as `#[source]`, and a message needs all of them.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        s.push_str(": ");
        s.push_str(&src.to_string());
        cur = src.source();
    }
    s
}
