//! The [`LoadReport`] of a finished run: the callers' shards merged, then
//! per server, per source, per connection, the timeline and the totals.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use tokio::time::Instant;

use super::config::{LoadModel, LoadgenConfig};
use super::lanes::Run;
use crate::record::{new_histogram, new_small_histogram};
use crate::report::{
    ConnectionReport, LatencySummary, LoadReport, SCHEMA_VERSION, STATUS_NAMES, ServerReport,
    SourceReport, TimelineBucket,
};

pub(super) fn build_report(
    config: &LoadgenConfig,
    run: &Run,
    end: Instant,
    aborted: u64,
) -> LoadReport {
    let idents = run.servers.snapshot();
    let n_src = config.sources.len();
    let mut overall = new_histogram();
    let mut server_hist: Vec<_> = idents.iter().map(|_| new_histogram()).collect();
    let mut servers: Vec<ServerReport> = idents
        .iter()
        .map(|s| ServerReport {
            name: s.name.clone(),
            address: s.address.clone(),
            ..Default::default()
        })
        .collect();
    let mut src_hist: Vec<_> = (0..n_src).map(|_| new_small_histogram()).collect();
    let mut sources: Vec<SourceReport> = (0..n_src).map(|_| SourceReport::default()).collect();
    let mut observed: Vec<Option<IpAddr>> = vec![None; n_src];
    let mut conns: BTreeMap<(u16, u64), crate::record::ConnAcc> = BTreeMap::new();
    let mut status = [0u64; 17];
    let mut timeline: Vec<(Vec<u64>, [u64; 17])> = Vec::new();
    let (mut ok, mut errors, mut warmup) = (0u64, 0u64, 0u64);
    for shard in &run.shards {
        let s = shard.lock().unwrap_or_else(|e| e.into_inner());
        let _ = overall.add(&s.overall);
        ok += s.ok;
        errors += s.errors;
        warmup += s.warmup_ok;
        for (i, acc) in s.servers.iter().enumerate() {
            if let Some(r) = servers.get_mut(i) {
                r.rpcs += acc.rpcs;
                r.errors += acc.errors;
                r.warmup_rpcs += acc.warmup_rpcs;
                let _ = server_hist[i].add(&acc.hist);
            }
        }
        for (i, acc) in s.sources.iter().enumerate() {
            let r = &mut sources[i];
            r.rpcs += acc.rpcs;
            r.errors += acc.errors;
            let _ = src_hist[i].add(&acc.hist);
            for (sid, n) in acc.per_server.iter().enumerate() {
                if *n > 0
                    && let Some(ident) = idents.get(sid)
                {
                    *r.servers.entry(ident.name.clone()).or_default() += n;
                }
            }
            if observed[i].is_none() {
                observed[i] = acc.observed_ip;
            }
        }
        for (k, c) in &s.conns {
            let e = conns
                .entry(*k)
                .or_insert(crate::record::ConnAcc { rpcs: 0, ..*c });
            e.rpcs += c.rpcs;
        }
        for (i, n) in s.status.iter().enumerate() {
            status[i] += n;
        }
        if timeline.len() < s.timeline.len() {
            timeline.resize(s.timeline.len(), (Vec::new(), [0; 17]));
        }
        for (i, b) in s.timeline.iter().enumerate() {
            let t = &mut timeline[i];
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
    let end_ns = end.saturating_duration_since(run.measure_start).as_nanos() as u64;
    let name_of = |id: u16| {
        idents
            .get(id as usize)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    };
    let source_name = |i: usize| match (config.sources[i], observed[i]) {
        (Some(ip), _) | (None, Some(ip)) => ip.to_string(),
        (None, None) => "unbound".to_string(),
    };
    let mut connections = Vec::new();
    for ((sid, conn_id), c) in &conns {
        if c.rpcs == 0 {
            continue;
        }
        if let Some(r) = servers.get_mut(*sid as usize) {
            r.connections += 1;
        }
        sources[c.source as usize].connections += 1;
        connections.push(ConnectionReport {
            source: source_name(c.source as usize),
            local_port: c.local_port,
            server: name_of(*sid),
            server_conn_id: *conn_id,
            rpcs: c.rpcs,
        });
    }
    for (i, r) in servers.iter_mut().enumerate() {
        r.latency_us = LatencySummary::from_histogram(&server_hist[i]);
    }
    for (i, r) in sources.iter_mut().enumerate() {
        r.address = source_name(i);
        r.latency_us = LatencySummary::from_histogram(&src_hist[i]);
        r.longest_gap_ms = run.gaps[i].longest_gap_ms(end_ns);
    }
    let mut buf = Vec::new();
    let histogram_b64 = match V2Serializer::new().serialize(&overall, &mut buf) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(&buf),
        Err(_) => String::new(),
    };
    let interval_s = config.timeline_interval.as_secs_f64();
    let timeline = timeline
        .into_iter()
        .enumerate()
        .map(|(i, (okv, errv))| TimelineBucket {
            t_s: i as f64 * interval_s,
            ok: okv
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(j, n)| (name_of(j as u16), *n))
                .collect(),
            errors: errv
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(j, n)| (STATUS_NAMES[j].to_string(), *n))
                .collect(),
        })
        .collect();
    let duration_s = end_ns as f64 / 1e9;
    let total = ok + errors;
    let (mode, concurrency, target_rps) = match config.load {
        LoadModel::Closed { concurrency } => ("closed", concurrency as u64, None),
        LoadModel::Open { rps, max_in_flight } => ("open", max_in_flight as u64, Some(rps)),
    };
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
        errors,
        warmup_rpcs: warmup,
        duration_s,
        rps: if duration_s > 0.0 {
            total as f64 / duration_s
        } else {
            0.0
        },
        ok_rps: if duration_s > 0.0 {
            ok as f64 / duration_s
        } else {
            0.0
        },
        latency_us: LatencySummary::from_histogram(&overall),
        histogram_b64,
        servers,
        sources,
        connections,
        status_codes: status
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (STATUS_NAMES[i].to_string(), *n))
            .collect(),
        timeline_interval_s: interval_s,
        timeline,
        aborted_callers: aborted,
    }
}
