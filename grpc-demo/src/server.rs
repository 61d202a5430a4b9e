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
use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::str::FromStr;
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

use crate::duration::parse_duration;
use crate::pb;
use crate::pb::demo_server::{Demo, DemoServer};

/// Response delay model, applied to every `WhoAmI` before it answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delay {
    /// Answer at once.
    None,
    /// Always wait this long.
    Fixed(Duration),
    /// Wait a uniformly random time in `[min, max]`.
    Uniform {
        /// Lower bound.
        min: Duration,
        /// Upper bound.
        max: Duration,
    },
    /// Wait an exponentially distributed time with this mean (a memoryless
    /// service time, the classic M/M/1 model).
    Exponential {
        /// Mean delay.
        mean: Duration,
    },
}

/// Why a `--delay` value was rejected.
#[derive(Debug, thiserror::Error)]
#[error("invalid delay {0:?}: expected none, fixed:5ms, uniform:1ms..5ms or exp:2ms")]
pub struct DelayParseError(String);

impl FromStr for Delay {
    type Err = DelayParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DelayParseError(s.to_string());
        if s == "none" {
            return Ok(Delay::None);
        }
        let (kind, rest) = s.split_once(':').ok_or_else(err)?;
        let d = |v: &str| parse_duration(v).map_err(|_| err());
        match kind {
            "fixed" => Ok(Delay::Fixed(d(rest)?)),
            "uniform" => {
                let (a, b) = rest.split_once("..").ok_or_else(err)?;
                let (min, max) = (d(a)?, d(b)?);
                if min > max {
                    return Err(err());
                }
                Ok(Delay::Uniform { min, max })
            }
            "exp" | "exponential" => Ok(Delay::Exponential { mean: d(rest)? }),
            _ => Err(err()),
        }
    }
}

/// The `--delay` syntax that [`Delay::from_str`] reads back.
impl fmt::Display for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let human = humantime::format_duration;
        match *self {
            Delay::None => f.write_str("none"),
            Delay::Fixed(d) => write!(f, "fixed:{}", human(d)),
            Delay::Uniform { min, max } => write!(f, "uniform:{}..{}", human(min), human(max)),
            Delay::Exponential { mean } => write!(f, "exp:{}", human(mean)),
        }
    }
}

impl Delay {
    fn sample(&self) -> Option<Duration> {
        match *self {
            Delay::None => None,
            Delay::Fixed(d) => Some(d),
            Delay::Uniform { min, max } => {
                let span = (max - min).as_secs_f64();
                Some(min + Duration::from_secs_f64(span * rand::random::<f64>()))
            }
            Delay::Exponential { mean } => {
                let u: f64 = rand::random::<f64>();
                Some(Duration::from_secs_f64(
                    -mean.as_secs_f64() * (1.0 - u).ln(),
                ))
            }
        }
    }
}

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

/// The start of the line the server prints on stdout once it accepts
/// connections, followed by the bound address: `listening on 10.0.0.2:50051`.
/// Whoever starts a server waits for it (see [`parse_ready_line`]).
pub const READY_LINE_PREFIX: &str = "listening on ";

/// The address in a ready line (`listening on ADDR`), or `None` for any
/// other line.
pub fn parse_ready_line(line: &str) -> Option<SocketAddr> {
    line.strip_prefix(READY_LINE_PREFIX)?.trim().parse().ok()
}

