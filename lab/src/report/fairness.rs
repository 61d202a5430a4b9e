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
//!   `k − 1` degrees of freedom, and its p-value, the upper tail of the
//!   chi-square distribution (statrs). Counts that landed on zero-weight
//!   servers cannot enter chi-square (their expectation is 0); they show up in
//!   the max deviation instead.
//! - **Effect sizes** beside the p-value, because with enough data any
//!   deviation is "significant": Cramér's V `sqrt(chi2 / (N·dof))` and the
//!   largest weight-normalised count over their mean.
//! - **Sample size**: [`required_n`], the N at which the test detects a
//!   declared margin with power 0.8 (see there for the method, and how it
//!   compares with grpc-go's rule).
//! - **Homogeneity**: [`homogeneity`], the 2×k chi-square between a baseline's
//!   counts and this run's.
//!
//! Round robin is deterministic, not random, so a tiny chi-square (p ≈ 1) is
//! what a healthy `rr` looks like; a p-value near 0 says the traffic did not
//! follow the weights (persistence, long-lived channels, a failed server).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::model::{Fairness, FairnessBasis, Report};

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

/// `count_i / w_i` for the weighted servers (zero-weight ones excluded):
/// what Jain's index and max/mean compare.
fn weight_normalised(counts: &[u64], weights: &[u32]) -> Vec<f64> {
    counts
        .iter()
        .zip(weights)
        .filter(|&(_, &w)| w > 0)
        .map(|(&c, &w)| c as f64 / f64::from(w))
        .collect()
}

