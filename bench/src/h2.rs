//! A lean gRPC-over-HTTP/2 client for unary calls, on the `h2` crate.
//!
//! tonic's `Channel` puts a `tower::Buffer` (an mpsc queue and a worker task)
//! plus reconnect, origin, user-agent and timeout layers in front of hyper;
//! hyper's HTTP/2 client in turn spawns a task per request (and a second
//! one when the body is not sent at once) and answers through a oneshot; and
//! tonic's codec streams the body through its own buffers. For a load
//! generator all of that is CPU on every call. Here every caller holds a
//! clone of `h2`'s `SendRequest`, writes the pre-framed request itself and
//! polls the response stream directly: the only task besides the callers is
//! one per connection. Reconnecting (after GOAWAY, or for churn) is done by
//! the caller (see `loadgen`), not by a background layer.
//!
//! gRPC semantics are kept: `grpc-status`/`grpc-message` (and metadata such
//! as `x-server-name`) from trailers or a trailers-only response, HTTP status
//! mapping and HTTP/2 reset codes as tonic maps them.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ::h2::client::SendRequest;
use bytes::{Buf, Bytes, BytesMut};
use grpc_demo::client::{ConnectError, SourceConnector, error_chain};
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, TE};
use http::{Method, Request, StatusCode, Uri};
use tonic::{Code, Status};

use crate::connects::{ConnEnd, ConnectCause, ConnectStats, PingOutcome};

/// How long a keepalive PING waits for its ack before the connection is
/// given up: grpc's default `keepalive_timeout`.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Same windows as hyper's HTTP/2 client (and so as tonic's channel).
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONN_WINDOW: u32 = 5 * 1024 * 1024;
const MAX_SEND_BUF: usize = 1024 * 1024;
const INITIAL_MAX_SEND_STREAMS: usize = 100;

/// What every call of a run sends besides its message: the method's path
/// and the extra request headers (`--metadata`, and `grpc-timeout` in
/// generic mode), converted once so a call only clones reference counts.
#[derive(Debug, Clone)]
pub struct CallHead {
    /// `/pkg.Service/Method`.
    pub path: String,
    /// Extra headers, in order.
    pub headers: Arc<[(HeaderName, HeaderValue)]>,
    /// gRPC keepalive: an HTTP/2 PING on every connection this often,
    /// busy or idle (`keepalive_time` with `permit_without_calls`).
    pub keepalive: Option<Duration>,
}

impl CallHead {
    /// The demo mode's `WhoAmI`, with no extra headers.
    pub fn demo() -> Self {
        Self {
            path: grpc_demo::WHOAMI_PATH.to_string(),
            headers: Arc::new([]),
            keepalive: None,
        }
    }
}

/// Numbers the connections of this process, so a report can name a
/// connection without the server's help (see [`H2Conn::serial`]).
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// One HTTP/2 connection to a gRPC server; clones share the connection.
#[derive(Debug, Clone)]
pub struct H2Conn {
    send: SendRequest<Bytes>,
    /// Absolute URI of the method (`http://target/pkg.Service/Method`).
    uri: Uri,
    headers: Arc<[(HeaderName, HeaderValue)]>,
    closed: Arc<AtomicBool>,
    /// Set when loadgen replaces the connection on purpose (churn), so its
    /// end is not taken for the server's GOAWAY.
    retired: Arc<AtomicBool>,
    serial: u64,
    local: Option<SocketAddr>,
}

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// The request never left: the connection is gone or has received a
    /// GOAWAY. Nothing reached the server, so the caller may reconnect
    /// and retry.
    NotSent(Status),
    /// The call was sent and failed (a gRPC status, a reset, an HTTP error).
    Failed(Status),
}

impl CallError {
    /// The gRPC status of the failure.
    pub fn into_status(self) -> Status {
        match self {
            CallError::NotSent(s) | CallError::Failed(s) => s,
        }
    }
}

