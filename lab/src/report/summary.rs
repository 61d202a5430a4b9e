//! The terminal summary the CLI prints at the end of a scenario: plain,
//! aligned text without colours, so it reads the same in a terminal, a CI
//! log and a pasted issue.

use std::fmt::Write as _;

use super::model::{ClientResult, Report, RunnerKind};
use super::render_md::cross_check_findings;
use super::text::{Align, ClientSpread, Table, ms, p_is, pct, servers_seen};

/// Up to this many client IPs are listed one per line; more are summarised.
pub const MAX_CLIENT_LINES: usize = 16;

/// Renders the end-of-run summary.
pub fn render_summary(r: &Report) -> String {
    let mut out = String::new();
    write_header(&mut out, r);
    write_servers(&mut out, r);
    write_fairness(&mut out, r);
    write_persistence(&mut out, r);
    write_latency(&mut out, r);
    write_errors(&mut out, r);
    write_connects(&mut out, r);
    write_failover(&mut out, r);
    if let Some(a) = &r.attribution {
        for line in super::attribution::summary_lines(a) {
            let _ = writeln!(out, "{line}");
        }
    }
    for finding in cross_check_findings(r) {
        let _ = writeln!(out, "Cross-check: {finding}");
    }
    for note in &r.notes {
        let _ = writeln!(out, "Note: {note}");
    }
    if let Some(w) = r
        .resources
        .as_ref()
        .and_then(super::resources::saturation_warning)
    {
        let _ = writeln!(out, "Note: {w}");
    }
    out.push('\n');
    write_expectations(&mut out, r);
    write_verdict(&mut out, r);
    out
}

/// `== name (runner kernel, duration) ==`, the description and a blank line.
fn write_header(out: &mut String, r: &Report) {
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
}

/// The per-real-server table, if there are servers.
fn write_servers(out: &mut String, r: &Report) {
    if r.servers.is_empty() {
        return;
    }
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
    let or_dash = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    for s in &r.servers {
        t.row(vec![
            s.name.clone(),
            s.weight.to_string(),
            s.rpcs.to_string(),
            or_dash(s.server_rpcs),
            s.connections.to_string(),
            or_dash(s.ipvs_conns),
            pct(s.share),
            pct(s.ideal_share),
        ]);
    }
    out.push_str(&t.render_text("  "));
    if r.ideal_source == super::model::IdealSource::KernelMapping {
        let _ = writeln!(
            out,
            "  ideal = the kernel's own mapping ({} hashes an address to a server); the weight shares and chi-square are informational",
            r.config.lb_algo
        );
    }
    out.push('\n');
}

/// The fairness line and a blank line.
fn write_fairness(out: &mut String, r: &Report) {
    match &r.fairness {
        Some(f) => {
            let _ = writeln!(
                out,
                "Fairness (unit: {}{}): max deviation {}, Jain {:.4}, chi-square {:.2} (dof {}), {}, Cramér's V {:.3}, max/mean {:.3}{}\n",
                f.basis.as_str(),
                r.gate
                    .as_ref()
                    .map(|g| format!(", alpha {:.0e}, margin {}", g.alpha, pct(g.margin)))
                    .unwrap_or_default(),
                pct(f.max_deviation),
                f.jain,
                f.chi2,
                f.dof,
                p_is(f.chi2_p),
                f.cramers_v,
                f.max_over_mean,
                if f.informational {
                    " (informational: a hashing scheduler)"
                } else {
                    ""
                }
            );
        }
        None => out.push_str("Fairness: not computed (no traffic or no weights)\n\n"),
    }
}

/// How many client IPs stuck to one server and, for up to
/// [`MAX_CLIENT_LINES`] clients, one line each.
fn write_persistence(out: &mut String, r: &Report) {
    if r.clients.is_empty() {
        return;
    }
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
            t.row(vec![
                c.address.clone(),
                c.rpcs.to_string(),
                client_verdict(c).into(),
                servers_seen(c),
            ]);
        }
        out.push_str(&t.render_text("  "));
    }
    out.push('\n');
}

