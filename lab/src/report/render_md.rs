//! `report.md`: the document a person reads after a run.
//!
//! It leads with what the run shows (the scenario's notes and the
//! expectations), then gives the configuration in keepalived syntax, the
//! per-server and per-client tables, fairness, latency, the timeline, and
//! the cross-checks between what the clients, the servers and IPVS counted.

use std::fmt::Write as _;

use super::charts;
use super::model::{IdealSource, Report, RunnerKind, VirtualServerConfig};
use super::text::{ClientSpread, Table, ms, p_is, p_value, pct, servers_seen};

/// Most client rows listed in `report.md`; the rest are in `report.json`.
pub const MAX_CLIENT_ROWS: usize = 20;

/// Renders `report.md`. It links `latency.hgrm` when the report carries the
/// histogram (`latency_us.histogram_b64`).
pub fn render_markdown(report: &Report) -> String {
    let has_hgrm = report
        .latency_us
        .as_ref()
        .is_some_and(|l| l.histogram_b64.is_some());
    render_markdown_with(report, has_hgrm)
}

/// Renders `report.md`, linking `latency.hgrm` when `has_hgrm`.
pub fn render_markdown_with(report: &Report, has_hgrm: bool) -> String {
    let mut md = String::new();
    header(&mut md, report);
    shows(&mut md, report);
    configuration(&mut md, report);
    servers(&mut md, report);
    fairness(&mut md, report);
    clients(&mut md, report);
    if let Some(a) = &report.attribution {
        super::attribution::markdown_section(&mut md, a);
    }
    latency(&mut md, report, has_hgrm);
    if let Some(r) = &report.resources {
        super::resources::markdown_section(&mut md, r);
    }
    timeline(&mut md, report);
    failover(&mut md, report);
    if let Some(r) = &report.rebalance {
        super::rebalance::markdown_section(&mut md, r);
    }
    templates(&mut md, report);
    ipvs_over_time(&mut md, report);
    director(&mut md, report);
    errors(&mut md, report);
    connections(&mut md, report);
    expectations(&mut md, report);
    cross_checks(&mut md, report);
    runner(&mut md, report);
    md
}

fn header(md: &mut String, r: &Report) {
    let _ = writeln!(md, "# {}", r.scenario.name);
    md.push('\n');
    if !r.scenario.description.is_empty() {
        let _ = writeln!(md, "{}\n", r.scenario.description);
    }
    let passed = r.expectations.iter().filter(|e| e.passed).count();
    let verdict = if r.passed { "PASSED" } else { "FAILED" };
    let _ = write!(
        md,
        "**{verdict}** ({passed} of {} expectations held). ",
        r.expectations.len()
    );
    let _ = write!(md, "Ran {:.1} s", r.duration_s);
    if !r.started_at.is_empty() {
        let _ = write!(md, " from {}", r.started_at);
    }
    let _ = write!(
        md,
        " on the {} kernel {}",
        match r.runner.kind {
            RunnerKind::Host => "host's",
            RunnerKind::Uml => "User-Mode Linux",
        },
        if r.runner.kernel.is_empty() {
            "(unknown)"
        } else {
            &r.runner.kernel
        }
    );
    if let Some(path) = &r.scenario.path {
        let _ = write!(md, "; scenario file `{path}`");
    }
    md.push_str(".\n\n");
}