impl H2Conn {
    /// True once the connection is closed (connection task ended, or a call
    /// found it unusable); the caller should then reconnect.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// This process's number for the connection (1, 2, ... in connect
    /// order), unique for the process's life.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The local address (source IP and port) the kernel gave the socket at
    /// connect time: with the target, the 4-tuple that IPVS's connection
    /// table names a real server for.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// Marks the connection unusable, so callers sharing it reconnect.
    pub fn mark_closed(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Marks the connection as dropped by loadgen (churn): when it ends,
    /// it counts as `closed_by_loadgen`.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
    }

    /// One unary call: sends `frame` (a complete gRPC length-prefixed
    /// message, see [`crate::wire::grpc_frame`]) and returns the reply
    /// message bytes.
    pub async fn unary(&mut self, frame: Bytes) -> Result<Bytes, CallError> {
        let not_sent = |e: ::h2::Error| CallError::NotSent(Status::unavailable(e.to_string()));
        futures::future::poll_fn(|cx| self.send.poll_ready(cx))
            .await
            .map_err(not_sent)?;
        let mut req = Request::new(());
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.uri.clone();
        let headers = req.headers_mut();
        // One allocation for all of them, however many `--metadata` there are.
        headers.reserve(2 + self.headers.len());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(TE, HeaderValue::from_static("trailers"));
        for (name, value) in self.headers.iter() {
            headers.append(name.clone(), value.clone());
        }
        let (response, mut body) = self.send.send_request(req, false).map_err(not_sent)?;
        body.send_data(frame, true).map_err(failed)?;
        let response = response.await.map_err(failed)?;
        let (parts, mut recv) = response.into_parts();
        // A trailers-only response carries the status in the headers.
        if let Some(status) = Status::from_header_map(&parts.headers) {
            return Err(CallError::Failed(if status.code() == Code::Ok {
                Status::internal("Missing response message.")
            } else {
                status
            }));
        }
        if parts.status != StatusCode::OK {
            return Err(CallError::Failed(http_status(parts.status)));
        }
        let mut message = Message::default();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk.map_err(failed)?;
            let _ = recv.flow_control().release_capacity(chunk.len());
            message.push(chunk).map_err(CallError::Failed)?;
        }
        let trailers = recv.trailers().await.map_err(failed)?;
        match trailers.as_ref().and_then(Status::from_header_map) {
            Some(status) if status.code() == Code::Ok => {
                message.finish().map_err(CallError::Failed)
            }
            Some(status) => Err(CallError::Failed(status)),
            None => Err(CallError::Failed(Status::unknown(
                "protocol error: missing grpc-status trailer",
            ))),
        }
    }
}

fn failed(e: ::h2::Error) -> CallError {
    // tonic maps h2 reset reasons (REFUSED_STREAM -> UNAVAILABLE, ...).
    CallError::Failed(Status::from_error(Box::new(e)))
}

/// gRPC code for a non-200 HTTP status without `grpc-status`, as tonic (and
/// grpc's http-grpc-status-mapping.md) map it.
fn http_status(code: StatusCode) -> Status {
    let grpc = match code {
        StatusCode::BAD_REQUEST => Code::Internal,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::Unimplemented,
        StatusCode::TOO_MANY_REQUESTS
        | StatusCode::BAD_GATEWAY
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => Code::Unavailable,
        _ => Code::Unknown,
    };
    Status::new(grpc, format!("HTTP status {code} without grpc-status"))
}

/// Reassembles the single length-prefixed message of a unary reply from
/// DATA chunks; the common case (one chunk holding the whole frame) is a
/// zero-copy slice.
#[derive(Default)]
struct Message {
    first: Option<Bytes>,
    rest: Option<BytesMut>,
}

impl Message {
    fn push(&mut self, chunk: Bytes) -> Result<(), Status> {
        if chunk.is_empty() {
            return Ok(());
        }
        match (&mut self.first, &mut self.rest) {
            (None, _) => self.first = Some(chunk),
            (Some(first), rest) => {
                let buf = rest.get_or_insert_with(|| BytesMut::from(&first[..]));
                buf.extend_from_slice(&chunk);
            }
        }
        Ok(())
    }

