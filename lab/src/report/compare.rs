//! A report against a baseline: what moved, and whether anything regressed.
//!
//! Regressions are judged on what the lab is about (distribution and
//! errors), never on latency: latency depends on the machine and the runner,
//! so it is reported but cannot fail a comparison.

use super::model::Report;
use super::text::{Table, p_value, pct, pp};

/// How much a figure may worsen before it counts as a regression. All are
/// absolute differences of fractions (0.02 = two percentage points).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Largest allowed growth of the fairness max deviation.
    pub max_deviation: f64,
    /// Largest allowed drop of Jain's index.
    pub jain: f64,
    /// Largest allowed growth of the error rate (failed / attempted RPCs).
    pub error_rate: f64,
}

impl Tolerance {
    /// The same tolerance for every figure.
    pub fn uniform(t: f64) -> Self {
        Self {
            max_deviation: t,
            jain: t,
            error_rate: t,
        }
    }
}

impl Default for Tolerance {
    /// Two percentage points of deviation or Jain, half a point of errors.
    fn default() -> Self {
        Self {
            max_deviation: 0.02,
            jain: 0.02,
            error_rate: 0.005,
        }
    }
}

impl From<f64> for Tolerance {
    fn from(t: f64) -> Self {
        Self::uniform(t)
    }
}

/// What a row of the comparison says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Shown for information; never fails (latency, per-server shares, p-value).
    Info,
    /// Within tolerance.
    Ok,
    /// Better than the baseline by more than the tolerance.
    Improved,
    /// Worse than the baseline by more than the tolerance.
    Regressed,
    /// Present in only one of the two reports.
    Missing,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Info => "",
            Verdict::Ok => "ok",
            Verdict::Improved => "improved",
            Verdict::Regressed => "REGRESSED",
            Verdict::Missing => "missing",
        }
    }
}

/// How a figure is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A fraction shown as a percentage; deltas in percentage points.
    Fraction,
    /// A plain number.
    Number,
    /// A probability.
    PValue,
    /// Microseconds shown as milliseconds.
    Micros,
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonRow {
    /// What is compared, e.g. `share rs1` or `jain`.
    pub metric: String,
    /// Its value in the baseline.
    pub baseline: Option<f64>,
    /// Its value in the current report.
    pub current: Option<f64>,
    /// How it is printed.
    pub unit: Unit,
    /// The verdict.
    pub verdict: Verdict,
}

impl ComparisonRow {
    /// `current − baseline`, when both exist.
    pub fn delta(&self) -> Option<f64> {
        Some(self.current? - self.baseline?)
    }
}

/// The result of [`compare`].
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Baseline scenario name.
    pub baseline_name: String,
    /// Current scenario name.
    pub current_name: String,
    /// The tolerance used.
    pub tolerance: Tolerance,
    /// Every compared figure.
    pub rows: Vec<ComparisonRow>,
    /// Set when the two sides ran on different kernels (release, origin or
    /// build source): the figures may differ for that reason alone.
    pub kernel_warning: Option<String>,
}

impl Comparison {
    /// True when any figure regressed beyond the tolerance.
    pub fn regressed(&self) -> bool {
        self.rows.iter().any(|r| r.verdict == Verdict::Regressed)
    }

    /// The rows that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &ComparisonRow> {
        self.rows.iter().filter(|r| r.verdict == Verdict::Regressed)
    }

    /// A small aligned table, then one line with the verdict.
    pub fn render_text(&self) -> String {
        let fmt = |v: Option<f64>, unit: Unit| -> String {
            match v {
                None => "-".into(),
                Some(v) => match unit {
                    Unit::Fraction => pct(v),
                    Unit::Number => format!("{v:.4}"),
                    Unit::PValue => p_value(v),
                    Unit::Micros => super::text::ms(v),
                },
            }
        };
        let mut t = Table::new(&["metric", "baseline", "current", "change", "verdict"])
            .align(4, super::text::Align::Left);
        for r in &self.rows {
            let change = match (r.delta(), r.unit) {
                (None, _) => "-".into(),
                (Some(d), Unit::Fraction) => pp(d),
                (Some(d), Unit::Number) => format!("{d:+.4}"),
                (Some(d), Unit::PValue) => format!("{d:+.3}"),
                (Some(d), Unit::Micros) => format!("{:+.3} ms", d / 1000.0),
            };
            t.row(vec![
                r.metric.clone(),
                fmt(r.baseline, r.unit),
                fmt(r.current, r.unit),
                change,
                r.verdict.as_str().into(),
            ]);
        }
        let mut out = format!(
            "Comparing {} against baseline {}\n",
            self.current_name, self.baseline_name
        );
        if let Some(w) = &self.kernel_warning {
            out.push_str(&format!("warning: {w}\n"));
        }
        out.push_str(&t.render_text("  "));
        let n = self.regressions().count();
        if n == 0 {
            out.push_str("No regression beyond tolerance.\n");
        } else {
            out.push_str(&format!(
                "REGRESSED: {} figure{} worse than the baseline beyond tolerance.\n",
                n,
                if n == 1 { "" } else { "s" }
            ));
        }
        out
    }
}

