//! The command line of `loadgen` (and `lab loadgen`): the clap flags, the
//! argv that parses back into them, and their validation into a
//! [`LoadgenConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use grpc_demo::duration::parse_duration;

use super::config::{Churn, LoadModel, LoadgenConfig, LoadgenError};
use crate::sources::parse_source_ips;

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
