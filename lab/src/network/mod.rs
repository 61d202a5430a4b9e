//! A running lab network: the topology, the DR tweaks and the IPVS service of
//! a [`Plan`], owned by one guard. [`plan`] holds what it is built from.
//!
//! Teardown order is declared, not accidental: IPVS is flushed first (so no
//! packet is forwarded to a server that is going away), then the namespaces
//! go (hosts, then the bridge). Processes started in the namespaces are owned
//! by their own guards, which the caller drops before this one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ipvs::{IpvsError, IpvsHandle};
use crate::netns::{NetNs, NetnsError};
use crate::topology::{Topology, TopologyError};

pub mod plan;

pub use plan::{CLIENT_HOST, DIRECTOR_HOST, Plan, ServerPlan};

/// Why a lab network could not be brought up or used.
#[derive(Debug, thiserror::Error)]
pub enum BringupError {
    /// Building the namespaces and links failed.
    #[error("building the lab network failed")]
    Topology(#[from] TopologyError),
    /// Entering a namespace failed.
    #[error("entering a lab namespace failed")]
    Netns(#[from] NetnsError),
    /// Configuring IPVS failed.
    #[error("configuring IPVS in the director failed")]
    Ipvs(#[from] IpvsError),
    /// Writing a DR sysctl failed.
    #[error("applying the direct-routing sysctls failed")]
    Dr(#[from] crate::dr::DrError),
    /// The host named does not exist in this lab.
    #[error("no host '{0}' in this lab (hosts: {1})")]
    NoSuchHost(String, String),
}

/// How long each step of bring-up took.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct BringupTimings {
    /// Namespaces, links, addresses, routes, waiting for carrier.
    pub topology: Duration,
    /// ARP and forwarding sysctls.
    pub dr: Duration,
    /// The IPVS service and destinations.
    pub ipvs: Duration,
    /// All of it.
    pub total: Duration,
}

/// A lab network with IPVS configured.
#[derive(Debug)]
pub struct LabNetwork {
    plan: Plan,
    topology: Option<Topology>,
    /// One generic-netlink socket, opened inside the director's namespace (a
    /// netlink socket acts on the namespace it was created in, whichever
    /// thread uses it later). The lock serialises requests and their replies.
    ipvs: Option<Mutex<IpvsHandle>>,
    timings: BringupTimings,
}

impl LabNetwork {
    /// Builds the network of `plan`, applies the DR tweaks and configures the
    /// IPVS service. On error, everything created so far is removed.
    pub async fn up(plan: Plan) -> Result<Self, BringupError> {
        let start = Instant::now();
        let topology = crate::topology::apply(&plan.topology).await?;
        let topology_time = start.elapsed();
        let mut lab = Self {
            plan,
            topology: Some(topology),
            ipvs: None,
            timings: BringupTimings::default(),
        };
        let t = Instant::now();
        lab.apply_dr()?;
        let dr_time = t.elapsed();
        let t = Instant::now();
        let service = lab.plan.service.clone();
        // A standby server joins IPVS only when a phase adds it.
        let dests: Vec<_> = lab
            .plan
            .servers
            .iter()
            .filter(|s| !s.standby)
            .map(|s| s.destination)
            .collect();
        let timeouts = lab.plan.timeouts;
        for (name, value) in &lab.plan.ipvs_sysctls {
            crate::dr::set_ipvs_sysctl(lab.director(), name, value)?;
        }
        let handle = lab.director().run(IpvsHandle::open)??;
        lab.ipvs = Some(Mutex::new(handle));
        lab.ipvs(move |h| {
            // `ipvsadm --set`; zeros leave the kernel's value.
            if timeouts
                != (crate::ipvs::Timeouts {
                    tcp: 0,
                    tcp_fin: 0,
                    udp: 0,
                })
            {
                h.set_timeouts(&timeouts)?;
            }
            h.add_service(&service)?;
            for d in &dests {
                h.add_destination(&service, d)?;
            }
            Ok(())
        })?;
        lab.timings = BringupTimings {
            topology: topology_time,
            dr: dr_time,
            ipvs: t.elapsed(),
            total: start.elapsed(),
        };
        Ok(lab)
    }

    fn apply_dr(&self) -> Result<(), BringupError> {
        crate::dr::configure(self.topology(), &crate::dr::DrOptions::default())?;
        if !self.plan.client_sysctls.is_empty() {
            crate::dr::write_sysctls(self.ns(CLIENT_HOST)?, &self.plan.client_sysctls)?;
        }
        Ok(())
    }

    /// The plan this network was built from.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        self.topology.as_ref().expect("present until teardown")
    }

    /// How long bring-up took.
    pub fn timings(&self) -> BringupTimings {
        self.timings
    }

    /// The namespace of host `name` (`director`, `client1`, `rs1`, ...).
    pub fn ns(&self, name: &str) -> Result<&NetNs, BringupError> {
        self.topology().host(name).ok_or_else(|| {
            BringupError::NoSuchHost(
                name.into(),
                self.topology()
                    .spec()
                    .hosts
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
    }

    /// The director's namespace.
    pub fn director(&self) -> &NetNs {
        self.ns(DIRECTOR_HOST).expect("every plan has a director")
    }

    /// Runs `f` with the director's IPVS handle (IPVS state is per
    /// namespace; the handle's socket was opened inside the director's).
    pub fn ipvs<T>(
        &self,
        f: impl FnOnce(&IpvsHandle) -> Result<T, IpvsError>,
    ) -> Result<T, BringupError> {
        let Some(handle) = &self.ipvs else {
            return Err(BringupError::Ipvs(IpvsError::NotAvailable));
        };
        // A panic while holding the lock leaves the socket usable: every
        // request waits for its own reply before the lock is released.
        let handle = handle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(f(&handle)?)
    }

    /// Flushes IPVS, then removes every namespace; returns how long it took.
    pub fn teardown(mut self) -> Result<Duration, BringupError> {
        let start = Instant::now();
        let _ = self.ipvs(|h| h.flush());
        // The socket keeps the director's namespace alive: close it first.
        self.ipvs.take();
        if let Some(t) = self.topology.take() {
            t.teardown()?;
        }
        Ok(start.elapsed())
    }

    /// Leaves the network in place (for `lab up`) and returns its plan.
    pub fn keep(mut self) -> Plan {
        self.ipvs.take();
        if let Some(t) = self.topology.take() {
            t.keep();
        }
        self.plan.clone()
    }
}

impl Drop for LabNetwork {
    fn drop(&mut self) {
        if self.topology.is_some() {
            let _ = self.ipvs(|h| h.flush());
            self.ipvs.take();
            // Topology's own Drop removes the namespaces.
            self.topology.take();
        }
    }
}
