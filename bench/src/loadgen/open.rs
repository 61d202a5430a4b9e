//! The open loop: RPCs start at fixed intended times whatever the server
//! does, and latency counts from the intended time (coordinated-omission
//! correction, as wrk2).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::time::Instant;

use super::lanes::{ConnTag, Run, deadline_exceeded};
use crate::h2::{CallError, H2Conn};
use crate::record::NameCache;

/// One unary call on a connection of its own (open loop), with the run's
/// deadline.
async fn call(mut h2: H2Conn, frame: Bytes, timeout: Duration) -> Result<Bytes, tonic::Status> {
    match tokio::time::timeout(timeout, h2.unary(frame)).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => {
            if matches!(e, CallError::NotSent(_)) {
                h2.mark_closed();
            }
            Err(e.into_status())
        }
        Err(_) => Err(deadline_exceeded()),
    }
}

pub(super) async fn open_caller(
    run: Arc<Run>,
    lane: usize,
    shard: usize,
    period: Duration,
    cap: usize,
    offset: Duration,
) {
    run.callers_left.fetch_add(1, Ordering::Relaxed);
    let mut conn = run.lane_conn(lane);
    let mut names = NameCache::default();
    let mut in_flight = FuturesUnordered::new();
    let mut next = run.t0 + offset;
    let mut issuing = true;
    loop {
        if issuing && !run.admit(next) {
            issuing = false;
        }
        if !issuing && in_flight.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            Some((intended, tag, result)) = in_flight.next(), if !in_flight.is_empty() => {
                run.record(shard, lane, intended, Instant::now(), tag, result, &mut names);
            }
            _ = tokio::time::sleep_until(next), if issuing && in_flight.len() < cap => {
                let intended = next;
                next += period;
                let h2 = run.client(&mut conn, Instant::now()).await.map(|g| g.clone());
                let (frame, timeout) = (run.frame.clone(), run.timeout);
                let tag = h2.as_ref().ok().map(ConnTag::of);
                in_flight.push(async move {
                    let result = match h2 {
                        Ok(h2) => call(h2, frame, timeout).await,
                        Err(status) => Err(status),
                    };
                    (intended, tag, result)
                });
            }
        }
    }
    // The run is over: what closes this connection now is loadgen (after
    // an earlier round, it stays open through the idle gap).
    if run.last_round
        && let Some(c) = &conn.conn
    {
        c.retire();
    }
    run.callers_left.fetch_sub(1, Ordering::Relaxed);
}
