//! The load generator's own CPU time and peak memory over the measured
//! phase, from `getrusage(RUSAGE_SELF)`: every thread of the process, which
//! is exact where sampling `/proc/<pid>/stat` from outside cannot be (the
//! process exits right after the phase ends).

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeVal;
use tokio::time::Instant;

use crate::report::UsageReport;

/// One reading of the process's CPU time.
#[derive(Debug, Clone, Copy)]
pub(super) struct UsageMark {
    user_s: f64,
    sys_s: f64,
    at: Instant,
}

/// Reads the process's CPU time now; `None` where `getrusage` fails (it
/// does not on Linux, but a report without the figure beats no report).
pub(super) fn mark() -> Option<UsageMark> {
    let u = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    Some(UsageMark {
        user_s: secs(u.user_time()),
        sys_s: secs(u.system_time()),
        at: Instant::now(),
    })
}

/// The usage between two marks, with the peak resident set so far (the
/// kernel keeps only the peak of the whole life, not per phase).
pub(super) fn between(start: UsageMark, end: UsageMark) -> UsageReport {
    let max_rss_kib = getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| u.max_rss().max(0) as u64)
        .unwrap_or(0);
    usage_report(start, end, max_rss_kib)
}

fn usage_report(start: UsageMark, end: UsageMark, max_rss_kib: u64) -> UsageReport {
    let user_s = (end.user_s - start.user_s).max(0.0);
    let sys_s = (end.sys_s - start.sys_s).max(0.0);
    let wall_s = end.at.saturating_duration_since(start.at).as_secs_f64();
    UsageReport {
        user_s,
        sys_s,
        wall_s,
        cpu_share: if wall_s > 0.0 {
            (user_s + sys_s) / wall_s
        } else {
            0.0
        },
        max_rss_kib,
    }
}

fn secs(t: TimeVal) -> f64 {
    t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_usage_is_the_difference_of_two_marks_over_their_wall_time() {
        let at = Instant::now();
        let start = UsageMark {
            user_s: 1.0,
            sys_s: 0.5,
            at,
        };
        let end = UsageMark {
            user_s: 2.5,
            sys_s: 1.0,
            at: at + Duration::from_secs(2),
        };
        let r = usage_report(start, end, 4096);
        assert_eq!((r.user_s, r.sys_s, r.wall_s), (1.5, 0.5, 2.0));
        assert_eq!(r.cpu_share, 1.0);
        assert_eq!(r.max_rss_kib, 4096);
    }

    #[test]
    fn a_busy_process_reads_more_cpu_time_later() {
        let a = mark().unwrap();
        let mut x = 0u64;
        while getrusage(UsageWho::RUSAGE_SELF)
            .map(|u| secs(u.user_time()) + secs(u.system_time()) <= a.user_s + a.sys_s)
            .unwrap()
        {
            x = x.wrapping_add(1);
        }
        let r = between(a, mark().unwrap());
        assert!(r.user_s + r.sys_s > 0.0, "{r:?} after {x} spins");
        assert!(r.max_rss_kib > 0);
    }
}
