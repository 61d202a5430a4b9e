//! IPVS integration tests on a real IPVS kernel. On hosts without IPVS each
//! test boots the lab's User-Mode Linux guest and runs itself inside it (see
//! `uml/mod.rs`); its output says which kernel it ran on.
//!
//! They check the lab's claims with independent readers: the table read
//! back over netlink, `ipvsadm -Ln` in the director, which real server
//! answers each TCP connection, the connection table's persistence
//! templates, and the director's counters (DR: no outbound packets).

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

mod common;
mod uml;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lab::ipvs::ForwardMethod;
use lab::netns::{CommandExt, RunId};
use lab::network::LabNetwork;
use lab::scenario::{Scenario, plan};

const REFERENCE: &str = include_str!("../../scenarios/rr-persistence.toml");

fn scenario(persistent: bool) -> Scenario {
    let text = if persistent {
        REFERENCE.to_string()
    } else {
        REFERENCE.replace("persistence_timeout = 60\n", "")
    };
    Scenario::from_str(Path::new("rr-persistence.toml"), &text).expect("scenario")
}

fn up(persistent: bool) -> LabNetwork {
    let plan = plan::plan(&scenario(persistent), RunId::new()).expect("plan");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(LabNetwork::up(plan))
        .expect("bring-up")
}

fn ipvsadm(lab: &LabNetwork, args: &[&str]) -> String {
    let mut cmd = Command::new("ipvsadm");
    cmd.args(args);
    cmd.netns(lab.director()).unwrap();
    let out = cmd.output().expect("ipvsadm (apt-get install ipvsadm)");
    assert!(
        out.status.success(),
        "ipvsadm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A TCP responder per real server: accepts on 0.0.0.0:8080 inside the
/// server's namespace (the VIP is on its `lo`), answers with its name.
struct Responders {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Responders {
    fn start(lab: &LabNetwork) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for s in &lab.plan().servers {
            let listener = lab
                .ns(&s.name)
                .unwrap()
                .run(|| TcpListener::bind("0.0.0.0:8080"))
                .unwrap()
                .expect("bind 0.0.0.0:8080 in the real server");
            listener.set_nonblocking(true).unwrap();
            let name = s.name.clone();
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((mut conn, _)) => {
                            conn.set_nonblocking(false).unwrap();
                            let mut buf = [0u8; 64];
                            let _ = conn.read(&mut buf);
                            let local = conn.local_addr().unwrap();
                            let _ = conn.write_all(format!("{name} {local}").as_bytes());
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            }));
        }
        Self { stop, threads }
    }
}

impl Drop for Responders {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Opens `n` sequential TCP connections from the client to the VIP and
/// returns what each answered ("rs1 192.168.122.1:8080").
fn connect_n(lab: &LabNetwork, n: usize) -> Vec<String> {
    let vip = lab.plan().target;
    lab.ns(plan::CLIENT_HOST)
        .unwrap()
        .run(move || {
            (0..n)
                .map(|_| {
                    let mut s = TcpStream::connect_timeout(&vip, Duration::from_secs(3))
                        .expect("connect to the VIP");
                    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                    s.write_all(b"who").unwrap();
                    let mut reply = String::new();
                    s.read_to_string(&mut reply).unwrap();
                    reply
                })
                .collect()
        })
        .unwrap()
}

#[test]
fn reference_service_reads_back_and_ipvsadm_agrees() {
    if !uml::on_ipvs_kernel("reference_service_reads_back_and_ipvsadm_agrees") {
        return;
    }
    let lab = up(true);
    let table = lab.ipvs(|h| h.table()).unwrap();
    assert_eq!(table.services.len(), 1);
    let svc = &table.services[0];
    assert_eq!(
        svc.entry.service.address,
        IpAddr::V4(Ipv4Addr::new(192, 168, 122, 1))
    );
    assert_eq!(svc.entry.service.port, 8080);
    assert_eq!(svc.entry.service.scheduler, "rr");
    assert_eq!(
        svc.entry.service.persistence.as_ref().map(|p| p.timeout_s),
        Some(60)
    );
    let mut dests: Vec<(String, ForwardMethod, i32)> = svc
        .destinations
        .iter()
        .map(|d| {
            (
                d.destination.socket_addr().to_string(),
                d.destination.forward,
                d.destination.weight,
            )
        })
        .collect();
    dests.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        dests,
        vec![
            (
                "172.22.35.1:8080".to_string(),
                ForwardMethod::DirectRoute,
                1
            ),
            (
                "172.22.35.2:8080".to_string(),
                ForwardMethod::DirectRoute,
                1
            ),
        ]
    );

    // ipvsadm, reading the same kernel state independently.
    let text = ipvsadm(&lab, &["-Ln"]);
    eprintln!("ipvsadm -Ln in the director:\n{text}");
    assert!(
        text.contains("TCP  192.168.122.1:8080 rr persistent 60"),
        "{text}"
    );
    let routes: Vec<&str> = text.lines().filter(|l| l.contains("Route   1")).collect();
    assert_eq!(routes.len(), 2, "{text}");
    assert!(routes.iter().any(|l| l.contains("172.22.35.1:8080")));
    assert!(routes.iter().any(|l| l.contains("172.22.35.2:8080")));
    // The lab's own rendering is the same text, byte for byte.
    assert_eq!(lab::ipvs::format::list(&table), text);
    lab.teardown().unwrap();
}

