//! Why a scenario run stopped before its end.

use std::path::PathBuf;
use std::time::Duration;

use crate::network::BringupError;
use crate::process::ProcessError;

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
    /// A user command (`[server]`, `[client]`) could not be started.
    #[error("{what} `{command}` cannot be started: {detail}")]
    CommandNotFound {
        /// Whose command.
        what: String,
        /// The command as run.
        command: String,
        /// Why.
        detail: String,
    },
    /// A user server command never got ready.
    #[error(
        "real server {server}: its command `{command}` never got ready: {why}. \
         Its last stderr lines:\n{stderr_tail}"
    )]
    ServerNotReady {
        /// The real server.
        server: String,
        /// The command as run.
        command: String,
        /// What was seen.
        why: String,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// The user's client command failed or ran too long.
    #[error("the client command `{command}` {why}. Its last stderr lines:\n{stderr_tail}")]
    Client {
        /// The command as run.
        command: String,
        /// How it ended.
        why: String,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// Interrupted by SIGINT/SIGTERM; everything was cleaned up.
    #[error("interrupted; the lab network was removed")]
    Interrupted,
}
