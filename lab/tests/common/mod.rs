//! Helpers for the host-kernel integration tests: a runtime, root-namespace
//! snapshots, a tiny ICMP ping and TCP probes, all run inside lab namespaces.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

use lab::netns::{self, NetNs, RunId};

/// The lab's rule for privileged tests: a test that cannot run here prints
/// `SKIPPED: <test>: <why>` and passes (CI runs as root with the lab's
/// kernel, so there it always runs). Returns `true` when the caller must
/// stop: not root, since namespaces, links and IPVS need CAP_NET_ADMIN.
pub fn skip_unless_root(test: &str) -> bool {
    let skip = !nix::unistd::Uid::effective().is_root();
    if skip {
        skipped(&format!("{test}: needs root (CAP_NET_ADMIN)"));
    }
    skip
}

/// Prints `SKIPPED: <why>` straight to stderr: libtest captures `println!`
/// and `eprintln!` of a passing test, and a skip must be seen.
pub fn skipped(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// [`skip_unless_root`], and also skips when no kernel here can do IPVS:
/// neither the host's nor a User-Mode Linux kernel (`make deps` builds one).
pub fn skip_unless_ipvs_runner(test: &str) -> bool {
    if skip_unless_root(test) {
        return true;
    }
    match lab::runner::resolve(lab::runner::RunnerChoice::Auto) {
        Ok(_) => false,
        Err(e) => {
            skipped(&format!("{test}: needs a kernel with IPVS: {e}"));
            true
        }
    }
}

/// A [`wait_until`] that ran out of time.
#[derive(Debug)]
pub struct TimedOut {
    /// What was awaited.
    pub what: String,
    /// How long it was awaited.
    pub after: Duration,
}

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for {}",
            self.after, self.what
        )
    }
}

/// Polls `done` every 20 ms until it returns `true` (then returns how long
/// that took) or `timeout` has passed. The tests' one way to wait for the
/// kernel or a process: bounded polling, never a bare sleep. The caller
/// decides what a timeout means (`expect`, or its own assertion with the
/// last state it saw).
#[must_use = "a timeout is an Err: expect it or assert on it"]
pub fn wait_until(
    timeout: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> Result<Duration, TimedOut> {
    let start = Instant::now();
    loop {
        if done() {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return Err(TimedOut {
                what: what.to_owned(),
                after: start.elapsed(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A current-thread runtime, like the lab's own.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `index: name` of every link of the root namespace (`ip -o link`).
pub fn root_links() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip -o link");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split(": ");
            Some(format!("{}: {}", f.next()?, f.next()?))
        })
        .collect()
}

/// The namespaces of `run` that `ip netns list` shows.
pub fn ip_netns_list_of(run: &RunId) -> Vec<String> {
    let prefix = run.name_prefix();
    lab_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Every lab namespace (`ipvslab-*`) that `ip netns list` shows, of any run.
pub fn lab_namespaces() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("ipvslab-"))
        .map(str::to_owned)
        .collect()
}

/// Asserts that nothing of `run` is left and the root namespace's links are
/// unchanged.
pub fn assert_clean(run: &RunId, links_before: &[String]) {
    assert_eq!(
        ip_netns_list_of(run),
        Vec::<String>::new(),
        "namespaces left behind"
    );
    let lab: Vec<_> = netns::list_lab_namespaces()
        .unwrap()
        .into_iter()
        .filter(|n| n.run == *run)
        .collect();
    assert!(lab.is_empty(), "{lab:?}");
    assert_eq!(root_links(), links_before, "root namespace links changed");
}

/// The inode of the calling thread's network namespace.
pub fn thread_netns_inode() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino()
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One ICMP echo from inside `ns` to `dst` over a raw socket; returns the
/// round-trip time, or an error after `timeout`.
pub fn ping(ns: &NetNs, dst: Ipv4Addr, timeout: Duration) -> std::io::Result<Duration> {
    ns.run(move || -> std::io::Result<Duration> {
        // SAFETY: plain socket syscalls on an fd we own.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the fd was just returned by socket() and nothing else owns it.
        let fd: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
        let ident = (std::process::id() as u16) ^ 0x5a5a;
        let seq: u16 = 1;
        let mut pkt = vec![8u8, 0, 0, 0];
        pkt.extend(ident.to_be_bytes());
        pkt.extend(seq.to_be_bytes());
        pkt.extend(b"ipvs-lab-ping");
        let c = checksum(&pkt);
        pkt[2..4].copy_from_slice(&c.to_be_bytes());
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(dst).to_be(),
            },
            sin_zero: [0; 8],
        };
        let start = Instant::now();
        // SAFETY: `pkt` and `sa` outlive the call, and the lengths passed are theirs.
        let sent = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                pkt.as_ptr().cast(),
                pkt.len(),
                0,
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            )
        };
        if sent < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut buf = [0u8; 1500];
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `pfd` is one valid pollfd for the duration of the call.
            let r = unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as i32) };
            if r <= 0 {
                continue;
            }
            // SAFETY: `buf` is writable for `buf.len()` bytes.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let b = &buf[..n as usize];
            let ihl = usize::from(b[0] & 0x0f) * 4;
            let src = Ipv4Addr::new(b[12], b[13], b[14], b[15]);
            let icmp = &b[ihl..];
            if src == dst
                && icmp.len() >= 8
                && icmp[0] == 0
                && icmp[4..6] == ident.to_be_bytes()
                && icmp[6..8] == seq.to_be_bytes()
            {
                return Ok(start.elapsed());
            }
        }
    })
    .expect("ping thread")
}

