//! The files a scenario run writes (`--json`, `--reports`): claimed before
//! anything is built, so that a path that cannot be written fails at once,
//! and so that the UML guest, whose `/tmp` is private, writes to the very
//! file the user named rather than to a copy that vanishes with the guest.
//!
//! Claiming creates what does not exist yet (the report folder, an empty
//! JSON file): creating it is the only real proof that it can be written, and
//! an existing host path is what the guest runner shares into the guest. A
//! JSON file that this claim created and that is still empty when the run
//! fails is removed again, so a failed run leaves nothing behind.

use std::path::{Path, PathBuf};

/// Why an output cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The report folder cannot be created or written.
    #[error(
        "cannot write reports under {path}; choose a writable folder with --reports \
         (nothing was built)"
    )]
    Reports {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The JSON file cannot be created.
    #[error(
        "cannot write the JSON report {path}; its folder must exist and be writable \
         (nothing was built)"
    )]
    Json {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Output paths that exist and are writable, with the ones this claim made.
#[derive(Debug, Default)]
pub struct ClaimedOutputs {
    /// Every claimed path, absolute (to share with a guest).
    pub paths: Vec<PathBuf>,
    /// JSON files this claim created (removed again if still empty).
    created_files: Vec<PathBuf>,
}

/// `path` made absolute against the current directory.
fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_owned())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

/// Claims the report folder and every JSON file.
pub fn claim(reports: &Path, json_files: &[PathBuf]) -> Result<ClaimedOutputs, OutputError> {
    let mut claimed = ClaimedOutputs::default();
    let reports_err = |source| OutputError::Reports {
        path: reports.to_owned(),
        source,
    };
    let dir = absolute(reports).map_err(reports_err)?;
    std::fs::create_dir_all(&dir).map_err(reports_err)?;
    // Writable, not just present: a probe file, removed at once.
    tempfile::Builder::new()
        .prefix(".ipvslab-write-probe")
        .tempfile_in(&dir)
        .map_err(reports_err)?;
    claimed.paths.push(dir);
    for file in json_files {
        let json_err = |source| OutputError::Json {
            path: file.clone(),
            source,
        };
        let path = absolute(file).map_err(json_err)?;
        if path.is_dir() {
            return Err(json_err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "it is a directory",
            )));
        }
        let existed = path.exists();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(json_err)?;
        if !existed {
            claimed.created_files.push(path.clone());
        }
        claimed.paths.push(path);
    }
    Ok(claimed)
}

impl ClaimedOutputs {
    /// After a failed run: removes the JSON files this claim created that
    /// nothing was written to.
    pub fn release_unused(&self) {
        for f in &self.created_files {
            if std::fs::metadata(f).map(|m| m.len() == 0).unwrap_or(false) {
                let _ = std::fs::remove_file(f);
            }
        }
    }
}

/// Creates a new report folder `<parent>/<stamp>`, or `<stamp>-2`, `-3`, …
/// when a run that started in the same second has it: `create_dir` is
/// atomic, so two runs never share a folder.
pub fn new_report_dir(parent: &Path, stamp: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(parent)?;
    for n in 1..=10_000u32 {
        let name = if n == 1 {
            stamp.to_owned()
        } else {
            format!("{stamp}-{n}")
        };
        let dir = parent.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("10,000 report folders named {stamp} already exist"),
    ))
}

/// The JSON file of `scenario` when `several` scenarios share one `--json`
/// path: `<scenario>-<name>` beside it.
pub fn json_path_for(path: &Path, scenario: &str, several: bool) -> PathBuf {
    if several {
        path.with_file_name(format!(
            "{}-{}",
            scenario,
            path.file_name().unwrap_or_default().to_string_lossy()
        ))
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claiming_creates_and_a_failed_run_releases_unused_files() {
        let dir = tempfile::tempdir().unwrap();
        let reports = dir.path().join("reports/deep");
        let json = dir.path().join("r.json");
        let kept = dir.path().join("kept.json");
        std::fs::write(&kept, b"").unwrap();
        let claimed = claim(&reports, &[json.clone(), kept.clone()]).unwrap();
        assert!(reports.is_dir() && json.is_file());
        assert_eq!(claimed.paths.len(), 3);
        // The probe file is gone.
        assert_eq!(std::fs::read_dir(&reports).unwrap().count(), 0);
        claimed.release_unused();
        assert!(!json.exists(), "an empty file the claim made is removed");
        assert!(kept.exists(), "a file that existed before is left alone");
    }

    #[test]
    fn unwritable_outputs_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = claim(dir.path(), &[dir.path().join("no/such/dir/r.json")]).unwrap_err();
        assert!(matches!(err, OutputError::Json { .. }), "{err}");
        assert!(err.to_string().contains("no/such/dir/r.json"));
        let err = claim(Path::new("/proc/nope"), &[]).unwrap_err();
        assert!(matches!(err, OutputError::Reports { .. }), "{err}");
        let err = claim(dir.path(), &[dir.path().to_owned()]).unwrap_err();
        assert!(err.to_string().contains("JSON report"), "{err}");
    }

    #[test]
    fn runs_in_the_same_second_get_their_own_folders() {
        let dir = tempfile::tempdir().unwrap();
        let a = new_report_dir(dir.path(), "20261201T000000Z").unwrap();
        let b = new_report_dir(dir.path(), "20261201T000000Z").unwrap();
        assert_ne!(a, b);
        assert!(b.ends_with("20261201T000000Z-2"), "{}", b.display());
    }

    #[test]
    fn several_scenarios_get_their_own_json_files() {
        let p = Path::new("/tmp/out/r.json");
        assert_eq!(json_path_for(p, "rr", false), p);
        assert_eq!(
            json_path_for(p, "rr", true),
            Path::new("/tmp/out/rr-r.json")
        );
    }
}
