//! Host-kernel integration tests of netns + topology + dr (no IPVS needed).
//! They need root; every test uses its own run id and cleans up on failure.

mod common;

use std::time::Duration;

use common::*;
use lab::netns::RunId;
use lab::topology::{self, TopologySpec};

#[test]
fn reference_network_connectivity() {
    let links_before = root_links();
    let run = RunId::new();
    let spec = TopologySpec::reference(run);
    let rt = runtime();
    let topo = rt.block_on(topology::apply(&spec)).expect("apply");
    eprintln!("reference bring-up: {:?}", topo.timings());
    let client = topo.host("client1").unwrap();
    for name in ["director", "rs1", "rs2"] {
        let addr = spec.host(name).unwrap().addresses[0];
        let rtt = ping(client, addr, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("ping {name} {addr}: {e}"));
        eprintln!("ping {name}: {rtt:?}");
    }
    let rs1 = topo.host("rs1").unwrap();
    let (server, peers) = echo_server(rs1, spec.host("rs1").unwrap().addresses[0]);
    tcp_echo(client, None, server).expect("tcp echo");
    assert_eq!(
        peers.recv().unwrap().ip(),
        std::net::IpAddr::V4(spec.host("client1").unwrap().addresses[0])
    );
    let t = topo.teardown().expect("teardown");
    eprintln!("reference teardown: {t:?}");
    assert_clean(&run, &links_before);
}
