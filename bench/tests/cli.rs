//! The `loadgen` binary's contract: exit codes, messages, the request frame
//! and a short real run writing JSON and .hgrm.

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

// One copy of the process helpers serves both crates' tests.
#[path = "../../grpc-demo/tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use bench::report::LoadReport;

fn loadgen(args: &[&str]) -> Result<std::process::Output> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.args(args);
    support::output_within(cmd, Duration::from_secs(60))
}

#[test]
fn bad_input_exits_64_with_a_clear_message() -> Result<()> {
    for (args, needle) in [
        (
            vec!["--target", "127.0.0.1:1", "--source-ips", "127.0.0.0/33"],
            "CIDR",
        ),
        (
            vec!["--target", "127.0.0.1:1", "--source-ips", "10.0.0.0/8"],
            "4096",
        ),
        (
            vec!["--target", "127.0.0.1:1", "--duration", "0s"],
            "duration",
        ),
        (
            vec![
                "--target",
                "127.0.0.1:1",
                "--channels",
                "4",
                "--concurrency",
                "2",
            ],
            "concurrency",
        ),
        (vec!["--target", "not-an-address"], "invalid"),
        (vec!["--duration", "1s"], "--target"),
    ] {
        let out = loadgen(&args)?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    Ok(())
}

/// Generic mode's bad input: exit 65 before any connection (the target
/// is never dialled: port 1 would refuse), one paragraph naming the thing.
#[test]
fn generic_mode_bad_input_exits_65_before_any_load() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broken = dir.path().join("broken.proto");
    std::fs::write(
        &broken,
        "syntax = \"proto3\";\npackage p;\nmessage M {\n  string name = ;\n}\n",
    )?;
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/hello.proto");
    let broken = broken.to_str().unwrap();
    let base = ["--target", "127.0.0.1:1", "--duration", "1s"];
    for (args, needles) in [
        (
            vec!["--proto", broken, "--call", "p.S/M"],
            vec!["broken.proto:4:", "--import-path"],
        ),
        (
            vec!["--proto", hello, "--call", "helloworld.Greeter/SayHi"],
            vec![
                "Greeter has no method SayHi",
                "helloworld.Greeter/SayHello",
                "helloworld.Greeter/SayHelloStream",
            ],
        ),
        (
            vec![
                "--proto",
                hello,
                "--call",
                "helloworld.Greeter/SayHelloStream",
            ],
            vec!["server-streaming", "only unary"],
        ),
        (
            vec![
                "--proto",
                hello,
                "--call",
                "helloworld.Greeter/SayHello",
                "--data",
                r#"{"nam": "lab"}"#,
            ],
            vec!["no field \"nam\"", "name"],
        ),
        (
            vec![
                "--proto",
                hello,
                "--call",
                "helloworld.Greeter/SayHello",
                "--data",
                r#"{"name": 5}"#,
            ],
            vec!["field name (string)"],
        ),
        (
            vec!["--proto", hello, "--call", "SayHello"],
            vec!["pkg.Service/Method"],
        ),
        (
            vec!["--call", "a.B/C", "--metadata", "Bad Key=1"],
            vec!["metadata key"],
        ),
    ] {
        let mut argv: Vec<&str> = base.to_vec();
        argv.extend(&args);
        let out = loadgen(&argv)?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{args:?}: {err}");
        for needle in needles {
            assert!(err.contains(needle), "{args:?}: no {needle:?} in {err}");
        }
        assert!(!err.contains("refused"), "dialled before checking: {err}");
    }
    Ok(())
}

#[test]
fn generic_request_frame_is_the_json_request() -> Result<()> {
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/hello.proto");
    let out = loadgen(&[
        "--print-request-frame",
        "--proto",
        hello,
        "--call",
        "helloworld.Greeter/SayHello",
        "--data",
        r#"{"name": "lab"}"#,
    ])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"\0\0\0\0\x05\x0a\x03lab");
    Ok(())
}

#[test]
fn unreachable_target_exits_1() -> Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let target = format!("127.0.0.1:{port}");
    let out = loadgen(&["--target", &target, "--duration", "1s", "--timeout", "1s"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&target) && err.contains("refused"), "{err}");
    Ok(())
}

#[test]
fn request_frame_is_a_grpc_frame() -> Result<()> {
    let out = loadgen(&["--print-request-frame", "--payload-size", "16"])?;
    assert!(out.status.success());
    let mut expected = vec![0, 0, 0, 0, 0x12, 0x0a, 0x10];
    expected.extend_from_slice(&[b'x'; 16]);
    assert_eq!(out.stdout, expected);
    Ok(())
}

#[test]
fn short_run_writes_json_hgrm_and_progress() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // Serve in-process on a background runtime.
    let rt = tokio::runtime::Runtime::new()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?.to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = rt.spawn(grpc_demo::server::serve(
        listener,
        grpc_demo::server::ServerConfig::new("rs1"),
        async {
            let _ = rx.await;
        },
    ));
    let json = dir.path().join("out.json");
    let hgrm = dir.path().join("out.hgrm");
    let out = loadgen(&[
        "--target",
        &addr,
        "--duration",
        "1500ms",
        "--warmup",
        "200ms",
        "--progress",
        "json",
        "--progress-interval",
        "500ms",
        "--json",
        json.to_str().unwrap_or_default(),
        "--hgrm",
        hgrm.to_str().unwrap_or_default(),
    ])?;
    let _ = tx.send(());
    let _ = rt.block_on(task);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: LoadReport = serde_json::from_slice(&std::fs::read(&json)?)?;
    assert!(report.total_rpcs > 0);
    assert_eq!(report.servers[0].name, "rs1");
    assert!(report.latency_us.p50 > 0 && report.latency_us.p999 >= report.latency_us.p50);
    assert!(report.warmup_rpcs > 0);
    let h = bench::loadgen::decode_histogram(&report.histogram_b64).expect("histogram");
    assert_eq!(h.len(), report.ok_rpcs);
    let text = std::fs::read_to_string(&hgrm)?;
    assert!(
        text.contains("Percentile") && text.contains("#[Max"),
        "{text}"
    );
    // Progress: one JSON object per line with the agreed fields.
    let lines: Vec<_> = String::from_utf8(out.stdout)?
        .lines()
        .map(str::to_string)
        .collect();
    assert!(lines.len() >= 2, "{lines:?}");
    // Typed: a renamed field fails to parse.
    let parsed = lines
        .iter()
        .map(|l| serde_json::from_str::<bench::loadgen::ProgressLine>(l))
        .collect::<Result<Vec<_>, _>>()?;
    let last = parsed.last().expect("at least two lines");
    assert_eq!(last.phase, bench::loadgen::Phase::Measure, "{lines:?}");
    let summary = String::from_utf8(out.stderr)?;
    assert!(summary.contains("rs1"), "{summary}");
    Ok(())
}
