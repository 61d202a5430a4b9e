//! The identity-tagged `Demo` server.
//!
//! The accept loop is our own (hyper's HTTP/2 connection builder over tonic's
//! [`Routes`]) rather than `tonic::transport::Server`, for two reasons:
//! - every accepted connection gets an id and a per-connection RPC sequence,
//!   which handlers read from the request extensions;
//! - `max_connection_age` must send GOAWAY *and* honour a grace period. In
//!   tonic 0.14.9, setting `max_connection_age_grace` skips the GOAWAY and
//!   closes the connection hard after age + grace, so clients see errors
//!   instead of a clean reconnect.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::service::Routes;
use tonic::{Code, Request, Response, Status};

use crate::pb;
use crate::pb::demo_server::{Demo, DemoServer};

mod args;
mod delay;

pub use args::{READY_LINE_PREFIX, ServerArgs, parse_ready_line};
pub use delay::{Delay, DelayParseError};

/// Everything the server needs, as a value (no environment reads), so the
/// lab and tests can build it directly.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Name returned in every reply (`rs1`, ...).
    pub name: String,
    /// Response delay model.
    pub delay: Delay,
    /// Fraction of `WhoAmI` calls that fail on purpose, in `[0, 1]`.
    pub error_rate: f64,
    /// Status code of injected failures.
    pub error_code: Code,
    /// Send GOAWAY to each connection after this age (±10 % jitter, as gRPC
    /// servers do, so that connections opened together do not all reconnect
    /// together).
    pub max_connection_age: Option<Duration>,
    /// After GOAWAY, close the connection hard once this grace has passed.
    pub max_connection_age_grace: Option<Duration>,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection.
    pub max_concurrent_streams: Option<u32>,
    /// Stall all `WhoAmI` calls once, for the coordinated-omission test.
    pub stall: Option<StallOnce>,
    /// How long shutdown waits for connections to drain after GOAWAY.
    pub drain_timeout: Duration,
}

impl ServerConfig {
    /// A plain server: no delay, no errors, no connection age.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            delay: Delay::None,
            error_rate: 0.0,
            error_code: Code::Unavailable,
            max_connection_age: None,
            max_connection_age_grace: None,
            max_concurrent_streams: None,
            stall: None,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// A one-time stall: once `after` calls have been answered, every call that
/// arrives during the next `duration` waits until it ends — like a GC pause
/// that freezes the whole server, not just one request.
#[derive(Debug, Clone, Copy)]
pub struct StallOnce {
    /// Number of `WhoAmI` calls answered normally before the stall.
    pub after: u64,
    /// Length of the stall.
    pub duration: Duration,
}

/// Errors of [`serve`] and [`main_with_args`].
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Requested address.
        addr: SocketAddr,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Building the tokio runtime failed.
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Installing the signal handlers failed.
    #[error("cannot install signal handlers: {0}")]
    Signal(#[source] std::io::Error),
    /// Reading the listener's address failed.
    #[error("cannot read the listener's local address: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// The reflection service rejected the descriptor set (a build bug).
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Counters of one peer IP; shared by its connections so that handlers
/// update them without a map lookup.
#[derive(Debug, Default)]
struct PeerCounters {
    rpcs: AtomicU64,
    errors: AtomicU64,
    connections: AtomicU64,
}

/// Server-wide state shared by the accept loop and the handlers.
#[derive(Debug)]
struct Shared {
    config: ServerConfig,
    next_conn_id: AtomicU64,
    rpcs: AtomicU64,
    errors: AtomicU64,
    connections: AtomicU64,
    active: AtomicU64,
    /// Calls started, for the one-time stall.
    started: AtomicU64,
    stall_until: Mutex<Option<Instant>>,
    peers: Mutex<HashMap<IpAddr, Arc<PeerCounters>>>,
}

impl Shared {
    fn peer(&self, ip: IpAddr) -> Arc<PeerCounters> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.entry(ip).or_default().clone()
    }
}

/// Per-connection facts, put into each request's extensions.
#[derive(Debug)]
struct ConnInfo {
    id: u64,
    local: String,
    peer: String,
    seq: AtomicU64,
    counters: Arc<PeerCounters>,
}

#[derive(Debug, Clone)]
struct ConnExt(Arc<ConnInfo>);

/// Decrements the active-connection gauge however the connection ends.
struct ActiveGuard(Arc<Shared>);
impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone)]
struct DemoService {
    shared: Arc<Shared>,
}

