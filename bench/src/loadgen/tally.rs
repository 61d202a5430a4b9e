//! The [`LoadReport`] of a finished run: the callers' shards merged, then
//! per server, per source, per connection, the timeline and the totals.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use tokio::time::Instant;

use super::config::{LoadModel, LoadgenConfig};
use super::lanes::Run;
use crate::connects::ConnEnd;
use crate::record::{Bucket, ConnAcc, ServerIdent, Shard, new_histogram, new_small_histogram};
use crate::report::{
    CallReport, ConnectionReport, LatencySummary, LoadReport, SCHEMA_VERSION, STATUS_NAMES,
    ServerReport, SourceReport, TimelineBucket,
};

/// The report of a run that ended at `end` with `aborted` callers cut off.
pub(super) fn build_report(
    config: &LoadgenConfig,
    run: &Run,
    end: Instant,
    aborted: u64,
) -> LoadReport {
    let idents = run.servers.snapshot();
    let mut m = Merged::new(&idents, config.sources.len());
    for shard in &run.shards {
        m.add(&shard.lock().unwrap_or_else(|e| e.into_inner()), &idents);
    }
    let end_ns = end.saturating_duration_since(run.measure_start).as_nanos() as u64;
    let names = Names {
        idents: &idents,
        config,
        observed: &m.observed,
    };
    let connections = connections(&m.conns, &names, &mut m.servers, &mut m.sources);
    for (r, h) in m.servers.iter_mut().zip(&m.server_hist) {
        r.latency_us = LatencySummary::from_histogram(h);
    }
    for (i, r) in m.sources.iter_mut().enumerate() {
        r.address = names.source(i);
        r.latency_us = LatencySummary::from_histogram(&m.src_hist[i]);
        r.longest_gap_ms = run.gaps[i].longest_gap_ms(end_ns);
    }
    let interval_s = config.timeline_interval.as_secs_f64();
    let timeline = timeline_buckets(m.timeline, interval_s, &names);
    let duration_s = end_ns as f64 / 1e9;
    let (ok, total) = (m.ok, m.ok + m.errors);
    let per_second = |n: u64| {
        if duration_s > 0.0 {
            n as f64 / duration_s
        } else {
            0.0
        }
    };
    let (mode, concurrency, target_rps) = match config.load {
        LoadModel::Closed { concurrency } => ("closed", concurrency as u64, None),
        LoadModel::Open { rps, max_in_flight } => ("open", max_in_flight as u64, Some(rps)),
    };
    let call = run.generic.as_ref().map(|g| {
        // Replies name no server: leave the placeholder out (see
        // `LoadReport::servers`).
        m.servers.clear();
        for src in &mut m.sources {
            src.servers.clear();
        }
        CallReport {
            method: g.path.clone(),
            described_by: g.described_by.to_string(),
            first_reply: run.first_reply.get().map(|r| g.reply_json(r)),
        }
    });
    let mut connections = connections;
    if call.is_some() {
        for c in &mut connections {
            c.server.clear();
        }
    }
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
        errors: m.errors,
        warmup_rpcs: m.warmup,
        duration_s,
        rps: per_second(total),
        ok_rps: per_second(ok),
        latency_us: LatencySummary::from_histogram(&m.overall),
        histogram_b64: encode_histogram(&m.overall),
        servers: m.servers,
        sources: m.sources,
        connections,
        status_codes: nonzero_statuses(&m.status),
        timeline_interval_s: interval_s,
        timeline,
        aborted_callers: aborted,
        call,
        usage: None,
        connects: connect_report(run),
    }
}

/// One timeline interval summed over the shards: successes per server id
/// and failures per status code.
type TimelineSums = (Vec<u64>, [u64; 17]);

/// The connects section: connections that did not end by the peer were
/// closed by loadgen (churn, or still open at the end of the run).
fn connect_report(run: &Run) -> crate::report::ConnectReport {
    let mut r = run.connects.report(encode_histogram);
    let by_peer: u64 = r.ended_by.values().sum();
    let by_us = r.ok.saturating_sub(by_peer);
    if by_us > 0 {
        r.ended_by
            .insert(ConnEnd::Loadgen.name().to_string(), by_us);
    }
    r
}

/// Every shard's counts added together.
struct Merged {
    overall: Histogram<u64>,
    server_hist: Vec<Histogram<u64>>,
    servers: Vec<ServerReport>,
    src_hist: Vec<Histogram<u64>>,
    sources: Vec<SourceReport>,
    /// The source address the server saw, for unbound sources.
    observed: Vec<Option<IpAddr>>,
    conns: BTreeMap<(u16, u64), ConnAcc>,
    status: [u64; 17],
    timeline: Vec<TimelineSums>,
    ok: u64,
    errors: u64,
    warmup: u64,
}