/// `pinned` (one server only), `spread` (more than one) or `-` (none).
fn client_verdict(c: &ClientResult) -> &'static str {
    if c.sticky {
        "pinned"
    } else if c.servers_seen.values().filter(|n| **n > 0).count() > 1 {
        "spread"
    } else {
        "-"
    }
}

/// The latency percentiles, if any were measured.
fn write_latency(out: &mut String, r: &Report) {
    let Some(l) = &r.latency_us else {
        return;
    };
    let _ = writeln!(
        out,
        "Latency ({} RPCs): p50 {}  p90 {}  p99 {}  p99.9 {}  max {}{}",
        l.count,
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p999),
        ms(l.max),
        if r.runner.kind == RunnerKind::Uml {
            "  (1-CPU UML guest, not production)"
        } else {
            ""
        }
    );
    if r.runner.unoptimized_build() {
        let _ = writeln!(out, "{}", UNOPTIMIZED_WARNING);
    }
}

/// Said under the latency of a report measured by an unoptimized binary.
pub const UNOPTIMIZED_WARNING: &str = "Warning: measured by an unoptimized (debug) build of lab: latency and \
     throughput describe the debug build, not IPVS. `make run` uses an optimized build (or pass --release \
     to cargo).";

/// The failed RPCs by status, if there were any.
/// One line, only when a connect failed or took a SYN retransmit.
fn write_connects(out: &mut String, r: &Report) {
    let Some(c) = &r.connects else {
        return;
    };
    if c.failed() == 0 && c.syn_retry_1s == 0 && c.syn_retry_3s == 0 {
        return;
    }
    let causes = counts(&c.failed_by_cause);
    let _ = writeln!(
        out,
        "Connects: {} of {} failed{}; {} in the 1 s SYN-retry bucket, {} in the 3 s one; p99 {}",
        c.failed(),
        c.attempts,
        if causes.is_empty() {
            String::new()
        } else {
            format!(" ({causes})")
        },
        c.syn_retry_1s,
        c.syn_retry_3s,
        ms(c.latency_us.p99)
    );
}

