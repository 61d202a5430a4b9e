//! Live progress while a run goes on: the [`ProgressLine`] counts, written
//! as JSON lines on stdout (what the lab reads, typed) or shown on stderr:
//! an indicatif line that updates in place on a terminal, one plain line per
//! period otherwise (a log file gets no escape codes).

use std::collections::BTreeMap;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::args::ProgressMode;
use super::config::LoadgenConfig;
use super::lanes::Run;

/// Which part of the run a [`ProgressLine`] belongs to; written as
/// `"warmup"` and `"measure"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The unmeasured warmup.
    Warmup,
    /// The measured phase.
    Measure,
}

impl Phase {
    /// The word in the JSON and the human line.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Warmup => "warmup",
            Phase::Measure => "measure",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that `{:<7}` lines the human progress up.
        f.pad(self.as_str())
    }
}

/// One `--progress json` line (cumulative counts since the start,
/// warmup included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressLine {
    /// Seconds since the run (warmup) started.
    pub elapsed_s: f64,
    /// Warmup or measure.
    pub phase: Phase,
    /// Successful RPCs so far.
    pub rpcs: u64,
    /// Failed RPCs so far.
    pub errors: u64,
    /// Successful RPCs per second over the last interval.
    pub rate: f64,
    /// Successful RPCs per server name so far (in generic mode, whose
    /// replies name no server, all under `unattributed`).
    pub servers: BTreeMap<String, u64>,
    /// The round (0 for the first) with `--rounds`; `elapsed_s` counts from
    /// this round's start. Left out for round 0, so one-round lines keep
    /// their agreed fields.
    #[serde(default, skip_serializing_if = "is_first_round")]
    pub round: u32,
}

fn is_first_round(round: &u32) -> bool {
    *round == 0
}

impl fmt::Display for ProgressLine {
    /// The human line: `[   1.0s measure] 8123 rpcs 8123/s errors 0 rs1=8123`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:6.1}s {:<7}] {} rpcs {:.0}/s errors {}",
            self.elapsed_s, self.phase, self.rpcs, self.rate, self.errors
        )?;
        f.write_str(" ")?;
        let mut first = true;
        for (name, n) in &self.servers {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{name}={n}")?;
        }
        Ok(())
    }
}

/// Where progress lines go.
enum Sink {
    /// JSON lines on stdout.
    Json,
    /// An in-place line on a terminal's stderr.
    Bar(ProgressBar),
    /// One plain line per period on stderr.
    Plain,
}

impl Sink {
    /// The sink for `mode`, or `None` when nothing is shown.
    fn for_mode(mode: ProgressMode) -> Option<Self> {
        let tty = std::io::stderr().is_terminal();
        match mode {
            ProgressMode::None => None,
            ProgressMode::Auto if !tty => None,
            ProgressMode::Json => Some(Sink::Json),
            ProgressMode::Auto | ProgressMode::Tty if tty => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                bar.set_style(ProgressStyle::with_template("{msg}").expect("a valid template"));
                Some(Sink::Bar(bar))
            }
            ProgressMode::Auto | ProgressMode::Tty => Some(Sink::Plain),
        }
    }

    fn show(&self, line: &ProgressLine) {
        match self {
            Sink::Json => {
                let mut out = std::io::stdout().lock();
                if serde_json::to_writer(&mut out, line).is_ok() {
                    let _ = writeln!(out);
                    let _ = out.flush();
                }
            }
            Sink::Bar(bar) => bar.set_message(line.to_string()),
            Sink::Plain => eprintln!("{line}"),
        }
    }

    /// Leaves the last line on screen and ends it.
    fn finish(&self) {
        if let Sink::Bar(bar) = self {
            bar.finish();
        }
    }
}

pub(super) fn spawn_progress(
    config: &LoadgenConfig,
    run: Arc<Run>,
) -> Option<(tokio::task::JoinHandle<()>, Arc<AtomicBool>)> {
    let sink = Sink::for_mode(config.progress)?;
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
            sink.show(&line);
            if done || now >= run.measure_end + Duration::from_secs(3600) {
                sink.finish();
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
            Phase::Warmup
        } else {
            Phase::Measure
        },
        rpcs,
        errors,
        rate: if dt > 0.0 {
            rpcs.saturating_sub(last.1) as f64 / dt
        } else {
            0.0
        },
        servers: names.into_iter().map(|s| s.name).zip(per_server).collect(),
        round: run.round,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> ProgressLine {
        ProgressLine {
            elapsed_s: 1.04,
            phase: Phase::Measure,
            rpcs: 8123,
            errors: 2,
            rate: 8000.4,
            servers: [("rs1".to_string(), 8000), ("rs2".to_string(), 123)].into(),
            round: 0,
        }
    }

    #[test]
    fn json_has_the_agreed_fields_and_reads_back() {
        let json = serde_json::to_string(&line()).unwrap();
        assert_eq!(
            json,
            r#"{"elapsed_s":1.04,"phase":"measure","rpcs":8123,"errors":2,"rate":8000.4,"servers":{"rs1":8000,"rs2":123}}"#
        );
        assert_eq!(serde_json::from_str::<ProgressLine>(&json).unwrap(), line());
        let warm =
            r#"{"elapsed_s":0.1,"phase":"warmup","rpcs":0,"errors":0,"rate":0.0,"servers":{}}"#;
        assert_eq!(
            serde_json::from_str::<ProgressLine>(warm).unwrap().phase,
            Phase::Warmup
        );
    }

    #[test]
    fn the_human_line_is_the_old_format() {
        assert_eq!(
            line().to_string(),
            "[   1.0s measure] 8123 rpcs 8000/s errors 2 rs1=8000 rs2=123"
        );
        let mut warm = line();
        warm.phase = Phase::Warmup;
        warm.servers.clear();
        assert_eq!(
            warm.to_string(),
            "[   1.0s warmup ] 8123 rpcs 8000/s errors 2 "
        );
    }
}
