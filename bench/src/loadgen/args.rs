//! The command line of `loadgen` (and `lab loadgen`): the clap flags, the
//! argv that parses back into them, and their validation into a
//! [`LoadgenConfig`].

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use grpc_demo::duration::parse_duration;

use super::config::{Churn, LoadModel, LoadgenConfig, LoadgenError};
#[cfg(doc)]
use super::progress::ProgressLine;
use crate::method::metadata::parse_metadata;
use crate::method::{CallSpec, MethodError, Schema, read_data};
use crate::sources::parse_source_ips;

/// How live progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// `tty` when stderr is a terminal, else `none`.
    Auto,
    /// A line on stderr that updates in place on a terminal (one plain line
    /// per period when stderr is not one).
    Tty,
    /// One [`ProgressLine`] JSON object per line on stdout.
    Json,
    /// Nothing.
    None,
}

/// Command-line flags of `loadgen` (and `lab loadgen`).
#[derive(clap::Args, Debug, Clone, PartialEq)]
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
    /// New connections per second while the channels first connect (as
    /// h2load's -r); 0 = 600, what a one-CPU UML guest accepts. Reconnects
    /// later in the run (GOAWAY, churn) are not paced.
    #[arg(long, default_value_t = 0)]
    pub connect_rate: u32,
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
    /// Generic mode: call this unary method, pkg.Service/Method, instead of
    /// the demo's WhoAmI. Described by --proto, or else by the server's
    /// reflection service (grpc.reflection.v1, then v1alpha).
    #[arg(long)]
    pub call: Option<String>,
    /// Generic mode: a .proto file that defines --call, compiled at start
    /// (protox, no protoc). Repeatable.
    #[arg(long, requires = "call")]
    pub proto: Vec<PathBuf>,
    /// Where --proto's imports are looked up. Repeatable; default: each
    /// --proto file's own directory.
    #[arg(long, requires = "proto")]
    pub import_path: Vec<PathBuf>,
    /// Generic mode: the request message in protobuf's JSON mapping, or
    /// @FILE to read it from a file (default {}). Encoded once at start.
    #[arg(long, requires = "call")]
    pub data: Option<String>,
    /// A request header (gRPC metadata) KEY=VALUE sent on every call.
    /// Repeatable.
    #[arg(long)]
    pub metadata: Vec<String>,
    /// Rounds of load (warmup and measured phase each) over the same
    /// connections, separated by --idle; the --json report then holds one
    /// report per round.
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
    /// The idle gap between rounds: no RPCs, connections kept open.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub idle: Duration,
    /// gRPC keepalive: an HTTP/2 PING on every connection this often, busy
    /// or idle (keepalive_time with permit_without_calls), 20 s ack timeout.
    #[arg(long, value_parser = parse_duration)]
    pub keepalive: Option<Duration>,
}

impl LoadgenArgs {
    /// The flags of a run against `target`, every other flag at its default.
    pub fn new(target: SocketAddr) -> Self {
        grpc_demo::cli::parse_args("loadgen", [format!("--target={target}")])
            .expect("--target with defaults parses")
    }

