//! Tests for the keepalived.conf reader and writer.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::model::defaults;
use super::*;

/// The lab's reference configuration (the `rr-persistence` scenario).
pub(crate) const REFERENCE: &str = "\
virtual_server 192.168.122.1 8080 {
    delay_loop 6
    lb_algo rr
    lb_kind DR
    protocol TCP
    persistence_timeout 60
    real_server 172.22.35.1 8080 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
            retry 3
            delay_before_retry 3
            connect_port 8080
        }
    }
    real_server 172.22.35.2 8080 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
            retry 3
            delay_before_retry 3
            connect_port 8080
        }
    }
}
";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn reference_model() -> VirtualServerConf {
    let rs = |line, addr: &str| RealServerConf {
        line,
        address: ip(addr),
        port: 8080,
        weight: 1,
        inhibit_on_failure: false,
        tcp_check: Some(TcpCheckConf {
            connect_timeout: 3.0,
            retry: 3,
            delay_before_retry: 3.0,
            connect_port: 8080,
            connect_ip: ip(addr),
            warmup: 6.0,
            delay_loop: 6.0,
            alpha: false,
        }),
    };
    VirtualServerConf {
        line: 1,
        vip: ip("192.168.122.1"),
        port: 8080,
        delay_loop: 6.0,
        lb_algo: LbAlgo::Rr,
        lb_kind: LbKind::Dr,
        protocol: Protocol::Tcp,
        persistence_timeout: Some(60),
        persistence_granularity: None,
        quorum: 1,
        hysteresis: 0,
        sorry_server: None,
        inhibit_on_failure: false,
        alpha: false,
        omega: false,
        real_servers: vec![rs(7, "172.22.35.1"), rs(16, "172.22.35.2")],
    }
}

/// The model with every line number zeroed, for comparing texts laid out
/// differently.
fn without_lines(mut conf: KeepalivedConf) -> Vec<VirtualServerConf> {
    for vs in &mut conf.virtual_servers {
        vs.line = 0;
        for rs in &mut vs.real_servers {
            rs.line = 0;
        }
    }
    conf.virtual_servers
}

fn parse_ok(text: &str) -> KeepalivedConf {
    match parse_str(text) {
        Ok(c) => c,
        Err(e) => panic!("parse failed: {e} (column {})\n{text}", e.column),
    }
}

#[test]
fn reference_parses_to_expected_model() {
    let conf = parse_ok(REFERENCE);
    assert_eq!(conf.virtual_servers, vec![reference_model()]);
    assert!(conf.ignored.is_empty(), "{:?}", conf.ignored);
}

#[test]
fn legacy_and_current_keywords_give_the_same_model() {
    let legacy = REFERENCE.replace(" retry 3", " nb_get_retry 3");
    let current = REFERENCE
        .replace("lb_algo", "lvs_sched")
        .replace("lb_kind", "lvs_method");
    assert_eq!(parse_ok(&legacy), parse_ok(REFERENCE));
    assert_eq!(parse_ok(&current), parse_ok(REFERENCE));
}

