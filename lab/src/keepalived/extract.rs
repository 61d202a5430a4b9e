//! From the statement tree to [`KeepalivedConf`]: the keys the lab supports,
//! keepalived's defaults and inheritance, and a report of everything else.
//!
//! Unknown keywords *inside* a virtual server are errors, because keepalived's
//! `--config-test` rejects them too and a typo there (`persistance_timeout`)
//! would silently change what the lab measures. Unknown top-level keywords are
//! only reported: they belong to parts of keepalived the lab never reproduces.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::ParseError;
use super::model::{
    IgnoreReason, Ignored, KeepalivedConf, LbAlgo, LbKind, Protocol, RealServerConf, TcpCheckConf,
    VirtualServerConf, defaults,
};
use super::parse::{Node, Word};

/// Top-level blocks of keepalived's other daemons (global settings, VRRP,
/// BFD, static addressing), from keepalived.conf(5)'s TOP HIERACHY.
const NOT_LVS: &[&str] = &[
    "global_defs",
    "vrrp_instance",
    "vrrp_script",
    "vrrp_sync_group",
    "vrrp_track_file",
    "vrrp_track_process",
    "track_file",
    "track_process",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "linkbeat_interfaces",
    "bfd_instance",
    "garp_group",
    "net_namespace",
    "net_namespace_ipvs",
    "instance",
    "use_pid_dir",
    "SSL",
];

/// `include` and its checked variants (keepalived.conf(5), DESCRIPTION).
const INCLUDES: &[&str] = &[
    "include", "includer", "includem", "includew", "includeb", "includea",
];

/// Health checkers other than TCP_CHECK, which keepalived accepts and the lab
/// cannot reproduce.
const OTHER_CHECKERS: &[&str] = &[
    "HTTP_GET",
    "SSL_GET",
    "MISC_CHECK",
    "SMTP_CHECK",
    "DNS_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "FILE_CHECK",
    "BFD_CHECK",
];

/// Values a real server or checker inherits from the level above it.
#[derive(Debug, Clone, Copy, Default)]
struct Inherit {
    connect_timeout: Option<f64>,
    retry: Option<u32>,
    delay_before_retry: Option<f64>,
    warmup: Option<f64>,
    delay_loop: Option<f64>,
    alpha: Option<bool>,
}

impl Inherit {
    /// `self` where set, `parent` otherwise.
    fn over(self, parent: Inherit) -> Inherit {
        Inherit {
            connect_timeout: self.connect_timeout.or(parent.connect_timeout),
            retry: self.retry.or(parent.retry),
            delay_before_retry: self.delay_before_retry.or(parent.delay_before_retry),
            warmup: self.warmup.or(parent.warmup),
            delay_loop: self.delay_loop.or(parent.delay_loop),
            alpha: self.alpha.or(parent.alpha),
        }
    }

