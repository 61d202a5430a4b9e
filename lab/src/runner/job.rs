//! The job a UML guest runs: written by the host as `job.json` in the run
//! directory, read by the guest's init.
//!
//! A file rather than kernel arguments: the kernel command line is short
//! (4 KiB on UML) and splits on spaces, while argv and the environment may
//! hold anything.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// File name of the job description inside the run directory.
pub const JOB_FILE: &str = "job.json";
/// File name of the job's exit status inside the run directory.
pub const STATUS_FILE: &str = "status";
/// File name of the guest's readiness stamp (Unix time in µs when the job started).
pub const READY_FILE: &str = "ready";

/// One command to run inside the guest, as the host would have run it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuestJob {
    /// The program and its arguments, as raw bytes (argv need not be UTF-8).
    pub argv: Vec<Vec<u8>>,
    /// The working directory (a host path, seen through hostfs).
    pub cwd: Vec<u8>,
    /// The whole environment to give the job.
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
    /// Extra kernel modules to load before the job starts (beyond IPVS, veth, bridge).
    pub modules: Vec<String>,
}

impl GuestJob {
    /// A job that runs `argv` in the current directory with the current environment.
    pub fn here(argv: impl IntoIterator<Item = OsString>) -> std::io::Result<Self> {
        Ok(Self {
            argv: argv.into_iter().map(OsString::into_vec).collect(),
            cwd: std::env::current_dir()?.as_os_str().as_bytes().to_vec(),
            env: std::env::vars_os()
                .map(|(k, v)| (k.into_vec(), v.into_vec()))
                .collect(),
            modules: Vec::new(),
        })
    }

    /// The program and arguments as `OsString`s.
    pub fn argv_os(&self) -> Vec<OsString> {
        self.argv.iter().cloned().map(OsString::from_vec).collect()
    }

    /// The working directory as a path.
    pub fn cwd_path(&self) -> PathBuf {
        PathBuf::from(OsString::from_vec(self.cwd.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_round_trips_non_utf8_arguments() {
        let job = GuestJob {
            argv: vec![b"/bin/echo".to_vec(), vec![0xff, b'a']],
            cwd: b"/work".to_vec(),
            env: vec![(b"K".to_vec(), b"v=1".to_vec())],
            modules: vec!["nf_tables".into()],
        };
        let text = serde_json::to_string(&job).unwrap();
        let back: GuestJob = serde_json::from_str(&text).unwrap();
        assert_eq!(back.argv, job.argv);
        assert_eq!(back.argv_os()[1].as_bytes(), &[0xff, b'a']);
        assert_eq!(back.cwd_path(), PathBuf::from("/work"));
        assert_eq!(back.env, job.env);
    }
}
