//! What a UML run leaves when its `lab` process is killed with SIGKILL: the
//! kernel process (and its helpers) and the private run directory. `lab gc`
//! removes both for every run whose owner is gone.
//!
//! A run is identified by its id, `ipvslab-<owner pid>-<n>`: the kernel is
//! started with `umid=<id>` on its command line (UML's helper processes are
//! forks of it and carry the same command line), and its run directory is
//! `$TMPDIR/<id>.uml`. Processes are found by that exact argument, never by
//! a broad name, and only when the owner pid no longer exists.

use std::path::{Path, PathBuf};

use crate::netns::pid_alive;

/// The prefix of every UML run id.
const RUN_PREFIX: &str = "ipvslab-";
/// The suffix of a run directory.
const RUN_DIR_SUFFIX: &str = ".uml";

/// What [`gc`] removed.
#[derive(Debug, Default)]
pub struct LeftoverReport {
    /// Kernel (and helper) processes killed, as `pid (umid)`.
    pub killed: Vec<String>,
    /// Run directories removed.
    pub removed_dirs: Vec<PathBuf>,
    /// What could not be removed, with why.
    pub failed: Vec<String>,
}

/// The owner pid of a run id `ipvslab-<pid>-<n>`.
pub fn owner_of(run_id: &str) -> Option<u32> {
    let rest = run_id.strip_prefix(RUN_PREFIX)?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// The run id in a kernel command line (`umid=ipvslab-<pid>-<n>`), if any.
fn umid_in(cmdline: &[u8]) -> Option<String> {
    cmdline
        .split(|&b| b == 0)
        .filter_map(|arg| std::str::from_utf8(arg).ok())
        .find_map(|arg| arg.strip_prefix("umid="))
        .filter(|id| owner_of(id).is_some())
        .map(str::to_owned)
}

/// Kills every lab UML process whose owner is gone, and removes every run
/// directory in `tmp` whose owner is gone.
pub fn gc(tmp: &Path) -> LeftoverReport {
    let mut report = LeftoverReport::default();
    let me = std::process::id();
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for entry in procs.filter_map(|e| e.ok()) {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let Some(umid) = umid_in(&cmdline) else {
                continue;
            };
            let owner = owner_of(&umid).unwrap_or(me);
            if owner == me || pid_alive(owner) {
                continue;
            }
            match nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            ) {
                Ok(()) => report.killed.push(format!("{pid} ({umid})")),
                Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => report.failed.push(format!("kill {pid} ({umid}): {e}")),
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(tmp) {
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(RUN_DIR_SUFFIX) else {
                continue;
            };
            let Some(owner) = owner_of(id) else {
                continue;
            };
            if owner == me || pid_alive(owner) {
                continue;
            }
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => report.removed_dirs.push(entry.path()),
                Err(e) => report
                    .failed
                    .push(format!("remove {}: {e}", entry.path().display())),
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_name_their_owner() {
        assert_eq!(owner_of("ipvslab-1234-0"), Some(1234));
        assert_eq!(owner_of("ipvslab-1234"), None);
        assert_eq!(owner_of("ipvslab-x-0"), None);
        assert_eq!(owner_of("other-1234-0"), None);
        let cmdline = b"/usr/bin/linux\0mem=384M\0umid=ipvslab-77-3\0con=null\0";
        assert_eq!(umid_in(cmdline), Some("ipvslab-77-3".into()));
        assert_eq!(umid_in(b"sleep\0umid=someone-else\0"), None);
    }

    #[test]
    fn run_directories_of_dead_owners_are_removed_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        // A pid above the kernel's maximum never exists.
        let dead = tmp.path().join("ipvslab-4194999-0.uml");
        let live = tmp
            .path()
            .join(format!("ipvslab-{}-0.uml", std::process::id()));
        let unrelated = tmp.path().join("ipvslab-notes.uml");
        for d in [&dead, &live, &unrelated] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(dead.join("job.json"), b"{}").unwrap();
        let report = gc(tmp.path());
        assert_eq!(report.removed_dirs, vec![dead.clone()]);
        assert!(!dead.exists() && live.exists() && unrelated.exists());
    }
}
