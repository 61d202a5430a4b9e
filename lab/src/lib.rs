//! ipvs-lab: a network-namespace lab for Linux IPVS direct routing in front of
//! gRPC servers.
//!
//! Each module separates the pure description from its kernel effects.
//! `docs/ARCHITECTURE.md` tells the life of a run and who owns what.
//!
//! # Module order
//!
//! A module imports only modules listed before it (`make lint` checks this
//! with `lab/tests/architecture.rs`, which reads this list):
//!
//! 1. [`exit`]: exit codes scripts can rely on.
//! 2. [`report`]: the JSON model, Markdown and SVG rendering, baseline
//!    comparison (pure).
//! 3. [`outputs`]: report and JSON paths, claimed before anything is built.
//! 4. [`procstat`]: `/proc/<pid>/stat` and `/proc/stat` parsed: CPU time of
//!    a process and of the kernel by kind (softirq is where IPVS works).
//! 5. [`netns`]: named network namespaces owned by RAII guards, unique per run.
//! 6. [`topology`]: the validated network spec ([`topology::spec`]) and its
//!    application over rtnetlink ([`topology::apply`](mod@topology::apply)).
//! 7. [`dr`]: the real-server and director tweaks that direct routing needs.
//! 8. [`faults`]: link down/up and blackholes inside the lab's namespaces.
//! 9. [`ipvs`]: IPVS over generic netlink: constants mirroring `linux/ip_vs.h`,
//!    message encoding without I/O, and the `Handle` that talks to the kernel.
//! 10. [`runner`]: run on the host kernel, or inside User-Mode Linux when the
//!     host has no IPVS.
//! 11. [`process`]: child processes in namespaces, killed and reaped on drop.
//! 12. [`health`]: keepalived-style health checkers (TCP_CHECK, gRPC health)
//!     running in the director.
//! 13. [`keepalived`]: keepalived.conf parse, render, and Debian's keepalived
//!     run in the director.
//! 14. [`network`]: a lab network up and down: the [`network::Plan`] applied.
//! 15. [`scenario`]: scenario files: parse, validate, plan, run, measure,
//!     expect; [`scenario::scheduler`] judges each IPVS scheduler by its own
//!     promise (hash mapping, remap on a change, weight-0 drain, least
//!     connection).
//!
//! The CLI (`lab/src/cli/`, the verbs and `lab check`) belongs to the `lab`
//! binary, above all of these.

// Every module that needs no `unsafe` forbids it; the others (netns,
// procstat's sysconf, runner::guest, runner::uml, topology::apply) explain each block in a
// `SAFETY:` comment.
#[forbid(unsafe_code)]
pub mod dr;
#[forbid(unsafe_code)]
pub mod exit;
#[forbid(unsafe_code)]
pub mod faults;
#[forbid(unsafe_code)]
pub mod health;
#[forbid(unsafe_code)]
pub mod ipvs;
#[forbid(unsafe_code)]
pub mod keepalived;
pub mod netns;
#[forbid(unsafe_code)]
pub mod network;
#[forbid(unsafe_code)]
pub mod outputs;
#[forbid(unsafe_code)]
pub mod process;
pub mod procstat;
#[forbid(unsafe_code)]
pub mod report;
pub mod runner;
#[forbid(unsafe_code)]
pub mod scenario;
pub mod topology;

// A dependency of the `lab` binary only (a package's library and binary
// share one dependency list).
use tracing_subscriber as _;
// A dev-dependency of `benches/hot_pure.rs` only; unit tests share the list.
#[cfg(test)]
use criterion as _;

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
