//! Values that parse but make no sense: checked before anything touches the
//! kernel, each with a message that says what to change.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

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
    "conntrack",
];

/// Most client source addresses one scenario may ask for.
pub const MAX_CLIENT_IPS: u32 = 4096;

/// keepalived's own range for `persistence_timeout` (seconds, 31 days).
pub const PERSISTENCE_TIMEOUT: std::ops::RangeInclusive<u32> = 1..=2_678_400;
/// keepalived's range for a real server's weight.
pub const WEIGHT: std::ops::RangeInclusive<i32> = 0..=65_535;
/// Longest checker interval or timeout the lab accepts (seconds).
pub const MAX_CHECK_SECONDS: f64 = 3600.0;
/// Most checker retries.
pub const MAX_RETRY: u32 = 1000;
/// Most callers in flight: beyond this one 2-core machine only measures itself.
pub const MAX_CONCURRENCY: u32 = 10_000;
/// Most channels per client IP.
pub const MAX_CHANNELS_PER_IP: u32 = 64;
/// Largest echoed payload: gRPC's default maximum message size (4 MiB).
pub const MAX_PAYLOAD: u32 = 4 * 1024 * 1024;
/// Most load rounds.
pub const MAX_ROUNDS: u32 = 100;
/// Longest warm-up, idle gap or per-RPC deadline.
pub const MAX_LOAD_PART: std::time::Duration = std::time::Duration::from_secs(3600);
/// Longest whole load (rounds, warm-ups and idle gaps together).
pub const MAX_LOAD_TOTAL: std::time::Duration = std::time::Duration::from_secs(6 * 3600);
/// Longest IPVS timeout (`ipvsadm --set`), the same 31 days.
pub const MAX_IPVS_TIMEOUT: u32 = 2_678_400;

/// When the load of `load` ends (`None` when it overflows any bound).
pub fn load_end(load: &super::spec::Load) -> Option<std::time::Duration> {
    let round = load.duration.checked_add(load.warmup)?;
    let busy = round.checked_mul(load.rounds)?;
    let idle = load.idle.checked_mul(load.rounds.saturating_sub(1))?;
    busy.checked_add(idle)
}

/// One problem found in a scenario, naming the key it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{key}: {message}", at.map(|(l, c)| format!("{l}:{c}: ")).unwrap_or_default())]
pub struct Invalid {
    /// The dotted key, e.g. `virtual_server.lb_algo`.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
    /// 1-based line and column in the file, when the problem came from one.
    pub at: Option<(usize, usize)>,
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        key: key.into(),
        message: message.into(),
        at: None,
    }
}

/// Checks a parsed scenario; returns every problem, not just the first.
pub fn validate(file: &ScenarioFile) -> Vec<Invalid> {
    let mut problems = Vec::new();
    if file.expect.first_rpc_after_idle.is_some() && !file.load.keep_channels {
        problems.push(invalid(
            "expect.first_rpc_after_idle",
            "judges channels kept open through an idle gap: needs [load] keep_channels = true",
        ));
    }
    if file.expect.server_half_lingers.is_some()
        && file.expect.first_rpc_after_idle != Some(super::spec::AfterIdleExpectation::Fails)
    {
        problems.push(invalid(
            "expect.server_half_lingers",
            "judges the connections lost in an idle gap: needs first_rpc_after_idle = \"fails\"",
        ));
    }
    check_virtual_server(&file.virtual_server, &mut problems);
    let seen_addr = check_real_servers(file, &mut problems);
    check_network(file, &seen_addr, &mut problems);
    check_load(&file.load, &mut problems);
    check_time(file, &mut problems);
    check_generic_call(&file.load, &mut problems);
    check_phases(file, &mut problems);
    check_ipvs(file, &mut problems);
    check_client_ports(&file.network, &mut problems);
    check_stall_expect(&file.expect, &mut problems);
    check_scale_out(file, &mut problems);
    problems.extend(check_ranges(file));
    check_description(&file.description, &mut problems);
    check_expect(&file.expect, &mut problems);
    check_scheduler_expect(file, &mut problems);
    super::byo::validate(file, &mut problems);
    problems
}

