//! The `[client]` round: the user's own client command in the client
//! namespace, once per client IP or once in all, followed until every
//! process exits (phases and observers tick meanwhile). The lab then has
//! no RPC counts, only the kernel's view of the connections.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::live::{Live, Origin};
use super::measurements::{ClientProcess, ClientRun};
use super::progress::Status;
use super::user_server::{common_values, tail};
use super::{RunError, RunOptions};
use crate::network::CLIENT_HOST;
use crate::process::{ChildGuard, ProcessError};
use crate::scenario::Scenario;
use crate::scenario::byo::{self, ClientPer};

/// One client process while it runs.
struct Running {
    source: String,
    command: String,
    stderr: PathBuf,
    guard: ChildGuard,
    ended: Option<(std::process::ExitStatus, f64)>,
}

/// Runs `[client]` if the scenario has one; its output goes to
/// `logs/clients/<source>.stdout|stderr`.
pub(super) fn run_client(
    scenario: &Scenario,
    opts: &RunOptions,
    live: &mut Live<'_>,
    status: &mut Status,
    logs: &Path,
) -> Result<Option<ClientRun>, RunError> {
    let Some(client) = &scenario.file.client else {
        return Ok(None);
    };
    let plan = live.lab.plan();
    let all: Vec<String> = plan
        .client_addresses
        .iter()
        .map(|a| a.to_string())
        .collect();
    let sources: Vec<(String, String)> = match client.per {
        ClientPer::Ip => all.iter().map(|a| (a.clone(), a.clone())).collect(),
        ClientPer::Once => vec![("once".into(), all.join(","))],
    };
    let dir = logs.join("clients");
    std::fs::create_dir_all(&dir).map_err(|source| RunError::Io {
        what: format!("creating {}", dir.display()),
        source,
    })?;
    status.say("running the client command");
    let started = Instant::now();
    let mut running = Vec::new();
    for (label, source) in sources {
        running.push(spawn_one(scenario, live, &dir, &label, &source)?);
    }
    if live.origin.is_none() {
        live.origin = Some(Origin(started));
    }
    follow(&mut running, client.timeout, opts, live, status, started)?;
    let processes = running
        .iter()
        .map(|r| {
            let (exit, elapsed_s) = r.ended.expect("followed to the end");
            ClientProcess {
                source: r.source.clone(),
                exit: exit.to_string(),
                elapsed_s,
            }
        })
        .collect();
    if let Some(r) = running
        .iter()
        .find(|r| r.ended.is_some_and(|(s, _)| !s.success()))
    {
        return Err(RunError::Client {
            command: r.command.clone(),
            why: format!(
                "failed for source {}: {}",
                r.source,
                r.ended.expect("ended").0
            ),
            stderr_tail: tail(&r.stderr, 12),
        });
    }
    Ok(Some(ClientRun {
        command: running
            .first()
            .map(|r| r.command.clone())
            .unwrap_or_default(),
        per: format!("{:?}", client.per).to_lowercase(),
        processes,
    }))
}

fn spawn_one(
    scenario: &Scenario,
    live: &Live<'_>,
    dir: &Path,
    label: &str,
    source: &str,
) -> Result<Running, RunError> {
    let client = scenario.file.client.as_ref().expect("has a client");
    let vs = &scenario.file.virtual_server;
    let mut values = vec![
        ("vip", vs.vip.to_string()),
        ("port", vs.port.to_string()),
        ("source", source.to_string()),
    ];
    values.extend(common_values(scenario));
    let argv: Vec<String> = client
        .command
        .iter()
        .map(|a| byo::expand(a, &values))
        .collect();
    let command = argv.join(" ");
    let open = |p: &Path| {
        std::fs::File::create(p).map_err(|source| RunError::Io {
            what: format!("creating {}", p.display()),
            source,
        })
    };
    let stdout = dir.join(format!("{label}.stdout"));
    let stderr = dir.join(format!("{label}.stderr"));
    let (program, args) = argv.split_first().expect("validated: not empty");
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("LAB_VIP", vs.vip.to_string())
        .env("LAB_PORT", vs.port.to_string())
        .env("LAB_SOURCE", source)
        .env("PYTHONUNBUFFERED", "1")
        .stdout(open(&stdout)?)
        .stderr(open(&stderr)?);
    let what = "the client command".to_string();
    let guard = match ChildGuard::spawn_group_in(live.lab.ns(CLIENT_HOST)?, cmd, &what) {
        Err(ProcessError::Spawn { source, .. }) => {
            return Err(RunError::CommandNotFound {
                what,
                command,
                detail: source.to_string(),
            });
        }
        other => other?,
    };
    Ok(Running {
        source: source.to_string(),
        command,
        stderr,
        guard,
        ended: None,
    })
}

/// Ticks `live` until every process ended; one still running after
/// `timeout` is an error (every guard is dropped: stopped and reaped).
fn follow(
    running: &mut [Running],
    timeout: Duration,
    opts: &RunOptions,
    live: &mut Live<'_>,
    status: &mut Status,
    started: Instant,
) -> Result<(), RunError> {
    loop {
        if opts.interrupted.load(Ordering::SeqCst) {
            return Err(RunError::Interrupted);
        }
        live.tick()?;
        for r in running.iter_mut().filter(|r| r.ended.is_none()) {
            if let Some(s) = r.guard.try_wait() {
                r.ended = Some((s, started.elapsed().as_secs_f64()));
            }
        }
        let done = running.iter().filter(|r| r.ended.is_some()).count();
        if done == running.len() {
            return Ok(());
        }
        if started.elapsed() > timeout {
            let r = running
                .iter()
                .find(|r| r.ended.is_none())
                .expect("one runs");
            return Err(RunError::Client {
                command: r.command.clone(),
                why: format!("still ran after the [client] timeout of {timeout:?}; it was killed"),
                stderr_tail: tail(&r.stderr, 12),
            });
        }
        status.tick(&format!(
            "client command: {done}/{} finished, {:.1} s",
            running.len(),
            started.elapsed().as_secs_f64()
        ));
        std::thread::sleep(Duration::from_millis(20));
    }
}
