//! A report against a baseline: what moved, and whether anything regressed.
//!
//! Regressions are judged as tests, not thresholds, on what the lab is about:
//! - **the distribution**, on the scenario's unit of balancing (connections,
//!   client IPs, groups): Pearson's chi-square homogeneity test of the
//!   baseline's and this run's per-server counts (2×k), failing at
//!   p ≤ alpha. A scenario that declares `[expect] baseline_margin` is judged
//!   by equivalence instead: every server's share within that margin of the
//!   baseline's. RPCs are not independent draws (they ride on connections),
//!   so a scenario counted in RPCs is always judged by equivalence, at
//!   [`DEFAULT_RPC_BASELINE_MARGIN`] unless it declares its own;
//! - **errors**, in absolute RPCs: at most `error_budget` more failed RPCs
//!   than the baseline.
//!
//! Latency depends on the machine and the runner, so it is reported but
//! cannot fail a comparison. The settings come from the current report's
//! `gate` (its `[expect]` block), else the defaults of [`super::fairness`]:
//! `lab compare`, the library and the CI test share them.

use serde::Serialize;

use super::fairness::{self, DEFAULT_ALPHA, DEFAULT_ERROR_BUDGET};
use super::model::{FairnessBasis, Report};
use super::text::{Table, p_value, pct, pp};

/// The equivalence margin of a scenario counted in RPCs that declares none:
/// ten points of share.
pub const DEFAULT_RPC_BASELINE_MARGIN: f64 = 0.10;

/// How a comparison judges: one type, one set of defaults, for the CLI, the
/// library and CI.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    /// The homogeneity test fails at p ≤ alpha.
    pub alpha: f64,
    /// When set, an equivalence margin on each server's share replaces the
    /// homogeneity test.
    pub baseline_margin: Option<f64>,
    /// Failed RPCs allowed beyond the baseline's.
    pub error_budget: u64,
}

impl Default for Tolerance {
    /// alpha 1e-6, the homogeneity test, no error beyond the baseline's.
    fn default() -> Self {
        Self {
            alpha: DEFAULT_ALPHA,
            baseline_margin: None,
            error_budget: DEFAULT_ERROR_BUDGET,
        }
    }
}

impl Tolerance {
    /// The settings the report was judged with (its scenario's `[expect]`),
    /// or the defaults for an older report.
    pub fn of(report: &Report) -> Self {
        report.gate.as_ref().map_or_else(Self::default, |g| Self {
            alpha: g.alpha,
            baseline_margin: g.baseline_margin,
            error_budget: g.error_budget,
        })
    }
}

