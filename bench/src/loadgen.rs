//! The load generator: flags, validation, callers, progress and the report.
//!
//! Load models:
//! - closed loop (`--concurrency N`): N callers, each sends its next RPC
//!   when the previous one completes; latency is measured from the send;
//! - open loop (`--rps R`): RPCs are scheduled at fixed intended times and
//!   latency is measured from the *intended* time, so a server stall shows
//!   up in every RPC it delayed (coordinated-omission correction, as wrk2).
//!
//! Output conventions: the human summary goes to **stderr**; stdout carries
//! only machine output (`--progress json` lines, `--print-request-frame`).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use grpc_demo::client::ConnectError;
use grpc_demo::duration::parse_duration;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::deadline::Deadline;
use crate::h2::{CallError, Driver, H2Conn};

use crate::record::{
    GapTracker, NameCache, ServerTable, Shard, new_histogram, new_small_histogram,
};
use crate::report::{
    ConnectionReport, LatencySummary, LoadReport, SCHEMA_VERSION, STATUS_NAMES, ServerReport,
    SourceReport, TimelineBucket,
};
use crate::sources::{SourceIpsError, parse_source_ips};
use crate::wire::{ReplyView, encode_request, grpc_frame};

/// How live progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// `tty` when stderr is a terminal, else `none`.
    Auto,
    /// A single updating line on stderr.
    Tty,
    /// One [`ProgressLine`] JSON object per line on stdout.
    Json,
    /// Nothing.
    None,
}

/// Command-line flags of `loadgen` (and `lab loadgen`).
#[derive(clap::Args, Debug, Clone)]
pub struct LoadgenArgs {
    /// Server (or VIP) to load, ADDR:PORT.
    #[arg(long, required_unless_present = "print_request_frame")]
    pub target: Option<SocketAddr>,
    /// Closed loop: number of concurrent callers (default: one per channel).
    /// Open loop: cap on RPCs in flight (default 10000).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Open loop at this many RPCs per second, latency from intended send time.
    #[arg(long)]
    pub rps: Option<f64>,
    /// Length of the measured phase (e.g. 10s).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many measured RPCs (bounded by --duration, else 10 min).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Unmeasured warmup before the measured phase.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Per-RPC deadline.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Request payload size in bytes.
    #[arg(long, default_value_t = 16)]
    pub payload_size: usize,
    /// Bytes the server should echo back.
    #[arg(long, default_value_t = 0)]
    pub response_size: u32,
    /// HTTP/2 connections (channels) per source address.
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// Source addresses: a list and/or CIDR blocks (127.0.0.2,127.0.0.3 or
    /// 127.1.0.0/29); at most 4096.
    #[arg(long)]
    pub source_ips: Option<String>,
    /// Replace each channel's connection every N RPCs.
    #[arg(long, conflicts_with_all = ["churn_interval", "conn_per_rpc"])]
    pub churn_rpcs: Option<u64>,
    /// Replace each channel's connection every interval (e.g. 500ms).
    #[arg(long, value_parser = parse_duration, conflicts_with = "conn_per_rpc")]
    pub churn_interval: Option<Duration>,
    /// A new connection for every RPC.
    #[arg(long)]
    pub conn_per_rpc: bool,
    /// Live progress: auto, tty, json or none.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// Progress period.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub progress_interval: Duration,
    /// Timeline bucket width in the report.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub timeline_interval: Duration,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the overall latency distribution here (HdrHistogram .hgrm, ms).
    #[arg(long)]
    pub hgrm: Option<PathBuf>,
    /// Runtime threads; 1 uses tokio's current_thread runtime.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Print the gRPC request frame (for h2load -d) on stdout and exit.
    #[arg(long)]
    pub print_request_frame: bool,
}

/// How connections are replaced during the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Churn {
    /// Keep each channel's connection (tonic still reconnects after GOAWAY).
    None,
    /// New connection every N RPCs per channel.
    EveryRpcs(u64),
    /// New connection every interval per channel.
    Every(Duration),
    /// New connection for every RPC.
    PerRpc,
}

/// Load model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadModel {
    /// Closed loop with this many callers.
    Closed {
        /// Callers.
        concurrency: usize,
    },
    /// Open loop.
    Open {
        /// Total RPCs per second.
        rps: f64,
        /// Cap on RPCs in flight.
        max_in_flight: usize,
    },
}

