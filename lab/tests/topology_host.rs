//! Host-kernel integration tests of `netns`, `topology` and `dr` (they need
//! root, but no IPVS). Every test uses its own run id, so they run in
//! parallel, and owns its namespaces through guards, so they are removed even
//! when an assertion fails.

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use lab::dr::{self, DrOptions};
use lab::netns::{self, CommandExt, NetNs, NetnsError, RunId};
use lab::topology::spec::{
    self, ClientSpec, DEFAULT_DIRECTOR, DEFAULT_VIP, FIRST_REAL_SERVER, sequential_addresses,
};
use lab::topology::{self, TopologyError, TopologySpec};

fn addr(spec: &TopologySpec, host: &str) -> Ipv4Addr {
    spec.host(host).unwrap().addresses[0]
}

#[test]
fn reference_network_connectivity() {
    if common::skip_unless_root("reference_network_connectivity") {
        return;
    }
    let links_before = root_links();
    let run = RunId::new();
    let spec = TopologySpec::reference(run);
    let rt = runtime();
    let topo = rt.block_on(topology::apply(&spec)).expect("apply");
    eprintln!("reference bring-up: {:?}", topo.timings());

    let client = topo.host("client1").unwrap();
    for name in ["director", "rs1", "rs2"] {
        let rtt = ping(client, addr(&spec, name), Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("ping {name}: {e}"));
        eprintln!("ping client1 -> {name}: {rtt:?}");
    }

    // TCP to each real server's own address; the server sees the client.
    for rs in ["rs1", "rs2"] {
        let (server, peers) = echo_server(topo.host(rs).unwrap(), addr(&spec, rs), 1);
        tcp_echo(client, None, server).expect("tcp echo");
        assert_eq!(
            peers.recv().unwrap().ip(),
            IpAddr::V4(addr(&spec, "client1"))
        );
    }

    // The client's route sends VIP traffic to the director, which holds the
    // VIP (without IPVS it answers itself).
    let (vip_server, peers) = echo_server(topo.host("director").unwrap(), DEFAULT_VIP, 1);
    tcp_echo(client, None, vip_server).expect("tcp echo to the VIP on the director");
    assert_eq!(
        peers.recv().unwrap().ip(),
        IpAddr::V4(addr(&spec, "client1"))
    );

    let t = topo.teardown().expect("teardown");
    eprintln!("reference teardown: {t:?}");
    assert_clean(&run, &links_before);
}

#[test]
fn dr_sysctls_silence_real_servers_for_the_vip() {
    if common::skip_unless_root("dr_sysctls_silence_real_servers_for_the_vip") {
        return;
    }
    let links_before = root_links();
    let run = RunId::new();
    let spec = TopologySpec::reference(run);
    let topo = runtime().block_on(topology::apply(&spec)).expect("apply");
    let client = topo.host("client1").unwrap();
    let director_mac = mac_of(topo.host("director").unwrap(), "eth0");
    let window = Duration::from_millis(300);
    let client_addr = addr(&spec, "client1");

    let inherited =
        dr::read_sysctl(topo.host("rs1").unwrap(), "net.ipv4.conf.all.arp_ignore").unwrap();
    let before = arp_responders(client, client_addr, DEFAULT_VIP, window).unwrap();
    eprintln!(
        "VIP ARP responders before dr::configure: {} (inherited arp_ignore={inherited})",
        before.len()
    );
    assert!(before.contains(&director_mac));
    if inherited == "0" {
        // Weak host model: the real servers answer for the VIP on their lo.
        assert_eq!(before.len(), 3, "director and both real servers answer");
    }

    let settings = dr::configure(&topo, &DrOptions::default()).expect("dr::configure");
    dr::check_topology(&topo, &settings).expect("sysctls read back");
    assert_eq!(
        settings.keys().collect::<Vec<_>>(),
        ["director", "rs1", "rs2"]
    );
    let after = arp_responders(client, client_addr, DEFAULT_VIP, window).unwrap();
    assert_eq!(
        after,
        vec![director_mac],
        "only the director may answer ARP for the VIP"
    );

    // A real server still answers ARP for its own address.
    let rs1_mac = mac_of(topo.host("rs1").unwrap(), "eth0");
    let own = arp_responders(client, client_addr, addr(&spec, "rs1"), window).unwrap();
    assert_eq!(own, vec![rs1_mac]);

    // A mismatch is reported with the namespace and the sysctl.
    let rs1 = topo.host("rs1").unwrap();
    let wrong = [dr::Sysctl::new("net.ipv4.conf.all.arp_ignore", "8")];
    assert!(matches!(
        dr::check(rs1, &wrong),
        Err(dr::DrError::Mismatch { .. })
    ));

    // This host kernel has no IPVS: a clear error, not a silent no-op.
    let director = topo.host("director").unwrap();
    if !dr::ipvs_loaded(director).unwrap() {
        let e = dr::set_ipvs_sysctl(director, "expire_nodest_conn", "1").unwrap_err();
        assert!(matches!(e, dr::DrError::IpvsNotLoaded { .. }), "{e:?}");
    }

    topo.teardown().expect("teardown");
    assert_clean(&run, &links_before);
}

