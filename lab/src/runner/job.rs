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
    /// The environment to give the job: the allowed part of the caller's
    /// ([`GUEST_ENV_ALLOWED`]).
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
    /// Extra kernel modules to load before the job starts (beyond IPVS, veth, bridge).
    pub modules: Vec<String>,
    /// Top-level entries of the host's `/tmp` the job needs (its working
    /// directory, its binary, paths in its arguments). The guest covers
    /// `/tmp` with its own tmpfs and binds these back from the host.
    #[serde(default)]
    pub host_tmp_entries: Vec<String>,
}

/// The only environment variables a guest job gets (a trailing `*` is a
/// prefix): what a shell, the lab and its tests use. Anything else, a token
/// or a password in the caller's environment, stays out of `job.json`.
pub const GUEST_ENV_ALLOWED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "COLUMNS",
    "LINES",
    "NO_COLOR",
    "CLICOLOR*",
    "CI",
    "CARGO_TERM_COLOR",
    "RUST_LOG",
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
    "RUST_TEST_*",
    "IPVSLAB_*",
];

/// The allowed part of an environment ([`GUEST_ENV_ALLOWED`]).
pub fn guest_env(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let allowed = |name: &[u8]| {
        GUEST_ENV_ALLOWED.iter().any(|a| match a.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix.as_bytes()),
            None => name == a.as_bytes(),
        })
    };
    vars.into_iter()
        .map(|(k, v)| (k.into_vec(), v.into_vec()))
        .filter(|(k, _)| allowed(k))
        .collect()
}

/// The host's temporary directory that the guest covers with a tmpfs.
pub const GUEST_PRIVATE_TMP: &str = "/tmp";

/// The top-level `/tmp` entry a path lies under (`/tmp/x/y` → `x`), if any.
fn tmp_entry(path: &std::path::Path) -> Option<String> {
    let rest = path.strip_prefix(GUEST_PRIVATE_TMP).ok()?;
    rest.components().next().and_then(|c| match c {
        std::path::Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
        _ => None,
    })
}

/// Which host `/tmp` entries a job run from `cwd` with `argv` needs.
pub fn needed_tmp_entries(cwd: &std::path::Path, argv: &[OsString]) -> Vec<String> {
    let mut entries: Vec<String> = Vec::new();
    let mut consider = |p: std::path::PathBuf| {
        let p = if p.is_absolute() { p } else { cwd.join(p) };
        add_tmp_entry(&mut entries, &p);
    };
    consider(cwd.to_path_buf());
    if let Ok(exe) = std::env::current_exe() {
        consider(exe);
    }
    for arg in argv {
        // `--reports=/tmp/x` as well as `/tmp/x`.
        let text = arg.to_string_lossy();
        let value = text.split_once('=').map_or(text.as_ref(), |(_, v)| v);
        if value.starts_with('/') || value.starts_with("./") || value.starts_with("../") {
            consider(std::path::PathBuf::from(value));
        }
        // And a path inside a longer argument, such as `sh -c 'cat /tmp/x'`.
        for p in embedded_tmp_paths(&text) {
            consider(p);
        }
    }
    entries
}

/// Every `/tmp/<entry>` named inside `text` (after a quote, a space, `=`
/// or `:`, or at its start).
pub fn embedded_tmp_paths(text: &str) -> Vec<std::path::PathBuf> {
    let prefix = format!("{GUEST_PRIVATE_TMP}/");
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find(&prefix) {
        let at = from + i;
        let boundary = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || "\"'=:;(<>|&".contains(c));
        let rest = &text[at + prefix.len()..];
        let entry: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace() && !"/\"';:)<>|&".contains(*c))
            .collect();
        if boundary && !entry.is_empty() {
            found.push(std::path::Path::new(GUEST_PRIVATE_TMP).join(entry));
        }
        from = at + prefix.len();
    }
    found
}

/// Adds the `/tmp` entry `path` lies under, once, when it exists on the host.
fn add_tmp_entry(entries: &mut Vec<String>, path: &std::path::Path) {
    if let Some(e) = tmp_entry(path)
        && !entries.contains(&e)
        && std::path::Path::new(GUEST_PRIVATE_TMP).join(&e).exists()
    {
        entries.push(e);
    }
}