/// A validated run description; build it with [`LoadgenArgs::config`] or
/// directly (then call [`LoadgenConfig::validate`]).
#[derive(Debug, Clone)]
pub struct LoadgenConfig {
    /// Server address.
    pub target: SocketAddr,
    /// Load model.
    pub load: LoadModel,
    /// Measured phase length (always set: with `requests`, an upper bound).
    pub duration: Duration,
    /// Stop after this many measured RPCs.
    pub requests: Option<u64>,
    /// Unmeasured warmup.
    pub warmup: Duration,
    /// Per-RPC deadline.
    pub timeout: Duration,
    /// Request payload bytes.
    pub payload_size: usize,
    /// Bytes echoed by the server.
    pub response_size: u32,
    /// Channels per source.
    pub channels: usize,
    /// Source addresses; `[None]` lets the kernel choose.
    pub sources: Vec<Option<IpAddr>>,
    /// Connection churn.
    pub churn: Churn,
    /// Progress output.
    pub progress: ProgressMode,
    /// Progress period.
    pub progress_interval: Duration,
    /// Timeline bucket width.
    pub timeline_interval: Duration,
}

impl LoadgenConfig {
    /// A closed-loop, one-channel, 1 s run against `target`.
    pub fn new(target: SocketAddr) -> Self {
        Self {
            target,
            load: LoadModel::Closed { concurrency: 1 },
            duration: Duration::from_secs(1),
            requests: None,
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(5),
            payload_size: 16,
            response_size: 0,
            channels: 1,
            sources: vec![None],
            churn: Churn::None,
            progress: ProgressMode::None,
            progress_interval: Duration::from_secs(1),
            timeline_interval: Duration::from_secs(1),
        }
    }

    /// Number of channels (lanes): sources × channels per source.
    pub fn lanes(&self) -> usize {
        self.sources.len() * self.channels
    }

    /// Checks the combination of settings.
    pub fn validate(&self) -> Result<(), LoadgenError> {
        if self.duration.is_zero() {
            return Err(LoadgenError::ZeroDuration);
        }
        if self.timeout.is_zero() {
            return Err(LoadgenError::ZeroTimeout);
        }
        if self.requests == Some(0) {
            return Err(LoadgenError::ZeroRequests);
        }
        if self.channels == 0 || self.sources.is_empty() {
            return Err(LoadgenError::NoChannels);
        }
        if self.progress_interval.is_zero() || self.timeline_interval.is_zero() {
            return Err(LoadgenError::ZeroInterval);
        }
        match self.load {
            LoadModel::Closed { concurrency } if concurrency < self.lanes() => {
                Err(LoadgenError::ConcurrencyBelowChannels {
                    concurrency,
                    lanes: self.lanes(),
                })
            }
            LoadModel::Open { rps, max_in_flight }
                if !(rps.is_finite() && rps > 0.0) || max_in_flight == 0 =>
            {
                Err(LoadgenError::InvalidRate(rps))
            }
            _ => Ok(()),
        }
    }
}

/// Errors of the load generator. [`LoadgenError::exit_code`] maps them to
/// 64 (bad usage) or 1 (runtime failure).
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// `--target` missing.
    #[error("--target ADDR:PORT is required")]
    NoTarget,
    /// `--duration 0`.
    #[error("the duration must be greater than zero (e.g. --duration 10s)")]
    ZeroDuration,
    /// `--timeout 0`.
    #[error("the per-RPC timeout must be greater than zero (e.g. --timeout 5s)")]
    ZeroTimeout,
    /// `--requests 0`.
    #[error("--requests must be greater than zero")]
    ZeroRequests,
    /// Zero progress or timeline interval.
    #[error("--progress-interval and --timeline-interval must be greater than zero")]
    ZeroInterval,
    /// `--channels 0`.
    #[error("--channels must be at least 1")]
    NoChannels,
    /// Fewer closed-loop callers than channels.
    #[error(
        "--concurrency {concurrency} is smaller than the number of channels ({lanes} = source addresses × --channels); every channel needs at least one caller"
    )]
    ConcurrencyBelowChannels {
        /// Requested callers.
        concurrency: usize,
        /// Channels.
        lanes: usize,
    },
    /// Bad `--rps`.
    #[error("--rps must be a positive number, got {0}")]
    InvalidRate(f64),
    /// Zero `--churn-rpcs` or `--churn-interval`.
    #[error("--churn-rpcs and --churn-interval must be greater than zero")]
    ZeroChurn,
    /// Bad `--source-ips`.
    #[error("--source-ips: {0}")]
    SourceIps(#[from] SourceIpsError),
    /// A channel could not connect before the run.
    #[error(
        "{0}. Check that the server is running and reachable from that address (--target), and that --source-ips are configured on this host."
    )]
    Connect(#[from] ConnectError),
    /// The tokio runtime could not start.
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Writing an output file failed.
    #[error("cannot write {path}: {source}")]
    Output {
        /// File path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Serializing the report failed.
    #[error("cannot serialize the report: {0}")]
    Json(#[from] serde_json::Error),
}

impl LoadgenError {
    /// 64 (EX_USAGE) for bad input, 1 for runtime failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            LoadgenError::Connect(_)
            | LoadgenError::Runtime(_)
            | LoadgenError::Output { .. }
            | LoadgenError::Json(_) => 1,
            _ => 64,
        }
    }
}

