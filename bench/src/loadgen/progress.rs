//! Live progress while a run goes on: the [`ProgressLine`] counts, written
//! as JSON lines on stdout (what the lab reads) or shown on stderr.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::args::ProgressMode;
use super::config::LoadgenConfig;
use super::lanes::Run;

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

pub(super) fn spawn_progress(
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
