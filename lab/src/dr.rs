//! The sysctls that IPVS direct routing needs on real servers and director,
//! after the keepalived / LVS-DR reference.
//!
//! In DR the director rewrites only the destination MAC of a client's packet
//! and sends it on the same segment to a real server. The packet still says
//! `dst = VIP`, so every real server holds the VIP (as `/32` on `lo`, put
//! there by the topology) and must accept it without ever claiming it on the
//! segment, or clients would bypass the director. That is the ARP problem,
//! solved per real server by:
//! - `arp_ignore=1`: answer an ARP request only if its target address is
//!   configured on the interface it came in on. The VIP lives on `lo`, the
//!   request arrives on `eth0`: no answer. The director (VIP on `eth0`) is
//!   the only host that answers for it.
//! - `arp_announce=2`: in ARP requests the real server itself sends (e.g. to
//!   resolve a client), use the best address of the outgoing interface (its
//!   own address) as sender, never the packet's source (the VIP). Otherwise
//!   neighbours would learn `VIP -> real server's MAC` from the request and
//!   send VIP traffic around the director.
//!
//! The kernel uses the larger of `conf/all/<knob>` and `conf/<dev>/<knob>`
//! for both, so `all` alone would do. We also write `lo` (the keepalived
//! reference) and `eth0`, so that reading back `eth0` shows the effective
//! value directly and a host-wide reset of `all` cannot undo it.
//!
//! All writes go through `/proc/sys/net`, which follows the namespace of the
//! *calling thread*, from a thread inside the namespace ([`NetNs::run`]).

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::netns::{NetNs, NetnsError};
use crate::topology::Topology;
use crate::topology::spec::{HOST_IFNAME, Role};

/// One sysctl, by its dotted name (`net.ipv4.conf.all.arp_ignore`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Sysctl {
    /// Dotted name, as `sysctl` prints it.
    pub name: String,
    /// Value, as written to `/proc/sys`.
    pub value: String,
}

impl Sysctl {
    /// A sysctl `name = value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Sysctl {
            name: name.into(),
            value: value.into(),
        }
    }

    /// Its file under `/proc/sys`.
    pub fn path(&self) -> PathBuf {
        sysctl_path(&self.name)
    }
}

fn sysctl_path(name: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(name.replace('.', "/"))
}

/// Errors of the DR tweaks; each names the namespace and the sysctl.
#[derive(Debug, thiserror::Error)]
pub enum DrError {
    /// Entering the namespace failed.
    #[error("namespace operation failed")]
    Netns(#[from] NetnsError),
    /// The sysctl name is not a `net.*` name this module will write.
    #[error("refusing sysctl name {name:?}: only net.* names of [a-z0-9_] parts")]
    InvalidName {
        /// The name.
        name: String,
    },
    /// Writing a sysctl failed.
    #[error("namespace {ns}: writing {name} = {value} failed")]
    Write {
        /// The namespace.
        ns: String,
        /// The sysctl.
        name: String,
        /// The value.
        value: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Reading a sysctl failed.
    #[error("namespace {ns}: reading {name} failed")]
    Read {
        /// The namespace.
        ns: String,
        /// The sysctl.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A sysctl does not hold the expected value.
    #[error("namespace {ns}: {name} is {actual}, expected {expected}")]
    Mismatch {
        /// The namespace.
        ns: String,
        /// The sysctl.
        name: String,
        /// The expected value.
        expected: String,
        /// The value read back.
        actual: String,
    },
    /// `net.ipv4.vs.*` does not exist: the kernel has no IPVS loaded.
    #[error(
        "namespace {ns}: /proc/sys/net/ipv4/vs is missing: ip_vs is not loaded (modprobe ip_vs)"
    )]
    IpvsNotLoaded {
        /// The namespace.
        ns: String,
    },
    /// IPVS is loaded but has no such sysctl.
    #[error("namespace {ns}: IPVS has no sysctl net.ipv4.vs.{name}")]
    UnknownIpvsSysctl {
        /// The namespace.
        ns: String,
        /// The short name (`expire_nodest_conn`).
        name: String,
    },
}

/// Choices of [`configure`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrOptions {
    /// `net.ipv4.ip_forward` on the director. Off by default: IPVS DR sends
    /// the rewritten frame from its own hook straight to the output path
    /// (`LOCAL_OUT`, then `dst_output`), never through `ip_forward()`, so the
    /// director needs no routing. Keeping forwarding off also guarantees
    /// that a packet reaches a real server only through IPVS, never through
    /// ordinary routing that would hide a broken IPVS setup. (Written
    /// explicitly because a new namespace inherits the host's value.)
    pub director_ip_forward: bool,
}