impl LoadgenArgs {
    /// Validates the flags into a [`LoadgenConfig`].
    pub fn config(&self) -> Result<LoadgenConfig, LoadgenError> {
        let target = self.target.ok_or(LoadgenError::NoTarget)?;
        let sources = match &self.source_ips {
            Some(spec) => parse_source_ips(spec)?.into_iter().map(Some).collect(),
            None => vec![None],
        };
        let lanes = sources.len() * self.channels;
        let load = match self.rps {
            Some(rps) => LoadModel::Open {
                rps,
                max_in_flight: self.concurrency.unwrap_or(10_000),
            },
            None => LoadModel::Closed {
                concurrency: self.concurrency.unwrap_or(lanes),
            },
        };
        let duration = match (self.duration, self.requests) {
            (Some(d), _) => d,
            (None, Some(_)) => Duration::from_secs(600),
            (None, None) => Duration::from_secs(10),
        };
        let churn = match (self.churn_rpcs, self.churn_interval, self.conn_per_rpc) {
            (_, _, true) => Churn::PerRpc,
            (Some(0), _, _) => return Err(LoadgenError::ZeroChurn),
            (Some(n), _, _) => Churn::EveryRpcs(n),
            (None, Some(d), _) if d.is_zero() => return Err(LoadgenError::ZeroChurn),
            (None, Some(d), _) => Churn::Every(d),
            (None, None, false) => Churn::None,
        };
        let cfg = LoadgenConfig {
            target,
            load,
            duration,
            requests: self.requests,
            warmup: self.warmup,
            timeout: self.timeout,
            payload_size: self.payload_size,
            response_size: self.response_size,
            channels: self.channels,
            sources,
            churn,
            progress: self.progress,
            progress_interval: self.progress_interval,
            timeline_interval: self.timeline_interval,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// One `--progress json` line (cumulative counts since the start,
/// warmup included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressLine {
    /// Seconds since the run (warmup) started.
    pub elapsed_s: f64,
    /// `warmup` or `measure`.
    pub phase: String,
    /// Successful RPCs so far.
    pub rpcs: u64,
    /// Failed RPCs so far.
    pub errors: u64,
    /// Successful RPCs per second over the last interval.
    pub rate: f64,
    /// Successful RPCs per server name so far.
    pub servers: BTreeMap<String, u64>,
}

/// One channel slot: a source address and its current connection.
struct Lane {
    source_idx: usize,
    source: Option<IpAddr>,
    /// Current connection.
    current: Mutex<H2Conn>,
    /// Bumped whenever `current` is replaced.
    generation: AtomicU64,
    /// Serialises reconnects, so callers sharing a lane open one connection.
    connecting: tokio::sync::Mutex<()>,
    rpcs: AtomicU64,
    last_swap_ns: AtomicU64,
}

/// State shared by all callers of a run.
struct Run {
    target: SocketAddr,
    timeout: Duration,
    connect_timeout: Duration,
    churn: Churn,
    /// The request as a complete gRPC frame, shared by every call.
    frame: Bytes,
    t0: Instant,
    measure_start: Instant,
    measure_end: Instant,
    requests: Option<u64>,
    tickets: AtomicU64,
    stop: AtomicBool,
    timeline_ns: u64,
    servers: ServerTable,
    shards: Vec<Mutex<Shard>>,
    gaps: Vec<GapTracker>,
    lanes: Vec<Lane>,
    channels_opened: AtomicU64,
    /// Callers started and not yet finished (those left at the hard stop
    /// are the aborted ones).
    callers_left: AtomicU64,
}

/// Per-caller view of a lane's connection.
struct LaneConn {
    lane: usize,
    generation: u64,
    conn: H2Conn,
}

impl Run {
    /// Whether an RPC may start at `at` (its intended time).
    fn admit(&self, at: Instant) -> bool {
        if at >= self.measure_end || self.stop.load(Ordering::Relaxed) {
            return false;
        }
        if at >= self.measure_start
            && let Some(n) = self.requests
            && self.tickets.fetch_add(1, Ordering::Relaxed) >= n
        {
            self.stop.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    async fn connect(&self, source: Option<IpAddr>) -> Result<H2Conn, tonic::Status> {
        self.channels_opened.fetch_add(1, Ordering::Relaxed);
        crate::h2::connect(
            source,
            self.target,
            grpc_demo::WHOAMI_PATH,
            self.connect_timeout,
        )
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))
    }

    /// Replaces the lane's connection unless another caller already did
    /// since `seen` (the generation the caller was using).
    async fn reconnect(&self, lane: &Lane, seen: u64) -> Result<(), tonic::Status> {
        let _guard = lane.connecting.lock().await;
        if lane.generation.load(Ordering::Acquire) != seen {
            return Ok(());
        }
        let fresh = self.connect(lane.source).await?;
        *lane.current.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        lane.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// The client to use for the next RPC: applies churn and reconnects
    /// after the server closed the connection (GOAWAY).
    async fn client<'a>(
        &self,
        conn: &'a mut LaneConn,
        now: Instant,
    ) -> Result<&'a mut H2Conn, tonic::Status> {
        let lane = &self.lanes[conn.lane];
        match self.churn {
            Churn::None => {}
            Churn::PerRpc => {
                conn.conn = self.connect(lane.source).await?;
                return Ok(&mut conn.conn);
            }
            Churn::EveryRpcs(n) => {
                let c = lane.rpcs.fetch_add(1, Ordering::Relaxed);
                if c > 0 && c.is_multiple_of(n) {
                    self.reconnect(lane, lane.generation.load(Ordering::Acquire))
                        .await?;
                }
            }
            Churn::Every(d) => {
                let now_ns = now.saturating_duration_since(self.t0).as_nanos() as u64;
                let last = lane.last_swap_ns.load(Ordering::Relaxed);
                if now_ns.saturating_sub(last) >= d.as_nanos() as u64
                    && lane
                        .last_swap_ns
                        .compare_exchange(last, now_ns, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    self.reconnect(lane, lane.generation.load(Ordering::Acquire))
                        .await?;
                }
            }
        }
        if conn.conn.is_closed() {
            self.reconnect(lane, conn.generation).await?;
        }
        let generation = lane.generation.load(Ordering::Acquire);
        if generation != conn.generation {
            conn.conn = lane
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            conn.generation = generation;
        }
        Ok(&mut conn.conn)
    }

    /// One RPC on the caller's lane. If the request never left (the
    /// connection got a GOAWAY or died since the last call), reconnects and
    /// retries once: nothing reached the server, so counts stay exact.
    async fn rpc(&self, conn: &mut LaneConn, now: Instant) -> Result<Bytes, tonic::Status> {
        let mut retried = false;
        loop {
            let h2 = self.client(conn, now).await?;
            match h2.unary(self.frame.clone()).await {
                Ok(reply) => return Ok(reply),
                Err(CallError::NotSent(_)) if !retried => {
                    h2.mark_closed();
                    retried = true;
                }
                Err(e) => return Err(e.into_status()),
            }
        }
    }

    fn lane_conn(&self, lane: usize) -> LaneConn {
        let l = &self.lanes[lane];
        let generation = l.generation.load(Ordering::Acquire);
        let conn = l.current.lock().unwrap_or_else(|e| e.into_inner()).clone();
        LaneConn {
            lane,
            generation,
            conn,
        }
    }

    /// Records one finished RPC that was intended to start at `intended`.
    fn record(
        &self,
        shard: usize,
        lane: usize,
        intended: Instant,
        end: Instant,
        result: Result<Bytes, tonic::Status>,
        names: &mut NameCache,
    ) {
        let source = self.lanes[lane].source_idx;
        let measured = intended >= self.measure_start;
        let since = end.saturating_duration_since(self.measure_start).as_nanos() as u64;
        let bucket = measured.then_some((since / self.timeline_ns) as usize);
        let latency_us = end.saturating_duration_since(intended).as_micros() as u64;
        match result {
            Ok(bytes) => match ReplyView::parse(&bytes) {
                Ok(view) => {
                    let server = names.id_of(&self.servers, &view);
                    if measured {
                        self.gaps[source].success(since);
                    }
                    let mut s = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
                    s.record_ok(source, server, &view, latency_us, bucket);
                }
                Err(_) => {
                    let mut s = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
                    s.record_err(source, tonic::Code::Internal as usize, None, bucket);
                }
            },
            Err(status) => {
                let server = status
                    .metadata()
                    .get("x-server-name")
                    .map(|v| self.servers.id_of(v.as_bytes(), b""));
                let mut s = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
                s.record_err(source, status.code() as usize, server, bucket);
            }
        }
    }
}

fn deadline_exceeded() -> tonic::Status {
    tonic::Status::deadline_exceeded("loadgen deadline exceeded")
}

/// One unary call on a connection of its own (open loop), with the run's
/// deadline.
async fn call(mut h2: H2Conn, frame: Bytes, timeout: Duration) -> Result<Bytes, tonic::Status> {
    match tokio::time::timeout(timeout, h2.unary(frame)).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => {
            if matches!(e, CallError::NotSent(_)) {
                h2.mark_closed();
            }
            Err(e.into_status())
        }
        Err(_) => Err(deadline_exceeded()),
    }
}

