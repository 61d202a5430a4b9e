//! A validated run description ([`LoadgenConfig`]: load model, churn,
//! timings) and the load generator's errors with their exit codes.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use grpc_demo::client::ConnectError;
use http::{HeaderName, HeaderValue};

#[cfg(doc)]
use super::args::LoadgenArgs;
use super::args::ProgressMode;
use crate::method::{CallSpec, MethodError};
use crate::sources::SourceIpsError;

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
    /// Initial connects per second (0 = [`crate::connects::DEFAULT_CONNECT_RATE`]).
    pub connect_rate: u32,
    /// Progress output.
    pub progress: ProgressMode,
    /// Progress period.
    pub progress_interval: Duration,
    /// Timeline bucket width.
    pub timeline_interval: Duration,
    /// Generic mode: the method to call and its request (None: the demo's
    /// `WhoAmI`). Resolved at the start of [`run`](super::run), before
    /// any connection.
    pub call: Option<CallSpec>,
    /// Extra request headers on every call (`--metadata`).
    pub metadata: Vec<(HeaderName, HeaderValue)>,
    /// Rounds of load (each a warmup and a measured phase) in this one
    /// process, over the same connections.
    pub rounds: u32,
    /// The idle gap between rounds: no RPC at all, connections kept open.
    pub idle: Duration,
    /// gRPC keepalive: a PING on every connection this often.
    pub keepalive: Option<Duration>,
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
            connect_rate: 0,
            progress: ProgressMode::None,
            progress_interval: Duration::from_secs(1),
            timeline_interval: Duration::from_secs(1),
            call: None,
            metadata: Vec::new(),
            rounds: 1,
            idle: Duration::ZERO,
            keepalive: None,
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
        if self.rounds == 0 {
            return Err(LoadgenError::ZeroRounds);
        }
        if self.keepalive.is_some_and(|k| k.is_zero()) {
            return Err(LoadgenError::ZeroKeepalive);
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
    /// `--rounds 0`.
    #[error("--rounds must be at least 1")]
    ZeroRounds,
    /// `--keepalive 0`.
    #[error("--keepalive must be greater than zero (e.g. --keepalive 5m)")]
    ZeroKeepalive,
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
    /// The hard open-file limit is below what the channels need.
    #[error(
        "this run needs about {needed} open files ({lanes} channels plus {margin} for the runtime) but the hard limit (RLIMIT_NOFILE) is {hard}; raise it (ulimit -Hn {needed}, or LimitNOFILE= in a systemd unit) or use fewer --source-ips or --channels"
    )]
    OpenFileLimit {
        /// Files the run needs.
        needed: u64,
        /// Channels.
        lanes: usize,
        /// Files kept for the runtime and outputs.
        margin: u64,
        /// The hard limit.
        hard: u64,
    },
    /// Every channel failed to connect before the run.
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
    /// Generic mode: the method, its request or the metadata is wrong.
    #[error("{0}")]
    Method(#[from] MethodError),
}

impl LoadgenError {
    /// 64 (EX_USAGE) for bad flags, 65 (EX_DATAERR) for a proto, method,
    /// request or metadata that cannot be used, 1 for runtime failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            LoadgenError::Method(e) => e.exit_code(),
            LoadgenError::Connect(_)
            | LoadgenError::OpenFileLimit { .. }
            | LoadgenError::Runtime(_)
            | LoadgenError::Output { .. }
            | LoadgenError::Json(_) => 1,
            _ => 64,
        }
    }
}
