//! Debian's keepalived, run inside the director's namespace with a
//! generated keepalived.conf, as the alternative to the lab's own checker.
//!
//! Only the checker subsystem runs (`--check`): VRRP would move addresses,
//! and the lab's VIP is its own. Everything keepalived writes stays in the
//! run's private directory: the config and the pid files of its three
//! processes. It logs to the console (`--log-console --log-detail
//! --no-syslog`), which the lab reads line by line and time-stamps, so the
//! log lands in the report beside the IPVS changes it caused.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::netns::NetNs;
use crate::process::{ChildGuard, ProcessError};

/// Where Debian installs keepalived.
pub const KEEPALIVED_BIN: &str = "/usr/sbin/keepalived";

/// Why keepalived could not be started.
#[derive(Debug, thiserror::Error)]
pub enum KeepalivedRunError {
    /// The binary is missing.
    #[error("{path} not found: install Debian's keepalived package")]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Writing the config or making the run directory failed.
    #[error("writing {path}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// keepalived refused the generated configuration (`--config-test`).
    #[error("keepalived rejected the generated configuration: {detail}")]
    ConfigRejected {
        /// What keepalived said.
        detail: String,
    },
    /// The process could not be started.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

/// A running keepalived; stopped with SIGTERM (it then removes the IPVS
/// services it created) when stopped or dropped.
#[derive(Debug)]
pub struct Keepalived {
    guard: Option<ChildGuard>,
    log: Arc<Mutex<Vec<(Instant, String)>>>,
    /// The threads reading keepalived's stdout and stderr into `log`.
    readers: Vec<std::thread::JoinHandle<()>>,
    dir: PathBuf,
}

/// The command line: checker only, foreground, console log, private pid
/// files. Pure, so it is unit-tested.
pub fn command_args(conf: &Path, dir: &Path) -> Vec<String> {
    let p = |name: &str| dir.join(name).display().to_string();
    vec![
        "--check".into(),
        "--dont-fork".into(),
        "--log-console".into(),
        "--log-detail".into(),
        "--no-syslog".into(),
        "--dont-respawn".into(),
        format!("--use-file={}", conf.display()),
        format!("--pid={}", p("keepalived.pid")),
        format!("--checkers_pid={}", p("checkers.pid")),
        format!("--vrrp_pid={}", p("vrrp.pid")),
        format!("--bfd_pid={}", p("bfd.pid")),
    ]
}

impl Keepalived {
    /// Writes `conf` under `work/keepalived/`, checks it with
    /// `keepalived --config-test`, and starts keepalived inside `ns`.
    pub fn start(ns: &NetNs, conf: &str, work: &Path) -> Result<Self, KeepalivedRunError> {
        let bin = PathBuf::from(KEEPALIVED_BIN);
        if !bin.is_file() {
            return Err(KeepalivedRunError::Missing { path: bin });
        }
        let dir = work.join("keepalived");
        std::fs::create_dir_all(&dir).map_err(|source| KeepalivedRunError::Write {
            path: dir.clone(),
            source,
        })?;
        let conf_path = dir.join("keepalived.conf");
        std::fs::write(&conf_path, conf).map_err(|source| KeepalivedRunError::Write {
            path: conf_path.clone(),
            source,
        })?;

        let test = Command::new(&bin)
            .arg(format!("--use-file={}", conf_path.display()))
            .arg("--config-test")
            .stdin(Stdio::null())
            .output()
            .map_err(|source| KeepalivedRunError::Write {
                path: bin.clone(),
                source,
            })?;
        if !test.status.success() {
            return Err(KeepalivedRunError::ConfigRejected {
                detail: String::from_utf8_lossy(&test.stderr).trim().to_string(),
            });
        }

        let mut cmd = Command::new(&bin);
        cmd.args(command_args(&conf_path, &dir))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut guard = ChildGuard::spawn_in(ns, cmd, "keepalived")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(out) = guard.take_stdout() {
            readers.push(collect(out, Arc::clone(&log)));
        }
        if let Some(err) = guard.take_stderr() {
            readers.push(collect(err, Arc::clone(&log)));
        }
        Ok(Keepalived {
            guard: Some(guard),
            log,
            readers,
            dir,
        })
    }

    /// The run directory holding the config and pid files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops keepalived (SIGTERM, 5 s grace) and returns its log.
    pub fn stop(mut self) -> Vec<(Instant, String)> {
        if let Some(g) = self.guard.take() {
            g.stop(Duration::from_secs(5));
        }
        // The readers end when the pipes close, i.e. when keepalived and
        // the checker it forked are gone. A child that outlived it would
        // hold a pipe open: wait for them, but not forever.
        let deadline = Instant::now() + READERS_GRACE;
        for reader in self.readers.drain(..) {
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if reader.is_finished() {
                let _ = reader.join();
            } else {
                tracing::warn!(
                    "keepalived's output pipe is still open after it stopped; its log may miss the last lines"
                );
            }
        }
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// How long [`Keepalived::stop`] waits for the log readers to see the end of
/// keepalived's pipes.
const READERS_GRACE: Duration = Duration::from_secs(2);

fn collect(
    pipe: impl std::io::Read + Send + 'static,
    log: Arc<Mutex<Vec<(Instant, String)>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((Instant::now(), line.trim_end().to_string()));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_files_stay_in_the_private_directory() {
        let args = command_args(Path::new("/w/k/keepalived.conf"), Path::new("/w/k"));
        assert!(args.contains(&"--check".to_string()), "no VRRP");
        assert!(args.contains(&"--dont-fork".to_string()));
        for flag in ["--pid=", "--checkers_pid=", "--vrrp_pid=", "--bfd_pid="] {
            let a = args.iter().find(|a| a.starts_with(flag)).expect(flag);
            assert!(a.starts_with(&format!("{flag}/w/k/")), "{a}");
        }
    }
}