/// Command-line flags of `grpc-demo-server` (and `lab server`).
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct ServerArgs {
    /// Name returned in every reply.
    #[arg(long, default_value = "grpc-demo")]
    pub name: String,
    /// Address to listen on (port 0 picks a free port; the chosen address is
    /// printed on stdout as `listening on ADDR`, see [`READY_LINE_PREFIX`]).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Response delay: none, fixed:5ms, uniform:1ms..5ms or exp:2ms.
    #[arg(long, default_value = "none")]
    pub delay: Delay,
    /// Fraction of calls that fail on purpose, 0..1.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub error_rate: f64,
    /// gRPC status code (number) of injected failures; 14 = UNAVAILABLE.
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(i32).range(1..=16))]
    pub error_code: i32,
    /// Send GOAWAY to each connection after this age (e.g. 2s).
    #[arg(long, value_parser = parse_duration)]
    pub max_connection_age: Option<Duration>,
    /// Close a connection this long after its GOAWAY if it is still open.
    #[arg(long, value_parser = parse_duration)]
    pub max_connection_age_grace: Option<Duration>,
    /// HTTP/2 max concurrent streams per connection (default: unlimited).
    #[arg(long)]
    pub max_concurrent_streams: Option<u32>,
    /// Stall every call once, after this many calls have been answered.
    #[arg(long)]
    pub stall_once_after: Option<u64>,
    /// Length of the one-time stall, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub stall_ms: u64,
    /// Worker threads; 1 uses tokio's current_thread runtime, which is
    /// faster on a one-CPU guest.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// How long SIGTERM/SIGINT waits for connections to drain.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not in 0..1"))
    }
}

impl ServerArgs {
    /// The argv (after the program or verb name) that clap parses back into
    /// these flags, so whoever starts a server builds a value, not strings.
    /// Every flag is written, defaults included.
    pub fn to_args(&self) -> Vec<OsString> {
        // Destructured so that a new field is a compile error here.
        let Self {
            name,
            listen,
            delay,
            error_rate,
            error_code,
            max_connection_age,
            max_connection_age_grace,
            max_concurrent_streams,
            stall_once_after,
            stall_ms,
            threads,
            drain_timeout,
        } = self;
        let human = |d: &Duration| humantime::format_duration(*d).to_string();
        let mut args: Vec<(&str, String)> = vec![
            ("--name", name.clone()),
            ("--listen", listen.to_string()),
            ("--delay", delay.to_string()),
            ("--error-rate", error_rate.to_string()),
            ("--error-code", error_code.to_string()),
            ("--stall-ms", stall_ms.to_string()),
            ("--threads", threads.to_string()),
            ("--drain-timeout", human(drain_timeout)),
        ];
        let optional = [
            (
                "--max-connection-age",
                max_connection_age.as_ref().map(human),
            ),
            (
                "--max-connection-age-grace",
                max_connection_age_grace.as_ref().map(human),
            ),
            (
                "--max-concurrent-streams",
                max_concurrent_streams.map(|n| n.to_string()),
            ),
            (
                "--stall-once-after",
                stall_once_after.map(|n| n.to_string()),
            ),
        ];
        args.extend(
            optional
                .into_iter()
                .filter_map(|(flag, v)| Some((flag, v?))),
        );
        // `--flag=value`, so that a value starting with `-` stays a value.
        args.into_iter()
            .map(|(flag, value)| OsString::from(format!("{flag}={value}")))
            .collect()
    }

    /// The flags of a server named `name` on `listen`, every other flag at
    /// its default.
    pub fn new(name: &str, listen: SocketAddr) -> Self {
        crate::cli::parse_args(
            "server",
            [format!("--name={name}"), format!("--listen={listen}")],
        )
        .expect("--name and --listen with defaults parse")
    }