impl Merged {
    fn new(idents: &[ServerIdent], n_src: usize) -> Self {
        Self {
            overall: new_histogram(),
            server_hist: idents.iter().map(|_| new_histogram()).collect(),
            servers: idents
                .iter()
                .map(|s| ServerReport {
                    name: s.name.clone(),
                    address: s.address.clone(),
                    ..Default::default()
                })
                .collect(),
            src_hist: (0..n_src).map(|_| new_small_histogram()).collect(),
            sources: (0..n_src).map(|_| SourceReport::default()).collect(),
            observed: vec![None; n_src],
            conns: BTreeMap::new(),
            status: [0; 17],
            timeline: Vec::new(),
            ok: 0,
            errors: 0,
            warmup: 0,
        }
    }

    fn add(&mut self, s: &Shard, idents: &[ServerIdent]) {
        let _ = self.overall.add(&s.overall);
        self.ok += s.ok;
        self.errors += s.errors;
        self.warmup += s.warmup_ok;
        for (i, acc) in s.servers.iter().enumerate() {
            if let Some(r) = self.servers.get_mut(i) {
                r.rpcs += acc.rpcs;
                r.errors += acc.errors;
                r.warmup_rpcs += acc.warmup_rpcs;
                let _ = self.server_hist[i].add(&acc.hist);
            }
        }
        for (i, acc) in s.sources.iter().enumerate() {
            let r = &mut self.sources[i];
            r.rpcs += acc.rpcs;
            r.errors += acc.errors;
            let _ = self.src_hist[i].add(&acc.hist);
            for (sid, n) in acc.per_server.iter().enumerate() {
                if *n > 0
                    && let Some(ident) = idents.get(sid)
                {
                    *r.servers.entry(ident.name.clone()).or_default() += n;
                }
            }
            if self.observed[i].is_none() {
                self.observed[i] = acc.observed_ip;
            }
        }
        for (k, c) in &s.conns {
            let e = self.conns.entry(*k).or_insert(ConnAcc { rpcs: 0, ..*c });
            e.rpcs += c.rpcs;
        }
        for (i, n) in s.status.iter().enumerate() {
            self.status[i] += n;
        }
        self.add_timeline(&s.timeline);
    }

    fn add_timeline(&mut self, buckets: &[Bucket]) {
        if self.timeline.len() < buckets.len() {
            self.timeline.resize(buckets.len(), (Vec::new(), [0; 17]));
        }
        for (t, b) in self.timeline.iter_mut().zip(buckets) {
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
}

/// How ids and indices are named in the report.
struct Names<'a> {
    idents: &'a [ServerIdent],
    config: &'a LoadgenConfig,
    observed: &'a [Option<IpAddr>],
}

impl Names<'_> {
    fn server(&self, id: u16) -> String {
        self.idents
            .get(id as usize)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }

    /// The bound address, else the one the server saw, else `unbound`.
    fn source(&self, i: usize) -> String {
        match (self.config.sources[i], self.observed[i]) {
            (Some(ip), _) | (None, Some(ip)) => ip.to_string(),
            (None, None) => "unbound".to_string(),
        }
    }
}

/// The connections that carried measured RPCs; counts them on their server
/// and source as it goes.
fn connections(
    conns: &BTreeMap<(u16, u64), ConnAcc>,
    names: &Names<'_>,
    servers: &mut [ServerReport],
    sources: &mut [SourceReport],
) -> Vec<ConnectionReport> {
    let mut connections = Vec::new();
    for ((sid, conn_id), c) in conns {
        if c.rpcs == 0 {
            continue;
        }
        if let Some(r) = servers.get_mut(*sid as usize) {
            r.connections += 1;
        }
        sources[c.source as usize].connections += 1;
        connections.push(ConnectionReport {
            source: names.source(c.source as usize),
            local_port: c.local_port,
            server: names.server(*sid),
            server_conn_id: *conn_id,
            rpcs: c.rpcs,
        });
    }
    connections
}

fn timeline_buckets(
    timeline: Vec<TimelineSums>,
    interval_s: f64,
    names: &Names<'_>,
) -> Vec<TimelineBucket> {
    timeline
        .into_iter()
        .enumerate()
        .map(|(i, (okv, errv))| TimelineBucket {
            t_s: i as f64 * interval_s,
            ok: okv
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(j, n)| (names.server(j as u16), *n))
                .collect(),
            errors: nonzero_statuses(&errv),
        })
        .collect()
}

/// Status code names with their non-zero counts.
fn nonzero_statuses(counts: &[u64; 17]) -> BTreeMap<String, u64> {
    counts
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (STATUS_NAMES[i].to_string(), *n))
        .collect()
}

/// The histogram in HdrHistogram's V2 encoding, base64 (empty if it cannot
/// be encoded).
fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    match V2Serializer::new().serialize(h, &mut buf) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(&buf),
        Err(_) => String::new(),
    }
}