/// The closed-loop callers of one lane (or their share for one runtime
/// thread), polled in one task together with the lane's first connection.
/// Replies read by the connection wake callers of the same task; their next
/// requests are queued and the connection is polled again, so they are
/// written in the same turn instead of after every other lane's callers
/// have run. Keeps client and server working in parallel (not in lockstep)
/// and saves a runtime task wake-up per call.
async fn closed_lane(run: Arc<Run>, lane: usize, shards: Vec<usize>, mut driver: Option<Driver>) {
    let mut callers: FuturesUnordered<_> = shards
        .into_iter()
        .map(|shard| closed_caller(run.clone(), lane, shard))
        .collect();
    std::future::poll_fn(|cx| {
        poll_driver(&mut driver, cx);
        loop {
            match callers.poll_next_unpin(cx) {
                Poll::Ready(Some(())) => {}
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => break,
            }
        }
        poll_driver(&mut driver, cx);
        Poll::Pending
    })
    .await;
    // Let the connection finish cleanly on its own.
    if let Some(driver) = driver {
        tokio::spawn(driver);
    }
}

fn poll_driver(driver: &mut Option<Driver>, cx: &mut Context<'_>) {
    if let Some(d) = driver
        && d.as_mut().poll(cx).is_ready()
    {
        *driver = None;
    }
}

