//! The state every caller of a run shares ([`Run`]) and its connection
//! lanes: one HTTP/2 connection per source address and channel, replaced on
//! churn or after GOAWAY, and the recording of each finished RPC.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::config::Churn;
use crate::connects::ConnectStats;
use crate::h2::{CallError, CallHead, H2Conn};
use crate::method::ResolvedCall;
use crate::record::{ConnSeen, GapTracker, NameCache, ServerTable, Shard, UNATTRIBUTED};
use crate::report::AfterIdle;
use crate::wire::ReplyView;

/// One channel slot: a source address and its current connection.
pub(super) struct Lane {
    pub(super) source_idx: usize,
    pub(super) source: Option<IpAddr>,
    /// Current connection; None while the lane has none (its connect
    /// failed): the next RPC on it connects again.
    pub(super) current: Mutex<Option<H2Conn>>,
    /// Bumped whenever `current` is replaced.
    pub(super) generation: AtomicU64,
    /// Serialises reconnects, so callers sharing a lane open one connection.
    pub(super) connecting: tokio::sync::Mutex<()>,
    pub(super) rpcs: AtomicU64,
    pub(super) last_swap_ns: AtomicU64,
}

/// State shared by all callers of a run.
pub(super) struct Run {
    pub(super) target: SocketAddr,
    pub(super) timeout: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) churn: Churn,
    /// The request as a complete gRPC frame, shared by every call.
    pub(super) frame: Bytes,
    /// The method's path and the extra headers of every call.
    pub(super) head: CallHead,
    /// Generic mode: the resolved method (replies carry no identity).
    pub(super) generic: Option<ResolvedCall>,
    /// Generic mode: the first successful reply, decoded for the report.
    pub(super) first_reply: OnceLock<Bytes>,
    pub(super) t0: Instant,
    pub(super) measure_start: Instant,
    pub(super) measure_end: Instant,
    pub(super) requests: Option<u64>,
    pub(super) tickets: AtomicU64,
    pub(super) stop: AtomicBool,
    pub(super) timeline_ns: u64,
    pub(super) servers: ServerTable,
    pub(super) shards: Vec<Mutex<Shard>>,
    pub(super) gaps: Vec<GapTracker>,
    /// Shared by every round of the process (`--rounds`).
    pub(super) lanes: Arc<Vec<Lane>>,
    /// This round, 0 for the first.
    pub(super) round: u32,
    /// Whether this is the last round: only then do callers retire their
    /// connections at the end (before, they must stay open through the gap).
    pub(super) last_round: bool,
    /// Rounds after an idle gap: per lane, the serial of the connection it
    /// had through the gap, and whether its first RPC was recorded.
    pub(super) before_gap: Vec<(Option<u64>, AtomicBool)>,
    pub(super) channels_opened: AtomicU64,
    /// Every connect attempt and connection end.
    pub(super) connects: Arc<ConnectStats>,
    /// Callers started and not yet finished (those left at the hard stop
    /// are the aborted ones).
    pub(super) callers_left: AtomicU64,
}

/// Per-caller view of a lane's connection.
pub(super) struct LaneConn {
    pub(super) lane: usize,
    pub(super) generation: u64,
    pub(super) conn: Option<H2Conn>,
}

