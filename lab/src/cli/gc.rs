//! `lab gc`: removes what runs whose `lab` process is gone left behind:
//! their namespaces (and, with `--all`, the networks kept by `lab up`), and
//! the UML kernels and run directories of killed runs.

use std::process::ExitCode;

use lab::exit;
use lab::netns::NetnsError;

use super::error::CliError;
use super::prepare::require_privileges;

/// What `lab gc` could not remove: the UML leftovers, each with why, and
/// the namespace sweep's own error.
#[derive(Debug, thiserror::Error)]
#[error("gc: {}", describe(.leftovers, .namespaces.is_some()))]
pub(crate) struct GcError {
    /// UML processes and run directories that stayed, with their reasons.
    leftovers: Vec<String>,
    /// Why the namespaces could not be listed or removed.
    #[source]
    namespaces: Option<NetnsError>,
}

fn describe(leftovers: &[String], namespaces: bool) -> String {
    match (leftovers.is_empty(), namespaces) {
        (true, _) => "removing lab namespaces failed".into(),
        (false, false) => leftovers.join("; "),
        (false, true) => format!(
            "{}; and removing lab namespaces failed",
            leftovers.join("; ")
        ),
    }
}

/// Sweeps and prints each thing removed; 71 when something stayed.
pub(crate) fn gc(all: bool) -> Result<ExitCode, CliError> {
    require_privileges()?;
    let namespaces = if all {
        remove_every_run()
    } else {
        lab::netns::gc().map(|r| r.removed)
    };
    let uml = lab::runner::leftovers::gc(&std::env::temp_dir());
    for p in &uml.killed {
        println!("killed UML process {p}");
    }
    for d in &uml.removed_dirs {
        println!("removed {}", d.display());
    }
    let removed = match namespaces {
        Ok(removed) if uml.failed.is_empty() => removed,
        Ok(removed) => {
            print_removed(&removed);
            return Err(gc_failed(uml.failed, None));
        }
        Err(e) => return Err(gc_failed(uml.failed, Some(e))),
    };
    if removed.is_empty() && uml.killed.is_empty() && uml.removed_dirs.is_empty() {
        println!("nothing to remove");
    }
    print_removed(&removed);
    Ok(ExitCode::SUCCESS)
}

fn print_removed(removed: &[String]) {
    for name in removed {
        println!("removed {name}");
    }
}

fn gc_failed(leftovers: Vec<String>, namespaces: Option<NetnsError>) -> CliError {
    CliError::from_error(
        exit::OS_ERROR,
        GcError {
            leftovers,
            namespaces,
        },
    )
}

/// `--all`: every lab run's namespaces, kept or not.
fn remove_every_run() -> Result<Vec<String>, NetnsError> {
    let mut runs: Vec<_> = lab::netns::list_lab_namespaces()?
        .into_iter()
        .map(|n| n.run)
        .collect();
    runs.sort();
    runs.dedup();
    let mut removed = Vec::new();
    for run in runs {
        removed.extend(lab::netns::remove_run(&run)?.removed);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leftover_and_the_namespace_errno_are_said() {
        let e = gc_failed(
            vec!["kill 12 (ipvslab-9-1): EPERM".into()],
            Some(NetnsError::Prepare {
                op: "mkdir",
                path: "/run/netns".into(),
                source: std::io::Error::from_raw_os_error(libc::EROFS),
            }),
        );
        assert_eq!(e.code, exit::OS_ERROR);
        let text = super::super::error::chain(&e);
        assert!(
            text.starts_with("gc: kill 12 (ipvslab-9-1): EPERM; and removing lab namespaces failed: preparing /run/netns: mkdir failed: "),
            "{text}"
        );
        assert!(text.contains("Read-only file system"), "{text}");
    }

    #[test]
    fn leftovers_alone_are_listed() {
        let e = gc_failed(vec!["a: x".into(), "b: y".into()], None);
        assert_eq!(super::super::error::chain(&e), "gc: a: x; b: y");
    }
}
