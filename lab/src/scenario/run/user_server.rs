//! A real server that runs the user's own command (`[server]`, or
//! `command` in its `real_server`): started in its namespace in a process
//! group of its own, its stdout and stderr appended to files that end up in
//! the report folder, ready once a TCP connect (or `grpc.health.v1`)
//! from the director succeeds.

use std::io::{Read, Seek, SeekFrom};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::RunError;
use crate::network::{LabNetwork, Plan, ServerPlan};
use crate::process::{ChildGuard, ProcessError};
use crate::scenario::Scenario;
use crate::scenario::byo::{self, Readiness};

/// Lines of stderr shown when a command never gets ready.
const STDERR_TAIL_LINES: usize = 12;

/// One real server's user command, its placeholders filled.
#[derive(Debug, Clone)]
pub struct UserServer {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    ready: Readiness,
    ready_timeout: Duration,
    pub(super) stdout: PathBuf,
    pub(super) stderr: PathBuf,
}

/// The values of the placeholders every command may use.
pub(super) fn common_values(scenario: &Scenario) -> Vec<(&'static str, String)> {
    let python = byo::find_python()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "python3".into());
    vec![
        ("python", python),
        ("scenario_dir", scenario.dir().display().to_string()),
    ]
}

impl UserServer {
    /// Server `i`'s command (`None`: it runs `lab server`).
    pub(super) fn of(scenario: &Scenario, plan: &Plan, i: usize, logs: &Path) -> Option<Self> {
        let template = byo::server_command(&scenario.file, i)?;
        let s = &plan.servers[i];
        let shared = scenario.file.server.clone().unwrap_or_default();
        let mut values = vec![
            ("name", s.name.clone()),
            ("address", s.address.to_string()),
            ("port", s.port.to_string()),
            ("vip", scenario.file.virtual_server.vip.to_string()),
            (
                "max_connection_age_ms",
                // The server's own age, else the load's (as `lab server` gets).
                scenario
                    .file
                    .virtual_server
                    .real_servers
                    .get(i)
                    .and_then(|rs| rs.max_connection_age)
                    .or(scenario.file.load.max_connection_age)
                    .map_or(0, |d| d.as_millis())
                    .to_string(),
            ),
        ];
        values.extend(common_values(scenario));
        let dir = logs.join("servers");
        Some(UserServer {
            argv: template.iter().map(|a| byo::expand(a, &values)).collect(),
            env: vec![
                ("LAB_SERVER_NAME".into(), s.name.clone()),
                ("LAB_SERVER_ADDRESS".into(), s.address.to_string()),
                ("LAB_SERVER_PORT".into(), s.port.to_string()),
                (
                    "LAB_VIP".into(),
                    scenario.file.virtual_server.vip.to_string(),
                ),
                // Output reaches the log files as it is written, so a
                // server that is killed still leaves its lines.
                ("PYTHONUNBUFFERED".into(), "1".into()),
            ],
            ready: shared.ready,
            ready_timeout: shared.ready_timeout,
            stdout: dir.join(format!("{}.stdout", s.name)),
            stderr: dir.join(format!("{}.stderr", s.name)),
        })
    }

    /// The command as a shell would show it.
    fn shown(&self) -> String {
        self.argv.join(" ")
    }

    /// Starts the command in `s`'s namespace (appending to its logs, so a
    /// restart keeps the earlier lines) and waits until it is ready.
    pub(super) fn start(&self, lab: &LabNetwork, s: &ServerPlan) -> Result<ChildGuard, RunError> {
        let io = |what: &str, source| RunError::Io {
            what: format!("{what} for real server {}", s.name),
            source,
        };
        if let Some(dir) = self.stdout.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io("creating the log folder", e))?;
        }
        let open = |p: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| io(&format!("opening {}", p.display()), e))
        };
        let (program, args) = self.argv.split_first().expect("validated: not empty");
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(open(&self.stdout)?)
            .stderr(open(&self.stderr)?);
        let what = format!("real server {}'s command", s.name);
        let mut guard = match ChildGuard::spawn_group_in(lab.ns(&s.name)?, cmd, &what) {
            Err(ProcessError::Spawn { source, .. })
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                return Err(RunError::CommandNotFound {
                    what,
                    command: self.shown(),
                    detail: source.to_string(),
                });
            }
            other => other?,
        };
        self.wait_ready(lab, s, &mut guard)?;
        Ok(guard)
    }

    /// Probes from the director until the server answers, it exits, or
    /// the timeout passes (the guard is then dropped: stopped and reaped).
    fn wait_ready(
        &self,
        lab: &LabNetwork,
        s: &ServerPlan,
        guard: &mut ChildGuard,
    ) -> Result<(), RunError> {
        let addr = SocketAddr::new(IpAddr::V4(s.address), s.port);
        let ready = self.ready;
        let start = Instant::now();
        let mut last;
        loop {
            if let Some(status) = guard.try_wait() {
                return Err(self.not_ready(s, format!("it exited ({status})")));
            }
            let probe = move || match ready {
                Readiness::Tcp => crate::health::run::tcp_probe(addr, Duration::from_millis(500)),
                Readiness::GrpcHealth => {
                    crate::health::run::grpc_probe(addr, "", Duration::from_millis(1000))
                }
            };
            match lab.director().run(probe) {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(why)) => last = why,
                Err(e) => last = e.to_string(),
            }
            if start.elapsed() > self.ready_timeout {
                return Err(self.not_ready(
                    s,
                    format!(
                        "no {} answer at {addr} within {:?} (last: {last}); it was stopped",
                        match ready {
                            Readiness::Tcp => "TCP",
                            Readiness::GrpcHealth => "grpc.health.v1",
                        },
                        self.ready_timeout
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn not_ready(&self, s: &ServerPlan, why: String) -> RunError {
        RunError::ServerNotReady {
            server: s.name.clone(),
            command: self.shown(),
            why,
            stderr_tail: tail(&self.stderr, STDERR_TAIL_LINES),
        }
    }
}

/// The last `n` lines of a file (at most its last 64 KiB), or a note that
/// it is empty.
pub(super) fn tail(path: &Path, n: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return format!("  ({} is empty)", path.display());
    }
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("err");
        std::fs::write(&p, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&p, 2), "  | b\n  | c");
        std::fs::write(&p, "").unwrap();
        assert!(tail(&p, 2).contains("is empty"));
    }
}
