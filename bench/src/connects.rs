//! Connection-level measurements: why a connect failed, how long the ones
//! that succeeded took (with the SYN-retransmit buckets), how connections
//! ended, and when the paced initial connects start.
//!
//! Pure except for the shared counters in [`ConnectStats`]; the connect
//! itself is in [`crate::h2`].

use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::record::new_histogram;
use crate::report::{AfterIdle, ConnRecord, ConnectReport, KeepaliveReport, LatencySummary};

/// Most connections [`ConnectStats`] keeps a record of: 1000 client IPs
/// times 2 channels, with room for their reconnects after an idle gap.
pub const MAX_RECORDS: usize = 4096;

/// Default initial connect rate (connections per second). The lab's notes
/// measured a one-CPU UML guest accepting 650-800 new connections a second;
/// 600 stays below that, so a storm of a thousand sources does not overflow
/// the listen backlog and turn into SYN retransmits.
pub const DEFAULT_CONNECT_RATE: u32 = 600;

/// Why a connect failed, from the `io::Error` of the TCP connect (or the
/// connect timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectCause {
    /// No answer within the connect timeout (dropped SYNs).
    Timeout,
    /// RST in answer to the SYN: nothing listens there.
    Refused,
    /// Reset or aborted during the handshake.
    Reset,
    /// `EADDRNOTAVAIL`: the source address is not on this host, or its
    /// ephemeral ports are used up.
    AddrNotAvailable,
    /// Anything else (unreachable network, too many open files, ...).
    Other,
}

impl ConnectCause {
    /// Every cause, in report order.
    pub const ALL: [ConnectCause; 5] = [
        ConnectCause::Timeout,
        ConnectCause::Refused,
        ConnectCause::Reset,
        ConnectCause::AddrNotAvailable,
        ConnectCause::Other,
    ];

    /// Classifies the error of a connect (or of the bind before it).
    pub fn of_io(e: &io::Error) -> Self {
        // The raw errno first: EADDRNOTAVAIL has an ErrorKind only on newer
        // toolchains, and a kernel ETIMEDOUT is a timeout like ours.
        match e.raw_os_error() {
            Some(libc_errno::EADDRNOTAVAIL) => return ConnectCause::AddrNotAvailable,
            Some(libc_errno::ETIMEDOUT) => return ConnectCause::Timeout,
            _ => {}
        }
        match e.kind() {
            io::ErrorKind::ConnectionRefused => ConnectCause::Refused,
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                ConnectCause::Reset
            }
            io::ErrorKind::AddrNotAvailable => ConnectCause::AddrNotAvailable,
            io::ErrorKind::TimedOut => ConnectCause::Timeout,
            _ => ConnectCause::Other,
        }
    }

    /// The report key.
    pub fn name(self) -> &'static str {
        match self {
            ConnectCause::Timeout => "timeout",
            ConnectCause::Refused => "refused",
            ConnectCause::Reset => "reset",
            ConnectCause::AddrNotAvailable => "addr_not_available",
            ConnectCause::Other => "other",
        }
    }
}

/// The errno values the classification needs (Linux), named here rather
/// than pulling in `libc` for two constants.
mod libc_errno {
    pub const ETIMEDOUT: i32 = nix::errno::Errno::ETIMEDOUT as i32;
    pub const EADDRNOTAVAIL: i32 = nix::errno::Errno::EADDRNOTAVAIL as i32;
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnEnd {
    /// The server sent GOAWAY (max connection age, graceful shutdown).
    Goaway,
    /// Reset or closed by the peer without GOAWAY (RST or EOF).
    Reset,
    /// loadgen dropped it: churn, or the end of the run.
    Loadgen,
}

impl ConnEnd {
    /// Every end, in report order.
    pub const ALL: [ConnEnd; 3] = [ConnEnd::Goaway, ConnEnd::Reset, ConnEnd::Loadgen];

