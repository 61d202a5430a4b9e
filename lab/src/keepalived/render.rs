//! keepalived.conf text from the model, for running Debian's keepalived 2.2
//! inside the lab's director namespace.
//!
//! The output uses the keywords keepalived 2.2.7 accepts (`lb_algo`,
//! `lb_kind`, `retry`; it rejects the old `nb_get_retry`). Every value that
//! differs from what keepalived would infer is written, so parsing the output
//! gives back the same model (line numbers aside).

use std::fmt::Write as _;

use super::model::{RealServerConf, TcpCheckConf, VirtualServerConf, defaults};

/// What goes around the virtual servers.
///
/// Pid files and the namespace are keepalived *command-line* options
/// (`--pid`, `--checkers_pid`, `--vrrp_pid`, `--namespace`), not config keys,
/// so the process runner sets them, not this renderer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// `global_defs { router_id ... }`: names this keepalived in its logs.
    pub router_id: String,
    /// Add `lvs_flush_on_stop`, so keepalived removes its IPVS services when
    /// it stops and a later run starts from an empty table.
    pub lvs_flush_on_stop: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            router_id: "ipvslab".to_string(),
            lvs_flush_on_stop: false,
        }
    }
}

/// Renders one virtual server with a minimal `global_defs`.
pub fn render_conf(vs: &VirtualServerConf, opts: &RenderOptions) -> String {
    render_confs(std::slice::from_ref(vs), opts)
}

/// Renders several virtual servers with one minimal `global_defs`.
pub fn render_confs(servers: &[VirtualServerConf], opts: &RenderOptions) -> String {
    let mut out = String::new();
    out.push_str("# Written by ipvs-lab for keepalived 2.2 (see keepalived.conf(5)).\n");
    out.push_str("global_defs {\n");
    line(
        &mut out,
        1,
        &format!("router_id {}", quote(&opts.router_id)),
    );
    if opts.lvs_flush_on_stop {
        line(&mut out, 1, "lvs_flush_on_stop");
    }
    out.push_str("}\n");
    for vs in servers {
        out.push('\n');
        virtual_server(&mut out, vs);
    }
    out
}

fn virtual_server(out: &mut String, vs: &VirtualServerConf) {
    line(out, 0, &format!("virtual_server {} {} {{", vs.vip, vs.port));
    line(out, 1, &format!("delay_loop {}", vs.delay_loop));
    line(out, 1, &format!("lb_algo {}", vs.lb_algo));
    line(out, 1, &format!("lb_kind {}", vs.lb_kind));
    line(out, 1, &format!("protocol {}", vs.protocol));
    if let Some(t) = vs.persistence_timeout {
        line(out, 1, &format!("persistence_timeout {t}"));
    }
    if let Some(m) = vs.persistence_granularity {
        line(out, 1, &format!("persistence_granularity {m}"));
    }
    if vs.quorum != defaults::QUORUM {
        line(out, 1, &format!("quorum {}", vs.quorum));
    }
    if vs.hysteresis != defaults::HYSTERESIS {
        line(out, 1, &format!("hysteresis {}", vs.hysteresis));
    }
    if vs.alpha {
        line(out, 1, "alpha");
    }
    if vs.omega {
        line(out, 1, "omega");
    }
    if vs.inhibit_on_failure {
        line(out, 1, "inhibit_on_failure");
    }
    if let Some(s) = vs.sorry_server {
        line(out, 1, &format!("sorry_server {} {}", s.ip(), s.port()));
    }
    for rs in &vs.real_servers {
        real_server(out, vs, rs);
    }
    line(out, 0, "}");
}

fn real_server(out: &mut String, vs: &VirtualServerConf, rs: &RealServerConf) {
    line(
        out,
        1,
        &format!("real_server {} {} {{", rs.address, rs.port),
    );
    line(out, 2, &format!("weight {}", rs.weight));
    if rs.inhibit_on_failure != vs.inhibit_on_failure {
        line(
            out,
            2,
            &format!("inhibit_on_failure {}", on_off(rs.inhibit_on_failure)),
        );
    }
    if let Some(check) = &rs.tcp_check {
        tcp_check(out, vs, rs, check);
    }
    line(out, 1, "}");
}

fn tcp_check(out: &mut String, vs: &VirtualServerConf, rs: &RealServerConf, c: &TcpCheckConf) {
    line(out, 2, "TCP_CHECK {");
    line(out, 3, &format!("connect_timeout {}", c.connect_timeout));
    line(out, 3, &format!("retry {}", c.retry));
    line(
        out,
        3,
        &format!("delay_before_retry {}", c.delay_before_retry),
    );
    line(out, 3, &format!("connect_port {}", c.connect_port));
    if c.connect_ip != rs.address {
        line(out, 3, &format!("connect_ip {}", c.connect_ip));
    }
    if c.delay_loop != vs.delay_loop {
        line(out, 3, &format!("delay_loop {}", c.delay_loop));
    }
    // keepalived's own default for warmup is the checker's delay_loop.
    if c.warmup != c.delay_loop {
        line(out, 3, &format!("warmup {}", c.warmup));
    }
    if c.alpha != vs.alpha {
        line(out, 3, &format!("alpha {}", on_off(c.alpha)));
    }
    line(out, 2, "}");
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn line(out: &mut String, depth: usize, text: &str) {
    for _ in 0..depth {
        out.push_str("    ");
    }
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{text}");
}

/// `s` as one keepalived word: quoted, with `"` and `\` escaped, when it holds
/// a character that would otherwise split it or start a comment.
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '{' | '}' | '#' | '!' | '"' | '\'' | '\\'));
    if plain {
        return s.to_string();
    }
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                q.push('\\');
                q.push(c);
            }
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}
