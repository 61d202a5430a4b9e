//! The `lab` binary's own contract, without building a network: a failed
//! verb prints its error once with the whole cause chain (the errno too) and
//! exits with its documented code, and diagnostics go through `tracing`.

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const LAB: &str = env!("CARGO_BIN_EXE_lab");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `lab args` from the workspace with `RUST_LOG` as given (or unset).
fn lab(args: &[&str], rust_log: Option<&str>) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(LAB);
    cmd.args(args)
        .current_dir(workspace())
        .env_remove("RUST_LOG");
    if let Some(v) = rust_log {
        cmd.env("RUST_LOG", v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run lab");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    );
    eprintln!(
        "$ lab {}\n--- stdout\n{stdout}--- stderr\n{stderr}--- exit {:?}",
        args.join(" "),
        status.code()
    );
    (status.code(), stdout, stderr)
}

#[test]
fn a_verb_error_names_its_cause_down_to_the_errno() {
    // No lab has this run id: opening its director's namespace fails, and
    // the message keeps why (ENOENT), not only that it failed.
    let (code, _, err) = lab(&["ipvs", "--run", "999999-1"], None);
    assert_eq!(code, Some(64));
    assert!(err.starts_with("lab: no running lab 999999-1: "), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
    assert_eq!(err.lines().count(), 1, "printed once: {err}");
}

#[test]
fn a_missing_report_is_bad_input_with_its_reason() {
    let (code, _, err) = lab(
        &["compare", "/nonexistent/base.json", "/nonexistent/new.json"],
        None,
    );
    assert_eq!(code, Some(65));
    assert!(err.contains("/nonexistent/base.json"), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
}

#[test]
fn usage_errors_found_by_the_cli_exit_64() {
    let (code, _, err) = lab(&["scenario", "no-such-scenario", "--quiet"], None);
    assert_eq!(code, Some(64));
    assert!(err.contains("no scenario 'no-such-scenario'"), "{err}");
    let (code, _, err) = lab(&["exec", "rr", "--host", "bogus", "--", "true"], None);
    assert_eq!(code, Some(64));
    assert!(err.contains("no host 'bogus' in scenario rr"), "{err}");
    let (code, _, err) = lab(&["ipvs", "--run", "not-a-run"], None);
    assert_eq!(code, Some(64));
    assert!(err.contains("'not-a-run' is not a run id"), "{err}");
}

#[test]
fn verbosity_flags_parse_and_logs_go_to_stderr_not_stdout() {
    let (quiet_code, quiet_out, quiet_err) = lab(&["list"], None);
    let (code, out, _) = lab(&["-vvv", "list"], None);
    assert_eq!((quiet_code, code), (Some(0), Some(0)));
    assert_eq!(out, quiet_out, "-v must not change what a verb prints");
    assert_eq!(quiet_err, "", "nothing on stderr by default");
    // A RUST_LOG that does not parse is said through tracing, and ignored.
    let (code, out, err) = lab(&["list"], Some("lab=["));
    assert_eq!(code, Some(0));
    assert_eq!(out, quiet_out);
    assert!(
        err.starts_with("lab: warning: ignoring RUST_LOG=\"lab=[\""),
        "{err}"
    );
}

/// One duration syntax on every command line: `lab scenario --duration`
/// parses what `lab loadgen` and `lab server` parse (humantime, a bare
/// number as seconds), and refuses the same garbage as a usage error.
#[test]
fn scenario_duration_takes_the_loadgen_syntax() {
    for ok in ["2", "1.5", "1m 30s"] {
        // Over an hour is refused by range, after parsing: "2" parses.
        // An unwritable report folder stops the run before anything is built.
        let (code, _, err) = lab(
            &[
                "scenario",
                "rr",
                "--quiet",
                "--duration",
                ok,
                "--reports",
                "/proc/x",
            ],
            None,
        );
        assert!(!err.contains("invalid duration"), "--duration {ok}: {err}");
        assert_eq!(code, Some(73), "--duration {ok}: {err}");
    }
    let (code, _, err) = lab(&["scenario", "rr", "--duration", "2 parsecs"], None);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("invalid duration"), "{err}");
}
