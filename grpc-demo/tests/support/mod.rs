//! Helpers for tests that spawn processes: bounded waits, no sleeps.
//! Each test binary uses a subset.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The Python that has grpcio: `$IPVSLAB_PYTHON`, else the virtualenv that
/// `make deps` creates at the workspace root (`.venv`), else `python3`.
pub fn python() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("IPVSLAB_PYTHON").filter(|p| !p.is_empty()) {
        return p.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python3");
    if venv.is_file() {
        venv
    } else {
        "python3".into()
    }
}

/// Fails (never skips) when Python grpcio is missing, pointing at the installer.
pub fn require_python_grpc() {
    let ok = Command::new(python())
        .args(["-c", "import grpc, grpc_tools"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3 with grpcio and grpcio-tools is required for the interop tests: run `make deps` (it creates .venv)"
    );
}

/// Generates demo_pb2*.py from the proto into `out`.
pub fn python_stubs(proto_dir: &Path, out: &Path) -> Result<()> {
    let o = Command::new(python())
        .args(["-m", "grpc_tools.protoc"])
        .arg(format!("-I{}", proto_dir.display()))
        .arg(format!("--python_out={}", out.display()))
        .arg(format!("--grpc_python_out={}", out.display()))
        .arg("demo.proto")
        .output()?;
    if !o.status.success() {
        bail!(
            "grpc_tools.protoc failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(())
}

/// Reads the child's stdout until a `listening on ADDR` line, within `limit`.
pub fn wait_listening(child: &mut Child, limit: Duration) -> Result<String> {
    let stdout = child.stdout.take().context("stdout not piped")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = grpc_demo::server::parse_ready_line(&line) {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    rx.recv_timeout(limit)
        .context("the server did not print `listening on ADDR` in time")
}

/// Waits for the command's output, killing it after `limit`.
pub fn output_within(mut cmd: Command, limit: Duration) -> Result<Output> {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => Ok(out?),
        Err(_) => {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            bail!("command did not finish within {limit:?}")
        }
    }
}

/// Waits for a spawned child to exit within `limit`.
pub fn wait_within(child: Child, limit: Duration) -> Result<std::process::ExitStatus> {
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    let mut child = child;
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(limit) {
        Ok(status) => Ok(status?),
        Err(_) => {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            bail!("process did not exit within {limit:?}")
        }
    }
}
