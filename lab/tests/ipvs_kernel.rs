//! Tests against the real kernel IPVS, moved out of the `ipvs` module so
//! that they run through the lab's own runner like every other kernel test:
//! on the host when it has IPVS, else each test re-executes itself inside the
//! lab's User-Mode Linux guest (`uml::on_ipvs_kernel`) and the guest's exit
//! status is its verdict. Without root or without a kernel that can do IPVS
//! they print `SKIPPED: <why>`. Each works in a fresh network namespace of
//! its own, created with `unshare(CLONE_NEWNET)` on a dedicated thread.
//!
//! When `ipvsadm` is on the PATH, the listings of `lab::ipvs::format` are
//! compared with it byte for byte.

// An integration test links every dependency of its package; unused ones are
// caught in the library, not here.
#![allow(unused_crate_dependencies)]

mod common;
mod uml;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, unshare};

use lab::ipvs::consts::{self, IP_VS_SVC_F_ONEPACKET};
use lab::ipvs::{
    ConnEntry, Destination, ForwardMethod, IpvsError, IpvsHandle, Persistence, Protocol, Service,
    Timeouts,
};
use lab::ipvs::{conntable, format};

/// `uname -r`, to tell the kernel versions' behaviours apart.
fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Runs `f` on a new thread inside a new, empty network namespace.
fn in_new_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        f()
    })
    .join()
    .expect("kernel test thread panicked")
}

/// Runs a command; the child inherits the calling thread's namespace.
fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).expect("utf-8 output"))
}

fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    println!("KT timing {label}: {:?}", t.elapsed());
    r
}

fn reference() -> (Service, [Destination; 2]) {
    let svc = Service::tcp("192.168.122.1".parse().unwrap(), 8080, "rr")
        .with_persistence(Persistence::per_client(60));
    let d1 = Destination::dr("172.22.35.1:8080".parse().unwrap(), 1);
    let d2 = Destination::dr("172.22.35.2:8080".parse().unwrap(), 1);
    (svc, [d1, d2])
}

