//! The host tweaks that IPVS direct routing needs, as in every LVS-DR and
//! keepalived guide, written through `/proc/sys` from a thread inside the
//! host's namespace (`/proc/sys/net` follows the calling thread's network
//! namespace), never in the host's root namespace.
//!
//! Real servers hold the VIP on `lo` (done by the topology) so that they
//! accept packets addressed to it, and:
//! - `arp_ignore=1`: answer ARP only for addresses on the interface the
//!   request came in on, so a real server never answers ARP for the VIP it
//!   holds on `lo` (else clients would bypass the director);
//! - `arp_announce=2`: use the best local address of the outgoing interface
//!   as the ARP source, so the VIP never leaks into ARP caches;
//! - `rp_filter=0`: packets arrive on `eth0` for an address held on `lo`;
//!   strict reverse-path filtering is not needed and some setups drop them.
//!
//! The director forwards packets it did not originate: `ip_forward=1`
//! (IPVS's DR transmitter does not strictly require it, but keepalived
//! guides set it and it keeps the director's behaviour conventional).

use std::path::PathBuf;

use crate::netns::{NetNs, NetnsError};

/// Why a sysctl could not be set.
#[derive(Debug, thiserror::Error)]
pub enum DrError {
    /// Entering the namespace failed.
    #[error("entering namespace {ns} to set sysctls")]
    Netns {
        /// The namespace.
        ns: String,
        /// The underlying error.
        #[source]
        source: NetnsError,
    },
    /// Writing the sysctl failed.
    #[error("setting {key} = {value} in namespace {ns}")]
    Write {
        /// The namespace.
        ns: String,
        /// The sysctl, dotted.
        key: String,
        /// The value.
        value: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An IPVS sysctl was asked for but IPVS is not loaded in this kernel.
    #[error("net.ipv4.vs.{name} does not exist in namespace {ns}: is the ip_vs module loaded?")]
    NoIpvs {
        /// The namespace.
        ns: String,
        /// The sysctl's last component.
        name: String,
    },
}

/// One sysctl that was set, for the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SysctlSetting {
    /// Dotted name, e.g. `net.ipv4.conf.all.arp_ignore`.
    pub key: String,
    /// The value written.
    pub value: String,
}

/// The sysctls a real server gets.
pub const REAL_SERVER_SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv4.conf.all.arp_ignore", "1"),
    ("net.ipv4.conf.lo.arp_ignore", "1"),
    ("net.ipv4.conf.eth0.arp_ignore", "1"),
    ("net.ipv4.conf.all.arp_announce", "2"),
    ("net.ipv4.conf.lo.arp_announce", "2"),
    ("net.ipv4.conf.eth0.arp_announce", "2"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.lo.rp_filter", "0"),
    ("net.ipv4.conf.eth0.rp_filter", "0"),
];

/// The sysctls the director gets.
pub const DIRECTOR_SYSCTLS: &[(&str, &str)] = &[("net.ipv4.ip_forward", "1")];

fn path_of(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key.replace('.', "/"))
}

/// Writes `settings` inside `ns`; returns what was set.
pub fn apply(ns: &NetNs, settings: &[(&str, &str)]) -> Result<Vec<SysctlSetting>, DrError> {
    let owned: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let name = ns.name().to_string();
    ns.run(move || {
        let mut done = Vec::new();
        for (key, value) in owned {
            std::fs::write(path_of(&key), &value).map_err(|source| DrError::Write {
                ns: name.clone(),
                key: key.clone(),
                value: value.clone(),
                source,
            })?;
            done.push(SysctlSetting { key, value });
        }
        Ok(done)
    })
    .map_err(|source| DrError::Netns {
        ns: ns.name().into(),
        source,
    })?
}

/// Reads a sysctl inside `ns` (for checks and tests).
pub fn read(ns: &NetNs, key: &str) -> Result<String, DrError> {
    let key = key.to_string();
    let name = ns.name().to_string();
    ns.run(move || {
        std::fs::read_to_string(path_of(&key))
            .map(|s| s.trim().to_string())
            .map_err(|source| DrError::Write {
                ns: name,
                key,
                value: "(read)".into(),
                source,
            })
    })
    .map_err(|source| DrError::Netns {
        ns: ns.name().into(),
        source,
    })?
}

/// ARP and reverse-path settings of a DR real server.
pub fn configure_real_server(ns: &NetNs) -> Result<Vec<SysctlSetting>, DrError> {
    apply(ns, REAL_SERVER_SYSCTLS)
}

/// Forwarding on the director.
pub fn configure_director(ns: &NetNs) -> Result<Vec<SysctlSetting>, DrError> {
    apply(ns, DIRECTOR_SYSCTLS)
}

/// Sets `net.ipv4.vs.<name>` in the director (e.g. `expire_nodest_conn`,
/// `expire_quiescent_template`, `conn_reuse_mode`); these exist only once
/// `ip_vs` is loaded.
pub fn set_ipvs_sysctl(ns: &NetNs, name: &str, value: &str) -> Result<SysctlSetting, DrError> {
    let key = format!("net.ipv4.vs.{name}");
    let exists = {
        let key = key.clone();
        ns.run(move || path_of(&key).exists())
            .map_err(|source| DrError::Netns {
                ns: ns.name().into(),
                source,
            })?
    };
    if !exists {
        return Err(DrError::NoIpvs {
            ns: ns.name().into(),
            name: name.into(),
        });
    }
    Ok(apply(ns, &[(key.as_str(), value)])?.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_paths_follow_the_dotted_names() {
        assert_eq!(
            path_of("net.ipv4.conf.all.arp_ignore"),
            PathBuf::from("/proc/sys/net/ipv4/conf/all/arp_ignore")
        );
        assert_eq!(
            path_of("net.ipv4.vs.expire_nodest_conn"),
            PathBuf::from("/proc/sys/net/ipv4/vs/expire_nodest_conn")
        );
    }

    #[test]
    fn real_servers_get_the_reference_arp_settings() {
        let get = |k: &str| {
            REAL_SERVER_SYSCTLS
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| *v)
        };
        assert_eq!(get("net.ipv4.conf.all.arp_ignore"), Some("1"));
        assert_eq!(get("net.ipv4.conf.lo.arp_ignore"), Some("1"));
        assert_eq!(get("net.ipv4.conf.all.arp_announce"), Some("2"));
        assert_eq!(get("net.ipv4.conf.lo.arp_announce"), Some("2"));
    }
}
