//! Fairness figures: how far observed per-server counts are from the weights.
//!
//! - **ideal share** of server *i*: `w_i / Σw` (a zero-weight server's ideal is 0).
//! - **max deviation**: `max_i |share_i − ideal_i|`, an absolute fraction, so
//!   0.05 means "five percentage points off". The relative version divides by
//!   the ideal (weighted servers only).
//! - **Jain's index** over weight-normalised counts `x_i = count_i / w_i`
//!   (zero-weight servers excluded): `(Σx)² / (n·Σx²)`; 1 when every server got
//!   exactly its weight's worth, 1/n when one server got everything.
//! - **Pearson's chi-square** against the ideal over the weighted servers, with
//!   `k − 1` degrees of freedom, and its p-value `Q(dof/2, chi2/2)` (the
//!   regularized upper incomplete gamma function). Counts that landed on
//!   zero-weight servers cannot enter chi-square (their expectation is 0); they
//!   show up in the max deviation instead.
//!
//! Round robin is deterministic, not random, so a tiny chi-square (p ≈ 1) is
//! what a healthy `rr` looks like; a p-value near 0 says the traffic did not
//! follow the weights (persistence, long-lived channels, a failed server).

use super::model::{Fairness, FairnessBasis};

/// Ideal shares from weights: `w_i / Σw`, all zero when every weight is zero.
pub fn ideal_shares(weights: &[u32]) -> Vec<f64> {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    weights
        .iter()
        .map(|&w| {
            if total == 0 {
                0.0
            } else {
                f64::from(w) / total as f64
            }
        })
        .collect()
}

/// Observed shares: `count_i / Σcount`, all zero when nothing was counted.
pub fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            }
        })
        .collect()
}

/// `(absolute, relative)` maximum deviation of the observed shares from the
/// ideal ones. The relative figure skips zero-weight servers.
pub fn max_deviation(counts: &[u64], weights: &[u32]) -> (f64, f64) {
    let observed = shares(counts);
    let ideal = ideal_shares(weights);
    let mut abs = 0.0_f64;
    let mut rel = 0.0_f64;
    for (o, i) in observed.iter().zip(&ideal) {
        let d = (o - i).abs();
        abs = abs.max(d);
        if *i > 0.0 {
            rel = rel.max(d / i);
        }
    }
    (abs, rel)
}

/// Jain's fairness index over weight-normalised counts (zero-weight servers
/// excluded). Returns 1 for fewer than two weighted servers, and 0 when no
/// weighted server received anything.
pub fn jain_index(counts: &[u64], weights: &[u32]) -> f64 {
    let xs: Vec<f64> = counts
        .iter()
        .zip(weights)
        .filter(|&(_, &w)| w > 0)
        .map(|(&c, &w)| c as f64 / f64::from(w))
        .collect();
    if xs.len() < 2 {
        return 1.0;
    }
    let sum: f64 = xs.iter().sum();
    let sum_sq: f64 = xs.iter().map(|x| x * x).sum();
    if sum_sq == 0.0 {
        return 0.0;
    }
    sum * sum / (xs.len() as f64 * sum_sq)
}

/// Pearson's chi-square of the counts against the weights, over weighted
/// servers only; returns `(chi2, dof)` with `dof = k − 1` (0 for one server or
/// when the weighted servers received nothing).
pub fn chi_square(counts: &[u64], weights: &[u32]) -> (f64, u32) {
    let weighted: Vec<(u64, u32)> = counts
        .iter()
        .zip(weights)
        .filter(|&(_, &w)| w > 0)
        .map(|(&c, &w)| (c, w))
        .collect();
    let total: u64 = weighted.iter().map(|&(c, _)| c).sum();
    let total_w: u64 = weighted.iter().map(|&(_, w)| u64::from(w)).sum();
    if weighted.len() < 2 || total == 0 {
        return (0.0, weighted.len().saturating_sub(1) as u32);
    }
    let chi2 = weighted
        .iter()
        .map(|&(c, w)| {
            let expected = total as f64 * f64::from(w) / total_w as f64;
            let d = c as f64 - expected;
            d * d / expected
        })
        .sum();
    (chi2, (weighted.len() - 1) as u32)
}