fn shows(md: &mut String, r: &Report) {
    md.push_str("## What this run shows\n\n");
    for note in &r.notes {
        let _ = writeln!(md, "- {note}");
    }
    if let Some(f) = &r.fairness {
        let _ = writeln!(
            md,
            "- The split of {} (the unit of balancing) is at most {} away from the weights (Jain {:.3}, chi-square {}{}).",
            f.basis.plural(),
            pct(f.max_deviation).replace('%', " percentage points"),
            f.jain,
            p_is(f.chi2_p),
            if f.informational {
                "; informational only: a hashing scheduler's truth is its mapping"
            } else {
                ""
            }
        );
    }
    let failed: Vec<&str> = r
        .expectations
        .iter()
        .filter(|e| !e.passed)
        .map(|e| e.name.as_str())
        .collect();
    if r.expectations.is_empty() {
        md.push_str("- The scenario sets no expectations.\n");
    } else if failed.is_empty() {
        let _ = writeln!(md, "- All {} expectations held.", r.expectations.len());
    } else {
        let _ = writeln!(
            md,
            "- {} of {} expectations failed: {}.",
            failed.len(),
            r.expectations.len(),
            failed
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    md.push('\n');
}

/// The virtual server as a keepalived `virtual_server` block.
pub fn keepalived_config(c: &VirtualServerConfig) -> String {
    let mut k = String::new();
    let _ = writeln!(k, "virtual_server {} {} {{", c.vip, c.port);
    if let Some(d) = c.delay_loop_s {
        let _ = writeln!(k, "    delay_loop {d}");
    }
    let _ = writeln!(k, "    lb_algo {}", c.lb_algo);
    let _ = writeln!(k, "    lb_kind {}", c.lb_kind);
    if let Some(t) = c.persistence_timeout.filter(|&t| t > 0) {
        let _ = writeln!(k, "    persistence_timeout {t}");
        if let Some(g) = &c.persistence_granularity {
            let _ = writeln!(k, "    persistence_granularity {g}");
        }
    }
    let _ = writeln!(k, "    protocol {}", c.protocol);
    if c.inhibit_on_failure {
        k.push_str("    inhibit_on_failure\n");
    }
    for rs in &c.real_servers {
        k.push('\n');
        let _ = writeln!(k, "    # {}", rs.name);
        let _ = writeln!(k, "    real_server {} {} {{", rs.address, rs.port);
        let _ = writeln!(k, "        weight {}", rs.weight);
        if let Some(hc) = &rs.health_check {
            let _ = writeln!(k, "        {} {{", hc.kind);
            if let Some(t) = hc.connect_timeout_s {
                let _ = writeln!(k, "            connect_timeout {t}");
            }
            if let Some(p) = hc.connect_port {
                let _ = writeln!(k, "            connect_port {p}");
            }
            if let Some(n) = hc.retry {
                let _ = writeln!(k, "            retry {n}");
            }
            if let Some(d) = hc.delay_before_retry_s {
                let _ = writeln!(k, "            delay_before_retry {d}");
            }
            if let Some(w) = hc.warmup_s {
                let _ = writeln!(k, "            warmup {w}");
            }
            if hc.alpha {
                k.push_str("            alpha\n");
            }
            if let Some(svc) = &hc.service {
                let _ = writeln!(k, "            service \"{svc}\"");
            }
            k.push_str("        }\n");
        }
        k.push_str("    }\n");
    }
    k.push_str("}\n");
    k
}

fn configuration(md: &mut String, r: &Report) {
    md.push_str("## Configuration\n\n");
    md.push_str("The virtual server, in keepalived syntax:\n\n```\n");
    md.push_str(&keepalived_config(&r.config));
    md.push_str("```\n\n");
    if !r.load.is_null() {
        let load = serde_json::to_string_pretty(&r.load).unwrap_or_default();
        let _ = write!(md, "Load:\n\n```json\n{load}\n```\n\n");
    }
}

/// The "ideal" column's header: what the ideal share is.
fn ideal_header(r: &Report) -> &'static str {
    match r.ideal_source {
        IdealSource::Weights => "ideal",
        IdealSource::KernelMapping => "ideal (kernel mapping)",
    }
}

fn servers(md: &mut String, r: &Report) {
    md.push_str("## Real servers\n\n");
    if r.servers.is_empty() {
        md.push_str("No real server results.\n\n");
        return;
    }
    let mut t = Table::new(&[
        "server",
        "address",
        "weight",
        "RPCs (clients)",
        "RPCs (server)",
        "connections",
        "share",
        ideal_header(r),
        "IPVS conns",
        "active/inactive",
        "persist",
        "inpkts",
        "outpkts",
    ])
    .align(1, super::text::Align::Left);
    for s in &r.servers {
        let d = r.ipvs_destination(s);
        t.row(vec![
            s.name.clone(),
            s.address.clone(),
            s.weight.to_string(),
            s.rpcs.to_string(),
            s.server_rpcs.map(|v| v.to_string()).unwrap_or_default(),
            s.connections.to_string(),
            pct(s.share),
            pct(s.ideal_share),
            s.ipvs_conns
                .or(d.map(|d| d.stats.conns))
                .map(|v| v.to_string())
                .unwrap_or_default(),
            d.map(|d| format!("{}/{}", d.active_conns, d.inactive_conns))
                .unwrap_or_default(),
            d.map(|d| d.persist_conns.to_string()).unwrap_or_default(),
            d.map(|d| d.stats.inpkts.to_string()).unwrap_or_default(),
            d.map(|d| d.stats.outpkts.to_string()).unwrap_or_default(),
        ]);
    }
    md.push_str(&t.render_markdown());
    md.push_str(
        "\n*share* is of the fairness basis; *IPVS* columns are the kernel's own \
         counters for that destination. In direct routing replies bypass the \
         director, so `outpkts` stays at 0.\n\n",
    );
    if r.ideal_source == IdealSource::KernelMapping {
        let _ = writeln!(
            md,
            "*ideal* is the kernel's own mapping: `{}` hashes an address to a server, so each server's expected share is what the clients hashed to it sent. The spread of client IPs over servers, the weight shares and χ² are informational.\n",
            r.config.lb_algo
        );
    }
    for svc in &r.ipvs.services {
        let _ = writeln!(
            md,
            "IPVS service {} {}:{}: scheduler `{}`{}, {} connections, {} packets in, {} out.\n",
            svc.protocol,
            svc.address,
            svc.port,
            svc.scheduler,
            if svc.persistent {
                format!(", persistent {} s", svc.timeout)
            } else {
                String::new()
            },
            svc.stats.conns,
            svc.stats.inpkts,
            svc.stats.outpkts
        );
    }
    let _ = writeln!(
        md,
        "![Share of RPCs and connections per real server, against the ideal share]({})\n",
        charts::DISTRIBUTION_SVG
    );
}

fn fairness(md: &mut String, r: &Report) {
    md.push_str("## Fairness\n\n");
    let Some(f) = &r.fairness else {
        md.push_str("Not computed: nothing was counted, or no server had a weight.\n\n");
        return;
    };
    let mut t = Table::new(&["measure", "value", "meaning"]).align(2, super::text::Align::Left);
    t.row(vec![
        "unit".into(),
        f.basis.as_str().into(),
        match r.gate.as_ref().map(|g| g.unit_derived) {
            Some(false) => "the unit of balancing, as `[expect] basis` chose it".into(),
            _ => "the unit of balancing, from the scheduler and persistence".into(),
        },
    ]);
    if !f.counts.is_empty() {
        t.row(vec![
            "counts".into(),
            f.counts
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" / "),
            "per server, in server order".into(),
        ]);
    }
    t.row(vec![
        "max deviation".into(),
        pct(f.max_deviation),
        "largest |share − ideal|, in percentage points".into(),
    ]);
    t.row(vec![
        "max relative deviation".into(),
        pct(f.max_relative_deviation),
        "the same, relative to the ideal share".into(),
    ]);
    t.row(vec![
        "Jain's index".into(),
        format!("{:.4}", f.jain),
        "1 = exactly the weights; 1/n = one server took everything".into(),
    ]);
    t.row(vec![
        "chi-square".into(),
        format!("{:.2} (dof {})", f.chi2, f.dof),
        "Pearson's statistic against the ideal".into(),
    ]);
    t.row(vec![
        "chi-square p".into(),
        p_value(f.chi2_p),
        match &r.gate {
            Some(_) if f.informational => format!(
                "informational: {} hashes clients, so the weights are not its truth",
                r.config.lb_algo
            ),
            Some(g) => format!("the gate fails at p ≤ alpha = {:.0e}", g.alpha),
            None => "small: the counts did not follow the weights".into(),
        },
    ]);
    t.row(vec![
        "Cramér's V".into(),
        format!("{:.3}", f.cramers_v),
        "effect size: 0 = exactly the weights, 1 = all on one server".into(),
    ]);
    t.row(vec![
        "max / mean".into(),
        format!("{:.3}", f.max_over_mean),
        "largest weight-normalised count over their mean".into(),
    ]);
    if let Some(g) = &r.gate {
        t.row(vec![
            "margin".into(),
            pct(g.margin),
            format!(
                "the deviation the test detects with power {}; the sample needed for it is in the distribution expectation",
                super::fairness::POWER
            ),
        ]);
    }
    md.push_str(&t.render_markdown());
    md.push('\n');
}

