//! Running a scenario end to end. [`execute`] reads as its stages: plan,
//! bring up, servers, director manager, rounds and phases (observed all
//! along), settle, collect, tear down. What it measured is plain data
//! ([`Measurements`]) that `assemble` turns into the report.
//!
//! The gRPC servers and the load generator are this very binary
//! (`lab server`, `lab loadgen`) started inside the namespaces, so that a
//! fault phase can SIGKILL a server like a real crash.

mod director;
mod error;
mod live;
pub mod measurements;
mod observe;
pub mod peers;
mod phases;
mod progress;
mod rounds;
mod servers;
#[cfg(test)]
pub(crate) mod testdata;
mod usage;
mod user_client;
mod user_server;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime};

use super::Scenario;
use super::plan::plan;
use super::spec::DirectorKind;
use crate::netns::RunId;
use crate::network::{LabNetwork, Plan};
use crate::report::model::{Event, EventKind};

pub use error::RunError;
pub use measurements::Measurements;
pub use progress::Progress;
pub use servers::{Launcher, start_server};

use director::ManagerLog;
use live::{Live, Origin};
use measurements::{AppliedPhase, HealthChange, IpvsChange, IpvsSample};
use phases::PendingPhases;
use progress::Status;
use rounds::Rounds;

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Replaces the scenario's load duration (e.g. for quick CI runs).
    pub duration: Option<Duration>,
    /// Show a live progress line (terminal) or periodic lines (logs).
    pub progress: Progress,
    /// Set by SIGINT/SIGTERM handlers; the run stops and cleans up.
    pub interrupted: Arc<AtomicBool>,
    /// Replaces the scenario's `director` (`lab scenario --keepalived`).
    pub director: Option<DirectorKind>,
}

/// Runs `scenario` and returns what it measured. Everything the run created
/// is removed before this returns, whatever happened.
pub fn execute(scenario: &Scenario, opts: &RunOptions) -> Result<Measurements, RunError> {
    let started = Instant::now();
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let mut status = Status::new(opts.progress, &scenario.name);
    let plan = plan(scenario, RunId::new())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| RunError::Io {
            what: "starting the async runtime".into(),
            source,
        })?;
    status.say("building the network and IPVS");
    let lab = rt.block_on(LabNetwork::up(plan))?;
    let bringup = lab.timings().total;
    let result = with_lab(scenario, opts, &lab, &mut status);
    status.say("tearing down");
    let teardown = lab.teardown()?;
    status.done();
    let mut measured = result?;
    measured.bringup = bringup;
    measured.teardown = teardown;
    measured.started_at = started_at;
    measured.elapsed = started.elapsed();
    Ok(measured)
}

/// The stages that need the network up: servers, director manager,
/// rounds and phases, settle, collect. Timings are left for [`execute`].
fn with_lab(
    scenario: &Scenario,
    opts: &RunOptions,
    lab: &LabNetwork,
    status: &mut Status,
) -> Result<Measurements, RunError> {
    let (exe, work, launcher) = launcher_for(scenario, lab)?;

    // Servers, then the manager that checks them, then the load.
    status.say("starting gRPC servers");
    let servers = launcher.start_all(lab)?;
    let (manager, mut director) = director::start(scenario, opts, lab, &work, status)?;
    let user_servers: Vec<bool> = (0..lab.plan().servers.len())
        .map(|i| launcher.is_user(i))
        .collect();
    let mut live = Live::new(lab, launcher, servers, PendingPhases::of(scenario));
    if crate::runner::guest_time_travel() {
        live.nap_in_idle(scenario.file.load.rounds, scenario.file.load.idle);
    }
    // Rounds and phases, observed all along; then the user's client.
    let rounds = Rounds {
        scenario,
        opts,
        exe: &exe,
        work: &work,
    }
    .run(&mut live, status)?;
    let client = user_client::run_client(scenario, opts, &mut live, status, &work)?;

    // Settle, then collect every independent view.
    status.say("waiting for IPVS counters to settle (estimator tick ~2 s)");
    let ipvs = observe::settle_ipvs(lab, &opts.interrupted)?;
    let conn_table = observe::conn_table(lab)?;
    // The last look: connections still in the table or on a server.
    let now = Instant::now();
    let _ = live.trackers.observe_table(lab, now);
    live.trackers.observe_servers(lab, now);
    let ipvsadm_stats = observe::ipvsadm_in(lab, &["-Ln", "--stats", "--exact"]);
    let origin = live.origin.unwrap_or(Origin(Instant::now()));
    let manager_log = manager.stop(origin, &mut director);
    status.say("reading the servers' own counters");
    let server_counts = observe::server_counts(lab, &mut live.servers, &user_servers);
    servers::stop_all(std::mem::take(&mut live.servers));
    let files = read_files(&live.launcher, &work);
    let observed = Observed::rebase(live, origin, manager_log, lab.plan());
    let _ = std::fs::remove_dir_all(&work);

    Ok(Measurements {
        plan: lab.plan().clone(),
        rounds,
        server_counts,
        ipvs,
        ipvsadm_stats,
        conn_table,
        conn_log: observed.conn_log,
        server_peers: observed.server_peers,
        round_windows: observed.round_windows,
        events: observed.events,
        applied: observed.applied,
        ipvs_changes: observed.ipvs_changes,
        health_changes: observed.health_changes,
        samples: observed.samples,
        round_starts_s: observed.round_starts_s,
        director,
        bringup: Duration::ZERO,
        teardown: Duration::ZERO,
        started_at: String::new(),
        elapsed: Duration::ZERO,
        client,
        user_servers,
        files,
        round_usage: observed.round_usage,
        lab_max_rss_kib: lab_max_rss_kib(),
        client_port_range: observe::client_port_range(lab),
    })
}

