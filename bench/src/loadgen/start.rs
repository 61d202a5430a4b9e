//! One run from start to end: connect every lane, start the callers of the
//! load model, show progress, stop at the deadline and build the report.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::closed::closed_lane;
use super::config::{LoadModel, LoadgenConfig, LoadgenError};
use super::lanes::{Lane, Run};
use super::open::open_caller;
use super::progress::spawn_progress;
use super::tally::build_report;
use crate::connects::{ConnectStats, connect_start};
use crate::h2::{CallHead, Driver, H2Conn};
use crate::method::ResolvedCall;
use crate::method::metadata::grpc_timeout;
use crate::record::{GapTracker, ServerTable, Shard, UNATTRIBUTED, UNATTRIBUTED_NAME};
use crate::report::LoadReport;
use crate::wire::{encode_request, grpc_frame};

/// Runs the load described by `config` and returns the report (of the
/// last round, with `--rounds`; see [`run_rounds`] for all of them).
///
/// Bounded: connecting takes at most the connect timeout, callers stop
/// issuing at the end of the measured phase, every RPC has a deadline, and
/// callers still running `timeout + 1 s` after the end are aborted (counted
/// in `aborted_callers`).
pub async fn run(config: LoadgenConfig) -> Result<LoadReport, LoadgenError> {
    let mut rounds = run_rounds(config).await?;
    Ok(rounds.pop().expect("validate: at least one round"))
}

/// Runs every round of `config` over the same connections, `config.idle`
/// apart, and returns one report per round. Between rounds no RPC is sent
/// and every connection stays open (its driver keeps running), which is
/// what an application's channel does between bursts; the first RPC of each
/// lane after a gap is recorded on the connection the lane had before it.
/// Connection measurements span the process: they are in the last round's
/// `connects`, the others' are empty.
pub async fn run_rounds(config: LoadgenConfig) -> Result<Vec<LoadReport>, LoadgenError> {
    config.validate()?;
    raise_open_file_limit();
    check_open_file_limit(config.lanes())?;
    // Generic mode: the method and its request are settled before any
    // connection, so bad input fails before any load.
    let generic = match &config.call {
        Some(spec) => Some(crate::method::resolve(spec, config.target).await?),
        None => None,
    };
    let head = call_head(&config, generic.as_ref());
    // Above the second SYN retransmit (3 s after the first SYN), so that a
    // connect that lost two SYNs is measured, in the 3 s bucket, and not
    // counted as a timeout.
    let connect_timeout = config.timeout.min(Duration::from_millis(3500));
    let connects = Arc::new(ConnectStats::default());
    if config.rounds > 1 || config.keepalive.is_some() {
        connects.keep_records();
    }
    if let Some(every) = config.keepalive {
        connects.keep_pings(every);
    }
    let (lanes, mut drivers) = connect_lanes(&config, &head, connect_timeout, &connects).await?;
    let lanes = Arc::new(lanes);
    if config.rounds > 1 {
        // The connections must outlive each round's callers, which
        // otherwise poll (and on their end drop) the lane's first driver.
        for driver in drivers.iter_mut().filter_map(Option::take) {
            tokio::spawn(driver);
        }
    }
    let threads = tokio::runtime::Handle::current()
        .metrics()
        .num_workers()
        .max(1);
    let mut reports = Vec::with_capacity(config.rounds as usize);
    for round in 0..config.rounds {
        if round > 0 {
            tokio::time::sleep(config.idle).await;
        }
        let setup = Setup {
            lanes: lanes.clone(),
            connects: connects.clone(),
            head: head.clone(),
            generic: generic.clone(),
            connect_timeout,
            threads,
            round,
        };
        let run = Arc::new(new_run(&config, setup));
        let mut report = one_round(&config, run, std::mem::take(&mut drivers), threads).await;
        if round + 1 < config.rounds {
            report.connects = Default::default();
        }
        reports.push(report);
    }
    Ok(reports)
}