    /// The argv (after the program or verb name) that clap parses back into
    /// these flags, so whoever starts a load generator builds a value, not
    /// strings. Flags with a default are always written; optional ones when
    /// set. Values that clap would refuse together (`--churn-rpcs` with
    /// `--conn-per-rpc`) are written as they are and refused on parsing.
    pub fn to_args(&self) -> Vec<OsString> {
        // Destructured so that a new field is a compile error here.
        let Self {
            target,
            concurrency,
            rps,
            duration,
            requests,
            warmup,
            timeout,
            payload_size,
            response_size,
            channels,
            source_ips,
            churn_rpcs,
            churn_interval,
            conn_per_rpc,
            connect_rate,
            progress,
            progress_interval,
            timeline_interval,
            json,
            hgrm,
            threads,
            print_request_frame,
            call,
            proto,
            import_path,
            data,
            metadata,
            rounds,
            idle,
            keepalive,
        } = self;
        let human = |d: &Duration| humantime::format_duration(*d).to_string();
        let progress = clap::ValueEnum::to_possible_value(progress)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        let mut args: Vec<(&str, OsString)> = [
            ("--warmup", human(warmup)),
            ("--timeout", human(timeout)),
            ("--payload-size", payload_size.to_string()),
            ("--response-size", response_size.to_string()),
            ("--channels", channels.to_string()),
            ("--connect-rate", connect_rate.to_string()),
            ("--progress", progress),
            ("--progress-interval", human(progress_interval)),
            ("--timeline-interval", human(timeline_interval)),
            ("--threads", threads.to_string()),
            ("--rounds", rounds.to_string()),
            ("--idle", human(idle)),
        ]
        .into_iter()
        .map(|(flag, v)| (flag, v.into()))
        .collect();
        let optional = [
            ("--target", target.map(|a| a.to_string())),
            ("--concurrency", concurrency.map(|n| n.to_string())),
            ("--rps", rps.map(|r| r.to_string())),
            ("--duration", duration.as_ref().map(human)),
            ("--requests", requests.map(|n| n.to_string())),
            ("--source-ips", source_ips.clone()),
            ("--churn-rpcs", churn_rpcs.map(|n| n.to_string())),
            ("--churn-interval", churn_interval.as_ref().map(human)),
            ("--call", call.clone()),
            ("--data", data.clone()),
            ("--keepalive", keepalive.as_ref().map(human)),
        ];
        args.extend(
            optional
                .into_iter()
                .filter_map(|(flag, v)| Some((flag, v?.into()))),
        );
        let paths = [("--json", json), ("--hgrm", hgrm)];
        args.extend(
            paths
                .into_iter()
                .filter_map(|(flag, p)| Some((flag, p.clone()?.into_os_string()))),
        );
        let repeated = [("--proto", proto), ("--import-path", import_path)];
        for (flag, paths) in repeated {
            args.extend(paths.iter().map(|p| (flag, p.clone().into_os_string())));
        }
        args.extend(metadata.iter().map(|m| ("--metadata", m.into())));
        // `--flag=value`, so that a value starting with `-` stays a value.
        let mut argv: Vec<OsString> = args
            .into_iter()
            .map(|(flag, value)| {
                let mut arg = OsString::from(format!("{flag}="));
                arg.push(value);
                arg
            })
            .collect();
        let switches = [
            ("--conn-per-rpc", *conn_per_rpc),
            ("--print-request-frame", *print_request_frame),
        ];
        argv.extend(
            switches
                .into_iter()
                .filter(|(_, on)| *on)
                .map(|(flag, _)| flag.into()),
        );
        argv
    }

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
            connect_rate: self.connect_rate,
            progress: self.progress,
            progress_interval: self.progress_interval,
            timeline_interval: self.timeline_interval,
            call: self.call_spec()?,
            metadata: parse_metadata(&self.metadata).map_err(MethodError::from)?,
            rounds: self.rounds,
            idle: self.idle,
            keepalive: self.keepalive,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

impl LoadgenArgs {
    /// The generic call of `--call`/`--proto`/`--data`, if any (`--data
    /// @FILE` is read here, so a missing file fails before anything runs).
    pub fn call_spec(&self) -> Result<Option<CallSpec>, MethodError> {
        let Some(method) = &self.call else {
            return Ok(None);
        };
        let schema = if self.proto.is_empty() {
            Schema::Reflection
        } else {
            Schema::Proto {
                files: self.proto.clone(),
                import_paths: self.import_path.clone(),
            }
        };
        Ok(Some(CallSpec {
            method: method.clone(),
            schema,
            data: read_data(self.data.as_deref())?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: Vec<OsString>) -> LoadgenArgs {
        grpc_demo::cli::parse_args("loadgen", argv).expect("to_args parses")
    }

    /// Three runs that together set every field away from its default
    /// (the churn flags exclude one another).
    fn fixtures() -> Vec<LoadgenArgs> {
        let mut a = LoadgenArgs::new("10.0.0.1:50051".parse().unwrap());
        a.concurrency = Some(64);
        a.rps = Some(1234.5);
        a.duration = Some(Duration::from_millis(2500));
        a.requests = Some(10_000);
        a.warmup = Duration::from_millis(300);
        a.timeout = Duration::from_secs(2);
        a.payload_size = 100;
        a.response_size = 7;
        a.channels = 4;
        a.source_ips = Some("10.0.1.1,10.0.2.0/30".into());
        a.churn_rpcs = Some(100);
        a.connect_rate = 250;
        a.progress = ProgressMode::Json;
        a.progress_interval = Duration::from_millis(100);
        a.timeline_interval = Duration::from_millis(500);
        a.json = Some(PathBuf::from("/tmp/run dir/report.json"));
        a.hgrm = Some(PathBuf::from("-latency.hgrm"));
        a.threads = 2;
        a.call = Some("helloworld.Greeter/SayHello".into());
        a.proto = vec![
            PathBuf::from("examples/a b.proto"),
            PathBuf::from("x.proto"),
        ];
        a.import_path = vec![PathBuf::from("examples"), PathBuf::from("/usr/include")];
        a.data = Some(r#"{"name": "--lab"}"#.into());
        a.metadata = vec!["x-user=lab".into(), "x-two=a=b".into()];
        a.rounds = 3;
        a.idle = Duration::from_secs(960);
        a.keepalive = Some(Duration::from_secs(300));
        let mut b = LoadgenArgs::new("[::1]:9000".parse().unwrap());
        b.churn_interval = Some(Duration::from_millis(750));
        b.progress = ProgressMode::None;
        b.print_request_frame = true;
        let mut c = b.clone();
        c.churn_interval = None;
        c.conn_per_rpc = true;
        c.progress = ProgressMode::Tty;
        vec![a, b, c]
    }

    #[test]
    fn to_args_round_trips() {
        for args in fixtures() {
            assert_eq!(parse(args.to_args()), args, "{:?}", args.to_args());
        }
    }

    #[test]
    fn the_fixtures_cover_every_field() {
        // Destructured without `..`: a new field must be added here, and
        // then to a fixture, or this does not compile.
        let LoadgenArgs {
            target,
            concurrency,
            rps,
            duration,
            requests,
            warmup,
            timeout,
            payload_size,
            response_size,
            channels,
            source_ips,
            churn_rpcs,
            churn_interval,
            conn_per_rpc,
            connect_rate,
            progress,
            progress_interval,
            timeline_interval,
            json,
            hgrm,
            threads,
            print_request_frame,
            call,
            proto,
            import_path,
            data,
            metadata,
            rounds,
            idle,
            keepalive,
        } = LoadgenArgs::new("127.0.0.1:1".parse().unwrap());
        let all = fixtures();
        let covered = |differs: &dyn Fn(&LoadgenArgs) -> bool| all.iter().any(differs);
        let checks: [(&str, bool); 30] = [
            ("rounds", covered(&|x| x.rounds != rounds)),
            ("idle", covered(&|x| x.idle != idle)),
            ("keepalive", covered(&|x| x.keepalive != keepalive)),
            ("call", covered(&|x| x.call != call)),
            ("proto", covered(&|x| x.proto != proto)),
            ("import_path", covered(&|x| x.import_path != import_path)),
            ("data", covered(&|x| x.data != data)),
            ("metadata", covered(&|x| x.metadata != metadata)),
            ("target", covered(&|x| x.target != target)),
            ("concurrency", covered(&|x| x.concurrency != concurrency)),
            ("rps", covered(&|x| x.rps != rps)),
            ("duration", covered(&|x| x.duration != duration)),
            ("requests", covered(&|x| x.requests != requests)),
            ("warmup", covered(&|x| x.warmup != warmup)),
            ("timeout", covered(&|x| x.timeout != timeout)),
            ("payload_size", covered(&|x| x.payload_size != payload_size)),
            (
                "response_size",
                covered(&|x| x.response_size != response_size),
            ),
            ("channels", covered(&|x| x.channels != channels)),
            ("source_ips", covered(&|x| x.source_ips != source_ips)),
            ("churn_rpcs", covered(&|x| x.churn_rpcs != churn_rpcs)),
            (
                "churn_interval",
                covered(&|x| x.churn_interval != churn_interval),
            ),
            ("conn_per_rpc", covered(&|x| x.conn_per_rpc != conn_per_rpc)),
            ("connect_rate", covered(&|x| x.connect_rate != connect_rate)),
            ("progress", covered(&|x| x.progress != progress)),
            (
                "progress_interval",
                covered(&|x| x.progress_interval != progress_interval),
            ),
            (
                "timeline_interval",
                covered(&|x| x.timeline_interval != timeline_interval),
            ),
            ("json", covered(&|x| x.json != json)),
            ("hgrm", covered(&|x| x.hgrm != hgrm)),
            ("threads", covered(&|x| x.threads != threads)),
            (
                "print_request_frame",
                covered(&|x| x.print_request_frame != print_request_frame),
            ),
        ];
        let missing: Vec<&str> = checks
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(f, _)| *f)
            .collect();
        assert!(missing.is_empty(), "no fixture sets {missing:?}");
    }

    #[test]
    fn what_the_lab_writes_today_still_parses() {
        // The flags `lab` writes as literals (scenario/run.rs loadgen_args),
        // until it builds a LoadgenArgs.
        let argv = [
            "--target",
            "10.0.0.10:50051",
            "--source-ips",
            "10.0.1.1,10.0.1.2",
            "--channels",
            "2",
            "--duration",
            "1500ms",
            "--warmup",
            "0ms",
            "--timeout",
            "5000ms",
            "--payload-size",
            "16",
            "--progress",
            "json",
            "--progress-interval",
            "100ms",
            "--timeline-interval",
            "500ms",
            "--rps",
            "100",
            "--concurrency",
            "4",
            "--churn-rpcs",
            "100",
        ];
        let args: LoadgenArgs = parse(argv.iter().map(OsString::from).collect());
        assert_eq!(args.duration, Some(Duration::from_millis(1500)));
        assert_eq!(args.churn_rpcs, Some(100));
        assert_eq!(parse(args.to_args()), args);
    }
}
