//! Interop: the same failover scenario run once with the lab's own checker
//! and once with Debian's keepalived in the director (`--keepalived`). Both
//! must leave IPVS in the same state before and after the fault, and both
//! must detect it; the two detection times are printed side by side.
//!
//! Runs the real `lab` binary, which boots User-Mode Linux when the host
//! kernel has no IPVS. Needs root, the UML kernel and /usr/sbin/keepalived.

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const LAB: &str = env!("CARGO_BIN_EXE_lab");

/// A short version of `failover-tcp-check`: TCP_CHECK every second, one
/// retry, rs1 killed at 1.5 s.
const SCENARIO: &str = r#"
description = "interop: lab checker vs keepalived, rs1 killed"

[virtual_server]
vip = "192.168.122.1"
port = 8080
lb_algo = "rr"
lb_kind = "DR"
delay_loop = 1

[[virtual_server.real_server]]
address = "172.22.35.1"
port = 8080
TCP_CHECK = { connect_timeout = 1, retry = 1, delay_before_retry = 1, connect_port = 8080, warmup = 0 }

[[virtual_server.real_server]]
address = "172.22.35.2"
port = 8080
TCP_CHECK = { connect_timeout = 1, retry = 1, delay_before_retry = 1, connect_port = 8080, warmup = 0 }

[network]
client_ips = 2

[load]
concurrency = 4
channels_per_ip = 2
duration = "6s"
timeout = "2s"

[[phase]]
at = "1500ms"
action = "kill_server"
server = "rs1"

[expect]
fault_detected = true
"#;

fn run(dir: &Path, keepalived: bool) -> serde_json::Value {
    let scenario = dir.join("interop-failover.toml");
    std::fs::write(&scenario, SCENARIO).expect("write scenario");
    let json = dir.join(if keepalived {
        "keepalived.json"
    } else {
        "lab.json"
    });
    let reports = dir.join("reports");
    let mut cmd = Command::new(LAB);
    cmd.arg("scenario")
        .arg(&scenario)
        .arg("--quiet")
        .arg("--reports")
        .arg(&reports)
        .arg("--json")
        .arg(&json);
    if keepalived {
        cmd.arg("--keepalived");
    }
    let out = cmd.output().expect("run lab");
    eprintln!(
        "--- keepalived={keepalived} exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "the scenario failed (output above)"
    );
    serde_json::from_slice(&std::fs::read(&json).expect("report json")).expect("valid json")
}

/// (address, weight) of every destination in the last sample before the
/// fault.
fn before_fault(r: &serde_json::Value) -> BTreeSet<(String, i64)> {
    let fault = r["failover"]["fault_at_s"].as_f64().expect("fault time");
    let sample = r["ipvs_samples"]
        .as_array()
        .expect("samples")
        .iter()
        .rfind(|s| s["t_s"].as_f64().unwrap_or(f64::MAX) < fault)
        .expect("a sample before the fault");
    sample["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["address"].as_str().unwrap().to_string(),
                d["weight"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// (address, weight) of every destination at the end.
fn at_end(r: &serde_json::Value) -> BTreeSet<(String, i64)> {
    r["ipvs"]["services"][0]["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .map(|d| {
            (
                d["address"].as_str().unwrap().to_string(),
                d["weight"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn lab_checker_and_keepalived_agree_on_ipvs_before_and_after_a_kill() {
    if !nix::unistd::Uid::effective().is_root() {
        common::skipped("needs root (CAP_NET_ADMIN)");
        return;
    }
    if !Path::new("/usr/sbin/keepalived").is_file() {
        common::skipped("/usr/sbin/keepalived is not installed");
        return;
    }
    let dir: PathBuf = tempfile::tempdir().expect("tempdir").keep();
    let ours = run(&dir, false);
    let theirs = run(&dir, true);
    assert_eq!(ours["director"]["kind"], "lab");
    assert_eq!(theirs["director"]["kind"], "keepalived");
    assert!(
        theirs["director"]["keepalived_log"]
            .as_array()
            .is_some_and(|l| !l.is_empty()),
        "keepalived's log is in the report"
    );
    assert_eq!(
        before_fault(&ours),
        before_fault(&theirs),
        "IPVS before the fault"
    );
    assert_eq!(at_end(&ours), at_end(&theirs), "IPVS after the fault");
    assert_eq!(
        at_end(&ours),
        BTreeSet::from([("172.22.35.2".to_string(), 1)]),
        "only rs2 is left"
    );
    let d_ours = ours["failover"]["detection_s"]
        .as_f64()
        .expect("lab detected");
    let d_theirs = theirs["failover"]["detection_s"]
        .as_f64()
        .expect("keepalived detected");
    eprintln!("detection: lab checker {d_ours:.2} s, keepalived {d_theirs:.2} s");
    let _ = std::fs::remove_dir_all(&dir);
}