/// One round: its callers from the start of its warmup to the end of its
/// measured phase, its progress, its report.
async fn one_round(
    config: &LoadgenConfig,
    run: Arc<Run>,
    drivers: Vec<Option<Driver>>,
    threads: usize,
) -> LoadReport {
    let mut callers = spawn_callers(config, &run, drivers, threads);
    // The CPU mark at the start of the measured phase, taken on time by a
    // task of its own (warmup CPU is not the measured RPCs' cost).
    let measure_start = run.measure_start;
    let usage_start = tokio::spawn(async move {
        tokio::time::sleep_until(measure_start).await;
        super::usage::mark()
    });
    let progress = spawn_progress(config, run.clone());
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
    let usage_end = super::usage::mark();
    if let Some((handle, stop)) = progress {
        stop.store(true, Ordering::Relaxed);
        let _ = handle.await;
    }
    let mut report = build_report(config, &run, end, aborted);
    if end < measure_start {
        // Ended in warmup (a request cap): no measured phase to cost.
        usage_start.abort();
    }
    if let (Ok(Some(start)), Some(end)) = (usage_start.await, usage_end) {
        report.usage = Some(super::usage::between(start, end));
    }
    report
}

/// Raises the soft limit on open files to the hard limit, as Go's runtime
/// does at start-up: a thousand source addresses times a few channels (or a
/// connection per RPC) need more sockets than the usual soft limit of 1,024,
/// and hitting it shows up as `Too many open files` in the middle of a run.
/// Best effort: where the limit cannot be read or raised, the run goes on
/// and a connect that fails for it is reported with its cause.
pub fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// The path and extra headers of every call: the demo's `WhoAmI` or the
/// generic method, `--metadata`, and in generic mode `grpc-timeout` (as
/// ghz and grpc clients send the deadline; the demo mode keeps its
/// historical headers, which h2load comparisons rely on).
fn call_head(config: &LoadgenConfig, generic: Option<&ResolvedCall>) -> CallHead {
    let mut headers = config.metadata.clone();
    let path = match generic {
        Some(call) => {
            headers.push((
                http::HeaderName::from_static("grpc-timeout"),
                grpc_timeout(config.timeout),
            ));
            call.path.clone()
        }
        None => grpc_demo::WHOAMI_PATH.to_string(),
    };
    CallHead {
        path,
        headers: headers.into(),
        keepalive: config.keepalive,
    }
}

/// Files kept besides one socket per channel: the runtime, stdio, the
/// output files, and sockets of reconnects that overlap their old one.
const OPEN_FILE_MARGIN: u64 = 64;

/// Fails before any connect when the hard open-file limit (after
/// [`raise_open_file_limit`]) cannot hold a socket per channel, instead of
/// `Too many open files` in the middle of the connect phase.
fn check_open_file_limit(lanes: usize) -> Result<(), LoadgenError> {
    use nix::sys::resource::{Resource, getrlimit};
    let needed = lanes as u64 + OPEN_FILE_MARGIN;
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((_, hard)) if hard < needed => Err(LoadgenError::OpenFileLimit {
            needed,
            lanes,
            margin: OPEN_FILE_MARGIN,
            hard,
        }),
        _ => Ok(()),
    }
}

