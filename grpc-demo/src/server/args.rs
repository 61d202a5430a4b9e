//! The command line of `grpc-demo-server` (and `lab server`): the clap
//! flags, the argv that parses back into them, their [`ServerConfig`], and
//! the ready line the server prints once it accepts connections.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use tonic::Code;

use super::delay::Delay;
use super::{ServerConfig, StallOnce};
use crate::duration::parse_duration;

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
    /// printed on stdout as `listening on ADDR`).
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