async fn closed_caller(run: Arc<Run>, lane: usize, shard: usize) {
    run.callers_left.fetch_add(1, Ordering::Relaxed);
    let mut conn = run.lane_conn(lane);
    let mut names = NameCache::default();
    let mut deadline = Deadline::new(run.timeout);
    loop {
        let start = Instant::now();
        if !run.admit(start) {
            break;
        }
        let result = deadline
            .run(start + run.timeout, run.rpc(&mut conn, start))
            .await
            .unwrap_or_else(|| Err(deadline_exceeded()));
        let end = Instant::now();
        run.record(shard, lane, start, end, result, &mut names);
    }
    run.callers_left.fetch_sub(1, Ordering::Relaxed);
}

async fn open_caller(
    run: Arc<Run>,
    lane: usize,
    shard: usize,
    period: Duration,
    cap: usize,
    offset: Duration,
) {
    run.callers_left.fetch_add(1, Ordering::Relaxed);
    let mut conn = run.lane_conn(lane);
    let mut names = NameCache::default();
    let mut in_flight = FuturesUnordered::new();
    let mut next = run.t0 + offset;
    let mut issuing = true;
    loop {
        if issuing && !run.admit(next) {
            issuing = false;
        }
        if !issuing && in_flight.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            Some((intended, result)) = in_flight.next(), if !in_flight.is_empty() => {
                run.record(shard, lane, intended, Instant::now(), result, &mut names);
            }
            _ = tokio::time::sleep_until(next), if issuing && in_flight.len() < cap => {
                let intended = next;
                next += period;
                let h2 = run.client(&mut conn, Instant::now()).await.map(|g| g.clone());
                let (frame, timeout) = (run.frame.clone(), run.timeout);
                in_flight.push(async move {
                    let result = match h2 {
                        Ok(h2) => call(h2, frame, timeout).await,
                        Err(status) => Err(status),
                    };
                    (intended, result)
                });
            }
        }
    }
    run.callers_left.fetch_sub(1, Ordering::Relaxed);
}

