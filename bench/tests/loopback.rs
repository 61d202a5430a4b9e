//! Loopback end-to-end tests of `loadgen::run` against in-process servers.
//!
//! Two servers share one port with SO_REUSEPORT, so the kernel spreads the
//! generator's connections between them by 4-tuple hash: a stand-in for an
//! L4 balancer that needs no privileges, and that balances connections, not
//! RPCs, exactly like IPVS.

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use bench::loadgen::{LoadModel, LoadgenConfig, run};
use bench::report::LoadReport;
use grpc_demo::client::{ConnectOptions, connect_from};
use grpc_demo::pb::demo_client::DemoClient;
use grpc_demo::pb::{StatsReply, StatsRequest};
use grpc_demo::server::{ServerConfig, StallOnce, serve};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

fn reuseport_listener(addr: SocketAddr) -> Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(TcpListener::from_std(socket.into())?)
}

fn start(listener: TcpListener, config: ServerConfig) -> Result<TestServer> {
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve(listener, config, async {
            let _ = rx.await;
        })
        .await
        .expect("server failed");
    });
    Ok(TestServer {
        addr,
        stop: Some(tx),
        task,
    })
}

async fn one_server(config: ServerConfig) -> Result<TestServer> {
    start(TcpListener::bind("127.0.0.1:0").await?, config)
}

/// Reads a server's own counters. Connecting from 127.0.0.1 is fine: the
/// Stats RPC itself is not counted as a WhoAmI.
async fn stats(addr: SocketAddr) -> Result<StatsReply> {
    let ch = connect_from(None, addr, &ConnectOptions::default()).await?;
    Ok(DemoClient::new(ch)
        .stats(StatsRequest {})
        .await?
        .into_inner())
}

