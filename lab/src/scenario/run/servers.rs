//! The gRPC real servers: `lab server` (this very binary) or the user's
//! own command ([`super::user_server`]) started inside each server's
//! namespace, so that a fault phase can SIGKILL one like a real crash.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use grpc_demo::server::{ServerArgs, parse_ready_line};

use super::RunError;
use super::user_server::UserServer;
use crate::network::{LabNetwork, Plan, ServerPlan};
use crate::process::ChildGuard;
use crate::scenario::Scenario;

/// Each real server's GOAWAY age (file order, which is plan order): its
/// own `max_connection_age`, else the load's.
pub(super) fn max_ages(scenario: &crate::scenario::Scenario) -> Vec<Option<Duration>> {
    let file = &scenario.file;
    file.virtual_server
        .real_servers
        .iter()
        .map(|rs| rs.max_connection_age.or(file.load.max_connection_age))
        .collect()
}

/// How each real server is started: `lab server` (this very binary, with
/// the scenario's `max_connection_age`) or the user's own command.
#[derive(Debug, Clone)]
pub struct Launcher {
    exe: PathBuf,
    /// Each server's GOAWAY age (plan order).
    max_age: Vec<Option<Duration>>,
    /// Plan order; `None`: `lab server`.
    user: Vec<Option<UserServer>>,
}

impl Launcher {
    /// The launcher of `scenario`'s servers as planned in `plan`; the user
    /// commands' output goes to `logs/servers/<name>.stdout|stderr`.
    pub fn new(scenario: &Scenario, plan: &Plan, exe: &Path, logs: &Path) -> Self {
        let user = (0..plan.servers.len())
            .map(|i| UserServer::of(scenario, plan, i, logs))
            .collect();
        Launcher {
            exe: exe.to_path_buf(),
            max_age: max_ages(scenario),
            user,
        }
    }

    /// Whether server `i` runs the user's command (it has no `Stats` RPC).
    pub fn is_user(&self, i: usize) -> bool {
        self.user.get(i).is_some_and(Option::is_some)
    }

    /// Whether any server runs a user command.
    pub fn any_user(&self) -> bool {
        self.user.iter().any(Option::is_some)
    }

    /// The user commands' log files that exist, as `(name in the report
    /// folder, path)`.
    pub fn log_files(&self) -> Vec<(String, PathBuf)> {
        self.user
            .iter()
            .flatten()
            .flat_map(|u| [u.stdout.clone(), u.stderr.clone()])
            .filter(|p| p.is_file())
            .map(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                (format!("servers/{name}"), p)
            })
            .collect()
    }

    /// Starts every planned server (plan order) but the standby ones, and
    /// waits until each is ready; a standby server's slot stays `None`
    /// until the phase that adds it.
    pub fn start_all(&self, lab: &LabNetwork) -> Result<Vec<Option<ChildGuard>>, RunError> {
        lab.plan()
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if s.standby {
                    Ok(None)
                } else {
                    self.start(lab, i).map(Some)
                }
            })
            .collect()
    }

    /// Starts server `i` inside its namespace and waits until it is ready.
    pub fn start(&self, lab: &LabNetwork, i: usize) -> Result<ChildGuard, RunError> {
        let s = &lab.plan().servers[i];
        match &self.user[i] {
            Some(u) => u.start(lab, s),
            None => start_server(lab, &self.exe, s, self.max_age.get(i).copied().flatten()),
        }
    }
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
    cmd.arg("server")
        .args(server_args(s, max_age).to_args())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut guard =
        ChildGuard::spawn_in(lab.ns(&s.name)?, cmd, &format!("gRPC server {}", s.name))?;
    guard.wait_ready(Duration::from_secs(15), |l| parse_ready_line(l).is_some())?;
    Ok(guard)
}

/// The flags of `lab server` for `s`.
fn server_args(s: &ServerPlan, max_age: Option<Duration>) -> ServerArgs {
    // In DR the packets arrive addressed to the VIP (held on lo), so the
    // server listens on every address of its namespace.
    let listen = SocketAddr::from((Ipv4Addr::UNSPECIFIED, s.port));
    let mut args = ServerArgs::new(&s.name, listen);
    if let Some(age) = max_age {
        args.max_connection_age = Some(age);
        args.max_connection_age_grace = Some(Duration::from_secs(1));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::Destination;

    /// The argv lab hands to `lab server` parses back into what lab meant.
    #[test]
    fn the_server_argv_parses_back() {
        let s = ServerPlan {
            name: "rs1".into(),
            address: Ipv4Addr::new(172, 22, 35, 1),
            port: 8080,
            destination: Destination::dr("172.22.35.1:8080".parse().unwrap(), 1),
            standby: false,
        };
        for age in [None, Some(Duration::from_millis(2500))] {
            let meant = server_args(&s, age);
            let parsed: ServerArgs = grpc_demo::cli::parse_args("server", meant.to_args()).unwrap();
            assert_eq!(parsed, meant);
            assert_eq!(parsed.listen, "0.0.0.0:8080".parse().unwrap());
            assert_eq!(parsed.max_connection_age, age);
        }
    }
}