/// Runs the load described by `config` and returns the report.
///
/// Bounded: connecting takes at most the connect timeout, callers stop
/// issuing at the end of the measured phase, every RPC has a deadline, and
/// callers still running `timeout + 1 s` after the end are aborted (counted
/// in `aborted_callers`).
pub async fn run(config: LoadgenConfig) -> Result<LoadReport, LoadgenError> {
    config.validate()?;
    let connect_timeout = config.timeout.min(Duration::from_secs(3));
    // Connect every lane up front: an unreachable target fails here, clearly.
    let mut connects = Vec::with_capacity(config.lanes());
    for (source_idx, source) in config.sources.iter().enumerate() {
        for _ in 0..config.channels {
            let (source, target) = (*source, config.target);
            connects.push(async move {
                crate::h2::connect_with_driver(
                    source,
                    target,
                    grpc_demo::WHOAMI_PATH,
                    connect_timeout,
                )
                .await
                .map(|ch| (source_idx, source, ch))
            });
        }
    }
    let mut lanes = Vec::with_capacity(connects.len());
    let mut drivers = Vec::with_capacity(connects.len());
    for res in futures::future::join_all(connects).await {
        let (source_idx, source, (ch, driver)) = res?;
        drivers.push(driver);
        lanes.push(Lane {
            source_idx,
            source,
            current: Mutex::new(ch),
            generation: AtomicU64::new(0),
            connecting: tokio::sync::Mutex::new(()),
            rpcs: AtomicU64::new(0),
            last_swap_ns: AtomicU64::new(0),
        });
    }
    let threads = tokio::runtime::Handle::current()
        .metrics()
        .num_workers()
        .max(1);
    let t0 = Instant::now();
    let measure_start = t0 + config.warmup;
    let run = Arc::new(Run {
        target: config.target,
        timeout: config.timeout,
        connect_timeout,
        churn: config.churn,
        frame: Bytes::from(grpc_frame(&encode_request(
            config.payload_size,
            config.response_size,
        ))),
        t0,
        measure_start,
        measure_end: measure_start + config.duration,
        requests: config.requests,
        tickets: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        timeline_ns: config.timeline_interval.as_nanos().max(1) as u64,
        servers: ServerTable::default(),
        shards: (0..threads)
            .map(|_| Mutex::new(Shard::new(config.sources.len())))
            .collect(),
        gaps: (0..config.sources.len())
            .map(|_| GapTracker::default())
            .collect(),
        channels_opened: AtomicU64::new(lanes.len() as u64),
        callers_left: AtomicU64::new(0),
        lanes,
    });
    let n_lanes = run.lanes.len();
    let mut callers = JoinSet::new();
    match config.load {
        LoadModel::Closed { concurrency } => {
            // Caller i uses lane i % lanes and shard i % threads; a lane's
            // callers are split over at most `threads` tasks, the first of
            // which also drives the lane's connection.
            let mut groups = vec![vec![Vec::new(); threads]; n_lanes];
            for i in 0..concurrency {
                groups[i % n_lanes][(i / n_lanes) % threads].push(i % threads);
            }
            for (lane, (lane_groups, driver)) in groups.into_iter().zip(drivers).enumerate() {
                let mut driver = Some(driver);
                for shards in lane_groups.into_iter().filter(|g| !g.is_empty()) {
                    callers.spawn(closed_lane(run.clone(), lane, shards, driver.take()));
                }
                if let Some(driver) = driver {
                    tokio::spawn(driver);
                }
            }
        }
        LoadModel::Open { rps, max_in_flight } => {
            for driver in drivers {
                tokio::spawn(driver);
            }
            let period = Duration::from_secs_f64(n_lanes as f64 / rps);
            let cap = max_in_flight.div_ceil(n_lanes).max(1);
            for i in 0..n_lanes {
                // Stagger lanes so the aggregate schedule is evenly spaced.
                let offset = period.mul_f64(i as f64 / n_lanes as f64);
                callers.spawn(open_caller(
                    run.clone(),
                    i,
                    i % threads,
                    period,
                    cap,
                    offset,
                ));
            }
        }
    }
    let progress = spawn_progress(&config, run.clone());
    let hard_stop = run.measure_end + config.timeout + Duration::from_secs(1);
    let drained = tokio::time::timeout_at(hard_stop, async {
        while callers.join_next().await.is_some() {}
    })
    .await;
    let aborted = if drained.is_err() {
        callers.abort_all();
        run.callers_left.load(Ordering::Relaxed)
    } else {
        0
    };
    let end = Instant::now();
    if let Some((handle, stop)) = progress {
        stop.store(true, Ordering::Relaxed);
        let _ = handle.await;
    }
    Ok(build_report(&config, &run, end, aborted))
}

fn spawn_progress(
    config: &LoadgenConfig,
    run: Arc<Run>,
) -> Option<(tokio::task::JoinHandle<()>, Arc<AtomicBool>)> {
    let mode = match config.progress {
        ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Tty,
        ProgressMode::Auto | ProgressMode::None => return None,
        m => m,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let interval = config.progress_interval;
    let handle = tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(run.t0 + interval, interval);
        let mut last = (run.t0, 0u64);
        loop {
            tick.tick().await;
            let done = stop2.load(Ordering::Relaxed);
            let now = Instant::now();
            let line = progress_line(&run, now, last);
            last = (now, line.rpcs);
            match mode {
                ProgressMode::Json => {
                    if let Ok(s) = serde_json::to_string(&line) {
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "{s}");
                        let _ = out.flush();
                    }
                }
                _ => {
                    let servers: Vec<String> = line
                        .servers
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    eprint!(
                        "\r\x1b[K[{:6.1}s {:<7}] {} rpcs {:.0}/s errors {} {}",
                        line.elapsed_s,
                        line.phase,
                        line.rpcs,
                        line.rate,
                        line.errors,
                        servers.join(" ")
                    );
                    if done {
                        eprintln!();
                    }
                }
            }
            if done || now >= run.measure_end + Duration::from_secs(3600) {
                break;
            }
        }
    });
    Some((handle, stop))
}

