//! The `rebalance` section: how fast a scale-out evens out, from the
//! report's timeline (successful RPCs per server per bucket).
//!
//! - **Time to fairness**: the end of the first 1 s window, counted from the
//!   add, that starts [`HOLD_WINDOWS`] windows in a row whose per-server RPC
//!   counts have max/mean below [`FAIR_RATIO`]. One fair window alone is not
//!   enough: with GOAWAY rotation the counts of a window move by a whole
//!   connection, and a run of windows says the spread stays down.
//! - **Hot spots**: the same max/mean over 100 ms windows against 5 s
//!   windows, from fairness on (from the add when it never came): the 90th
//!   percentile of the short windows over the median of the long ones. A
//!   5 s dashboard averages away what a 100 ms window shows
//!   (grpc-java#10948).
//!
//! Pure: no kernel, no clock.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use statrs::statistics::{Data, Median, OrderStatistics};

use super::model::Timeline;

/// max/mean below this over a window is fair (the 1.2).
pub const FAIR_RATIO: f64 = 1.2;
/// The window time to fairness is judged over, seconds.
pub const FAIR_WINDOW_S: f64 = 1.0;
/// Fair windows in a row that count as fairness reached.
pub const HOLD_WINDOWS: usize = 3;
/// The short window of the hot-spot figure, seconds.
pub const SHORT_WINDOW_S: f64 = 0.1;
/// The long (dashboard) window of the hot-spot figure, seconds.
pub const LONG_WINDOW_S: f64 = 5.0;

/// How a scale-out evened out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rebalance {
    /// When the last standby server was added, on the report's time axis.
    pub added_at_s: f64,
    /// The servers the spread is taken over (every server of the plan).
    pub servers: Vec<String>,
    /// [`FAIR_RATIO`].
    pub fair_ratio: f64,
    /// [`HOLD_WINDOWS`].
    pub hold_windows: u32,
    /// Seconds from the add to the end of the first window of the first
    /// held run of fair 1 s windows; `None`: never within the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_fairness_s: Option<f64>,
    /// 1 s windows from there on whose max/mean went back to [`FAIR_RATIO`]
    /// or above.
    pub unfair_windows_after: u32,
    /// The largest max/mean of those later 1 s windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_ratio_after: Option<f64>,
    /// Every 1 s window from the add: `[start s after the add, max/mean]`
    /// (windows without a successful RPC are left out).
    pub windows_1s: Vec<[f64; 2]>,
    /// max/mean over 100 ms windows, from fairness on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short: Option<Spread>,
    /// max/mean over 5 s windows, from fairness on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long: Option<Spread>,
}

impl Rebalance {
    /// The 90th percentile of the short-window spread over the median
    /// long-window spread: how much hotter a server runs in one 100 ms
    /// window of ten than a 5 s average shows. (The median of the short
    /// windows is the wrong figure: a hot spot is the tail.)
    pub fn hot_spot_ratio(&self) -> Option<f64> {
        match (&self.short, &self.long) {
            (Some(s), Some(l)) if l.median > 0.0 => Some(s.p90 / l.median),
            _ => None,
        }
    }
}

/// max/mean of the per-server RPC counts over windows of one width.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The window width, seconds.
    pub window_s: f64,
    /// Windows that had a successful RPC.
    pub windows: u32,
    /// Median max/mean.
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
    /// The largest.
    pub max: f64,
}

/// One window: when it starts (seconds after the add) and its max/mean,
/// `None` when no RPC succeeded in it.
type Window = (f64, Option<f64>);

