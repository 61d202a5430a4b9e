//! Running a scenario end to end: bring the network and IPVS up, start one
//! gRPC server per real server, drive the load from the client namespace
//! while applying the phases, let IPVS's counters settle, collect every
//! independent view (client tallies, server counters, IPVS over netlink,
//! `ipvsadm`, the connection table), tear down, and judge.
//!
//! The gRPC servers and the load generator are this very binary
//! (`lab server`, `lab loadgen`) started inside the namespaces, so that a
//! fault phase can SIGKILL a server like a real crash.

use crate::error_chain;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bench::report::LoadReport;

use super::Scenario;
use super::plan::health_plan;
use super::plan::{CLIENT_HOST, Plan, plan};
use super::spec::{ConnectionModel, DirectorKind, LoadMode, PhaseAction};
use crate::bringup::{BringupError, LabNetwork};
use crate::health::{HealthChecker, HealthEventKind};
use crate::ipvs::{ConnEntry, IpvsTable};
use crate::netns::RunId;
use crate::process::{ChildGuard, ProcessError};

/// Why a scenario could not run to the end (an expectation failing is not
/// an error: it is a result).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The plan's topology is invalid.
    #[error("the scenario's network is invalid")]
    Plan(#[from] crate::topology::SpecError),
    /// Bringing the network or IPVS up failed.
    #[error(transparent)]
    Bringup(#[from] BringupError),
    /// A server or the load generator failed.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The load generator failed.
    #[error("the load generator failed ({status}); its error is above")]
    Loadgen {
        /// How it ended.
        status: String,
    },
    /// The load generator's report could not be read.
    #[error("cannot read the load generator's report {path}")]
    LoadReport {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A phase could not be applied.
    #[error("phase at {at:?} ({action}) failed: {detail}")]
    Phase {
        /// When it was due.
        at: Duration,
        /// What it was.
        action: String,
        /// Why it failed.
        detail: String,
    },
    /// Reading the servers' own counters failed.
    #[error("reading the counters of server {server} failed: {detail}")]
    ServerStats {
        /// The server.
        server: String,
        /// Why.
        detail: String,
    },
    /// A runtime or I/O step failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The lab's health checker could not start.
    #[error(transparent)]
    Health(#[from] crate::health::HealthError),
    /// keepalived could not start.
    #[error(transparent)]
    Keepalived(#[from] crate::keepalived::run::KeepalivedRunError),
    /// keepalived started but did not configure IPVS in time.
    #[error("keepalived did not configure IPVS: {detail}")]
    KeepalivedNotReady {
        /// What was seen.
        detail: String,
    },
    /// Interrupted by SIGINT/SIGTERM; everything was cleaned up.
    #[error("interrupted; the lab network was removed")]
    Interrupted,
}

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

/// How progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// One line rewritten in place.
    Tty,
    /// A line per second, for logs.
    Lines,
    /// Nothing.
    Quiet,
}

impl Progress {
    /// `Tty` when stderr is a terminal (or the host said so before booting
    /// the UML guest, whose console always looks like one), else `Lines`.
    pub fn detect() -> Self {
        match std::env::var(crate::runner::STDERR_TTY_ENV).as_deref() {
            Ok("1") => Progress::Tty,
            Ok(_) => Progress::Lines,
            Err(_) if std::io::stderr().is_terminal() => Progress::Tty,
            Err(_) => Progress::Lines,
        }
    }
}

/// The IPVS state at one moment of the run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IpvsSample {
    /// Seconds since the measured load started.
    pub t_s: f64,
    /// Persistence templates in the connection table.
    pub templates: usize,
    /// Per destination: address, weight, active, inactive, persistent.
    pub destinations: Vec<(String, i32, u32, u32, u32)>,
}

/// One change of the IPVS destination set, as the fast watcher saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct IpvsChange {
    /// Seconds since the measured load started.
    pub t_s: f64,
    /// The destination, `address:port`.
    pub dest: String,
    /// Its weight before (`None`: not in IPVS).
    pub from: Option<i32>,
    /// Its weight after (`None`: removed).
    pub to: Option<i32>,
}

/// What managed IPVS during the run.
#[derive(Debug, Clone, Default)]
pub struct DirectorInfo {
    /// `lab` (own checker), `keepalived`, or `static`.
    pub kind: String,
    /// The keepalived.conf keepalived ran with.
    pub keepalived_conf: Option<String>,
    /// keepalived's console log, each line with its time since the load
    /// started.
    pub keepalived_log: Vec<(f64, String)>,
    /// Seconds from keepalived's start until IPVS held every destination.
    pub populated_s: Option<f64>,
}

/// Per destination: address, weight, active, inactive and persistent
/// connections.
pub type DestRow = (String, i32, u32, u32, u32);

/// Everything one run measured, before it is judged.
#[derive(Debug, Clone)]
pub struct Measurements {
    /// The plan that ran.
    pub plan: Plan,
    /// One load report per round.
    pub rounds: Vec<LoadReport>,
    /// Per server (plan order): its own counters restricted to client
    /// addresses: (ok RPCs, connections accepted).
    pub server_counts: Vec<Option<(u64, u64)>>,
    /// The IPVS table at the end, over netlink.
    pub ipvs: IpvsTable,
    /// `ipvsadm -Ln --stats --exact` run in the director, as the independent reader.
    pub ipvsadm_stats: Option<String>,
    /// The connection table at the end.
    pub conn_table: Vec<ConnEntry>,
    /// Timed events: (seconds since the measured load started, kind, detail).
    /// Kinds: `fault`, `weight`, `sysctl`, `ipvs`, `health`, `check`.
    pub events: Vec<(f64, String, String)>,
    /// The phases as applied, with their real times.
    pub applied: Vec<(f64, PhaseAction)>,
    /// Every change of the destination set, polled every 100 ms.
    pub ipvs_changes: Vec<IpvsChange>,
    /// The lab checker's state changes: (seconds, server, now up).
    pub health_changes: Vec<(f64, String, bool)>,
    /// IPVS state sampled about once a second while the load ran.
    pub samples: Vec<IpvsSample>,
    /// Who managed IPVS.
    pub director: DirectorInfo,
    /// Bring-up and teardown durations.
    pub bringup: Duration,
    /// Teardown duration.
    pub teardown: Duration,
    /// Wall-clock start (RFC 3339).
    pub started_at: String,
    /// Whole run.
    pub elapsed: Duration,
}

struct Status<'a> {
    progress: Progress,
    scenario: &'a str,
    last: Instant,
}