fn progress_line(run: &Run, now: Instant, last: (Instant, u64)) -> ProgressLine {
    let names = run.servers.snapshot();
    let mut per_server = vec![0u64; names.len()];
    let (mut rpcs, mut errors) = (0u64, 0u64);
    for shard in &run.shards {
        let s = shard.lock().unwrap_or_else(|e| e.into_inner());
        errors += s.live_errors;
        for (i, acc) in s.servers.iter().enumerate() {
            rpcs += acc.live_rpcs;
            if let Some(slot) = per_server.get_mut(i) {
                *slot += acc.live_rpcs;
            }
        }
    }
    let dt = now.saturating_duration_since(last.0).as_secs_f64();
    ProgressLine {
        elapsed_s: now.saturating_duration_since(run.t0).as_secs_f64(),
        phase: if now < run.measure_start {
            "warmup"
        } else {
            "measure"
        }
        .to_string(),
        rpcs,
        errors,
        rate: if dt > 0.0 {
            rpcs.saturating_sub(last.1) as f64 / dt
        } else {
            0.0
        },
        servers: names.into_iter().map(|s| s.name).zip(per_server).collect(),
    }
}

fn build_report(config: &LoadgenConfig, run: &Run, end: Instant, aborted: u64) -> LoadReport {
    let idents = run.servers.snapshot();
    let n_src = config.sources.len();
    let mut overall = new_histogram();
    let mut server_hist: Vec<_> = idents.iter().map(|_| new_histogram()).collect();
    let mut servers: Vec<ServerReport> = idents
        .iter()
        .map(|s| ServerReport {
            name: s.name.clone(),
            address: s.address.clone(),
            ..Default::default()
        })
        .collect();
    let mut src_hist: Vec<_> = (0..n_src).map(|_| new_small_histogram()).collect();
    let mut sources: Vec<SourceReport> = (0..n_src).map(|_| SourceReport::default()).collect();
    let mut observed: Vec<Option<IpAddr>> = vec![None; n_src];
    let mut conns: BTreeMap<(u16, u64), crate::record::ConnAcc> = BTreeMap::new();
    let mut status = [0u64; 17];
    let mut timeline: Vec<(Vec<u64>, [u64; 17])> = Vec::new();
    let (mut ok, mut errors, mut warmup) = (0u64, 0u64, 0u64);
    for shard in &run.shards {
        let s = shard.lock().unwrap_or_else(|e| e.into_inner());
        let _ = overall.add(&s.overall);
        ok += s.ok;
        errors += s.errors;
        warmup += s.warmup_ok;
        for (i, acc) in s.servers.iter().enumerate() {
            if let Some(r) = servers.get_mut(i) {
                r.rpcs += acc.rpcs;
                r.errors += acc.errors;
                r.warmup_rpcs += acc.warmup_rpcs;
                let _ = server_hist[i].add(&acc.hist);
            }
        }
        for (i, acc) in s.sources.iter().enumerate() {
            let r = &mut sources[i];
            r.rpcs += acc.rpcs;
            r.errors += acc.errors;
            let _ = src_hist[i].add(&acc.hist);
            for (sid, n) in acc.per_server.iter().enumerate() {
                if *n > 0
                    && let Some(ident) = idents.get(sid)
                {
                    *r.servers.entry(ident.name.clone()).or_default() += n;
                }
            }
            if observed[i].is_none() {
                observed[i] = acc.observed_ip;
            }
        }
        for (k, c) in &s.conns {
            let e = conns
                .entry(*k)
                .or_insert(crate::record::ConnAcc { rpcs: 0, ..*c });
            e.rpcs += c.rpcs;
        }
        for (i, n) in s.status.iter().enumerate() {
            status[i] += n;
        }
        if timeline.len() < s.timeline.len() {
            timeline.resize(s.timeline.len(), (Vec::new(), [0; 17]));
        }
        for (i, b) in s.timeline.iter().enumerate() {
            let t = &mut timeline[i];
            if t.0.len() < b.ok.len() {
                t.0.resize(b.ok.len(), 0);
            }
            for (j, n) in b.ok.iter().enumerate() {
                t.0[j] += n;
            }
            for (j, n) in b.errors.iter().enumerate() {
                t.1[j] += n;
            }
        }
    }
    let end_ns = end.saturating_duration_since(run.measure_start).as_nanos() as u64;
    let name_of = |id: u16| {
        idents
            .get(id as usize)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    };
    let source_name = |i: usize| match (config.sources[i], observed[i]) {
        (Some(ip), _) | (None, Some(ip)) => ip.to_string(),
        (None, None) => "unbound".to_string(),
    };
    let mut connections = Vec::new();
    for ((sid, conn_id), c) in &conns {
        if c.rpcs == 0 {
            continue;
        }
        if let Some(r) = servers.get_mut(*sid as usize) {
            r.connections += 1;
        }
        sources[c.source as usize].connections += 1;
        connections.push(ConnectionReport {
            source: source_name(c.source as usize),
            local_port: c.local_port,
            server: name_of(*sid),
            server_conn_id: *conn_id,
            rpcs: c.rpcs,
        });
    }
    for (i, r) in servers.iter_mut().enumerate() {
        r.latency_us = LatencySummary::from_histogram(&server_hist[i]);
    }
    for (i, r) in sources.iter_mut().enumerate() {
        r.address = source_name(i);
        r.latency_us = LatencySummary::from_histogram(&src_hist[i]);
        r.longest_gap_ms = run.gaps[i].longest_gap_ms(end_ns);
    }
    let mut buf = Vec::new();
    let histogram_b64 = match V2Serializer::new().serialize(&overall, &mut buf) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(&buf),
        Err(_) => String::new(),
    };
    let interval_s = config.timeline_interval.as_secs_f64();
    let timeline = timeline
        .into_iter()
        .enumerate()
        .map(|(i, (okv, errv))| TimelineBucket {
            t_s: i as f64 * interval_s,
            ok: okv
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(j, n)| (name_of(j as u16), *n))
                .collect(),
            errors: errv
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(j, n)| (STATUS_NAMES[j].to_string(), *n))
                .collect(),
        })
        .collect();
    let duration_s = end_ns as f64 / 1e9;
    let total = ok + errors;
    let (mode, concurrency, target_rps) = match config.load {
        LoadModel::Closed { concurrency } => ("closed", concurrency as u64, None),
        LoadModel::Open { rps, max_in_flight } => ("open", max_in_flight as u64, Some(rps)),
    };
    LoadReport {
        schema: SCHEMA_VERSION,
        target: config.target.to_string(),
        mode: mode.to_string(),
        concurrency,
        target_rps,
        channels_per_source: config.channels as u64,
        channels_opened: run.channels_opened.load(Ordering::Relaxed),
        total_rpcs: total,
        ok_rpcs: ok,
        errors,
        warmup_rpcs: warmup,
        duration_s,
        rps: if duration_s > 0.0 {
            total as f64 / duration_s
        } else {
            0.0
        },
        ok_rps: if duration_s > 0.0 {
            ok as f64 / duration_s
        } else {
            0.0
        },
        latency_us: LatencySummary::from_histogram(&overall),
        histogram_b64,
        servers,
        sources,
        connections,
        status_codes: status
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (STATUS_NAMES[i].to_string(), *n))
            .collect(),
        timeline_interval_s: interval_s,
        timeline,
        aborted_callers: aborted,
    }
}

