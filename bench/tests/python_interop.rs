//! Interop: the `loadgen` binary drives a Python grpcio server implementing
//! the same proto, and its tallies match the Python server's own counters.

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

// One copy of the process helpers serves both crates' tests.
#[path = "../../grpc-demo/tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use bench::report::LoadReport;
use grpc_demo::client::{ConnectOptions, connect_from};
use grpc_demo::pb::StatsRequest;
use grpc_demo::pb::demo_client::DemoClient;

#[test]
fn loadgen_drives_a_python_server() -> Result<()> {
    support::require_python_grpc();
    let dir = tempfile::tempdir()?;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    support::python_stubs(&manifest.join("../grpc-demo/proto"), dir.path())?;

    let mut server = Command::new(support::python())
        .arg(manifest.join("tests/python/demo_server.py"))
        .arg(dir.path())
        .arg("py1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let result = (|| -> Result<()> {
        let addr = support::wait_listening(&mut server, Duration::from_secs(30))?;
        let json = dir.path().join("report.json");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
        cmd.args(["--target", &addr, "--requests", "200", "--channels", "2"])
            .args(["--concurrency", "4", "--progress", "none", "--json"])
            .arg(&json);
        let out = support::output_within(cmd, Duration::from_secs(60))?;
        assert!(
            out.status.success(),
            "loadgen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: LoadReport = serde_json::from_slice(&std::fs::read(&json)?)?;
        assert_eq!(report.ok_rpcs, 200);
        assert_eq!(report.servers.len(), 1);
        assert_eq!(report.servers[0].name, "py1");
        assert_eq!(report.servers[0].address, addr);
        assert_eq!(report.servers[0].connections, 2);

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stats = rt.block_on(async {
            let ch = connect_from(None, addr.parse()?, &ConnectOptions::default()).await?;
            anyhow::Ok(
                DemoClient::new(ch)
                    .stats(StatsRequest {})
                    .await?
                    .into_inner(),
            )
        })?;
        assert_eq!(stats.rpcs, report.ok_rpcs, "python server's own count");
        Ok(())
    })();
    // Closing stdin stops the Python server.
    drop(server.stdin.take());
    let status = support::wait_within(server, Duration::from_secs(15));
    result?;
    status.context("python server did not stop")?;
    let _ = std::io::stderr().flush();
    Ok(())
}
