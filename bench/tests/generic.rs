//! Generic mode (`--call`) end to end against the demo server, with the
//! demo's own proto and through its reflection service, and against a
//! Python grpcio server that shares no code with loadgen.

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

// One copy of the process helpers serves both crates' tests.
#[path = "../../grpc-demo/tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use bench::loadgen::{Churn, LoadModel, LoadgenConfig, run};
use bench::method::{CallSpec, Schema};
use bench::report::LoadReport;
use grpc_demo::client::{ConnectOptions, connect_from};
use grpc_demo::pb::StatsRequest;
use grpc_demo::pb::demo_client::DemoClient;
use grpc_demo::server::{Delay, ServerConfig, serve};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const WHOAMI: &str = "ipvslab.demo.v1.Demo/WhoAmI";

fn demo_proto() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../grpc-demo/proto/demo.proto")
}

/// A demo server on 127.0.0.1:0 until the returned sender is dropped.
async fn demo_server(config: ServerConfig) -> Result<(SocketAddr, oneshot::Sender<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = serve(listener, config, async {
            let _ = rx.await;
        })
        .await;
    });
    Ok((addr, tx))
}

async fn server_rpcs(addr: SocketAddr) -> Result<u64> {
    let ch = connect_from(None, addr, &ConnectOptions::default()).await?;
    Ok(DemoClient::new(ch)
        .stats(StatsRequest {})
        .await?
        .into_inner()
        .rpcs)
}

fn generic(addr: SocketAddr, schema: Schema, data: &str) -> LoadgenConfig {
    let mut cfg = LoadgenConfig::new(addr);
    cfg.call = Some(CallSpec {
        method: WHOAMI.into(),
        schema,
        data: data.into(),
    });
    cfg
}

fn proto_schema() -> Schema {
    Schema::Proto {
        files: vec![demo_proto()],
        import_paths: vec![],
    }
}