/// Runs `loadgen` as a program: validates flags (exit 64 on bad input),
/// builds the runtime (current_thread for `--threads 1`), runs, writes
/// `--json`/`--hgrm`, prints the summary on stderr. Exit 1 on runtime
/// failure (e.g. unreachable target).
pub fn main_with_args(args: LoadgenArgs) -> ExitCode {
    match main_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn main_inner(args: LoadgenArgs) -> Result<(), LoadgenError> {
    if args.print_request_frame {
        let frame = grpc_frame(&encode_request(args.payload_size, args.response_size));
        let mut out = std::io::stdout().lock();
        out.write_all(&frame)
            .and_then(|_| out.flush())
            .map_err(|source| LoadgenError::Output {
                path: "<stdout>".into(),
                source,
            })?;
        return Ok(());
    }
    let config = args.config()?;
    let runtime = grpc_demo::cli::runtime(args.threads).map_err(LoadgenError::Runtime)?;
    let report = runtime.block_on(run(config))?;
    // Lazy channels of aborted callers may still hold tasks: do not wait.
    runtime.shutdown_timeout(Duration::from_millis(100));
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report)?;
        std::fs::write(path, json).map_err(|source| LoadgenError::Output {
            path: path.clone(),
            source,
        })?;
    }
    if let Some(path) = &args.hgrm {
        let h = decode_histogram(&report.histogram_b64).unwrap_or_else(new_histogram);
        std::fs::write(path, crate::report::hgrm(&h)).map_err(|source| LoadgenError::Output {
            path: path.clone(),
            source,
        })?;
    }
    eprint!("{}", report.summary());
    Ok(())
}

/// Decodes `histogram_b64` back into a histogram (µs).
pub fn decode_histogram(b64: &str) -> Option<hdrhistogram::Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .ok()
}
