//! Mutated twins: a deliberately broken copy of every shipped scenario must
//! FAIL its own `[expect]` block (exit 1, not a parse error, not a crash).
//! A gate that passes a broken setup promises nothing; this test shows that
//! each scenario's expectations catch the one mutation they are about.
//!
//! Every twin boots the real kernel in User-Mode Linux, like
//! `lab/tests/scenarios.rs`. `IPVSLAB_TWINS=rr,wrr` runs only those twins
//! (to try one mutation quickly); unset runs all.

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

mod common;

use common::lab_namespaces;
use std::path::{Path, PathBuf};
use std::process::Command;

const LAB: &str = env!("CARGO_BIN_EXE_lab");

/// Exit status of a run whose expectations failed (`lab::exit::FAILED`).
const FAILED: i32 = 1;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One mutated twin: which scenario, what changes (each `(from, to)` must
/// occur in the file), and which expectation should catch it.
struct Twin {
    scenario: &'static str,
    edits: &'static [(&'static str, &'static str)],
    /// The mutation, in words.
    mutation: &'static str,
    /// The expectation (its name as the report prints it) that fails.
    caught_by: &'static str,
}

/// The table: one twin per shipped scenario. Kept in the order of
/// `scenarios/` so that a new scenario without a twin is easy to spot (the
/// test fails on it).
const TWINS: &[Twin] = &[
    Twin {
        scenario: "byo-greeter",
        edits: &[("persistence_timeout = 60\n", "")],
        mutation: "persistence removed: the client's connections alternate between the Python servers",
        caught_by: "distribution = single",
    },
    Twin {
        scenario: "drain-weight-zero-expire",
        edits: &[("weight = 0", "weight = 1")],
        mutation: "the drain sets weight 1, not 0 (the operator's typo)",
        caught_by: "drained_traffic = stops",
    },
    Twin {
        scenario: "drain-weight-zero",
        edits: &[("persistence_timeout = 60\n", "")],
        mutation: "persistence removed",
        caught_by: "sticky_per_client = true",
    },
    Twin {
        scenario: "failover-grpc-check",
        edits: &[(
            "GRPC_CHECK = { connect_timeout = 1, retry = 1, delay_before_retry = 1 }\n",
            "",
        )],
        mutation: "the killed server's health check removed (the first real server's)",
        caught_by: "fault_detected = true",
    },
    Twin {
        scenario: "failover-tcp-check",
        edits: &[(
            "TCP_CHECK = { connect_timeout = 3, retry = 3, delay_before_retry = 3, connect_port = 8080, warmup = 0 }\n",
            "",
        )],
        mutation: "the killed server's TCP_CHECK removed (the first real server's)",
        caught_by: "fault_detected = true",
    },
    Twin {
        scenario: "max-connection-age",
        edits: &[("max_connection_age = \"500ms\"\n", "")],
        mutation: "GOAWAY removed: one channel stays on one server",
        caught_by: "distribution = spread",
    },
    Twin {
        scenario: "mh-weight-zero",
        edits: &[("lb_algo = \"mh\"", "lb_algo = \"rr\"")],
        mutation: "scheduler swapped mh -> rr: rr has no hash to strand rs1's clients, so nobody is refused",
        caught_by: "dominant_error = Unavailable",
    },
    Twin {
        scenario: "one-second-stall-reuse0-ct0",
        edits: &[("client_tw_reuse = 1", "client_tw_reuse = 0")],
        mutation: "tcp_tw_reuse off in the client: the 32 ports stay in TIME_WAIT and connects fail with EADDRNOTAVAIL",
        caught_by: "max_error_rate = 0.03",
    },
    Twin {
        scenario: "one-second-stall-reuse0-ct1",
        edits: &[("client_tw_reuse = 1", "client_tw_reuse = 0")],
        mutation: "tcp_tw_reuse off in the client: the 32 ports stay in TIME_WAIT and connects fail with EADDRNOTAVAIL",
        caught_by: "max_error_rate = 0.03",
    },
    Twin {
        scenario: "one-second-stall-reuse1-ct0",
        edits: &[("client_tw_reuse = 1", "client_tw_reuse = 0")],
        mutation: "tcp_tw_reuse off in the client: the 32 ports stay in TIME_WAIT and connects fail with EADDRNOTAVAIL",
        caught_by: "max_error_rate = 0.03",
    },
    Twin {
        scenario: "one-second-stall-reuse1-ct1",
        edits: &[("client_tw_reuse = 1", "client_tw_reuse = 0")],
        mutation: "tcp_tw_reuse off in the client: the 32 ports stay in TIME_WAIT and connects fail with EADDRNOTAVAIL",
        caught_by: "max_error_rate = 0.03",
    },
    Twin {
        scenario: "one-second-stall-reuse2-ct0",
        edits: &[("client_tw_reuse = 1", "client_tw_reuse = 0")],
        mutation: "tcp_tw_reuse off in the client: the 32 ports stay in TIME_WAIT and connects fail with EADDRNOTAVAIL",
        caught_by: "max_error_rate = 0.03",
    },
    Twin {
        scenario: "one-second-stall-reuse2-ct1",
        edits: &[("client_tw_reuse = 1", "client_tw_reuse = 0")],
        mutation: "tcp_tw_reuse off in the client: the 32 ports stay in TIME_WAIT and connects fail with EADDRNOTAVAIL",
        caught_by: "max_error_rate = 0.03",
    },
    Twin {
        scenario: "idle-timeout-trap",
        edits: &[(
            "keep_channels = true\n",
            "keep_channels = true\nkeepalive = \"5m\"\n",
        )],
        mutation: "gRPC keepalive at 5 min: the PINGs keep the IPVS entries alive, so the first RPC after the gap succeeds",
        caught_by: "first_rpc_after_idle = fails",
    },
    Twin {
        scenario: "idle-timeout-trap-keepalive",
        edits: &[("keepalive = \"5m\"\n", "")],
        mutation: "keepalive removed: IPVS forgets the idle entries at 900 s and the first RPC after the gap is reset",
        caught_by: "first_rpc_after_idle = succeeds",
    },
    Twin {
        scenario: "keepalived-hours",
        edits: &[("delay_loop = 6\n", "delay_loop = 20\n")],
        mutation: "delay_loop 20: keepalived notices a stopped server later than the 16 s bound",
        caught_by: "max_detection_s = 16",
    },
    Twin {
        scenario: "keepalived-hours-lab-checker",
        edits: &[("delay_loop = 6\n", "delay_loop = 20\n")],
        mutation: "delay_loop 20: the lab's checker notices a stopped server later than the 16 s bound",
        caught_by: "max_detection_s = 16",
    },
    Twin {
        scenario: "scale-out-rebalance-age-none",
        edits: &[(
            "timeline_interval = \"100ms\"\n",
            "timeline_interval = \"100ms\"\nmax_connection_age = \"2s\"\n",
        )],
        mutation: "GOAWAY every 2 s: the channels reconnect and rr spreads them over the added servers within seconds",
        caught_by: "time_to_fairness_min_s = 10",
    },
    Twin {
        scenario: "scale-out-rebalance-age-10s",
        edits: &[(
            "max_connection_age = \"10s\"",
            "max_connection_age = \"2s\"",
        )],
        mutation: "connection age 2 s instead of 10 s: fair about 3 s after the add, before a 10 s age could be",
        caught_by: "time_to_fairness_min_s = 4",
    },
    Twin {
        scenario: "scale-out-rebalance-age-2s",
        edits: &[("max_connection_age = \"2s\"\n", "")],
        mutation: "connection age removed: the channels stay on rs1 and rs2, the added servers get nothing",
        caught_by: "time_to_fairness_max_s = 6",
    },
    Twin {
        scenario: "persistence-1800",
        edits: &[(
            "persistence_timeout = 1800\n",
            "persistence_timeout = 600\n",
        )],
        mutation: "persistence_timeout 600: templates expire about 20 minutes early",
        caught_by: "template_lifetime_s = [1799, 1842]",
    },
    Twin {
        scenario: "persistence-expiry",
        edits: &[("persistence_timeout = 5\n", "")],
        mutation: "persistence removed",
        caught_by: "templates_present = true",
    },
    Twin {
        scenario: "persistence-granularity-24",
        edits: &[("persistence_granularity = \"255.255.255.0\"\n", "")],
        mutation: "granularity removed: one template per client IP, rr spreads a /24's IPs",
        caught_by: "mapping_stable = true",
    },
    Twin {
        scenario: "remove-vs-inhibit-expire",
        edits: &[(
            "sysctls = { expire_nodest_conn = 1 }",
            "sysctls = { expire_nodest_conn = 0 }",
        )],
        mutation: "expire_nodest_conn back to 0: clients hang instead of failing fast",
        caught_by: "dominant_error = Unknown",
    },
    Twin {
        scenario: "remove-vs-inhibit-weight0",
        edits: &[(
            "action = \"set_weight\"\nserver = \"rs1\"\nweight = 0\n",
            "action = \"remove_destination\"\nserver = \"rs1\"\n",
        )],
        mutation: "deleted instead of weight 0 (inhibit_on_failure lost)",
        caught_by: "drained_traffic = continues",
    },
    Twin {
        scenario: "remove-vs-inhibit",
        edits: &[(
            "sysctls = { expire_nodest_conn = 0 }",
            "sysctls = { expire_nodest_conn = 1 }",
        )],
        mutation: "expire_nodest_conn set to 1: clients fail fast instead of hanging",
        caught_by: "dominant_error = DeadlineExceeded",
    },
    Twin {
        scenario: "rr-persistence-many-clients",
        edits: &[("persistence_timeout = 60\n", "")],
        mutation: "persistence removed",
        caught_by: "templates_present = true",
    },
    Twin {
        scenario: "rr-persistence",
        edits: &[("persistence_timeout = 60\n", "")],
        mutation: "persistence removed: 8 channels of one IP spread under rr",
        caught_by: "distribution = single",
    },
    Twin {
        scenario: "rr",
        // Not a scheduler swap: with 64 client IPs a hash scheduler spreads
        // them too, and its distribution is informational, never a failure.
        edits: &[(
            "address = \"172.22.35.1\"\nport = 8080\n",
            "address = \"172.22.35.1\"\nport = 8080\nweight = 0\n",
        )],
        mutation: "rs1 quiesced (weight 0): rr sends it no connection",
        caught_by: "distribution = even",
    },
    Twin {
        scenario: "scale-1000-clients",
        edits: &[("persistence_timeout = 60\n", "")],
        mutation: "persistence removed",
        caught_by: "templates_present = true",
    },
    Twin {
        scenario: "scheduler-lc-lifetimes",
        edits: &[("lb_algo = \"lc\"", "lb_algo = \"rr\"")],
        mutation: "scheduler swapped lc -> rr",
        caught_by: "least_connection_respected = true",
    },
    Twin {
        scenario: "scheduler-mh-remap",
        edits: &[("lb_algo = \"mh\"", "lb_algo = \"sh\"")],
        mutation: "scheduler swapped mh -> sh: sh refills its whole table",
        caught_by: "remap_fraction <= 0.4",
    },
    Twin {
        scenario: "scheduler-rr-lifetimes",
        edits: &[("lb_algo = \"rr\"", "lb_algo = \"lc\"")],
        mutation: "scheduler swapped rr -> lc",
        caught_by: "least_connection_respected = false",
    },
    Twin {
        scenario: "scheduler-sh-remap",
        edits: &[("lb_algo = \"sh\"", "lb_algo = \"mh\"")],
        mutation: "scheduler swapped sh -> mh: mh moves only the removed server's clients",
        caught_by: "remap_fraction >= 0.5",
    },
    Twin {
        scenario: "single-channel",
        edits: &[("channels_per_ip = 1", "channels_per_ip = 16")],
        mutation: "one channel became 16 (no scheduler or weight change can move one channel: the only mutation single-channel's claim is about)",
        caught_by: "distribution = single",
    },
    Twin {
        scenario: "wrr",
        edits: &[("lb_algo = \"wrr\"", "lb_algo = \"rr\"")],
        mutation: "scheduler swapped wrr -> rr: rr ignores the 3:1 weights (a changed weight would not be caught: `weighted` follows the file's own weights)",
        caught_by: "distribution = weighted",
    },
];

/// Every shipped scenario's name.
fn shipped() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace().join("scenarios"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The twin's text: each edit must apply, so a scenario that changed under
/// the table fails here with its name instead of testing nothing.
fn mutate(twin: &Twin) -> String {
    let path = workspace()
        .join("scenarios")
        .join(format!("{}.toml", twin.scenario));
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in twin.edits {
        let at = setting_at(&text, from).unwrap_or_else(|| {
            panic!(
                "{}: the twin's edit {from:?} matches no setting of the scenario; update TWINS",
                twin.scenario
            )
        });
        text.replace_range(at..at + from.len(), to);
    }
    text
}

/// Where `needle` first occurs outside a comment: scenario headers quote
/// their own settings (`expire_nodest_conn = 1`), and a twin that edited
/// the comment would test nothing.
fn setting_at(text: &str, needle: &str) -> Option<usize> {
    text.match_indices(needle).map(|(i, _)| i).find(|&i| {
        let line_start = text[..i].rfind('\n').map_or(0, |n| n + 1);
        !text[line_start..i].trim_start().starts_with('#')
    })
}

#[test]
fn a_twin_edits_settings_not_comments() {
    let text = "# the default is x = 1\nx = 1\n";
    assert_eq!(setting_at(text, "x = 1"), Some(23));
    assert_eq!(setting_at("# x = 1\n", "x = 1"), None);
}

#[test]
fn every_shipped_scenario_has_a_twin() {
    let twins: Vec<&str> = TWINS.iter().map(|t| t.scenario).collect();
    let missing: Vec<String> = shipped()
        .into_iter()
        .filter(|s| !twins.contains(&s.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "scenarios without a mutated twin in lab/tests/twins.rs: {missing:?}"
    );
    // Every edit applies to today's file and the twin is a valid scenario
    // (a twin rejected with exit 65 would test the parser, not the gate).
    let dir = tempfile::tempdir().expect("tempdir");
    for t in TWINS {
        let path = dir.path().join(format!("{}.toml", t.scenario));
        // A scenario's relative paths (a `[load] proto`) resolve against
        // the directory lab runs in, the workspace; this test runs in lab/.
        let text = mutate(t).replace(
            "proto = \"examples/",
            &format!("proto = \"{}/examples/", workspace().display()),
        );
        if let Err(e) = lab::scenario::Scenario::from_str(&path, &text) {
            panic!(
                "the twin of {} ({}) does not validate: {e}",
                t.scenario, t.mutation
            );
        }
    }
}

#[test]
fn every_mutated_twin_fails_its_expectations() {
    let only: Option<Vec<String>> = std::env::var("IPVSLAB_TWINS")
        .ok()
        .map(|v| v.split(',').map(str::to_owned).collect());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut escaped = Vec::new();
    for twin in TWINS {
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|n| n == twin.scenario))
        {
            continue;
        }
        let path = dir.path().join(format!("{}-twin.toml", twin.scenario));
        std::fs::write(&path, mutate(twin)).unwrap();
        let reports = dir.path().join("reports");
        let out = Command::new(LAB)
            .args(["scenario", path.to_str().unwrap(), "--quiet", "--reports"])
            .arg(&reports)
            .current_dir(workspace())
            .output()
            .expect("run lab");
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!(
            "twin {} ({}): exit {:?}\n{stdout}{}",
            twin.scenario,
            twin.mutation,
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        // The expectation is matched by its key: how a value is printed
        // may change, which expectation catches the twin may not.
        let key = twin.caught_by.split(' ').next().unwrap_or(twin.caught_by);
        let caught = out.status.code() == Some(FAILED)
            && stdout.lines().any(|l| {
                // The verdict column widens with its longest word
                // (`CANNOT JUDGE`), so any run of spaces may follow FAIL.
                l.trim_start()
                    .strip_prefix("FAIL")
                    .is_some_and(|rest| rest.starts_with(' ') && rest.trim_start().starts_with(key))
            });
        if !caught {
            escaped.push(format!(
                "{} ({}): exit {:?}, expected exit {FAILED} with `FAIL  {}`",
                twin.scenario,
                twin.mutation,
                out.status.code(),
                twin.caught_by
            ));
        }
    }
    assert!(
        escaped.is_empty(),
        "twins the gate did not catch:\n{}",
        escaped.join("\n")
    );
    assert_eq!(lab_namespaces(), Vec::<String>::new());
}