/// The counts generic mode reports are the server's own, and its
/// connections carry the local port the server saw.
fn check_counts(report: &LoadReport, server_rpcs: u64, described_by: &str) {
    assert!(report.ok_rpcs > 10, "too few RPCs: {}", report.ok_rpcs);
    assert_eq!(report.errors, 0, "{:?}", report.status_codes);
    assert_eq!(report.status_codes.get("OK"), Some(&report.ok_rpcs));
    assert_eq!(report.ok_rpcs + report.warmup_rpcs, server_rpcs);
    assert!(report.servers.is_empty(), "{:?}", report.servers);
    let call = report.call.as_ref().expect("generic mode reports its call");
    assert_eq!(call.method, format!("/{WHOAMI}"));
    assert_eq!(call.described_by, described_by);
    let reply = call.first_reply.as_deref().expect("a first reply");
    assert!(reply.contains(r#""serverName":"gen1""#), "{reply}");
    // The server saw the same port the client read at connect time.
    let peer: serde_json::Value = serde_json::from_str(reply).unwrap();
    let peer_port: u16 = peer["peerAddr"]
        .as_str()
        .and_then(|a| a.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .expect("peerAddr in the reply");
    let ports: BTreeSet<u16> = report.connections.iter().map(|c| c.local_port).collect();
    assert!(ports.contains(&peer_port), "{peer_port} not in {ports:?}");
    for c in &report.connections {
        assert!(c.server.is_empty() && c.local_port != 0, "{c:?}");
    }
    let per_conn: u64 = report.connections.iter().map(|c| c.rpcs).sum();
    assert_eq!(per_conn, report.ok_rpcs);
}

#[tokio::test(flavor = "current_thread")]
async fn the_demo_proto_drives_the_demo_server() -> Result<()> {
    let (addr, _stop) = demo_server(ServerConfig::new("gen1")).await?;
    let mut cfg = generic(
        addr,
        proto_schema(),
        r#"{"payload":"eHh4","responseSize":3}"#,
    );
    cfg.channels = 2;
    cfg.load = LoadModel::Closed { concurrency: 4 };
    cfg.duration = Duration::from_millis(500);
    cfg.warmup = Duration::from_millis(100);
    let report = run(cfg).await?;
    check_counts(&report, server_rpcs(addr).await?, "proto");
    assert_eq!(report.connections.len(), 2);
    let reply = report.call.unwrap().first_reply.unwrap();
    // responseSize 3 echoed: "eHh4" is base64 of "xxx".
    assert!(reply.contains(r#""payload":"eHh4""#), "{reply}");
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn reflection_describes_the_method_when_no_proto_is_given() -> Result<()> {
    let (addr, _stop) = demo_server(ServerConfig::new("gen1")).await?;
    let mut cfg = generic(addr, Schema::Reflection, "{}");
    cfg.requests = Some(300);
    let report = run(cfg).await?;
    check_counts(&report, server_rpcs(addr).await?, "reflection");
    assert_eq!(report.ok_rpcs, 300);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn reflection_lists_the_methods_of_an_unknown_call() -> Result<()> {
    let (addr, _stop) = demo_server(ServerConfig::new("gen1")).await?;
    let mut cfg = generic(addr, Schema::Reflection, "{}");
    cfg.call.as_mut().unwrap().method = "ipvslab.demo.v1.Demo/Nope".into();
    let e = run(cfg).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("ipvslab.demo.v1.Demo/WhoAmI"), "{text}");
    assert!(text.contains("ipvslab.demo.v1.Demo/Stats"), "{text}");
    assert_eq!(e.exit_code(), 65);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn deadline_exceeded_is_counted_not_hidden() -> Result<()> {
    let mut config = ServerConfig::new("gen1");
    config.delay = Delay::Fixed(Duration::from_millis(300));
    let (addr, _stop) = demo_server(config).await?;
    let mut cfg = generic(addr, proto_schema(), "{}");
    cfg.timeout = Duration::from_millis(50);
    cfg.duration = Duration::from_millis(400);
    cfg.load = LoadModel::Closed { concurrency: 2 };
    let report = run(cfg).await?;
    assert_eq!(report.ok_rpcs, 0, "{:?}", report.status_codes);
    let exceeded = report.status_codes.get("DEADLINE_EXCEEDED").copied();
    assert!(exceeded.unwrap_or(0) >= 4, "{:?}", report.status_codes);
    assert_eq!(Some(report.errors), exceeded);
    assert_eq!(report.total_rpcs, report.errors);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn open_loop_with_a_connection_per_rpc() -> Result<()> {
    let (addr, _stop) = demo_server(ServerConfig::new("gen1")).await?;
    let mut cfg = generic(addr, proto_schema(), "{}");
    cfg.load = LoadModel::Open {
        rps: 200.0,
        max_in_flight: 16,
    };
    cfg.churn = Churn::PerRpc;
    cfg.duration = Duration::from_millis(500);
    let report = run(cfg).await?;
    check_counts(&report, server_rpcs(addr).await?, "proto");
    assert_eq!(report.mode, "open");
    // One connection per RPC, each with its own port.
    assert_eq!(report.connections.len() as u64, report.ok_rpcs);
    assert!(report.connections.iter().all(|c| c.rpcs == 1));
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn churn_every_n_rpcs_opens_new_connections() -> Result<()> {
    let (addr, _stop) = demo_server(ServerConfig::new("gen1")).await?;
    let mut cfg = generic(addr, proto_schema(), "{}");
    cfg.churn = Churn::EveryRpcs(50);
    cfg.requests = Some(500);
    let report = run(cfg).await?;
    check_counts(&report, server_rpcs(addr).await?, "proto");
    assert!(
        report.connections.len() >= 9,
        "{}",
        report.connections.len()
    );
    Ok(())
}

/// The Python greeter (grpcio generic handlers, no generated code): the
/// client's counts against the server's own, metadata received, and a
/// failing status counted under its code.
#[test]
fn a_python_grpcio_greeter_in_generic_mode() -> Result<()> {
    let python = support::python();
    let has_grpc = Command::new(&python)
        .args(["-c", "import grpc"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !has_grpc {
        println!(
            "SKIPPED: {} has no grpcio (run `make deps`)",
            python.display()
        );
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let counts_file = dir.path().join("counts.json");
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let mut server = Command::new(&python)
        .arg(here.join("greeter_server.py"))
        .arg(&counts_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let result = (|| -> Result<(LoadReport, LoadReport)> {
        let addr = support::wait_listening(&mut server, Duration::from_secs(30))?;
        let proto = here.join("hello.proto");
        let greet = |name: &str, json: &Path| -> Result<LoadReport> {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
            cmd.args(["--target", &addr, "--requests", "200", "--channels", "2"])
                .args(["--concurrency", "4", "--progress", "none"])
                .arg("--proto")
                .arg(&proto)
                .args(["--call", "helloworld.Greeter/SayHello"])
                .arg(format!(r#"--data={{"name": "{name}"}}"#))
                .args(["--metadata", "x-user=lab", "--metadata", "x-run=generic"])
                .arg("--json")
                .arg(json);
            let out = support::output_within(cmd, Duration::from_secs(60))?;
            assert!(
                out.status.success(),
                "loadgen failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(serde_json::from_slice(&std::fs::read(json)?)?)
        };
        let ok = greet("lab", &dir.path().join("ok.json"))?;
        let failing = greet("fail", &dir.path().join("fail.json"))?;
        Ok((ok, failing))
    })();
    drop(server.stdin.take());
    let status = support::wait_within(server, Duration::from_secs(15));
    let (ok, failing) = result?;
    status.context("python server did not stop")?;
    let theirs: serde_json::Value = serde_json::from_slice(&std::fs::read(&counts_file)?)?;

    assert_eq!(ok.ok_rpcs, 200, "{:?}", ok.status_codes);
    assert_eq!(theirs["ok"], 200);
    assert_eq!(ok.connections.len(), 2);
    let reply = ok.call.as_ref().and_then(|c| c.first_reply.clone());
    assert_eq!(reply.as_deref(), Some(r#"{"message":"Hello lab"}"#));
    assert_eq!(theirs["metadata"]["x-user"], serde_json::json!(["lab"]));
    assert_eq!(theirs["metadata"]["x-run"], serde_json::json!(["generic"]));
    // h2load would call these 200 successes (HTTP 200); they are errors.
    assert_eq!(failing.ok_rpcs, 0);
    assert_eq!(failing.errors, 200);
    assert_eq!(failing.status_codes.get("INVALID_ARGUMENT"), Some(&200));
    assert_eq!(theirs["failed"], 200);
    Ok(())
}