/// The sysctls of a real server: `arp_ignore=1`, `arp_announce=2`,
/// `rp_filter=0` on `all`, `lo` and `eth0`.
///
/// `rp_filter=0`: the reverse-path filter drops a packet whose source would
/// not be routed back out of the interface it arrived on; the kernel applies
/// the larger of `all` and the device's value. On this one-interface segment
/// strict mode would pass (client packets arrive on `eth0`, the route back
/// is `eth0`), but a new namespace inherits `conf/all` from the host, which
/// distributions set to 1 or 2; and as soon as the VIP is reached over
/// another interface (a second segment, IPIP/tunnel mode on `tunl0`) strict
/// filtering silently drops DR traffic. So we follow the reference and turn
/// it off wherever DR packets pass.
pub fn real_server_sysctls() -> Vec<Sysctl> {
    let mut v = Vec::new();
    for dev in ["all", "lo", HOST_IFNAME] {
        v.push(Sysctl::new(format!("net.ipv4.conf.{dev}.arp_ignore"), "1"));
        v.push(Sysctl::new(
            format!("net.ipv4.conf.{dev}.arp_announce"),
            "2",
        ));
        v.push(Sysctl::new(format!("net.ipv4.conf.{dev}.rp_filter"), "0"));
    }
    v
}

/// The sysctls of the director: `ip_forward` (see
/// [`DrOptions::director_ip_forward`]) and `rp_filter=0` on `all` and `eth0`
/// (the director receives VIP traffic it must not reverse-path drop, for the
/// same reasons as a real server). The `net.ipv4.vs.*` knobs are separate
/// ([`set_ipvs_sysctl`]): they exist only once `ip_vs` is loaded.
///
/// Conntrack sysctls (`net.ipv4.vs.conntrack`) are left alone: they matter
/// only when netfilter NAT or stateful firewalling runs on the director.
pub fn director_sysctls(options: &DrOptions) -> Vec<Sysctl> {
    vec![
        Sysctl::new(
            "net.ipv4.ip_forward",
            if options.director_ip_forward {
                "1"
            } else {
                "0"
            },
        ),
        Sysctl::new("net.ipv4.conf.all.rp_filter", "0"),
        Sysctl::new(format!("net.ipv4.conf.{HOST_IFNAME}.rp_filter"), "0"),
    ]
}

/// The sysctls for a host of `role` (clients need none).
pub fn sysctls_for(role: Role, options: &DrOptions) -> Vec<Sysctl> {
    match role {
        Role::RealServer => real_server_sysctls(),
        Role::Director => director_sysctls(options),
        Role::Client => Vec::new(),
    }
}

/// The IPVS sysctls the lab recommends, with why (`net.ipv4.vs.<name>`):
/// - `expire_nodest_conn=1`: when a real server is removed, drop its
///   connection entries at the next packet instead of silently blackholing
///   the client until the entry times out (health-check scenarios).
/// - `expire_quiescent_template=1`: when a real server's weight drops to 0,
///   expire persistence templates pointing at it, so persistent clients move
///   on rather than staying pinned to a quiesced server.
///
/// `conn_reuse_mode` keeps the kernel default (1): a new connection whose
/// source port reuses a `TIME_WAIT` entry is rescheduled, which is what
/// connection-churn scenarios measure.
pub const RECOMMENDED_IPVS_SYSCTLS: &[(&str, &str)] = &[
    ("expire_nodest_conn", "1"),
    ("expire_quiescent_template", "1"),
];

/// Which sysctls [`configure`] wrote, per host, for the report.
pub type DrSettings = BTreeMap<String, Vec<Sysctl>>;

