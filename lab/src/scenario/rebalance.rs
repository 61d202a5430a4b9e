//! A scale-out judged: which phase added the last standby server, the
//! rebalance figures of the report's timeline from it
//! ([`crate::report::rebalance`]), and `[expect] time_to_fairness_max_s`,
//! `time_to_fairness_min_s`, `hot_spot_ratio_min` and
//! `hot_spot_ratio_max`. Pure.

use crate::report::model::{ExpectationResult, PhaseRecord, Report};
use crate::report::rebalance::{self, Rebalance};

use super::spec::{Expect, ScenarioFile};
use super::validate::server_name;

/// The rebalance figures of a report whose scenario holds servers back;
/// `None` without a standby server or when no phase added one.
pub fn measure(file: &ScenarioFile, report: &Report) -> Option<Rebalance> {
    let standby: Vec<String> = file
        .virtual_server
        .real_servers
        .iter()
        .enumerate()
        .filter(|(_, rs)| rs.standby)
        .map(|(i, rs)| server_name(i, rs.name.as_deref()))
        .collect();
    let added_at_s = last_add(&report.phases, &standby)?;
    let servers: Vec<String> = report.servers.iter().map(|s| s.name.clone()).collect();
    rebalance::measure(&report.timeline, added_at_s, &servers)
}

/// When the last of `standby` was added, on the report's time axis.
fn last_add(phases: &[PhaseRecord], standby: &[String]) -> Option<f64> {
    phases
        .iter()
        .filter(|p| {
            p.action == "add_destination" && p.server.as_ref().is_some_and(|s| standby.contains(s))
        })
        .map(|p| p.t_s)
        .reduce(f64::max)
}

/// Judges the rebalance bounds present in `expect`.
pub fn evaluate(expect: &Expect, report: &Report) -> Vec<ExpectationResult> {
    let r = report.rebalance.as_ref();
    let mut out = Vec::new();
    // Never fair is infinitely late: it fails a maximum, passes a minimum.
    let ttf = |r: &Rebalance| r.time_to_fairness_s.unwrap_or(f64::INFINITY);
    if let Some(max) = expect.time_to_fairness_max_s {
        out.push(judge(
            &format!("time_to_fairness_max_s = {max}"),
            r,
            |r| ttf(r) <= max,
            fairness_detail,
        ));
    }
    if let Some(min) = expect.time_to_fairness_min_s {
        out.push(judge(
            &format!("time_to_fairness_min_s = {min}"),
            r,
            |r| ttf(r) >= min,
            fairness_detail,
        ));
    }
    if let Some(min) = expect.hot_spot_ratio_min {
        out.push(judge(
            &format!("hot_spot_ratio_min = {min}"),
            r,
            |r| r.hot_spot_ratio().is_some_and(|h| h >= min),
            hot_spot_detail,
        ));
    }
    if let Some(max) = expect.hot_spot_ratio_max {
        out.push(judge(
            &format!("hot_spot_ratio_max = {max}"),
            r,
            |r| r.hot_spot_ratio().is_some_and(|h| h <= max),
            hot_spot_detail,
        ));
    }
    out
}

fn judge(
    name: &str,
    r: Option<&Rebalance>,
    holds: impl Fn(&Rebalance) -> bool,
    detail: fn(&Rebalance) -> String,
) -> ExpectationResult {
    match r {
        None => ExpectationResult::held(
            name,
            false,
            "no standby server was added while the load ran, so there is no scale-out to judge"
                .to_owned(),
        ),
        Some(r) => ExpectationResult::held(name, holds(r), detail(r)),
    }
}

fn fairness_detail(r: &Rebalance) -> String {
    let when = r.time_to_fairness_s.map_or_else(
        || "never fair within the run".to_owned(),
        |t| {
            format!(
                "fair {t:.1} s after the add ({} later 1 s windows at {} or above)",
                r.unfair_windows_after, r.fair_ratio
            )
        },
    );
    let last = r
        .windows_1s
        .last()
        .map(|[_, v]| format!("; last 1 s window max/mean {v:.2}"))
        .unwrap_or_default();
    format!("{when}{last}")
}