    /// The report key.
    pub fn name(self) -> &'static str {
        match self {
            ConnEnd::Goaway => "goaway",
            ConnEnd::Reset => "reset_by_peer",
            ConnEnd::Loadgen => "closed_by_loadgen",
        }
    }
}

/// When initial connect `i` should start, at `rate` connects per second
/// (0 = [`DEFAULT_CONNECT_RATE`]): evenly spaced, the first at once, as
/// h2load's `-r` spreads its connections.
pub fn connect_start(i: usize, rate: u32) -> Duration {
    let rate = if rate == 0 {
        DEFAULT_CONNECT_RATE
    } else {
        rate
    };
    Duration::from_secs_f64(i as f64 / f64::from(rate))
}

/// Connect latencies in [1.0 s, 1.1 s) and [3.0 s, 3.1 s): a first SYN
/// dropped is retransmitted after 1 s, a second one 2 s later, so these
/// buckets count connects that lost one or two SYNs. The bounds are the
/// histogram's bins that hold 1.0 s, 1.1 s, ... (about 0.1% wide there), so
/// a bin is counted whole or not at all.
pub fn syn_retry_counts(h: &Histogram<u64>) -> (u64, u64) {
    let bins = |from: u64, to: u64| h.lowest_equivalent(from)..h.lowest_equivalent(to);
    let (one, three) = (bins(1_000_000, 1_100_000), bins(3_000_000, 3_100_000));
    let mut counts = (0, 0);
    for v in h.iter_recorded() {
        let low = h.lowest_equivalent(v.value_iterated_to());
        let n = v.count_at_value();
        if one.contains(&low) {
            counts.0 += n;
        } else if three.contains(&low) {
            counts.1 += n;
        }
    }
    counts
}

/// The counters every connect of a run adds to.
pub struct ConnectStats {
    attempts: AtomicU64,
    failed: [AtomicU64; 5],
    ended: [AtomicU64; 3],
    latency: Mutex<Histogram<u64>>,
    /// Per-connection records, by serial; only when asked for
    /// ([`ConnectStats::keep_records`]).
    records: Mutex<Records>,
    keepalive: Mutex<Option<KeepaliveReport>>,
}

#[derive(Default)]
struct Records {
    on: bool,
    by_serial: BTreeMap<u64, ConnRecord>,
    dropped: u64,
}

impl Default for ConnectStats {
    fn default() -> Self {
        Self {
            attempts: AtomicU64::new(0),
            failed: Default::default(),
            ended: Default::default(),
            latency: Mutex::new(new_histogram()),
            records: Mutex::default(),
            keepalive: Mutex::default(),
        }
    }
}

/// A keepalive PING's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingOutcome {
    /// Sent (counted before its answer).
    Sent,
    /// Acknowledged.
    Acked,
    /// No acknowledgement within the timeout.
    TimedOut,
}

