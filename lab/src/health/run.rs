//! The checker at work: one thread per real server inside the director's
//! namespace, probing on keepalived's schedule ([`super::state`]) and
//! changing IPVS through one shared netlink handle.
//!
//! Threads, not async tasks: each thread enters the director's namespace
//! once (`setns` is per thread) and never leaves it, so no probe can ever
//! start from another namespace, and blocking connects with a timeout are
//! exactly keepalived's `connect_timeout`. A thread sleeps on its stop
//! channel, so [`HealthChecker::stop`] ends every thread at once.

use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};

use super::config::{CheckKind, HealthPlan, ServerCheck};
use super::state::{Action, CheckerState, Health, Pool};
use crate::ipvs::{Destination, IpvsHandle, Service};
use crate::netns::NetNs;

/// Why the checker could not start.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// Opening the IPVS handle in the director failed.
    #[error("opening IPVS in the director's namespace {ns} for the health checker")]
    Ipvs {
        /// The director's namespace.
        ns: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Duplicating the namespace file descriptor failed.
    #[error("duplicating the namespace fd of {ns}")]
    Dup {
        /// The namespace.
        ns: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A checker thread could not be started.
    #[error("starting the checker thread for {server}")]
    Thread {
        /// The real server.
        server: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Bringing IPVS to the initial state (alpha mode) failed.
    #[error("setting the initial state of {what} in IPVS")]
    Initial {
        /// The destination.
        what: String,
        /// The underlying error.
        #[source]
        source: crate::ipvs::IpvsError,
    },
}

/// What a checker event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthEventKind {
    /// A check failed but retries are left: nothing changed yet.
    CheckFailed,
    /// The server was declared down and taken out of IPVS.
    Down,
    /// The server passed a check again and is back in IPVS.
    Up,
    /// The quorum was lost (the sorry server, if any, took over).
    QuorumLost,
    /// The quorum was regained.
    QuorumUp,
    /// An IPVS change the checker asked for failed.
    IpvsError,
}

/// One thing the checker did, with when.
#[derive(Debug, Clone)]
pub struct HealthEvent {
    /// When it happened.
    pub at: Instant,
    /// The real server's name (empty for quorum events).
    pub server: String,
    /// What kind of event.
    pub kind: HealthEventKind,
    /// One sentence for the report.
    pub detail: String,
}

/// The running checker; stops (and joins its threads) on drop.
#[derive(Debug)]
pub struct HealthChecker {
    stops: Vec<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    events: Arc<Mutex<Vec<HealthEvent>>>,
}

/// State shared by the checker threads.
struct Shared {
    handle: IpvsHandle,
    service: Service,
    checks: Vec<ServerCheck>,
    sorry: Option<Destination>,
    pool: Mutex<Pool>,
    /// Whether each real server's destination is in IPVS with its weight
    /// (false when removed or inhibited), so repeated actions are no-ops.
    present: Mutex<Vec<bool>>,
    events: Arc<Mutex<Vec<HealthEvent>>>,
}

impl HealthChecker {
    /// Starts one checker thread per real server of `plan`, inside
    /// `director`. In alpha mode (or when the quorum is lost from the start)
    /// IPVS is first brought to the starting state.
    pub fn start(director: &NetNs, plan: HealthPlan) -> Result<Self, HealthError> {
        let ns = director.name().to_string();
        let handle = director
            .run(IpvsHandle::open)
            .map_err(|e| HealthError::Ipvs {
                ns: ns.clone(),
                source: Box::new(e),
            })?
            .map_err(|e| HealthError::Ipvs {
                ns: ns.clone(),
                source: Box::new(e),
            })?;
        let initial: Vec<bool> = plan
            .checks
            .iter()
            .map(|c| CheckerState::new(&c.timing).health() == Health::Up)
            .collect();
        let pool = Pool::new(
            plan.checks.iter().map(|c| c.weight()).collect(),
            initial,
            plan.quorum,
            plan.hysteresis,
            plan.sorry_server.is_some(),
        );
        let events = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            handle,
            service: plan.service.clone(),
            present: Mutex::new(vec![true; plan.checks.len()]),
            checks: plan.checks.clone(),
            sorry: plan.sorry_server,
            events: Arc::clone(&events),
            pool: Mutex::new(pool.clone()),
        });
        for action in pool.initial_actions() {
            shared
                .apply(action)
                .map_err(|(what, source)| HealthError::Initial { what, source })?;
        }
        let mut checker = HealthChecker {
            stops: Vec::new(),
            threads: Vec::new(),
            events,
        };
        for (i, check) in plan.checks.iter().enumerate() {
            let fd: OwnedFd =
                director
                    .fd()
                    .try_clone_to_owned()
                    .map_err(|source| HealthError::Dup {
                        ns: ns.clone(),
                        source,
                    })?;
            let (tx, rx) = mpsc::channel::<()>();
            let shared = Arc::clone(&shared);
            let thread = std::thread::Builder::new()
                .name(format!("check:{}", check.name))
                .spawn(move || {
                    // Enter the director's namespace for the thread's life.
                    if let Err(e) = setns(&fd, CloneFlags::CLONE_NEWNET) {
                        shared.event(i, HealthEventKind::IpvsError, format!("setns failed: {e}"));
                        return;
                    }
                    drop(fd);
                    shared.check_loop(i, &rx);
                })
                .map_err(|source| HealthError::Thread {
                    server: check.name.clone(),
                    source,
                })?;
            checker.stops.push(tx);
            checker.threads.push(thread);
        }
        Ok(checker)
    }

    /// A copy of the events so far.
    pub fn events(&self) -> Vec<HealthEvent> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops every thread and returns all events.
    pub fn stop(mut self) -> Vec<HealthEvent> {
        self.stop_inner();
        self.events()
    }

    fn stop_inner(&mut self) {
        self.stops.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for HealthChecker {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// A pseudo-random fraction in [0, 1) without a dependency: the standard
/// library seeds `RandomState` from the OS for every new map.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

impl Shared {
    fn event(&self, i: usize, kind: HealthEventKind, detail: String) {
        let server = self
            .checks
            .get(i)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(HealthEvent {
                at: Instant::now(),
                server,
                kind,
                detail,
            });
    }

    fn check_loop(&self, i: usize, stop: &mpsc::Receiver<()>) {
        let check = &self.checks[i];
        let timing = check.timing;
        let mut state = CheckerState::new(&timing);
        // keepalived spreads first checks over [0, warmup].
        let mut wait = timing.warmup.mul_f64(random_fraction());
        loop {
            match stop.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            let result = probe(check);
            let step = state.on_result(result.is_ok(), &timing);
            let why = result.err().unwrap_or_default();
            match (step.change, step.retry) {
                (Some(h), _) => {
                    let (kind, verb) = match h {
                        Health::Down => (HealthEventKind::Down, "down"),
                        Health::Up => (HealthEventKind::Up, "up"),
                    };
                    let how = match (h, check.inhibit_on_failure) {
                        (Health::Down, true) => "weight set to 0 (inhibit_on_failure)".to_string(),
                        (Health::Down, false) => "removed from IPVS".to_string(),
                        (Health::Up, true) => format!("weight restored to {}", check.weight()),
                        (Health::Up, false) => "added back to IPVS".to_string(),
                    };
                    let reason = if why.is_empty() {
                        String::new()
                    } else {
                        format!(" ({why})")
                    };
                    self.event(
                        i,
                        kind,
                        format!(
                            "{} {} {verb}{reason}: {how}",
                            check.name,
                            check.kind.label()
                        ),
                    );
                    self.transition(i, h);
                }
                (None, Some(n)) if state.health() == Health::Up => self.event(
                    i,
                    HealthEventKind::CheckFailed,
                    format!(
                        "{} {} failed ({why}); retry {n} of {} in {:?}",
                        check.name,
                        check.kind.label(),
                        timing.retry,
                        timing.delay_before_retry
                    ),
                ),
                _ => {}
            }
            wait = step.next_in;
        }
    }

    fn transition(&self, i: usize, health: Health) {
        let (actions, quorum_before, quorum_after) = {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            let before = pool.quorum_up();
            let actions = pool.set(i, health);
            (actions, before, pool.quorum_up())
        };
        if quorum_before && !quorum_after {
            self.event(
                usize::MAX,
                HealthEventKind::QuorumLost,
                "quorum lost".to_string()
                    + if self.sorry.is_some() {
                        ": sorry server in"
                    } else {
                        ""
                    },
            );
        } else if !quorum_before && quorum_after {
            self.event(
                usize::MAX,
                HealthEventKind::QuorumUp,
                "quorum regained".into(),
            );
        }
        for action in actions {
            if let Err((what, e)) = self.apply(action) {
                self.event(
                    i,
                    HealthEventKind::IpvsError,
                    format!("{what}: {}", crate::error_chain(&e)),
                );
            }
        }
    }

    /// Applies one action to IPVS; idempotent per real server.
    fn apply(&self, action: Action) -> Result<(), (String, crate::ipvs::IpvsError)> {
        let h = &self.handle;
        let svc = &self.service;
        match action {
            Action::Retire(j) | Action::Restore(j) => {
                let restore = matches!(action, Action::Restore(_));
                let mut present = self.present.lock().unwrap_or_else(|e| e.into_inner());
                if present[j] == restore {
                    return Ok(());
                }
                let c = &self.checks[j];
                let what = format!(
                    "{} {}",
                    if restore { "restoring" } else { "retiring" },
                    c.name
                );
                let result = match (restore, c.inhibit_on_failure) {
                    (false, false) => h.delete_destination(svc, &c.destination),
                    (true, false) => h.add_destination(svc, &c.destination),
                    (false, true) => {
                        let mut d = c.destination;
                        d.weight = 0;
                        h.edit_destination(svc, &d)
                    }
                    (true, true) => h.edit_destination(svc, &c.destination),
                };
                result.map_err(|e| (what, e))?;
                present[j] = restore;
                Ok(())
            }
            Action::AddSorry | Action::RemoveSorry => {
                let Some(sorry) = &self.sorry else {
                    return Ok(());
                };
                let result = if action == Action::AddSorry {
                    h.add_destination(svc, sorry)
                } else {
                    h.delete_destination(svc, sorry)
                };
                result.map_err(|e| (format!("sorry server {}", sorry.address), e))
            }
        }
    }
}

/// One probe; `Err` says why it failed.
fn probe(check: &ServerCheck) -> Result<(), String> {
    let timeout = check.timing.connect_timeout;
    match &check.kind {
        CheckKind::Tcp => tcp_probe(check.connect, timeout),
        CheckKind::Grpc { service } => grpc_probe(check.connect, service, timeout),
    }
}

/// keepalived's TCP_CHECK: a connect that completes within the timeout is
/// a success; the connection is closed at once.
pub fn tcp_probe(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(stream) => {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            Err(format!("connect timed out after {timeout:?}"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Err("connection refused".into())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// `grpc.health.v1.Health/Check` for `service`: SERVING within the timeout
/// (connect included) is a success.
pub fn grpc_probe(addr: SocketAddr, service: &str, timeout: Duration) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let work = async {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .map_err(|e| e.to_string())?
                .connect_timeout(timeout)
                .connect()
                .await
                .map_err(|e| crate::error_chain(&e))?;
            let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
            let reply = client
                .check(tonic_health::pb::HealthCheckRequest {
                    service: service.to_string(),
                })
                .await
                .map_err(|s| format!("{}: {}", s.code(), s.message()))?
                .into_inner();
            let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
            if reply.status == serving {
                Ok(())
            } else {
                Err(format!("status {}", reply.status))
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    })
}