impl Status<'_> {
    fn say(&mut self, text: &str) {
        match self.progress {
            Progress::Quiet => {}
            Progress::Tty => {
                eprint!("\r\x1b[2K[{}] {text}", self.scenario);
                let _ = std::io::stderr().flush();
            }
            Progress::Lines => eprintln!("[{}] {text}", self.scenario),
        }
    }

    fn tick(&mut self, text: &str) {
        if self.progress == Progress::Lines && self.last.elapsed() < Duration::from_millis(950) {
            return;
        }
        self.last = Instant::now();
        self.say(text);
    }

    fn done(&mut self) {
        if self.progress == Progress::Tty {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}

/// Runs `scenario` and returns what it measured. Everything the run created
/// is removed before this returns, whatever happened.
pub fn execute(scenario: &Scenario, opts: &RunOptions) -> Result<Measurements, RunError> {
    let started = Instant::now();
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let mut status = Status {
        progress: opts.progress,
        scenario: &scenario.name,
        last: Instant::now() - Duration::from_secs(5),
    };
    let plan = plan(scenario, RunId::new())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| RunError::Io {
            what: "starting the async runtime".into(),
            source,
        })?;
    status.say("building the network and IPVS");
    let lab = rt.block_on(LabNetwork::up(plan.clone()))?;
    let bringup = lab.timings().total;
    let result = with_lab(scenario, opts, &lab, &mut status);
    status.say("tearing down");
    let teardown = lab.teardown()?;
    status.done();
    let c = result?;
    Ok(Measurements {
        plan,
        rounds: c.rounds,
        server_counts: c.server_counts,
        ipvs: c.ipvs,
        ipvsadm_stats: c.ipvsadm_stats,
        conn_table: c.conn_table,
        events: c.events,
        applied: c.applied,
        ipvs_changes: c.ipvs_changes,
        health_changes: c.health_changes,
        samples: c.samples,
        director: c.director,
        bringup,
        teardown,
        started_at,
        elapsed: started.elapsed(),
    })
}

/// What [`with_lab`] gathered while the network was up.
struct Collected {
    rounds: Vec<LoadReport>,
    server_counts: Vec<Option<(u64, u64)>>,
    ipvs: IpvsTable,
    ipvsadm_stats: Option<String>,
    conn_table: Vec<ConnEntry>,
    events: Vec<(f64, String, String)>,
    applied: Vec<(f64, PhaseAction)>,
    ipvs_changes: Vec<IpvsChange>,
    health_changes: Vec<(f64, String, bool)>,
    samples: Vec<IpvsSample>,
    director: DirectorInfo,
}