#[test]
fn connections_alternate_between_servers_without_persistence() {
    if !uml::on_ipvs_kernel("connections_alternate_between_servers_without_persistence") {
        return;
    }
    let lab = up(false);
    let responders = Responders::start(&lab);
    let replies = connect_n(&lab, 6);
    drop(responders);
    eprintln!("connections without persistence: {replies:?}");
    let servers: Vec<&str> = replies
        .iter()
        .map(|r| r.split(' ').next().unwrap())
        .collect();
    assert_ne!(servers[0], servers[1], "rr must alternate: {servers:?}");
    for (i, s) in servers.iter().enumerate() {
        assert_eq!(*s, servers[i % 2], "rr must alternate: {servers:?}");
    }
    // In DR the real server accepted the connection on the VIP itself.
    assert!(
        replies.iter().all(|r| r.ends_with("192.168.122.1:8080")),
        "{replies:?}"
    );
    lab.teardown().unwrap();
}

#[test]
fn persistence_pins_the_client_ip_and_leaves_a_template() {
    if !uml::on_ipvs_kernel("persistence_pins_the_client_ip_and_leaves_a_template") {
        return;
    }
    let lab = up(true);
    let responders = Responders::start(&lab);
    let replies = connect_n(&lab, 6);
    drop(responders);
    eprintln!("connections with persistence 60: {replies:?}");
    let first = replies[0].split(' ').next().unwrap().to_string();
    assert!(
        replies.iter().all(|r| r.starts_with(&format!("{first} "))),
        "{replies:?}"
    );
    let server = lab.plan().servers.iter().find(|s| s.name == first).unwrap();

    let entries = lab
        .director()
        .run(lab::ipvs::read_conn_table)
        .unwrap()
        .unwrap();
    let templates: Vec<_> = entries.iter().filter(|e| e.is_template).collect();
    assert_eq!(templates.len(), 1, "{entries:?}");
    assert_eq!(
        templates[0].client,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(172, 22, 36, 1)), 0)
    );
    assert_eq!(templates[0].dest.ip(), IpAddr::V4(server.address));
    // ipvsadm -Lnc shows the same template, decoded.
    let lnc = ipvsadm(&lab, &["-Lnc"]);
    assert!(
        lnc.lines().any(|l| l.contains("172.22.36.1:0") && l.contains(&format!("{}:8080", server.address))),
        "{lnc}"
    );
    let table = lab.ipvs(|h| h.table()).unwrap();
    let persist: Vec<u32> = table.services[0]
        .destinations
        .iter()
        .filter(|d| d.destination.address == IpAddr::V4(server.address))
        .map(|d| d.persist_conns)
        .collect();
    assert_eq!(persist, vec![1], "PERSIST_CONNS of {first}");
    lab.teardown().unwrap();
}

#[test]
fn director_sees_no_outbound_packets_in_dr() {
    if !uml::on_ipvs_kernel("director_sees_no_outbound_packets_in_dr") {
        return;
    }
    let lab = up(false);
    let responders = Responders::start(&lab);
    let replies = connect_n(&lab, 8);
    drop(responders);
    assert_eq!(replies.len(), 8);
    // Counters are copied on the estimator's ~2 s tick: poll until they show
    // all 8 connections (bounded).
    // A timeout is judged by the per-destination assertions below.
    let mut table = None;
    let _ = common::wait_until(Duration::from_secs(10), "all 8 connections counted", || {
        let t = lab.ipvs(|h| h.table()).unwrap();
        let conns: u64 = t.services[0]
            .destinations
            .iter()
            .map(|d| d.stats.conns)
            .sum();
        table = Some(t);
        conns == 8
    });
    let table = table.expect("at least one read");
    let text = ipvsadm(&lab, &["-Ln", "--stats", "--exact"]);
    eprintln!("ipvsadm -Ln --stats --exact:\n{text}");
    for d in &table.services[0].destinations {
        assert_eq!(d.stats.conns, 4, "rr: 4 connections each");
        assert!(
            d.stats.inpkts >= 4 * 4,
            "SYN, ACK, data, FIN at least: {:?}",
            d.stats
        );
        assert_eq!(d.stats.outpkts, 0, "DR: replies bypass the director");
        assert_eq!(d.stats.outbytes, 0);
        // The independent reader shows the same counters.
        let line = text
            .lines()
            .find(|l| l.contains(&format!("{}:8080", d.destination.address)))
            .expect("destination in ipvsadm");
        let nums: Vec<u64> = line
            .split_whitespace()
            .skip(2)
            .map(|w| w.parse().unwrap())
            .collect();
        assert_eq!(
            nums,
            vec![
                d.stats.conns,
                d.stats.inpkts,
                d.stats.outpkts,
                d.stats.inbytes,
                d.stats.outbytes
            ]
        );
    }
    lab.teardown().unwrap();
}