impl DemoService {
    async fn maybe_stall(&self) {
        let Some(stall) = self.shared.config.stall else {
            return;
        };
        let n = self.shared.started.fetch_add(1, Ordering::Relaxed);
        let until = {
            let mut guard = self
                .shared
                .stall_until
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if n == stall.after {
                *guard = Some(Instant::now() + stall.duration);
            }
            *guard
        };
        if let Some(until) = until
            && Instant::now() < until
        {
            tokio::time::sleep_until(until).await;
        }
    }
}

#[tonic::async_trait]
impl Demo for DemoService {
    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIReply>, Status> {
        let conn = request
            .extensions()
            .get::<ConnExt>()
            .map(|c| c.0.clone())
            .ok_or_else(|| Status::internal("connection info missing"))?;
        let seq = conn.seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.maybe_stall().await;
        if let Some(d) = self.shared.config.delay.sample() {
            tokio::time::sleep(d).await;
        }
        let cfg = &self.shared.config;
        if cfg.error_rate > 0.0 && rand::random::<f64>() < cfg.error_rate {
            self.shared.errors.fetch_add(1, Ordering::Relaxed);
            conn.counters.errors.fetch_add(1, Ordering::Relaxed);
            let mut status = Status::new(cfg.error_code, "injected error");
            if let Ok(v) = cfg.name.parse() {
                status.metadata_mut().insert("x-server-name", v);
            }
            return Err(status);
        }
        self.shared.rpcs.fetch_add(1, Ordering::Relaxed);
        conn.counters.rpcs.fetch_add(1, Ordering::Relaxed);
        let size = request.get_ref().response_size.min(4 << 20) as usize;
        Ok(Response::new(pb::WhoAmIReply {
            server_name: cfg.name.clone(),
            server_addr: conn.local.clone(),
            peer_addr: conn.peer.clone(),
            conn_id: conn.id,
            conn_seq: seq,
            payload: vec![b'x'; size],
        }))
    }

    async fn stats(
        &self,
        _request: Request<pb::StatsRequest>,
    ) -> Result<Response<pb::StatsReply>, Status> {
        let s = &self.shared;
        let mut peers: Vec<pb::PeerStats> = {
            let map = s.peers.lock().unwrap_or_else(|e| e.into_inner());
            map.iter()
                .map(|(ip, c)| pb::PeerStats {
                    peer_ip: ip.to_string(),
                    rpcs: c.rpcs.load(Ordering::Relaxed),
                    errors: c.errors.load(Ordering::Relaxed),
                    connections: c.connections.load(Ordering::Relaxed),
                })
                .collect()
        };
        peers.sort_by(|a, b| a.peer_ip.cmp(&b.peer_ip));
        Ok(Response::new(pb::StatsReply {
            server_name: s.config.name.clone(),
            rpcs: s.rpcs.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            connections: s.connections.load(Ordering::Relaxed),
            active_connections: s.active.load(Ordering::Relaxed),
            peers,
        }))
    }
}

