//! Which addresses a drain may reach: protection against SSRF through
//! drain URLs.
//!
//! By default a drain may not target loopback, link-local, private
//! (RFC 1918, ULA), unspecified, broadcast or multicast addresses. An
//! operator allows ranges with `--allow-drain-ranges 127.0.0.0/8,10.0.0.0/8`
//! (or `[drains] allow_ranges` in `sluice.toml`). The cloud metadata address
//! 169.254.169.254 stays refused unless it is named exactly (as a /32).
//! The check runs on add (for literal addresses and what the name resolves
//! to then, within [`ADD_RESOLVE_TIMEOUT`]) and again on every connect,
//! against the resolved addresses, so DNS rebinding cannot slip past it.
//! A name that cannot be resolved on add is accepted (as Loggregator
//! does): DNS may be down for a moment, and every connect checks again.
//!
//! IPv6 addresses that carry an IPv4 address are judged by that address:
//! IPv4-mapped (`::ffff:0:0/96`), IPv4-compatible (`::/96`, except `::`
//! and `::1`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`, the IPv4
//! address in bits 16..48). An operator range allows such an address when
//! it holds either the IPv6 address or the embedded IPv4 one (the
//! metadata address only by its exact IPv4 /32). The local-use NAT64
//! prefix `64:ff9b:1::/48`, whose embedding varies, is refused as private.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

/// The cloud metadata address.
pub const METADATA: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254));

