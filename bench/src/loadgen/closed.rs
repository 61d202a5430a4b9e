//! The closed loop: each caller sends its next RPC when the previous one
//! completes, latency measured from the send.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::time::Instant;

use super::lanes::{ConnTag, Run, deadline_exceeded};
use crate::deadline::Deadline;
use crate::h2::Driver;
use crate::record::NameCache;

/// The closed-loop callers of one lane (or their share for one runtime
/// thread), polled in one task together with the lane's first connection.
/// Replies read by the connection wake callers of the same task; their next
/// requests are queued and the connection is polled again, so they are
/// written in the same turn instead of after every other lane's callers
/// have run. Keeps client and server working in parallel (not in lockstep)
/// and saves a runtime task wake-up per call.
pub(super) async fn closed_lane(
    run: Arc<Run>,
    lane: usize,
    shards: Vec<usize>,
    mut driver: Option<Driver>,
) {
    let mut callers: FuturesUnordered<_> = shards
        .into_iter()
        .map(|shard| closed_caller(run.clone(), lane, shard))
        .collect();
    std::future::poll_fn(|cx| {
        poll_driver(&mut driver, cx);
        loop {
            match callers.poll_next_unpin(cx) {
                Poll::Ready(Some(())) => {}
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => break,
            }
        }
        poll_driver(&mut driver, cx);
        Poll::Pending
    })
    .await;
    // Let the connection finish cleanly on its own.
    if let Some(driver) = driver {
        tokio::spawn(driver);
    }
}

fn poll_driver(driver: &mut Option<Driver>, cx: &mut Context<'_>) {
    if let Some(d) = driver
        && d.as_mut().poll(cx).is_ready()
    {
        *driver = None;
    }
}

async fn closed_caller(run: Arc<Run>, lane: usize, shard: usize) {
    run.callers_left.fetch_add(1, Ordering::Relaxed);
    let mut conn = run.lane_conn(lane);
    let mut names = NameCache::default();
    let mut deadline = Deadline::new(run.timeout);
    loop {
        let start = Instant::now();
        if !run.admit(start) {
            break;
        }
        let result = deadline
            .run(start + run.timeout, run.rpc(&mut conn, start))
            .await
            .unwrap_or_else(|| Err(deadline_exceeded()));
        let end = Instant::now();
        let tag = ConnTag::of_lane(&conn);
        run.record(shard, lane, start, end, tag, result, &mut names);
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
