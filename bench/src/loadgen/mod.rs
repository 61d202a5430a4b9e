//! The load generator: flags, validation, callers, progress and the report.
//!
//! What is called: the demo's `WhoAmI` (replies name their server), or in
//! generic mode (`--call`, see [`crate::method`]) any unary method, whose
//! replies are counted by status only and attributed per connection.
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
//!
//! Layout, in the order of a run: `args` (flags, [`LoadgenArgs::to_args`]),
//! `config` (the validated run, errors), `start` (connect, spawn, stop),
//! `lanes` (shared state and connections), `closed` and `open` (the two
//! load models), `progress` ([`ProgressLine`]), `tally` (the report), `usage` (its own
//! CPU time over the measured phase).

mod args;
mod closed;
mod config;
mod lanes;
mod open;
mod progress;
mod start;
mod tally;
mod usage;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine as _;

pub use args::{LoadgenArgs, ProgressMode};
pub use config::{Churn, LoadModel, LoadgenConfig, LoadgenError};
pub use progress::{Phase, ProgressLine};
pub use start::{run, run_rounds};

use crate::record::new_histogram;
use crate::wire::{encode_request, grpc_frame};

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
        let frame = request_frame(&args)?;
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
    let multi = config.rounds > 1;
    let rounds = crate::report::RoundsReport {
        rounds: runtime.block_on(run_rounds(config))?,
    };
    let report = rounds.rounds.last().expect("validate: at least one round");
    // Lazy channels of aborted callers may still hold tasks: do not wait.
    runtime.shutdown_timeout(Duration::from_millis(100));
    if let Some(path) = &args.json {
        // One report, or with --rounds every round's.
        let json = if multi {
            serde_json::to_vec_pretty(&rounds)?
        } else {
            serde_json::to_vec_pretty(report)?
        };
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

/// The frame `--print-request-frame` prints: the demo's `WhoAmIRequest`,
/// or in generic mode the `--data` request of `--call` (so that h2load can
/// send exactly what loadgen sends).
fn request_frame(args: &LoadgenArgs) -> Result<Vec<u8>, LoadgenError> {
    let Some(spec) = args.call_spec()? else {
        return Ok(grpc_frame(&encode_request(
            args.payload_size,
            args.response_size,
        )));
    };
    let target = args
        .target
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let runtime = grpc_demo::cli::runtime(1).map_err(LoadgenError::Runtime)?;
    let call = runtime.block_on(crate::method::resolve(&spec, target))?;
    Ok(call.frame.to_vec())
}

/// Decodes `histogram_b64` back into a histogram (µs).
pub fn decode_histogram(b64: &str) -> Option<hdrhistogram::Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .ok()
}