impl Run {
    /// Whether an RPC may start at `at` (its intended time).
    pub(super) fn admit(&self, at: Instant) -> bool {
        if at >= self.measure_end || self.stop.load(Ordering::Relaxed) {
            return false;
        }
        if at >= self.measure_start
            && let Some(n) = self.requests
            && self.tickets.fetch_add(1, Ordering::Relaxed) >= n
        {
            self.stop.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// A new connection (counted in `connects`, with its cause when it
    /// fails); the RPC that needed it fails UNAVAILABLE when it cannot be had.
    pub(super) async fn connect(&self, source: Option<IpAddr>) -> Result<H2Conn, tonic::Status> {
        let conn = crate::h2::connect(
            source,
            self.target,
            &self.head,
            self.connect_timeout,
            &self.connects,
        )
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        self.channels_opened.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }

    /// Replaces the lane's connection unless another caller already did
    /// since `seen` (the generation the caller was using). `churn`: loadgen
    /// drops the old one on purpose (else it is closed or missing).
    pub(super) async fn reconnect(
        &self,
        lane: &Lane,
        seen: u64,
        churn: bool,
    ) -> Result<(), tonic::Status> {
        let _guard = lane.connecting.lock().await;
        if lane.generation.load(Ordering::Acquire) != seen {
            return Ok(());
        }
        let fresh = self.connect(lane.source).await?;
        let old = lane
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(fresh);
        if churn && let Some(old) = old {
            old.retire();
        }
        lane.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// The client to use for the next RPC: applies churn and reconnects
    /// after the server closed the connection (GOAWAY).
    pub(super) async fn client<'a>(
        &self,
        conn: &'a mut LaneConn,
        now: Instant,
    ) -> Result<&'a mut H2Conn, tonic::Status> {
        let lane = &self.lanes[conn.lane];
        match self.churn {
            Churn::None => {}
            Churn::PerRpc => {
                let fresh = self.connect(lane.source).await?;
                if let Some(old) = conn.conn.replace(fresh) {
                    old.retire();
                }
                return Ok(conn.conn.as_mut().expect("just set"));
            }
            Churn::EveryRpcs(n) => {
                let c = lane.rpcs.fetch_add(1, Ordering::Relaxed);
                if c > 0 && c.is_multiple_of(n) {
                    self.reconnect(lane, lane.generation.load(Ordering::Acquire), true)
                        .await?;
                }
            }
            Churn::Every(d) => {
                let now_ns = now.saturating_duration_since(self.t0).as_nanos() as u64;
                let last = lane.last_swap_ns.load(Ordering::Relaxed);
                if now_ns.saturating_sub(last) >= d.as_nanos() as u64
                    && lane
                        .last_swap_ns
                        .compare_exchange(last, now_ns, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    self.reconnect(lane, lane.generation.load(Ordering::Acquire), true)
                        .await?;
                }
            }
        }
        // A lane whose connect failed has none: it tries again here, at
        // its next RPC.
        if conn.conn.as_ref().is_none_or(H2Conn::is_closed) {
            self.reconnect(lane, conn.generation, false).await?;
        }
        let generation = lane.generation.load(Ordering::Acquire);
        if generation != conn.generation || conn.conn.is_none() {
            conn.conn = lane
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            conn.generation = generation;
        }
        conn.conn
            .as_mut()
            .ok_or_else(|| tonic::Status::unavailable("no connection"))
    }

    /// One RPC on the caller's lane. If the request never left (the
    /// connection got a GOAWAY or died since the last call), reconnects and
    /// retries once: nothing reached the server, so counts stay exact.
    pub(super) async fn rpc(
        &self,
        conn: &mut LaneConn,
        now: Instant,
    ) -> Result<Bytes, tonic::Status> {
        let mut retried = false;
        loop {
            let h2 = self.client(conn, now).await?;
            match h2.unary(self.frame.clone()).await {
                Ok(reply) => return Ok(reply),
                Err(CallError::NotSent(_)) if !retried => {
                    h2.mark_closed();
                    retried = true;
                }
                Err(e) => return Err(e.into_status()),
            }
        }
    }

    pub(super) fn lane_conn(&self, lane: usize) -> LaneConn {
        let l = &self.lanes[lane];
        let generation = l.generation.load(Ordering::Acquire);
        let conn = l.current.lock().unwrap_or_else(|e| e.into_inner()).clone();
        LaneConn {
            lane,
            generation,
            conn,
        }
    }

    /// Records one finished RPC that was intended to start at `intended`,
    /// sent on connection `conn` (None when no connection could be had).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record(
        &self,
        shard: usize,
        lane: usize,
        intended: Instant,
        end: Instant,
        conn: Option<ConnTag>,
        result: Result<Bytes, tonic::Status>,
        names: &mut NameCache,
    ) {
        self.note_after_idle(lane, conn, &result);
        let source = self.lanes[lane].source_idx;
        let measured = intended >= self.measure_start;
        let since = end.saturating_duration_since(self.measure_start).as_nanos() as u64;
        let bucket = measured.then_some((since / self.timeline_ns) as usize);
        let latency_us = end.saturating_duration_since(intended).as_micros() as u64;
        if self.generic.is_some() {
            return self.record_generic(shard, source, conn, result, latency_us, bucket, since);
        }
        match result {
            Ok(bytes) => match ReplyView::parse(&bytes) {
                Ok(view) => {
                    let server = names.id_of(&self.servers, &view);
                    if measured {
                        self.gaps[source].success(since);
                    }
                    let mut s = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
                    s.record_ok(source, server, &view, latency_us, bucket);
                }
                Err(_) => {
                    let mut s = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
                    s.record_err(source, tonic::Code::Internal as usize, None, bucket);
                }
            },
            Err(status) => {
                let server = status
                    .metadata()
                    .get("x-server-name")
                    .map(|v| self.servers.id_of(v.as_bytes(), b""));
                let mut s = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
                s.record_err(source, status.code() as usize, server, bucket);
            }
        }
    }
}