/// The service itself: protocol, scheduler, forwarding, port, persistence.
fn check_virtual_server(vs: &super::spec::VirtualServer, problems: &mut Vec<Invalid>) {
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
}

/// Each real server; returns their addresses, which the network must not reuse.
fn check_real_servers(file: &ScenarioFile, problems: &mut Vec<Invalid>) -> HashSet<Ipv4Addr> {
    let vs = &file.virtual_server;
    let net = &file.network;
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
        if !WEIGHT.contains(&rs.weight) {
            problems.push(invalid(
                format!("{key}.weight"),
                format!("{} is outside keepalived's range 0 to 65535", rs.weight),
            ));
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
    seen_addr
}

/// The director's and clients' addresses against the segment, the VIP and
/// the real servers.
fn check_network(file: &ScenarioFile, seen_addr: &HashSet<Ipv4Addr>, problems: &mut Vec<Invalid>) {
    let vs = &file.virtual_server;
    let net = &file.network;
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
}

/// The `[load]` block's required values and their combinations.
fn check_load(load: &super::spec::Load, problems: &mut Vec<Invalid>) {
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
    if load.keep_channels && load.rounds < 2 {
        problems.push(invalid(
            "load.keep_channels",
            "keeps the channels open through the idle gaps between rounds: needs rounds >= 2 (and an idle gap)",
        ));
    }
    if load.keepalive.is_some_and(|k| k.is_zero()) {
        problems.push(invalid(
            "load.keepalive",
            "must be more than 0 (e.g. \"5m\", a PING every five minutes)",
        ));
    }
    if load.timeout.is_zero() {
        problems.push(invalid("load.timeout", "must be more than 0"));
    }
    if !(Duration::from_millis(10)..=Duration::from_secs(10)).contains(&load.timeline_interval) {
        problems.push(invalid(
            "load.timeline_interval",
            format!(
                "{:?} is outside 10ms to 10s (e.g. \"100ms\" for the rebalance figures)",
                load.timeline_interval
            ),
        ));
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
    if let Some(rate) = load.connect_rate
        && !(1..=100_000).contains(&rate)
    {
        problems.push(invalid(
            "load.connect_rate",
            format!(
                "{rate} connections per second is out of range: use 1..=100000 (e.g. 600, what a \
                 one-CPU UML guest accepts), or leave it out for loadgen's default"
            ),
        ));
    }
    if load.connection == super::spec::ConnectionModel::Churn && load.churn_rpcs.unwrap_or(0) == 0 {
        problems.push(invalid(
            "load.churn_rpcs",
            "connection = \"churn\" needs churn_rpcs >= 1",
        ));
    }
}

/// Why time travel needs a paced load, said wherever it is refused.
pub const TRAVEL_NEEDS_OPEN_LOOP: &str = "time travel needs a paced load: set [load] mode = \"open\" \
     with an rps the guest serves with time to spare (e.g. 100). Under time travel the guest's \
     clock moves only at timer events while it is busy, so a closed loop that keeps the guest \
     saturated stalls its clock: measured in UML 7.2.13, 133,786 RPCs took 0.4 s of guest time \
     and about 55 s of host time";

/// `[time]`: travel only with a paced (open-loop) load.
fn check_time(file: &ScenarioFile, problems: &mut Vec<Invalid>) {
    if file.time.mode == super::spec::TimeMode::Travel
        && file.load.mode != super::spec::LoadMode::Open
    {
        problems.push(invalid("time.mode", TRAVEL_NEEDS_OPEN_LOOP));
    }
}

/// Generic mode's `call`, `proto`, `data` and `metadata`: what `lab
/// loadgen` would refuse at start is refused here, before anything is
/// built. With a `proto` the file is compiled and the request encoded, so
/// a proto error, an unknown method and a field that does not fit are all
/// caught; without one (reflection) only the forms are checked.
fn check_generic_call(load: &super::spec::Load, problems: &mut Vec<Invalid>) {
    use bench::method::{self, CallSpec, MethodError, Schema};
    let pairs: Vec<String> = load
        .metadata
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if let Err(e) = method::metadata::parse_metadata(&pairs) {
        problems.push(invalid("load.metadata", e.to_string()));
    }
    let Some(call) = &load.call else {
        for (key, set) in [
            ("load.proto", load.proto.is_some()),
            ("load.data", load.data.is_some()),
        ] {
            if set {
                problems.push(invalid(
                    key,
                    "only used with call = \"pkg.Service/Method\" (generic mode)",
                ));
            }
        }
        return;
    };
    if let Err(e) = method::split_call(call) {
        problems.push(invalid("load.call", e.to_string()));
        return;
    }
    let data = load.data.clone().unwrap_or_else(|| "{}".to_string());
    let Some(proto) = &load.proto else {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&data) {
            problems.push(invalid("load.data", format!("not JSON: {e}")));
        }
        return;
    };
    let spec = CallSpec {
        method: call.clone(),
        schema: Schema::Proto {
            files: vec![proto.clone()],
            import_paths: Vec::new(),
        },
        data,
    };
    let checked = method::proto::compile(std::slice::from_ref(proto), &[])
        .and_then(|pool| method::resolve_in(&pool, &spec, "proto"));
    if let Err(e) = checked {
        let key = match e {
            MethodError::Proto { .. } => "load.proto",
            MethodError::Data(_) => "load.data",
            _ => "load.call",
        };
        problems.push(invalid(key, e.to_string()));
    }
}

/// Every `[[phase]]`: in time, on a known server, with a valid value.
fn check_phases(file: &ScenarioFile, problems: &mut Vec<Invalid>) {
    let vs = &file.virtual_server;
    let load = &file.load;
    let names: Vec<String> = vs
        .real_servers
        .iter()
        .enumerate()
        .map(|(i, rs)| server_name(i, rs.name.as_deref()))
        .collect();
    let end = load_end(load).unwrap_or(std::time::Duration::MAX);
    for (i, phase) in file.phases.iter().enumerate() {
        let key = format!("phase[{i}]");
        if phase.at > end {
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
            PhaseAction::SetWeight { weight, .. } if !WEIGHT.contains(weight) => {
                problems.push(invalid(
                    format!("{key}.weight"),
                    format!("{weight} is outside keepalived's range 0 to 65535"),
                ));
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
}

/// The `[ipvs]` sysctls and timeouts.
fn check_ipvs(file: &ScenarioFile, problems: &mut Vec<Invalid>) {
    for (name, value) in &file.ipvs.sysctls {
        if !IPVS_SYSCTLS.contains(&name.as_str()) {
            problems.push(invalid(
                format!("ipvs.sysctls.{name}"),
                format!("not one of {}", IPVS_SYSCTLS.join(", ")),
            ));
        }
        // conn_reuse_mode is a bit mask of two bits; the others are
        // switches. The kernel would take any integer and misbehave.
        let most = if name == "conn_reuse_mode" { 3 } else { 1 };
        if !(0..=most).contains(value) {
            problems.push(invalid(
                format!("ipvs.sysctls.{name}"),
                format!("{value} is not 0 to {most}"),
            ));
        }
    }
    for (key, value) in [
        ("ipvs.timeout_tcp", file.ipvs.timeout_tcp),
        ("ipvs.timeout_tcp_fin", file.ipvs.timeout_tcp_fin),
        ("ipvs.timeout_udp", file.ipvs.timeout_udp),
    ] {
        match value {
            Some(0) => problems.push(invalid(
                key,
                "must be at least 1 second (omit it for the kernel default)",
            )),
            Some(v) if v > MAX_IPVS_TIMEOUT => problems.push(invalid(
                key,
                format!("{v} is more than {MAX_IPVS_TIMEOUT} seconds (31 days)"),
            )),
            _ => {}
        }
    }
}

/// Lowest first port of `network.client_port_range`: below it are the
/// well-known and registered ports servers bind.
pub const MIN_CLIENT_PORT: u16 = 1024;

/// `network.client_port_range` and `network.client_tw_reuse`: what the
/// client namespace's kernel accepts (`ip_local_port_range` takes
/// `first <= last`, `tcp_tw_reuse` 0 to 2).
fn check_client_ports(net: &super::spec::Network, problems: &mut Vec<Invalid>) {
    if let Some([first, last]) = net.client_port_range
        && (first < MIN_CLIENT_PORT || first > last)
    {
        problems.push(invalid(
            "network.client_port_range",
            format!(
                "[{first}, {last}] must be [first, last] with {MIN_CLIENT_PORT} <= first <= last <= 65535"
            ),
        ));
    }
    if let Some(v) = net.client_tw_reuse
        && v > 2
    {
        problems.push(invalid(
            "network.client_tw_reuse",
            format!("{v} is not 0, 1 or 2 (net.ipv4.tcp_tw_reuse)"),
        ));
    }
}

/// A scale-out: every `standby` server is added by a phase, something
/// serves from the start, nothing else manages the standby destinations,
/// and the rebalance expectations have a scale-out and windows to judge.
fn check_scale_out(file: &ScenarioFile, problems: &mut Vec<Invalid>) {
    let servers = &file.virtual_server.real_servers;
    let adds = |i: usize, rs: &super::spec::RealServer| {
        let name = server_name(i, rs.name.as_deref());
        file.phases.iter().any(|p| {
            matches!(&p.action, PhaseAction::AddDestination { server }
                if *server == name || *server == rs.address.to_string())
        })
    };
    for (i, rs) in servers.iter().enumerate().filter(|(_, rs)| rs.standby) {
        let key = format!("virtual_server.real_server[{i}].standby");
        let name = server_name(i, rs.name.as_deref());
        if !adds(i, rs) {
            problems.push(invalid(
                &key,
                format!(
                    "{name} is held back but no phase adds it: add a [[phase]] with action = \"add_destination\" and server = \"{name}\""
                ),
            ));
        }
        if rs.tcp_check.is_some() || rs.grpc_check.is_some() {
            problems.push(invalid(
                &key,
                format!("{name} has a health check, whose checker would manage its destination before the scale-out: remove the check or standby"),
            ));
        }
        if file.director == super::spec::DirectorKind::Keepalived {
            problems.push(invalid(
                &key,
                "keepalived puts every real_server of its file into IPVS at start: use director = \"lab\" or \"static\" for a scale-out",
            ));
        }
    }
    if !servers.is_empty() && servers.iter().all(|rs| rs.standby) {
        problems.push(invalid(
            "virtual_server.real_server",
            "every real server is standby, so nothing serves when the load starts: keep at least one without standby",
        ));
    }
    let e = &file.expect;
    let judged = [
        ("expect.time_to_fairness_max_s", e.time_to_fairness_max_s),
        ("expect.time_to_fairness_min_s", e.time_to_fairness_min_s),
        ("expect.hot_spot_ratio_min", e.hot_spot_ratio_min),
        ("expect.hot_spot_ratio_max", e.hot_spot_ratio_max),
    ];
    for (key, v) in judged {
        let Some(v) = v else { continue };
        if !(v.is_finite() && v > 0.0) {
            problems.push(invalid(key, format!("{v} must be a number above 0")));
        }
        if !servers.iter().any(|rs| rs.standby) {
            problems.push(invalid(
                key,
                "judges a scale-out: needs a real server with standby = true that a phase adds",
            ));
        }
        let bucket_us = file.load.timeline_interval.as_micros();
        if bucket_us == 0 || 100_000 % bucket_us != 0 {
            problems.push(invalid(
                key,
                format!(
                    "counts RPCs per server in 100 ms windows, which {:?} timeline buckets cannot make: set [load] timeline_interval = \"100ms\"",
                    file.load.timeline_interval
                ),
            ));
        }
    }
    min_not_above_max(
        problems,
        ("expect.time_to_fairness_min_s", e.time_to_fairness_min_s),
        ("time_to_fairness_max_s", e.time_to_fairness_max_s),
    );
    min_not_above_max(
        problems,
        ("expect.hot_spot_ratio_min", e.hot_spot_ratio_min),
        ("hot_spot_ratio_max", e.hot_spot_ratio_max),
    );
}

/// The 1 s connect shares are fractions, and a minimum above the maximum
/// can never pass.
fn check_stall_expect(expect: &super::spec::Expect, problems: &mut Vec<Invalid>) {
    for (key, v) in [
        ("expect.connect_1s_share_max", expect.connect_1s_share_max),
        ("expect.connect_1s_share_min", expect.connect_1s_share_min),
    ] {
        if let Some(v) = v
            && !(0.0..=1.0).contains(&v)
        {
            problems.push(invalid(key, format!("{v} must be between 0 and 1")));
        }
    }
    min_not_above_max(
        problems,
        ("expect.connect_1s_share_min", expect.connect_1s_share_min),
        ("connect_1s_share_max", expect.connect_1s_share_max),
    );
}

/// An `[expect]` minimum above its maximum can never pass: reported at the
/// minimum's key (`(key, value)` each; the maximum's key without `expect.`).
fn min_not_above_max(
    problems: &mut Vec<Invalid>,
    (min_key, min): (&str, Option<f64>),
    (max_key, max): (&str, Option<f64>),
) {
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        problems.push(invalid(
            min_key,
            format!("{min} is above {max_key} = {max}"),
        ));
    }
}

/// The description is printed to terminals: no escape sequences in it.
fn check_description(description: &str, problems: &mut Vec<Invalid>) {
    if let Some((i, c)) = description
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && *c != '\n' && *c != '\t')
    {
        problems.push(invalid(
            "description",
            format!(
                "character {} is the control character U+{:04X}; terminal escapes are not allowed, remove it",
                i + 1,
                c as u32
            ),
        ));
    }
}

/// The `[expect]` block's fractions.
fn check_expect(expect: &super::spec::Expect, problems: &mut Vec<Invalid>) {
    if let Some(m) = expect.margin
        && !(m > 0.0 && m < 1.0)
    {
        problems.push(invalid(
            "expect.margin",
            "must be between 0 and 1 (exclusive): the absolute deviation of a share the test must detect, e.g. 0.10",
        ));
    }
    if let Some(a) = expect.alpha
        && !(a > 0.0 && a < 0.5)
    {
        problems.push(invalid(
            "expect.alpha",
            "must be between 0 and 0.5 (exclusive), e.g. 1e-6: the gate fails only at p <= alpha",
        ));
    }
    if let Some(m) = expect.baseline_margin
        && !(m > 0.0 && m < 1.0)
    {
        problems.push(invalid(
            "expect.baseline_margin",
            "must be between 0 and 1 (exclusive): the largest allowed change of a server's share",
        ));
    }
    if let Some(rate) = expect.max_error_rate
        && !(0.0..=1.0).contains(&rate)
    {
        problems.push(invalid("expect.max_error_rate", "must be between 0 and 1"));
    }
}

/// The scheduler expectations ([`super::scheduler`]) need the phase and
/// the rounds they compare. They do not require a particular scheduler: a
/// scenario whose scheduler was swapped must run and fail them.
fn check_scheduler_expect(file: &ScenarioFile, problems: &mut Vec<Invalid>) {
    let e = &file.expect;
    if let Some(mask) = e.mapping_granularity {
        let bits = u32::from(mask);
        if bits.leading_ones() + bits.trailing_zeros() != 32 {
            problems.push(invalid(
                "expect.mapping_granularity",
                format!("{mask} is not a netmask (ones followed by zeros)"),
            ));
        }
        if e.mapping_stable.is_none() {
            problems.push(invalid(
                "expect.mapping_granularity",
                "is the unit of mapping_stable: add mapping_stable = true (or false)",
            ));
        }
    }
    for (key, v) in [
        ("expect.remap_fraction_max", e.remap_fraction_max),
        ("expect.remap_fraction_min", e.remap_fraction_min),
    ] {
        if let Some(v) = v
            && !(0.0..=1.0).contains(&v)
        {
            problems.push(invalid(key, format!("{v} must be between 0 and 1")));
        }
    }
    min_not_above_max(
        problems,
        ("expect.remap_fraction_min", e.remap_fraction_min),
        ("remap_fraction_max", e.remap_fraction_max),
    );
    if e.remap_fraction_max.is_some() || e.remap_fraction_min.is_some() {
        if !file.phases.iter().any(|p| p.action.changes_destinations()) {
            problems.push(invalid(
                "expect.remap_fraction_max",
                "needs a [[phase]] that removes, adds or reweights a real server (remove_destination, add_destination, set_weight), placed in an idle gap between rounds",
            ));
        }
        if file.load.rounds < 2 {
            problems.push(invalid(
                "load.rounds",
                "a remap fraction compares the round before the phase with the round after it: set rounds = 2 or more, with an idle gap that holds the phase",
            ));
        }
    }
    if e.weight_zero_receives_new.is_some()
        && !file
            .phases
            .iter()
            .any(|p| matches!(p.action, PhaseAction::SetWeight { weight: 0, .. }))
    {
        problems.push(invalid(
            "expect.weight_zero_receives_new",
            "needs a [[phase]] with action = \"set_weight\" and weight = 0",
        ));
    }
    if let Some(v) = e.active_spread_max
        && !(v.is_finite() && v >= 0.0)
    {
        problems.push(invalid(
            "expect.active_spread_max",
            format!("{v} must be a number of connections, 0 or more"),
        ));
    }
    if let Some([lo, hi]) = e.template_lifetime_s {
        if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi) {
            problems.push(invalid(
                "expect.template_lifetime_s",
                format!("[{lo}, {hi}] must be seconds [low, high] with 0 <= low <= high"),
            ));
        }
        if file
            .virtual_server
            .persistence_timeout
            .is_none_or(|t| t == 0)
        {
            problems.push(invalid(
                "expect.template_lifetime_s",
                "needs virtual_server.persistence_timeout: without persistence there are no templates",
            ));
        }
    }
    if let Some(v) = e.max_detection_s
        && !(v.is_finite() && v > 0.0)
    {
        problems.push(invalid(
            "expect.max_detection_s",
            format!("{v} must be a number of seconds above 0"),
        ));
    }
    if (e.max_detection_s.is_some() || e.ipvs_transitions.is_some())
        && !file.phases.iter().any(|p| p.action.is_fault())
    {
        problems.push(invalid(
            "expect.max_detection_s",
            "needs a [[phase]] that breaks a real server (stop_server, kill_server, link_down, blackhole)",
        ));
    }
    for (i, rs) in file.virtual_server.real_servers.iter().enumerate() {
        if let Some(age) = rs.max_connection_age
            && (age < std::time::Duration::from_millis(100) || age > MAX_LOAD_PART)
        {
            problems.push(invalid(
                format!("virtual_server.real_server[{i}].max_connection_age"),
                format!("{age:?} must be between 100ms and 1h"),
            ));
        }
    }
}

/// Every numeric value inside its range, and addresses a lab can hold: each
/// bound is named in the message, so the fix is in it.
fn check_ranges(file: &ScenarioFile) -> Vec<Invalid> {
    let mut problems = Vec::new();
    check_server_ranges(&file.virtual_server, &mut problems);
    check_addresses(file, &mut problems);
    check_load_ranges(&file.load, &mut problems);
    problems
}

/// A number of seconds a keepalived value can hold.
fn check_seconds(problems: &mut Vec<Invalid>, key: String, v: f64, zero_ok: bool) {
    let low_ok = if zero_ok { v >= 0.0 } else { v > 0.0 };
    if !(v.is_finite() && low_ok && v <= MAX_CHECK_SECONDS) {
        problems.push(invalid(
            key,
            format!(
                "{v} must be a number of seconds {} {MAX_CHECK_SECONDS}",
                if zero_ok {
                    "from 0 to"
                } else {
                    "above 0, at most"
                }
            ),
        ));
    }
}

/// Persistence, the check loop, weights and every health check's timings.
fn check_server_ranges(vs: &super::spec::VirtualServer, problems: &mut Vec<Invalid>) {
    if let Some(t) = vs.persistence_timeout
        && !PERSISTENCE_TIMEOUT.contains(&t)
    {
        problems.push(invalid(
            "virtual_server.persistence_timeout",
            format!(
                "{t} is outside keepalived's range 1 to 2678400 seconds (31 days); omit it for no persistence"
            ),
        ));
    }
    check_seconds(
        problems,
        "virtual_server.delay_loop".into(),
        vs.delay_loop,
        false,
    );
    if !vs.real_servers.is_empty() && vs.real_servers.iter().all(|rs| rs.weight == 0) {
        problems.push(invalid(
            "virtual_server.real_server",
            "every real server has weight 0: IPVS would send no connection anywhere and every client \
             would be refused; give at least one a weight of 1 or more",
        ));
    }
    for (i, rs) in vs.real_servers.iter().enumerate() {
        let key = format!("virtual_server.real_server[{i}]");
        let checks = [
            rs.tcp_check.as_ref().map(|c| {
                (
                    "TCP_CHECK",
                    c.connect_timeout,
                    c.delay_before_retry,
                    c.warmup,
                    c.retry,
                )
            }),
            rs.grpc_check.as_ref().map(|c| {
                (
                    "GRPC_CHECK",
                    c.connect_timeout,
                    c.delay_before_retry,
                    c.warmup,
                    c.retry,
                )
            }),
        ];
        for (name, connect_timeout, delay_before_retry, warmup, retry) in
            checks.into_iter().flatten()
        {
            let key = format!("{key}.{name}");
            check_seconds(
                problems,
                format!("{key}.connect_timeout"),
                connect_timeout,
                false,
            );
            check_seconds(
                problems,
                format!("{key}.delay_before_retry"),
                delay_before_retry,
                true,
            );
            if let Some(w) = warmup {
                check_seconds(problems, format!("{key}.warmup"), w, true);
            }
            if retry > MAX_RETRY {
                problems.push(invalid(
                    format!("{key}.retry"),
                    format!("{retry} is more than {MAX_RETRY} retries"),
                ));
            }
        }
    }
}

/// A VIP must be a unicast address a lab host can hold, and the segment
/// a range the lab can number.
fn check_addresses(file: &ScenarioFile, problems: &mut Vec<Invalid>) {
    let vs = &file.virtual_server;
    let vip = vs.vip;
    let why_not = if vip.is_unspecified() {
        Some("is the unspecified address")
    } else if vip.is_loopback() {
        Some("is a loopback address, which never leaves a host")
    } else if vip.is_multicast() {
        Some("is a multicast address")
    } else if vip.is_broadcast() {
        Some("is the broadcast address")
    } else if vip.is_link_local() {
        Some("is link-local")
    } else {
        None
    };
    if let Some(why) = why_not {
        problems.push(invalid(
            "virtual_server.vip",
            format!("{vip} {why}; a VIP must be a unicast address such as 192.168.122.1"),
        ));
    }
    let segment = file.network.segment;
    if !(8..=29).contains(&segment.prefix_len()) || segment.network().is_unspecified() {
        problems.push(invalid(
            "network.segment",
            format!(
                "{segment} cannot be a lab segment: use a /8 to /29 of unicast addresses, such as 172.22.32.0/20"
            ),
        ));
    }
}

/// The `[load]` values one machine can run and measure.
fn check_load_ranges(load: &super::spec::Load, problems: &mut Vec<Invalid>) {
    let bounded = |problems: &mut Vec<Invalid>, key: &str, v: u32, max: u32, what: &str| {
        if v > max {
            problems.push(invalid(key, format!("{v} is more than {max} {what}")));
        }
    };
    bounded(
        problems,
        "load.concurrency",
        load.concurrency,
        MAX_CONCURRENCY,
        "callers (one machine cannot hold more and measure IPVS)",
    );
    bounded(
        problems,
        "load.channels_per_ip",
        load.channels_per_ip,
        MAX_CHANNELS_PER_IP,
        "channels per client IP",
    );
    bounded(
        problems,
        "load.payload",
        load.payload,
        MAX_PAYLOAD,
        "bytes (gRPC's default maximum message size)",
    );
    bounded(problems, "load.rounds", load.rounds, MAX_ROUNDS, "rounds");
    for (key, value) in [
        ("load.warmup", load.warmup),
        ("load.idle", load.idle),
        ("load.timeout", load.timeout),
    ] {
        if value > MAX_LOAD_PART {
            problems.push(invalid(
                key,
                format!(
                    "{} is longer than one hour",
                    humantime::format_duration(value)
                ),
            ));
        }
    }
    if let Some(r) = load.rps
        && r > 1_000_000.0
    {
        problems.push(invalid(
            "load.rps",
            format!("{r} is more than 1000000 RPCs a second"),
        ));
    }
    match load_end(load) {
        Some(end) if end <= MAX_LOAD_TOTAL => {}
        _ => problems.push(invalid(
            "load.rounds",
            format!(
                "rounds x (duration + warmup) + idle gaps must end within {}",
                humantime::format_duration(MAX_LOAD_TOTAL)
            ),
        )),
    }
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
