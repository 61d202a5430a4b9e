//! The terminal summary the CLI prints at the end of a scenario: plain,
//! aligned text without colours, so it reads the same in a terminal, a CI
//! log and a pasted issue.

use std::fmt::Write as _;

use super::model::Report;
use super::render_md::cross_check_findings;
use super::text::{Align, ClientSpread, Table, ms, p_is, pct, servers_seen};

/// Up to this many client IPs are listed one per line; more are summarised.
pub const MAX_CLIENT_LINES: usize = 16;

/// Renders the end-of-run summary.
pub fn render_summary(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== {} ({} kernel {}{}, {:.1} s) ==",
        r.scenario.name,
        r.runner.kind.as_str(),
        r.runner.kernel,
        if r.runner.lab_kernel() {
            " lab build"
        } else {
            ""
        },
        r.duration_s
    );
    if !r.scenario.description.is_empty() {
        let _ = writeln!(out, "{}", r.scenario.description);
    }
    out.push('\n');

    if !r.servers.is_empty() {
        out.push_str("Real servers\n");
        let mut t = Table::new(&[
            "server",
            "weight",
            "RPCs",
            "srv RPCs",
            "conns",
            "IPVS conns",
            "share",
            "ideal",
        ]);
        for s in &r.servers {
            t.row(vec![
                s.name.clone(),
                s.weight.to_string(),
                s.rpcs.to_string(),
                s.server_rpcs
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into()),
                s.connections.to_string(),
                s.ipvs_conns
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into()),
                pct(s.share),
                pct(s.ideal_share),
            ]);
        }
        out.push_str(&t.render_text("  "));
        out.push('\n');
    }

    match &r.fairness {
        Some(f) => {
            let _ = writeln!(
                out,
                "Fairness ({}): max deviation {}, Jain {:.4}, chi-square {:.2} (dof {}), {}\n",
                f.basis.as_str(),
                pct(f.max_deviation),
                f.jain,
                f.chi2,
                f.dof,
                p_is(f.chi2_p)
            );
        }
        None => out.push_str("Fairness: not computed (no traffic or no weights)\n\n"),
    }

    if !r.clients.is_empty() {
        let spread = ClientSpread::of(r);
        let _ = writeln!(
            out,
            "Persistence per client IP: {} of {} stuck to one server ({}; sticky per server: {})",
            spread.sticky,
            spread.clients,
            spread.reached_text(),
            spread.pinned_text()
        );
        if r.clients.len() <= MAX_CLIENT_LINES {
            let mut t = Table::new(&["client", "RPCs", "verdict", "servers seen"])
                .align(2, Align::Left)
                .align(3, Align::Left);
            for c in &r.clients {
                let verdict = if c.sticky {
                    "pinned"
                } else if c.servers_seen.values().filter(|n| **n > 0).count() > 1 {
                    "spread"
                } else {
                    "-"
                };
                t.row(vec![
                    c.address.clone(),
                    c.rpcs.to_string(),
                    verdict.into(),
                    servers_seen(c),
                ]);
            }
            out.push_str(&t.render_text("  "));
        }
        out.push('\n');
    }

    if let Some(l) = &r.latency_us {
        let _ = writeln!(
            out,
            "Latency ({} RPCs): p50 {}  p90 {}  p99 {}  p99.9 {}  max {}{}",
            l.count,
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p999),
            ms(l.max),
            if r.runner.kind == super::model::RunnerKind::Uml {
                "  (1-CPU UML guest, not production)"
            } else {
                ""
            }
        );
    }
    if r.errors.total > 0 {
        let by: Vec<String> = r
            .errors
            .by_status
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            out,
            "Errors: {} ({} of attempts){}",
            r.errors.total,
            pct(r.error_rate()),
            if by.is_empty() {
                String::new()
            } else {
                format!(": {}", by.join(", "))
            }
        );
    }
    if let Some(f) = &r.failover {
        let secs = |v: Option<f64>| v.map(|s| format!("{s:.2} s")).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "Failover: {}detection {}, recovery {}",
            f.fault
                .as_ref()
                .map(|x| format!("{x}; "))
                .unwrap_or_default(),
            secs(f.detection_s),
            secs(f.recover_s)
        );
        if let Some(v) = &f.client_view {
            let _ = writeln!(out, "Clients: {v}");
        }
    }
    for finding in cross_check_findings(r) {
        let _ = writeln!(out, "Cross-check: {finding}");
    }
    for note in &r.notes {
        let _ = writeln!(out, "Note: {note}");
    }
    out.push('\n');

    if !r.expectations.is_empty() {
        out.push_str("Expectations\n");
        let mut t = Table::new(&["", "expectation", "measured"])
            .align(1, Align::Left)
            .align(2, Align::Left);
        for e in &r.expectations {
            t.row(vec![
                if e.passed { "PASS" } else { "FAIL" }.into(),
                e.name.clone(),
                e.detail.clone(),
            ]);
        }
        out.push_str(&t.render_text("  "));
        out.push('\n');
    }
    let passed = r.expectations.iter().filter(|e| e.passed).count();
    let _ = writeln!(
        out,
        "{}: {} of {} expectations held",
        if r.passed { "PASSED" } else { "FAILED" },
        passed,
        r.expectations.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata::synthetic_report;

    #[test]
    fn summary_lists_servers_fairness_and_expectations() {
        let text = render_summary(&synthetic_report(4));
        for needle in [
            "== wrr-failover (uml kernel 7.2.13 lab build, 40.0 s) ==",
            "  server  weight",
            "  rs3          2",
            "Fairness (rpcs): max deviation",
            "Persistence per client IP: 2 of 4 stuck to one server",
            "10.0.0.11   ",
            "pinned",
            "Latency (20000 RPCs): p50 0.249 ms",
            "(1-CPU UML guest, not production)",
            "  FAIL  errors.total == 0",
            "FAILED: 2 of 3 expectations held",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn many_clients_are_summarised() {
        let text = render_summary(&synthetic_report(1000));
        assert!(text.contains("666 of 1000 stuck to one server"));
        assert!(!text.contains("10.0.3.200"));
    }
}