#[test]
fn thousand_client_addresses() {
    if common::skip_unless_root("thousand_client_addresses") {
        return;
    }
    let links_before = root_links();
    let run = RunId::new();
    let n = 1000;
    let spec = TopologySpec::dr_lab(
        run,
        DEFAULT_VIP,
        &sequential_addresses(FIRST_REAL_SERVER, 2),
        &[ClientSpec {
            name: "client1".into(),
            addresses: spec::client_addresses(n),
        }],
        DEFAULT_DIRECTOR,
    )
    .unwrap();
    let start = Instant::now();
    let topo = runtime().block_on(topology::apply(&spec)).expect("apply");
    eprintln!(
        "1,000-address bring-up: {:?} (wall {:?})",
        topo.timings(),
        start.elapsed()
    );
    let client = topo.host("client1").unwrap();
    assert_eq!(address_count(client, "eth0"), n);

    let sources: Vec<Ipv4Addr> = spec
        .host("client1")
        .unwrap()
        .addresses
        .iter()
        .copied()
        .step_by(50)
        .collect();
    let (server, peers) = echo_server(topo.host("rs1").unwrap(), addr(&spec, "rs1"), sources.len());
    for &src in &sources {
        tcp_echo(client, Some(src), server).unwrap_or_else(|e| panic!("from {src}: {e}"));
        assert_eq!(
            peers.recv().unwrap().ip(),
            IpAddr::V4(src),
            "source address not used"
        );
    }
    eprintln!("{} sampled source addresses connected", sources.len());

    let t = topo.teardown().expect("teardown");
    eprintln!("1,000-address teardown: {t:?}");
    assert_clean(&run, &links_before);
}

#[test]
fn panic_inside_run_does_not_leak() {
    if common::skip_unless_root("panic_inside_run_does_not_leak") {
        return;
    }
    let links_before = root_links();
    let run = RunId::new();
    let ns = NetNs::create(&netns::ns_name(&run, "panic")).unwrap();
    let mine = thread_netns_inode();
    let inside = ns.run(thread_netns_inode).unwrap();
    assert_ne!(inside, mine, "run must execute inside the namespace");

    let err = ns
        .run(|| -> u32 { panic!("boom in namespace") })
        .unwrap_err();
    match &err {
        NetnsError::Panicked { name, message } => {
            assert_eq!(name, ns.name());
            assert!(message.contains("boom"), "{message}");
        }
        e => panic!("unexpected {e:?}"),
    }
    assert_eq!(
        thread_netns_inode(),
        mine,
        "calling thread left its namespace"
    );
    assert_eq!(
        ns.run(thread_netns_inode).unwrap(),
        inside,
        "namespace still usable"
    );
    ns.remove().unwrap();
    assert_clean(&run, &links_before);
}

#[test]
fn netns_guards_own_or_borrow() {
    if common::skip_unless_root("netns_guards_own_or_borrow") {
        return;
    }
    let run = RunId::new();
    let _cleanup = RunCleanup(vec![run]);
    let name = netns::ns_name(&run, "guard");
    let ns = NetNs::create(&name).unwrap();
    assert!(matches!(
        NetNs::create(&name),
        Err(NetnsError::AlreadyExists { .. })
    ));
    // A borrowed handle leaves the namespace on drop ...
    drop(NetNs::open(&name).unwrap());
    assert!(ns.path().exists());
    let listed = netns::list_lab_namespaces().unwrap();
    assert!(
        listed
            .iter()
            .any(|l| l.name == name && l.run == run && l.host == "guard")
    );
    // ... the owning guard removes it.
    drop(ns);
    assert!(!std::path::Path::new(netns::NETNS_DIR).join(&name).exists());
    assert!(matches!(NetNs::open(&name), Err(NetnsError::Open { .. })));
    // adopt() takes ownership of an existing one.
    let kept = NetNs::create(&name).unwrap().keep();
    drop(NetNs::adopt(&kept).unwrap());
    assert!(ip_netns_list_of(&run).is_empty());
}

