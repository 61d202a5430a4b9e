//! Faults injected into a running lab, and their repairs: a real server's
//! link taken down, and a blackhole that silently drops every frame to and
//! from a real server.
//!
//! Every effect happens inside one of the lab's own namespaces, never the
//! host's root namespace: each function first checks that the namespace
//! it was given is a lab namespace (its name starts with
//! [`crate::netns::NAME_PREFIX`]) and refuses otherwise.
//!
//! The blackhole lives in the lab's **bridge** namespace, as an nftables
//! `bridge` table matching the server's bridge port `v-<host>`. Inside the
//! server's own namespace would be the obvious place, but the UML kernel
//! the lab boots where the host has no IPVS is built without nftables'
//! `ip`/`inet` families (`nft add table ip t` fails with "Operation not
//! supported"); only the `bridge` family is there. Dropping at the port is
//! the same fault as seen from every other host: frames to and from the
//! server vanish, in both directions, without a reset.

use std::io::Write;
use std::process::{Command, Stdio};

use futures::TryStreamExt;
use rtnetlink::LinkUnspec;

use crate::netns::{NAME_PREFIX, NetNs, NetnsError};

/// Why a fault could not be applied or lifted.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The namespace is not one of the lab's: refused, to keep the host's
    /// own network untouched.
    #[error("refusing to touch namespace {ns:?}: not a lab namespace ({NAME_PREFIX}*)")]
    NotLabNamespace {
        /// The namespace given.
        ns: String,
    },
    /// Entering the namespace failed.
    #[error("entering namespace {ns}")]
    Netns {
        /// The namespace.
        ns: String,
        /// The underlying error.
        #[source]
        source: NetnsError,
    },
    /// An rtnetlink request failed.
    #[error("`{op}` for {ifname} in namespace {ns} failed")]
    Netlink {
        /// The namespace.
        ns: String,
        /// The `ip` command it equals.
        op: &'static str,
        /// The interface.
        ifname: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The interface does not exist in the namespace.
    #[error("no interface {ifname} in namespace {ns}")]
    NoLink {
        /// The namespace.
        ns: String,
        /// The interface.
        ifname: String,
    },
    /// `nft` could not be started (is the nftables package installed?).
    #[error("cannot run nft in namespace {ns} (install the nftables package)")]
    NftSpawn {
        /// The namespace.
        ns: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `nft` refused the ruleset.
    #[error("nft in namespace {ns} failed ({status}): {stderr}")]
    Nft {
        /// The namespace.
        ns: String,
        /// How it exited.
        status: String,
        /// What it said.
        stderr: String,
    },
}

fn ensure_lab(ns: &NetNs) -> Result<(), FaultError> {
    if ns.name().starts_with(NAME_PREFIX) {
        Ok(())
    } else {
        Err(FaultError::NotLabNamespace {
            ns: ns.name().into(),
        })
    }
}

/// `ip link set <ifname> up|down`, run inside `ns` (a real server's
/// namespace). Addresses stay on a downed link; the kernel puts the
/// connected route back when it comes up again.
pub fn set_link(ns: &NetNs, ifname: &str, up: bool) -> Result<(), FaultError> {
    ensure_lab(ns)?;
    let op = if up {
        "ip link set up"
    } else {
        "ip link set down"
    };
    let name = ns.name().to_string();
    let ifname = ifname.to_string();
    let netlink = |source: Box<dyn std::error::Error + Send + Sync>| FaultError::Netlink {
        ns: name.clone(),
        op,
        ifname: ifname.clone(),
        source,
    };
    ns.run(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| netlink(Box::new(e)))?;
        rt.block_on(async {
            // The socket opens in this thread's namespace: the server's.
            let (conn, handle, _) =
                rtnetlink::new_connection().map_err(|e| netlink(Box::new(e)))?;
            let task = tokio::spawn(conn);
            let result = async {
                let link = handle
                    .link()
                    .get()
                    .match_name(ifname.clone())
                    .execute()
                    .try_next()
                    .await
                    .map_err(|e| netlink(Box::new(e)))?
                    .ok_or_else(|| FaultError::NoLink {
                        ns: name.clone(),
                        ifname: ifname.clone(),
                    })?;
                let msg = LinkUnspec::new_with_index(link.header.index);
                let msg = if up { msg.up() } else { msg.down() };
                handle
                    .link()
                    .set(msg.build())
                    .execute()
                    .await
                    .map_err(|e| netlink(Box::new(e)))
            }
            .await;
            task.abort();
            result
        })
    })
    .map_err(|source| FaultError::Netns {
        ns: ns.name().into(),
        source,
    })?
}

/// The nftables table name for `host`'s blackhole.
pub fn blackhole_table(host: &str) -> String {
    format!("ipvslab_blackhole_{}", host.replace('-', "_"))
}

/// The ruleset that drops every frame entering or leaving bridge port
/// `port`. Priority -200 runs before any other bridge filter.
pub fn blackhole_ruleset(host: &str, port: &str) -> String {
    format!(
        "table bridge {table} {{\n  chain forward {{\n    type filter hook forward priority -200; policy accept;\n    iifname \"{port}\" drop\n    oifname \"{port}\" drop\n  }}\n}}\n",
        table = blackhole_table(host)
    )
}

/// Blackholes `host`: drops every frame to and from its bridge port, in
/// the lab's bridge namespace `bridge_ns`.
pub fn blackhole(bridge_ns: &NetNs, host: &str) -> Result<(), FaultError> {
    let port = crate::topology::spec::bridge_port_name(host);
    nft(bridge_ns, &blackhole_ruleset(host, &port))
}

/// Lifts the blackhole of `host`.
pub fn unblackhole(bridge_ns: &NetNs, host: &str) -> Result<(), FaultError> {
    nft(
        bridge_ns,
        &format!("delete table bridge {}\n", blackhole_table(host)),
    )
}

/// Runs `nft -f -` with `script` inside `ns`.
fn nft(ns: &NetNs, script: &str) -> Result<(), FaultError> {
    use crate::netns::CommandExt;
    ensure_lab(ns)?;
    let mut cmd = Command::new("nft");
    cmd.arg("-f")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd.netns(ns).map_err(|source| FaultError::Netns {
        ns: ns.name().into(),
        source,
    })?;
    let spawn_err = |source| FaultError::NftSpawn {
        ns: ns.name().into(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(spawn_err)?;
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(FaultError::Nft {
            ns: ns.name().into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blackhole_matches_only_the_servers_port() {
        let r = blackhole_ruleset("rs-1", "v-rs-1");
        assert!(r.starts_with("table bridge ipvslab_blackhole_rs_1 {"));
        assert!(r.contains("iifname \"v-rs-1\" drop"));
        assert!(r.contains("oifname \"v-rs-1\" drop"));
        assert!(r.contains("policy accept"), "only the port's frames drop");
    }
}