/// How long resolving a drain's host on add may take.
pub const ADD_RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, Default)]
pub struct NetPolicy {
    allowed: Vec<IpNet>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("invalid address range {0:?}: use CIDR like 10.0.0.0/8")]
    Range(String),
    #[error("{host} resolves to {ip}{}, a {kind} address that drains may not reach; an operator can allow it with --allow-drain-ranges", embedded.map(|v4| format!(" (which carries IPv4 {v4})")).unwrap_or_default())]
    Forbidden {
        host: String,
        ip: IpAddr,
        /// The IPv4 address an IPv6 address carries, when it was judged by it.
        embedded: Option<Ipv4Addr>,
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

    /// This policy with every address allowed but the metadata service,
    /// which stays allowed only when named exactly: for the operator's own
    /// standing routes.
    pub fn widened(&self) -> Self {
        let mut allowed = self.allowed.clone();
        allowed.extend(
            ["0.0.0.0/0", "::/0"]
                .iter()
                .filter_map(|n| n.parse::<IpNet>().ok()),
        );
        NetPolicy { allowed }
    }

    /// Parses a comma-separated list.
    pub fn from_list(list: &str) -> Result<Self, PolicyError> {
        Self::new(&list.split(',').collect::<Vec<_>>())
    }

    /// Whether `ip` may be reached; `Err` names why not.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), PolicyError> {
        let embedded = embedded_v4(ip);
        let judged = embedded.map_or(ip, IpAddr::V4);
        let Some(kind) = restricted_kind(judged) else {
            return Ok(());
        };
        let allowed = if judged == METADATA {
            // Only an exact /32 (or a bare address) allows the metadata service.
            self.allowed
                .iter()
                .any(|n| n.prefix_len() == 32 && n.contains(&judged))
        } else {
            self.allowed
                .iter()
                .any(|n| n.contains(&judged) || n.contains(&ip))
        };
        if allowed {
            Ok(())
        } else {
            Err(PolicyError::Forbidden {
                host: host.to_owned(),
                ip,
                embedded,
                kind,
            })
        }
    }

    /// The addresses of `resolved` the policy allows; an error when none
    /// is left (naming the first refused address).
    pub fn filter(
        &self,
        host: &str,
        resolved: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, PolicyError> {
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

    /// Like [`resolve`](Self::resolve), from blocking code (a drain's
    /// add), giving up after `timeout` with a [`PolicyError::Resolve`].
    /// The lookup runs on its own thread, left to finish when it is late.
    pub fn resolve_blocking(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<Vec<SocketAddr>, PolicyError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.filter(host, [SocketAddr::new(ip, port)]);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let name = host.to_owned();
        let spawned = std::thread::Builder::new()
            .name("drain-resolve".into())
            .spawn(move || {
                let result = (name.as_str(), port)
                    .to_socket_addrs()
                    .map(|addrs| addrs.collect::<Vec<_>>());
                let _ = tx.send(result);
            });
        let resolve_error = |reason: String| PolicyError::Resolve {
            host: host.to_owned(),
            reason,
        };
        if let Err(e) = spawned {
            return Err(resolve_error(format!("cannot start a lookup: {e}")));
        }
        match rx.recv_timeout(timeout) {
            Ok(Ok(addrs)) => self.filter(host, addrs),
            Ok(Err(e)) => Err(resolve_error(e.to_string())),
            Err(_) => Err(resolve_error(format!(
                "no answer within {} s",
                timeout.as_secs_f32()
            ))),
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
        self.filter(host, resolved)
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

/// The IPv4 address an IPv6 address carries: IPv4-mapped, IPv4-compatible
/// (not `::` nor `::1`), NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`).
pub fn embedded_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        Some(v4)
    } else if s[..6] == [0; 6] {
        // ::/96, IPv4-compatible; `::` and `::1` are IPv6's own.
        (v6 != Ipv6Addr::UNSPECIFIED && v6 != Ipv6Addr::LOCALHOST).then_some(low)
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(low)
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ))
    } else {
        None
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
            } else if v4.octets()[0] == 0 {
                Some("\"this network\" (0.0.0.0/8)")
            } else if v4.is_broadcast() || v4.is_multicast() {
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
            } else if v6.segments()[..3] == [0x64, 0xff9b, 1] {
                Some("private (local-use NAT64)")
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

    #[test]
    fn widened_allows_all_but_metadata() {
        let p = NetPolicy::default().widened();
        for ok in ["127.0.0.1", "10.1.2.3", "::1", "fe80::1", "203.0.113.9"] {
            assert!(p.check("h", ip(ok)).is_ok(), "{ok}");
        }
        assert!(p.check("h", ip("169.254.169.254")).is_err());
        assert!(p.check("h", ip("::ffff:169.254.169.254")).is_err());
        let p = NetPolicy::from_list("169.254.169.254").unwrap().widened();
        assert!(p.check("h", ip("169.254.169.254")).is_ok());
    }

    #[test]
    fn ipv6_addresses_carrying_ipv4_are_judged_by_it() {
        let p = NetPolicy::default();
        for (bad, v4) in [
            ("::7f00:1", "127.0.0.1"),
            ("::a00:5", "10.0.0.5"),
            ("::ffff:10.0.0.5", "10.0.0.5"),
            ("64:ff9b::7f00:1", "127.0.0.1"),
            ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
            ("2002:7f00:1::1", "127.0.0.1"),
            ("2002:c0a8:101::", "192.168.1.1"),
            ("2002:a9fe:a9fe:1:2:3:4:5", "169.254.169.254"),
        ] {
            let err = p.check("h", ip(bad)).unwrap_err();
            assert!(
                matches!(&err, PolicyError::Forbidden { embedded: Some(e), .. } if e.to_string() == v4),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(v4), "{err}");
        }
        assert!(p.check("h", ip("64:ff9b:1::a00:1")).is_err());
        // Public IPv4 inside is fine, as are other IPv6 addresses.
        for good in [
            "64:ff9b::cb00:7109",
            "2002:cb00:7109::1",
            "::ffff:203.0.113.9",
        ] {
            assert!(p.check("h", ip(good)).is_ok(), "{good}");
        }
        // `::1` stays IPv6 loopback, and `::` unspecified.
        assert!(p.check("h", ip("::1")).is_err());
        assert!(p.check("h", ip("::")).is_err());
        // An operator range allows by the IPv4 address, or the IPv6 one,
        // but metadata only by its exact address.
        let p = NetPolicy::from_list("127.0.0.0/8,64:ff9b::/96").unwrap();
        assert!(p.check("h", ip("::ffff:127.0.0.1")).is_ok());
        assert!(p.check("h", ip("2002:7f00:1::")).is_ok());
        assert!(p.check("h", ip("64:ff9b::a00:1")).is_ok());
        assert!(p.check("h", ip("64:ff9b::a9fe:a9fe")).is_err());
    }

    #[test]
    fn resolving_on_add_is_bounded_and_checked() {
        let p = NetPolicy::default();
        let err = p
            .resolve_blocking("localhost", 514, ADD_RESOLVE_TIMEOUT)
            .unwrap_err();
        assert!(matches!(err, PolicyError::Forbidden { .. }), "{err}");
        assert!(err.to_string().contains("--allow-drain-ranges"), "{err}");
        let p = NetPolicy::from_list("127.0.0.0/8").unwrap();
        assert!(!p
            .resolve_blocking("localhost", 514, ADD_RESOLVE_TIMEOUT)
            .unwrap()
            .is_empty());
        let err = p
            .resolve_blocking("no-such-host.invalid", 514, ADD_RESOLVE_TIMEOUT)
            .unwrap_err();
        assert!(matches!(err, PolicyError::Resolve { .. }), "{err}");
        let err = p
            .resolve_blocking("203.0.113.1", 514, Duration::ZERO)
            .map(|a| a.len());
        assert_eq!(err, Ok(1), "a literal needs no lookup");
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
