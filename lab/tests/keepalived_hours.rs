//! `keepalived-hours` (real keepalived) and `keepalived-hours-lab-checker`
//! (the lab's checker) must agree: the two scenario files differ only in
//! who checks, and their committed baselines show the same flaps, the same
//! IPVS transitions, detection times inside keepalived's worst case and
//! comparable failed RPCs per flap. Pure: it reads the committed files.

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

use std::path::{Path, PathBuf};

use lab::report::model::{Failover, Report};

const REAL: &str = "keepalived-hours";
const OURS: &str = "keepalived-hours-lab-checker";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The scenario as TOML without the keys that say who checks.
fn scenario(name: &str) -> toml::Table {
    let path = workspace().join(format!("scenarios/{name}.toml"));
    let mut t: toml::Table = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .parse()
        .unwrap();
    t.remove("director");
    t.remove("description");
    t
}

fn failover(name: &str) -> Failover {
    let path = workspace().join(format!("reports/baselines/{name}.json"));
    let report: Report = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap();
    report
        .failover
        .unwrap_or_else(|| panic!("{name}: the baseline has no failover section"))
}

#[test]
fn the_two_files_differ_only_in_who_checks() {
    assert_eq!(scenario(REAL), scenario(OURS));
}

#[test]
fn keepalived_and_the_lab_checker_agree_flap_by_flap() {
    let (real, ours) = (failover(REAL), failover(OURS));
    let file = scenario(REAL);
    let faults = file["phase"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["action"].as_str() == Some("stop_server"))
        .count();
    assert!(faults > 1, "the scenario flaps more than once");
    // keepalived's worst case when connects are refused: delay_loop +
    // retry × delay_before_retry, plus the 100 ms watcher.
    let vs = &file["virtual_server"];
    let check = &vs["real_server"].as_array().unwrap()[0]["TCP_CHECK"];
    let num = |v: &toml::Value| v.as_float().or(v.as_integer().map(|i| i as f64)).unwrap();
    let worst =
        num(&vs["delay_loop"]) + num(&check["retry"]) * num(&check["delay_before_retry"]) + 0.2;
    let rps = num(&file["load"]["rps"]);
    for (name, f) in [(REAL, &real), (OURS, &ours)] {
        assert_eq!(f.flaps.len(), faults, "{name}: {:?}", f.flaps);
        // One removal and one re-add per flap.
        assert_eq!(f.ipvs_transitions, 2 * faults as u64, "{name}");
        for p in &f.flaps {
            let d = p
                .detection_s
                .unwrap_or_else(|| panic!("{name}: undetected {p:?}"));
            assert!(
                d <= worst,
                "{name}: detection {d:.2} s over {worst:.1} s: {p:?}"
            );
            assert!(p.readded_s.is_some(), "{name}: not re-added: {p:?}");
            // Until removal IPVS sends new connections to the dead server,
            // so about half the RPCs fail for the detection time, never more.
            assert!(
                (p.failed_rpcs as f64) <= rps * d,
                "{name}: {} failed RPCs in {d:.2} s at {rps} RPC/s: {p:?}",
                p.failed_rpcs
            );
        }
    }
    let total = |f: &Failover| f.flaps.iter().map(|p| p.failed_rpcs).sum::<u64>() as f64;
    let (a, b) = (total(&real), total(&ours));
    assert!(
        (a - b).abs() <= 0.5 * a.max(b),
        "failed RPCs over all flaps: keepalived {a}, lab checker {b}"
    );
    let mean = |f: &Failover| {
        f.flaps.iter().filter_map(|p| p.detection_s).sum::<f64>() / f.flaps.len() as f64
    };
    // Both check every delay_loop from their own start, so a flap's
    // detection differs by up to one delay_loop; the means much less.
    assert!(
        (mean(&real) - mean(&ours)).abs() <= num(&vs["delay_loop"]),
        "mean detection: keepalived {:.2} s, lab checker {:.2} s",
        mean(&real),
        mean(&ours)
    );
}
