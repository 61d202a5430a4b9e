//! Parse and validation tables for scenario files.

use std::path::Path;

use super::{Scenario, ScenarioError};

const REFERENCE: &str = include_str!("../../../scenarios/rr-persistence.toml");

fn load(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::from_str(Path::new("t.toml"), text)
}

/// The problems `text` is refused with; panics when it loads or does not parse.
fn problems_of(text: &str) -> Vec<super::Invalid> {
    match load(text) {
        Err(ScenarioError::Invalid { problems, .. }) => problems,
        other => panic!("expected invalid values, got {other:?}"),
    }
}

/// Asserts that `text` is refused with a problem at `key`.
fn assert_problem_at(text: &str, key: &str) {
    let problems = problems_of(text);
    assert!(
        problems.iter().any(|p| p.key == key),
        "expected a problem at {key}, got {problems:?}"
    );
}

#[test]
fn reference_scenario_is_the_keepalived_setup() {
    let s = load(REFERENCE).expect("reference scenario loads");
    let vs = &s.file.virtual_server;
    assert_eq!(vs.vip.to_string(), "192.168.122.1");
    assert_eq!(vs.port, 8080);
    assert_eq!(vs.lb_algo, "rr");
    assert_eq!(vs.lb_kind, "DR");
    assert_eq!(vs.persistence_timeout, Some(60));
    let addrs: Vec<String> = vs
        .real_servers
        .iter()
        .map(|r| r.address.to_string())
        .collect();
    assert_eq!(addrs, ["172.22.35.1", "172.22.35.2"]);
    assert!(vs.real_servers.iter().all(|r| r.weight == 1));
    let check = vs.real_servers[0].tcp_check.as_ref().expect("TCP_CHECK");
    assert_eq!(
        (check.connect_timeout, check.retry, check.delay_before_retry),
        (3.0, 3, 3.0)
    );
    assert_eq!(check.connect_port, Some(8080));
    assert_eq!(s.server_names(), ["rs1", "rs2"]);
}