/// Describes how two runs' kernels differ, if they do.
fn kernel_difference(
    baseline: &super::model::RunnerInfo,
    current: &super::model::RunnerInfo,
) -> Option<String> {
    let describe = |r: &super::model::RunnerInfo| {
        format!(
            "{} kernel {} ({})",
            r.kind.as_str(),
            if r.kernel.is_empty() {
                "unknown"
            } else {
                &r.kernel
            },
            r.kernel_provenance()
        )
    };
    let same = baseline.kind == current.kind
        && baseline.kernel == current.kernel
        && baseline.kernel_origin == current.kernel_origin
        && baseline.kernel_source == current.kernel_source;
    (!same).then(|| {
        format!(
            "the baseline ran on {}, this run on {}; differences may come from the kernel",
            describe(baseline),
            describe(current)
        )
    })
}

/// Judges a figure where bigger is worse (deviation, error rate).
fn judge_higher_is_worse(base: Option<f64>, cur: Option<f64>, tol: f64) -> Verdict {
    match (base, cur) {
        (Some(b), Some(c)) if c - b > tol => Verdict::Regressed,
        (Some(b), Some(c)) if b - c > tol => Verdict::Improved,
        (Some(_), Some(_)) => Verdict::Ok,
        _ => Verdict::Missing,
    }
}