fn clients(md: &mut String, r: &Report) {
    md.push_str("## Clients\n\n");
    if r.clients.is_empty() {
        md.push_str("No per-client results.\n\n");
        return;
    }
    let spread = ClientSpread::of(r);
    let _ = writeln!(
        md,
        "{} client IP{}: {} reached a single server (sticky). {}. Sticky IPs per server: {}.\n",
        spread.clients,
        if spread.clients == 1 { "" } else { "s" },
        spread.sticky,
        capitalise(&spread.reached_text()),
        spread.pinned_text()
    );
    let mut t = Table::new(&[
        "client IP",
        "RPCs",
        "errors",
        "servers seen (RPCs)",
        "sticky",
    ])
    .align(3, super::text::Align::Left);
    for c in r.clients.iter().take(MAX_CLIENT_ROWS) {
        t.row(vec![
            c.address.clone(),
            c.rpcs.to_string(),
            c.errors.to_string(),
            servers_seen(c),
            if c.sticky { "yes" } else { "no" }.into(),
        ]);
    }
    md.push_str(&t.render_markdown());
    if r.clients.len() > MAX_CLIENT_ROWS {
        let _ = writeln!(
            md,
            "\n…and {} more client IPs in `report.json`.",
            r.clients.len() - MAX_CLIENT_ROWS
        );
    }
    md.push('\n');
    let templates = &r.conn_table.templates;
    if r.conn_table.peak_templates > 0 {
        let _ = writeln!(
            md,
            "At most {} persistence templates existed at once during the load.\n",
            r.conn_table.peak_templates
        );
    }
    if !templates.is_empty() {
        let _ = writeln!(
            md,
            "The kernel held {} persistence template{} at the end (client → real server, seconds left):\n",
            templates.len(),
            if templates.len() == 1 { "" } else { "s" }
        );
        for tpl in templates.iter().take(MAX_CLIENT_ROWS) {
            let _ = writeln!(md, "- {} → {} ({} s)", tpl.client, tpl.dest, tpl.expires_s);
        }
        if templates.len() > MAX_CLIENT_ROWS {
            let _ = writeln!(md, "- …and {} more", templates.len() - MAX_CLIENT_ROWS);
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "![Share of each real server per client IP; a single colour is a pinned client]({})\n",
        charts::CLIENTS_SVG
    );
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn latency(md: &mut String, r: &Report, has_hgrm: bool) {
    md.push_str("## Latency\n\n");
    let Some(l) = &r.latency_us else {
        md.push_str("No latency recorded.\n\n");
        return;
    };
    if r.runner.unoptimized_build() {
        md.push_str(&format!(
            "> **{}**\n\n",
            super::summary::UNOPTIMIZED_WARNING
        ));
    }
    let mut t = Table::new(&["p50", "p90", "p99", "p99.9", "max", "mean", "RPCs"])
        .align(0, super::text::Align::Right);
    t.row(vec![
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p999),
        ms(l.max),
        ms(l.mean),
        l.count.to_string(),
    ]);
    md.push_str(&t.render_markdown());
    md.push('\n');
    if r.runner.kind == RunnerKind::Uml {
        md.push_str(
            "> These latencies come from a User-Mode Linux guest with one CPU: they \
             describe UML, not production. The distribution and persistence above are \
             the kernel's own IPVS behaviour.\n\n",
        );
    }
    let _ = writeln!(
        md,
        "![RPC latency by percentile]({})\n",
        charts::LATENCY_SVG
    );
    if has_hgrm {
        md.push_str(
            "The full percentile distribution is in [`latency.hgrm`](latency.hgrm) \
             (HdrHistogram format, ms).\n\n",
        );
    }
}

fn timeline(md: &mut String, r: &Report) {
    if r.timeline.buckets.is_empty() && r.events.is_empty() {
        return;
    }
    md.push_str("## Timeline\n\n");
    if !r.timeline.buckets.is_empty() {
        let _ = writeln!(
            md,
            "![Successful RPCs per second per real server, with events]({})\n",
            charts::TIMELINE_SVG
        );
    }
    if !r.events.is_empty() {
        let mut t = Table::new(&["t (s)", "event", "detail"])
            .align(0, super::text::Align::Right)
            .align(1, super::text::Align::Left)
            .align(2, super::text::Align::Left);
        for e in &r.events {
            t.row(vec![
                format!("{:.2}", e.t_s),
                e.kind.as_str().into(),
                e.detail.clone(),
            ]);
        }
        md.push_str(&t.render_markdown());
        md.push('\n');
    }
}

fn failover(md: &mut String, r: &Report) {
    let Some(f) = &r.failover else {
        return;
    };
    md.push_str("## Failover\n\n");
    let secs = |v: Option<f64>| {
        v.map(|s| format!("{s:.2} s"))
            .unwrap_or_else(|| "not measured".into())
    };
    if let Some(s) = &f.failed_server {
        let _ = writeln!(md, "- Failed server: {s}");
    }
    if let Some(fault) = &f.fault {
        let _ = writeln!(
            md,
            "- Fault: {fault} at {}",
            f.fault_at_s
                .map(|t| format!("{t:.2} s"))
                .unwrap_or_else(|| "?".into())
        );
    }
    if let Some(c) = &f.checker {
        let _ = writeln!(md, "- Checker: {c}");
    }
    if let Some(d) = f.checker_detection_s {
        let _ = writeln!(md, "- Checker declared it down after: {d:.2} s");
    }
    if let (Some(a), Some(b)) = (f.worst_case_refused_s, f.worst_case_timeout_s) {
        let _ = writeln!(
            md,
            "- keepalived's worst case for these settings: {a:.1} s (connects refused), {b:.1} s (connects hang)"
        );
    }
    if let Some(r) = f.readded_s {
        let _ = writeln!(md, "- Back in IPVS after the repair: {r:.2} s");
    }
    if let Some(b) = f.baseline_rps {
        let _ = writeln!(md, "- Rate before the fault: {b:.0} successful RPCs/s");
    }
    if let Some(v) = &f.client_view {
        let _ = writeln!(md, "- What clients saw: {v}");
    }
    let _ = writeln!(
        md,
        "- Detection (fault → removed from IPVS): {}",
        secs(f.detection_s)
    );
    let _ = writeln!(
        md,
        "- Recovery (fault → every client succeeding): {}",
        secs(f.recover_s)
    );
    if !f.failed_rpcs_by_status.is_empty() {
        let list: Vec<String> = f
            .failed_rpcs_by_status
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(md, "- Failed RPCs: {}", list.join(", "));
    }
    if let Some((client, s)) = f
        .longest_blackhole_s
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
    {
        let _ = writeln!(
            md,
            "- Longest blackhole: {s:.2} s (client {client}); {} of {} clients had one over 0 s",
            f.longest_blackhole_s.values().filter(|v| **v > 0.0).count(),
            f.longest_blackhole_s.len()
        );
    }
    if f.flaps.len() > 1 {
        let _ = writeln!(
            md,
            "- IPVS transitions of the failed server: {}\n\n| fault at | detection | repair at | back in IPVS after | failed RPCs |\n|---|---|---|---|---|",
            f.ipvs_transitions
        );
        for p in &f.flaps {
            let _ = writeln!(
                md,
                "| {:.1} s | {} | {} | {} | {} |",
                p.fault_at_s,
                secs(p.detection_s),
                p.repaired_at_s
                    .map_or_else(|| "-".into(), |t| format!("{t:.1} s")),
                secs(p.readded_s),
                p.failed_rpcs
            );
        }
    }
    md.push('\n');
}

/// Persistence template lives, when the scenario has persistence.
fn templates(md: &mut String, r: &Report) {
    if r.template_lives.is_empty() {
        return;
    }
    md.push_str("## Persistence templates\n\n| client | server | seen | newest connection | its last sample | lifetime after it | re-armed |\n|---|---|---|---|---|---|---|\n");
    for l in &r.template_lives {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".into(), |t| format!("{t:.0} s"));
        let _ = writeln!(
            md,
            "| {} | {} | {:.0}-{:.0} s{} | {} | {} | {} | {} |",
            l.client,
            l.server,
            l.first_seen_s,
            l.last_seen_s,
            if l.expired { "" } else { " (still there)" },
            opt(l.last_connect_s),
            opt(l.last_conn_seen_s),
            opt(l.lifetime_s),
            if l.rearmed { "yes" } else { "no" }
        );
    }
    md.push('\n');
}

/// The IPVS samples as a table: one row per second, one column per
/// destination (`weight active/inactive/persistent`).
fn ipvs_over_time(md: &mut String, r: &Report) {
    if r.ipvs_samples.is_empty() {
        return;
    }
    let mut addrs: Vec<&str> = Vec::new();
    for s in &r.ipvs_samples {
        for d in &s.destinations {
            if !addrs.contains(&d.address.as_str()) {
                addrs.push(&d.address);
            }
        }
    }
    md.push_str(
        "## IPVS over time

",
    );
    md.push_str(
        "Sampled about once a second: per destination `weight: active/inactive/persistent` \
         connections; `-` means not in IPVS.\n\n",
    );
    let mut header = vec!["t (s)".to_string(), "templates".to_string()];
    header.extend(addrs.iter().map(|a| a.to_string()));
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header_refs).align(0, super::text::Align::Right);
    for s in &r.ipvs_samples {
        let mut row = vec![format!("{:.1}", s.t_s), s.templates.to_string()];
        for a in &addrs {
            row.push(
                s.destinations
                    .iter()
                    .find(|d| d.address == *a)
                    .map(|d| format!("{}: {}/{}/{}", d.weight, d.active, d.inactive, d.persistent))
                    .unwrap_or_else(|| "-".into()),
            );
        }
        t.row(row);
    }
    md.push_str(&t.render_markdown());
    md.push('\n');
}