#[test]
fn odd_formatting_and_comments_parse() {
    let text = "! Configuration File for keepalived\r\n\
        # another comment\r\n\
        virtual_server\t192.168.122.1   8080   # the VIP\r\n\
        {\r\n\
        \tdelay_loop 6 ! six seconds\r\n\
        \tlb_algo \"rr\"\r\n\
        \tlb_kind 'DR'\r\n\
        \tprotocol tcp\r\n\
        \tpersistence_timeout 60\r\n\
        \treal_server 172.22.35.1 8080\r\n\
        \t{ weight 1\r\n\
        \t\tTCP_CHECK\r\n\r\n\
        \t\t{\r\n\
        \t\t\tconnect_timeout 3\r\n\
        \t\t\tretry 3 ; \r\n\
        \t\t}}\n\
        real_server 172.22.35.2 8080 { weight 1; TCP_CHECK { connect_timeout 3 } }\n\
        }\n";
    // `;` is not a separator in keepalived either: `retry 3 ;` is an error.
    let err = parse_str(text).expect_err("`;` is a stray word");
    assert_eq!(err.line, 16, "{err}");
    assert!(err.message.contains("';'"), "{err}");

    let text = "! Configuration File for keepalived\r\n\
        # another comment\r\n\
        virtual_server\t192.168.122.1   8080   # the VIP\r\n\
        {\r\n\
        \tdelay_loop 6 ! six seconds\r\n\
        \tlb_algo \"rr\"\r\n\
        \tlb_kind 'DR'\r\n\
        \tprotocol tcp\r\n\
        \tpersistence_timeout 60\r\n\
        \treal_server 172.22.35.1 8080\r\n\
        \t{ weight 1\r\n\
        \t\tTCP_CHECK\r\n\r\n\
        \t\t{\r\n\
        \t\t\tconnect_timeout 3\r\n\
        \t\t\tretry 3\r\n\
        \t\t\tdelay_before_retry 3 }}\n\
        real_server 172.22.35.2 8080 { weight 1\n TCP_CHECK { connect_timeout 3\nretry 3\ndelay_before_retry 3 } }\n\
        }\n";
    let conf = parse_ok(text);
    assert_eq!(
        without_lines(conf.clone()),
        without_lines(parse_ok(REFERENCE))
    );
    assert_eq!(conf.virtual_servers[0].line, 3);
    assert_eq!(conf.virtual_servers[0].real_servers[0].line, 10);
    assert_eq!(conf.virtual_servers[0].real_servers[1].line, 18);
}

#[test]
fn quoted_strings_join_and_escape() {
    let text = "global_defs {\n router_id ab\"c d\"e\n notification_email_from 'x\\'y'\n}\n\
        virtual_server 10.0.0.1 80 { virtualhost \"www example # not a comment\" }\n";
    let conf = parse_ok(text);
    assert_eq!(conf.ignored.len(), 2);
    assert_eq!(
        conf.ignored[1].what,
        "virtualhost www example # not a comment in virtual_server 10.0.0.1 80"
    );
    let err = parse_str("virtual_server 10.0.0.1 80 {\n virtualhost \"open\n}\n")
        .expect_err("unterminated quote");
    assert_eq!((err.line, err.column), (2, 14), "{err}");
}