/// Serves `Demo`, health and reflection on `listener` until `shutdown`
/// completes, then sends GOAWAY on every connection and waits up to
/// `config.drain_timeout` for them to finish.
///
/// The listener is passed in (not an address) so the lab can bind inside a
/// network namespace and tests can bind port 0.
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let drain_timeout = config.drain_timeout;
    let shared = Arc::new(Shared {
        config,
        next_conn_id: AtomicU64::new(0),
        rpcs: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        connections: AtomicU64::new(0),
        active: AtomicU64::new(0),
        started: AtomicU64::new(0),
        stall_until: Mutex::new(None),
        peers: Mutex::new(HashMap::new()),
    });
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<DemoServer<DemoService>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let routes = Routes::new(DemoServer::new(DemoService {
        shared: shared.clone(),
    }))
    .add_service(health_service)
    .add_service(reflection_v1)
    .add_service(reflection_v1alpha)
    .prepare();

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    conns.spawn(serve_connection(
                        stream,
                        peer,
                        shared.clone(),
                        routes.clone(),
                        stop_rx.clone(),
                    ));
                }
                Err(e) => {
                    // ECONNABORTED, EMFILE...: keep serving, but do not spin.
                    eprintln!("grpc-demo-server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    drop(listener);
    health_reporter
        .set_not_serving::<DemoServer<DemoService>>()
        .await;
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(drain_timeout, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
    }
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    routes: Routes,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let local = stream
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let counters = shared.peer(peer.ip());
    counters.connections.fetch_add(1, Ordering::Relaxed);
    shared.connections.fetch_add(1, Ordering::Relaxed);
    shared.active.fetch_add(1, Ordering::Relaxed);
    let _active = ActiveGuard(shared.clone());
    let info = ConnExt(Arc::new(ConnInfo {
        id: shared.next_conn_id.fetch_add(1, Ordering::Relaxed) + 1,
        local,
        peer: peer.to_string(),
        seq: AtomicU64::new(0),
        counters,
    }));
    let svc = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(info.clone());
        tower::ServiceExt::oneshot(routes.clone(), req)
    });
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
    builder.max_concurrent_streams(shared.config.max_concurrent_streams);
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);

    let age = shared.config.max_connection_age.map(|age| {
        // ±10 % jitter, as grpc-go and grpc-java apply.
        let jitter = 0.9 + 0.2 * rand::random::<f64>();
        Instant::now() + age.mul_f64(jitter)
    });
    let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let age_sleep = tokio::time::sleep_until(age.unwrap_or(far));
    tokio::pin!(age_sleep);
    let mut grace_deadline: Option<Instant> = None;
    let grace_sleep = tokio::time::sleep_until(far);
    tokio::pin!(grace_sleep);
    let mut draining = false;
    if *stop.borrow() {
        conn.as_mut().graceful_shutdown();
        draining = true;
    }
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = &mut age_sleep, if age.is_some() && !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
                if let Some(grace) = shared.config.max_connection_age_grace {
                    let deadline = Instant::now() + grace;
                    grace_deadline = Some(deadline);
                    grace_sleep.as_mut().reset(deadline);
                }
            }
            _ = &mut grace_sleep, if grace_deadline.is_some() => break,
            changed = stop.changed(), if !draining => {
                if changed.is_err() || *stop.borrow() {
                    conn.as_mut().graceful_shutdown();
                    draining = true;
                }
            }
        }
    }
}

/// Runs the server as a program: builds the runtime (current_thread when
/// `--threads 1`), binds `--listen`, prints `listening on ADDR` on stdout and
/// serves until SIGTERM/SIGINT. Exit code 0 on clean shutdown, 1 on a
/// runtime error (e.g. the address is in use).
pub fn main_with_args(args: ServerArgs) -> ExitCode {
    match run_main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grpc-demo-server: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_main(args: ServerArgs) -> Result<(), ServeError> {
    let runtime = crate::cli::runtime(args.threads).map_err(ServeError::Runtime)?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(args.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: args.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(ServeError::LocalAddr)?;
        // Installed before announcing the address, so a signal sent right
        // after `listening on` is never lost.
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signal)?;
        let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signal)?;
        println!("{READY_LINE_PREFIX}{addr}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        serve(listener, args.config(), shutdown).await
    })
}