impl ConnectStats {
    /// Keeps a [`ConnRecord`] of every connection from now on (at most
    /// [`MAX_RECORDS`]).
    pub fn keep_records(&self) {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).on = true;
    }

    /// Counts keepalive PINGs sent every `interval`.
    pub fn keep_pings(&self, interval: Duration) {
        *self.keepalive.lock().unwrap_or_else(|e| e.into_inner()) = Some(KeepaliveReport {
            interval_s: interval.as_secs_f64(),
            ..KeepaliveReport::default()
        });
    }

    /// Connection `serial` opened from `local` after `latency`.
    pub fn opened(&self, serial: u64, local: Option<std::net::SocketAddr>, latency: Duration) {
        let mut r = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if !r.on {
            return;
        }
        if r.by_serial.len() >= MAX_RECORDS {
            r.dropped += 1;
            return;
        }
        r.by_serial.insert(
            serial,
            ConnRecord {
                serial,
                local: local.map(|a| a.to_string()).unwrap_or_default(),
                connect_us: latency.as_micros() as u64,
                after_idle: Vec::new(),
                ended: String::new(),
            },
        );
    }

    /// Connection `serial` ended as `end`.
    pub fn closed(&self, serial: u64, end: ConnEnd) {
        let mut r = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rec) = r.by_serial.get_mut(&serial) {
            rec.ended = end.name().to_string();
        }
    }

    /// The first RPC after an idle gap of the lane whose connection before
    /// the gap was `serial`.
    pub fn after_idle(&self, serial: u64, seen: AfterIdle) {
        let mut r = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rec) = r.by_serial.get_mut(&serial) {
            rec.after_idle.push(seen);
        }
    }

    /// One keepalive PING's fate.
    pub fn ping(&self, outcome: PingOutcome) {
        if let Some(k) = self
            .keepalive
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            match outcome {
                PingOutcome::Sent => k.pings += 1,
                PingOutcome::Acked => k.acks += 1,
                PingOutcome::TimedOut => k.timeouts += 1,
            }
        }
    }

    /// A connect that succeeded after `latency`.
    pub fn ok(&self, latency: Duration) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let us = (latency.as_micros() as u64).max(1);
        let mut h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        h.saturating_record(us);
    }

    /// A connect that failed.
    pub fn failed(&self, cause: ConnectCause) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        self.failed[cause as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A connection that ended.
    pub fn ended(&self, end: ConnEnd) {
        self.ended[end as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The report section, with the histogram encoded by `encode`.
    pub fn report(&self, encode: impl Fn(&Histogram<u64>) -> String) -> ConnectReport {
        let h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let (syn_retry_1s, syn_retry_3s) = syn_retry_counts(&h);
        let nonzero = |names: &[&'static str], counts: &[AtomicU64]| -> BTreeMap<String, u64> {
            names
                .iter()
                .zip(counts)
                .map(|(k, n)| (k.to_string(), n.load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect()
        };
        let causes: Vec<&str> = ConnectCause::ALL.iter().map(|c| c.name()).collect();
        let ends: Vec<&str> = ConnEnd::ALL.iter().map(|c| c.name()).collect();
        ConnectReport {
            attempts: self.attempts.load(Ordering::Relaxed),
            ok: h.len(),
            failed_by_cause: nonzero(&causes, &self.failed),
            latency_us: LatencySummary::from_histogram(&h),
            histogram_b64: encode(&h),
            syn_retry_1s,
            syn_retry_3s,
            ended_by: nonzero(&ends, &self.ended),
            records: self.records(),
            records_dropped: self
                .records
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .dropped,
            keepalive: self
                .keepalive
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// The records so far, a connection not yet ended marked `open`.
    fn records(&self) -> Vec<ConnRecord> {
        let r = self.records.lock().unwrap_or_else(|e| e.into_inner());
        r.by_serial
            .values()
            .map(|rec| {
                let mut rec = rec.clone();
                if rec.ended.is_empty() {
                    rec.ended = "open".into();
                }
                rec
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr, TcpListener};

    #[test]
    fn a_closed_loopback_port_is_refused() {
        // Bind then drop: the port is free and nothing listens on it.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        assert_eq!(ConnectCause::of_io(&e), ConnectCause::Refused);
    }

    #[test]
    fn binding_an_address_not_on_the_host_is_addr_not_available() {
        // TEST-NET-3 is never configured on a host.
        let e =
            TcpListener::bind(SocketAddr::from((Ipv4Addr::new(203, 0, 113, 77), 0))).unwrap_err();
        assert_eq!(ConnectCause::of_io(&e), ConnectCause::AddrNotAvailable);
    }

    #[test]
    fn other_errors_and_timeouts_are_told_apart() {
        let t = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(ConnectCause::of_io(&t), ConnectCause::Timeout);
        let r = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(ConnectCause::of_io(&r), ConnectCause::Reset);
        let emfile = io::Error::from_raw_os_error(nix::errno::Errno::EMFILE as i32);
        assert_eq!(ConnectCause::of_io(&emfile), ConnectCause::Other);
    }

    #[test]
    fn syn_retry_buckets_count_only_their_tenth_of_a_second() {
        let mut h = new_histogram();
        for us in [500, 999_000, 1_000_000, 1_050_000, 1_099_000, 1_150_000] {
            h.record(us).unwrap();
        }
        for us in [2_990_000, 3_000_100, 3_090_000, 3_200_000] {
            h.record(us).unwrap();
        }
        assert_eq!(syn_retry_counts(&h), (3, 2));
    }

    #[test]
    fn connects_are_spaced_evenly_at_the_rate() {
        assert_eq!(connect_start(0, 100), Duration::ZERO);
        assert_eq!(connect_start(1, 100), Duration::from_millis(10));
        assert_eq!(connect_start(250, 100), Duration::from_millis(2500));
        // 0 means the default rate.
        assert_eq!(
            connect_start(600, 0),
            connect_start(DEFAULT_CONNECT_RATE as usize, DEFAULT_CONNECT_RATE)
        );
        assert_eq!(connect_start(600, 0), Duration::from_secs(1));
    }

    #[test]
    fn records_follow_a_connection_from_connect_to_end_and_are_bounded() {
        let s = ConnectStats::default();
        s.opened(1, None, Duration::from_millis(1));
        assert!(
            s.report(|_| String::new()).records.is_empty(),
            "off by default"
        );
        s.keep_records();
        let local = "10.0.1.1:40000".parse().ok();
        s.opened(2, local, Duration::from_millis(3));
        s.opened(3, None, Duration::from_millis(4));
        s.after_idle(
            2,
            AfterIdle {
                gap: 1,
                outcome: "UNAVAILABLE".into(),
                reconnected: false,
                used_serial: 2,
                ..AfterIdle::default()
            },
        );
        s.closed(2, ConnEnd::Reset);
        let r = s.report(|_| String::new());
        assert_eq!(r.records.len(), 2);
        assert_eq!(r.records[0].local, "10.0.1.1:40000");
        assert_eq!(r.records[0].connect_us, 3000);
        assert_eq!(r.records[0].ended, "reset_by_peer");
        assert_eq!(r.records[0].after_idle[0].outcome, "UNAVAILABLE");
        assert_eq!(r.records[1].ended, "open");
        for serial in 4..(MAX_RECORDS as u64 + 10) {
            s.opened(serial, None, Duration::from_millis(1));
        }
        let r = s.report(|_| String::new());
        assert_eq!(r.records.len(), MAX_RECORDS);
        assert_eq!(r.records_dropped, 8);
    }

    #[test]
    fn pings_are_counted_only_with_keepalive() {
        let s = ConnectStats::default();
        s.ping(PingOutcome::Sent);
        assert_eq!(s.report(|_| String::new()).keepalive, None);
        s.keep_pings(Duration::from_secs(300));
        s.ping(PingOutcome::Sent);
        s.ping(PingOutcome::Sent);
        s.ping(PingOutcome::Acked);
        s.ping(PingOutcome::TimedOut);
        let k = s.report(|_| String::new()).keepalive.unwrap();
        assert_eq!(
            (k.interval_s, k.pings, k.acks, k.timeouts),
            (300.0, 2, 1, 1)
        );
    }

    #[test]
    fn the_report_counts_attempts_causes_and_ends() {
        let s = ConnectStats::default();
        s.ok(Duration::from_millis(2));
        s.ok(Duration::from_millis(1030));
        s.failed(ConnectCause::Refused);
        s.failed(ConnectCause::Refused);
        s.ended(ConnEnd::Goaway);
        let r = s.report(|_| String::new());
        assert_eq!((r.attempts, r.ok), (4, 2));
        assert_eq!(r.failed_by_cause.get("refused"), Some(&2));
        assert_eq!(r.failed_by_cause.len(), 1);
        assert_eq!((r.syn_retry_1s, r.syn_retry_3s), (1, 0));
        assert_eq!(r.ended_by.get("goaway"), Some(&1));
    }
}
