//! keepalived-style health checking, run by the lab itself inside the
//! director's namespace.
//!
//! - [`state`]: keepalived's rules as pure state machines (TCP_CHECK retry
//!   semantics, alpha mode, quorum, hysteresis, sorry server), unit-tested.
//! - [`config`]: what to check and how, built from a scenario's plan.
//! - [`run`]: the checker threads, the probes (TCP connect, or the gRPC
//!   `grpc.health.v1` service that keepalived lacks) and the IPVS changes.
//!
//! Every state change is a [`run::HealthEvent`] with its instant, so the
//! report can put detection times next to the fault that caused them.

pub mod config;
pub mod run;
pub mod state;

pub use config::{CheckKind, HealthPlan, ServerCheck};
pub use run::{HealthChecker, HealthError, HealthEvent, HealthEventKind};
pub use state::{CheckTiming, CheckerState, Health, Pool, WorstCase};