/// Jain's fairness index over weight-normalised counts (zero-weight servers
/// excluded). Returns 1 for fewer than two weighted servers, and 0 when no
/// weighted server received anything.
pub fn jain_index(counts: &[u64], weights: &[u32]) -> f64 {
    let xs = weight_normalised(counts, weights);
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

/// The significance level of every test of the gate unless `[expect] alpha`
/// says otherwise: a test fails only at p ≤ 10⁻⁶, as grpc-go's weighted
/// round-robin test does, so a healthy scheduler fails by chance about once
/// in a million runs per test.
pub const DEFAULT_ALPHA: f64 = 1e-6;

/// The smallest deviation of a share, in absolute terms (0.10 = ten
/// percentage points), that the goodness-of-fit test must detect with
/// [`POWER`] unless `[expect] margin` says otherwise. It sizes the sample:
/// a scenario with fewer units than [`required_n`] cannot judge.
pub const DEFAULT_MARGIN: f64 = 0.10;

/// The probability of catching a deviation of the margin (the test's power).
pub const POWER: f64 = 0.8;

/// Failed RPCs a run may have beyond its baseline's, unless `[expect]
/// error_budget` says otherwise: 0, because most scenarios fail no RPC at
/// all; scenarios whose point is a failure declare their own budget.
pub const DEFAULT_ERROR_BUDGET: u64 = 0;

/// The fewest units per server a test needs whatever the margin (Pearson's
/// chi-square approximation wants about 5 expected per cell).
pub const MIN_PER_SERVER: u64 = 5;

/// Upper-tail probability of the chi-square distribution: `P(X ≥ chi2)` for
/// `dof` degrees of freedom. With `dof == 0` the statistic is always 0, so
/// the p-value is 1.
pub fn chi2_p_value(chi2: f64, dof: u32) -> f64 {
    if dof == 0 || chi2 <= 0.0 {
        return 1.0;
    }
    if !chi2.is_finite() {
        return 0.0;
    }
    chi2_sf(chi2, f64::from(dof))
}

/// `P(X ≥ x)` for a chi-square with (possibly fractional) `dof`.
fn chi2_sf(x: f64, dof: f64) -> f64 {
    ChiSquared::new(dof).map_or(1.0, |d| d.sf(x))
}

/// The critical value: the `x` with `P(X ≥ x) = alpha` for `dof` degrees of
/// freedom, by bisection on the tail (monotone, so exact to ~1e-9).
pub fn chi2_critical(alpha: f64, dof: u32) -> f64 {
    let dof = f64::from(dof.max(1));
    let mut hi = dof.max(1.0);
    while chi2_sf(hi, dof) > alpha && hi < 1e9 {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if chi2_sf(mid, dof) > alpha {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-9 * hi {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The power of a chi-square test at critical value `crit` when the
/// statistic is noncentral with parameter `lambda`: Patnaik's approximation
/// of the noncentral chi-square by `c·χ²(f)` with `c = (k+2λ)/(k+λ)` and
/// `f = (k+λ)²/(k+2λ)` (it matches the first two moments).
pub fn noncentral_power(lambda: f64, dof: u32, crit: f64) -> f64 {
    let k = f64::from(dof.max(1));
    let c = (k + 2.0 * lambda) / (k + lambda);
    let f = (k + lambda).powi(2) / (k + 2.0 * lambda);
    chi2_sf(crit / c, f)
}

/// The noncentrality at which the test at `alpha` reaches `power`.
fn lambda_for_power(alpha: f64, dof: u32, power: f64) -> f64 {
    let crit = chi2_critical(alpha, dof);
    let mut hi = 1.0;
    while noncentral_power(hi, dof, crit) < power && hi < 1e12 {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if noncentral_power(mid, dof, crit) < power {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-9 * hi {
            break;
        }
    }
    hi
}

/// How many units (connections, client IPs, groups) the goodness-of-fit test
/// needs to tell the weights from a deviation of `margin` at level `alpha`
/// with `power`, and never fewer than [`MIN_PER_SERVER`] per server.
///
/// Method: Pearson's statistic against the ideal shares `p` is noncentral
/// chi-square with `λ = N·w²` under an alternative `p + d`, where Cohen's
/// `w² = Σ dᵢ²/pᵢ`. The least detectable alternative whose largest
/// deviation is `margin` moves `margin` onto (or off) the server whose share
/// is closest to ½ and takes it proportionally from the others, giving
/// `w² = margin² / max pᵢ(1−pᵢ)`. N is the smallest with
/// `power(N·w²) ≥ power` ([`noncentral_power`]).
///
/// Compared with grpc-go's rule (≥ 500 expected in the rarest bucket):
/// two even servers at margin 0.10 need 821 here, grpc-go 1,000; four even
/// servers 723 here, grpc-go 2,000; 3:1 weights 616 here, grpc-go 2,000. The
/// rule of thumb is safe but blind to the margin; this one says what
/// deviation the gate can see, and lets a scenario trade N for margin.
pub fn required_n(weights: &[u32], alpha: f64, margin: f64, power: f64) -> u64 {
    let floor = weights.len() as u64 * MIN_PER_SERVER;
    let ideal: Vec<f64> = ideal_shares(weights)
        .into_iter()
        .filter(|&p| p > 0.0)
        .collect();
    if ideal.len() < 2 || margin <= 0.0 {
        return floor;
    }
    let dof = (ideal.len() - 1) as u32;
    let spread = ideal.iter().map(|p| p * (1.0 - p)).fold(0.0, f64::max);
    let w2 = margin * margin / spread;
    let n = (lambda_for_power(alpha, dof, power) / w2).ceil() as u64;
    n.max(floor)
}

/// Pearson's chi-square homogeneity test of two count vectors over the same
/// servers (a 2×k contingency table): `(chi2, dof, p)`. Servers that neither
/// side counted are left out; `None` when either side counted nothing.
pub fn homogeneity(a: &[u64], b: &[u64]) -> Option<(f64, u32, f64)> {
    assert_eq!(a.len(), b.len(), "one count per server on both sides");
    let (na, nb): (u64, u64) = (a.iter().sum(), b.iter().sum());
    if na == 0 || nb == 0 {
        return None;
    }
    let n = (na + nb) as f64;
    let mut chi2 = 0.0;
    let mut cols = 0u32;
    for (&x, &y) in a.iter().zip(b) {
        let col = (x + y) as f64;
        if col == 0.0 {
            continue;
        }
        cols += 1;
        for (obs, row) in [(x, na), (y, nb)] {
            let expected = row as f64 * col / n;
            let d = obs as f64 - expected;
            chi2 += d * d / expected;
        }
    }
    let dof = cols.saturating_sub(1);
    Some((chi2, dof, chi2_p_value(chi2, dof)))
}

/// Cramér's V of a goodness of fit: `sqrt(chi2 / (N·dof))`, 0 for no data.
pub fn cramers_v(chi2: f64, n: u64, dof: u32) -> f64 {
    if n == 0 || dof == 0 {
        0.0
    } else {
        (chi2 / (n as f64 * f64::from(dof))).sqrt()
    }
}

/// The largest weight-normalised count over their mean (weighted servers);
/// 1 when the counts follow the weights exactly, 0 without data.
pub fn max_over_mean(counts: &[u64], weights: &[u32]) -> f64 {
    let xs = weight_normalised(counts, weights);
    let mean = xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    if mean == 0.0 {
        return 0.0;
    }
    xs.iter().copied().fold(0.0, f64::max) / mean
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
    let weighted_n: u64 = counts
        .iter()
        .zip(weights)
        .filter(|&(_, &w)| w > 0)
        .map(|(&c, _)| c)
        .sum();
    Some(Fairness {
        basis,
        counts: counts.to_vec(),
        max_deviation,
        max_relative_deviation,
        jain: jain_index(counts, weights),
        chi2,
        chi2_p: chi2_p_value(chi2, dof),
        dof,
        cramers_v: cramers_v(chi2, weighted_n, dof),
        max_over_mean: max_over_mean(counts, weights),
        informational: false,
    })
}

/// The per-server counts of `report` on `unit`, in server order.
///
/// - RPCs and connections: the servers' own tallies.
/// - Client IPs: each client IP counts once toward every server its RPCs
///   reached. With persistence or a hashing scheduler an IP reaches one
///   server, so N is the number of IPs; an IP that moved (a template
///   expired, a server failed) counts toward each server it was given, since
///   each was one decision of the scheduler.
/// - Groups: the same per persistence group, the client address ANDed with
///   `persistence_granularity`: the kernel keys its template on the group.
pub fn unit_counts(report: &Report, unit: FairnessBasis) -> Vec<u64> {
    let index = |name: &str| report.servers.iter().position(|s| s.name == name);
    match unit {
        FairnessBasis::Rpcs => report.servers.iter().map(|s| s.rpcs).collect(),
        FairnessBasis::Connections => report.servers.iter().map(|s| s.connections).collect(),
        FairnessBasis::ClientIps | FairnessBasis::Groups => {
            let mask = match unit {
                FairnessBasis::Groups => report
                    .config
                    .persistence_granularity
                    .as_deref()
                    .and_then(|g| g.parse::<Ipv4Addr>().ok())
                    .map_or(u32::MAX, u32::from),
                _ => u32::MAX,
            };
            let mut seen: BTreeSet<(u32, usize)> = BTreeSet::new();
            for c in &report.clients {
                let Ok(ip) = c.address.parse::<Ipv4Addr>() else {
                    continue;
                };
                for (server, &n) in &c.servers_seen {
                    if let (true, Some(i)) = (n > 0, index(server)) {
                        seen.insert((u32::from(ip) & mask, i));
                    }
                }
            }
            let mut counts = vec![0u64; report.servers.len()];
            for (_, i) in seen {
                counts[i] += 1;
            }
            counts
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
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
        assert!(chi2_p_value(1e-12, 5) > 0.999_999);
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

    #[test]
    fn critical_values_invert_the_tail() {
        assert!(close(chi2_critical(0.05, 1), 3.841_458_820_694_124, 1e-6));
        assert!(close(chi2_critical(0.05, 2), 5.991_464_547_107_979, 1e-6));
        // alpha 1e-6, dof 1: z = 4.8916, z² = 23.928.
        assert!(close(chi2_critical(1e-6, 1), 23.928, 1e-3));
        for dof in [1, 3, 7] {
            let c = chi2_critical(1e-6, dof);
            assert!(close(chi2_p_value(c, dof), 1e-6, 1e-9), "dof {dof}");
        }
    }

    #[test]
    fn power_grows_with_noncentrality() {
        let crit = chi2_critical(0.05, 1);
        // No effect: the power is the level itself (Patnaik is exact at λ=0).
        assert!(close(noncentral_power(0.0, 1, crit), 0.05, 1e-6));
        // dof 1, λ = (1.96 + 0.8416)² = 7.849 gives power 0.80 exactly for
        // the two-sided z-test; Patnaik's approximation is within 0.02.
        assert!(close(noncentral_power(7.849, 1, crit), 0.80, 0.02));
        assert!(noncentral_power(20.0, 1, crit) > noncentral_power(8.0, 1, crit));
    }

    #[test]
    fn required_sample_sizes() {
        // Two even servers, alpha 1e-6, margin 0.10, power 0.8: the normal
        // approximation gives λ = (4.8916 + 0.8416)² = 32.87, w² = 0.04,
        // N ≈ 821.
        let n = required_n(&[1, 1], 1e-6, 0.10, 0.8);
        assert!((780..=860).contains(&n), "{n}");
        // A wider margin needs fewer, a stricter alpha more.
        assert!(required_n(&[1, 1], 1e-6, 0.25, 0.8) < n / 4);
        assert!(required_n(&[1, 1], 1e-9, 0.10, 0.8) > n);
        // 3:1 weights and four servers: the least detectable move is on the
        // share closest to one half.
        let wrr = required_n(&[3, 1], 1e-6, 0.10, 0.8);
        assert!((560..=680).contains(&wrr), "{wrr}");
        let four = required_n(&[1, 1, 1, 1], 1e-6, 0.10, 0.8);
        assert!((650..=900).contains(&four), "{four}");
        // One weighted server: nothing to test, only the floor.
        assert_eq!(required_n(&[1, 0], 1e-6, 0.10, 0.8), 2 * MIN_PER_SERVER);
    }

    #[test]
    fn homogeneity_passes_alike_and_fails_different_counts() {
        let (chi2, dof, p) = homogeneity(&[500, 500], &[480, 520]).unwrap();
        assert_eq!(dof, 1);
        assert!(chi2 < 1.0 && p > 0.3, "{chi2} {p}");
        // 500/500 against 700/300: very different.
        let (_, _, p) = homogeneity(&[500, 500], &[700, 300]).unwrap();
        assert!(p < 1e-6, "{p}");
        // Known value: [[10, 20], [20, 10]] gives chi2 = 6.667.
        let (chi2, _, _) = homogeneity(&[10, 20], &[20, 10]).unwrap();
        assert!(close(chi2, 20.0 / 3.0, 1e-9));
        // A server neither side counted is left out of the dof.
        assert_eq!(homogeneity(&[5, 5, 0], &[5, 5, 0]).unwrap().1, 1);
        assert_eq!(homogeneity(&[0, 0], &[1, 2]), None);
    }

    #[test]
    fn effect_sizes() {
        let even = evaluate(FairnessBasis::Connections, &[50, 50], &[1, 1]).unwrap();
        assert_eq!(even.cramers_v, 0.0);
        assert_eq!(even.max_over_mean, 1.0);
        let all_one = evaluate(FairnessBasis::Connections, &[100, 0], &[1, 1]).unwrap();
        assert!(close(all_one.cramers_v, 1.0, 1e-12));
        assert!(close(all_one.max_over_mean, 2.0, 1e-12));
        let wrr = evaluate(FairnessBasis::Connections, &[300, 100], &[3, 1]).unwrap();
        assert!(close(wrr.max_over_mean, 1.0, 1e-12));
        assert_eq!(wrr.counts, vec![300, 100]);
    }
}
