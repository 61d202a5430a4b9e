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
pub use servers::start_server;

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
    let exe = std::env::current_exe().map_err(|source| RunError::Io {
        what: "finding the lab binary".into(),
        source,
    })?;
    let work = tempdir_for(&lab.plan().topology.run)?;
    let max_age = servers::max_ages(scenario);

    // Servers, then the manager that checks them, then the load.
    status.say("starting gRPC servers");
    let servers = servers::start_all(lab, &exe, &max_age)?;
    let (manager, mut director) = director::start(scenario, opts, lab, &work, status)?;
    let mut live = Live::new(
        lab,
        exe.clone(),
        max_age,
        servers,
        PendingPhases::of(scenario),
    );
    // Rounds and phases, observed all along.
    let rounds = Rounds {
        scenario,
        opts,
        exe: &exe,
        work: &work,
    }
    .run(&mut live, status)?;

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
    let server_counts = observe::server_counts(lab, &mut live.servers);
    servers::stop_all(std::mem::take(&mut live.servers));
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
    })
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
        }
    }
}

fn tempdir_for(run: &RunId) -> Result<PathBuf, RunError> {
    let dir = std::env::temp_dir().join(format!("ipvslab-{run}"));
    std::fs::create_dir_all(&dir).map_err(|source| RunError::Io {
        what: format!("creating {}", dir.display()),
        source,
    })?;
    Ok(dir)
}
