//! Interop: Python grpcio calls the real `grpc-demo-server` binary.

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

#[test]
fn python_client_reads_identity_from_server_binary() -> Result<()> {
    support::require_python_grpc();
    let dir = tempfile::tempdir()?;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    support::python_stubs(&manifest.join("proto"), dir.path())?;

    let mut server = Command::new(env!("CARGO_BIN_EXE_grpc-demo-server"))
        .args(["--name", "py-interop", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()?;
    let addr = match support::wait_listening(&mut server, Duration::from_secs(20)) {
        Ok(a) => a,
        Err(e) => {
            let _ = server.kill();
            return Err(e);
        }
    };

    let mut cmd = Command::new(support::python());
    cmd.arg(manifest.join("tests/python/whoami_client.py"))
        .arg(dir.path())
        .arg(&addr)
        .arg("3");
    let out = support::output_within(cmd, Duration::from_secs(30));
    // Stop the server with SIGTERM: it must drain and exit 0.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let status = support::wait_within(server, Duration::from_secs(10))?;
    let out = out?;
    assert!(
        out.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        status.success(),
        "server exit status after SIGTERM: {status}"
    );

    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("client JSON")?;
    let replies = v["replies"].as_array().context("replies")?;
    assert_eq!(replies.len(), 3);
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r["server_name"], "py-interop");
        assert_eq!(r["server_addr"], addr.as_str());
        assert!(
            r["peer_addr"]
                .as_str()
                .unwrap_or("")
                .starts_with("127.0.0.1:")
        );
        assert_eq!(r["conn_seq"], (i + 1) as u64);
        assert_eq!(r["payload_len"], 32);
        assert_eq!(r["conn_id"], replies[0]["conn_id"]);
    }
    assert_eq!(v["stats"]["rpcs"], 3);
    assert_eq!(v["stats"]["server_name"], "py-interop");
    Ok(())
}
