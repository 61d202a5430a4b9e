//! The gRPC real servers: `lab server` (this very binary) started inside
//! each server's namespace, so that a fault phase can SIGKILL one like a
//! real crash.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::RunError;
use crate::network::LabNetwork;
use crate::network::ServerPlan;
use crate::process::ChildGuard;

/// Starts every planned server (plan order) and waits until each listens.
pub(super) fn start_all(
    lab: &LabNetwork,
    exe: &Path,
    max_age: Option<Duration>,
) -> Result<Vec<Option<ChildGuard>>, RunError> {
    lab.plan()
        .servers
        .iter()
        .map(|s| start_server(lab, exe, s, max_age).map(Some))
        .collect()
}

/// Stops every server still running (SIGTERM, then SIGKILL after 3 s).
pub(super) fn stop_all(servers: Vec<Option<ChildGuard>>) {
    for guard in servers.into_iter().flatten() {
        guard.stop(Duration::from_secs(3));
    }
}

/// Starts `lab server` for `s` inside its namespace and waits until it
/// listens.
pub fn start_server(
    lab: &LabNetwork,
    exe: &Path,
    s: &ServerPlan,
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
