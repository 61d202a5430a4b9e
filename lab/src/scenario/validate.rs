//! Values that parse but make no sense: checked before anything touches the
//! kernel, each with a message that says what to change.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use super::spec::{PhaseAction, ScenarioFile};

/// Schedulers the kernel's IPVS ships (`ip_vs_<name>` modules).
pub const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
];

/// The `net.ipv4.vs.*` sysctls a scenario may set.
pub const IPVS_SYSCTLS: &[&str] = &[
    "expire_nodest_conn",
    "expire_quiescent_template",
    "conn_reuse_mode",
];

/// Most client source addresses one scenario may ask for.
pub const MAX_CLIENT_IPS: u32 = 4096;

/// One problem found in a scenario, naming the key it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct Invalid {
    /// The dotted key, e.g. `virtual_server.lb_algo`.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// Checks a parsed scenario; returns every problem, not just the first.
pub fn validate(file: &ScenarioFile) -> Vec<Invalid> {
    let mut problems = Vec::new();
    let vs = &file.virtual_server;
    let net = &file.network;

    if !vs.protocol.eq_ignore_ascii_case("tcp") {
        problems.push(invalid(
            "virtual_server.protocol",
            format!(
                "'{}' is not supported: gRPC runs over TCP, use \"TCP\"",
                vs.protocol
            ),
        ));
    }
    if !SCHEDULERS.contains(&vs.lb_algo.as_str()) {
        problems.push(invalid(
            "virtual_server.lb_algo",
            format!(
                "unknown scheduler '{}'; IPVS has {}",
                vs.lb_algo,
                SCHEDULERS.join(", ")
            ),
        ));
    }
    if !vs.lb_kind.eq_ignore_ascii_case("dr") {
        problems.push(invalid(
            "virtual_server.lb_kind",
            format!(
                "'{}' is not supported: the lab builds direct-routing (DR) networks, use \"DR\"",
                vs.lb_kind
            ),
        ));
    }
    if vs.port == 0 {
        problems.push(invalid(
            "virtual_server.port",
            "port 0 cannot be a service port",
        ));
    }
    if let Some(mask) = vs.persistence_granularity {
        let bits = u32::from(mask);
        if bits.leading_ones() + bits.trailing_zeros() != 32 {
            problems.push(invalid(
                "virtual_server.persistence_granularity",
                format!("{mask} is not a netmask (ones followed by zeros)"),
            ));
        }
        if vs.persistence_timeout.unwrap_or(0) == 0 {
            problems.push(invalid(
                "virtual_server.persistence_granularity",
                "has no effect without persistence_timeout",
            ));
        }
    }
    if vs.delay_loop.is_nan() || vs.delay_loop <= 0.0 {
        problems.push(invalid(
            "virtual_server.delay_loop",
            "must be more than 0 seconds",
        ));
    }
    if vs.real_servers.is_empty() {
        problems.push(invalid(
            "virtual_server.real_server",
            "at least one real_server is needed",
        ));
    }
    if vs.real_servers.len() > 64 {
        problems.push(invalid(
            "virtual_server.real_server",
            "at most 64 real servers (one namespace and process each)",
        ));
    }

    let mut seen_addr = HashSet::new();
    let mut seen_name = HashSet::new();
    for (i, rs) in vs.real_servers.iter().enumerate() {
        let key = format!("virtual_server.real_server[{i}]");
        if !seen_addr.insert(rs.address) {
            problems.push(invalid(
                format!("{key}.address"),
                format!("{} is listed twice", rs.address),
            ));
        }
        if rs.port != vs.port {
            problems.push(invalid(
                format!("{key}.port"),
                format!(
                    "{} differs from the virtual port {}: direct routing cannot change ports",
                    rs.port, vs.port
                ),
            ));
        }
        if rs.weight < 0 {
            problems.push(invalid(format!("{key}.weight"), "must be 0 or more"));
        }
        if !net.segment.contains(&rs.address) {
            problems.push(invalid(
                format!("{key}.address"),
                format!(
                    "{} is outside the lab segment {}: DR needs the real servers on the director's L2 segment",
                    rs.address, net.segment
                ),
            ));
        }
        if rs.address == vs.vip {
            problems.push(invalid(format!("{key}.address"), "equals the VIP"));
        }
        let name = server_name(i, rs.name.as_deref());
        if !valid_host_name(&name) {
            problems.push(invalid(
                format!("{key}.name"),
                format!("'{name}' must be 1-10 characters of a-z, 0-9 and '-'"),
            ));
        }
        if !seen_name.insert(name.clone()) {
            problems.push(invalid(
                format!("{key}.name"),
                format!("'{name}' is used twice"),
            ));
        }
    }

    if !net.segment.contains(&net.director) {
        problems.push(invalid(
            "network.director",
            format!("{} is outside the segment {}", net.director, net.segment),
        ));
    }
    if seen_addr.contains(&net.director) || net.director == vs.vip {
        problems.push(invalid(
            "network.director",
            format!("{} is already a real server or the VIP", net.director),
        ));
    }
    // A VIP inside the segment is fine (clients still route it through the
    // director with a /32), as long as no host holds it.
    if seen_addr.contains(&vs.vip) || net.director == vs.vip {
        problems.push(invalid(
            "virtual_server.vip",
            format!(
                "{} is also a real server's or the director's address",
                vs.vip
            ),
        ));
    }
    let client_range =
        u32::from(net.client_base)..u32::from(net.client_base).saturating_add(net.client_ips);
    if client_range.contains(&u32::from(vs.vip)) {
        problems.push(invalid(
            "virtual_server.vip",
            format!("{} is inside the client address range", vs.vip),
        ));
    }
    if net.client_ips == 0 || net.client_ips > MAX_CLIENT_IPS {
        problems.push(invalid(
            "network.client_ips",
            format!("must be 1 to {MAX_CLIENT_IPS}"),
        ));
    } else {
        let first = u32::from(net.client_base);
        let last = first.saturating_add(net.client_ips - 1);
        let last_addr = Ipv4Addr::from(last);
        if !net.segment.contains(&net.client_base) || !net.segment.contains(&last_addr) {
            problems.push(invalid(
                "network.client_base",
                format!(
                    "clients {}..{} do not fit in the segment {}",
                    net.client_base, last_addr, net.segment
                ),
            ));
        }
        let taken = seen_addr
            .iter()
            .chain(std::iter::once(&net.director))
            .any(|a| (first..=last).contains(&u32::from(*a)));
        if taken {
            problems.push(invalid(
                "network.client_base",
                format!(
                    "clients {}..{} overlap a real server or the director",
                    net.client_base, last_addr
                ),
            ));
        }
    }

    let load = &file.load;
    if load.duration.is_zero() {
        problems.push(invalid("load.duration", "must be more than 0"));
    }
    if load.duration.as_secs() > 3600 {
        problems.push(invalid("load.duration", "at most one hour"));
    }
    if load.concurrency == 0 {
        problems.push(invalid("load.concurrency", "must be at least 1"));
    }
    if load.channels_per_ip == 0 {
        problems.push(invalid("load.channels_per_ip", "must be at least 1"));
    }
    if load.rounds == 0 {
        problems.push(invalid("load.rounds", "must be at least 1"));
    }
    if load.timeout.is_zero() {
        problems.push(invalid("load.timeout", "must be more than 0"));
    }
    match load.mode {
        super::spec::LoadMode::Open => match load.rps {
            Some(r) if r > 0.0 && r.is_finite() => {}
            _ => problems.push(invalid("load.rps", "open loop needs rps > 0")),
        },
        super::spec::LoadMode::Closed => {
            if load.rps.is_some() {
                problems.push(invalid("load.rps", "only used with mode = \"open\""));
            }
        }
    }
    if load.connection == super::spec::ConnectionModel::Churn && load.churn_rpcs.unwrap_or(0) == 0 {
        problems.push(invalid(
            "load.churn_rpcs",
            "connection = \"churn\" needs churn_rpcs >= 1",
        ));
    }

    let names: Vec<String> = vs
        .real_servers
        .iter()
        .enumerate()
        .map(|(i, rs)| server_name(i, rs.name.as_deref()))
        .collect();
    let total = load.duration + load.warmup;
    for (i, phase) in file.phases.iter().enumerate() {
        let key = format!("phase[{i}]");
        if phase.at > total * load.rounds + load.idle * load.rounds.saturating_sub(1) {
            problems.push(invalid(
                format!("{key}.at"),
                format!("{:?} is after the load ends", phase.at),
            ));
        }
        if let Some(server) = phase.action.server() {
            let known = names.iter().any(|n| n == server)
                || vs
                    .real_servers
                    .iter()
                    .any(|rs| rs.address.to_string() == server);
            if !known {
                problems.push(invalid(
                    format!("{key}.server"),
                    format!("'{server}' is not a real server (use {})", names.join(", ")),
                ));
            }
        }
        match &phase.action {
            PhaseAction::SetWeight { weight, .. } if *weight < 0 => {
                problems.push(invalid(format!("{key}.weight"), "must be 0 or more"));
            }
            PhaseAction::Sysctl { name, value } => {
                if !IPVS_SYSCTLS.contains(&name.as_str()) {
                    problems.push(invalid(
                        format!("{key}.name"),
                        format!("sysctl '{name}' is not one of {}", IPVS_SYSCTLS.join(", ")),
                    ));
                }
                if value.parse::<i64>().is_err() {
                    problems.push(invalid(format!("{key}.value"), "must be an integer"));
                }
            }
            _ => {}
        }
    }

    for name in file.ipvs.sysctls.keys() {
        if !IPVS_SYSCTLS.contains(&name.as_str()) {
            problems.push(invalid(
                format!("ipvs.sysctls.{name}"),
                format!("not one of {}", IPVS_SYSCTLS.join(", ")),
            ));
        }
    }
    for (key, value) in [
        ("ipvs.timeout_tcp", file.ipvs.timeout_tcp),
        ("ipvs.timeout_tcp_fin", file.ipvs.timeout_tcp_fin),
        ("ipvs.timeout_udp", file.ipvs.timeout_udp),
    ] {
        if value == Some(0) {
            problems.push(invalid(
                key,
                "must be at least 1 second (omit it for the kernel default)",
            ));
        }
    }

    let expect = &file.expect;
    if !(0.0..=1.0).contains(&expect.tolerance) {
        problems.push(invalid("expect.tolerance", "must be between 0 and 1"));
    }
    if let Some(rate) = expect.max_error_rate
        && !(0.0..=1.0).contains(&rate)
    {
        problems.push(invalid("expect.max_error_rate", "must be between 0 and 1"));
    }
    problems
}

/// The name of the `i`th real server: its own, or `rs<i+1>`.
pub fn server_name(i: usize, name: Option<&str>) -> String {
    name.map(str::to_owned)
        .unwrap_or_else(|| format!("rs{}", i + 1))
}

/// Host names become namespace and interface names (`v-<name>` ≤ 15 bytes).
fn valid_host_name(name: &str) -> bool {
    (1..=10).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !matches!(name, "director" | "bridge" | "client")
}