/// Replaces the first line starting with `from` by `to`.
fn edit(from: &str, to: &str) -> String {
    let mut done = false;
    REFERENCE
        .lines()
        .map(|l| {
            if !done && l.starts_with(from) {
                done = true;
                to.to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn malformed_files_report_line_column_and_key() {
    let cases = [
        // (edit from, edit to, expected line, expected text in the message)
        ("lb_algo", "lb_algoo = \"rr\"", "lb_algoo"),
        ("port = 8080", "port = \"eighty\"", "eighty"),
        ("vip", "vip = \"192.168.122\"", "vip"),
        (
            "persistence_timeout",
            "persistence_timeout = = 60",
            "persistence_timeout",
        ),
    ];
    for (from, to, needle) in cases {
        let text = edit(from, to);
        let expected_line = text.lines().position(|l| l == to).unwrap() + 1;
        match load(&text) {
            Err(ScenarioError::Parse {
                line,
                column,
                message,
                key,
                ..
            }) => {
                assert_eq!(line, expected_line, "line for {to:?}: {message}");
                assert!(column >= 1);
                let shown = format!("{message} {key:?}");
                assert!(
                    shown.contains(needle),
                    "{to:?}: '{shown}' should mention {needle}"
                );
            }
            other => panic!("{to:?}: expected a parse error, got {other:?}"),
        }
    }
}

#[test]
fn invalid_values_are_named_by_key() {
    let cases = [
        (
            "lb_algo",
            "lb_algo = \"roundrobin\"",
            "virtual_server.lb_algo",
        ),
        ("lb_kind", "lb_kind = \"NAT\"", "virtual_server.lb_kind"),
        ("protocol", "protocol = \"UDP\"", "virtual_server.protocol"),
        ("vip", "vip = \"172.22.35.254\"", "virtual_server.vip"),
        ("vip", "vip = \"172.22.36.1\"", "virtual_server.vip"),
        ("client_ips", "client_ips = 0", "network.client_ips"),
        ("client_ips", "client_ips = 5000", "network.client_ips"),
        ("duration", "duration = \"0s\"", "load.duration"),
        ("concurrency", "concurrency = 0", "load.concurrency"),
        (
            "concurrency",
            "connect_rate = 0\nconcurrency = 8",
            "load.connect_rate",
        ),
        (
            "concurrency",
            "connect_rate = 200000\nconcurrency = 8",
            "load.connect_rate",
        ),
        (
            "weight = 1",
            "weight = -1",
            "virtual_server.real_server[0].weight",
        ),
        (
            "port = 8080",
            "port = 9090",
            "virtual_server.real_server[0].port",
        ),
        (
            "address = \"172.22.35.2\"",
            "address = \"172.22.35.1\"",
            "virtual_server.real_server[1].address",
        ),
        (
            "address = \"172.22.35.1\"",
            "address = \"10.0.0.1\"",
            "virtual_server.real_server[0].address",
        ),
        (
            "max_error_rate",
            "max_error_rate = 2.0",
            "expect.max_error_rate",
        ),
    ];
    for (from, to, key) in cases {
        assert_problem_at(&edit(from, to), key);
    }
}

#[test]
fn phases_must_name_known_servers_and_fit_in_the_run() {
    let base = format!("{REFERENCE}\n");
    let ok = format!(
        "{base}[[phase]]\nat = \"1s\"\naction = \"set_weight\"\nserver = \"rs2\"\nweight = 0\n"
    );
    assert!(load(&ok).is_ok(), "{:?}", load(&ok).err());
    let by_addr = format!(
        "{base}[[phase]]\nat = \"1s\"\naction = \"kill_server\"\nserver = \"172.22.35.1\"\n"
    );
    assert!(load(&by_addr).is_ok());
    let unknown = format!(
        "{base}[[phase]]\nat = \"1s\"\naction = \"set_weight\"\nserver = \"rs9\"\nweight = 0\n"
    );
    assert!(matches!(load(&unknown), Err(ScenarioError::Invalid { .. })));
    let late =
        format!("{base}[[phase]]\nat = \"1h\"\naction = \"stop_server\"\nserver = \"rs1\"\n");
    assert!(matches!(load(&late), Err(ScenarioError::Invalid { .. })));
    let bad_action =
        format!("{base}[[phase]]\nat = \"1s\"\naction = \"explode\"\nserver = \"rs1\"\n");
    assert!(matches!(
        load(&bad_action),
        Err(ScenarioError::Parse { .. })
    ));
}

#[test]
fn a_name_is_looked_up_in_the_scenario_folder() {
    let found = super::locate("rr-persistence").expect("found by name");
    assert!(found.ends_with("scenarios/rr-persistence.toml"));
    assert!(matches!(
        super::locate("no-such-scenario"),
        Err(ScenarioError::NotFound { .. })
    ));
}

/// The values the hardening review found to panic, wrap or run forever
/// (issue 10, findings 5, 7, 8 and 11): each is a clean problem at its key.
#[test]
fn out_of_range_values_are_refused_at_their_key() {
    let check = |timeout: &str| {
        format!(
            "TCP_CHECK = {{ connect_timeout = {timeout}, retry = 3, delay_before_retry = 3, connect_port = 8080 }}"
        )
    };
    let cases = [
        (
            "delay_loop",
            "delay_loop = inf".to_owned(),
            "virtual_server.delay_loop",
        ),
        (
            "delay_loop",
            "delay_loop = nan".to_owned(),
            "virtual_server.delay_loop",
        ),
        (
            "TCP_CHECK",
            check("1e300"),
            "virtual_server.real_server[0].TCP_CHECK.connect_timeout",
        ),
        (
            "TCP_CHECK",
            check("-1"),
            "virtual_server.real_server[0].TCP_CHECK.connect_timeout",
        ),
        (
            "persistence_timeout",
            "persistence_timeout = 4294967295".to_owned(),
            "virtual_server.persistence_timeout",
        ),
        (
            "persistence_timeout",
            "persistence_timeout = 0".to_owned(),
            "virtual_server.persistence_timeout",
        ),
        (
            "weight = 1",
            "weight = 65536".to_owned(),
            "virtual_server.real_server[0].weight",
        ),
        (
            "concurrency",
            "concurrency = 4000000000".to_owned(),
            "load.concurrency",
        ),
        (
            "duration",
            "duration = \"3s\"\npayload = 4000000000".to_owned(),
            "load.payload",
        ),
        (
            "duration",
            "duration = \"3s\"\nwarmup = \"18446744073709551615s\"".to_owned(),
            "load.warmup",
        ),
        (
            "duration",
            "duration = \"3s\"\nrounds = 3000\nidle = \"1h\"".to_owned(),
            "load.rounds",
        ),
        (
            "duration",
            "duration = \"3s\"\nkeep_channels = true".to_owned(),
            "load.keep_channels",
        ),
        (
            "duration",
            "duration = \"3s\"\nkeepalive = \"0s\"".to_owned(),
            "load.keepalive",
        ),
        (
            "vip",
            "vip = \"127.0.0.1\"".to_owned(),
            "virtual_server.vip",
        ),
        (
            "vip",
            "vip = \"224.0.0.1\"".to_owned(),
            "virtual_server.vip",
        ),
        ("vip", "vip = \"0.0.0.0\"".to_owned(), "virtual_server.vip"),
        (
            "client_ips",
            "client_ips = 1\nsegment = \"0.0.0.0/0\"".to_owned(),
            "network.segment",
        ),
    ];
    for (from, to, key) in cases {
        assert_problem_at(&edit(from, &to), key);
    }
}

#[test]
fn all_weights_zero_is_refused_with_the_hint() {
    let text = REFERENCE.replace("weight = 1", "weight = 0");
    let problems = problems_of(&text);
    let p = problems
        .iter()
        .find(|p| p.key == "virtual_server.real_server")
        .expect("a problem about the real servers");
    assert!(p.message.contains("weight 0"), "{p}");
}

#[test]
fn terminal_escapes_in_the_description_are_refused() {
    let text = REFERENCE.replacen(
        "description = \"",
        "description = \"\\u001b[2J\\u001b[31mred ",
        1,
    );
    let problems = problems_of(&text);
    let p = problems
        .iter()
        .find(|p| p.key == "description")
        .expect("description");
    assert!(p.message.contains("U+001B"), "{p}");
}

#[test]
fn invalid_values_carry_their_line_and_column() {
    let to = "weight = 65536";
    let text = edit("weight = 1", to);
    let line = text.lines().position(|l| l == to).unwrap() + 1;
    let err = load(&text).unwrap_err();
    let ScenarioError::Invalid { problems, .. } = &err else {
        panic!("expected invalid, got {err:?}");
    };
    let p = problems
        .iter()
        .find(|p| p.key == "virtual_server.real_server[0].weight")
        .expect("the weight");
    assert_eq!(p.at, Some((line, 10)), "{p}");
    assert!(
        err.to_string().starts_with(&format!(
            "t.toml:{line}:10: virtual_server.real_server[0].weight:"
        )),
        "{err}"
    );
}

#[test]
fn time_travel_needs_an_open_loop() {
    let travel = format!("{REFERENCE}\n[time]\nmode = \"travel\"\n");
    assert_problem_at(&travel, "time.mode");
    let problems = problems_of(&travel);
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("mode = \"open\"")),
        "{problems:?}"
    );
    let paced = travel.replace(
        "concurrency = 8\n",
        "mode = \"open\"\nrps = 100\nconcurrency = 8\n",
    );
    let s = load(&paced).expect("a paced load may travel");
    assert_eq!(s.file.time.mode, super::spec::TimeMode::Travel);
    assert_eq!(
        load(REFERENCE).unwrap().file.time.mode,
        super::spec::TimeMode::Real,
        "real time is the default"
    );
}

#[test]
fn an_unknown_time_mode_is_refused_with_its_line() {
    let text = format!("{REFERENCE}\n[time]\nmode = \"warp\"\n");
    let err = load(&text).unwrap_err().to_string();
    assert!(err.contains("warp"), "{err}");
    assert!(err.contains("real") && err.contains("travel"), "{err}");
}

const MH_REMAP: &str = include_str!("../../../scenarios/scheduler-mh-remap.toml");

#[test]
fn scheduler_expectations_need_their_phase_and_rounds() {
    assert!(load(MH_REMAP).is_ok());
    // A remap fraction out of range, at its line and column.
    let text = MH_REMAP.replace("remap_fraction_max = 0.40", "remap_fraction_max = 1.5");
    let line = text
        .lines()
        .position(|l| l.starts_with("remap_fraction_max"))
        .unwrap()
        + 1;
    let p = problems_of(&text);
    let bad = p
        .iter()
        .find(|p| p.key == "expect.remap_fraction_max")
        .unwrap_or_else(|| panic!("{p:?}"));
    assert_eq!(bad.at.map(|a| a.0), Some(line), "{bad}");
    // min above max.
    let text = MH_REMAP.replace(
        "remap_fraction_max = 0.40",
        "remap_fraction_max = 0.40\nremap_fraction_min = 0.5",
    );
    assert_problem_at(&text, "expect.remap_fraction_min");
    // One round: nothing to compare before and after the phase.
    let text = MH_REMAP.replace("rounds = 2", "rounds = 1");
    assert_problem_at(&text, "load.rounds");
    // No phase that changes the destinations.
    let text = MH_REMAP.replace(
        "action = \"remove_destination\"",
        "action = \"kill_server\"",
    );
    assert_problem_at(&text, "expect.remap_fraction_max");
    // weight_zero_receives_new needs a set_weight 0.
    let text = MH_REMAP.replace(
        "remap_fraction_max = 0.40",
        "weight_zero_receives_new = false",
    );
    assert_problem_at(&text, "expect.weight_zero_receives_new");
    // mapping_granularity must be a netmask, and the unit of mapping_stable.
    let text = MH_REMAP.replace(
        "remap_fraction_max = 0.40",
        "remap_fraction_max = 0.40\nmapping_granularity = \"255.0.255.0\"",
    );
    let p = problems_of(&text);
    assert_eq!(
        p.iter()
            .filter(|p| p.key == "expect.mapping_granularity")
            .count(),
        2,
        "{p:?}"
    );
    // A real server's own GOAWAY age has a floor.
    let text = MH_REMAP.replacen(
        "port = 8080\n\n[[",
        "port = 8080\nmax_connection_age = \"1ms\"\n\n[[",
        1,
    );
    assert_problem_at(&text, "virtual_server.real_server[0].max_connection_age");
    // A swapped scheduler still validates: its twin must run and fail.
    assert!(load(&MH_REMAP.replace("lb_algo = \"mh\"", "lb_algo = \"rr\"")).is_ok());
}

/// `[load]` with the generic-mode keys set to `lines`.
fn with_generic_load(lines: &str) -> String {
    edit("[load]", &format!("[load]\n{lines}"))
}

#[test]
fn a_generic_call_is_checked_against_its_proto() {
    // Relative to the current directory (a crate's tests run in the crate).
    let proto = "proto = \"../bench/tests/python/hello.proto\"";
    let ok = with_generic_load(&format!(
        "call = \"helloworld.Greeter/SayHello\"\n{proto}\ndata = '{{\"name\": \"lab\"}}'\nmetadata = {{ \"x-user\" = \"lab\" }}"
    ));
    let s = load(&ok).expect("a valid generic load");
    assert_eq!(
        s.file.load.call.as_deref(),
        Some("helloworld.Greeter/SayHello")
    );
    assert_eq!(
        s.file.load.metadata.get("x-user").map(String::as_str),
        Some("lab")
    );
    for (lines, key, needle) in [
        (
            format!("call = \"helloworld.Greeter/Nope\"\n{proto}"),
            "load.call",
            "helloworld.Greeter/SayHello",
        ),
        (
            format!("call = \"helloworld.Greeter/SayHello\"\n{proto}\ndata = '{{\"nam\": 1}}'"),
            "load.data",
            "no field \"nam\"",
        ),
        (
            "call = \"helloworld.Greeter/SayHello\"\nproto = \"../nonexistent/x.proto\""
                .to_string(),
            "load.proto",
            "x.proto",
        ),
        (
            "call = \"SayHello\"".to_string(),
            "load.call",
            "pkg.Service/Method",
        ),
        (
            "call = \"a.B/C\"\ndata = '{'".to_string(),
            "load.data",
            "not JSON",
        ),
        (
            "data = '{}'".to_string(),
            "load.data",
            "only used with call",
        ),
        (
            "metadata = { \"X Y\" = \"1\" }".to_string(),
            "load.metadata",
            "metadata key",
        ),
    ] {
        let text = with_generic_load(&lines);
        let problems = problems_of(&text);
        let p = problems
            .iter()
            .find(|p| p.key == key)
            .unwrap_or_else(|| panic!("no problem at {key} for {lines}: {problems:?}"));
        assert!(p.message.contains(needle), "{lines}: {p}");
        assert!(p.at.is_some(), "{lines}: {p} has no line");
    }
}

#[test]
fn the_client_port_range_and_stall_bounds_are_checked_at_their_line() {
    let text = REFERENCE.replace(
        "[network]\n",
        "[network]\nclient_port_range = [40031, 40000]\n",
    );
    let problems = problems_of(&text);
    let p = problems
        .iter()
        .find(|p| p.key == "network.client_port_range")
        .expect("the reversed range");
    let line = text
        .lines()
        .position(|l| l.starts_with("client_port_range"))
        .unwrap()
        + 1;
    assert_eq!(p.at, Some((line, 21)), "{p}");
    assert_problem_at(
        &REFERENCE.replace("[network]\n", "[network]\nclient_port_range = [80, 90]\n"),
        "network.client_port_range",
    );
    assert_problem_at(
        &REFERENCE.replace("[network]\n", "[network]\nclient_tw_reuse = 3\n"),
        "network.client_tw_reuse",
    );
    let ok = REFERENCE.replace(
        "[network]\n",
        "[network]\nclient_port_range = [40000, 40031]\nclient_tw_reuse = 1\n",
    );
    let s = load(&ok).expect("a small range loads");
    let plan = super::plan::plan(&s, crate::netns::RunId::from_parts(1, 1)).unwrap();
    let set: Vec<(&str, &str)> = plan
        .client_sysctls
        .iter()
        .map(|s| (s.name.as_str(), s.value.as_str()))
        .collect();
    assert_eq!(
        set,
        [
            ("net.ipv4.ip_local_port_range", "40000 40031"),
            ("net.ipv4.tcp_tw_reuse", "1")
        ]
    );
    assert_problem_at(
        &REFERENCE.replace("[expect]\n", "[expect]\nconnect_1s_share_max = 1.5\n"),
        "expect.connect_1s_share_max",
    );
    assert_problem_at(
        &REFERENCE.replace(
            "[expect]\n",
            "[expect]\nconnect_1s_share_max = 0.1\nconnect_1s_share_min = 0.2\n",
        ),
        "expect.connect_1s_share_min",
    );
    assert_problem_at(
        &format!("{REFERENCE}\n[ipvs]\nsysctls = {{ conntrack = 2 }}\n"),
        "ipvs.sysctls.conntrack",
    );
}
