//! In-process tests of the server and the source-bound client.

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Result;
use grpc_demo::client::{ConnectOptions, connect_from};
use grpc_demo::pb::demo_client::DemoClient;
use grpc_demo::pb::{StatsRequest, WhoAmIRequest};
use grpc_demo::server::{ServerConfig, serve};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::Instant;

async fn start(
    config: ServerConfig,
) -> Result<(SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve(listener, config, async {
            let _ = rx.await;
        })
        .await
        .expect("serve failed");
    });
    Ok((addr, tx, task))
}

#[tokio::test]
async fn reply_carries_identity_and_counters_match() -> Result<()> {
    let (addr, stop, task) = start(ServerConfig::new("rs1")).await?;
    let source: IpAddr = "127.0.0.7".parse()?;
    let ch = connect_from(Some(source), addr, &ConnectOptions::default()).await?;
    let mut client = DemoClient::new(ch);
    let mut conn_ids = BTreeSet::new();
    for seq in 1..=5u64 {
        let r = client
            .who_am_i(WhoAmIRequest {
                payload: vec![0; 10],
                response_size: 100,
            })
            .await?
            .into_inner();
        assert_eq!(r.server_name, "rs1");
        assert_eq!(r.server_addr, addr.to_string());
        let peer: SocketAddr = r.peer_addr.parse()?;
        assert_eq!(peer.ip(), source, "the server must see the bound source");
        assert_eq!(r.conn_seq, seq);
        assert_eq!(r.payload.len(), 100);
        conn_ids.insert(r.conn_id);
    }
    assert_eq!(conn_ids.len(), 1);
    let st = client.stats(StatsRequest {}).await?.into_inner();
    assert_eq!(st.server_name, "rs1");
    assert_eq!(st.rpcs, 5);
    assert_eq!(st.connections, 1);
    assert_eq!(st.peers.len(), 1);
    assert_eq!(st.peers[0].peer_ip, "127.0.0.7");
    assert_eq!(st.peers[0].rpcs, 5);
    assert_eq!(st.peers[0].connections, 1);
    drop(client);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task).await??;
    Ok(())
}

#[tokio::test]
async fn injected_errors_are_counted_and_name_the_server() -> Result<()> {
    let mut cfg = ServerConfig::new("flaky");
    cfg.error_rate = 1.0;
    let (addr, stop, task) = start(cfg).await?;
    let ch = connect_from(None, addr, &ConnectOptions::default()).await?;
    let mut client = DemoClient::new(ch);
    let err = client
        .who_am_i(WhoAmIRequest::default())
        .await
        .expect_err("error rate 1.0");
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert_eq!(
        err.metadata().get("x-server-name").map(|v| v.to_str().ok()),
        Some(Some("flaky"))
    );
    let st = client.stats(StatsRequest {}).await?.into_inner();
    assert_eq!((st.rpcs, st.errors), (0, 1));
    drop(client);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task).await??;
    Ok(())
}

#[tokio::test]
async fn max_connection_age_moves_one_channel_to_new_connections() -> Result<()> {
    let mut cfg = ServerConfig::new("aging");
    cfg.max_connection_age = Some(Duration::from_millis(200));
    cfg.max_connection_age_grace = Some(Duration::from_secs(1));
    let (addr, stop, task) = start(cfg).await?;
    let ch = connect_from(None, addr, &ConnectOptions::default()).await?;
    let mut client = DemoClient::new(ch);
    let mut conn_ids = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Bounded polling: keep calling on the same channel until a second
    // connection id shows up. Calls racing a GOAWAY may fail; that is fine.
    while conn_ids.len() < 2 && Instant::now() < deadline {
        if let Ok(r) = client.who_am_i(WhoAmIRequest::default()).await {
            conn_ids.insert(r.into_inner().conn_id);
        }
        tokio::task::yield_now().await;
    }
    assert!(conn_ids.len() >= 2, "only saw connections {conn_ids:?}");
    drop(client);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task).await??;
    Ok(())
}

#[tokio::test]
async fn shutdown_drains_with_goaway() -> Result<()> {
    let (addr, stop, task) = start(ServerConfig::new("rs1")).await?;
    let ch = connect_from(None, addr, &ConnectOptions::default()).await?;
    let mut client = DemoClient::new(ch);
    client.who_am_i(WhoAmIRequest::default()).await?;
    let _ = stop.send(());
    // The open client connection must not keep the server alive: GOAWAY
    // then the connection closes, well within the drain timeout.
    tokio::time::timeout(Duration::from_secs(4), task).await??;
    Ok(())
}

#[tokio::test]
async fn connect_from_reports_refused_target() -> Result<()> {
    let addr = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
    let err = connect_from(None, addr, &ConnectOptions::default())
        .await
        .expect_err("nothing listens");
    let msg = err.to_string();
    assert!(msg.contains(&addr.to_string()), "{msg}");
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
    Ok(())
}