fn per_server(report: &LoadReport) -> BTreeMap<String, u64> {
    report
        .servers
        .iter()
        .map(|s| (s.name.clone(), s.rpcs))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_server_counts_match_the_servers_own_counters() -> Result<()> {
    let first = reuseport_listener("127.0.0.1:0".parse()?)?;
    let addr = first.local_addr()?;
    let second = reuseport_listener(addr)?;
    let a = start(first, ServerConfig::new("rs1"))?;
    let b = start(second, ServerConfig::new("rs2"))?;

    let mut cfg = LoadgenConfig::new(addr);
    cfg.sources = bench::sources::parse_source_ips("127.0.3.1,127.0.3.2,127.0.3.3,127.0.3.4")?
        .into_iter()
        .map(Some)
        .collect();
    cfg.channels = 4;
    cfg.load = LoadModel::Closed { concurrency: 32 };
    cfg.duration = Duration::from_millis(1500);
    let report = run(cfg).await?;

    assert!(report.ok_rpcs > 100, "too few RPCs: {}", report.ok_rpcs);
    assert_eq!(report.errors, 0, "{:?}", report.status_codes);
    let ours = per_server(&report);
    // Both servers share the address: new connections land on either, so
    // ask until both have answered (bounded).
    let mut theirs: BTreeMap<String, u64> = BTreeMap::new();
    for _ in 0..64 {
        let st = stats(addr).await?;
        theirs.insert(st.server_name, st.rpcs);
        if theirs.len() == 2 {
            break;
        }
    }
    assert_eq!(theirs.len(), 2, "could not reach both servers for Stats");
    assert_eq!(ours, theirs, "client tallies vs server counters");
    assert_eq!(ours.values().sum::<u64>(), report.ok_rpcs);
    assert_eq!(report.status_codes.get("OK"), Some(&report.ok_rpcs));
    // 16 connections over two listeners: both get some (all on one has
    // probability 2^-15).
    assert_eq!(
        ours.len(),
        2,
        "SO_REUSEPORT should spread 16 connections: {ours:?}"
    );
    // Connections reported per server match the server's accepted count
    // (minus the one Stats connection made to each so far).
    let conns: u64 = report.servers.iter().map(|s| s.connections).sum();
    assert_eq!(conns, 16);
    assert_eq!(report.connections.len(), 16);
    assert_eq!(report.sources.len(), 4);
    for src in &report.sources {
        assert_eq!(src.connections, 4);
        assert!(src.longest_gap_ms < 1000.0, "{src:?}");
    }
    let timeline_ok: u64 = report.timeline.iter().flat_map(|b| b.ok.values()).sum();
    assert_eq!(timeline_ok, report.ok_rpcs);
    // The report survives a JSON round trip (the lab reads it back).
    let back: LoadReport = serde_json::from_str(&serde_json::to_string(&report)?)?;
    assert_eq!(back.servers.len(), report.servers.len());
    assert_eq!(per_server(&back), ours);
    assert_eq!(back.connections, report.connections);
    assert_eq!(back.timeline, report.timeline);
    assert_eq!(back.latency_us.p99, report.latency_us.p99);
    a.stop().await;
    b.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_server_sees_all_eight_source_addresses() -> Result<()> {
    let servers = [
        one_server(ServerConfig::new("rs1")).await?,
        one_server(ServerConfig::new("rs2")).await?,
    ];
    let sources: Vec<_> = bench::sources::parse_source_ips("127.0.9.0/28")?
        .into_iter()
        .take(8)
        .collect();
    assert_eq!(sources.len(), 8);
    for server in &servers {
        let mut cfg = LoadgenConfig::new(server.addr);
        cfg.sources = sources.iter().copied().map(Some).collect();
        cfg.load = LoadModel::Closed { concurrency: 8 };
        cfg.requests = Some(400);
        cfg.duration = Duration::from_secs(30);
        let report = run(cfg).await?;
        assert_eq!(report.ok_rpcs, 400);
        let st = stats(server.addr).await?;
        let peers: BTreeSet<String> = st
            .peers
            .iter()
            .filter(|p| p.rpcs > 0)
            .map(|p| p.peer_ip.clone())
            .collect();
        let expected: BTreeSet<String> = sources.iter().map(|ip| ip.to_string()).collect();
        assert_eq!(peers, expected, "server {} peers", st.server_name);
        let reported: BTreeSet<String> = report.sources.iter().map(|s| s.address.clone()).collect();
        assert_eq!(reported, expected);
        for p in st.peers.iter().filter(|p| p.rpcs > 0) {
            let src = report
                .sources
                .iter()
                .find(|s| s.address == p.peer_ip)
                .context("source missing")?;
            assert_eq!(src.rpcs, p.rpcs, "per-source count for {}", p.peer_ip);
            assert_eq!(p.connections, 1);
        }
    }
    for s in servers {
        s.stop().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_shows_a_stall_that_closed_loop_hides() -> Result<()> {
    let stall = StallOnce {
        after: 200,
        duration: Duration::from_millis(300),
    };
    let mut config = ServerConfig::new("stall");
    config.stall = Some(stall);

    // Closed loop, one caller: only the one stalled RPC is slow.
    let closed_server = one_server(config.clone()).await?;
    let mut cfg = LoadgenConfig::new(closed_server.addr);
    cfg.duration = Duration::from_secs(2);
    let closed = run(cfg).await?;
    closed_server.stop().await;

    // Open loop at 400/s: every RPC scheduled during the stall is late.
    let open_server = one_server(config).await?;
    let mut cfg = LoadgenConfig::new(open_server.addr);
    cfg.duration = Duration::from_secs(2);
    cfg.load = LoadModel::Open {
        rps: 400.0,
        max_in_flight: 1000,
    };
    let open = run(cfg).await?;
    open_server.stop().await;

    let (c, o) = (&closed.latency_us, &open.latency_us);
    eprintln!("closed {c:?}\nopen {o:?}");
    assert!(closed.ok_rpcs > 250 && open.ok_rpcs > 250);
    // Both saw the stall as their maximum...
    assert!(c.max >= 250_000, "closed max {}", c.max);
    assert!(o.max >= 250_000, "open max {}", o.max);
    // ...but only the open loop's p99 reflects it.
    assert!(
        c.p99 * 10 < c.max,
        "closed p99 {} should hide the stall (max {})",
        c.p99,
        c.max
    );
    assert!(
        o.p99 * 3 > o.max,
        "open p99 {} should reflect the stall (max {})",
        o.p99,
        o.max
    );
    assert!(o.p99 > c.p99 * 10);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_target_is_a_connect_error() -> Result<()> {
    // Bind then drop: nothing listens on this port any more.
    let addr = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
    let mut cfg = LoadgenConfig::new(addr);
    cfg.timeout = Duration::from_secs(1);
    let err = run(cfg).await.expect_err("must fail");
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_cannot_connect_is_counted_and_the_run_goes_on() -> Result<()> {
    let server = one_server(ServerConfig::new("rs1")).await?;
    let mut cfg = LoadgenConfig::new(server.addr);
    // TEST-NET-3 is not on this host: binding it fails EADDRNOTAVAIL.
    cfg.sources = bench::sources::parse_source_ips("127.0.3.1,203.0.113.77")?
        .into_iter()
        .map(Some)
        .collect();
    cfg.load = LoadModel::Closed { concurrency: 2 };
    cfg.duration = Duration::from_millis(300);
    let report = run(cfg).await?;
    server.stop().await;
    let c = &report.connects;
    assert!(report.ok_rpcs > 0, "{report:?}");
    // The failing lane tries again at every RPC, each attempt counted.
    let failed = c.failed_by_cause.get("addr_not_available").copied();
    assert!(failed.unwrap_or(0) >= 2, "{c:?}");
    assert_eq!(c.failed(), failed.unwrap_or(0), "{c:?}");
    assert_eq!(c.attempts, c.ok + c.failed());
    assert_eq!(c.ok, 1, "{c:?}");
    assert!(report.status_codes.get("UNAVAILABLE").copied().unwrap_or(0) > 0);
    assert_eq!(report.sources[1].rpcs, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_and_conn_per_rpc_open_new_connections() -> Result<()> {
    let server = one_server(ServerConfig::new("rs1")).await?;
    let mut cfg = LoadgenConfig::new(server.addr);
    cfg.requests = Some(100);
    cfg.duration = Duration::from_secs(30);
    cfg.churn = bench::loadgen::Churn::EveryRpcs(10);
    let report = run(cfg.clone()).await?;
    assert_eq!(report.ok_rpcs, 100);
    assert!(
        report.servers[0].connections >= 9,
        "{:?}",
        report.servers[0]
    );

    cfg.churn = bench::loadgen::Churn::PerRpc;
    cfg.requests = Some(30);
    let report = run(cfg).await?;
    assert_eq!(report.ok_rpcs, 30);
    assert_eq!(report.servers[0].connections, 30);
    // Connections loadgen dropped are not taken for the server's GOAWAY.
    let c = &report.connects;
    assert_eq!(c.ended_by.get("goaway"), None, "{c:?}");
    assert_eq!(c.ended_by.get("closed_by_loadgen"), Some(&c.ok), "{c:?}");
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connection_age_spreads_one_channel_over_connections() -> Result<()> {
    let mut config = ServerConfig::new("aging");
    config.max_connection_age = Some(Duration::from_millis(200));
    config.max_connection_age_grace = Some(Duration::from_secs(1));
    let server = one_server(config).await?;
    let mut cfg = LoadgenConfig::new(server.addr);
    cfg.load = LoadModel::Closed { concurrency: 2 };
    cfg.duration = Duration::from_millis(1500);
    let report = run(cfg).await?;
    server.stop().await;
    let s = &report.servers[0];
    assert!(
        s.connections >= 2,
        "one channel stayed on one connection: {s:?}"
    );
    assert!(report.channels_opened >= 2);
    let ended = &report.connects.ended_by;
    assert!(ended.get("goaway").copied().unwrap_or(0) >= 1, "{ended:?}");
    // Reconnecting after GOAWAY loses at most the few RPCs racing it.
    assert!(
        report.errors * 100 <= report.total_rpcs,
        "{:?}",
        report.status_codes
    );
    Ok(())
}