#[test]
fn commands_run_inside_the_namespace() {
    if common::skip_unless_root("commands_run_inside_the_namespace") {
        return;
    }
    let links_before = root_links();
    let run = RunId::new();
    let spec = TopologySpec::reference(run);
    let rt = runtime();
    let topo = rt.block_on(topology::apply(&spec)).expect("apply");
    let rs1 = topo.host("rs1").unwrap();

    let out = netns::command_in(rs1, {
        let mut c = Command::new("ip");
        c.args(["-4", "-o", "addr"]);
        c
    })
    .unwrap()
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("eth0") && text.contains("172.22.35.1/16"),
        "{text}"
    );
    assert!(
        text.contains("lo") && text.contains("192.168.122.1/32"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 3, "{text}"); // 127.0.0.1, VIP, RIP

    let out = rt
        .block_on(async {
            tokio::process::Command::new("ip")
                .args(["-o", "route"])
                .netns(topo.host("client1").unwrap())
                .unwrap()
                .output()
                .await
        })
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("192.168.122.1 via 172.22.35.254 dev eth0"),
        "{text}"
    );

    topo.teardown().unwrap();
    assert_clean(&run, &links_before);
}

#[test]
fn partial_failure_rolls_back() {
    if common::skip_unless_root("partial_failure_rolls_back") {
        return;
    }
    let links_before = root_links();
    let run = RunId::new();
    let spec = TopologySpec::reference(run);
    // Someone else's namespace sits where rs2's should go.
    let squatter = NetNs::create(&spec.ns_name("rs2")).unwrap();
    let err = runtime().block_on(topology::apply(&spec)).unwrap_err();
    assert!(
        matches!(err, TopologyError::Netns(NetnsError::AlreadyExists { ref name }) if name == squatter.name()),
        "{err:?}"
    );
    // Everything apply created is gone; the squatter is untouched.
    assert_eq!(ip_netns_list_of(&run), vec![squatter.name().to_owned()]);
    squatter.remove().unwrap();

    // An invalid spec creates nothing at all.
    let mut bad = TopologySpec::reference(run);
    bad.hosts[1].name = "bridge".into();
    let err = runtime().block_on(topology::apply(&bad)).unwrap_err();
    assert!(matches!(err, TopologyError::Spec(_)), "{err:?}");
    assert_clean(&run, &links_before);
}

#[test]
fn gc_removes_only_dead_unkept_runs() {
    if common::skip_unless_root("gc_removes_only_dead_unkept_runs") {
        return;
    }
    // A pid above pid_max can never be alive.
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mine = RunId::new();
    let dead = RunId::from_parts(pid_max + 1, mine.n());
    let kept = RunId::from_parts(pid_max + 2, mine.n());
    let _cleanup = RunCleanup(vec![mine, dead, kept]);
    let live = NetNs::create(&netns::ns_name(&mine, "gc")).unwrap();
    let dead_ns = NetNs::create(&netns::ns_name(&dead, "gc")).unwrap().keep();
    let kept_ns = NetNs::create(&netns::ns_name(&kept, "gc")).unwrap();
    netns::mark_kept(&kept).unwrap();
    let kept_name = kept_ns.keep();

    let report = netns::gc().unwrap();
    // (A concurrent `lab gc` may have removed it first: check the effect.)
    assert!(
        !std::path::Path::new(netns::NETNS_DIR)
            .join(&dead_ns)
            .exists(),
        "{report:?}"
    );
    assert!(!report.removed.contains(&kept_name));
    assert!(!report.removed.iter().any(|n| n == live.name()));
    assert!(
        report.kept.contains(&kept) && report.live.contains(&mine),
        "{report:?}"
    );

    let removed = netns::remove_run(&kept).unwrap();
    assert_eq!(removed.removed, vec![kept_name]);
    assert!(!netns::is_kept(&kept));
    live.remove().unwrap();
    for run in [mine, dead, kept] {
        assert!(ip_netns_list_of(&run).is_empty());
    }
}

#[test]
fn kept_network_can_be_adopted_and_torn_down() {
    if common::skip_unless_root("kept_network_can_be_adopted_and_torn_down") {
        return;
    }
    let links_before = root_links();
    let run = RunId::new();
    let _cleanup = RunCleanup(vec![run]);
    let spec = TopologySpec::reference(run);
    let topo = runtime().block_on(topology::apply(&spec)).expect("apply");
    let kept = topo.keep();
    assert_eq!(ip_netns_list_of(&run).len(), 5, "bridge + 4 hosts stay");
    let topo = topology::Topology::adopt(kept).expect("adopt");
    let rs1 = topo.host("rs1").unwrap();
    let client = topo.host("client1").unwrap();
    ping(client, addr(&spec, "rs1"), Duration::from_secs(2)).expect("still connected");
    assert!(rs1.is_owned());
    topo.teardown().expect("teardown");
    assert_clean(&run, &links_before);
}