/// The checker or daemon that manages IPVS while the load runs.
enum Manager {
    /// Nothing checks health.
    Static,
    /// The lab's own checker.
    Lab(HealthChecker),
    /// Debian's keepalived.
    Keepalived(crate::keepalived::run::Keepalived),
}

/// The live state of a run: servers, pending phases, and everything
/// observed, stamped with [`Instant`]s until the measured load's start (the
/// origin every report time counts from) is known.
struct Live<'a> {
    lab: &'a LabNetwork,
    exe: PathBuf,
    max_age: Option<Duration>,
    servers: Vec<Option<ChildGuard>>,
    pending: Vec<(Duration, PhaseAction)>,
    /// Start of the measured load of round 1, learned from the load
    /// generator's first progress line.
    origin: Option<Instant>,
    events: Vec<(Instant, String, String)>,
    applied: Vec<(Instant, PhaseAction)>,
    samples: Vec<(Instant, usize, Vec<DestRow>)>,
    last_sample: Instant,
    watcher: IpvsWatcher,
}

impl Live<'_> {
    /// Applies the phases that are due, samples IPVS once a second and
    /// polls it for changes every 100 ms.
    fn tick(&mut self) -> Result<(), RunError> {
        let now = Instant::now();
        if let Some(origin) = self.origin {
            while self
                .pending
                .last()
                .is_some_and(|(at, _)| now >= origin + *at)
            {
                let (at, action) = self.pending.pop().expect("checked");
                let applied_at = Instant::now();
                let detail = apply_phase(
                    self.lab,
                    &mut self.servers,
                    &self.exe,
                    self.max_age,
                    &action,
                )
                .map_err(|detail| RunError::Phase {
                    at,
                    action: format!("{action:?}"),
                    detail,
                })?;
                self.events
                    .push((applied_at, phase_kind(&action).to_string(), detail));
                self.applied.push((applied_at, action));
            }
        }
        self.watcher.poll(self.lab.plan());
        if self.last_sample.elapsed() >= Duration::from_secs(1) {
            self.last_sample = Instant::now();
            if let Some((templates, dests)) = sample(self.lab) {
                self.samples.push((self.last_sample, templates, dests));
            }
        }
        Ok(())
    }
}