/// The rebalance figures of `timeline` for a scale-out at `added_at_s`
/// over `servers`; `None` when the timeline has no bucket after the add.
pub fn measure(timeline: &Timeline, added_at_s: f64, servers: &[String]) -> Option<Rebalance> {
    let bucket = timeline.bucket_s;
    if bucket <= 0.0 || servers.is_empty() {
        return None;
    }
    let all: Vec<Bucket> = timeline.buckets.iter().map(|b| (b.t_s, &b.ok)).collect();
    let after = from(&all, added_at_s, bucket);
    if after.is_empty() {
        return None;
    }
    let windows_1s = windows(&after, bucket, FAIR_WINDOW_S, servers);
    let held = (0..windows_1s.len()).find(|&i| {
        i + HOLD_WINDOWS <= windows_1s.len()
            && windows_1s[i..i + HOLD_WINDOWS]
                .iter()
                .all(|(_, r)| r.is_some_and(|r| r < FAIR_RATIO))
    });
    let time_to_fairness_s = held.map(|i| windows_1s[i].0 + FAIR_WINDOW_S);
    let later: Vec<f64> = held
        .map(|i| {
            windows_1s[i + HOLD_WINDOWS..]
                .iter()
                .filter_map(|(_, r)| *r)
                .filter(|r| *r >= FAIR_RATIO)
                .collect()
        })
        .unwrap_or_default();
    // The hot-spot figures start where fairness did (or at the add).
    let from_s = held.map_or(0.0, |i| windows_1s[i].0);
    let settled = from(&after, from_s, bucket);
    let spread_of = |width: f64| spread(&windows(&settled, bucket, width, servers), width);
    Some(Rebalance {
        added_at_s,
        servers: servers.to_vec(),
        fair_ratio: FAIR_RATIO,
        hold_windows: HOLD_WINDOWS as u32,
        time_to_fairness_s,
        unfair_windows_after: later.len() as u32,
        worst_ratio_after: later.iter().copied().reduce(f64::max),
        windows_1s: windows_1s
            .iter()
            .filter_map(|(t, r)| r.map(|r| [*t, r]))
            .collect(),
        short: spread_of(SHORT_WINDOW_S),
        long: spread_of(LONG_WINDOW_S),
    })
}

/// One timeline bucket: when it starts and its successes per server.
type Bucket<'a> = (f64, &'a BTreeMap<String, u64>);

/// The buckets that start at `start_s` or later (within a hundredth of a
/// bucket, for float times), their times counted from `start_s`.
fn from<'a>(buckets: &[Bucket<'a>], start_s: f64, bucket: f64) -> Vec<Bucket<'a>> {
    buckets
        .iter()
        .filter(|(t, _)| *t + bucket * 0.01 >= start_s)
        .map(|(t, ok)| (*t - start_s, *ok))
        .collect()
}

/// Whole windows of `width` seconds over `buckets` (each `bucket` wide,
/// times from the first window's start); a partial last window is left out.
fn windows(buckets: &[Bucket], bucket: f64, width: f64, servers: &[String]) -> Vec<Window> {
    let per = ((width / bucket).round() as usize).max(1);
    buckets
        .chunks_exact(per)
        .map(|chunk| {
            let counts: Vec<u64> = servers
                .iter()
                .map(|s| {
                    chunk
                        .iter()
                        .map(|(_, ok)| ok.get(s).copied().unwrap_or(0))
                        .sum()
                })
                .collect();
            (chunk[0].0, max_over_mean(&counts))
        })
        .collect()
}

/// max/mean of `counts` (`None` when all are 0).
fn max_over_mean(counts: &[u64]) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    let max = counts.iter().copied().max()?;
    (total > 0).then(|| max as f64 * counts.len() as f64 / total as f64)
}

fn spread(windows: &[Window], width: f64) -> Option<Spread> {
    let ratios: Vec<f64> = windows.iter().filter_map(|(_, r)| *r).collect();
    let max = ratios.iter().copied().reduce(f64::max)?;
    let count = ratios.len() as u32;
    let mut data = Data::new(ratios);
    Some(Spread {
        window_s: width,
        windows: count,
        median: data.median(),
        p90: data.percentile(90),
        max,
    })
}

