//! The gRPC real servers: `lab server` (this very binary) started inside
//! each server's namespace, so that a fault phase can SIGKILL one like a
//! real crash.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use grpc_demo::server::{ServerArgs, parse_ready_line};

use super::RunError;
use crate::network::LabNetwork;
use crate::network::ServerPlan;
use crate::process::ChildGuard;

/// Starts every planned server (plan order) and waits until each listens.
pub(super) fn start_all(
    lab: &LabNetwork,
    exe: &Path,
    max_age: &[Option<Duration>],
) -> Result<Vec<Option<ChildGuard>>, RunError> {
    lab.plan()
        .servers
        .iter()
        .enumerate()
        .map(|(i, s)| start_server(lab, exe, s, max_age.get(i).copied().flatten()).map(Some))
        .collect()
}

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