fn with_lab(
    scenario: &Scenario,
    opts: &RunOptions,
    lab: &LabNetwork,
    status: &mut Status<'_>,
) -> Result<Collected, RunError> {
    let plan = lab.plan();
    let exe = std::env::current_exe().map_err(|source| RunError::Io {
        what: "finding the lab binary".into(),
        source,
    })?;
    let work = tempdir_for(&plan.topology.run)?;
    let load = &scenario.file.load;

    status.say("starting gRPC servers");
    let mut servers: Vec<Option<ChildGuard>> = Vec::new();
    for s in &plan.servers {
        servers.push(Some(start_server(lab, &exe, s, load.max_connection_age)?));
    }

    let kind = opts.director.unwrap_or(scenario.file.director);
    let mut director = DirectorInfo {
        kind: match kind {
            DirectorKind::Lab => "lab",
            DirectorKind::Keepalived => "keepalived",
            DirectorKind::Static => "static",
        }
        .into(),
        ..Default::default()
    };
    let manager = match kind {
        DirectorKind::Static => Manager::Static,
        DirectorKind::Lab => match health_plan(scenario, plan) {
            Some(hp) => {
                status.say("starting the lab's health checker in the director");
                Manager::Lab(HealthChecker::start(lab.director(), hp)?)
            }
            None => Manager::Static,
        },
        DirectorKind::Keepalived => {
            status.say("starting keepalived in the director");
            // keepalived builds the service itself: hand it an empty table.
            let service = plan.service.clone();
            lab.ipvs(move |h| h.delete_service(&service))?;
            let conf = crate::keepalived::render_conf(
                &super::plan::keepalived_conf(scenario),
                &crate::keepalived::RenderOptions {
                    router_id: format!("ipvslab-{}", plan.topology.run),
                    lvs_flush_on_stop: true,
                },
            );
            let k = crate::keepalived::run::Keepalived::start(lab.director(), &conf, &work)?;
            let keepalived_started = Instant::now();
            director.keepalived_conf = Some(conf);
            wait_for_destinations(lab, plan, &opts.interrupted, Duration::from_secs(20))
                .map_err(|detail| RunError::KeepalivedNotReady { detail })?;
            director.populated_s = Some(keepalived_started.elapsed().as_secs_f64());
            Manager::Keepalived(k)
        }
    };

    let mut pending: Vec<(Duration, PhaseAction)> = scenario
        .file
        .phases
        .iter()
        .map(|p| (p.at, p.action.clone()))
        .collect();
    pending.sort_by_key(|(at, _)| *at);
    pending.reverse();
    let mut live = Live {
        lab,
        exe: exe.clone(),
        max_age: load.max_connection_age,
        servers,
        pending,
        origin: None,
        events: Vec::new(),
        applied: Vec::new(),
        samples: Vec::new(),
        last_sample: Instant::now() - Duration::from_secs(2),
        watcher: IpvsWatcher::open(lab),
    };
    let duration = opts.duration.unwrap_or(load.duration);
    let mut rounds = Vec::new();
    for round in 0..load.rounds {
        if round > 0 && !load.idle.is_zero() {
            let idle_start = Instant::now();
            while idle_start.elapsed() < load.idle {
                if opts.interrupted.load(Ordering::SeqCst) {
                    return Err(RunError::Interrupted);
                }
                status.tick(&format!(
                    "idle {:.0}/{:.0} s before round {}",
                    idle_start.elapsed().as_secs_f64(),
                    load.idle.as_secs_f64(),
                    round + 1
                ));
                live.tick()?;
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let json = work.join(format!("round-{round}.json"));
        let mut cmd = Command::new(&exe);
        cmd.arg("loadgen")
            .args(loadgen_args(plan, scenario, duration))
            .arg("--json")
            .arg(&json)
            .stdout(Stdio::piped());
        // loadgen's own summary and errors go to a file: the lab prints its
        // own summary, and shows this only when the load generator fails.
        let loadgen_log = work.join(format!("round-{round}.log"));
        let log_file = std::fs::File::create(&loadgen_log).map_err(|source| RunError::Io {
            what: format!("creating {}", loadgen_log.display()),
            source,
        })?;
        cmd.stderr(Stdio::from(log_file));
        let spawned = Instant::now();
        let mut child = ChildGuard::spawn_in(lab.ns(CLIENT_HOST)?, cmd, "the load generator")?;
        let lines = progress_lines(child.take_stdout().expect("piped"));
        let ended = loop {
            if opts.interrupted.load(Ordering::SeqCst) {
                return Err(RunError::Interrupted);
            }
            while let Ok((arrived, line)) = lines.try_recv() {
                if live.origin.is_none()
                    && let Some(elapsed) = line["elapsed_s"].as_f64()
                {
                    // The line left the generator `elapsed` after its
                    // start; the measured phase begins `warmup` later.
                    let start = arrived
                        .checked_sub(Duration::from_secs_f64(elapsed.max(0.0)))
                        .unwrap_or(spawned)
                        .max(spawned);
                    live.origin = Some(start + load.warmup);
                }
                status.tick(&format!(
                    "round {}/{} {}",
                    round + 1,
                    load.rounds,
                    render_progress(&line)
                ));
            }
            live.tick()?;
            if let Some(s) = child.try_wait() {
                break s;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if live.origin.is_none() {
            live.origin = Some(spawned + load.warmup);
        }
        if !ended.success() {
            if let Ok(log) = std::fs::read_to_string(&loadgen_log) {
                eprint!("{log}");
            }
            return Err(RunError::Loadgen {
                status: ended.to_string(),
            });
        }
        let text = std::fs::read(&json).map_err(|e| RunError::LoadReport {
            path: json.clone(),
            source: Box::new(e),
        })?;
        let report: LoadReport =
            serde_json::from_slice(&text).map_err(|e| RunError::LoadReport {
                path: json.clone(),
                source: Box::new(e),
            })?;
        rounds.push(report);
    }

    status.say("waiting for IPVS counters to settle (estimator tick ~2 s)");
    let ipvs = settle_ipvs(lab, &opts.interrupted)?;
    let conn_table = lab
        .director()
        .run(crate::ipvs::read_conn_table)
        .map_err(BringupError::from)?
        .unwrap_or_default();
    let ipvsadm_stats = ipvsadm_in(lab, &["-Ln", "--stats", "--exact"]);

    let origin = live.origin.unwrap_or_else(Instant::now);
    let t = |at: Instant| -> f64 {
        if at >= origin {
            (at - origin).as_secs_f64()
        } else {
            -(origin - at).as_secs_f64()
        }
    };
    let mut events: Vec<(f64, String, String)> = live
        .events
        .iter()
        .map(|(at, k, d)| (t(*at), k.clone(), d.clone()))
        .collect();
    let mut health_changes = Vec::new();
    match manager {
        Manager::Static => {}
        Manager::Lab(checker) => {
            for e in checker.stop() {
                match e.kind {
                    HealthEventKind::Down => {
                        health_changes.push((t(e.at), e.server.clone(), false))
                    }
                    HealthEventKind::Up => health_changes.push((t(e.at), e.server.clone(), true)),
                    _ => {}
                }
                let kind = match e.kind {
                    HealthEventKind::CheckFailed => "check",
                    _ => "health",
                };
                events.push((t(e.at), kind.into(), e.detail));
            }
        }
        Manager::Keepalived(k) => {
            let log = k.stop();
            director.keepalived_log = log.iter().map(|(at, l)| (t(*at), l.clone())).collect();
        }
    }
    let ipvs_changes: Vec<IpvsChange> = live
        .watcher
        .changes
        .iter()
        .map(|(at, dest, from, to)| IpvsChange {
            t_s: t(*at),
            dest: dest.clone(),
            from: *from,
            to: *to,
        })
        .collect();
    for c in &ipvs_changes {
        events.push((c.t_s, "ipvs".into(), describe_change(plan, c)));
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let applied = live
        .applied
        .iter()
        .map(|(at, a)| (t(*at), a.clone()))
        .collect();
    let samples = live
        .samples
        .iter()
        .map(|(at, templates, d)| IpvsSample {
            t_s: t(*at),
            templates: *templates,
            destinations: d.clone(),
        })
        .collect();

    status.say("reading the servers' own counters");
    let clients: Vec<IpAddr> = plan
        .client_addresses
        .iter()
        .map(|a| IpAddr::V4(*a))
        .collect();
    let mut server_counts = Vec::new();
    for (s, guard) in plan.servers.iter().zip(&mut live.servers) {
        let alive = guard.as_mut().is_some_and(|g| g.try_wait().is_none());
        if !alive {
            server_counts.push(None);
            continue;
        }
        let addr = SocketAddr::new(IpAddr::V4(s.address), s.port);
        // A server cut off by a fault cannot be asked; that is not an error.
        server_counts.push(server_counters(lab, addr, &clients).ok());
    }
    for guard in live.servers.into_iter().flatten() {
        guard.stop(Duration::from_secs(3));
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(Collected {
        rounds,
        server_counts,
        ipvs,
        ipvsadm_stats,
        conn_table,
        events,
        applied,
        ipvs_changes,
        health_changes,
        samples,
        director,
    })
}

/// A sentence for an IPVS change: `rs1 removed from IPVS (weight 1)`.
fn describe_change(plan: &Plan, c: &IpvsChange) -> String {
    let name = plan
        .servers
        .iter()
        .find(|s| s.destination_key() == c.dest)
        .map_or(c.dest.clone(), |s| s.name.clone());
    match (c.from, c.to) {
        (Some(w), None) => format!("{name} removed from IPVS (was weight {w})"),
        (None, Some(w)) => format!("{name} added to IPVS with weight {w}"),
        (Some(a), Some(b)) => format!("{name} weight {a} -> {b} in IPVS"),
        (None, None) => format!("{name} unchanged"),
    }
}

/// Waits until IPVS holds the scenario's service with every destination
/// (keepalived fills it a few seconds after it starts).
fn wait_for_destinations(
    lab: &LabNetwork,
    plan: &Plan,
    interrupted: &AtomicBool,
    limit: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    let want = plan.servers.len();
    loop {
        if interrupted.load(Ordering::SeqCst) {
            return Err("interrupted".into());
        }
        let service = plan.service.clone();
        let found = lab
            .ipvs(move |h| match h.service(&service)? {
                Some(_) => Ok(h.destinations(&service)?.len()),
                None => Ok(0),
            })
            .unwrap_or(0);
        if found >= want {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(format!(
                "IPVS held {found} of {want} destinations {limit:?} after keepalived started"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls the director's IPVS destinations every 100 ms and records every
/// change with its instant: this is how detection is timed for the lab's
/// checker and keepalived alike. One netlink dump costs about 1 ms.
struct IpvsWatcher {
    handle: Option<crate::ipvs::IpvsHandle>,
    last_poll: Instant,
    last: Option<BTreeMap<String, i32>>,
    changes: Vec<(Instant, String, Option<i32>, Option<i32>)>,
}

impl IpvsWatcher {
    fn open(lab: &LabNetwork) -> Self {
        let handle = lab
            .director()
            .run(crate::ipvs::IpvsHandle::open)
            .ok()
            .and_then(Result::ok);
        let mut w = IpvsWatcher {
            handle,
            last_poll: Instant::now() - Duration::from_secs(1),
            last: None,
            changes: Vec::new(),
        };
        w.poll(lab.plan());
        w
    }

    fn poll(&mut self, plan: &Plan) {
        if self.last_poll.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last_poll = Instant::now();
        let Some(h) = &self.handle else { return };
        let now: BTreeMap<String, i32> = match h.service(&plan.service) {
            Ok(Some(_)) => match h.destinations(&plan.service) {
                Ok(d) => d
                    .iter()
                    .map(|d| {
                        (
                            SocketAddr::new(d.destination.address, d.destination.port).to_string(),
                            d.destination.weight,
                        )
                    })
                    .collect(),
                Err(_) => return,
            },
            Ok(None) => BTreeMap::new(),
            Err(_) => return,
        };
        let at = Instant::now();
        if let Some(last) = &self.last {
            let keys: std::collections::BTreeSet<&String> = last.keys().chain(now.keys()).collect();
            for k in keys {
                let (a, b) = (last.get(k).copied(), now.get(k).copied());
                if a != b {
                    self.changes.push((at, k.clone(), a, b));
                }
            }
        }
        self.last = Some(now);
    }
}

fn phase_kind(action: &PhaseAction) -> &'static str {
    match action {
        PhaseAction::SetWeight { .. }
        | PhaseAction::RemoveDestination { .. }
        | PhaseAction::AddDestination { .. } => "weight",
        PhaseAction::Sysctl { .. } => "sysctl",
        _ => "fault",
    }
}

/// Applies one phase; returns a sentence for the report's event list.
fn apply_phase(
    lab: &LabNetwork,
    servers: &mut [Option<ChildGuard>],
    exe: &Path,
    max_age: Option<Duration>,
    action: &PhaseAction,
) -> Result<String, String> {
    let plan = lab.plan();
    let target = action.server().map(|name| {
        plan.servers
            .iter()
            .position(|s| s.name == name || s.address.to_string() == name)
            .expect("validated: phases name known servers")
    });
    let name = target
        .map(|i| plan.servers[i].name.clone())
        .unwrap_or_default();
    match action {
        PhaseAction::SetWeight { weight, .. } => {
            let i = target.expect("has a server");
            let mut dest = plan.servers[i].destination;
            dest.weight = *weight;
            let service = plan.service.clone();
            lab.ipvs(move |h| h.edit_destination(&service, &dest))
                .map_err(|e| error_chain(&e))?;
            Ok(format!("{name} weight set to {weight}"))
        }
        PhaseAction::RemoveDestination { .. } => {
            let dest = plan.servers[target.expect("has a server")].destination;
            let service = plan.service.clone();
            lab.ipvs(move |h| h.delete_destination(&service, &dest))
                .map_err(|e| error_chain(&e))?;
            Ok(format!(
                "{name} deleted from IPVS (ipvsadm -d), server still running"
            ))
        }
        PhaseAction::AddDestination { .. } => {
            let dest = plan.servers[target.expect("has a server")].destination;
            let service = plan.service.clone();
            lab.ipvs(move |h| h.add_destination(&service, &dest))
                .map_err(|e| error_chain(&e))?;
            Ok(format!("{name} added to IPVS (ipvsadm -a)"))
        }
        PhaseAction::StopServer { .. } | PhaseAction::KillServer { .. } => {
            let i = target.expect("has a server");
            let (signal, verb) = if matches!(action, PhaseAction::KillServer { .. }) {
                (libc::SIGKILL, "killed (SIGKILL)")
            } else {
                (libc::SIGTERM, "stopped (SIGTERM, GOAWAY)")
            };
            if let Some(g) = &servers[i] {
                g.signal(signal);
            }
            Ok(format!("{name} {verb}"))
        }
        PhaseAction::StartServer { .. } => {
            let i = target.expect("has a server");
            if let Some(mut old) = servers[i].take() {
                old.wait_timeout(Duration::from_secs(5));
            }
            let guard =
                start_server(lab, exe, &plan.servers[i], max_age).map_err(|e| error_chain(&e))?;
            servers[i] = Some(guard);
            Ok(format!("{name} started"))
        }
        PhaseAction::LinkDown { .. } | PhaseAction::LinkUp { .. } => {
            let up = matches!(action, PhaseAction::LinkUp { .. });
            let ns = lab.ns(&name).map_err(|e| error_chain(&e))?;
            crate::faults::set_link(ns, crate::topology::spec::HOST_IFNAME, up)
                .map_err(|e| error_chain(&e))?;
            Ok(format!(
                "{name} link {} (ip link set eth0 {} in its namespace)",
                if up { "up" } else { "down" },
                if up { "up" } else { "down" }
            ))
        }
        PhaseAction::Blackhole { .. } => {
            crate::faults::blackhole(lab.topology().bridge(), &name)
                .map_err(|e| error_chain(&e))?;
            Ok(format!(
                "{name} blackholed (every frame to and from it dropped)"
            ))
        }
        PhaseAction::Unblackhole { .. } => {
            crate::faults::unblackhole(lab.topology().bridge(), &name)
                .map_err(|e| error_chain(&e))?;
            Ok(format!("{name} blackhole lifted"))
        }
        PhaseAction::Sysctl { name, value } => {
            crate::dr::set_ipvs_sysctl(lab.director(), name, value).map_err(|e| error_chain(&e))?;
            Ok(format!("net.ipv4.vs.{name} = {value}"))
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

/// Starts `lab server` for `s` inside its namespace and waits until it
/// listens.
pub fn start_server(
    lab: &LabNetwork,
    exe: &Path,
    s: &super::plan::ServerPlan,
    max_age: Option<Duration>,
) -> Result<ChildGuard, RunError> {
    let mut cmd = Command::new(exe);
    // In DR the packets arrive addressed to the VIP (held on lo), so the
    // server listens on every address of its namespace.
    cmd.arg("server")
        .arg("--name")
        .arg(&s.name)
        .arg("--listen")
        .arg(format!("0.0.0.0:{}", s.port))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(age) = max_age {
        cmd.arg("--max-connection-age")
            .arg(format!("{}ms", age.as_millis()))
            .arg("--max-connection-age-grace")
            .arg("1s");
    }
    let mut guard =
        ChildGuard::spawn_in(lab.ns(&s.name)?, cmd, &format!("gRPC server {}", s.name))?;
    guard.wait_ready(Duration::from_secs(15), |l| l.contains("listening on"))?;
    Ok(guard)
}

fn loadgen_args(plan: &Plan, scenario: &Scenario, duration: Duration) -> Vec<String> {
    let load = &scenario.file.load;
    let sources: Vec<String> = plan
        .client_addresses
        .iter()
        .map(|a| a.to_string())
        .collect();
    let lanes = plan.client_addresses.len() as u32 * load.channels_per_ip;
    let mut args = vec![
        "--target".to_string(),
        plan.target.to_string(),
        "--source-ips".into(),
        sources.join(","),
        "--channels".into(),
        load.channels_per_ip.to_string(),
        "--duration".into(),
        format!("{}ms", duration.as_millis()),
        "--warmup".into(),
        format!("{}ms", load.warmup.as_millis()),
        "--timeout".into(),
        format!("{}ms", load.timeout.as_millis()),
        "--payload-size".into(),
        load.payload.to_string(),
        "--progress".into(),
        "json".into(),
        // Frequent progress lines: the first one tells when the generator
        // started, which is the origin phases and report times count from.
        "--progress-interval".into(),
        "100ms".into(),
        "--timeline-interval".into(),
        "500ms".into(),
    ];
    match load.mode {
        LoadMode::Closed => {
            args.push("--concurrency".into());
            args.push(load.concurrency.max(lanes).to_string());
        }
        LoadMode::Open => {
            args.push("--rps".into());
            args.push(load.rps.unwrap_or(100.0).to_string());
            args.push("--concurrency".into());
            args.push(load.concurrency.max(lanes).to_string());
        }
    }
    match load.connection {
        ConnectionModel::Channel => {}
        ConnectionModel::Churn => {
            args.push("--churn-rpcs".into());
            args.push(load.churn_rpcs.unwrap_or(100).to_string());
        }
        ConnectionModel::PerRpc => args.push("--conn-per-rpc".into()),
    }
    args
}

/// The load generator's progress lines, each with the instant it arrived.
fn progress_lines(
    stdout: std::process::ChildStdout,
) -> std::sync::mpsc::Receiver<(Instant, serde_json::Value)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && tx.send((Instant::now(), v)).is_err()
            {
                break;
            }
        }
    });
    rx
}

fn render_progress(v: &serde_json::Value) -> String {
    let phase = v["phase"].as_str().unwrap_or("?");
    let elapsed = v["elapsed_s"].as_f64().unwrap_or(0.0);
    let rpcs = v["rpcs"].as_u64().unwrap_or(0);
    let errors = v["errors"].as_u64().unwrap_or(0);
    let rate = v["rate"].as_f64().unwrap_or(0.0);
    let mut shares = String::new();
    if let Some(map) = v["servers"].as_object() {
        let total: u64 = map.values().filter_map(|x| x.as_u64()).sum();
        for (name, n) in map {
            let n = n.as_u64().unwrap_or(0);
            let pct = if total > 0 {
                100.0 * n as f64 / total as f64
            } else {
                0.0
            };
            shares.push_str(&format!(" {name} {pct:.0}%"));
        }
    }
    format!("{phase} {elapsed:.1}s  {rpcs} rpcs  {rate:.0}/s  {errors} errors {shares}")
}

/// IPVS's per-destination counters are copied from per-CPU counters on the
/// estimator's 2 s tick, so a read right after traffic can show stale
/// values. Read until two reads a second apart agree, at least 2.2 s after
/// the load ended (bounded: 10 s).
fn settle_ipvs(lab: &LabNetwork, interrupted: &AtomicBool) -> Result<IpvsTable, RunError> {
    let start = Instant::now();
    let mut last: Option<IpvsTable> = None;
    loop {
        if interrupted.load(Ordering::SeqCst) {
            return Err(RunError::Interrupted);
        }
        let table = lab.ipvs(|h| h.table())?;
        let stable = last
            .as_ref()
            .is_some_and(|prev| counters(prev) == counters(&table));
        if (stable && start.elapsed() >= Duration::from_millis(2200))
            || start.elapsed() > Duration::from_secs(10)
        {
            return Ok(table);
        }
        last = Some(table);
        std::thread::sleep(Duration::from_millis(1000));
    }
}

fn counters(t: &IpvsTable) -> Vec<(u64, u64, u64)> {
    t.services
        .iter()
        .flat_map(|s| &s.destinations)
        .map(|d| (d.stats.conns, d.stats.inpkts, d.stats.outpkts))
        .collect()
}

/// Runs `ipvsadm ARGS` in the director namespace (the independent reader).
fn ipvsadm_in(lab: &LabNetwork, args: &[&str]) -> Option<String> {
    use crate::netns::CommandExt;
    let mut cmd = Command::new("ipvsadm");
    cmd.args(args).stdin(Stdio::null());
    cmd.netns(lab.director()).ok()?;
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Asks a server for its own counters over gRPC from the director's
/// namespace (whose address is not a client's, so the question itself is
/// not counted), and sums what it saw from client addresses.
fn server_counters(
    lab: &LabNetwork,
    addr: SocketAddr,
    clients: &[IpAddr],
) -> Result<(u64, u64), String> {
    let clients: std::collections::HashSet<String> =
        clients.iter().map(|a| a.to_string()).collect();
    lab.director()
        .run(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                    .map_err(|e| e.to_string())?
                    .connect_timeout(Duration::from_secs(3))
                    .timeout(Duration::from_secs(5))
                    .connect()
                    .await
                    .map_err(|e| error_chain(&e))?;
                let mut client = grpc_demo::pb::demo_client::DemoClient::new(channel);
                let reply = client
                    .stats(grpc_demo::pb::StatsRequest {})
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner();
                let (mut rpcs, mut conns) = (0, 0);
                for p in reply.peers.iter().filter(|p| clients.contains(&p.peer_ip)) {
                    rpcs += p.rpcs;
                    conns += p.connections;
                }
                Ok((rpcs, conns))
            })
        })
        .map_err(|e| e.to_string())?
}

/// Per-client servers across all rounds: address → server → RPCs.
pub fn servers_per_client(rounds: &[LoadReport]) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in rounds {
        for src in &r.sources {
            let entry = out.entry(src.address.clone()).or_default();
            for (server, n) in &src.servers {
                *entry.entry(server.clone()).or_default() += n;
            }
        }
    }
    out
}

/// Reads the IPVS state once: persistence templates and, per destination,
/// address, weight, active, inactive and persistent connections. A failed
/// read is skipped, not fatal: sampling observes, it must not change the
/// run's outcome.
fn sample(lab: &LabNetwork) -> Option<(usize, Vec<DestRow>)> {
    let table = lab.ipvs(|h| h.table()).ok()?;
    let templates = lab
        .director()
        .run(crate::ipvs::read_conn_table)
        .ok()
        .and_then(Result::ok)
        .map_or(0, |entries| {
            entries.iter().filter(|e| e.is_template).count()
        });
    let destinations = table
        .services
        .iter()
        .flat_map(|s| &s.destinations)
        .map(|d| {
            (
                d.destination.address.to_string(),
                d.destination.weight,
                d.active_conns,
                d.inactive_conns,
                d.persist_conns,
            )
        })
        .collect();
    Some((templates, destinations))
}
