//! Channels that connect from a chosen local source address.
//!
//! One client namespace can hold many addresses; binding each channel's
//! socket to one of them before `connect()` makes one process look like many
//! clients to IPVS (whose scheduling and persistence key on the client IP).

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};
use tonic::transport::{Channel, Endpoint, Uri};

/// Options shared by every channel a caller opens.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Per-RPC deadline enforced by the channel (None: no deadline).
    pub rpc_timeout: Option<Duration>,
    /// Bound on TCP connect + HTTP/2 handshake.
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            rpc_timeout: Some(Duration::from_secs(5)),
            connect_timeout: Duration::from_secs(3),
        }
    }
}

/// Errors of [`connect_from`].
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect or HTTP/2 handshake failed (refused, unreachable, timeout,
    /// or the source address is not configured on this host).
    #[error("cannot connect to {target} from {source_desc}: {error}", source_desc = source_desc(*.source_ip))]
    Connect {
        /// Source address the socket was bound to, if any.
        source_ip: Option<IpAddr>,
        /// Server address.
        target: SocketAddr,
        /// Underlying error, flattened to its chain of causes.
        error: String,
    },
}

fn source_desc(source: Option<IpAddr>) -> String {
    match source {
        Some(ip) => ip.to_string(),
        None => "the default source address".to_string(),
    }
}

/// Renders an error and its causes as one line (`a: b: c`), because tonic's
/// transport error alone says only "transport error".
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

/// A tower connector that ignores the URI and dials `target` from `source`.
///
/// The socket is bound before `connect()`, with `IP_BIND_ADDRESS_NO_PORT` so
/// the kernel picks the port at connect time from the whole 4-tuple space;
/// a plain `bind(ip:0)` would reserve a port per socket and exhaust the
/// ephemeral range under connection churn.
#[derive(Debug, Clone, Copy)]
pub struct SourceConnector {
    /// Local address to bind (None: let the kernel choose).
    pub source: Option<IpAddr>,
    /// Address to dial.
    pub target: SocketAddr,
}

impl SourceConnector {
    /// Opens one TCP connection, with TCP_NODELAY set.
    pub async fn connect(self) -> io::Result<TcpStream> {
        let socket = if self.target.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(ip) = self.source {
            set_bind_address_no_port(&socket);
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        socket.set_nodelay(true)?;
        socket.connect(self.target).await
    }
}

fn set_bind_address_no_port(socket: &TcpSocket) {
    // Failure only loses the optimisation (ports picked at connect time, so
    // many source addresses can share the ephemeral range), so it is ignored.
    let _ = nix::sys::socket::setsockopt(
        socket,
        nix::sys::socket::sockopt::IpBindAddressNoPort,
        &true,
    );
}

impl tower::Service<Uri> for SourceConnector {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let this = *self;
        Box::pin(async move { this.connect().await.map(TokioIo::new) })
    }
}

fn endpoint(target: SocketAddr, opts: &ConnectOptions) -> Endpoint {
    // The URI only provides :authority; the connector decides where to dial.
    let uri = format!("http://{target}");
    let mut ep = Endpoint::from_shared(uri)
        .expect("a socket address always forms a valid URI")
        .connect_timeout(opts.connect_timeout)
        .tcp_nodelay(true);
    if let Some(t) = opts.rpc_timeout {
        ep = ep.timeout(t);
    }
    ep
}

/// Connects now: binds `source` (if given), connects to `target` and completes
/// the HTTP/2 handshake, so an unreachable target is reported here rather than
/// on the first RPC. If the server later sends GOAWAY, the channel reconnects
/// through the same connector, from the same source address.
pub async fn connect_from(
    source: Option<IpAddr>,
    target: SocketAddr,
    opts: &ConnectOptions,
) -> Result<Channel, ConnectError> {
    let connector = SourceConnector { source, target };
    let ep = endpoint(target, opts);
    match tokio::time::timeout(opts.connect_timeout, ep.connect_with_connector(connector)).await {
        Ok(Ok(ch)) => Ok(ch),
        Ok(Err(e)) => Err(ConnectError::Connect {
            source_ip: source,
            target,
            error: error_chain(&e),
        }),
        Err(_) => Err(ConnectError::Connect {
            source_ip: source,
            target,
            error: format!("timed out after {:?}", opts.connect_timeout),
        }),
    }
}

/// Like [`connect_from`] but connects on first use; used for connection
/// churn, where a failed connect should count as a failed RPC, not stop the
/// run.
pub fn connect_from_lazy(
    source: Option<IpAddr>,
    target: SocketAddr,
    opts: &ConnectOptions,
) -> Channel {
    endpoint(target, opts).connect_with_connector_lazy(SourceConnector { source, target })
}