/// Upper-tail probability of the chi-square distribution: `P(X ≥ chi2)` for
/// `dof` degrees of freedom, i.e. `Q(dof/2, chi2/2)`. With `dof == 0` the
/// statistic is always 0, so the p-value is 1.
pub fn chi2_p_value(chi2: f64, dof: u32) -> f64 {
    if dof == 0 || chi2 <= 0.0 {
        return 1.0;
    }
    if !chi2.is_finite() {
        return 0.0;
    }
    gamma_q(f64::from(dof) / 2.0, chi2 / 2.0)
}

/// All fairness figures for `counts` against `weights` (same order). `None`
/// when nothing was counted or every weight is zero: no observation, no
/// verdict.
pub fn evaluate(basis: FairnessBasis, counts: &[u64], weights: &[u32]) -> Option<Fairness> {
    assert_eq!(counts.len(), weights.len(), "one weight per count");
    if counts.iter().sum::<u64>() == 0 || weights.iter().all(|&w| w == 0) {
        return None;
    }
    let (max_deviation, max_relative_deviation) = max_deviation(counts, weights);
    let (chi2, dof) = chi_square(counts, weights);
    Some(Fairness {
        basis,
        max_deviation,
        max_relative_deviation,
        jain: jain_index(counts, weights),
        chi2,
        chi2_p: chi2_p_value(chi2, dof),
        dof,
    })
}

/// Regularized upper incomplete gamma function `Q(a, x) = Γ(a, x) / Γ(a)`,
/// for `a > 0`, `x ≥ 0`: the series for `x < a + 1`, Lentz's continued
/// fraction otherwise (Numerical Recipes §6.2).
pub fn gamma_q(a: f64, x: f64) -> f64 {
    assert!(a > 0.0, "gamma_q needs a > 0");
    if x <= 0.0 {
        return 1.0;
    }
    if x < a + 1.0 {
        1.0 - gamma_p_series(a, x)
    } else {
        gamma_q_continued_fraction(a, x)
    }
}

const EPS: f64 = 1e-15;
const MAX_ITER: usize = 10_000;
const TINY: f64 = 1e-300;

/// `P(a, x)` by its series: `e^{-x} x^a / Γ(a) · Σ x^n / (a(a+1)…(a+n))`.
fn gamma_p_series(a: f64, x: f64) -> f64 {
    let mut ap = a;
    let mut term = 1.0 / a;
    let mut sum = term;
    for _ in 0..MAX_ITER {
        ap += 1.0;
        term *= x / ap;
        sum += term;
        if term.abs() < sum.abs() * EPS {
            break;
        }
    }
    (sum.ln() - x + a * x.ln() - ln_gamma(a)).exp()
}

/// `Q(a, x)` by its continued fraction, evaluated with modified Lentz.
fn gamma_q_continued_fraction(a: f64, x: f64) -> f64 {
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..MAX_ITER {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + an / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < EPS {
            break;
        }
    }
    (-x + a * x.ln() - ln_gamma(a)).exp() * h
}