    /// Converts the flags into a [`ServerConfig`].
    pub fn config(&self) -> ServerConfig {
        ServerConfig {
            name: self.name.clone(),
            delay: self.delay,
            error_rate: self.error_rate,
            error_code: Code::from_i32(self.error_code),
            max_connection_age: self.max_connection_age,
            max_connection_age_grace: self.max_connection_age_grace,
            max_concurrent_streams: self.max_concurrent_streams,
            stall: self.stall_once_after.map(|after| StallOnce {
                after,
                duration: Duration::from_millis(self.stall_ms),
            }),
            drain_timeout: self.drain_timeout,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_syntax() {
        assert_eq!("none".parse::<Delay>().unwrap(), Delay::None);
        assert_eq!(
            "fixed:5ms".parse::<Delay>().unwrap(),
            Delay::Fixed(Duration::from_millis(5))
        );
        assert_eq!(
            "uniform:1ms..3ms".parse::<Delay>().unwrap(),
            Delay::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_millis(3)
            }
        );
        assert!("uniform:3ms..1ms".parse::<Delay>().is_err());
        assert!("exp:2ms".parse::<Delay>().is_ok());
        assert!("gauss:2ms".parse::<Delay>().is_err());
    }

    #[test]
    fn delay_display_reads_back() {
        for d in [
            Delay::None,
            Delay::Fixed(Duration::from_micros(1500)),
            Delay::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_millis(1500),
            },
            Delay::Exponential {
                mean: Duration::from_millis(2),
            },
        ] {
            assert_eq!(d.to_string().parse::<Delay>().unwrap(), d, "{d}");
        }
    }

    fn parse(argv: Vec<OsString>) -> ServerArgs {
        crate::cli::parse_args("server", argv).expect("to_args parses")
    }

    #[test]
    fn new_keeps_the_defaults() {
        let listen = "0.0.0.0:50051".parse().unwrap();
        let args = ServerArgs::new("-rs1", listen);
        assert_eq!((args.name.as_str(), args.listen), ("-rs1", listen));
        assert_eq!(args, parse(args.to_args()));
        assert_eq!(args.drain_timeout, Duration::from_secs(5));
    }

    #[test]
    fn to_args_round_trips_every_field() {
        let defaults = parse(Vec::new());
        // Every field differs from its default, so a flag that to_args
        // forgets or misspells makes the parse differ (or fail).
        let all = ServerArgs {
            name: "rs7".into(),
            listen: "10.1.2.3:6000".parse().unwrap(),
            delay: Delay::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_micros(2500),
            },
            error_rate: 0.125,
            error_code: 4,
            max_connection_age: Some(Duration::from_millis(1500)),
            max_connection_age_grace: Some(Duration::from_secs(1)),
            max_concurrent_streams: Some(64),
            stall_once_after: Some(1000),
            stall_ms: 250,
            threads: 3,
            drain_timeout: Duration::from_secs(90),
        };
        let ServerArgs {
            name,
            listen,
            delay,
            error_rate,
            error_code,
            max_connection_age,
            max_connection_age_grace,
            max_concurrent_streams,
            stall_once_after,
            stall_ms,
            threads,
            drain_timeout,
        } = &defaults;
        assert!(
            *name != all.name
                && *listen != all.listen
                && *delay != all.delay
                && *error_rate != all.error_rate
                && *error_code != all.error_code
                && *max_connection_age != all.max_connection_age
                && *max_connection_age_grace != all.max_connection_age_grace
                && *max_concurrent_streams != all.max_concurrent_streams
                && *stall_once_after != all.stall_once_after
                && *stall_ms != all.stall_ms
                && *threads != all.threads
                && *drain_timeout != all.drain_timeout,
            "the fixture must set every field away from its default"
        );
        assert_eq!(parse(all.to_args()), all);
        assert_eq!(parse(defaults.to_args()), defaults);
    }

    #[test]
    fn the_ready_line_names_the_address() {
        let line = format!("{READY_LINE_PREFIX}127.0.0.1:50051");
        assert_eq!(parse_ready_line(&line), "127.0.0.1:50051".parse().ok());
        assert_eq!(parse_ready_line("accept failed"), None);
    }

    #[test]
    fn delay_samples_stay_in_bounds() {
        let d = Delay::Uniform {
            min: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        for _ in 0..1000 {
            let s = d.sample().unwrap();
            assert!(s >= Duration::from_millis(1) && s <= Duration::from_millis(2));
        }
    }
}
