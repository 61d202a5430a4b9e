//! Child processes the lab starts inside namespaces (gRPC servers, the load
//! generator, keepalived), each owned by a guard that stops it on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::netns::{CommandExt, NetNs, NetnsError};

/// Why a child process could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Preparing the namespace switch failed.
    #[error("cannot prepare {what} for namespace {ns}")]
    Netns {
        /// The process.
        what: String,
        /// The namespace.
        ns: String,
        /// The underlying error.
        #[source]
        source: NetnsError,
    },
    /// `spawn` failed.
    #[error("cannot start {what} in namespace {ns}")]
    Spawn {
        /// The process.
        what: String,
        /// The namespace.
        ns: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The process exited before it said it was ready.
    #[error("{what} in namespace {ns} exited before it was ready ({status}); its error is above")]
    ExitedEarly {
        /// The process.
        what: String,
        /// The namespace.
        ns: String,
        /// How it ended.
        status: String,
    },
    /// The process did not become ready in time.
    #[error("{what} in namespace {ns} was not ready after {waited:?}")]
    NotReady {
        /// The process.
        what: String,
        /// The namespace.
        ns: String,
        /// How long it was given.
        waited: Duration,
    },
}

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    what: String,
    ns: String,
    child: Option<Child>,
    /// Signals go to the whole process group (a user's command may fork).
    group: bool,
}

impl ChildGuard {
    /// Starts `cmd` inside `ns` with stdin closed. `what` names it in errors.
    pub fn spawn_in(ns: &NetNs, mut cmd: Command, what: &str) -> Result<Self, ProcessError> {
        cmd.netns(ns).map_err(|source| ProcessError::Netns {
            what: what.into(),
            ns: ns.name().into(),
            source,
        })?;
        cmd.stdin(Stdio::null());
        let child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            what: what.into(),
            ns: ns.name().into(),
            source,
        })?;
        Ok(Self {
            what: what.into(),
            ns: ns.name().into(),
            child: Some(child),
            group: false,
        })
    }

    /// [`spawn_in`](Self::spawn_in) in a process group of its own: every
    /// signal, and the stop on drop, reach whatever the command forked too.
    pub fn spawn_group_in(ns: &NetNs, mut cmd: Command, what: &str) -> Result<Self, ProcessError> {
        use std::os::unix::process::CommandExt as _;
        cmd.process_group(0);
        let mut guard = Self::spawn_in(ns, cmd, what)?;
        guard.group = true;
        Ok(guard)
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What this process is (for messages).
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Takes the child's piped stdout.
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.as_mut().and_then(|c| c.stdout.take())
    }

    /// Takes the child's piped stderr.
    pub fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.as_mut().and_then(|c| c.stderr.take())
    }

    /// Reads stdout lines until one satisfies `ready`, or the process exits,
    /// or `timeout` passes; the rest of stdout is then forwarded to ours.
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        ready: impl Fn(&str) -> bool + Send + 'static,
    ) -> Result<(), ProcessError> {
        let stdout = self
            .take_stdout()
            .expect("wait_ready needs Stdio::piped() stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut signalled = false;
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if !signalled && ready(&line) {
                    signalled = true;
                    let _ = tx.send(());
                }
            }
        });
        let start = Instant::now();
        loop {
            if rx.try_recv().is_ok() {
                return Ok(());
            }
            if let Some(status) = self.try_wait() {
                return Err(ProcessError::ExitedEarly {
                    what: self.what.clone(),
                    ns: self.ns.clone(),
                    status: status.to_string(),
                });
            }
            if start.elapsed() > timeout {
                return Err(ProcessError::NotReady {
                    what: self.what.clone(),
                    ns: self.ns.clone(),
                    waited: timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The exit status, if the process has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends a signal (e.g. SIGTERM for a graceful stop, SIGKILL for a crash).
    pub fn signal(&self, signal: i32) {
        if let Some(c) = &self.child {
            // A number that is no signal is refused, as kill(2) would.
            if let Ok(signal) = nix::sys::signal::Signal::try_from(signal) {
                let pid = c.id() as i32;
                let target = if self.group { -pid } else { pid };
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(target), signal);
            }
        }
    }

    /// Waits for the process to end, up to `timeout`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the process: SIGTERM, `grace` to exit, then SIGKILL. Returns
    /// how it ended.
    pub fn stop(mut self, grace: Duration) -> Option<ExitStatus> {
        self.stop_inner(grace)
    }

    fn stop_inner(&mut self, grace: Duration) -> Option<ExitStatus> {
        let status = match self.try_wait() {
            Some(s) => Some(s),
            None => {
                self.signal(libc::SIGTERM);
                self.wait_timeout(grace).or_else(|| {
                    self.signal(libc::SIGKILL);
                    self.child.as_mut().and_then(|c| c.wait().ok())
                })
            }
        };
        if self.group {
            // What the command forked may outlive it: nothing is left behind.
            self.signal(libc::SIGKILL);
        }
        self.child = None;
        status
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop_inner(Duration::from_secs(2));
        }
    }
}