impl Run {
    /// Records the first RPC to finish on `lane` after an idle gap, on the
    /// connection the lane had through the gap.
    fn note_after_idle(
        &self,
        lane: usize,
        conn: Option<ConnTag>,
        result: &Result<Bytes, tonic::Status>,
    ) {
        let Some((Some(before), done)) = self.before_gap.get(lane) else {
            return;
        };
        if done.swap(true, Ordering::Relaxed) {
            return;
        }
        let used = conn.map_or(0, |c| c.serial);
        let mut seen = AfterIdle {
            gap: self.round,
            reconnected: used != *before,
            used_serial: used,
            ..AfterIdle::default()
        };
        match result {
            Ok(bytes) => {
                seen.outcome = "ok".into();
                if let Ok(view) = ReplyView::parse(bytes) {
                    seen.server = String::from_utf8_lossy(view.server_name).into_owned();
                }
            }
            Err(status) => {
                seen.outcome = code_name(status.code());
                seen.detail = status.message().chars().take(160).collect();
                if let Some(v) = status.metadata().get("x-server-name") {
                    seen.server = String::from_utf8_lossy(v.as_bytes()).into_owned();
                }
            }
        }
        self.connects.after_idle(*before, seen);
    }

    /// Generic mode: a reply is a success when its status is OK (its bytes
    /// are not parsed on the hot path; the first one is kept for the
    /// report), and every failure is counted under its status code.
    #[allow(clippy::too_many_arguments)]
    fn record_generic(
        &self,
        shard: usize,
        source: usize,
        conn: Option<ConnTag>,
        result: Result<Bytes, tonic::Status>,
        latency_us: u64,
        bucket: Option<usize>,
        since: u64,
    ) {
        match (result, conn) {
            (Ok(reply), Some(conn)) => {
                if self.first_reply.get().is_none() {
                    let _ = self.first_reply.set(reply);
                }
                if bucket.is_some() {
                    self.gaps[source].success(since);
                }
                let seen = ConnSeen {
                    id: conn.serial,
                    local_port: conn.local_port,
                    observed_ip: None,
                };
                let mut s = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
                s.record_ok_on(source, UNATTRIBUTED, seen, latency_us, bucket);
            }
            (Ok(_), None) => {
                let mut s = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
                s.record_err(source, tonic::Code::Internal as usize, None, bucket);
            }
            (Err(status), _) => {
                let mut s = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
                s.record_err(source, status.code() as usize, None, bucket);
            }
        }
    }
}

/// Which connection an RPC went over, as the client knows it.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnTag {
    serial: u64,
    local_port: u16,
}

impl ConnTag {
    pub(super) fn of(conn: &H2Conn) -> Self {
        Self {
            serial: conn.serial(),
            local_port: conn.local_addr().map_or(0, |a| a.port()),
        }
    }

    /// The tag of a caller's connection, if it has one.
    pub(super) fn of_lane(conn: &LaneConn) -> Option<Self> {
        conn.conn.as_ref().map(Self::of)
    }
}

/// A status code's report name (`unavailable`, `deadline_exceeded`, ...),
/// as in the report's `status_codes`.
fn code_name(code: tonic::Code) -> String {
    crate::report::STATUS_NAMES
        .get(code as usize)
        .map_or_else(|| format!("{code:?}"), |n| (*n).to_string())
}

pub(super) fn deadline_exceeded() -> tonic::Status {
    tonic::Status::deadline_exceeded("loadgen deadline exceeded")
}
