//! Arbitrary `Host` header values to `HostPolicy::allows` (the DNS
//! rebinding defence in front of every route). It must never panic, and:
//!
//! - a loopback listener (127.0.0.1:8000, no allowed hosts) serves only a
//!   loopback name or address (`localhost`, `*.localhost`, 127.0.0.0/8,
//!   `[::1]`) with port 8000;
//! - with `allowed_hosts = ["logs.internal"]` it serves those and
//!   `logs.internal` on any port, nothing else;
//! - a listener off loopback with `allowed_hosts = ["sluice.example:8000"]`
//!   serves only that host and port.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use sluice_server::http::guard::HostPolicy;

/// `host` as the policy compares it.
fn normal(host: &str) -> String {
    host.trim().to_ascii_lowercase()
}

/// `name:PORT` or `[name]:PORT` → `name`, when PORT is `port`.
fn name_with_port(host: &str, port: u16) -> Option<&str> {
    let (name, p) = host.rsplit_once(':')?;
    if p.parse::<u16>().ok()? != port {
        return None;
    }
    Some(unbracket(name))
}

fn unbracket(name: &str) -> &str {
    name.strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name)
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fuzz_target!(|data: &[u8]| {
    let loopback = HostPolicy::new("127.0.0.1:8000".parse().unwrap(), &[]);
    let listed = HostPolicy::new(
        "127.0.0.1:8000".parse().unwrap(),
        &["logs.internal".to_owned()],
    );
    let public = HostPolicy::new(
        "0.0.0.0:8000".parse().unwrap(),
        &["sluice.example:8000".to_owned()],
    );
    // No Host header (HTTP/1.0 tools): served everywhere.
    assert!(loopback.allows(None) && listed.allows(None) && public.allows(None));

    // Header values that are not UTF-8 never reach the policy.
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let host = normal(raw);
    let loopback_ok = name_with_port(&host, 8000).is_some_and(is_loopback_name);

    let by_loopback = loopback.allows(Some(raw));
    if by_loopback {
        assert!(
            loopback_ok,
            "loopback listener serves Host {raw:?}, not a loopback name with port 8000"
        );
    }

    let by_listed = listed.allows(Some(raw));
    if by_loopback {
        assert!(by_listed, "listing a host refused Host {raw:?}");
    }
    if by_listed {
        let is_listed = unbracket(&host) == "logs.internal"
            || host
                .rsplit_once(':')
                .is_some_and(|(n, p)| unbracket(n) == "logs.internal" && p.parse::<u16>().is_ok());
        assert!(
            loopback_ok || is_listed,
            "listener with allowed_hosts [logs.internal] serves Host {raw:?}"
        );
    }

    if public.allows(Some(raw)) {
        assert!(
            host == "sluice.example:8000" || name_with_port(&host, 8000) == Some("sluice.example"),
            "listener with allowed_hosts [sluice.example:8000] serves Host {raw:?}"
        );
    }
});
