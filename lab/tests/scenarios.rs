//! The scenario suite as a regression gate, through the real `lab` binary:
//! every scenario in `scenarios/` must pass its `[expect]` block on a real
//! IPVS kernel (User-Mode Linux here), each report must not regress against
//! its committed baseline in `reports/baselines/` (a chi-square homogeneity
//! test or an equivalence margin, and an error budget; a missing baseline
//! fails with the command that creates it), and a wrong expectation,
//! a malformed file and an unknown scheduler must fail the way they should.

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

mod common;

use common::lab_namespaces;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const LAB: &str = env!("CARGO_BIN_EXE_lab");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn lab(args: &[&str]) -> Output {
    lab_with(args, &[])
}

/// `lab args` from the workspace with extra environment, its output echoed.
fn lab_with(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let out = lab_silent(args, envs);
    eprintln!("{}", transcript(args, &out));
    out
}

/// `lab args` from the workspace with extra environment, not echoed.
fn lab_silent(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(LAB);
    cmd.args(args).current_dir(workspace());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run lab")
}

/// The command, its stdout, stderr and exit status, as one text.
fn transcript(args: &[&str], out: &Output) -> String {
    format!(
        "$ lab {}\n--- stdout\n{}--- stderr\n{}--- exit {:?}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        out.status.code()
    )
}

/// The lines of a `lab scenario --all` output that say what failed: each
/// scenario's header followed by its FAIL (and FAILED) and CANNOT JUDGE
/// lines, and the closing summaries. The whole output can run to thousands of lines; a CI
/// log that keeps only its head must still show the cause.
fn failed_lines(stdout: &str) -> Vec<String> {
    let mut header = None;
    let mut lines = Vec::new();
    for line in stdout.lines() {
        if line.starts_with("== ") {
            header = Some(line);
        } else if line.trim_start().starts_with("FAIL") || line.contains("CANNOT JUDGE") {
            if let Some(h) = header.take() {
                lines.push(h.to_string());
            }
            lines.push(line.to_string());
        } else if line.contains("scenarios passed") || line.contains("scenarios failed") {
            lines.push(line.to_string());
        }
    }
    lines
}

/// The newest report.json under `root/<scenario>/`.
fn newest_report(root: &Path, scenario: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(scenario))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("report.json").is_file())
        .collect();
    dirs.sort();
    dirs.pop().map(|d| d.join("report.json"))
}

