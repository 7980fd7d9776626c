//! Which addresses a drain may reach: protection against SSRF through
//! drain URLs.
//!
//! By default a drain may not target loopback, link-local, private
//! (RFC 1918, ULA), unspecified, broadcast or multicast addresses. An
//! operator allows ranges with `--allow-drain-ranges 127.0.0.0/8,10.0.0.0/8`
//! (or `[drains] allow_ranges` in `sluice.toml`). The cloud metadata address
//! 169.254.169.254 stays refused unless it is named exactly (as a /32).
//! The check runs on add (for literal addresses and what the name resolves
//! to then) and again on every connect, against the resolved addresses, so
//! DNS rebinding cannot slip past it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// The cloud metadata address.
pub const METADATA: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254));

#[derive(Clone, Debug, Default)]
pub struct NetPolicy {
    allowed: Vec<IpNet>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("invalid address range {0:?}: use CIDR like 10.0.0.0/8")]
    Range(String),
    #[error("{host} resolves to {ip}, a {kind} address that drains may not reach; an operator can allow it with --allow-drain-ranges")]
    Forbidden {
        host: String,
        ip: IpAddr,
        kind: &'static str,
    },
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
}

impl NetPolicy {
    /// From CIDR strings (a bare address means a single host).
    pub fn new<S: AsRef<str>>(ranges: &[S]) -> Result<Self, PolicyError> {
        let mut allowed = Vec::new();
        for r in ranges {
            let r = r.as_ref().trim();
            if r.is_empty() {
                continue;
            }
            let net = r
                .parse::<IpNet>()
                .or_else(|_| r.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| PolicyError::Range(r.to_owned()))?;
            allowed.push(net);
        }
        Ok(NetPolicy { allowed })
    }

    /// Parses a comma-separated list.
    pub fn from_list(list: &str) -> Result<Self, PolicyError> {
        Self::new(&list.split(',').collect::<Vec<_>>())
    }

    /// Whether `ip` may be reached; `Err` names why not.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), PolicyError> {
        let ip = canonical(ip);
        let Some(kind) = restricted_kind(ip) else {
            return Ok(());
        };
        let allowed = if ip == METADATA {
            // Only an exact /32 (or a bare address) allows the metadata service.
            self.allowed
                .iter()
                .any(|n| n.prefix_len() == 32 && n.contains(&ip))
        } else {
            self.allowed.iter().any(|n| n.contains(&ip))
        };
        if allowed {
            Ok(())
        } else {
            Err(PolicyError::Forbidden {
                host: host.to_owned(),
                ip,
                kind,
            })
        }
    }

    /// Resolves `host:port` and keeps the addresses the policy allows; an
    /// error when none is left (naming the first refused address).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, PolicyError> {
        let resolved: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| PolicyError::Resolve {
                    host: host.to_owned(),
                    reason: e.to_string(),
                })?
                .collect(),
        };
        let mut first_error = None;
        let mut ok = Vec::new();
        for addr in resolved {
            match self.check(host, addr.ip()) {
                Ok(()) => ok.push(addr),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match (ok.is_empty(), first_error) {
            (false, _) => Ok(ok),
            (true, Some(e)) => Err(e),
            (true, None) => Err(PolicyError::Resolve {
                host: host.to_owned(),
                reason: "no addresses".to_owned(),
            }),
        }
    }

    /// A resolver for reqwest that applies this policy to every lookup.
    pub fn reqwest_resolver(self: &Arc<Self>) -> Arc<dyn reqwest::dns::Resolve> {
        Arc::new(PolicyResolver(Arc::clone(self)))
    }
}

struct PolicyResolver(Arc<NetPolicy>);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.0);
        Box::pin(async move {
            let addrs = policy
                .resolve(name.as_str(), 0)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What makes an address off limits by default, if anything.
fn restricted_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            if v4 == Ipv4Addr::new(169, 254, 169, 254) {
                Some("cloud metadata")
            } else if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_private() {
                Some("private")
            } else if v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 {
                Some("shared (CGNAT)")
            } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() {
                Some("non-unicast")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let seg0 = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if (seg0 & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if (seg0 & 0xfe00) == 0xfc00 {
                Some("private")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("non-unicast")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_refuses_internal_ranges() {
        let p = NetPolicy::default();
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.0.1",
            "169.254.1.1",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "fd00::1",
            "0.0.0.0",
            "::ffff:127.0.0.1",
            "100.64.0.1",
        ] {
            assert!(p.check("h", ip(bad)).is_err(), "{bad}");
        }
        assert!(p.check("h", ip("203.0.113.9")).is_ok());
        assert!(p.check("h", ip("2001:db8::1")).is_ok());
        let err = p
            .check("logs.internal", ip("10.0.0.5"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("logs.internal resolves to 10.0.0.5, a private address"),
            "{err}"
        );
    }

    #[test]
    fn operators_allow_ranges_but_metadata_needs_its_exact_address() {
        let p = NetPolicy::from_list("127.0.0.0/8, 10.0.0.0/8,169.254.0.0/16").unwrap();
        assert!(p.check("h", ip("127.0.0.1")).is_ok());
        assert!(p.check("h", ip("10.9.9.9")).is_ok());
        assert!(p.check("h", ip("169.254.1.1")).is_ok());
        assert!(p.check("h", ip("169.254.169.254")).is_err());
        let p = NetPolicy::from_list("169.254.169.254").unwrap();
        assert!(p.check("h", ip("169.254.169.254")).is_ok());
        assert!(NetPolicy::from_list("10.0.0.0/99").is_err());
    }

    #[tokio::test]
    async fn resolution_is_checked() {
        let p = NetPolicy::default();
        let err = p.resolve("localhost", 514).await.unwrap_err();
        assert!(matches!(err, PolicyError::Forbidden { .. }), "{err}");
        let p = NetPolicy::from_list("127.0.0.0/8,::1/128").unwrap();
        assert!(!p.resolve("localhost", 514).await.unwrap().is_empty());
    }
}
