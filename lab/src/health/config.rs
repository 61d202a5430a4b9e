//! What the checker is told: the service, and per real server what to probe,
//! how often, and what to do when it fails. Pure data; the scenario's plan
//! builds it ([`crate::scenario::plan::health_plan`]).

use std::net::SocketAddr;

use super::state::CheckTiming;
use crate::ipvs::{Destination, Service};

/// The kind of probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// keepalived's TCP_CHECK: the connect alone decides.
    Tcp,
    /// `grpc.health.v1.Health/Check` must answer SERVING (keepalived has no
    /// such checker).
    Grpc {
        /// The service name asked about; empty means the whole server.
        service: String,
    },
}

impl CheckKind {
    /// keepalived-style name for events and reports.
    pub fn label(&self) -> &'static str {
        match self {
            CheckKind::Tcp => "TCP_CHECK",
            CheckKind::Grpc { .. } => "GRPC_CHECK",
        }
    }
}

/// One real server's checker.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerCheck {
    /// The lab's name for the server (`rs1`).
    pub name: String,
    /// Its IPVS destination, with the configured weight.
    pub destination: Destination,
    /// Where the probe connects (`connect_ip:connect_port`).
    pub connect: SocketAddr,
    /// The probe.
    pub kind: CheckKind,
    /// keepalived's timing settings.
    pub timing: CheckTiming,
    /// Set weight 0 instead of removing the destination on failure.
    pub inhibit_on_failure: bool,
}

impl ServerCheck {
    /// The configured weight, as the quorum counts it.
    pub fn weight(&self) -> u32 {
        self.destination.weight.max(0) as u32
    }
}

/// Everything the checker of one virtual server needs.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthPlan {
    /// The IPVS service the real servers belong to.
    pub service: Service,
    /// One checker per real server that has a check.
    pub checks: Vec<ServerCheck>,
    /// Minimum live weight (keepalived's default 1).
    pub quorum: u32,
    /// Quorum flap damper (keepalived's default 0).
    pub hysteresis: u32,
    /// Added while the quorum is lost.
    pub sorry_server: Option<Destination>,
}
