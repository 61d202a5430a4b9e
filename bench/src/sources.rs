//! `--source-ips`: a list of addresses and CIDR blocks.
//!
//! A CIDR expands to its host addresses (network and broadcast excluded for
//! IPv4 prefixes shorter than /31), because those are what a client
//! namespace can hold as real source addresses.

use std::net::IpAddr;

use ipnet::IpNet;

/// Upper bound on expanded source addresses: each one gets its own channels,
/// and a typo such as `/8` would otherwise ask for 16 million.
pub const MAX_SOURCES: usize = 4096;

/// Why `--source-ips` was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SourceIpsError {
    /// An item is neither an IP address nor a CIDR block.
    #[error("{item:?} is neither an IP address nor a CIDR block (e.g. 127.0.0.2 or 127.1.0.0/29)")]
    Invalid {
        /// The offending item.
        item: String,
    },
    /// The list expands to more than [`MAX_SOURCES`] addresses.
    #[error("the source addresses expand to more than {max} addresses; use a smaller CIDR block")]
    TooMany {
        /// The cap.
        max: usize,
    },
    /// The list is empty (or a CIDR block holds no host address).
    #[error("the source address list is empty")]
    Empty,
}

/// Parses `127.0.0.2,127.0.0.3` or `127.1.0.0/29` (items may be mixed);
/// duplicates are kept once, in first-seen order.
pub fn parse_source_ips(spec: &str) -> Result<Vec<IpAddr>, SourceIpsError> {
    let mut out: Vec<IpAddr> = Vec::new();
    let push = |ip: IpAddr, out: &mut Vec<IpAddr>| -> Result<(), SourceIpsError> {
        if !out.contains(&ip) {
            if out.len() >= MAX_SOURCES {
                return Err(SourceIpsError::TooMany { max: MAX_SOURCES });
            }
            out.push(ip);
        }
        Ok(())
    };
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item.contains('/') {
            let net: IpNet = item.parse().map_err(|_| SourceIpsError::Invalid {
                item: item.to_string(),
            })?;
            for ip in net.hosts() {
                push(ip, &mut out)?;
            }
        } else {
            let ip: IpAddr = item.parse().map_err(|_| SourceIpsError::Invalid {
                item: item.to_string(),
            })?;
            push(ip, &mut out)?;
        }
    }
    if out.is_empty() {
        return Err(SourceIpsError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_and_cidr() {
        let v = parse_source_ips("127.0.0.2, 127.0.0.3,127.0.0.2").unwrap();
        assert_eq!(v.len(), 2);
        let v = parse_source_ips("127.1.0.0/29").unwrap();
        assert_eq!(v.len(), 6);
        assert_eq!(v[0], "127.1.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(v[5], "127.1.0.6".parse::<IpAddr>().unwrap());
        assert_eq!(parse_source_ips("127.0.0.9/32").unwrap().len(), 1);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            parse_source_ips("127.0.0.300"),
            Err(SourceIpsError::Invalid { .. })
        ));
        assert!(matches!(
            parse_source_ips("127.0.0.0/33"),
            Err(SourceIpsError::Invalid { .. })
        ));
        assert_eq!(
            parse_source_ips("10.0.0.0/8"),
            Err(SourceIpsError::TooMany { max: MAX_SOURCES })
        );
        assert_eq!(parse_source_ips(" , "), Err(SourceIpsError::Empty));
        // 4094 hosts fit.
        assert_eq!(parse_source_ips("10.0.0.0/20").unwrap().len(), 4094);
    }
}