fn check_sysctl_name(name: &str) -> Result<(), DrError> {
    let ok = name.starts_with("net.")
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(DrError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// Writes `sysctls` inside `ns`, in order (`sysctl -w`).
pub fn write_sysctls(ns: &NetNs, sysctls: &[Sysctl]) -> Result<(), DrError> {
    for s in sysctls {
        check_sysctl_name(&s.name)?;
    }
    ns.run(|| {
        for s in sysctls {
            std::fs::write(s.path(), &s.value).map_err(|source| DrError::Write {
                ns: ns.name().to_owned(),
                name: s.name.clone(),
                value: s.value.clone(),
                source,
            })?;
        }
        Ok(())
    })?
}

/// Reads sysctl `name` inside `ns` (`sysctl -n`), trimmed.
pub fn read_sysctl(ns: &NetNs, name: &str) -> Result<String, DrError> {
    check_sysctl_name(name)?;
    let path = sysctl_path(name);
    ns.run(|| std::fs::read_to_string(&path))?
        .map(|s| s.trim().to_owned())
        .map_err(|source| DrError::Read {
            ns: ns.name().to_owned(),
            name: name.to_owned(),
            source,
        })
}

/// Reads every sysctl of `expected` back inside `ns` and fails on the first
/// that differs.
pub fn check(ns: &NetNs, expected: &[Sysctl]) -> Result<(), DrError> {
    for s in expected {
        let actual = read_sysctl(ns, &s.name)?;
        if actual != s.value {
            return Err(DrError::Mismatch {
                ns: ns.name().to_owned(),
                name: s.name.clone(),
                expected: s.value.clone(),
                actual,
            });
        }
    }
    Ok(())
}

/// Writes the role's sysctls on one host and returns them.
pub fn configure_host(ns: &NetNs, role: Role, options: &DrOptions) -> Result<Vec<Sysctl>, DrError> {
    let sysctls = sysctls_for(role, options);
    write_sysctls(ns, &sysctls)?;
    Ok(sysctls)
}

/// Writes the DR sysctls on every host of `topology`; returns what was set
/// per host (hosts with nothing to set are omitted).
pub fn configure(topology: &Topology, options: &DrOptions) -> Result<DrSettings, DrError> {
    let mut settings = DrSettings::new();
    for (host, ns) in topology.hosts() {
        let set = configure_host(ns, host.role, options)?;
        if !set.is_empty() {
            settings.insert(host.name.clone(), set);
        }
    }
    Ok(settings)
}

/// Reads back everything [`configure`] set.
pub fn check_topology(topology: &Topology, settings: &DrSettings) -> Result<(), DrError> {
    for (host, sysctls) in settings {
        if let Some(ns) = topology.host(host) {
            check(ns, sysctls)?;
        }
    }
    Ok(())
}

fn ipvs_path(ns: &NetNs, name: &str) -> Result<PathBuf, DrError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(DrError::InvalidName {
            name: format!("net.ipv4.vs.{name}"),
        });
    }
    let dir = PathBuf::from("/proc/sys/net/ipv4/vs");
    let path = dir.join(name);
    let (has_dir, has_file) = ns.run(|| (dir.is_dir(), path.exists()))?;
    match (has_dir, has_file) {
        (false, _) => Err(DrError::IpvsNotLoaded {
            ns: ns.name().to_owned(),
        }),
        (true, false) => Err(DrError::UnknownIpvsSysctl {
            ns: ns.name().to_owned(),
            name: name.to_owned(),
        }),
        (true, true) => Ok(path),
    }
}

/// Whether `net.ipv4.vs.*` exists in `ns`, i.e. `ip_vs` is loaded.
pub fn ipvs_loaded(ns: &NetNs) -> Result<bool, DrError> {
    Ok(ns.run(|| std::path::Path::new("/proc/sys/net/ipv4/vs").is_dir())?)
}

/// Sets `net.ipv4.vs.<name>` inside `ns` (e.g. `expire_nodest_conn`, `1`).
/// Fails with [`DrError::IpvsNotLoaded`] when the kernel has no IPVS loaded.
pub fn set_ipvs_sysctl(ns: &NetNs, name: &str, value: &str) -> Result<Sysctl, DrError> {
    ipvs_path(ns, name)?;
    let sysctl = Sysctl::new(format!("net.ipv4.vs.{name}"), value);
    write_sysctls(ns, std::slice::from_ref(&sysctl))?;
    Ok(sysctl)
}

/// Reads `net.ipv4.vs.<name>` inside `ns`.
pub fn get_ipvs_sysctl(ns: &NetNs, name: &str) -> Result<String, DrError> {
    ipvs_path(ns, name)?;
    read_sysctl(ns, &format!("net.ipv4.vs.{name}"))
}

/// Applies [`RECOMMENDED_IPVS_SYSCTLS`] in the director's namespace.
pub fn set_recommended_ipvs_sysctls(ns: &NetNs) -> Result<Vec<Sysctl>, DrError> {
    RECOMMENDED_IPVS_SYSCTLS
        .iter()
        .map(|(name, value)| set_ipvs_sysctl(ns, name, value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_server_sysctls_cover_all_lo_eth0() {
        let v = real_server_sysctls();
        for dev in ["all", "lo", "eth0"] {
            for (knob, val) in [
                ("arp_ignore", "1"),
                ("arp_announce", "2"),
                ("rp_filter", "0"),
            ] {
                let name = format!("net.ipv4.conf.{dev}.{knob}");
                assert!(v.contains(&Sysctl::new(&name, val)), "missing {name}");
            }
        }
        assert_eq!(
            v[0].path(),
            PathBuf::from("/proc/sys/net/ipv4/conf/all/arp_ignore")
        );
    }

    #[test]
    fn director_forwarding_follows_options() {
        let off = director_sysctls(&DrOptions::default());
        assert!(off.contains(&Sysctl::new("net.ipv4.ip_forward", "0")));
        let on = director_sysctls(&DrOptions {
            director_ip_forward: true,
        });
        assert!(on.contains(&Sysctl::new("net.ipv4.ip_forward", "1")));
        assert!(sysctls_for(Role::Client, &DrOptions::default()).is_empty());
    }

    #[test]
    fn sysctl_names_are_checked() {
        assert!(check_sysctl_name("net.ipv4.conf.eth0.arp_ignore").is_ok());
        for bad in [
            "kernel.panic",
            "net..x",
            "net.ipv4/../../x",
            "net.IPV4.x",
            "net.a b",
        ] {
            assert!(check_sysctl_name(bad).is_err(), "{bad}");
        }
    }
}