#[test]
fn other_blocks_are_reported_as_ignored_with_lines() {
    let text = "\
global_defs {
    router_id LVS_DEVEL
}
include /etc/keepalived/conf.d/*.conf
vrrp_script chk { script \"/bin/true\" }
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.168.122.1
    }
}
vrrp_sync_group G1 { group { VI_1 } }
static_ipaddress {
    10.0.0.1/24 dev eth0
}
virtual_server fwmark 1 {
    lb_algo rr
}
virtual_server 192.168.122.1 8080 {
    lb_kind DR
    real_server 172.22.35.1 8080 {
        HTTP_GET { url { path / } }
        TCP_CHECK { }
        TCP_CHECK { connect_port 1 }
        notify_up /bin/true
    }
}
some_future_block { }
";
    let conf = parse_ok(text);
    let got: Vec<(usize, IgnoreReason)> = conf.ignored.iter().map(|i| (i.line, i.reason)).collect();
    assert_eq!(
        got,
        vec![
            (1, IgnoreReason::NotLvs),
            (4, IgnoreReason::Include),
            (5, IgnoreReason::NotLvs),
            (6, IgnoreReason::NotLvs),
            (14, IgnoreReason::NotLvs),
            (15, IgnoreReason::NotLvs),
            (18, IgnoreReason::Unsupported),
            (24, IgnoreReason::Unsupported),
            (27, IgnoreReason::NoEffect),
            (26, IgnoreReason::Duplicate),
            (30, IgnoreReason::UnknownKeyword),
        ]
    );
    assert_eq!(
        conf.ignored[1].what,
        "include /etc/keepalived/conf.d/*.conf"
    );
    assert_eq!(conf.ignored[6].what, "virtual_server fwmark 1");
    let vs = &conf.virtual_servers[0];
    assert_eq!(vs.real_servers.len(), 1);
    // The empty TCP_CHECK is taken, with every default.
    let check = vs.real_servers[0].tcp_check.clone().expect("tcp check");
    assert_eq!(
        check,
        TcpCheckConf {
            connect_timeout: defaults::CONNECT_TIMEOUT,
            retry: defaults::RETRY,
            delay_before_retry: defaults::DELAY_BEFORE_RETRY,
            connect_port: 8080,
            connect_ip: ip("172.22.35.1"),
            warmup: defaults::DELAY_LOOP,
            delay_loop: defaults::DELAY_LOOP,
            alpha: false,
        }
    );
}

#[test]
fn defaults_apply_when_keys_are_absent() {
    let conf = parse_ok(
        "virtual_server 10.0.0.1 80 {\n persistence_timeout\n real_server 10.0.0.2 {\n }\n}\n",
    );
    let vs = &conf.virtual_servers[0];
    assert_eq!(vs.delay_loop, 60.0);
    assert_eq!(vs.lb_algo, LbAlgo::Wlc);
    assert_eq!(vs.lb_kind, LbKind::Nat);
    assert_eq!(vs.protocol, Protocol::Tcp);
    assert_eq!(vs.persistence_timeout, Some(360));
    assert_eq!((vs.quorum, vs.hysteresis), (1, 0));
    let rs = &vs.real_servers[0];
    assert_eq!((rs.port, rs.weight, rs.tcp_check.is_none()), (80, 1, true));
}

#[test]
fn values_inherit_from_virtual_to_real_server_to_checker() {
    let text = "\
virtual_server 10.0.0.1 80 {
    real_server 10.0.0.2 81 {
        delay_before_retry 7
        TCP_CHECK { connect_ip 10.0.0.9 }
        alpha off
    }
    real_server 10.0.0.3 {
        inhibit_on_failure no
        TCP_CHECK { retry 4 warmup 0 }
    }
    delay_loop 2.5
    connect_timeout 1.5
    retry 2
    alpha
    inhibit_on_failure
    persistence_granularity 255.255.255.0
    sorry_server 10.0.0.50
    quorum 2
    hysteresis 1
    omega
}
";
    // `retry 4 warmup 0` on one line is one statement with extra words.
    let err = parse_str(text).expect_err("extra words");
    assert_eq!(err.line, 9, "{err}");
    let conf = parse_ok(&text.replace("retry 4 warmup 0", "retry 4\nwarmup 0"));
    let vs = &conf.virtual_servers[0];
    assert_eq!(vs.delay_loop, 2.5);
    assert!(vs.alpha && vs.omega && vs.inhibit_on_failure);
    assert_eq!(vs.persistence_timeout, Some(360));
    assert_eq!(
        vs.persistence_granularity,
        Some(Ipv4Addr::new(255, 255, 255, 0))
    );
    assert_eq!(vs.sorry_server, Some(SocketAddr::new(ip("10.0.0.50"), 80)));
    assert_eq!((vs.quorum, vs.hysteresis), (2, 1));
    let a = &vs.real_servers[0];
    let ca = a.tcp_check.clone().expect("check");
    assert!(a.inhibit_on_failure);
    assert_eq!(
        (
            ca.connect_timeout,
            ca.retry,
            ca.delay_before_retry,
            ca.connect_port
        ),
        (1.5, 2, 7.0, 81)
    );
    assert_eq!(
        (ca.connect_ip, ca.warmup, ca.delay_loop, ca.alpha),
        (ip("10.0.0.9"), 2.5, 2.5, false)
    );
    let b = &vs.real_servers[1];
    let cb = b.tcp_check.clone().expect("check");
    assert!(!b.inhibit_on_failure);
    assert_eq!(
        (b.port, cb.retry, cb.warmup, cb.delay_before_retry, cb.alpha),
        (80, 4, 0.0, 1.0, true)
    );
}

#[test]
fn malformed_inputs_give_errors_with_lines() {
    let cases: &[(&str, usize, &str)] = &[
        ("}\n", 1, "unbalanced '}'"),
        ("virtual_server 10.0.0.1 80 {\n}\n}\n", 3, "unbalanced '}'"),
        (
            "\n\nvirtual_server\n",
            3,
            "expected an address after virtual_server",
        ),
        ("virtual_server foo 80 {\n}\n", 1, "found 'foo'"),
        ("virtual_server 10.0.0.1 http {\n}\n", 1, "expected a port"),
        ("virtual_server 10.0.0.1 80\n", 1, "expected '{'"),
        (
            "virtual_server 10.0.0.1 80 {\n\n\n\n lb_kind XYZ\n}\n",
            5,
            "unknown lb_kind 'XYZ'",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n lvs_sched roundrobin\n}\n",
            2,
            "unknown lvs_sched 'roundrobin'",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n protocol ICMP\n}\n",
            2,
            "unknown protocol 'ICMP'",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n\n\n\n\n\n\n weight heavy\n }\n}\n",
            9,
            "value for weight must be an integer",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n weight -1\n }\n}\n",
            3,
            "weight",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n weight 4294967295\n }\n}\n",
            3,
            "at most",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n delay_loop soon\n}\n",
            2,
            "number of seconds",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n delay_loop NaN\n}\n",
            2,
            "number of seconds",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n delay_loop\n}\n",
            2,
            "expected a value after delay_loop",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n persistence_timeout 0\n}\n",
            2,
            "positive",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n persistence_granularity 255.0.255.0\n}\n",
            2,
            "netmask",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n persistance_timeout 60\n}\n",
            2,
            "unknown keyword 'persistance_timeout'",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n alpha maybe\n}\n",
            2,
            "on|off",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n TCP_CHECK {\n retry 0\n }\n }\n}\n",
            4,
            "positive",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n TCP_CHECK {\n connect_port 0\n }\n }\n}\n",
            4,
            "port",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n TCP_CHECK {\n url { path / }\n }\n }\n}\n",
            4,
            "'url'",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n weight 1 {\n }\n }\n}\n",
            3,
            "takes no",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n real_server {\n }\n}\n",
            2,
            "expected an address after real_server",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n",
            2,
            "unclosed '{'",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n lb_algo rr rr\n}\n",
            2,
            "unexpected 'rr'",
        ),
        ("{\n}\n", 1, "without a keyword"),
        ("global_defs {\n router_id \"x\n}\n", 2, "unterminated"),
    ];
    for (text, line, needle) in cases {
        match parse_str(text) {
            Ok(c) => panic!("{text:?} parsed: {c:?}"),
            Err(e) => {
                assert_eq!(e.line, *line, "{text:?}: {e}");
                assert!(e.message.contains(needle), "{text:?}: {e} lacks {needle:?}");
                assert!(e.to_string().ends_with(&format!("at line {line}")), "{e}");
            }
        }
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = "a {\n".repeat(10_000);
    let err = parse_str(&deep).expect_err("too deep");
    assert!(err.message.contains("nested deeper"), "{err}");
    let ok = format!("{}{}", "a {\n".repeat(31), "}\n".repeat(31));
    parse_ok(&ok);
}

#[test]
fn render_round_trips_the_reference() {
    let vs = reference_model();
    let text = render_conf(&vs, &RenderOptions::default());
    let back = parse_ok(&text);
    assert_eq!(
        without_lines(back.clone()),
        without_lines(parse_ok(REFERENCE))
    );
    assert!(
        text.contains("global_defs {\n    router_id ipvslab\n}\n"),
        "{text}"
    );
    assert!(
        text.contains("lb_algo rr") && text.contains("lb_kind DR"),
        "{text}"
    );
    assert!(
        text.contains("retry 3") && !text.contains("nb_get_retry"),
        "{text}"
    );
    assert_eq!(
        back.ignored.len(),
        1,
        "only global_defs: {:?}",
        back.ignored
    );
}

/// A model exercising every rendered field, with non-default values.
fn busy_model() -> VirtualServerConf {
    let mut vs = reference_model();
    vs.vip = ip("2001:db8::1");
    vs.delay_loop = 0.25;
    vs.lb_algo = LbAlgo::Mh;
    vs.lb_kind = LbKind::Tun;
    vs.protocol = Protocol::Udp;
    vs.persistence_timeout = Some(360);
    vs.persistence_granularity = Some(Ipv4Addr::new(255, 255, 0, 0));
    vs.quorum = 3;
    vs.hysteresis = 2;
    // Direct routing and tunnelling cannot change the port, so keepalived
    // resets a sorry server's port to the virtual one: keep them equal.
    vs.sorry_server = Some(SocketAddr::new(ip("2001:db8::99"), 8080));
    vs.inhibit_on_failure = true;
    vs.alpha = true;
    vs.omega = true;
    for (i, rs) in vs.real_servers.iter_mut().enumerate() {
        rs.address = ip(&format!("2001:db8::{}", i + 2));
        rs.weight = 4 * i as u32;
        rs.inhibit_on_failure = false;
        if let Some(c) = &mut rs.tcp_check {
            c.connect_ip = ip("2001:db8::3");
            c.connect_timeout = 0.5;
            c.warmup = 0.0;
            c.delay_loop = 1.75;
            c.alpha = false;
        }
    }
    vs.real_servers[1].tcp_check = None;
    vs
}

#[test]
fn render_round_trips_every_field() {
    let vs = busy_model();
    let text = render_conf(&vs, &RenderOptions::default());
    let mut back = without_lines(parse_ok(&text));
    let mut want = vs.clone();
    want.line = 0;
    for rs in &mut want.real_servers {
        rs.line = 0;
    }
    assert_eq!(back.pop(), Some(want), "{text}");
}

#[test]
fn render_quotes_odd_router_ids() {
    let opts = RenderOptions {
        router_id: "lab run #1 \"x\"".to_string(),
        lvs_flush_on_stop: true,
    };
    let text = render_conf(&reference_model(), &opts);
    assert!(
        text.contains("router_id \"lab run #1 \\\"x\\\"\""),
        "{text}"
    );
    assert!(text.contains("lvs_flush_on_stop"), "{text}");
    parse_ok(&text);
}

/// keepalived itself must accept what we render. CI installs it; a machine
/// without it fails here rather than skipping silently.
#[test]
fn keepalived_config_test_accepts_rendered_output() {
    let bin = std::path::Path::new("/usr/sbin/keepalived");
    assert!(
        bin.exists(),
        "{} not found: run scripts/install-deps.sh (it installs keepalived)",
        bin.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = RenderOptions {
        router_id: "ipvslab".to_string(),
        lvs_flush_on_stop: true,
    };
    let mut busy = busy_model();
    // keepalived wants a sorry server of the virtual server's family, and
    // persistence_granularity as a prefix length for IPv6; keep this one IPv4.
    busy.vip = ip("10.0.0.1");
    busy.sorry_server = Some(SocketAddr::new(ip("10.0.0.99"), 8080));
    for (i, rs) in busy.real_servers.iter_mut().enumerate() {
        rs.address = ip(&format!("10.0.0.{}", i + 2));
        if let Some(c) = &mut rs.tcp_check {
            c.connect_ip = ip("10.0.0.3");
        }
    }
    for (name, servers) in [("reference", vec![reference_model()]), ("busy", vec![busy])] {
        let path = dir.path().join(format!("{name}.conf"));
        std::fs::write(&path, render_confs(&servers, &opts)).expect("write conf");
        let out = std::process::Command::new(bin)
            .arg("--config-test")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("run keepalived --config-test");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "keepalived --config-test rejected {name}: {}\n{stderr}\n{}",
            out.status,
            render_confs(&servers, &opts)
        );
    }
}

#[test]
fn parse_file_reads_and_names_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("keepalived.conf");
    std::fs::write(&good, REFERENCE).expect("write");
    let conf = parse_file(&good).expect("parse file");
    assert_eq!(conf.virtual_servers.len(), 1);
    let bad = dir.path().join("bad.conf");
    std::fs::write(&bad, "}\n").expect("write");
    let err = parse_file(&bad).expect_err("bad");
    assert!(
        err.to_string()
            .contains("bad.conf: unbalanced '}' at line 1"),
        "{err}"
    );
    assert!(matches!(
        parse_file(&dir.path().join("missing.conf")),
        Err(KeepalivedError::Read { .. })
    ));
}

/// Deterministic xorshift64 so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next() % n as u64) as usize
    }
}

/// Parses arbitrary bytes; the point is that it returns at all. Whatever
/// parses must also survive render → parse unchanged.
/// Returns whether it parsed to at least one virtual server.
fn must_not_panic(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Ok(conf) = parse_str(&text) else {
        return false;
    };
    if conf.virtual_servers.is_empty() {
        return false;
    }
    let rendered = render_confs(&conf.virtual_servers, &RenderOptions::default());
    let back = parse_str(&rendered)
        .unwrap_or_else(|e| panic!("rendered text does not parse: {e}\n{rendered}"));
    assert_eq!(without_lines(back), without_lines(conf), "{rendered}");
    true
}

#[test]
fn truncations_of_the_reference_never_panic() {
    let bytes = REFERENCE.as_bytes();
    for end in 0..=bytes.len() {
        let _ = must_not_panic(&bytes[..end]);
        let _ = must_not_panic(&bytes[end..]);
    }
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    // Bytes that matter to the grammar, drawn more often than chance would.
    const INTERESTING: &[u8] = b"{}#!\"'\\\n\t 0123456789.:abcdefgXYZ_-";
    let seeds = [REFERENCE.as_bytes().to_vec(), busy_text().into_bytes()];
    let mut parsed = 0;
    for i in 0..4000 {
        let mut input = if i % 4 == 0 {
            let len = rng.below(200);
            (0..len)
                .map(|_| {
                    if rng.next() & 1 == 0 {
                        INTERESTING[rng.below(INTERESTING.len())]
                    } else {
                        (rng.next() & 0xff) as u8
                    }
                })
                .collect()
        } else {
            seeds[i % seeds.len()].clone()
        };
        for _ in 0..=rng.below(8) {
            let pos = rng.below(input.len() + 1);
            match rng.next() % 4 {
                0 if pos < input.len() => {
                    input.remove(pos);
                }
                1 => input.insert(pos, INTERESTING[rng.below(INTERESTING.len())]),
                2 if pos < input.len() => input[pos] = (rng.next() & 0xff) as u8,
                _ => {
                    // Duplicate a slice, which nests or repeats blocks.
                    let end = (pos + rng.below(64)).min(input.len());
                    let chunk = input[pos..end].to_vec();
                    let at = rng.below(input.len() + 1);
                    input.splice(at..at, chunk);
                }
            }
        }
        if must_not_panic(&input) {
            parsed += 1;
        }
    }
    // Enough mutants stay valid for the render round trip to be exercised.
    assert!(parsed > 50, "only {parsed} mutants parsed");
}

fn busy_text() -> String {
    render_conf(&busy_model(), &RenderOptions::default())
}
