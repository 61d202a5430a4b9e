//! A lean HTTP/2 transport for `tonic::client::Grpc`.
//!
//! tonic's `Channel` puts a `tower::Buffer` (an mpsc queue and a worker task)
//! plus reconnect, origin, user-agent and timeout layers in front of hyper's
//! `SendRequest`. For a load generator that costs CPU on every call, which
//! is what limits a plain tonic client to ~0.8× h2load. Here every caller
//! holds its own clone of hyper's `SendRequest` and `Grpc` talks to it
//! directly; reconnecting (after GOAWAY or for churn) is done by the caller
//! (see `loadgen`), not by a background layer.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use grpc_demo::client::{ConnectError, SourceConnector, error_chain};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tonic::body::Body;
use tonic::client::Grpc;

/// One HTTP/2 connection's request sender, usable as a tower service.
#[derive(Debug, Clone)]
pub struct H2Service {
    send: SendRequest<Body>,
}

impl H2Service {
    /// True once the connection is closed (GOAWAY drained, reset, EOF);
    /// the caller should then reconnect.
    pub fn is_closed(&self) -> bool {
        self.send.is_closed()
    }
}

impl tower::Service<http::Request<Body>> for H2Service {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, hyper::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.send.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        Box::pin(self.send.send_request(req))
    }
}

/// A gRPC client over one [`H2Service`].
pub type H2Client = Grpc<H2Service>;

/// A client plus a probe on the same connection (`Grpc` does not expose its
/// service, and the caller needs [`H2Service::is_closed`]).
#[derive(Debug, Clone)]
pub struct H2Conn {
    /// The gRPC client.
    pub client: H2Client,
    /// The same connection, for liveness checks.
    pub probe: H2Service,
}

/// Connects from `source` to `target` (TCP_NODELAY, bound before connect),
/// completes the HTTP/2 handshake within `timeout` and spawns the connection
/// task on the current runtime.
pub async fn connect(
    source: Option<IpAddr>,
    target: SocketAddr,
    timeout: Duration,
) -> Result<H2Conn, ConnectError> {
    let fail = |error: String| ConnectError::Connect {
        source_ip: source,
        target,
        error,
    };
    let work = async {
        let stream = SourceConnector { source, target }
            .connect()
            .await
            .map_err(|e| fail(error_chain(&e)))?;
        let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new());
        let (send, conn) = builder
            .handshake::<_, Body>(TokioIo::new(stream))
            .await
            .map_err(|e| fail(error_chain(&e)))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let origin = format!("http://{target}")
            .parse()
            .map_err(|_| fail("invalid origin".to_string()))?;
        let probe = H2Service { send };
        Ok(H2Conn {
            client: Grpc::with_origin(probe.clone(), origin),
            probe,
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(fail(format!("timed out after {timeout:?}"))),
    }
}