/// `ln Γ(x)` for `x > 0`, Lanczos approximation (g = 7, n = 9), accurate to
/// about 15 digits.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEF[0];
    for (i, &c) in COEF.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn ln_gamma_known_values() {
        assert!(close(ln_gamma(1.0), 0.0, 1e-13));
        assert!(close(ln_gamma(2.0), 0.0, 1e-13));
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-12));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
        assert!(close(ln_gamma(100.0), 359.134_205_369_575_4, 1e-9));
    }

    #[test]
    fn chi2_p_values_match_tables() {
        // Critical values from standard chi-square tables.
        assert!(close(chi2_p_value(3.841_458_820_694_124, 1), 0.05, 1e-9));
        assert!(close(chi2_p_value(6.634_896_601_021_214, 1), 0.01, 1e-9));
        assert!(close(chi2_p_value(5.991_464_547_107_979, 2), 0.05, 1e-9));
        assert!(close(chi2_p_value(2.0, 2), (-1.0f64).exp(), 1e-12));
        assert!(close(chi2_p_value(18.307_038_053_275_146, 10), 0.05, 1e-6));
        assert!(close(chi2_p_value(124.342_113_404_070_6, 100), 0.05, 1e-5));
        // Both branches of gamma_q (series below a+1, fraction above).
        assert!(close(chi2_p_value(1.0, 4), 0.909_795_989_696_688_7, 1e-9));
        assert!(close(
            chi2_p_value(20.0, 4),
            0.000_499_399_227_387_334,
            1e-12
        ));
    }

    #[test]
    fn chi2_p_value_edges() {
        assert_eq!(chi2_p_value(0.0, 1), 1.0);
        assert_eq!(chi2_p_value(0.0, 5), 1.0);
        assert_eq!(chi2_p_value(7.0, 0), 1.0);
        assert_eq!(chi2_p_value(f64::INFINITY, 3), 0.0);
        assert!(chi2_p_value(1e6, 3) < 1e-100);
        assert!(gamma_q(2.5, 1e-12) > 0.999_999);
    }

    #[test]
    fn jain_known_values() {
        assert!(close(jain_index(&[10, 10, 10], &[1, 1, 1]), 1.0, 1e-12));
        assert!(close(jain_index(&[1, 0], &[1, 1]), 0.5, 1e-12));
        assert!(close(
            jain_index(&[100, 0, 0, 0], &[1, 1, 1, 1]),
            0.25,
            1e-12
        ));
        // Weight-normalised: 2:1 weights with 2:1 counts is perfectly fair.
        assert!(close(jain_index(&[200, 100], &[2, 1]), 1.0, 1e-12));
        // Zero-weight servers are left out.
        assert!(close(jain_index(&[50, 50, 7], &[1, 1, 0]), 1.0, 1e-12));
        assert_eq!(jain_index(&[5], &[1]), 1.0);
        assert_eq!(jain_index(&[0, 0, 9], &[1, 1, 0]), 0.0);
    }

    #[test]
    fn ideal_and_deviation() {
        assert_eq!(ideal_shares(&[1, 1, 2]), vec![0.25, 0.25, 0.5]);
        assert_eq!(ideal_shares(&[0, 0]), vec![0.0, 0.0]);
        assert_eq!(ideal_shares(&[3, 0]), vec![1.0, 0.0]);
        let (abs, rel) = max_deviation(&[60, 40], &[1, 1]);
        assert!(close(abs, 0.1, 1e-12));
        assert!(close(rel, 0.2, 1e-12));
        // Traffic on a zero-weight server counts in the absolute deviation.
        let (abs, _) = max_deviation(&[70, 30], &[1, 0]);
        assert!(close(abs, 0.3, 1e-12));
    }

    #[test]
    fn chi_square_statistic() {
        // 60/40 against 50/50: (10² + 10²) / 50 = 4, dof 1.
        let (chi2, dof) = chi_square(&[60, 40], &[1, 1]);
        assert!(close(chi2, 4.0, 1e-12));
        assert_eq!(dof, 1);
        let (chi2, dof) = chi_square(&[100, 0], &[1, 0]);
        assert_eq!((chi2, dof), (0.0, 0));
    }

    #[test]
    fn evaluate_even_round_robin() {
        let f = evaluate(FairnessBasis::Rpcs, &[500, 500], &[1, 1]).unwrap();
        assert_eq!(f.basis, FairnessBasis::Rpcs);
        assert_eq!(f.max_deviation, 0.0);
        assert_eq!(f.jain, 1.0);
        assert_eq!(f.chi2, 0.0);
        assert_eq!(f.chi2_p, 1.0);
        assert_eq!(f.dof, 1);
    }

    #[test]
    fn evaluate_persistence_pinned() {
        let f = evaluate(FairnessBasis::Rpcs, &[1000, 0], &[1, 1]).unwrap();
        assert!(close(f.max_deviation, 0.5, 1e-12));
        assert!(close(f.jain, 0.5, 1e-12));
        assert!(close(f.chi2, 1000.0, 1e-9));
        assert!(f.chi2_p < 1e-100);
    }

    #[test]
    fn evaluate_edge_cases() {
        assert_eq!(evaluate(FairnessBasis::Rpcs, &[0, 0], &[1, 1]), None);
        assert_eq!(evaluate(FairnessBasis::Rpcs, &[5, 5], &[0, 0]), None);
        assert_eq!(evaluate(FairnessBasis::Rpcs, &[], &[]), None);
        let one = evaluate(FairnessBasis::Connections, &[42], &[3]).unwrap();
        assert_eq!(one.max_deviation, 0.0);
        assert_eq!(one.jain, 1.0);
        assert_eq!(one.dof, 0);
        assert_eq!(one.chi2_p, 1.0);
    }
}