impl GuestJob {
    /// A job that runs `argv` in the current directory with the current environment.
    pub fn here(argv: impl IntoIterator<Item = OsString>) -> std::io::Result<Self> {
        let argv: Vec<OsString> = argv.into_iter().collect();
        let cwd = std::env::current_dir()?;
        Ok(Self {
            host_tmp_entries: needed_tmp_entries(&cwd, &argv),
            argv: argv.into_iter().map(OsString::into_vec).collect(),
            cwd: cwd.as_os_str().as_bytes().to_vec(),
            env: guest_env(std::env::vars_os()),
            modules: Vec::new(),
        })
    }

    /// Shares these host paths with the guest too (outputs named in a way
    /// [`needed_tmp_entries`] cannot see, such as a relative path from `/tmp`).
    pub fn share_host_paths(&mut self, paths: &[PathBuf]) {
        for p in paths {
            add_tmp_entry(&mut self.host_tmp_entries, p);
        }
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
            host_tmp_entries: vec![],
        };
        let text = serde_json::to_string(&job).unwrap();
        let back: GuestJob = serde_json::from_str(&text).unwrap();
        assert_eq!(back.argv, job.argv);
        assert_eq!(back.argv_os()[1].as_bytes(), &[0xff, b'a']);
        assert_eq!(back.cwd_path(), PathBuf::from("/work"));
        assert_eq!(back.env, job.env);
    }

    #[test]
    fn only_the_named_environment_reaches_the_guest() {
        let vars = [
            ("PATH", "/usr/bin"),
            ("AWS_SECRET_ACCESS_KEY", "hunter2"),
            ("GITHUB_TOKEN", "ghp_x"),
            ("LC_ALL", "C"),
            ("IPVSLAB_UML_KERNEL", "/k"),
            ("RUST_LOG", "debug"),
            ("PATHOLOGICAL", "no"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let names: Vec<String> = guest_env(vars)
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect();
        assert_eq!(names, ["PATH", "LC_ALL", "IPVSLAB_UML_KERNEL", "RUST_LOG"]);
    }

    #[test]
    fn tmp_paths_in_the_arguments_are_shared_with_the_guest() {
        let dir = tempfile::Builder::new()
            .prefix("ipvslab-job-test")
            .tempdir_in("/tmp")
            .unwrap();
        let entry = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let reports = dir.path().join("reports");
        let argv: Vec<OsString> = vec![
            "lab".into(),
            "--reports".into(),
            reports.clone().into(),
            format!("--json={}", dir.path().join("r.json").display()).into(),
            "/etc/hosts".into(),
        ];
        let entries = needed_tmp_entries(std::path::Path::new("/"), &argv);
        assert!(entries.contains(&entry), "{entries:?}");
        assert_eq!(entries.iter().filter(|e| **e == entry).count(), 1);
        assert_eq!(
            tmp_entry(std::path::Path::new("/tmp/a/b")),
            Some("a".into())
        );
        assert_eq!(tmp_entry(std::path::Path::new("/var/tmp/a")), None);
    }

    #[test]
    fn tmp_paths_inside_a_shell_string_are_shared_too() {
        let dir = tempfile::Builder::new()
            .prefix("ipvslab-job-sh")
            .tempdir_in("/tmp")
            .unwrap();
        let entry = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let script = format!("cat '{}/x' && ls /var/tmp/no", dir.path().display());
        let argv: Vec<OsString> = vec!["sh".into(), "-c".into(), script.into()];
        let root = std::path::Path::new("/");
        // The test binary itself may live under /tmp (a clone there), and
        // is shared then too: expect it beside the script's directory.
        let plain: Vec<OsString> = vec!["sh".into(), "-c".into(), "true".into()];
        let mut expected = needed_tmp_entries(root, &plain);
        expected.push(entry);
        assert_eq!(needed_tmp_entries(root, &argv), expected);
        assert_eq!(
            embedded_tmp_paths("x=/tmp/a:/tmp/b/c notmp/tmp/d"),
            vec![PathBuf::from("/tmp/a"), PathBuf::from("/tmp/b")]
        );
    }
}
