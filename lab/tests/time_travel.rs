//! UML time travel through the real `lab` binary: a round with a known idle
//! gap passes in guest time (the report's clock and duration say so) in a
//! fraction of the host time, and what time travel cannot run is refused
//! before anything is built.

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{lab_namespaces, skip_unless_ipvs_runner};

const LAB: &str = env!("CARGO_BIN_EXE_lab");

/// The idle gap between the two rounds, in guest seconds.
const IDLE_S: u64 = 600;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn lab(args: &[&str]) -> Output {
    let out = Command::new(LAB)
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("run lab");
    eprintln!(
        "$ lab {}\n--- stdout\n{}--- stderr\n{}--- exit {:?}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        out.status.code()
    );
    out
}

/// Two paced rounds of rr with `IDLE_S` seconds of idle between them.
fn idle_scenario() -> String {
    format!(
        r#"description = "Time travel: two paced rounds of rr, {IDLE_S} s of idle between them."

[virtual_server]
vip = "192.168.122.1"
port = 8080
lb_algo = "rr"
lb_kind = "DR"

[[virtual_server.real_server]]
address = "172.22.35.1"
port = 8080

[[virtual_server.real_server]]
address = "172.22.35.2"
port = 8080

[load]
mode = "open"
rps = 100
concurrency = 4
channels_per_ip = 4
duration = "2s"
rounds = 2
idle = "{IDLE_S}s"

[time]
mode = "travel"

[expect]
max_error_rate = 0.0
ipvs_consistent = true
"#
    )
}

#[test]
fn an_idle_gap_passes_in_guest_time() {
    if skip_unless_ipvs_runner("an_idle_gap_passes_in_guest_time") {
        return;
    }
    // The guest's /tmp is private: keep the files under target/.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let file = dir.path().join("travel-idle.toml");
    std::fs::write(&file, idle_scenario()).unwrap();
    let json = dir.path().join("travel-idle.json");
    let reports = dir.path().join("reports");
    let started = Instant::now();
    let out = lab(&[
        "scenario",
        file.to_str().unwrap(),
        "--quiet",
        "--reports",
        reports.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let host = started.elapsed();
    let kind = lab::runner::resolve(lab::runner::RunnerChoice::Auto).unwrap();
    if kind == lab::runner::RunnerKind::Host {
        // A host kernel with IPVS: its clock is not the lab's to bend.
        assert_eq!(out.status.code(), Some(69));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--runner uml"));
        return;
    }
    let kernel = lab::runner::uml::UmlKernel::locate().unwrap();
    if !kernel.supports_time_travel() {
        assert_eq!(out.status.code(), Some(69));
        assert!(String::from_utf8_lossy(&out.stderr).contains("CONFIG_UML_TIME_TRAVEL_SUPPORT"));
        return;
    }
    assert_eq!(out.status.code(), Some(0), "the travel scenario failed");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["runner"]["clock"], "travel", "{}", report["runner"]);
    let guest_s = report["duration_s"].as_f64().unwrap();
    assert!(
        guest_s >= (IDLE_S + 4) as f64,
        "guest time {guest_s} s is shorter than the idle gap plus two 2 s rounds"
    );
    // Not a speed target: without time travel the idle gap alone would take
    // IDLE_S seconds of host time; skipped, it takes a few.
    assert!(
        host < Duration::from_secs(IDLE_S / 2),
        "{IDLE_S} s of guest idle took {host:?} of host time: time travel did not skip it"
    );
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("Time travel:")),
        "the report does not say its durations are guest time"
    );
    eprintln!(
        "time travel: {guest_s:.1} s of guest time in {:.1} s of host time",
        host.as_secs_f64()
    );
    assert_eq!(lab_namespaces(), Vec::<String>::new());
}

#[test]
fn time_travel_refuses_a_closed_loop_before_anything_is_built() {
    let out = lab(&["scenario", "rr-persistence", "--time-travel"]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("closed loop") && err.contains("mode = \"open\""),
        "{err}"
    );
    assert_eq!(lab_namespaces(), Vec::<String>::new());
}