/// The whole configuration cycle of the reference service: add, read back,
/// errors, edit, timeouts, zero, delete, flush; plus the ipvsadm comparison.
#[test]
fn kernel_reference_service_cycle() {
    if !uml::on_ipvs_kernel("kernel_reference_service_cycle") {
        return;
    }
    in_new_netns(|| {
        let h = timed("open (connect + resolve family)", IpvsHandle::open).unwrap();
        let info = h.info().unwrap();
        println!(
            "KT info: version {} size {}",
            info.version_string(),
            info.conn_table_size
        );
        assert_eq!(info.version_string(), "1.2.1");
        assert!(h.services().unwrap().is_empty(), "fresh namespace");

        let (svc, [d1, d2]) = reference();
        timed("add_service", || h.add_service(&svc)).unwrap();
        // In a namespace without any local address, kernel 6.1 has no local
        // routing table yet: inet_addr_type() answers RTN_BROADCAST and
        // ip_vs_new_dest() refuses every IPv4 destination with EINVAL.
        // Kernel 7.2 (measured with the lab's own build) accepts it.
        let release = kernel_release();
        let major: u32 = release
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        match h.add_destination(&svc, &d1) {
            Err(e) => {
                println!("KT error destination in a namespace without addresses ({release}): {e}");
                assert!(matches!(e, IpvsError::Invalid { .. }), "{e:?}");
                assert!(major < 7, "kernel {release} refused it, 7.2 accepts it");
            }
            Ok(()) => {
                println!(
                    "KT kernel {release} accepts a destination in a namespace without addresses"
                );
                assert!(major >= 7, "kernel {release} accepted it, 6.1 refuses it");
                h.delete_destination(&svc, &d1).unwrap();
            }
        }
        if run("ip", &["link", "set", "lo", "up"]).is_none() {
            panic!("need the `ip` command to bring lo up");
        }
        timed("add_destination", || h.add_destination(&svc, &d1)).unwrap();
        h.add_destination(&svc, &d2).unwrap();

        // Read back over netlink.
        let services = timed("services dump (1 service)", || h.services()).unwrap();
        assert_eq!(services.len(), 1);
        assert_eq!(services[0].service, svc, "HASHED masked, persistence back");
        let one = h.service(&svc).unwrap().expect("get one service");
        assert_eq!(one.service, svc);
        let mut dests = timed("destinations dump (2 dests)", || h.destinations(&svc)).unwrap();
        dests.sort_by_key(|d| d.destination.socket_addr());
        assert_eq!(
            dests.iter().map(|d| d.destination).collect::<Vec<_>>(),
            vec![d1, d2]
        );
        assert!(
            dests
                .iter()
                .all(|d| d.active_conns == 0 && d.persist_conns == 0)
        );

        // Errors.
        let e = h.add_service(&svc).unwrap_err();
        println!("KT error duplicate service: {e}");
        assert!(matches!(e, IpvsError::AlreadyExists { .. }), "{e:?}");
        let e = h.add_destination(&svc, &d1).unwrap_err();
        println!("KT error duplicate destination: {e}");
        assert!(matches!(e, IpvsError::AlreadyExists { .. }), "{e:?}");
        let mut bad = Service::tcp("192.168.122.2".parse().unwrap(), 80, "nosuch");
        let e = h.add_service(&bad).unwrap_err();
        println!("KT error unknown scheduler: {e}");
        assert!(matches!(e, IpvsError::UnknownScheduler { .. }), "{e:?}");
        bad.scheduler = "rr".into();
        let neg = Destination {
            weight: -1,
            ..Destination::dr("172.22.35.3:8080".parse().unwrap(), 1)
        };
        let e = h.add_destination(&svc, &neg).unwrap_err();
        println!("KT error negative weight: {e}");
        assert_eq!(e.errno(), Some(libc::ERANGE), "{e:?}");
        let e = h.delete_service(&bad).unwrap_err();
        println!("KT error delete missing service: {e}");
        assert!(
            matches!(
                e,
                IpvsError::NotFound {
                    errno: libc::ESRCH,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(h.service(&bad).unwrap(), None);
        assert!(h.destinations(&bad).unwrap().is_empty());
        let ghost = Destination::dr("172.22.35.9:8080".parse().unwrap(), 1);
        let e = h.delete_destination(&svc, &ghost).unwrap_err();
        println!("KT error delete missing destination: {e}");
        assert!(matches!(e, IpvsError::NotFound { .. }), "{e:?}");
        let e = h.add_destination(&bad, &ghost).unwrap_err();
        println!("KT error destination of missing service: {e}");
        assert!(matches!(e, IpvsError::NotFound { .. }), "{e:?}");

        // More shapes for the listings: one-packet scheduling (the kernel
        // accepts it on TCP too; only ipvsadm refuses), with and without
        // persistence, scheduler flags, a fwmark service.
        let mut ops = Service::udp("10.0.0.9".parse().unwrap(), 53, "rr");
        ops.flags = IP_VS_SVC_F_ONEPACKET;
        let mut ops_p = Service::udp("10.0.0.10".parse().unwrap(), 53, "wrr")
            .with_persistence(Persistence::per_client(30));
        ops_p.flags = IP_VS_SVC_F_ONEPACKET;
        let mut sh =
            Service::tcp("10.0.0.2".parse().unwrap(), 443, "sh").with_persistence(Persistence {
                timeout_s: 300,
                netmask: "255.255.0.0".parse().unwrap(),
            });
        sh.flags = consts::IP_VS_SVC_F_SCHED_SH_PORT;
        let mut rr_flag = Service::tcp("200.0.0.1".parse().unwrap(), 80, "rr");
        rr_flag.flags = consts::IP_VS_SVC_F_SCHED1;
        let fw = Service::fwmark(7, "rr");
        let extras = [ops, ops_p, sh, rr_flag, fw];
        for x in &extras {
            h.add_service(x).unwrap();
            assert_eq!(h.service(x).unwrap().unwrap().service, *x);
        }
        h.add_destination(
            &extras[4],
            &Destination::dr("10.1.1.1:0".parse().unwrap(), 3),
        )
        .unwrap();
        h.add_destination(
            &extras[1],
            &Destination::new(
                "10.1.1.2:5353".parse().unwrap(),
                ForwardMethod::Masquerade,
                7,
            ),
        )
        .unwrap();

        // Compare with ipvsadm, byte for byte.
        let table = timed("table (info + dumps)", || h.table()).unwrap();
        if let Some(real) = run("ipvsadm", &["-Ln"]) {
            println!("KT ipvsadm -Ln:\n{real}");
            assert_eq!(format::list(&table), real, "ipvsadm -Ln");
            let stats = run("ipvsadm", &["-Ln", "--stats"]).unwrap();
            assert_eq!(format::list_stats(&table), stats, "ipvsadm -Ln --stats");
            for (flag, listing) in [
                ("--rate", format::Listing::Rate),
                ("--thresholds", format::Listing::Thresholds),
                ("--persistent-conn", format::Listing::PersistentConn),
            ] {
                let real = run("ipvsadm", &["-Ln", flag]).unwrap();
                assert_eq!(format::render(&table, listing), real, "ipvsadm -Ln {flag}");
            }
            let real = run("ipvsadm", &["-Ln", "--stats", "--exact"]).unwrap();
            assert_eq!(
                format::render_with(&table, format::Listing::Stats, true),
                real,
                "ipvsadm -Ln --stats --exact"
            );
            println!(
                "KT ipvsadm -Ln, --stats [--exact], --rate, --thresholds, --persistent-conn identical"
            );
        }
        for x in &extras {
            h.delete_service(x).unwrap();
        }

        // Edit: weight 0 (quiesce), scheduler and persistence.
        let quiesced = Destination { weight: 0, ..d2 };
        timed("edit_destination", || h.edit_destination(&svc, &quiesced)).unwrap();
        let w: Vec<i32> = {
            let mut v = h.destinations(&svc).unwrap();
            v.sort_by_key(|d| d.destination.socket_addr());
            v.iter().map(|d| d.destination.weight).collect()
        };
        assert_eq!(w, vec![1, 0]);
        let mut edited = svc.clone();
        edited.scheduler = "wrr".into();
        edited.persistence = Some(Persistence {
            timeout_s: 300,
            netmask: "255.255.255.0".parse().unwrap(),
        });
        h.edit_service(&edited).unwrap();
        assert_eq!(h.service(&svc).unwrap().unwrap().service, edited);
        let mut unpersisted = edited.clone();
        unpersisted.persistence = None;
        h.edit_service(&unpersisted).unwrap();
        assert_eq!(h.service(&svc).unwrap().unwrap().service, unpersisted);
        if let Some(real) = run("ipvsadm", &["-Ln"]) {
            assert_eq!(format::list(&h.table().unwrap()), real, "after edits");
        }

        // Timeouts.
        let defaults = h.timeouts().unwrap();
        assert_eq!(
            defaults,
            Timeouts {
                tcp: 900,
                tcp_fin: 120,
                udp: 300
            }
        );
        h.set_timeouts(&Timeouts {
            tcp: 600,
            tcp_fin: 0, // unchanged
            udp: 200,
        })
        .unwrap();
        let t = h.timeouts().unwrap();
        assert_eq!(
            t,
            Timeouts {
                tcp: 600,
                tcp_fin: 120,
                udp: 200
            }
        );
        if let Some(real) = run("ipvsadm", &["-Ln", "--timeout"]) {
            assert_eq!(format::timeouts(&t), real);
        }
        h.set_timeouts(&defaults).unwrap();

        // Zero, one and all.
        h.zero(Some(&svc)).unwrap();
        h.zero(None).unwrap();

        // Delete one destination, the service, then flush.
        timed("delete_destination", || h.delete_destination(&svc, &d1)).unwrap();
        assert_eq!(h.destinations(&svc).unwrap().len(), 1);
        h.delete_service(&svc).unwrap();
        assert_eq!(h.service(&svc).unwrap(), None);
        h.add_service(&svc).unwrap();
        h.add_service(&Service::fwmark(7, "rr")).unwrap();
        h.add_service(&Service::udp("10.0.0.1".parse().unwrap(), 53, "sh"))
            .unwrap();
        assert_eq!(h.services().unwrap().len(), 3);
        timed("flush", || h.flush()).unwrap();
        assert!(h.services().unwrap().is_empty());

        // Per-op and per-dump cost, averaged.
        h.add_service(&svc).unwrap();
        h.add_destination(&svc, &d1).unwrap();
        h.add_destination(&svc, &d2).unwrap();
        let n = 200;
        let t = Instant::now();
        for i in 0..n {
            let d = Destination {
                weight: 1 + (i % 5),
                ..d1
            };
            h.edit_destination(&svc, &d).unwrap();
        }
        println!(
            "KT timing edit_destination avg of {n}: {:?}",
            t.elapsed() / n as u32
        );
        let t = Instant::now();
        for _ in 0..n {
            h.services().unwrap();
        }
        println!(
            "KT timing services dump avg of {n}: {:?}",
            t.elapsed() / n as u32
        );
        let t = Instant::now();
        for _ in 0..n {
            h.destinations(&svc).unwrap();
        }
        println!(
            "KT timing destinations dump avg of {n}: {:?}",
            t.elapsed() / n as u32
        );
        h.flush().unwrap();
    });
}

/// A handle opened in one namespace keeps talking to it from another thread,
/// and other namespaces do not see its services.
#[test]
fn kernel_handle_is_bound_to_its_namespace() {
    if !uml::on_ipvs_kernel("kernel_handle_is_bound_to_its_namespace") {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let keeper = std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).unwrap();
        let h = IpvsHandle::open().unwrap();
        tx.send(h).unwrap();
        // Keep the thread (and so the namespace) alive until told.
        done_rx.recv().ok();
    });
    let h = rx.recv().unwrap();
    // Used from this thread, which is in another namespace.
    let (svc, _) = reference();
    let svc = Service { port: 8081, ..svc };
    h.add_service(&svc).unwrap();
    assert_eq!(h.services().unwrap().len(), 1);
    // A fresh namespace sees nothing of it.
    let elsewhere = in_new_netns(|| IpvsHandle::open().unwrap().services().unwrap());
    assert!(elsewhere.is_empty());
    h.flush().unwrap();
    drop(h);
    done_tx.send(()).unwrap();
    keeper.join().unwrap();
}

/// Traffic from the director itself through the reference service creates a
/// persistence template (client port 0) and a connection, visible in
/// `/proc/thread-self/net/ip_vs_conn` and as PERSIST_CONNS, but not in
/// `/proc/net/ip_vs_conn` of the main thread.
#[test]
fn kernel_conn_table_shows_templates() {
    if !uml::on_ipvs_kernel("kernel_conn_table_shows_templates") {
        return;
    }
    let main_thread_view = in_new_netns(|| {
        // lo with a client address; the VIP routed onto lo from that source,
        // so the SYN passes LOCAL_OUT, where IPVS schedules it.
        if run("ip", &["link", "set", "lo", "up"]).is_none() {
            println!("KT conn table: no `ip` command, skipped");
            return None;
        }
        run("ip", &["addr", "add", "172.22.35.100/24", "dev", "lo"]).unwrap();
        run(
            "ip",
            &[
                "route",
                "add",
                "192.168.122.1/32",
                "dev",
                "lo",
                "src",
                "172.22.35.100",
            ],
        )
        .unwrap();
        let h = IpvsHandle::open().unwrap();
        let (svc, [d1, d2]) = reference();
        h.add_service(&svc).unwrap();
        h.add_destination(&svc, &d1).unwrap();
        h.add_destination(&svc, &d2).unwrap();

        // A non-blocking connect: the SYN is enough, nobody will answer.
        let vip: SocketAddr = "192.168.122.1:8080".parse().unwrap();
        let _s = std::net::TcpStream::connect_timeout(&vip, Duration::from_millis(300));

        let table = conntable::read_conn_table().unwrap();
        println!("KT conn table: {table:#?}");
        let template: Vec<&ConnEntry> = table.iter().filter(|c| c.is_template).collect();
        let conns: Vec<&ConnEntry> = table.iter().filter(|c| !c.is_template).collect();
        assert_eq!(template.len(), 1, "{table:?}");
        assert_eq!(conns.len(), 1, "{table:?}");
        assert_eq!(template[0].protocol, Some(Protocol::Tcp));
        assert_eq!(template[0].virtual_, vip);
        assert_eq!(template[0].client.port(), 0);
        assert_eq!(
            conns[0].dest, template[0].dest,
            "template steers the connection"
        );
        assert!(template[0].expires_s <= 60);

        // ipvsadm -Lnc and the child's /proc/net agree with what we parsed.
        if let Some(text) = run("cat", &["/proc/net/ip_vs_conn"]) {
            println!("KT child /proc/net/ip_vs_conn:\n{text}");
            let child = conntable::parse_conn_table(&text).unwrap();
            assert_eq!(child.len(), table.len());
        }
        if let Some(lnc) = run("ipvsadm", &["-Lnc"]) {
            println!("KT ipvsadm -Lnc:\n{lnc}");
        }
        let dests = h.destinations(&svc).unwrap();
        let persist: u32 = dests.iter().map(|d| d.persist_conns).sum();
        let inact: u32 = dests
            .iter()
            .map(|d| d.inactive_conns + d.active_conns)
            .sum();
        println!("KT dests after SYN: {dests:#?}");
        assert_eq!(persist, 1);
        assert_eq!(inact, 1);
        if let Some(real) = run("ipvsadm", &["-Ln", "--persistent-conn"]) {
            let mine = format::render(&h.table().unwrap(), format::Listing::PersistentConn);
            assert_eq!(mine, real, "ipvsadm -Ln --persistent-conn");
        }
        // Counters reach the dumps on the estimator tick (~2 s): poll, then
        // compare the stats and rate listings, now with non-zero numbers.
        let moved = common::wait_until(Duration::from_secs(6), "IPVS counters to move", || {
            h.services().unwrap()[0].stats.conns != 0
        })
        .expect("counters");
        println!("KT counters moved after {moved:?}");
        let table = h.table().unwrap();
        println!("KT service stats: {:?}", table.services[0].entry.stats);
        assert_eq!(table.services[0].entry.stats.outpkts, 0, "DR: no outbound");
        if let Some(real) = run("ipvsadm", &["-Ln", "--stats", "--exact"]) {
            println!("KT ipvsadm -Ln --stats --exact:\n{real}");
            let mine = format::render_with(&table, format::Listing::Stats, true);
            assert_eq!(mine, real, "ipvsadm -Ln --stats --exact");
            let real = run("ipvsadm", &["-Ln", "--stats"]).unwrap();
            assert_eq!(format::list_stats(&table), real, "ipvsadm -Ln --stats");
        }
        h.flush().unwrap();
        Some(())
    });
    // This thread is in the main thread's namespace: /proc/net shows that one.
    if main_thread_view.is_some() {
        let main = conntable::read_conn_table_from(std::path::Path::new("/proc/net/ip_vs_conn"));
        let n = main.map(|t| t.len()).unwrap_or(0);
        assert_eq!(
            n, 0,
            "the lab's entries are not in the main thread's /proc/net"
        );
    }
}

/// On a kernel without IPVS (a host like this one, outside the guest),
/// opening says so clearly.
#[test]
fn kernel_without_ipvs_is_not_available() {
    if lab::runner::in_guest() || lab::runner::host_has_ipvs() {
        common::skipped("kernel_without_ipvs_is_not_available: this kernel has IPVS");
        return;
    }
    let e = IpvsHandle::open().unwrap_err();
    println!("KT no IPVS: {e}");
    assert!(matches!(e, IpvsError::NotAvailable), "{e:?}");
}