/// `name count` pairs in key order, comma-separated (empty for an empty map).
fn counts(by_name: &std::collections::BTreeMap<String, u64>) -> String {
    by_name
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_errors(out: &mut String, r: &Report) {
    if r.errors.total == 0 {
        return;
    }
    let by = counts(&r.errors.by_status);
    let _ = writeln!(
        out,
        "Errors: {} ({} of attempts){}",
        r.errors.total,
        pct(r.error_rate()),
        if by.is_empty() {
            String::new()
        } else {
            format!(": {by}")
        }
    );
}

/// Detection and recovery times and the clients' view, for failover runs.
fn write_failover(out: &mut String, r: &Report) {
    let Some(f) = &r.failover else {
        return;
    };
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

/// The PASS/FAIL table of expectations, if the scenario has any.
fn write_expectations(out: &mut String, r: &Report) {
    if r.expectations.is_empty() {
        return;
    }
    out.push_str("Expectations\n");
    let mut t = Table::new(&["", "expectation", "measured"])
        .align(1, Align::Left)
        .align(2, Align::Left);
    for e in &r.expectations {
        t.row(vec![
            e.effective_verdict().as_str().into(),
            e.name.clone(),
            e.detail.clone(),
        ]);
    }
    out.push_str(&t.render_text("  "));
    out.push('\n');
}

/// The last line: `PASSED`/`FAILED` and how many expectations held.
fn write_verdict(out: &mut String, r: &Report) {
    let passed = r.expectations.iter().filter(|e| e.passed).count();
    let _ = writeln!(
        out,
        "{}: {} of {} expectations held",
        if r.passed { "PASSED" } else { "FAILED" },
        passed,
        r.expectations.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata::synthetic_report;

    #[test]
    fn connects_get_one_line_only_when_one_failed_or_retried_a_syn() {
        let mut r = synthetic_report(4);
        let mut c = crate::report::model::Connects {
            attempts: 10,
            ok: 10,
            ..Default::default()
        };
        r.connects = Some(c.clone());
        assert!(!render_summary(&r).contains("Connects:"));
        c.failed_by_cause.insert("timeout".into(), 3);
        c.syn_retry_1s = 2;
        r.connects = Some(c);
        let text = render_summary(&r);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("Connects:"))
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert!(
            lines[0].contains("3 of 10 failed (timeout 3)"),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].contains("2 in the 1 s SYN-retry bucket"),
            "{}",
            lines[0]
        );
        let md = crate::report::render_md::render_markdown(&r);
        assert!(md.contains("## Connections"), "{md}");
        assert!(md.contains("| failed (3) | timeout 3 |"), "{md}");
    }

    #[test]
    fn summary_lists_servers_fairness_and_expectations() {
        let text = render_summary(&synthetic_report(4));
        for needle in [
            "== wrr-failover (uml kernel 7.2.13 lab build, 40.0 s) ==",
            "  server  weight",
            "  rs3          2",
            "Fairness (unit: rpcs): max deviation",
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

    /// A debug build's latency is flagged in the summary and in report.md;
    /// an optimized one's, or one from a report that did not record its
    /// build, is not.
    #[test]
    fn an_unoptimized_build_is_warned_about() {
        let mut r = synthetic_report(4);
        assert!(!render_summary(&r).contains(UNOPTIMIZED_WARNING));
        r.runner.build = None;
        assert!(!render_summary(&r).contains(UNOPTIMIZED_WARNING));
        r.runner.build = Some(crate::report::model::BuildInfo {
            profile: "debug".into(),
            opt_level: "0".into(),
            debug_assertions: true,
        });
        assert!(render_summary(&r).contains(UNOPTIMIZED_WARNING));
        assert!(crate::report::render_md::render_markdown(&r).contains(UNOPTIMIZED_WARNING));
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.contains(r#""build":{"profile":"debug","opt_level":"0","debug_assertions":true}"#)
        );
    }

    #[test]
    fn many_clients_are_summarised() {
        let text = render_summary(&synthetic_report(1000));
        assert!(text.contains("666 of 1000 stuck to one server"));
        assert!(!text.contains("10.0.3.200"));
    }

    /// The whole text, every section present: pins the layout byte for byte.
    #[test]
    fn summary_text_is_pinned() {
        // A raw string: a `\` line continuation would eat the indentation.
        let expected = r#"== wrr-failover (uml kernel 7.2.13 lab build, 40.0 s) ==
Weighted round robin over three servers; rs2 fails at 20 s

Real servers
  server  weight  RPCs  srv RPCs  conns  IPVS conns  share  ideal
  ---------------------------------------------------------------
  rs1          1   227       227     40          40  12.5%  25.0%
  rs2          1   664       665     38          38  36.4%  25.0%
  rs3          2   931       931     82          82  51.1%  50.0%

Fairness (unit: rpcs): max deviation 12.5%, Jain 0.8650, chi-square 210.50 (dof 2), p = 1.9e-46, Cramér's V 0.240, max/mean 1.468

Persistence per client IP: 2 of 4 stuck to one server (2 reached 1 server, 2 reached 3 servers; sticky per server: rs1 0, rs2 1, rs3 1)
  client     RPCs  verdict  servers seen
  ---------------------------------------------------
  10.0.0.10   400  spread   rs1 100, rs2 100, rs3 200
  10.0.0.11   437  pinned   rs2 437
  10.0.0.12   474  pinned   rs3 474
  10.0.0.13   511  spread   rs1 127, rs2 127, rs3 257

Latency (20000 RPCs): p50 0.249 ms  p90 0.406 ms  p99 0.639 ms  p99.9 20.85 ms  max 21.50 ms  (1-CPU UML guest, not production)
Errors: 240 (11.6% of attempts): Unavailable 240
Failover: rs2 killed (SIGKILL); detection 3.20 s, recovery 4.10 s
Cross-check: rs2: clients counted 664 RPCs, the server counted 665 (+1)
Note: persistence pinned most client IPs to one server for the 50 s timeout
Note: rs2 was removed by TCP_CHECK 3.2 s after the fault

Expectations
        expectation                measured
  --------------------------------------------------------------
  PASS  max_deviation <= 0.10      0.043
  PASS  failover.detection_s <= 5  3.2 s
  FAIL  errors.total == 0          240 failed RPCs (Unavailable)

FAILED: 2 of 3 expectations held
"#;
        assert_eq!(render_summary(&synthetic_report(4)), expected);
    }
}