fn hot_spot_detail(r: &Rebalance) -> String {
    match (&r.short, &r.long, r.hot_spot_ratio()) {
        (Some(s), Some(l), Some(h)) => format!(
            "max/mean over 100 ms windows p90 {:.2} (median {:.2}, max {:.2}), over 5 s windows median {:.2}: ratio {h:.2}",
            s.p90, s.median, s.max, l.median
        ),
        _ => "too little load after the add for both window widths".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::rebalance::Spread;

    fn rebalance(ttf: Option<f64>, short: f64, long: f64) -> Report {
        let spread = |median| Spread {
            window_s: 1.0,
            windows: 5,
            median,
            p90: median,
            max: median,
        };
        Report {
            rebalance: Some(Rebalance {
                time_to_fairness_s: ttf,
                short: Some(spread(short)),
                long: Some(spread(long)),
                windows_1s: vec![[0.0, 1.5]],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn passes(e: &Expect, r: &Report) -> Vec<bool> {
        evaluate(e, r).iter().map(|x| x.passed).collect()
    }

    #[test]
    fn never_fair_fails_a_maximum_and_passes_a_minimum() {
        let e = Expect {
            time_to_fairness_max_s: Some(15.0),
            time_to_fairness_min_s: Some(10.0),
            ..Default::default()
        };
        assert_eq!(passes(&e, &rebalance(None, 2.0, 2.0)), [false, true]);
        assert_eq!(passes(&e, &rebalance(Some(12.0), 1.1, 1.0)), [true, true]);
        assert_eq!(passes(&e, &rebalance(Some(3.0), 1.1, 1.0)), [true, false]);
        assert_eq!(passes(&e, &rebalance(Some(16.0), 1.1, 1.0)), [false, true]);
    }

    #[test]
    fn the_hot_spot_ratio_is_short_over_long() {
        let e = Expect {
            hot_spot_ratio_max: Some(1.2),
            ..Default::default()
        };
        assert_eq!(passes(&e, &rebalance(Some(1.0), 1.5, 1.05)), [false]);
        assert_eq!(passes(&e, &rebalance(Some(1.0), 1.1, 1.05)), [true]);
        let e = Expect {
            hot_spot_ratio_min: Some(1.2),
            ..Default::default()
        };
        assert_eq!(passes(&e, &rebalance(Some(1.0), 1.5, 1.05)), [true]);
        assert_eq!(passes(&e, &rebalance(Some(1.0), 1.1, 1.05)), [false]);
    }

    #[test]
    fn no_scale_out_passes_nothing() {
        let e = Expect {
            time_to_fairness_max_s: Some(15.0),
            time_to_fairness_min_s: Some(0.0),
            hot_spot_ratio_min: Some(0.0),
            hot_spot_ratio_max: Some(9.0),
            ..Default::default()
        };
        assert_eq!(passes(&e, &Report::default()), [false, false, false, false]);
        assert!(evaluate(&Expect::default(), &Report::default()).is_empty());
    }

    #[test]
    fn the_last_add_of_a_standby_server_starts_the_clock() {
        let phase = |t_s, action: &str, server: &str| PhaseRecord {
            t_s,
            action: action.into(),
            server: Some(server.into()),
            weight: None,
        };
        let phases = [
            phase(3.0, "add_destination", "rs3"),
            phase(3.1, "add_destination", "rs4"),
            phase(8.0, "add_destination", "rs1"),
            phase(9.0, "set_weight", "rs4"),
        ];
        let standby = ["rs3".to_owned(), "rs4".to_owned()];
        assert_eq!(last_add(&phases, &standby), Some(3.1));
        assert_eq!(last_add(&phases, &[]), None);
    }
}