/// Who managed IPVS; with keepalived, its config and log.
fn director(md: &mut String, r: &Report) {
    let Some(d) = &r.director else {
        return;
    };
    if d.kind != "keepalived" {
        return;
    }
    md.push_str("## keepalived\n\n");
    if let Some(p) = d.populated_s {
        let _ = writeln!(
            md,
            "keepalived had configured every destination {p:.2} s after it started.\n"
        );
    }
    if let Some(conf) = &d.keepalived_conf {
        md.push_str("The keepalived.conf it ran with:\n\n```\n");
        md.push_str(conf);
        md.push_str("```\n\n");
    }
    if !d.keepalived_log.is_empty() {
        md.push_str("Its log (seconds since the load started):\n\n```\n");
        for l in &d.keepalived_log {
            md.push_str(l);
            md.push('\n');
        }
        md.push_str("```\n\n");
    }
}

fn errors(md: &mut String, r: &Report) {
    md.push_str("## Errors\n\n");
    if r.errors.total == 0 {
        md.push_str("No RPC failed.\n\n");
        return;
    }
    let _ = writeln!(
        md,
        "{} RPCs failed ({} of attempts).\n",
        r.errors.total,
        pct(r.error_rate())
    );
    let mut t = Table::new(&["status", "RPCs"]);
    for (k, v) in &r.errors.by_status {
        t.row(vec![k.clone(), v.to_string()]);
    }
    if !t.is_empty() {
        md.push_str(&t.render_markdown());
        md.push('\n');
    }
}