    /// The message (its first, for a unary call the only one).
    fn finish(self) -> Result<Bytes, Status> {
        let mut all = match (self.first, self.rest) {
            (_, Some(rest)) => rest.freeze(),
            (Some(first), None) => first,
            (None, None) => return Err(Status::internal("Missing response message.")),
        };
        if all.len() < 5 {
            return Err(Status::internal("truncated gRPC frame header"));
        }
        let len = u32::from_be_bytes([all[1], all[2], all[3], all[4]]) as usize;
        if all[0] != 0 {
            return Err(Status::internal(
                "compressed reply, but loadgen asks for no compression",
            ));
        }
        if all.len() < 5 + len {
            return Err(Status::internal("truncated gRPC message"));
        }
        all.advance(5);
        all.truncate(len);
        Ok(all)
    }
}

/// The future that runs one HTTP/2 connection (reads, writes, flow
/// control); it must be polled for calls on the connection to progress.
pub type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A failed connect: the error as today, and its cause for the counts.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ConnectFailed {
    /// Why, as counted in the report.
    pub cause: ConnectCause,
    /// The error, naming source and target.
    #[source]
    pub error: ConnectError,
}

/// Like [`connect_with_driver`], with the connection's driver spawned as a
/// task of its own on the current runtime.
pub async fn connect(
    source: Option<IpAddr>,
    target: SocketAddr,
    head: &CallHead,
    timeout: Duration,
    stats: &Arc<ConnectStats>,
) -> Result<H2Conn, ConnectFailed> {
    let (conn, driver) = connect_with_driver(source, target, head, timeout, stats).await?;
    tokio::spawn(driver);
    Ok(conn)
}

/// Connects from `source` to `target` (TCP_NODELAY, bound before connect)
/// and completes the HTTP/2 handshake within `timeout`. Calls go to
/// `head.path` with `head.headers`. The caller must poll the returned
/// [`Driver`] (or spawn it). Every attempt is counted in `stats`: its
/// latency or its cause, and, from the driver, how the connection ended.
pub async fn connect_with_driver(
    source: Option<IpAddr>,
    target: SocketAddr,
    head: &CallHead,
    timeout: Duration,
    stats: &Arc<ConnectStats>,
) -> Result<(H2Conn, Driver), ConnectFailed> {
    let fail = |cause: ConnectCause, error: String| ConnectFailed {
        cause,
        error: ConnectError::Connect {
            source_ip: source,
            target,
            error,
        },
    };
    let path = &head.path;
    let uri: Uri = format!("http://{target}{path}")
        .parse()
        .map_err(|_| fail(ConnectCause::Other, format!("invalid URI for {path}")))?;
    let headers = head.headers.clone();
    let started = std::time::Instant::now();
    let work = async {
        let stream = SourceConnector { source, target }
            .connect()
            .await
            .map_err(|e| fail(ConnectCause::of_io(&e), error_chain(&e)))?;
        let local = stream.local_addr().ok();
        let (send, mut conn) = ::h2::client::Builder::new()
            .initial_max_send_streams(INITIAL_MAX_SEND_STREAMS)
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONN_WINDOW)
            .max_send_buffer_size(MAX_SEND_BUF)
            .enable_push(false)
            .handshake::<_, Bytes>(stream)
            .await
            .map_err(|e| {
                let cause = e.get_io().map_or(ConnectCause::Other, ConnectCause::of_io);
                fail(cause, error_chain(&e))
            })?;
        let closed = Arc::new(AtomicBool::new(false));
        let retired = Arc::new(AtomicBool::new(false));
        let (flag, gone, ends) = (closed.clone(), retired.clone(), stats.clone());
        let serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
        let pings = head.keepalive.zip(conn.ping_pong());
        let driver: Driver = Box::pin(async move {
            let end = match pings {
                None => Some(conn.await),
                Some((every, pings)) => tokio::select! {
                    end = &mut conn => Some(end),
                    () = keep_alive(pings, every, &ends) => None,
                },
            };
            flag.store(true, Ordering::Relaxed);
            // A graceful close (Ok) is the server's GOAWAY unless loadgen
            // retired the connection; those, and connections still open at
            // the end, are counted as closed by loadgen in the report.
            let end = match end {
                // A PING went unanswered: given up (dropped) by loadgen.
                None => ConnEnd::Loadgen,
                Some(Ok(())) if gone.load(Ordering::Relaxed) => ConnEnd::Loadgen,
                Some(Ok(())) => ConnEnd::Goaway,
                Some(Err(e)) if e.is_go_away() && e.is_remote() => ConnEnd::Goaway,
                Some(Err(_)) if gone.load(Ordering::Relaxed) => ConnEnd::Loadgen,
                Some(Err(_)) => ConnEnd::Reset,
            };
            if end != ConnEnd::Loadgen {
                ends.ended(end);
            }
            ends.closed(serial, end);
        });
        let conn = H2Conn {
            send,
            uri,
            headers,
            closed,
            retired,
            serial,
            local,
        };
        Ok((conn, driver))
    };
    let result = match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(fail(
            ConnectCause::Timeout,
            format!("timed out after {timeout:?}"),
        )),
    };
    match &result {
        Ok((conn, _)) => {
            stats.ok(started.elapsed());
            stats.opened(conn.serial, conn.local, started.elapsed());
        }
        Err(e) => stats.failed(e.cause),
    }
    result
}