/// Binds a TCP listener inside `ns` on `addr:0` and serves `count` echo
/// connections on a background thread, which then exits and closes the
/// listener (an open socket would keep the namespace alive after teardown).
/// Each accepted peer's address is sent on the returned channel.
pub fn echo_server(
    ns: &NetNs,
    addr: Ipv4Addr,
    count: usize,
) -> (SocketAddr, std::sync::mpsc::Receiver<SocketAddr>) {
    let listener = ns
        .run(move || TcpListener::bind((addr, 0)))
        .expect("run")
        .expect("bind in namespace");
    let local = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut s) = stream else { break };
            let peer = s.peer_addr().unwrap();
            let mut buf = [0u8; 64];
            if let Ok(n) = s.read(&mut buf) {
                let _ = s.write_all(&buf[..n]);
            }
            if tx.send(peer).is_err() {
                break;
            }
        }
    });
    (local, rx)
}

/// Removes every namespace and keep marker of the given runs when dropped,
/// for tests that deliberately leave namespaces unguarded.
pub struct RunCleanup(pub Vec<RunId>);

impl Drop for RunCleanup {
    fn drop(&mut self) {
        for run in &self.0 {
            let _ = netns::remove_run(run);
        }
    }
}

/// Connects from inside `ns` (from `source` when given) to `dst`, sends a
/// message and checks the echo.
pub fn tcp_echo(ns: &NetNs, source: Option<Ipv4Addr>, dst: SocketAddr) -> std::io::Result<()> {
    ns.run(move || -> std::io::Result<()> {
        let mut stream = match source {
            None => TcpStream::connect_timeout(&dst, Duration::from_secs(3))?,
            Some(src) => connect_from(src, dst)?,
        };
        stream.set_read_timeout(Some(Duration::from_secs(3)))?;
        stream.write_all(b"hello ipvs-lab")?;
        let mut buf = [0u8; 14];
        stream.read_exact(&mut buf)?;
        assert_eq!(&buf, b"hello ipvs-lab");
        Ok(())
    })
    .expect("tcp thread")
}

fn connect_from(src: Ipv4Addr, dst: SocketAddr) -> std::io::Result<TcpStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(src, 0)))?;
    let SocketAddr::V4(dst) = dst else {
        unreachable!()
    };
    connect(fd.as_raw_fd(), &SockaddrIn::from(dst))?;
    Ok(TcpStream::from(fd))
}

/// The MAC address of `ifname` in namespace `ns` (via `ip -n`, an
/// independent tool).
pub fn mac_of(ns: &NetNs, ifname: &str) -> [u8; 6] {
    let out = Command::new("ip")
        .args(["-n", ns.name(), "-o", "link", "show", ifname])
        .output()
        .expect("ip link show");
    let text = String::from_utf8_lossy(&out.stdout);
    let mac = text
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in {text}"));
    let mut b = [0u8; 6];
    for (i, part) in mac.split(':').enumerate() {
        b[i] = u8::from_str_radix(part, 16).unwrap();
    }
    b
}

/// Broadcasts one ARP request `who-has target tell sender` on `eth0` of
/// `ns` and returns the MACs of every host that answered within `window`.
pub fn arp_responders(
    ns: &NetNs,
    sender: Ipv4Addr,
    target: Ipv4Addr,
    window: Duration,
) -> std::io::Result<Vec<[u8; 6]>> {
    let my_mac = mac_of(ns, "eth0");
    ns.run(move || -> std::io::Result<Vec<[u8; 6]>> {
        let proto = (libc::ETH_P_ARP as u16).to_be();
        // SAFETY: plain socket syscalls on fds we own; structs are zeroed.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, i32::from(proto)) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `proto` is a valid protocol number; no pointers are passed.
        let fd: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
        // SAFETY: the fd was just returned by socket() and nothing else owns it.
        let ifindex = unsafe { libc::if_nametoindex(c"eth0".as_ptr()) };
        if ifindex == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `sockaddr_ll` is plain old data, valid when zeroed.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
        let slen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        // SAFETY: `sll` outlives the call and `slen` is its size.
        if unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                slen,
            )
        } != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        let mut req = vec![0, 1, 8, 0, 6, 4, 0, 1];
        req.extend(my_mac);
        req.extend(sender.octets());
        req.extend([0u8; 6]);
        req.extend(target.octets());
        // SAFETY: `req` and `sll` outlive the call, and the lengths passed are theirs.
        let sent = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                slen,
            )
        };
        if sent < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let start = Instant::now();
        let mut macs = Vec::new();
        let mut buf = [0u8; 128];
        while start.elapsed() < window {
            let left = window.saturating_sub(start.elapsed());
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `pfd` is one valid pollfd for the duration of the call.
            if unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as i32) } <= 0 {
                continue;
            }
            // SAFETY: `buf` is writable for `buf.len()` bytes.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 28 {
                continue;
            }
            let p = &buf[..n as usize];
            // op == reply, sender protocol address == target
            if p[6..8] == [0, 2] && p[14..18] == target.octets() {
                let mut mac = [0u8; 6];
                mac.copy_from_slice(&p[8..14]);
                if !macs.contains(&mac) {
                    macs.push(mac);
                }
            }
        }
        Ok(macs)
    })
    .expect("arp thread")
}

/// Number of IPv4 addresses on `ifname` in `ns` (`ip -n <ns> -4 -o addr`).
pub fn address_count(ns: &NetNs, ifname: &str) -> usize {
    let out = Command::new("ip")
        .args(["-n", ns.name(), "-4", "-o", "addr", "show", "dev", ifname])
        .output()
        .expect("ip addr show");
    String::from_utf8_lossy(&out.stdout).lines().count()
}