/// The user commands' output, read before the work folder goes (in the
/// UML guest it lies in the guest's private /tmp): at most 4 MiB each.
fn read_files(launcher: &Launcher, work: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    const MAX: usize = 4 * 1024 * 1024;
    let mut paths = launcher.log_files();
    if let Ok(entries) = std::fs::read_dir(work.join("clients")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            paths.push((format!("clients/{name}"), e.path()));
        }
    }
    paths.sort();
    paths
        .into_iter()
        .filter_map(|(name, p)| {
            let mut bytes = std::fs::read(p).ok()?;
            bytes.truncate(MAX);
            Some((name, bytes))
        })
        .collect()
}

/// A scenario's servers and director manager, up without any load: what
/// `lab exec` and `lab shell` run beside the user's command, exactly as
/// `lab scenario` would start them.
pub struct Services {
    servers: Vec<Option<crate::process::ChildGuard>>,
    manager: Option<director::Manager>,
    director: measurements::DirectorInfo,
    launcher: Launcher,
    work: PathBuf,
}

impl Services {
    /// Starts the servers (`lab server` with the scenario's
    /// `max_connection_age`, or the user's `[server]` commands), then the
    /// director's manager (the lab's checker, or keepalived).
    pub fn start(
        scenario: &Scenario,
        opts: &RunOptions,
        lab: &LabNetwork,
    ) -> Result<Self, RunError> {
        let (_, work, launcher) = launcher_for(scenario, lab)?;
        let servers = launcher.start_all(lab)?;
        let mut status = Status::new(Progress::Quiet, &scenario.name);
        let (manager, director) = director::start(scenario, opts, lab, &work, &mut status)?;
        Ok(Services {
            servers,
            manager: Some(manager),
            director,
            launcher,
            work,
        })
    }

    /// Who manages IPVS (`lab`, `keepalived`, `static`).
    pub fn director_kind(&self) -> &str {
        &self.director.kind
    }

    /// Stops the manager and the servers; returns the last lines of each
    /// user server's output (its log files go with the run's temp folder).
    pub fn stop(mut self) -> Vec<(String, String)> {
        if let Some(m) = self.manager.take() {
            m.stop(Origin(Instant::now()), &mut self.director);
        }
        servers::stop_all(std::mem::take(&mut self.servers));
        let tails = self
            .launcher
            .log_files()
            .into_iter()
            .filter(|(_, path)| path.metadata().is_ok_and(|m| m.len() > 0))
            .map(|(name, path)| (name, user_server::tail(&path, 5)))
            .collect();
        let _ = std::fs::remove_dir_all(&self.work);
        tails
    }
}

/// What was observed while the load ran, on the report's time axis.
struct Observed {
    events: Vec<Event>,
    applied: Vec<AppliedPhase>,
    ipvs_changes: Vec<IpvsChange>,
    health_changes: Vec<HealthChange>,
    samples: Vec<IpvsSample>,
    round_starts_s: Vec<f64>,
    conn_log: crate::ipvs::ConnLog,
    server_peers: Vec<peers::PeerLog>,
    round_windows: Vec<(f64, f64)>,
    round_usage: Vec<measurements::RoundUsage>,
}

impl Observed {
    /// Rebases the live stamps to `origin`, and merges the events of the
    /// phases, the manager and the IPVS watcher in time order.
    fn rebase(live: Live<'_>, origin: Origin, manager: ManagerLog, plan: &Plan) -> Self {
        let ipvs_changes: Vec<IpvsChange> = live
            .watcher
            .changes
            .iter()
            .map(|c| c.rebase(origin))
            .collect();
        let round_windows = live
            .round_windows
            .iter()
            .map(|(a, b)| (origin.secs(*a), origin.secs(*b)))
            .collect();
        let (conn_log, server_peers) = live.trackers.rebase(origin);
        let mut events = live.events;
        events.extend(manager.events);
        events.extend(ipvs_changes.iter().map(|c| Event {
            t_s: c.t_s,
            kind: EventKind::Ipvs,
            detail: observe::describe_change(plan, c),
        }));
        // Stable: events at the same time keep the order above.
        events.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        Observed {
            events,
            applied: live.applied,
            samples: live.samples.iter().map(|s| s.rebase(origin)).collect(),
            round_starts_s: live.round_starts.iter().map(|&t| origin.secs(t)).collect(),
            ipvs_changes,
            health_changes: manager.health_changes,
            conn_log,
            server_peers,
            round_windows,
            round_usage: live.round_usage,
        }
    }
}

/// This process's peak resident set so far, KiB (0 if unreadable).
fn lab_max_rss_kib() -> u64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0, |u| u.max_rss().max(0) as u64)
}

/// The lab binary, the run's temp folder and the servers' launcher: what
/// both a scenario run and `lab exec`'s services start from.
fn launcher_for(
    scenario: &Scenario,
    lab: &LabNetwork,
) -> Result<(PathBuf, PathBuf, Launcher), RunError> {
    let exe = std::env::current_exe().map_err(|source| RunError::Io {
        what: "finding the lab binary".into(),
        source,
    })?;
    let work = tempdir_for(&lab.plan().topology.run)?;
    let launcher = Launcher::new(scenario, lab.plan(), &exe, &work);
    Ok((exe, work, launcher))
}

fn tempdir_for(run: &RunId) -> Result<PathBuf, RunError> {
    let dir = std::env::temp_dir().join(format!("ipvslab-{run}"));
    std::fs::create_dir_all(&dir).map_err(|source| RunError::Io {
        what: format!("creating {}", dir.display()),
        source,
    })?;
    Ok(dir)
}