/// What a row of the comparison says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A fraction shown as a percentage; deltas in percentage points.
    Fraction,
    /// A plain number.
    Number,
    /// A probability.
    PValue,
    /// Microseconds shown as milliseconds.
    Micros,
    /// A whole number of things (failed RPCs).
    Count,
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
                    Unit::Count => format!("{v:.0}"),
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
                (Some(d), Unit::Count) => format!("{d:+.0}"),
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
            out.push_str(&format!(
                "No regression (alpha {:.0e}, error budget +{} RPCs).\n",
                self.tolerance.alpha, self.tolerance.error_budget
            ));
        } else {
            out.push_str(&format!(
                "REGRESSED: {} figure{} worse than the baseline (alpha {:.0e}, error budget +{} RPCs).\n",
                n,
                if n == 1 { "" } else { "s" },
                self.tolerance.alpha,
                self.tolerance.error_budget
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

/// Per-server counts of both reports on `unit`, aligned by server name (the
/// baseline's order, then servers only the current run has).
fn aligned_counts(baseline: &Report, current: &Report, unit: FairnessBasis) -> AlignedCounts {
    let mut names: Vec<String> = baseline.servers.iter().map(|s| s.name.clone()).collect();
    for s in &current.servers {
        if !names.contains(&s.name) {
            names.push(s.name.clone());
        }
    }
    let side = |r: &Report| {
        let counts = fairness::unit_counts(r, unit);
        names
            .iter()
            .map(|n| {
                r.servers
                    .iter()
                    .position(|s| &s.name == n)
                    .map_or(0, |i| counts[i])
            })
            .collect::<Vec<u64>>()
    };
    AlignedCounts {
        baseline: side(baseline),
        current: side(current),
        names,
    }
}

/// Both sides' counts per server name.
struct AlignedCounts {
    names: Vec<String>,
    baseline: Vec<u64>,
    current: Vec<u64>,
}

/// The distribution rows: each server's share on the unit (shown), then
/// the verdict row, homogeneity or equivalence.
fn distribution_rows(
    c: &AlignedCounts,
    unit: FairnessBasis,
    tolerance: &Tolerance,
) -> Vec<ComparisonRow> {
    let (bs, cs) = (fairness::shares(&c.baseline), fairness::shares(&c.current));
    let (bn, cn): (u64, u64) = (c.baseline.iter().sum(), c.current.iter().sum());
    let mut rows: Vec<ComparisonRow> = c
        .names
        .iter()
        .enumerate()
        .map(|(i, name)| ComparisonRow {
            metric: format!("share {name} ({})", unit.as_str()),
            baseline: (bn > 0).then_some(bs[i]),
            current: (cn > 0).then_some(cs[i]),
            unit: Unit::Fraction,
            verdict: Verdict::Info,
        })
        .collect();
    let margin = tolerance
        .baseline_margin
        .or((unit == FairnessBasis::Rpcs).then_some(DEFAULT_RPC_BASELINE_MARGIN));
    let missing = bn == 0 || cn == 0;
    rows.push(match margin {
        Some(m) => {
            let change = bs
                .iter()
                .zip(&cs)
                .map(|(b, c)| (c - b).abs())
                .fold(0.0, f64::max);
            ComparisonRow {
                metric: format!("largest share change (margin {})", pct(m)),
                baseline: None,
                current: (!missing).then_some(change),
                unit: Unit::Fraction,
                verdict: match (missing, bn > 0) {
                    (true, true) => Verdict::Regressed,
                    (true, false) => Verdict::Missing,
                    _ if change > m => Verdict::Regressed,
                    _ => Verdict::Ok,
                },
            }
        }
        None => {
            let test = fairness::homogeneity(&c.baseline, &c.current);
            ComparisonRow {
                metric: format!(
                    "homogeneity p ({}, alpha {:.0e})",
                    unit.as_str(),
                    tolerance.alpha
                ),
                baseline: None,
                current: test.map(|(_, _, p)| p),
                unit: Unit::PValue,
                verdict: match test {
                    Some((_, _, p)) if p <= tolerance.alpha => Verdict::Regressed,
                    Some(_) => Verdict::Ok,
                    None if bn > 0 => Verdict::Regressed,
                    None => Verdict::Missing,
                },
            }
        }
    });
    rows
}

/// Failed RPCs against the budget, and the error rate for information.
fn error_rows(baseline: &Report, current: &Report, tolerance: &Tolerance) -> Vec<ComparisonRow> {
    let (b, c) = (baseline.errors.total, current.errors.total);
    let allowed = b.saturating_add(tolerance.error_budget);
    vec![
        ComparisonRow {
            metric: format!("failed RPCs (budget +{})", tolerance.error_budget),
            baseline: Some(b as f64),
            current: Some(c as f64),
            unit: Unit::Count,
            verdict: if c > allowed {
                Verdict::Regressed
            } else if c < b {
                Verdict::Improved
            } else {
                Verdict::Ok
            },
        },
        ComparisonRow {
            metric: "error rate".into(),
            baseline: Some(baseline.error_rate()),
            current: Some(current.error_rate()),
            unit: Unit::Fraction,
            verdict: Verdict::Info,
        },
    ]
}

/// The fairness figures of each side against the weights, shown only: the
/// verdict on the distribution is the test of [`distribution_rows`].
fn fairness_rows(baseline: &Report, current: &Report) -> Vec<ComparisonRow> {
    let bf = baseline.fairness.as_ref();
    let cf = current.fairness.as_ref();
    let row = |metric: &str, unit: Unit, f: fn(&super::model::Fairness) -> f64| ComparisonRow {
        metric: metric.into(),
        baseline: bf.map(f),
        current: cf.map(f),
        unit,
        verdict: Verdict::Info,
    };
    vec![
        row("max deviation", Unit::Fraction, |f| f.max_deviation),
        row("Jain's index", Unit::Number, |f| f.jain),
        row("chi-square p vs weights", Unit::PValue, |f| f.chi2_p),
    ]
}

/// Compares `current` against `baseline` on the current run's unit of
/// balancing (its `gate`, else connections): the distribution by the
/// homogeneity test or the equivalence margin, failed RPCs against the error
/// budget; fairness figures and latency are shown, never judged.
pub fn compare(baseline: &Report, current: &Report, tolerance: Tolerance) -> Comparison {
    let unit = current
        .gate
        .as_ref()
        .map(|g| g.unit)
        .or(current.fairness.as_ref().map(|f| f.basis))
        .unwrap_or(FairnessBasis::Connections);
    let counts = aligned_counts(baseline, current, unit);
    let mut rows = distribution_rows(&counts, unit, &tolerance);
    rows.extend(fairness_rows(baseline, current));
    rows.extend(error_rows(baseline, current, &tolerance));

    let bl = baseline.latency_us.as_ref().filter(|l| l.count > 0);
    let cl = current.latency_us.as_ref().filter(|l| l.count > 0);
    for (metric, f) in [
        (
            "latency p50",
            (|l| l.p50) as fn(&super::model::LatencySummary) -> f64,
        ),
        ("latency p99", |l| l.p99),
    ] {
        rows.push(ComparisonRow {
            metric: metric.into(),
            baseline: bl.map(f),
            current: cl.map(f),
            unit: Unit::Micros,
            verdict: Verdict::Info,
        });
    }

    Comparison {
        baseline_name: baseline.scenario.name.clone(),
        current_name: current.scenario.name.clone(),
        tolerance,
        rows,
        kernel_warning: kernel_difference(&baseline.runner, &current.runner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::GateSettings;
    use crate::report::testdata::synthetic_report;

    /// `base` with the connection counts replaced, judged on connections.
    fn with_conns(base: &Report, counts: &[u64]) -> Report {
        let mut r = base.clone();
        for (s, &c) in r.servers.iter_mut().zip(counts) {
            s.connections = c;
        }
        r.gate = Some(GateSettings {
            unit: FairnessBasis::Connections,
            unit_derived: true,
            alpha: DEFAULT_ALPHA,
            margin: fairness::DEFAULT_MARGIN,
            baseline_margin: None,
            error_budget: 0,
        });
        r
    }

    fn regressions(c: &Comparison) -> Vec<&str> {
        c.regressions().map(|r| r.metric.as_str()).collect()
    }

    #[test]
    fn a_baseline_from_another_kernel_is_warned_about() {
        let base = synthetic_report(4);
        let tol = Tolerance::default();
        assert_eq!(compare(&base, &base, tol).kernel_warning, None);
        let mut old = base.clone();
        old.runner.kernel = "6.1.176".into();
        old.runner.kernel_origin = None;
        old.runner.kernel_source = None;
        let cmp = compare(&old, &base, tol);
        let w = cmp.kernel_warning.clone().expect("a warning");
        assert!(w.contains("6.1.176") && w.contains("7.2.13"), "{w}");
        assert!(cmp.render_text().contains("warning: the baseline ran on"));
        // Same release, another build source: still worth a warning.
        let mut other = base.clone();
        other.runner.kernel_source = Some("linux-source-7.2 7.2.14-1".into());
        assert!(compare(&base, &other, tol).kernel_warning.is_some());
    }

    #[test]
    fn same_report_does_not_regress() {
        let r = with_conns(&synthetic_report(8), &[300, 300, 600]);
        let c = compare(&r, &r, Tolerance::of(&r));
        assert!(!c.regressed(), "{}", c.render_text());
        assert!(c.render_text().contains("No regression"));
    }

    #[test]
    fn homogeneity_passes_noise_and_latency_never_fails() {
        let base = with_conns(&synthetic_report(8), &[1000, 1000, 2000]);
        let mut cur = with_conns(&base, &[1040, 975, 1985]);
        cur.latency_us.as_mut().unwrap().p99 *= 10.0;
        let c = compare(&base, &cur, Tolerance::of(&cur));
        assert!(!c.regressed(), "{}", c.render_text());
    }

    #[test]
    fn homogeneity_fails_a_shifted_split() {
        let base = with_conns(&synthetic_report(8), &[1000, 1000, 2000]);
        let cur = with_conns(&base, &[1300, 700, 2000]);
        let c = compare(&base, &cur, Tolerance::of(&cur));
        assert_eq!(
            regressions(&c),
            ["homogeneity p (connections, alpha 1e-6)"],
            "{}",
            c.render_text()
        );
        let text = c.render_text();
        assert!(text.contains("REGRESSED: 1 figure"), "{text}");
        assert!(text.contains("share rs2 (connections)"), "{text}");
    }

    #[test]
    fn an_equivalence_margin_replaces_the_test() {
        let base = with_conns(&synthetic_report(8), &[1000, 1000, 2000]);
        let cur = with_conns(&base, &[1200, 800, 2000]);
        let mut tol = Tolerance::of(&cur);
        // A 5-point shift: the homogeneity test sees it (N = 8,000)...
        assert!(compare(&base, &cur, tol).regressed());
        // ...a 10-point equivalence margin accepts it, a 2-point one does not.
        tol.baseline_margin = Some(0.10);
        assert!(!compare(&base, &cur, tol).regressed());
        tol.baseline_margin = Some(0.02);
        let c = compare(&base, &cur, tol);
        assert_eq!(regressions(&c), ["largest share change (margin 2.0%)"]);
    }

    #[test]
    fn rpcs_are_judged_by_equivalence() {
        let mut base = synthetic_report(8);
        base.gate = Some(GateSettings {
            unit: FairnessBasis::Rpcs,
            ..with_conns(&base, &[1, 1, 1]).gate.unwrap()
        });
        let mut cur = base.clone();
        let total: u64 = cur.servers.iter().map(|s| s.rpcs).sum();
        cur.servers[0].rpcs += total / 4;
        let c = compare(&base, &cur, Tolerance::of(&cur));
        assert_eq!(regressions(&c), ["largest share change (margin 10.0%)"]);
    }

    #[test]
    fn errors_beyond_the_budget_regress() {
        let base = with_conns(&synthetic_report(8), &[10, 10, 20]);
        let mut cur = base.clone();
        cur.errors.total = base.errors.total + 3;
        let mut tol = Tolerance::of(&cur);
        let c = compare(&base, &cur, tol);
        assert_eq!(regressions(&c), ["failed RPCs (budget +0)"]);
        tol.error_budget = 3;
        assert!(!compare(&base, &cur, tol).regressed());
        tol.error_budget = 2;
        assert!(compare(&base, &cur, tol).regressed());
        // Fewer errors is an improvement.
        let back = compare(&cur, &base, Tolerance::default());
        assert!(!back.regressed());
        assert!(back.rows.iter().any(|r| r.verdict == Verdict::Improved));
    }

    #[test]
    fn losing_all_traffic_regresses() {
        let base = with_conns(&synthetic_report(8), &[10, 10, 20]);
        let cur = with_conns(&base, &[0, 0, 0]);
        assert!(compare(&base, &cur, Tolerance::default()).regressed());
    }

    #[test]
    fn old_reports_without_settings_use_the_defaults() {
        let mut r = synthetic_report(8);
        r.gate = None;
        assert_eq!(Tolerance::of(&r), Tolerance::default());
    }
}
