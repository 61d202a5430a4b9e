//! The one-second stall: connects that took [1.0 s, 1.1 s), the time of one
//! SYN retransmission, as a share of the successful connects
//! (`[expect] connect_1s_share_max` / `connect_1s_share_min`).
//!
//! IPVS drops the SYN of a new connection whose 5-tuple still has an entry
//! (`conn_reuse_mode`), so that the entry expires and the retransmitted SYN
//! is scheduled afresh; the client waits out its 1 s retransmit timer
//! (kubernetes#70747, #90854). Pure: judged from the report's `connects`.

use crate::report::model::{Connects, ExpectationResult, Report};

use super::spec::Expect;

/// Share of successful connects in the 1 s SYN-retry bucket (`None` when
/// no connect succeeded, or the report has no connect figures).
pub fn share_1s(connects: &Connects) -> Option<f64> {
    (connects.ok > 0).then(|| connects.syn_retry_1s as f64 / connects.ok as f64)
}

/// Share of successful connects in the 3 s bucket (two SYNs dropped).
pub fn share_3s(connects: &Connects) -> Option<f64> {
    (connects.ok > 0).then(|| connects.syn_retry_3s as f64 / connects.ok as f64)
}

/// Judges the 1 s share bounds present in `expect`.
pub fn evaluate(expect: &Expect, report: &Report) -> Vec<ExpectationResult> {
    let mut out = Vec::new();
    if let Some(max) = expect.connect_1s_share_max {
        out.push(bound(
            report,
            &format!("connect_1s_share_max = {max}"),
            |s| s <= max,
        ));
    }
    if let Some(min) = expect.connect_1s_share_min {
        out.push(bound(
            report,
            &format!("connect_1s_share_min = {min}"),
            |s| s >= min,
        ));
    }
    out
}

fn bound(report: &Report, name: &str, holds: impl Fn(f64) -> bool) -> ExpectationResult {
    match report
        .connects
        .as_ref()
        .and_then(|c| share_1s(c).map(|s| (c, s)))
    {
        None => ExpectationResult::held(
            name,
            false,
            "no successful connect was measured, so there is no share to judge".to_owned(),
        ),
        Some((c, share)) => ExpectationResult::held(
            name,
            holds(share),
            format!(
                "{} of {} connects took [1.0 s, 1.1 s) ({:.2} %), {} took [3.0 s, 3.1 s); connect p99 {:.1} ms",
                c.syn_retry_1s,
                c.ok,
                100.0 * share,
                c.syn_retry_3s,
                c.latency_us.p99 / 1000.0
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(ok: u64, one_s: u64) -> Report {
        Report {
            connects: Some(Connects {
                attempts: ok,
                ok,
                syn_retry_1s: one_s,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn passes(e: &Expect, r: &Report) -> Vec<bool> {
        evaluate(e, r).iter().map(|x| x.passed).collect()
    }

    #[test]
    fn the_maximum_fails_on_a_stall_and_the_minimum_on_its_absence() {
        let e = Expect {
            connect_1s_share_max: Some(0.01),
            ..Default::default()
        };
        assert_eq!(passes(&e, &report(1000, 5)), [true]);
        assert_eq!(passes(&e, &report(1000, 200)), [false]);
        let e = Expect {
            connect_1s_share_min: Some(0.05),
            ..Default::default()
        };
        assert_eq!(passes(&e, &report(1000, 200)), [true]);
        assert_eq!(passes(&e, &report(1000, 0)), [false]);
    }

    #[test]
    fn no_connects_cannot_pass_either_bound() {
        let e = Expect {
            connect_1s_share_max: Some(1.0),
            connect_1s_share_min: Some(0.0),
            ..Default::default()
        };
        assert_eq!(passes(&e, &report(0, 0)), [false, false]);
        assert_eq!(passes(&e, &Report::default()), [false, false]);
        assert!(evaluate(&Expect::default(), &report(10, 1)).is_empty());
    }

    #[test]
    fn shares_count_against_the_successful_connects() {
        let c = Connects {
            ok: 200,
            syn_retry_1s: 50,
            syn_retry_3s: 2,
            ..Default::default()
        };
        assert_eq!(share_1s(&c), Some(0.25));
        assert_eq!(share_3s(&c), Some(0.01));
        assert_eq!(share_1s(&Connects::default()), None);
    }
}
