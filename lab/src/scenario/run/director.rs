//! What manages IPVS while the load runs: nothing (`static`), the lab's
//! own keepalived-style checker, or Debian's keepalived given the
//! scenario as a keepalived.conf. Started after the servers, stopped after
//! IPVS settled, when its events are rebased to the origin.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::RunError;
use super::RunOptions;
use super::live::Origin;
use super::measurements::{DirectorInfo, HealthChange, LogLine};
use super::progress::Status;
use crate::health::{HealthChecker, HealthEventKind};
use crate::keepalived::run::Keepalived;
use crate::network::LabNetwork;
use crate::network::Plan;
use crate::report::model::{Event, EventKind};
use crate::scenario::Scenario;
use crate::scenario::keepalived::keepalived_conf;
use crate::scenario::plan::health_plan;
use crate::scenario::spec::DirectorKind;

/// The checker or daemon that manages IPVS while the load runs.
pub(super) enum Manager {
    /// Nothing checks health.
    Static,
    /// The lab's own checker.
    Lab(HealthChecker),
    /// Debian's keepalived.
    Keepalived(Keepalived),
}

/// What the manager reported once stopped.
#[derive(Debug, Default)]
pub(super) struct ManagerLog {
    /// Checks that failed and state changes, as report events.
    pub(super) events: Vec<Event>,
    /// The lab checker's up/down decisions.
    pub(super) health_changes: Vec<HealthChange>,
}

/// Starts the director's manager the scenario (or `--keepalived`) asks for.
pub(super) fn start(
    scenario: &Scenario,
    opts: &RunOptions,
    lab: &LabNetwork,
    work: &Path,
    status: &mut Status,
) -> Result<(Manager, DirectorInfo), RunError> {
    let kind = opts.director.unwrap_or(scenario.file.director);
    let mut info = DirectorInfo {
        kind: kind_name(kind).into(),
        ..Default::default()
    };
    let manager = match kind {
        DirectorKind::Static => Manager::Static,
        DirectorKind::Lab => match health_plan(scenario, lab.plan()) {
            Some(hp) => {
                status.say("starting the lab's health checker in the director");
                Manager::Lab(HealthChecker::start(lab.director(), hp)?)
            }
            None => Manager::Static,
        },
        DirectorKind::Keepalived => {
            status.say("starting keepalived in the director");
            start_keepalived(scenario, &opts.interrupted, lab, work, &mut info)?
        }
    };
    Ok((manager, info))
}

fn kind_name(kind: DirectorKind) -> &'static str {
    match kind {
        DirectorKind::Lab => "lab",
        DirectorKind::Keepalived => "keepalived",
        DirectorKind::Static => "static",
    }
}

/// Hands keepalived an empty table (it builds the service itself), starts
/// it, and waits until it has put every destination in.
fn start_keepalived(
    scenario: &Scenario,
    interrupted: &AtomicBool,
    lab: &LabNetwork,
    work: &Path,
    info: &mut DirectorInfo,
) -> Result<Manager, RunError> {
    let plan = lab.plan();
    let service = plan.service.clone();
    lab.ipvs(move |h| h.delete_service(&service))?;
    let conf = crate::keepalived::render_conf(
        &keepalived_conf(scenario),
        &crate::keepalived::RenderOptions {
            router_id: format!("ipvslab-{}", plan.topology.run),
            lvs_flush_on_stop: true,
        },
    );
    let k = Keepalived::start(lab.director(), &conf, work)?;
    let started = Instant::now();
    info.keepalived_conf = Some(conf);
    wait_for_destinations(lab, plan, interrupted, Duration::from_secs(20))
        .map_err(|detail| RunError::KeepalivedNotReady { detail })?;
    info.populated_s = Some(started.elapsed().as_secs_f64());
    Ok(Manager::Keepalived(k))
}

impl Manager {
    /// Stops the manager; its events and log land on the report's time
    /// axis (keepalived's log in `info`).
    pub(super) fn stop(self, origin: Origin, info: &mut DirectorInfo) -> ManagerLog {
        let mut log = ManagerLog::default();
        match self {
            Manager::Static => {}
            Manager::Lab(checker) => {
                for e in checker.stop() {
                    let t_s = origin.secs(e.at);
                    match e.kind {
                        HealthEventKind::Down | HealthEventKind::Up => {
                            log.health_changes.push(HealthChange {
                                t_s,
                                server: e.server.clone(),
                                up: e.kind == HealthEventKind::Up,
                            })
                        }
                        _ => {}
                    }
                    let kind = match e.kind {
                        HealthEventKind::CheckFailed => EventKind::Check,
                        _ => EventKind::Health,
                    };
                    log.events.push(Event {
                        t_s,
                        kind,
                        detail: e.detail,
                    });
                }
            }
            Manager::Keepalived(k) => {
                info.keepalived_log = k
                    .stop()
                    .into_iter()
                    .map(|(at, line)| LogLine {
                        t_s: origin.secs(at),
                        line,
                    })
                    .collect();
            }
        }
        log
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