/// gRPC keepalive on one connection: a PING every `every`; returns when
/// one is not acknowledged within [`KEEPALIVE_TIMEOUT`] (the connection is
/// then dropped, as grpc closes the transport). A PING that fails because
/// the connection is gone waits forever: the connection's own end wins.
async fn keep_alive(mut pings: ::h2::PingPong, every: Duration, stats: &ConnectStats) {
    loop {
        tokio::time::sleep(every).await;
        stats.ping(PingOutcome::Sent);
        match tokio::time::timeout(KEEPALIVE_TIMEOUT, pings.ping(::h2::Ping::opaque())).await {
            Ok(Ok(_)) => stats.ping(PingOutcome::Acked),
            Ok(Err(_)) => std::future::pending::<()>().await,
            Err(_) => {
                stats.ping(PingOutcome::TimedOut);
                return;
            }
        }
    }
}

/// The message inside one complete gRPC frame.
pub fn unframe(frame: &[u8]) -> Result<Bytes, Status> {
    let mut m = Message::default();
    m.push(Bytes::copy_from_slice(frame))?;
    m.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::grpc_frame;

    #[test]
    fn unframes_one_or_many_chunks() {
        let frame = grpc_frame(b"hello");
        assert_eq!(unframe(&frame).unwrap(), &b"hello"[..]);
        let mut m = Message::default();
        for part in frame.chunks(2) {
            m.push(Bytes::copy_from_slice(part)).unwrap();
        }
        assert_eq!(m.finish().unwrap(), &b"hello"[..]);
        assert_eq!(unframe(&frame[..6]).unwrap_err().code(), Code::Internal);
        let mut compressed = frame.clone();
        compressed[0] = 1;
        assert_eq!(unframe(&compressed).unwrap_err().code(), Code::Internal);
        assert_eq!(
            Message::default().finish().unwrap_err().code(),
            Code::Internal
        );
    }

    #[test]
    fn http_status_mapping_follows_tonic() {
        assert_eq!(
            http_status(StatusCode::NOT_FOUND).code(),
            Code::Unimplemented
        );
        assert_eq!(
            http_status(StatusCode::SERVICE_UNAVAILABLE).code(),
            Code::Unavailable
        );
        assert_eq!(http_status(StatusCode::IM_A_TEAPOT).code(), Code::Unknown);
    }
}