    /// Takes `node` if it is one of the inheritable keys; `Ok(false)` if not.
    fn take(&mut self, node: &Node) -> Result<bool, ParseError> {
        match node.name() {
            "connect_timeout" => self.connect_timeout = Some(timer(node)?),
            // `nb_get_retry` is the pre-2.0 name; keepalived 2.2.7 itself
            // rejects it, but users' older files still carry it.
            "retry" | "nb_get_retry" => self.retry = Some(positive_u32(node)?),
            "delay_before_retry" => self.delay_before_retry = Some(timer(node)?),
            "warmup" => self.warmup = Some(timer(node)?),
            "delay_loop" => self.delay_loop = Some(timer(node)?),
            "alpha" => self.alpha = Some(flag(node)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Gives meaning to the statement tree.
pub(crate) fn extract(nodes: &[Node]) -> Result<KeepalivedConf, ParseError> {
    let mut conf = KeepalivedConf::default();
    for node in nodes {
        let name = node.name();
        let reason = if name == "virtual_server" {
            if let Some(vs) = virtual_server(node, &mut conf.ignored)? {
                conf.virtual_servers.push(vs);
            }
            continue;
        } else if INCLUDES.contains(&name) {
            IgnoreReason::Include
        } else if NOT_LVS.contains(&name) {
            IgnoreReason::NotLvs
        } else if name == "virtual_server_group" || name.starts_with(['$', '@', '~']) {
            // Groups, parameter substitution and conditional configuration
            // would change which services exist; the lab takes none of them.
            IgnoreReason::Unsupported
        } else {
            IgnoreReason::UnknownKeyword
        };
        ignore(&mut conf.ignored, node, "", reason);
    }
    Ok(conf)
}

fn virtual_server(
    node: &Node,
    ignored: &mut Vec<Ignored>,
) -> Result<Option<VirtualServerConf>, ParseError> {
    let Some(head) = VirtualServerHead::read(node, ignored)? else {
        return Ok(None);
    };
    let mut vs = with_defaults(node.line(), head.vip, head.port);
    let mut inherit = Inherit::default();
    let mut real_servers = Vec::new();
    // First pass: the virtual server's own keys, which real servers inherit
    // wherever in the block they are written.
    for child in head.children {
        if inherit.take(child)? {
            no_block(child)?;
            continue;
        }
        no_block_unless(child, "real_server")?;
        if child.name() == "real_server" {
            real_servers.push(child);
        } else {
            virtual_server_key(child, &mut vs, &head.ctx, ignored)?;
        }
    }
    vs.delay_loop = inherit.delay_loop.unwrap_or(defaults::DELAY_LOOP);
    vs.alpha = inherit.alpha.unwrap_or(false);
    if vs.persistence_granularity.is_some() && vs.persistence_timeout.is_none() {
        // keepalived turns persistence on when only a granularity is given.
        vs.persistence_timeout = Some(defaults::PERSISTENCE_TIMEOUT);
    }
    for rs in real_servers {
        let rs = real_server(rs, &vs, inherit, ignored)?;
        vs.real_servers.push(rs);
    }
    Ok(Some(vs))
}

/// The `virtual_server <address> <port> {` line of a service the lab takes.
struct VirtualServerHead<'a> {
    vip: IpAddr,
    port: u16,
    /// ` in virtual_server <address> <port>`, for [`Ignored`] entries.
    ctx: String,
    children: &'a [Node],
}

impl<'a> VirtualServerHead<'a> {
    /// The head of `node`, or `None` (reported in `ignored`) for the forms
    /// the lab does not take: `fwmark`, `group` and port-less services.
    fn read(node: &'a Node, ignored: &mut Vec<Ignored>) -> Result<Option<Self>, ParseError> {
        let Some(first) = node.args.first() else {
            return Err(at(
                &node.keyword,
                "expected an address after virtual_server",
            ));
        };
        if first.text == "fwmark" || first.text == "group" {
            ignore(ignored, node, "", IgnoreReason::Unsupported);
            return Ok(None);
        }
        let vip = address(first, "virtual_server")?;
        let Some(port_word) = node.args.get(1) else {
            // keepalived allows a port-less (all ports) service when
            // persistent; the lab's services always have a port.
            ignore(ignored, node, "", IgnoreReason::Unsupported);
            return Ok(None);
        };
        let port = port(port_word, "virtual_server")?;
        no_extra(node, 2)?;
        let ctx = format!(" in virtual_server {} {}", first.text, port_word.text);
        let Some(children) = &node.block else {
            return Err(at(
                &node.keyword,
                format!(
                    "expected '{{' after virtual_server {} {}",
                    first.text, port_word.text
                ),
            ));
        };
        Ok(Some(Self {
            vip,
            port,
            ctx,
            children,
        }))
    }
}

/// A virtual server with keepalived's defaults and no real servers yet.
fn with_defaults(line: usize, vip: IpAddr, port: u16) -> VirtualServerConf {
    VirtualServerConf {
        line,
        vip,
        port,
        delay_loop: defaults::DELAY_LOOP,
        lb_algo: LbAlgo::default(),
        lb_kind: LbKind::default(),
        protocol: Protocol::default(),
        persistence_timeout: None,
        persistence_granularity: None,
        quorum: defaults::QUORUM,
        hysteresis: defaults::HYSTERESIS,
        sorry_server: None,
        inhibit_on_failure: false,
        alpha: false,
        omega: false,
        real_servers: Vec::new(),
    }
}

/// Applies one of a virtual server's own keys (neither inheritable nor
/// `real_server`) to `vs`, or reports it in `ignored`.
fn virtual_server_key(
    child: &Node,
    vs: &mut VirtualServerConf,
    ctx: &str,
    ignored: &mut Vec<Ignored>,
) -> Result<(), ParseError> {
    match child.name() {
        "lb_algo" | "lvs_sched" => {
            let w = one_arg(child)?;
            vs.lb_algo = LbAlgo::from_name(&w.text)
                .ok_or_else(|| at(w, format!("unknown {} '{}'", child.name(), w.text)))?;
        }
        "lb_kind" | "lvs_method" => lb_kind(child, vs, ctx, ignored)?,
        "protocol" => {
            let w = one_arg(child)?;
            vs.protocol = Protocol::from_name(&w.text)
                .ok_or_else(|| at(w, format!("unknown protocol '{}'", w.text)))?;
        }
        "persistence_timeout" => {
            vs.persistence_timeout = Some(if child.args.is_empty() {
                defaults::PERSISTENCE_TIMEOUT
            } else {
                positive_u32(child)?
            });
        }
        "persistence_granularity" => {
            let w = one_arg(child)?;
            vs.persistence_granularity = Some(netmask(w)?);
        }
        "quorum" => vs.quorum = int(child)?,
        "hysteresis" => vs.hysteresis = int(child)?,
        "sorry_server" => vs.sorry_server = Some(sorry_server(child, vs.port)?),
        "inhibit_on_failure" => vs.inhibit_on_failure = flag(child)?,
        "omega" => vs.omega = flag(child)?,
        "virtualhost" | "ha_suspend" | "smtp_alert" | "snmp_name" | "quorum_up" | "quorum_down"
        | "ip_family" => ignore(ignored, child, ctx, IgnoreReason::NoEffect),
        "sorry_server_inhibit"
        | "sorry_server_lvs_method"
        | "persistence_engine"
        | "flag-1"
        | "flag-2"
        | "flag-3"
        | "sh-port"
        | "sh-fallback"
        | "mh-port"
        | "mh-fallback"
        | "ops"
        | "hashed" => ignore(ignored, child, ctx, IgnoreReason::Unsupported),
        n if INCLUDES.contains(&n) => ignore(ignored, child, ctx, IgnoreReason::Include),
        n => return Err(unknown(child, n, "virtual_server")),
    }
    Ok(())
}

/// `lb_kind` / `lvs_method`: `TUN` may carry tunnel options, which the lab
/// reports as unsupported rather than rejecting.
fn lb_kind(
    child: &Node,
    vs: &mut VirtualServerConf,
    ctx: &str,
    ignored: &mut Vec<Ignored>,
) -> Result<(), ParseError> {
    let Some(w) = child.args.first() else {
        return Err(missing(child));
    };
    vs.lb_kind = LbKind::from_name(&w.text)
        .ok_or_else(|| at(w, format!("unknown {} '{}'", child.name(), w.text)))?;
    if vs.lb_kind == LbKind::Tun && child.args.len() > 1 {
        ignore(ignored, child, ctx, IgnoreReason::Unsupported);
    } else {
        no_extra(child, 1)?;
    }
    Ok(())
}

/// `sorry_server <address> [<port>]`; the port defaults to the service's.
fn sorry_server(child: &Node, service_port: u16) -> Result<SocketAddr, ParseError> {
    let Some(a) = child.args.first() else {
        return Err(at(&child.keyword, "expected an address after sorry_server"));
    };
    let ip = address(a, "sorry_server")?;
    let p = match child.args.get(1) {
        Some(w) => port(w, "sorry_server")?,
        None => service_port,
    };
    no_extra(child, 2)?;
    Ok(SocketAddr::new(ip, p))
}

fn real_server(
    node: &Node,
    vs: &VirtualServerConf,
    parent: Inherit,
    ignored: &mut Vec<Ignored>,
) -> Result<RealServerConf, ParseError> {
    let Some(first) = node.args.first() else {
        return Err(at(&node.keyword, "expected an address after real_server"));
    };
    let address = address(first, "real_server")?;
    let port = match node.args.get(1) {
        Some(w) => self::port(w, "real_server")?,
        None => vs.port,
    };
    no_extra(node, 2)?;
    let ctx = format!(" in real_server {} {}", first.text, port);
    let mut own = Inherit::default();
    let mut weight = defaults::WEIGHT;
    let mut inhibit = vs.inhibit_on_failure;
    let mut checks = Vec::new();
    for child in node.block.iter().flatten() {
        if own.take(child)? {
            no_block(child)?;
            continue;
        }
        let name = child.name();
        if name == "TCP_CHECK" {
            checks.push(child);
            continue;
        }
        if OTHER_CHECKERS.contains(&name) {
            ignore(ignored, child, &ctx, IgnoreReason::Unsupported);
            continue;
        }
        no_block(child)?;
        match name {
            "weight" => {
                weight = int(child)?;
                if weight > defaults::MAX_WEIGHT {
                    return Err(at(
                        &child.keyword,
                        format!("value for weight must be at most {}", defaults::MAX_WEIGHT),
                    ));
                }
            }
            "inhibit_on_failure" => inhibit = flag(child)?,
            "lvs_method" | "lb_kind" => {
                // A per-server method is not modelled; one equal to the
                // virtual server's changes nothing.
                let same = child.args.len() == 1
                    && child
                        .args
                        .first()
                        .is_some_and(|w| LbKind::from_name(&w.text) == Some(vs.lb_kind));
                let reason = if same {
                    IgnoreReason::NoEffect
                } else {
                    IgnoreReason::Unsupported
                };
                ignore(ignored, child, &ctx, reason);
            }
            "notify_up" | "notify_down" | "smtp_alert" | "virtualhost" | "snmp_name" => {
                ignore(ignored, child, &ctx, IgnoreReason::NoEffect)
            }
            "uthreshold" | "lthreshold" | "track_file" | "track_bfd" => {
                ignore(ignored, child, &ctx, IgnoreReason::Unsupported)
            }
            n if INCLUDES.contains(&n) => ignore(ignored, child, &ctx, IgnoreReason::Include),
            n => return Err(unknown(child, n, "real_server")),
        }
    }
    let inherit = own.over(parent);
    let mut tcp_check = None;
    for check in checks {
        if tcp_check.is_some() {
            ignore(ignored, check, &ctx, IgnoreReason::Duplicate);
            continue;
        }
        tcp_check = Some(tcp_check_conf(
            check, address, port, inherit, &ctx, ignored,
        )?);
    }
    Ok(RealServerConf {
        line: node.line(),
        address,
        port,
        weight,
        inhibit_on_failure: inhibit,
        tcp_check,
    })
}

fn tcp_check_conf(
    node: &Node,
    rs_address: IpAddr,
    rs_port: u16,
    parent: Inherit,
    ctx: &str,
    ignored: &mut Vec<Ignored>,
) -> Result<TcpCheckConf, ParseError> {
    no_extra(node, 0)?;
    let mut own = Inherit::default();
    let mut connect_port = rs_port;
    let mut connect_ip = rs_address;
    let ctx = format!(" in TCP_CHECK{ctx}");
    for child in node.block.iter().flatten() {
        no_block(child)?;
        if own.take(child)? {
            continue;
        }
        match child.name() {
            "connect_port" => connect_port = port(one_arg(child)?, "connect_port")?,
            "connect_ip" => connect_ip = address(one_arg(child)?, "connect_ip")?,
            "log_all_failures" => ignore(ignored, child, &ctx, IgnoreReason::NoEffect),
            "bindto" | "bind_port" | "bind_if" | "fwmark" => {
                ignore(ignored, child, &ctx, IgnoreReason::Unsupported)
            }
            n if INCLUDES.contains(&n) => ignore(ignored, child, &ctx, IgnoreReason::Include),
            n => return Err(unknown(child, n, "TCP_CHECK")),
        }
    }
    let eff = own.over(parent);
    let delay_loop = eff.delay_loop.unwrap_or(defaults::DELAY_LOOP);
    Ok(TcpCheckConf {
        connect_timeout: eff.connect_timeout.unwrap_or(defaults::CONNECT_TIMEOUT),
        retry: eff.retry.unwrap_or(defaults::RETRY),
        delay_before_retry: eff
            .delay_before_retry
            .unwrap_or(defaults::DELAY_BEFORE_RETRY),
        connect_port,
        connect_ip,
        warmup: eff.warmup.unwrap_or(delay_loop),
        delay_loop,
        alpha: eff.alpha.unwrap_or(false),
    })
}

// ---- helpers -------------------------------------------------------------

fn at(word: &Word, message: impl Into<String>) -> ParseError {
    ParseError {
        line: word.line,
        column: word.column,
        message: message.into(),
    }
}

fn missing(node: &Node) -> ParseError {
    at(
        &node.keyword,
        format!("expected a value after {}", node.name()),
    )
}

fn unknown(node: &Node, name: &str, inside: &str) -> ParseError {
    at(
        &node.keyword,
        format!("unknown keyword '{name}' in {inside}"),
    )
}

/// Records `node` as left out; `ctx` says where it sat.
fn ignore(ignored: &mut Vec<Ignored>, node: &Node, ctx: &str, reason: IgnoreReason) {
    let mut what = node.name().to_string();
    for arg in &node.args {
        what.push(' ');
        what.push_str(&arg.text);
    }
    what.push_str(ctx);
    ignored.push(Ignored {
        line: node.line(),
        what,
        reason,
    });
}

fn no_block(node: &Node) -> Result<(), ParseError> {
    if node.block.is_some() {
        return Err(at(
            &node.keyword,
            format!("'{}' takes no '{{' block", node.name()),
        ));
    }
    Ok(())
}

/// Like [`no_block`], except for `allowed` and for keywords whose block is
/// reported rather than read.
fn no_block_unless(node: &Node, allowed: &str) -> Result<(), ParseError> {
    if node.name() == allowed || INCLUDES.contains(&node.name()) {
        return Ok(());
    }
    no_block(node)
}

fn no_extra(node: &Node, max: usize) -> Result<(), ParseError> {
    match node.args.get(max) {
        Some(extra) => Err(at(
            extra,
            format!("unexpected '{}' after {}", extra.text, node.name()),
        )),
        None => Ok(()),
    }
}

fn one_arg(node: &Node) -> Result<&Word, ParseError> {
    let w = node.args.first().ok_or_else(|| missing(node))?;
    no_extra(node, 1)?;
    Ok(w)
}

fn int(node: &Node) -> Result<u32, ParseError> {
    let w = one_arg(node)?;
    w.text.parse::<u32>().map_err(|_| {
        at(
            w,
            format!(
                "value for {} must be an integer, found '{}'",
                node.name(),
                w.text
            ),
        )
    })
}

/// keepalived rejects 0 for `retry` and `persistence_timeout`.
fn positive_u32(node: &Node) -> Result<u32, ParseError> {
    match int(node)? {
        0 => Err(at(
            node.args.first().unwrap_or(&node.keyword),
            format!(
                "value for {} must be a positive integer, found '0'",
                node.name()
            ),
        )),
        n => Ok(n),
    }
}

/// Largest timer accepted: keepalived keeps timers in microseconds, and a
/// year is beyond any sensible check interval.
const MAX_TIMER: f64 = 365.0 * 24.0 * 3600.0;

/// A `<TIMER>`: seconds, fractions allowed (keepalived.conf(5), PARAMETER
/// SYNTAX).
fn timer(node: &Node) -> Result<f64, ParseError> {
    let w = one_arg(node)?;
    match w.text.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=MAX_TIMER).contains(&v) => Ok(v),
        _ => Err(at(
            w,
            format!(
                "value for {} must be a number of seconds, found '{}'",
                node.name(),
                w.text
            ),
        )),
    }
}

/// A flag written bare or with a `<BOOL>` (keepalived.conf(5), PARAMETER
/// SYNTAX: on|off|true|false|yes|no).
fn flag(node: &Node) -> Result<bool, ParseError> {
    let Some(w) = node.args.first() else {
        return Ok(true);
    };
    no_extra(node, 1)?;
    match w.text.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(at(
            w,
            format!(
                "value for {} must be one of on|off|true|false|yes|no, found '{}'",
                node.name(),
                w.text
            ),
        )),
    }
}

fn address(w: &Word, after: &str) -> Result<IpAddr, ParseError> {
    w.text.parse::<IpAddr>().map_err(|_| {
        at(
            w,
            format!("expected an address after {after}, found '{}'", w.text),
        )
    })
}

fn port(w: &Word, after: &str) -> Result<u16, ParseError> {
    match w.text.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(at(
            w,
            format!(
                "expected a port (1-65535) after {after}, found '{}'",
                w.text
            ),
        )),
    }
}

/// An IPv4 netmask with contiguous ones, as keepalived insists.
fn netmask(w: &Word) -> Result<Ipv4Addr, ParseError> {
    let bad = || {
        at(
            w,
            format!(
                "value for persistence_granularity must be an IPv4 netmask, found '{}'",
                w.text
            ),
        )
    };
    let mask: Ipv4Addr = w.text.parse().map_err(|_| bad())?;
    let bits = u32::from(mask);
    // keepalived requires contiguous ones; an all-zero mask would make every
    // client one group, which no one means.
    if bits == 0 || bits.leading_ones() + bits.trailing_zeros() != 32 {
        return Err(bad());
    }
    Ok(mask)
}