/// Compares `current` against `baseline`: per-server share (by name),
/// fairness (max deviation, Jain, chi-square p), error rate, latency p50 and
/// p99. A regression is max deviation growing by more than
/// `tolerance.max_deviation`, Jain dropping by more than `tolerance.jain`, or
/// the error rate growing by more than `tolerance.error_rate`. A fairness
/// figure present in the baseline but missing now (no traffic) also fails.
pub fn compare(baseline: &Report, current: &Report, tolerance: impl Into<Tolerance>) -> Comparison {
    let tolerance = tolerance.into();
    let mut rows = Vec::new();
    let kernel_warning = kernel_difference(&baseline.runner, &current.runner);

    // Per-server shares, in the baseline's order, then servers new in current.
    let mut names: Vec<&str> = baseline.servers.iter().map(|s| s.name.as_str()).collect();
    for s in &current.servers {
        if !names.contains(&s.name.as_str()) {
            names.push(&s.name);
        }
    }
    for name in names {
        let share = |r: &Report| r.servers.iter().find(|s| s.name == name).map(|s| s.share);
        let (b, c) = (share(baseline), share(current));
        rows.push(ComparisonRow {
            metric: format!("share {name}"),
            baseline: b,
            current: c,
            unit: Unit::Fraction,
            verdict: if b.is_some() && c.is_some() {
                Verdict::Info
            } else {
                Verdict::Missing
            },
        });
    }

    let bf = baseline.fairness.as_ref();
    let cf = current.fairness.as_ref();
    let (b, c) = (bf.map(|f| f.max_deviation), cf.map(|f| f.max_deviation));
    let lost = |b: Option<f64>, c: Option<f64>, v: Verdict| {
        if b.is_some() && c.is_none() {
            Verdict::Regressed
        } else {
            v
        }
    };
    rows.push(ComparisonRow {
        metric: "max deviation".into(),
        baseline: b,
        current: c,
        unit: Unit::Fraction,
        verdict: lost(b, c, judge_higher_is_worse(b, c, tolerance.max_deviation)),
    });
    let (b, c) = (bf.map(|f| f.jain), cf.map(|f| f.jain));
    // Jain: lower is worse, so judge the negated values.
    let jain_verdict = judge_higher_is_worse(b.map(|v| -v), c.map(|v| -v), tolerance.jain);
    rows.push(ComparisonRow {
        metric: "Jain's index".into(),
        baseline: b,
        current: c,
        unit: Unit::Number,
        verdict: lost(b, c, jain_verdict),
    });
    rows.push(ComparisonRow {
        metric: "chi-square p".into(),
        baseline: bf.map(|f| f.chi2_p),
        current: cf.map(|f| f.chi2_p),
        unit: Unit::PValue,
        verdict: Verdict::Info,
    });

    let (b, c) = (Some(baseline.error_rate()), Some(current.error_rate()));
    rows.push(ComparisonRow {
        metric: "error rate".into(),
        baseline: b,
        current: c,
        unit: Unit::Fraction,
        verdict: judge_higher_is_worse(b, c, tolerance.error_rate),
    });

    let bl = baseline.latency_us.as_ref().filter(|l| l.count > 0);
    let cl = current.latency_us.as_ref().filter(|l| l.count > 0);
    rows.push(ComparisonRow {
        metric: "latency p50".into(),
        baseline: bl.map(|l| l.p50),
        current: cl.map(|l| l.p50),
        unit: Unit::Micros,
        verdict: Verdict::Info,
    });
    rows.push(ComparisonRow {
        metric: "latency p99".into(),
        baseline: bl.map(|l| l.p99),
        current: cl.map(|l| l.p99),
        unit: Unit::Micros,
        verdict: Verdict::Info,
    });

    Comparison {
        baseline_name: baseline.scenario.name.clone(),
        current_name: current.scenario.name.clone(),
        tolerance,
        rows,
        kernel_warning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fairness;
    use crate::report::model::FairnessBasis;
    use crate::report::testdata::synthetic_report;

    /// `base` with the RPC counts replaced and the shares and fairness
    /// recomputed.
    fn with_counts(base: &Report, counts: &[u64]) -> Report {
        let mut r = base.clone();
        let weights: Vec<u32> = r.servers.iter().map(|s| s.weight).collect();
        let total: u64 = counts.iter().sum();
        for (s, &c) in r.servers.iter_mut().zip(counts) {
            s.rpcs = c;
            s.share = c as f64 / total as f64;
        }
        r.fairness = fairness::evaluate(FairnessBasis::Rpcs, counts, &weights);
        r
    }

    #[test]
    fn a_baseline_from_another_kernel_is_warned_about() {
        let base = synthetic_report(4);
        assert_eq!(compare(&base, &base, 0.02).kernel_warning, None);
        let mut old = base.clone();
        old.runner.kernel = "6.1.176".into();
        old.runner.kernel_origin = None;
        old.runner.kernel_source = None;
        let cmp = compare(&old, &base, 0.02);
        let w = cmp.kernel_warning.clone().expect("a warning");
        assert!(w.contains("6.1.176") && w.contains("7.2.13"), "{w}");
        assert!(cmp.render_text().contains("warning: the baseline ran on"));
        // Same release, another build source: still worth a warning.
        let mut other = base.clone();
        other.runner.kernel_source = Some("linux-source-7.2 7.2.14-1".into());
        assert!(compare(&base, &other, 0.02).kernel_warning.is_some());
    }

    #[test]
    fn same_report_does_not_regress() {
        let r = synthetic_report(8);
        let c = compare(&r, &r, 0.02);
        assert!(!c.regressed(), "{}", c.render_text());
        assert!(c.render_text().contains("No regression beyond tolerance."));
    }

    #[test]
    fn small_changes_within_tolerance_and_latency_never_fails() {
        let base = with_counts(&synthetic_report(8), &[1000, 1000, 2000]);
        let mut cur = with_counts(&base, &[1010, 990, 2000]);
        cur.latency_us.as_mut().unwrap().p99 *= 10.0;
        let c = compare(&base, &cur, Tolerance::default());
        assert!(!c.regressed(), "{}", c.render_text());
    }

    #[test]
    fn skew_regresses_on_deviation_and_jain() {
        let base = with_counts(&synthetic_report(8), &[1000, 1000, 2000]);
        let cur = with_counts(&base, &[2000, 0, 2000]);
        let c = compare(&base, &cur, 0.02);
        assert!(c.regressed());
        let names: Vec<&str> = c.regressions().map(|r| r.metric.as_str()).collect();
        assert_eq!(names, ["max deviation", "Jain's index"]);
        let text = c.render_text();
        assert!(text.contains("REGRESSED: 2 figures"), "{text}");
        assert!(text.contains("share rs2"), "{text}");
        // The reverse direction is an improvement, not a regression.
        let back = compare(&cur, &base, 0.02);
        assert!(!back.regressed(), "{}", back.render_text());
        assert!(back.rows.iter().any(|r| r.verdict == Verdict::Improved));
    }

    #[test]
    fn error_rate_growth_regresses() {
        let base = synthetic_report(8);
        let mut cur = base.clone();
        cur.errors.total = base.total_rpcs() / 10;
        let c = compare(&base, &cur, Tolerance::default());
        let names: Vec<&str> = c.regressions().map(|r| r.metric.as_str()).collect();
        assert_eq!(names, ["error rate"]);
    }

    #[test]
    fn losing_fairness_regresses() {
        let base = synthetic_report(8);
        let mut cur = base.clone();
        cur.fairness = None;
        assert!(compare(&base, &cur, 0.5).regressed());
    }
}