/// The `## Scale-out` section of report.md.
pub fn markdown_section(md: &mut String, r: &Rebalance) {
    md.push_str("## Scale-out\n\n");
    let _ = writeln!(
        md,
        "The last standby server joined at {:.2} s. Fairness: max/mean of the RPCs per server ({}) below {} in {} 1 s windows in a row.\n",
        r.added_at_s,
        r.servers.join(", "),
        r.fair_ratio,
        r.hold_windows
    );
    match r.time_to_fairness_s {
        Some(t) => {
            let _ = writeln!(
                md,
                "- time to fairness: **{t:.1} s** after the add; {} later 1 s window(s) went back above {}{}",
                r.unfair_windows_after,
                r.fair_ratio,
                r.worst_ratio_after
                    .map(|w| format!(" (worst {w:.2})"))
                    .unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(md, "- time to fairness: **never** within the run");
        }
    }
    for s in [&r.short, &r.long].into_iter().flatten() {
        let _ = writeln!(
            md,
            "- over {} ms windows: max/mean median {:.2}, p90 {:.2}, max {:.2} ({} windows)",
            (s.window_s * 1000.0).round(),
            s.median,
            s.p90,
            s.max,
            s.windows
        );
    }
    if let Some(h) = r.hot_spot_ratio() {
        let _ = writeln!(md, "- hot-spot ratio (100 ms p90 over 5 s median): {h:.2}");
    }
    let ratios: Vec<String> = r
        .windows_1s
        .iter()
        .map(|[t, v]| format!("{t:.0}s {v:.2}"))
        .collect();
    let _ = writeln!(md, "\n1 s windows after the add: {}\n", ratios.join(" · "));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::TimelineBucket;

    /// A timeline of 100 ms buckets; `rate(t)` gives each server's RPCs in
    /// the bucket starting at `t`.
    fn timeline(seconds: f64, rate: impl Fn(f64) -> [u64; 4]) -> Timeline {
        let n = (seconds / 0.1).round() as usize;
        Timeline {
            bucket_s: 0.1,
            buckets: (0..n)
                .map(|i| {
                    let t = i as f64 * 0.1;
                    let ok = names()
                        .into_iter()
                        .zip(rate(t))
                        .filter(|(_, c)| *c > 0)
                        .collect();
                    TimelineBucket {
                        t_s: t,
                        ok,
                        errors: 0,
                    }
                })
                .collect(),
        }
    }

    fn names() -> Vec<String> {
        ["rs1", "rs2", "rs3", "rs4"].map(String::from).to_vec()
    }

    #[test]
    fn servers_that_never_get_traffic_are_never_fair() {
        let t = timeline(20.0, |_| [50, 50, 0, 0]);
        let r = measure(&t, 5.0, &names()).unwrap();
        assert_eq!(r.time_to_fairness_s, None);
        assert_eq!(r.windows_1s.len(), 15);
        assert!(r.windows_1s.iter().all(|[_, v]| (*v - 2.0).abs() < 1e-9));
        // Spread taken from the add when fairness never came.
        assert!((r.long.as_ref().unwrap().median - 2.0).abs() < 1e-9);
    }

    #[test]
    fn fairness_is_the_first_held_run_of_fair_windows() {
        // Even from 8 s on, with one lone fair window at 6 s before it.
        let t = timeline(20.0, |t| {
            if t >= 8.0 || (6.0..7.0).contains(&t) {
                [25, 25, 25, 25]
            } else {
                [50, 50, 0, 0]
            }
        });
        let r = measure(&t, 5.0, &names()).unwrap();
        assert_eq!(r.time_to_fairness_s, Some(4.0));
        assert_eq!(r.unfair_windows_after, 0);
        assert_eq!(r.hot_spot_ratio(), Some(1.0));
        assert_eq!(r.short.as_ref().unwrap().p90, 1.0);
    }

    #[test]
    fn a_rotation_hot_spot_shows_in_short_windows_only() {
        // Every 100 ms one server takes double: even over any whole second.
        let t = timeline(20.0, |t| {
            let hot = ((t * 10.0).round() as usize) % 4;
            let mut c = [20; 4];
            c[hot] = 40;
            c
        });
        let r = measure(&t, 2.0, &names()).unwrap();
        assert_eq!(r.time_to_fairness_s, Some(1.0));
        let short = r.short.as_ref().unwrap();
        let long = r.long.as_ref().unwrap();
        assert!((short.median - 1.6).abs() < 1e-9, "{short:?}");
        // 5 s = 50 buckets: two servers were hot 13 times, two 12 times.
        assert!((long.median - 1.008).abs() < 1e-9, "{long:?}");
        assert!(r.hot_spot_ratio().unwrap() > 1.58);
    }

    #[test]
    fn bounces_after_fairness_are_counted() {
        let t = timeline(12.0, |t| {
            if (7.0..8.0).contains(&t) {
                [40, 20, 20, 20]
            } else {
                [25, 25, 25, 25]
            }
        });
        let r = measure(&t, 0.0, &names()).unwrap();
        assert_eq!(r.time_to_fairness_s, Some(1.0));
        assert_eq!(r.unfair_windows_after, 1);
        assert!((r.worst_ratio_after.unwrap() - 1.6).abs() < 1e-9);
    }

    #[test]
    fn nothing_after_the_add_measures_nothing() {
        let t = timeline(3.0, |_| [1, 1, 1, 1]);
        assert!(measure(&t, 5.0, &names()).is_none());
        assert!(measure(&Timeline::default(), 0.0, &names()).is_none());
    }
}
