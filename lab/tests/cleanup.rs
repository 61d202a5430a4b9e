//! Ctrl-C and SIGTERM in the middle of a run leave nothing behind, and after
//! SIGKILL `lab gc` removes what is left: no
//! namespace, no link in the root namespace, no `linux.uml` process, no run
//! directory.

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

mod common;

use common::{lab_namespaces, root_links, wait_until};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const LAB: &str = env!("CARGO_BIN_EXE_lab");

/// Processes whose command line mentions this lab's UML instance id.
fn uml_processes_of(pid: u32) -> Vec<String> {
    let needle = format!("umid=ipvslab-{pid}-");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle))
        .collect()
}

fn run_dirs_of(pid: u32) -> Vec<String> {
    let prefix = format!("ipvslab-{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Starts `lab exec` with a command that prints a marker and then sleeps,
/// waits for the marker (the network, IPVS and servers are up), sends
/// `signal`, and checks that the lab stops promptly and leaves nothing.
fn interrupt_exec(signal: i32) {
    if common::skip_unless_ipvs_runner(&format!("interrupt with signal {signal}")) {
        return;
    }
    let links_before = root_links();
    let mut child = Command::new(LAB)
        .args([
            "exec",
            "rr-persistence",
            "--host",
            "client1",
            "--",
            "sh",
            "-c",
            "echo lab-is-up; sleep 60",
        ])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("start lab exec");
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("lab-is-up") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the lab came up and ran the command");
    assert!(
        !uml_processes_of(pid).is_empty() || !lab_namespaces().is_empty(),
        "something is running"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::try_from(signal).unwrap(),
    )
    .expect("signal the lab");
    let stopped_in = wait_until(
        Duration::from_secs(20),
        "lab to stop after the signal",
        || child.try_wait().unwrap().is_some(),
    )
    .unwrap_or_else(|e| panic!("signal {signal}: {e}"));
    let status = child.wait().unwrap();
    eprintln!("signal {signal}: lab stopped in {stopped_in:?} with {status}");
    assert!(
        !status.success(),
        "an interrupted run must not report success"
    );

    // Bounded wait for the kernel to finish removing things.
    let leftovers = || (uml_processes_of(pid), run_dirs_of(pid), lab_namespaces());
    if let Err(e) = wait_until(Duration::from_secs(5), "the run's leftovers to go", || {
        leftovers() == (vec![], vec![], vec![])
    }) {
        panic!("{e}; left behind: {:?}", leftovers());
    }
    assert_eq!(root_links(), links_before, "root namespace links changed");
}

#[test]
fn sigint_mid_run_leaves_nothing_behind() {
    interrupt_exec(libc::SIGINT);
}

#[test]
fn sigterm_mid_run_leaves_nothing_behind() {
    interrupt_exec(libc::SIGTERM);
}

/// SIGKILL cannot be caught: the kernel must die with the lab anyway
/// (parent-death signal), and `lab gc` must remove what is left (the run
/// directory, namespaces on a host runner). Killed at spread-out moments:
/// during boot, bring-up, load and teardown.
#[test]
fn sigkill_at_any_moment_leaves_nothing_after_gc() {
    if common::skip_unless_ipvs_runner("sigkill_at_any_moment_leaves_nothing_after_gc") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reports = tempfile::tempdir().unwrap();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // A fixed spread of delays (ms), so a failure is reproducible.
    let delays_ms = [50u64, 300, 700, 1200, 1900, 2600, 3400];
    for (trial, delay) in delays_ms.iter().enumerate() {
        let mut child = Command::new(LAB)
            .args(["scenario", "rr-persistence", "--quiet", "--duration", "2s"])
            .arg("--reports")
            .arg(reports.path())
            .env("TMPDIR", tmp.path())
            .current_dir(&workspace)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("start lab scenario");
        let pid = child.id();
        std::thread::sleep(Duration::from_millis(*delay));
        let _ = child.kill();
        let _ = child.wait();
        // The parent-death signal is immediate; allow the host a moment.
        // The assertion below names the survivors.
        let _ = wait_until(Duration::from_secs(1), "UML to die with its lab", || {
            uml_processes_of(pid).is_empty()
        });
        let survivors = uml_processes_of(pid);
        assert!(
            survivors.is_empty(),
            "trial {trial} (SIGKILL after {delay} ms): the UML kernel outlived the lab by 1 s: {survivors:?}"
        );
        let gc = Command::new(LAB)
            .arg("gc")
            .env("TMPDIR", tmp.path())
            .output()
            .expect("lab gc");
        assert!(gc.status.success(), "lab gc failed: {gc:?}");
        let left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!("ipvslab-{pid}-")))
            .collect();
        assert!(
            left.is_empty(),
            "trial {trial} (SIGKILL after {delay} ms): left after lab gc: {left:?}"
        );
        let namespaces: Vec<String> = lab_namespaces()
            .into_iter()
            .filter(|n| n.starts_with(&format!("ipvslab-{pid}-")))
            .collect();
        assert!(namespaces.is_empty(), "trial {trial}: {namespaces:?}");
        eprintln!("trial {trial}: SIGKILL after {delay} ms, nothing left after lab gc");
    }
}