#[test]
fn every_scenario_passes_and_none_regresses_against_its_baseline() {
    let scenarios: Vec<String> = std::fs::read_dir(workspace().join("scenarios"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let reports = tempfile::tempdir().expect("tempdir");
    let root = reports.path().to_str().unwrap();
    let all = ["scenario", "--all", "--quiet", "--reports", root];
    let out = lab_silent(&all, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut missing = Vec::new();
    let mut regressed = Vec::new();
    let mut regressions = Vec::new();
    for name in &scenarios {
        let Some(report) = newest_report(reports.path(), name) else {
            missing.push(format!("{name}: no report.json written"));
            continue;
        };
        for file in [
            "report.md",
            "distribution.svg",
            "clients.svg",
            "latency.svg",
            "timeline.svg",
        ] {
            if !report.with_file_name(file).is_file() {
                missing.push(format!("{name}: {file} missing"));
            }
        }
        let baseline = workspace()
            .join("reports/baselines")
            .join(format!("{name}.json"));
        if !baseline.is_file() {
            missing.push(format!(
                "{name}: no baseline; create it from a release run in UML with\n  \
                 target/release/lab scenario scenarios/{name}.toml --reports /tmp/new && \
                 cp \"$(ls -d /tmp/new/{name}/*/ | tail -1)report.json\" reports/baselines/{name}.json"
            ));
            continue;
        }
        // The settings come from the report itself (its [expect] block, or
        // the library defaults): the same as `lab compare` by hand.
        let compare = [
            "compare",
            baseline.to_str().unwrap(),
            report.to_str().unwrap(),
        ];
        let cmp = lab_silent(&compare, &[]);
        if cmp.status.code() != Some(0) {
            regressed.push(name.clone());
            regressions.push(transcript(&compare, &cmp));
        }
    }
    // What failed comes first and the whole transcript after it: the suite
    // prints thousands of lines, and a CI log that keeps only its head must
    // still show the cause.
    eprintln!(
        "lab scenario --all: exit {:?}\nwhat failed:\n{}\nmissing: {missing:?}\n\
         regressed against their baselines: {regressed:?}\n{}\n\n{}",
        out.status.code(),
        failed_lines(&stdout).join("\n"),
        regressions.join("\n"),
        transcript(&all, &out)
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "lab scenario --all failed (its failures are at the head of the output)"
    );
    assert!(
        stdout.contains(&format!("all {} scenarios passed", scenarios.len())),
        "{stdout}"
    );
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    assert!(
        regressed.is_empty(),
        "regressed against their baselines (comparisons at the head of the output): {regressed:?}"
    );
    eprintln!(
        "{} scenarios ran, each compared against its baseline",
        scenarios.len()
    );
    assert_eq!(lab_namespaces(), Vec::<String>::new());
}

#[test]
fn a_wrong_expectation_fails_the_run() {
    // single-channel pins every RPC to one server; expecting an even spread
    // must fail with exit 1 and say FAIL.
    let text = std::fs::read_to_string(workspace().join("scenarios/single-channel.toml"))
        .unwrap()
        .replace("distribution = \"single\"", "distribution = \"even\"");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("single-channel-expects-even.toml");
    std::fs::write(&path, text).unwrap();
    let reports = dir.path().join("reports");
    let out = lab(&[
        "scenario",
        path.to_str().unwrap(),
        "--quiet",
        "--duration",
        "1s",
        "--reports",
        reports.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL  distribution = even"), "{stdout}");
    assert_eq!(lab_namespaces(), Vec::<String>::new());
}

#[test]
fn a_malformed_scenario_is_rejected_before_any_network() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.toml");
    let text = std::fs::read_to_string(workspace().join("scenarios/rr-persistence.toml"))
        .unwrap()
        .replace("lb_algo = \"rr\"", "lb_algoo = \"rr\"");
    std::fs::write(&path, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("lb_algoo"))
        .unwrap()
        + 1;
    let out = lab(&["scenario", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("typo.toml:{line}:")), "{stderr}");
    assert!(stderr.contains("lb_algoo"), "{stderr}");
    // Rejected before booting anything: no guest output, no namespaces.
    assert!(out.stdout.is_empty());
    assert_eq!(lab_namespaces(), Vec::<String>::new());
}

/// byo-greeter with its shared `[server] command` replaced.
fn byo_with_server_command(dir: &Path, name: &str, command: &str) -> PathBuf {
    let text = std::fs::read_to_string(workspace().join("scenarios/byo-greeter.toml")).unwrap();
    let shared = text
        .lines()
        .skip_while(|l| *l != "[server]")
        .find(|l| l.starts_with("command = "))
        .unwrap()
        .to_string();
    let text = text
        .replace(&shared, &format!("command = {command}"))
        .replace("ready_timeout = \"20s\"", "ready_timeout = \"2s\"");
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_server_command_that_is_not_found_is_rejected_before_any_network() {
    let dir = tempfile::tempdir().unwrap();
    let path = byo_with_server_command(dir.path(), "nf.toml", r#"["no-such-ipvslab-server"]"#);
    let out = lab(&["scenario", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.command[0]"), "{stderr}");
    assert!(
        stderr.contains("no-such-ipvslab-server not found"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(lab_namespaces(), Vec::<String>::new());
}

#[test]
fn a_server_command_that_never_listens_names_itself_and_leaves_nothing() {
    if common::skip_unless_ipvs_runner("a_server_command_that_never_listens") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = byo_with_server_command(
        dir.path(),
        "never.toml",
        r#"["sh", "-c", "echo no listener for {port} >&2; exec sleep 300"]"#,
    );
    let reports = dir.path().join("r");
    let out = lab(&[
        "scenario",
        path.to_str().unwrap(),
        "--reports",
        reports.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(69));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("real server rs1"), "{stderr}");
    assert!(stderr.contains("never got ready"), "{stderr}");
    assert!(stderr.contains("| no listener for 8080"), "{stderr}");
    assert_eq!(lab_namespaces(), Vec::<String>::new());
}

#[test]
fn an_unknown_scheduler_names_the_choices() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad-sched.toml");
    let text = std::fs::read_to_string(workspace().join("scenarios/rr-persistence.toml"))
        .unwrap()
        .replace("lb_algo = \"rr\"", "lb_algo = \"roundrobin\"");
    std::fs::write(&path, text).unwrap();
    let out = lab(&["exec", path.to_str().unwrap(), "--", "true"]);
    assert_eq!(out.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("virtual_server.lb_algo"), "{stderr}");
    assert!(stderr.contains("wrr"), "{stderr}");
}

#[test]
fn list_shows_every_scenario_with_its_description() {
    let out = lab(&["list"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in [
        "rr-persistence",
        "rr-persistence-many-clients",
        "rr",
        "wrr",
        "single-channel",
        "max-connection-age",
        "persistence-expiry",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from lab list:\n{stdout}"));
        assert!(
            line.len() > name.len() + 20,
            "{name} has no description: {line}"
        );
    }
}

#[test]
fn exec_runs_the_command_in_the_named_host() {
    let out = lab(&[
        "exec",
        "rr-persistence",
        "--host",
        "director",
        "--",
        "ipvsadm",
        "-Ln",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("TCP  192.168.122.1:8080 rr persistent 60"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("Route   1").count(), 2, "{stdout}");
    // The command's exit status comes back through the runner.
    let out = lab(&[
        "exec",
        "rr-persistence",
        "--host",
        "rs1",
        "--",
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
}

#[test]
fn up_ipvs_down_keep_a_network_between_commands() {
    // `lab up` needs a host kernel with IPVS; inside the UML guest the guest
    // kernel is that host, so the three verbs run there, in one boot.
    let script = format!(
        "set -e; L={LAB}; \
         out=$($L up rr-persistence); echo \"$out\"; \
         run=$(echo \"$out\" | sed -n 's/^lab \\([0-9]*-[0-9]*\\) is up.*/\\1/p'); \
         ip netns list | grep -c \"ipvslab-$run-\"; \
         $L ipvs --run \"$run\"; \
         $L ipvs --run \"$run\" --json | grep -c '\"scheduler\": \"rr\"'; \
         $L gc; \
         ip netns list | grep -c \"ipvslab-$run-\"; \
         $L down \"$run\"; \
         echo left=$(ip netns list | grep -c \"ipvslab-$run-\" || true)"
    );
    let out = lab(&["guest-run", "--", "sh", "-c", &script]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(stdout.contains("is up (rr-persistence)"), "{stdout}");
    // director, rs1, rs2, client1 and the bridge: 5 namespaces, kept by gc.
    assert_eq!(lines.iter().filter(|l| **l == "5").count(), 2, "{stdout}");
    assert!(
        stdout.contains("TCP  192.168.122.1:8080 rr persistent 60"),
        "{stdout}"
    );
    assert!(lines.contains(&"1"), "JSON has the scheduler: {stdout}");
    assert!(stdout.contains("removed lab"), "{stdout}");
    assert!(stdout.contains("left=0"), "{stdout}");
}

#[test]
fn without_privileges_the_lab_says_so_and_builds_nothing() {
    // Root without CAP_NET_ADMIN and CAP_SYS_ADMIN (dropped from the
    // bounding set, so exec cannot regain them).
    let out = Command::new("setpriv")
        .args([
            "--bounding-set=-net_admin,-sys_admin",
            "--inh-caps=-net_admin,-sys_admin",
            LAB,
        ])
        .args(["exec", "rr-persistence", "--", "true"])
        .current_dir(workspace())
        .output()
        .expect("setpriv (util-linux)");
    assert_eq!(out.status.code(), Some(77));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CAP_NET_ADMIN") && stderr.contains("run it as root"),
        "{stderr}"
    );
    assert_eq!(lab_namespaces(), Vec::<String>::new());
}

#[test]
fn without_ipvs_and_without_uml_the_error_names_the_fix() {
    if lab::runner::host_has_ipvs() {
        common::skipped("this host has IPVS, so the lab never needs UML here");
        return;
    }
    let out = Command::new(LAB)
        .args(["exec", "rr-persistence", "--", "true"])
        .env("IPVSLAB_UML_KERNEL", "/nonexistent/linux.uml")
        .current_dir(workspace())
        .output()
        .expect("run lab");
    assert_eq!(out.status.code(), Some(69));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("make deps"), "{stderr}");
    assert!(stderr.contains("/nonexistent/linux.uml"), "{stderr}");
}

/// A stand-in for Debian's UML 6.1 on an AMX host: it prints the line that
/// kernel prints and dies on SIGABRT, whatever it is asked.
fn dying_kernel(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("linux");
    std::fs::write(
        &path,
        "#!/bin/sh\n\
         echo 'userspace - ptrace set fp regs failed, errno = 14'\n\
         echo 'Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b'\n\
         kill -ABRT $$\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_kernel_that_dies_at_boot_is_diagnosed_by_check_and_by_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = dying_kernel(dir.path());
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let run = |args: &[&str]| {
        lab_with(
            args,
            &[
                ("IPVSLAB_UML_KERNEL", kernel.as_path()),
                ("TMPDIR", tmp.as_path()),
            ],
        )
    };

    // `lab check` boots the kernel rather than trusting that the file exists.
    let check = run(&["--runner", "uml", "check"]);
    assert_eq!(check.status.code(), Some(69));
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(text.contains("FAIL  UML boot probe"), "{text}");
    assert!(text.contains("XSAVE state (AMX)"), "{text}");

    // A run shows the console lines and the cause, exits 69, leaves nothing.
    let reports = dir.path().join("reports");
    let out = run(&[
        "--runner",
        "uml",
        "scenario",
        "rr",
        "--quiet",
        "--reports",
        reports.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(69));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("The kernel's last console lines:")
            && stderr.contains("ptrace set fp regs failed")
            && stderr.contains("make deps"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "run directory left behind: {left:?}");
    assert_eq!(
        std::fs::read_dir(&reports).map(|d| d.count()).unwrap_or(0),
        0
    );
    assert_eq!(lab_namespaces(), Vec::<String>::new());
}

#[test]
fn json_reports_land_where_asked_even_under_tmp_and_relative() {
    // Under the UML runner the guest's /tmp is private: a report written
    // there would vanish with the guest. Both a file directly under /tmp and
    // a path relative to a working directory of /tmp must reach the host.
    let direct = PathBuf::from(format!("/tmp/ipvslab-test-{}.json", std::process::id()));
    let relative_name = format!("ipvslab-test-rel-{}.json", std::process::id());
    let relative = Path::new("/tmp").join(&relative_name);
    let reports = tempfile::tempdir().unwrap();
    for (cwd, json) in [
        (workspace(), direct.to_str().unwrap().to_owned()),
        (PathBuf::from("/tmp"), relative_name.clone()),
    ] {
        let _ = std::fs::remove_file(cwd.join(&json));
        let out = Command::new(LAB)
            .args(["scenario", "rr-persistence", "--quiet", "--duration", "1s"])
            .args(["--json", &json])
            .arg("--reports")
            .arg(reports.path())
            .current_dir(&cwd)
            .output()
            .expect("run lab");
        eprintln!(
            "--- stdout\n{}--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "run from {}", cwd.display());
    }
    for path in [&direct, &relative] {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{} was not written: {e}", path.display()));
        let report: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(report["scenario"]["name"], "rr-persistence");
        std::fs::remove_file(path).unwrap();
    }
}

#[test]
fn an_output_that_cannot_be_written_fails_before_anything_is_built() {
    let out = lab(&["scenario", "rr", "--quiet", "--json", "/proc/nope.json"]);
    assert_eq!(out.status.code(), Some(73));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/proc/nope.json"), "{stderr}");
    let out = lab(&["scenario", "rr", "--quiet", "--reports", "/proc/nope"]);
    assert_eq!(out.status.code(), Some(73));
    assert_eq!(lab_namespaces(), Vec::<String>::new());
}

#[test]
fn a_users_keepalived_conf_runs_under_keepalived_in_the_lab() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("keepalived.conf");
    std::fs::write(
        &conf,
        "! an operator's file, VRRP included\n\
         vrrp_instance VI_1 {\n    state MASTER\n    interface eth0\n    virtual_router_id 51\n\
         \x20   virtual_ipaddress {\n        192.168.122.1\n    }\n}\n\
         virtual_server 192.168.122.1 8080 {\n    delay_loop 2\n    lb_algo wrr\n    lb_kind DR\n\
         \x20   protocol TCP\n\
         \x20   real_server 172.22.35.1 8080 {\n        weight 3\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n\
         \x20   real_server 172.22.35.2 8080 {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n}\n",
    )
    .unwrap();
    let reports = dir.path().join("reports");
    let out = lab(&[
        "scenario",
        "--keepalived-conf",
        conf.to_str().unwrap(),
        "--quiet",
        "--duration",
        "2s",
        "--reports",
        reports.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("keepalived.conf:2: ignored vrrp_instance VI_1"),
        "{stderr}"
    );
    let report = newest_report(&reports, "keepalived").expect("report.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let dests = &json["ipvs"]["services"][0]["destinations"];
    let weights: Vec<u64> = dests
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["weight"].as_u64().unwrap())
        .collect();
    let mut sorted = weights.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![1, 3],
        "keepalived configured the weights of the file: {dests}"
    );
    assert_eq!(json["ipvs"]["services"][0]["scheduler"], "wrr");
}

#[test]
fn a_malformed_keepalived_conf_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bad.conf");
    std::fs::write(
        &conf,
        "virtual_server 192.168.122.1 8080 {\n  lb_kind DR\n  real_server 172.22.35.1 8080 {\n    weight x\n  }\n}\n",
    )
    .unwrap();
    let out = lab(&["scenario", "--keepalived-conf", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 4"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing ran");
}

#[test]
fn bad_flags_are_a_usage_error() {
    let out = lab(&["scenario", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(64), "EX_USAGE, as the README says");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
    assert_eq!(lab(&["--help"]).status.code(), Some(0));
}

#[test]
fn a_report_that_is_not_json_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("report.json");
    std::fs::write(&bad, "this is not a report").unwrap();
    let bad = bad.to_str().unwrap();
    let out = lab(&["compare", bad, bad]);
    assert_eq!(out.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("report.json"), "{stderr}");
}

/// Issue 10, findings 7, 9, 11 and 12: bad input on the command line or in
/// the environment is refused before anything is built, with its cause.
#[test]
fn bad_flags_and_environments_are_refused_with_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], envs: &[(&str, &Path)]| {
        let out = lab_with(args, envs);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for duration in ["0s", "100h"] {
        let (code, err) = run(&["scenario", "rr", "--quiet", "--duration", duration], &[]);
        assert_eq!(code, Some(64), "--duration {duration}");
        assert!(err.contains("at most one hour"), "{err}");
    }
    // A TMPDIR with a space, or one that is a file, keeps its reason.
    let spaced = dir.path().join("a b");
    std::fs::create_dir(&spaced).unwrap();
    let (code, err) = run(
        &["--runner", "uml", "exec", "rr-persistence", "--", "true"],
        &[("TMPDIR", &spaced)],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("set TMPDIR to one without"), "{err}");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"").unwrap();
    let (code, err) = run(
        &["--runner", "uml", "exec", "rr-persistence", "--", "true"],
        &[("TMPDIR", &file)],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("Not a directory"), "{err}");
    // Unreadable inputs say why.
    let latin1 = dir.path().join("latin1.toml");
    std::fs::write(&latin1, b"description = \"caf\xe9\"\n").unwrap();
    let (code, err) = run(&["scenario", latin1.to_str().unwrap(), "--quiet"], &[]);
    assert_eq!(code, Some(65));
    assert!(err.contains("UTF-8"), "{err}");
    let (code, err) = run(
        &[
            "scenario",
            "--keepalived-conf",
            "/nonexistent/keepalived.conf",
        ],
        &[],
    );
    assert_eq!(code, Some(65));
    assert!(err.contains("No such file"), "{err}");
    // `--runner host` is honoured by `lab check`.
    if lab::runner::host_has_ipvs() {
        common::skipped("the --runner host check on a host without IPVS (this one has IPVS)");
    } else {
        let out = Command::new(LAB)
            .args(["--runner", "host", "check"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(69));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("FAIL  host IPVS"), "{text}");
    }
    assert_eq!(lab_namespaces(), Vec::<String>::new());
}

/// Issue 10, finding 3: runs of one scenario that start in the same second
/// each keep their own report folder.
#[test]
fn concurrent_runs_of_one_scenario_keep_every_report() {
    let reports = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(LAB)
                .args(["scenario", "rr-persistence", "--quiet", "--duration", "1s"])
                .arg("--reports")
                .arg(reports.path())
                .current_dir(workspace())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start lab")
        })
        .collect();
    let mut printed = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with("report: "))
            .expect("a report line")
            .to_owned();
        printed.push(line);
    }
    printed.sort();
    printed.dedup();
    assert_eq!(printed.len(), 3, "{printed:?}");
    let folders = std::fs::read_dir(reports.path().join("rr-persistence"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .map(|e| e.path().join("report.json").is_file())
                .unwrap_or(false)
        })
        .count();
    assert_eq!(folders, 3);
}

/// Issue 10, finding 2: the run directory is private and the job file, which
/// holds the environment, is readable by its owner only.
#[test]
fn the_run_directory_is_private() {
    if lab::runner::host_has_ipvs() {
        common::skipped("this host has IPVS, so no UML run directory is made");
        return;
    }
    let out = Command::new(LAB)
        .args(["exec", "rr-persistence", "--", "stat", "-c", "%a %n"])
        .args(["/run/ipvslab-host", "/run/ipvslab-host/job.json"])
        .env("IPVSLAB_TEST_SECRET", "not-for-the-guest")
        .env("SOME_TOKEN", "hunter2")
        .current_dir(workspace())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("700 /run/ipvslab-host\n"), "{stdout}");
    assert!(
        stdout.contains("600 /run/ipvslab-host/job.json"),
        "{stdout}"
    );
    let env = Command::new(LAB)
        .args(["exec", "rr-persistence", "--", "env"])
        .env("SOME_TOKEN", "hunter2")
        .current_dir(workspace())
        .output()
        .unwrap();
    let env = String::from_utf8_lossy(&env.stdout);
    assert!(env.contains("PATH="), "{env}");
    assert!(!env.contains("hunter2"), "{env}");
}

#[test]
fn the_failure_summary_names_each_failed_scenario_and_its_lines() {
    let stdout = "== rr (uml kernel 7.2.13 lab build, 8.7 s) ==\n\
                  Expectations\n  PASS  max_error_rate = 0  0 failed\n\
                  == wrr (uml kernel 7.2.13 lab build, 8.5 s) ==\n\
                  \x20 FAIL  distribution = weighted  unfair\n\
                  \x20 CANNOT JUDGE  ipvs_consistent = true  no counters\n\
                  FAILED: 1 of 2 expectations held\n\
                  1 of 2 scenarios failed: wrr\n";
    assert_eq!(
        failed_lines(stdout),
        [
            "== wrr (uml kernel 7.2.13 lab build, 8.5 s) ==",
            "  FAIL  distribution = weighted  unfair",
            "  CANNOT JUDGE  ipvs_consistent = true  no counters",
            "FAILED: 1 of 2 expectations held",
            "1 of 2 scenarios failed: wrr",
        ]
    );
}
