//! The load: `lab loadgen` (this very binary) in the client namespace,
//! one run per round with the idle gaps between, its progress lines
//! followed live (the first one fixes the [`Origin`]), and its JSON report
//! read back.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use bench::loadgen::{LoadgenArgs, ProgressLine, ProgressMode};
use bench::report::{LoadReport, RoundsReport};

use super::live::{Live, Origin};
use super::progress::{Status, render_progress};
use super::usage;
use super::{RunError, RunOptions};
use crate::network::{CLIENT_HOST, Plan};
use crate::process::ChildGuard;
use crate::scenario::Scenario;
use crate::scenario::spec::{ConnectionModel, LoadMode};

/// What every round shares.
pub(super) struct Rounds<'a> {
    /// The scenario, for its `[load]`.
    pub(super) scenario: &'a Scenario,
    /// Duration override and the interrupt flag.
    pub(super) opts: &'a RunOptions,
    /// The lab binary.
    pub(super) exe: &'a Path,
    /// Where each round's report and log go.
    pub(super) work: &'a Path,
}

impl Rounds<'_> {
    /// Runs every round, ticking `live` all along; one load report per round.
    pub(super) fn run(
        &self,
        live: &mut Live<'_>,
        status: &mut Status,
    ) -> Result<Vec<LoadReport>, RunError> {
        let load = &self.scenario.file.load;
        let mut rounds = Vec::new();
        // A `[client]` round replaces the load generator unless it asks to
        // come after it.
        if self
            .scenario
            .file
            .client
            .as_ref()
            .is_some_and(|c| !c.after_load)
        {
            return Ok(rounds);
        }
        if load.keep_channels {
            return self.in_one_process(live, status);
        }
        for round in 0..load.rounds {
            if round > 0 && !load.idle.is_zero() {
                self.idle(round, live, status)?;
            }
            rounds.push(self.round(round, live, status)?);
        }
        Ok(rounds)
    }

    fn check_interrupted(&self) -> Result<(), RunError> {
        if self.opts.interrupted.load(Ordering::SeqCst) {
            return Err(RunError::Interrupted);
        }
        Ok(())
    }

    /// The gap before `round`, during which phases and observers go on.
    fn idle(&self, round: u32, live: &mut Live<'_>, status: &mut Status) -> Result<(), RunError> {
        let idle = self.scenario.file.load.idle;
        let idle_start = Instant::now();
        while idle_start.elapsed() < idle {
            self.check_interrupted()?;
            status.tick(&format!(
                "idle {:.0}/{:.0} s before round {}",
                idle_start.elapsed().as_secs_f64(),
                idle.as_secs_f64(),
                round + 1
            ));
            live.tick()?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// One run of the load generator, followed until it exits.
    fn round(
        &self,
        round: u32,
        live: &mut Live<'_>,
        status: &mut Status,
    ) -> Result<LoadReport, RunError> {
        let load = &self.scenario.file.load;
        let json = self.work.join(format!("round-{round}.json"));
        // loadgen's own summary and errors go to a file: the lab prints its
        // own summary, and shows this only when the load generator fails.
        let log = self.work.join(format!("round-{round}.log"));
        let spawned = Instant::now();
        let mut child = self.spawn_loadgen(live, &json, &log)?;
        let lines = progress_lines(child.take_stdout().expect("piped"));
        let mut round_start = None;
        let duration = self.opts.duration.unwrap_or(load.duration);
        // CPU samples at the start and the end of the measured phase.
        let (mut cpu_start, mut cpu_end) = (None, None);
        let ended = loop {
            self.check_interrupted()?;
            while let Ok((arrived, line)) = lines.try_recv() {
                let start = *round_start
                    .get_or_insert_with(|| origin_of(&line, arrived, spawned, load.warmup));
                if live.origin.is_none() {
                    live.origin = Some(start);
                }
                status.tick(&format!(
                    "round {}/{} {}",
                    round + 1,
                    load.rounds,
                    render_progress(&line)
                ));
            }
            live.tick()?;
            let measure_start = round_start.map_or(spawned + load.warmup, |o: Origin| o.0);
            let now = Instant::now();
            if cpu_start.is_none() && now >= measure_start {
                cpu_start = Some(usage::sample(&live.servers));
            }
            if cpu_start.is_some() && cpu_end.is_none() && now >= measure_start + duration {
                cpu_end = Some(usage::sample(&live.servers));
            }
            if let Some(s) = child.try_wait() {
                break s;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if live.origin.is_none() {
            live.origin = Some(Origin(spawned + load.warmup));
        }
        live.round_starts
            .push(round_start.map_or(spawned + load.warmup, |o| o.0));
        live.round_windows.push((spawned, Instant::now()));
        if let Some(start) = &cpu_start {
            // Ended before its planned end (a request cap): sample now.
            let end = cpu_end.unwrap_or_else(|| usage::sample(&live.servers));
            live.round_usage.push(usage::between(
                start,
                &end,
                crate::procstat::ticks_per_second(),
            ));
        }
        check_ended(ended, &log, status)?;
        read_load_report(json)
    }

    /// `keep_channels`: every round and idle gap in one load generator,
    /// whose connections stay open through the gaps. Its progress lines
    /// carry their round, the first of each round fixes that round's start;
    /// its report holds one report per round.
    fn in_one_process(
        &self,
        live: &mut Live<'_>,
        status: &mut Status,
    ) -> Result<Vec<LoadReport>, RunError> {
        let load = &self.scenario.file.load;
        let json = self.work.join("rounds.json");
        let log = self.work.join("rounds.log");
        let spawned = Instant::now();
        let mut child = self.spawn_loadgen(live, &json, &log)?;
        let lines = progress_lines(child.take_stdout().expect("piped"));
        let duration = self.opts.duration.unwrap_or(load.duration);
        let ticks = crate::procstat::ticks_per_second();
        // Per round: its measured start, its last line, its CPU samples.
        let mut seen: Vec<SeenRound> = Vec::new();
        let ended = loop {
            self.check_interrupted()?;
            while let Ok((arrived, line)) = lines.try_recv() {
                let round = line.round as usize;
                if round >= seen.len() {
                    let after = seen.last().map_or(spawned, |r| r.last_line);
                    let start = origin_of(&line, arrived, after, load.warmup);
                    live.origin.get_or_insert(start);
                    seen.push(SeenRound {
                        start: start.0,
                        spawned: start.0.checked_sub(load.warmup).unwrap_or(start.0),
                        last_line: arrived,
                        cpu_start: None,
                        cpu_end: None,
                    });
                }
                if let Some(r) = seen.get_mut(round) {
                    r.last_line = arrived;
                }
                status.tick(&format!(
                    "round {}/{} {}",
                    round + 1,
                    load.rounds,
                    render_progress(&line)
                ));
            }
            live.tick()?;
            let now = Instant::now();
            if let Some(r) = seen.last_mut() {
                if r.cpu_start.is_none() && now >= r.start {
                    r.cpu_start = Some(usage::sample(&live.servers));
                }
                if r.cpu_start.is_some() && r.cpu_end.is_none() && now >= r.start + duration {
                    r.cpu_end = Some(usage::sample(&live.servers));
                }
                if r.cpu_end.is_some() && now > r.last_line + Duration::from_secs(1) {
                    status.tick(&format!(
                        "idle {:.0} s (channels kept open) after round {}/{}",
                        (now - r.last_line).as_secs_f64(),
                        seen.len(),
                        load.rounds
                    ));
                }
            }
            if let Some(s) = child.try_wait() {
                break s;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for r in seen {
            live.round_starts.push(r.start);
            live.round_windows.push((r.spawned, r.last_line));
            if let Some(start) = &r.cpu_start {
                // Ended before its planned end (a request cap): sample now.
                let end = r.cpu_end.unwrap_or_else(|| usage::sample(&live.servers));
                live.round_usage.push(usage::between(start, &end, ticks));
            }
        }
        if live.origin.is_none() {
            live.origin = Some(Origin(spawned + load.warmup));
        }
        check_ended(ended, &log, status)?;
        let text = std::fs::read(&json).map_err(|e| RunError::LoadReport {
            path: json.clone(),
            source: Box::new(e),
        })?;
        let report: RoundsReport =
            serde_json::from_slice(&text).map_err(|e| RunError::LoadReport {
                path: json,
                source: Box::new(e),
            })?;
        Ok(report.rounds)
    }

    fn spawn_loadgen(
        &self,
        live: &Live<'_>,
        json: &Path,
        log: &Path,
    ) -> Result<ChildGuard, RunError> {
        let duration = self
            .opts
            .duration
            .unwrap_or(self.scenario.file.load.duration);
        let mut cmd = Command::new(self.exe);
        cmd.arg("loadgen")
            .args(loadgen_args(live.lab.plan(), self.scenario, duration).to_args())
            .arg("--json")
            .arg(json)
            .stdout(Stdio::piped());
        let log_file = std::fs::File::create(log).map_err(|source| RunError::Io {
            what: format!("creating {}", log.display()),
            source,
        })?;
        cmd.stderr(Stdio::from(log_file));
        Ok(ChildGuard::spawn_in(
            live.lab.ns(CLIENT_HOST)?,
            cmd,
            "the load generator",
        )?)
    }
}

/// What the lab saw of one round of a `keep_channels` load generator.
struct SeenRound {
    /// Its measured phase's start.
    start: Instant,
    /// Its warmup's start.
    spawned: Instant,
    /// When its last progress line arrived.
    last_line: Instant,
    cpu_start: Option<usage::Sample>,
    cpu_end: Option<usage::Sample>,
}

/// The start of the measured load, from the first progress line: the
/// line left the generator `elapsed_s` after its start (never before it
/// was spawned), and the measured phase begins `warmup` later.
fn origin_of(line: &ProgressLine, arrived: Instant, spawned: Instant, warmup: Duration) -> Origin {
    let start = arrived
        .checked_sub(Duration::from_secs_f64(line.elapsed_s.max(0.0)))
        .unwrap_or(spawned)
        .max(spawned);
    Origin(start + warmup)
}

/// A failed load generator is an error, with its log shown.
fn check_ended(ended: ExitStatus, log: &Path, status: &Status) -> Result<(), RunError> {
    if ended.success() {
        return Ok(());
    }
    if let Ok(text) = std::fs::read_to_string(log) {
        status.print(&text);
    }
    Err(RunError::Loadgen {
        status: ended.to_string(),
    })
}

fn read_load_report(json: PathBuf) -> Result<LoadReport, RunError> {
    let text = std::fs::read(&json).map_err(|e| RunError::LoadReport {
        path: json.clone(),
        source: Box::new(e),
    })?;
    serde_json::from_slice(&text).map_err(|e| RunError::LoadReport {
        path: json,
        source: Box::new(e),
    })
}

/// The load generator's progress lines, each with the instant it arrived.
/// A line that is not a [`ProgressLine`] is skipped.
fn progress_lines(stdout: std::process::ChildStdout) -> Receiver<(Instant, ProgressLine)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(p) = serde_json::from_str::<ProgressLine>(&line)
                && tx.send((Instant::now(), p)).is_err()
            {
                break;
            }
        }
    });
    rx
}

/// The load generator's flags for one round of `scenario`.
fn loadgen_args(plan: &Plan, scenario: &Scenario, duration: Duration) -> LoadgenArgs {
    let load = &scenario.file.load;
    let lanes = plan.client_addresses.len() * load.channels_per_ip as usize;
    let sources: Vec<String> = plan
        .client_addresses
        .iter()
        .map(|a| a.to_string())
        .collect();
    let mut args = LoadgenArgs::new(plan.target);
    args.source_ips = Some(sources.join(","));
    args.channels = load.channels_per_ip as usize;
    args.duration = Some(duration);
    args.warmup = load.warmup;
    args.timeout = load.timeout;
    args.payload_size = load.payload as usize;
    args.progress = ProgressMode::Json;
    // Frequent progress lines: the first one tells when the generator
    // started, which is the origin phases and report times count from.
    args.progress_interval = Duration::from_millis(100);
    args.timeline_interval = load.timeline_interval;
    args.concurrency = Some((load.concurrency as usize).max(lanes));
    if load.mode == LoadMode::Open {
        args.rps = Some(load.rps.unwrap_or(100.0));
    }
    match load.connection {
        ConnectionModel::Channel => {}
        ConnectionModel::Churn => args.churn_rpcs = Some(u64::from(load.churn_rpcs.unwrap_or(100))),
        ConnectionModel::PerRpc => args.conn_per_rpc = true,
    }
    args.connect_rate = load.connect_rate.unwrap_or(0);
    args.keepalive = load.keepalive;
    if load.keep_channels {
        args.rounds = load.rounds;
        args.idle = load.idle;
    }
    args.call = load.call.clone();
    // Relative to the lab's own directory; made absolute so that loadgen
    // finds it wherever it is started.
    args.proto = load.proto.iter().map(|p| absolute(p)).collect();
    args.data = load.data.clone();
    args.metadata = load
        .metadata
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    args
}

fn absolute(path: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(elapsed_s: f64) -> ProgressLine {
        ProgressLine {
            elapsed_s,
            phase: bench::loadgen::Phase::Warmup,
            rpcs: 0,
            errors: 0,
            rate: 0.0,
            servers: Default::default(),
            round: 0,
        }
    }

    #[test]
    fn origin_counts_back_from_the_first_line_and_adds_the_warmup() {
        let spawned = Instant::now();
        let arrived = spawned + Duration::from_millis(700);
        let o = origin_of(&line(0.5), arrived, spawned, Duration::from_secs(1));
        assert_eq!(o.0, spawned + Duration::from_millis(1200));
    }

    /// The argv lab hands to `lab loadgen` parses back into what lab meant:
    /// a renamed or dropped flag fails here, not in the UML suite.
    #[test]
    fn the_loadgen_argv_parses_back_into_the_scenarios_load() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut checked = 0;
        // The suite's scenarios and the bench-only ones (scenarios/bench).
        let mut paths: Vec<_> = [dir.clone(), dir.join("bench")]
            .iter()
            .flat_map(|d| std::fs::read_dir(d).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        assert!(paths.iter().any(|p| p.ends_with("bench/churn-100k.toml")));
        for path in paths {
            let name = path.display().to_string();
            // A scenario's relative paths (a `[load] proto`) resolve against
            // the directory lab runs in, the workspace; cargo runs unit tests
            // in lab/, so they are made absolute here.
            let workspace = dir.parent().unwrap().display().to_string();
            let text = std::fs::read_to_string(&path).unwrap().replace(
                "proto = \"examples/",
                &format!("proto = \"{workspace}/examples/"),
            );
            let scenario = Scenario::from_str(&path, &text).unwrap();
            checked += 1;
            let plan =
                crate::scenario::plan::plan(&scenario, crate::netns::RunId::from_parts(1, 1))
                    .unwrap();
            let meant = loadgen_args(&plan, &scenario, Duration::from_millis(1500));
            let parsed: LoadgenArgs =
                grpc_demo::cli::parse_args("loadgen", meant.to_args()).unwrap();
            assert_eq!(parsed, meant, "{name}");
            assert_eq!(parsed.target, Some(plan.target));
            assert_eq!(parsed.duration, Some(Duration::from_millis(1500)));
            assert_eq!(parsed.progress, ProgressMode::Json);
            assert_eq!(
                parsed.source_ips.as_deref().map(|s| s.split(',').count()),
                Some(plan.client_addresses.len())
            );
        }
        assert!(
            checked >= 10,
            "only {checked} scenarios in {}",
            dir.display()
        );
    }

    #[test]
    fn origin_is_never_before_the_spawn() {
        let spawned = Instant::now();
        let arrived = spawned + Duration::from_millis(100);
        let o = origin_of(&line(3.0), arrived, spawned, Duration::ZERO);
        assert_eq!(o.0, spawned);
    }
}