/// loadgen's connects: how many, why some failed, how long they took (the
/// 1 s and 3 s buckets are SYN retransmits), and how connections ended.
fn connections(md: &mut String, r: &Report) {
    let Some(c) = &r.connects else {
        return;
    };
    md.push_str(
        "## Connections

",
    );
    let joined = |m: &std::collections::BTreeMap<String, u64>| {
        if m.is_empty() {
            "-".to_string()
        } else {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let l = &c.latency_us;
    let mut t = Table::new(&["figure", "value"]);
    t.row(vec!["connect attempts".into(), c.attempts.to_string()]);
    t.row(vec!["connected".into(), c.ok.to_string()]);
    t.row(vec![
        format!("failed ({})", c.failed()),
        joined(&c.failed_by_cause),
    ]);
    t.row(vec![
        "connect p50 / p99 / max".into(),
        format!("{} / {} / {}", ms(l.p50), ms(l.p99), ms(l.max)),
    ]);
    t.row(vec![
        "in [1.0 s, 1.1 s) (one SYN lost)".into(),
        c.syn_retry_1s.to_string(),
    ]);
    t.row(vec![
        "in [3.0 s, 3.1 s) (two SYNs lost)".into(),
        c.syn_retry_3s.to_string(),
    ]);
    t.row(vec!["ended by".into(), joined(&c.ended_by)]);
    md.push_str(&t.render_markdown());
    md.push('\n');
    if let Some(idle) = &c.idle {
        after_idle(md, idle, &joined);
    }
}

/// The first RPC of each channel after each idle gap, one row per gap (the
/// per-connection list is in report.json: a thousand clients stay
/// readable here).
fn after_idle(
    md: &mut String,
    idle: &crate::report::model::IdleOutcomes,
    joined: &dyn Fn(&std::collections::BTreeMap<String, u64>) -> String,
) {
    md.push_str("### The first RPC after each idle gap\n\n");
    let mut t = Table::new(&[
        "gap",
        "channels",
        "ok",
        "outcomes",
        "reconnected",
        "answered by",
        "first error",
    ]);
    for g in &idle.gaps {
        t.row(vec![
            g.gap.to_string(),
            g.channels.to_string(),
            g.ok.to_string(),
            joined(&g.by_outcome),
            g.reconnected.to_string(),
            joined(&g.by_server),
            if g.first_error.is_empty() {
                "-".into()
            } else {
                g.first_error.clone()
            },
        ]);
    }
    md.push_str(&t.render_markdown());
    md.push('\n');
    if let Some(k) = &idle.keepalive {
        md.push_str(&format!(
            "Keepalive: a PING every {:.0} s per connection, {} sent, {} acknowledged, {} timed out.\n\n",
            k.interval_s, k.pings, k.acks, k.timeouts
        ));
    }
    if let Some(h) = idle.server_halves.as_ref().filter(|h| h.lost > 0) {
        md.push_str(&format!(
            "The real servers' half of the {} connection(s) lost in a gap: {} still established on their server in the last {:.0} s of load (the server was never told: in DR the director's RST goes to the client only), {} closed, {} never seen by a read of the servers' sockets.\n\n",
            h.lost,
            h.still_established,
            crate::report::model::ServerHalves::WINDOW_S,
            h.lost - h.still_established - h.unseen,
            h.unseen
        ));
    }
    md.push_str(&format!(
        "{} connections recorded ({} beyond the bound); each one's local address, connect latency, first RPC after each gap and end are in report.json (`connects.idle.records`).\n\n",
        idle.records.len(),
        idle.records_dropped
    ));
}

fn expectations(md: &mut String, r: &Report) {
    md.push_str("## Expectations\n\n");
    if r.expectations.is_empty() {
        md.push_str("None set.\n\n");
        return;
    }
    let mut t = Table::new(&["result", "expectation", "measured"])
        .align(1, super::text::Align::Left)
        .align(2, super::text::Align::Left);
    for e in &r.expectations {
        t.row(vec![
            match e.effective_verdict() {
                v if v.passes() => v.as_str().to_owned(),
                v => format!("**{}**", v.as_str()),
            },
            format!("`{}`", e.name),
            e.detail.clone(),
        ]);
    }
    md.push_str(&t.render_markdown());
    md.push('\n');
}

/// Where the three independent counts (clients, servers, IPVS) disagree.
pub(crate) fn cross_check_findings(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for s in &r.servers {
        if let Some(own) = s.server_rpcs.filter(|&own| own != s.rpcs) {
            out.push(format!(
                "{}: clients counted {} RPCs, the server counted {} ({:+})",
                s.name,
                s.rpcs,
                own,
                own as i64 - s.rpcs as i64
            ));
        }
        if let Some(ipvs) = s.ipvs_conns.filter(|&c| c != s.connections) {
            out.push(format!(
                "{}: clients saw {} connections land, IPVS scheduled {}",
                s.name, s.connections, ipvs
            ));
        }
        let dr = r.ipvs_destination(s).filter(|d| {
            d.forward.eq_ignore_ascii_case("dr") || d.forward.eq_ignore_ascii_case("route")
        });
        if let Some(d) = dr.filter(|d| d.stats.outpkts > 0) {
            out.push(format!(
                "{}: IPVS counted {} outbound packets, but in DR replies should bypass the director",
                s.name, d.stats.outpkts
            ));
        }
    }
    out
}

fn cross_checks(md: &mut String, r: &Report) {
    if r.servers.is_empty() {
        return;
    }
    md.push_str("## Cross-checks\n\n");
    let findings = cross_check_findings(r);
    if findings.is_empty() {
        md.push_str(
            "The clients' per-server counts, the servers' own counters and IPVS's \
             per-destination statistics agree wherever all were recorded.\n\n",
        );
    } else {
        for f in findings {
            let _ = writeln!(md, "- {f}");
        }
        md.push('\n');
    }
}

fn runner(md: &mut String, r: &Report) {
    md.push_str("## Runner\n\n");
    match r.runner.kind {
        RunnerKind::Host => {
            let _ = writeln!(
                md,
                "Ran on the host kernel {}, in network namespaces.",
                r.runner.kernel
            );
        }
        RunnerKind::Uml => {
            let _ = writeln!(
                md,
                "Ran inside User-Mode Linux {} (one CPU), {}. Latency and throughput \
                 describe that guest, not production hardware; the distribution, \
                 persistence and failover behaviour are the kernel's own IPVS code.",
                r.runner.kernel,
                r.runner.kernel_provenance()
            );
        }
    }
    if r.runner.clock == super::model::ClockMode::Travel {
        md.push_str(
            "\n**Clock: UML time travel.** The guest's clock skipped idle time: every duration \
             here is guest time, as the kernel's IPVS and TCP timers saw it.\n",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata::synthetic_report;

    #[test]
    fn keepalived_block() {
        let r = synthetic_report(2);
        let k = keepalived_config(&r.config);
        assert!(k.starts_with("virtual_server 192.168.122.1 8080 {\n"));
        assert!(k.contains("    lb_algo wrr\n    lb_kind DR\n    persistence_timeout 50\n"));
        assert!(k.contains("    real_server 172.22.35.3 8080 {\n        weight 2\n        TCP_CHECK {\n            connect_timeout 1\n            connect_port 9090\n            retry 3\n            delay_before_retry 2\n"));
        assert!(k.ends_with("    }\n}\n"));
    }

    #[test]
    fn many_clients_are_summarised() {
        let md = render_markdown(&synthetic_report(1000));
        assert!(md.contains("1000 client IPs: 666 reached a single server"));
        assert!(md.contains("…and 980 more client IPs"));
        let rows = md.lines().filter(|l| l.starts_with("| 10.0.")).count();
        assert_eq!(rows, MAX_CLIENT_ROWS);
    }

    #[test]
    fn template_lives_get_their_own_section_without_a_failover() {
        let mut r = synthetic_report(2);
        r.failover = None;
        assert!(!render_markdown(&r).contains("## Persistence templates"));
        r.template_lives = vec![crate::report::model::TemplateLife {
            client: "172.22.36.1".into(),
            server: "rs2".into(),
            first_seen_s: 1.0,
            last_seen_s: 1814.4,
            expired: true,
            last_connect_s: Some(2.0),
            last_conn_seen_s: Some(124.8),
            lifetime_s: Some(1812.4),
            rearmed: false,
        }];
        let md = render_markdown(&r);
        assert!(
            md.contains("## Persistence templates")
                && md.contains("| 172.22.36.1 | rs2 | 1-1814 s | 2 s | 125 s | 1812 s | no |"),
            "{md}"
        );
    }

    #[test]
    fn sections_and_links() {
        let md = render_markdown(&synthetic_report(8));
        for needle in [
            "# wrr-failover",
            "## What this run shows",
            "persistence pinned most client IPs",
            "```\nvirtual_server",
            "![Share of RPCs and connections per real server, against the ideal share](distribution.svg)",
            "(clients.svg)",
            "(latency.svg)",
            "(timeline.svg)",
            "[`latency.hgrm`](latency.hgrm)",
            "| **FAIL** | `errors.total == 0` |",
            "| PASS | `max_deviation <= 0.10` |",
            "describe UML, not production",
            "## Failover",
            "Detection (fault → removed from IPVS): 3.20 s",
            "rs2: clients counted",
        ] {
            assert!(md.contains(needle), "missing {needle:?} in\n{md}");
        }
    }
}