/// Connects every lane up front, paced at `--connect-rate` (connect i
/// starts at i / rate), so a thousand sources do not overflow a small
/// guest's listen backlog at once. A lane whose connect fails starts
/// without a connection and tries again at its next RPC; only when every
/// connect failed is the target unreachable, and that fails here, clearly,
/// before any load. Returns the lanes and their connections' drivers, in
/// lane order.
async fn connect_lanes(
    config: &LoadgenConfig,
    head: &CallHead,
    connect_timeout: Duration,
    stats: &Arc<ConnectStats>,
) -> Result<(Vec<Lane>, Vec<Option<Driver>>), LoadgenError> {
    let start = Instant::now();
    let mut connects = Vec::with_capacity(config.lanes());
    for (source_idx, source) in config.sources.iter().enumerate() {
        for _ in 0..config.channels {
            let (source, target) = (*source, config.target);
            let at = start + connect_start(connects.len(), config.connect_rate);
            connects.push(async move {
                tokio::time::sleep_until(at).await;
                let res =
                    crate::h2::connect_with_driver(source, target, head, connect_timeout, stats)
                        .await;
                (source_idx, source, res)
            });
        }
    }
    let mut lanes = Vec::with_capacity(connects.len());
    let mut drivers = Vec::with_capacity(connects.len());
    let mut first_error = None;
    for (source_idx, source, res) in futures::future::join_all(connects).await {
        let ch = match res {
            Ok((ch, driver)) => {
                drivers.push(Some(driver));
                Some(ch)
            }
            Err(e) => {
                first_error.get_or_insert(e.error);
                drivers.push(None);
                None
            }
        };
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
    if drivers.iter().all(Option::is_none)
        && let Some(e) = first_error
    {
        return Err(e.into());
    }
    Ok((lanes, drivers))
}

/// What a run starts from besides its config.
struct Setup {
    lanes: Arc<Vec<Lane>>,
    connects: Arc<ConnectStats>,
    head: CallHead,
    generic: Option<ResolvedCall>,
    connect_timeout: Duration,
    threads: usize,
    /// 0 for the first round.
    round: u32,
}

/// The shared state of a run that starts now: one shard per runtime
/// thread, one gap tracker per source.
fn new_run(config: &LoadgenConfig, setup: Setup) -> Run {
    let Setup {
        lanes,
        connects,
        head,
        generic,
        connect_timeout,
        threads,
        round,
    } = setup;
    // After an idle gap: the connection each lane had through it, whose
    // record gets the outcome of the lane's first RPC.
    let before_gap = if round > 0 {
        lanes
            .iter()
            .map(|l| {
                let serial = l
                    .current
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .map(H2Conn::serial);
                (serial, AtomicBool::new(false))
            })
            .collect()
    } else {
        Vec::new()
    };
    let t0 = Instant::now();
    let measure_start = t0 + config.warmup;
    let frame = match &generic {
        Some(call) => call.frame.clone(),
        None => Bytes::from(grpc_frame(&encode_request(
            config.payload_size,
            config.response_size,
        ))),
    };
    let servers = ServerTable::default();
    if generic.is_some() {
        let id = servers.id_of(UNATTRIBUTED_NAME.as_bytes(), b"");
        debug_assert_eq!(id, UNATTRIBUTED);
    }
    Run {
        target: config.target,
        timeout: config.timeout,
        connect_timeout,
        churn: config.churn,
        frame,
        head,
        generic,
        first_reply: OnceLock::new(),
        t0,
        measure_start,
        measure_end: measure_start + config.duration,
        requests: config.requests,
        tickets: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        timeline_ns: config.timeline_interval.as_nanos().max(1) as u64,
        servers,
        shards: (0..threads)
            .map(|_| Mutex::new(Shard::new(config.sources.len())))
            .collect(),
        gaps: (0..config.sources.len())
            .map(|_| GapTracker::default())
            .collect(),
        // Later rounds count only the connections they open themselves.
        channels_opened: AtomicU64::new(if round > 0 {
            0
        } else {
            lanes
                .iter()
                .filter(|l| l.current.lock().is_ok_and(|c| c.is_some()))
                .count() as u64
        }),
        round,
        last_round: round + 1 >= config.rounds,
        before_gap,
        connects,
        callers_left: AtomicU64::new(0),
        lanes,
    }
}

/// Starts the callers of the load model; each lane's driver is polled by
/// its first closed-loop task, or spawned on its own.
fn spawn_callers(
    config: &LoadgenConfig,
    run: &Arc<Run>,
    drivers: Vec<Option<Driver>>,
    threads: usize,
) -> JoinSet<()> {
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
                let mut driver = driver;
                for shards in lane_groups.into_iter().filter(|g| !g.is_empty()) {
                    callers.spawn(closed_lane(run.clone(), lane, shards, driver.take()));
                }
                if let Some(driver) = driver {
                    tokio::spawn(driver);
                }
            }
        }
        LoadModel::Open { rps, max_in_flight } => {
            for driver in drivers.into_iter().flatten() {
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
    callers
}

#[cfg(test)]
mod open_file_limit_tests {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};

    #[test]
    fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        // Start from a low soft limit, as a login shell's 1,024 would be.
        setrlimit(Resource::RLIMIT_NOFILE, 64.min(hard), hard).unwrap();
        super::raise_open_file_limit();
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap(), (hard, hard));
    }
}
