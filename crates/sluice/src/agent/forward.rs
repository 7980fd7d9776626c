//! `sluice agent --forward URL`: a standing route of every envelope
//! (`drain-type=all`) from the agent's log to a sluice server. The log is
//! the buffer: its disk budget is `--buffer-mb`, retention drops the
//! oldest beyond it, and the drain counts and tells what it lost. The route
//! is a drain like any other, so the server's outage is its retry schedule
//! (at-least-once: a batch in flight when the agent dies is sent again).
//!
//! - `grpc://HOST:PORT`: Loggregator v2 `Ingress.Send`, envelopes whole,
//!   TLS or mutual TLS from `--tls-dir` with `--server-name`;
//! - `http(s)://[USER:TOKEN@]HOST:PORT[/PATH]`: the server's `POST /logs`
//!   (path `/logs` unless one is given) with NDJSON envelopes
//!   (`body=envelopes`), so source, instance, type and tags arrive whole as
//!   over gRPC; the token goes as the basic-auth password (the server takes
//!   it for `POST /logs`) and must be an admin token: the agent forwards
//!   every app's lines and its own self-metrics (source `sluice`), which an
//!   app token may not send; a refused token (401, 403) keeps the buffer
//!   and retries until it is fixed. `--tls-dir`'s `ca.crt` (and the client
//!   pair) for `https://`, the name checked is the URL's host.
//!
//! The target's address is allowed for drains, and `--tls-dir` for TLS
//! files, since the operator named both.

use anyhow::{bail, Context as _, Result};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

pub fn forward_to(
    config: &mut server::Config,
    url: &str,
    tls_dir: Option<&std::path::Path>,
    server_name: &str,
    buffer_mb: u64,
) -> Result<()> {
    // The URL may carry a token: messages show it masked.
    let shown = drains::redact::url(url);
    let parsed = url::Url::parse(url).with_context(|| format!("--forward {shown}"))?;
    let scheme = parsed.scheme();
    if !matches!(scheme, "grpc" | "http" | "https") {
        bail!("--forward takes grpc://HOST:PORT or http(s)://HOST:PORT, not {shown:?}");
    }
    let host = parsed
        .host_str()
        .with_context(|| format!("--forward {shown}: no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed
        .port_or_known_default()
        .with_context(|| format!("--forward {shown}: no port"))?;
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut route = if scheme == "grpc" {
        format!("grpc://{authority}?drain-type=all")
    } else {
        if parsed.query().is_some() || parsed.fragment().is_some() {
            bail!("--forward {shown}: give the server's URL without a query");
        }
        let userinfo = match (parsed.username(), parsed.password()) {
            ("", None) => String::new(),
            (user, Some(password)) => format!("{user}:{password}@"),
            (_, None) => {
                bail!("--forward {shown}: the token goes as the password: https://agent:TOKEN@host")
            }
        };
        let path = match parsed.path() {
            "" | "/" => "/logs",
            path => path,
        };
        format!("{scheme}://{userinfo}{authority}{path}?drain-type=all&body=envelopes")
    };
    if let Some(dir) = tls_dir {
        if scheme == "http" {
            bail!("--tls-dir is for grpc:// and https://, not http://");
        }
        let dir =
            std::fs::canonicalize(dir).with_context(|| format!("--tls-dir {}", dir.display()))?;
        let file = |name: &str| {
            let path = dir.join(name).display().to_string();
            utf8_percent_encode(&path, NON_ALPHANUMERIC).to_string()
        };
        route.push_str(&format!(
            "&ca={}&cert={}&key={}",
            file("ca.crt"),
            file("client.crt"),
            file("client.key"),
        ));
        if scheme == "grpc" {
            route.push_str("&server-name=");
            route.push_str(&utf8_percent_encode(server_name, NON_ALPHANUMERIC).to_string());
        }
        config.drains.tls_dirs.push(dir);
    }
    use std::net::ToSocketAddrs as _;
    for addr in (host.as_str(), port)
        .to_socket_addrs()
        .with_context(|| format!("--forward {shown}: cannot resolve {host}"))?
    {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        config
            .drains
            .allow_ranges
            .push(format!("{}/{prefix}", addr.ip()));
    }
    config.drains.routes.push(route);
    config.log.max_disk_mb = buffer_mb.max(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(url: &str) -> Result<String> {
        let mut config = server::Config::default();
        forward_to(&mut config, url, None, "metron", 64)?;
        assert_eq!(config.log.max_disk_mb, 64);
        assert_eq!(config.drains.allow_ranges, vec!["127.0.0.1/32".to_owned()]);
        Ok(config.drains.routes.concat())
    }

    #[test]
    fn routes_for_each_scheme() {
        assert_eq!(
            route("grpc://127.0.0.1:8082").unwrap(),
            "grpc://127.0.0.1:8082?drain-type=all"
        );
        assert_eq!(
            route("http://127.0.0.1:8000").unwrap(),
            "http://127.0.0.1:8000/logs?drain-type=all&body=envelopes"
        );
        assert_eq!(
            route("https://agent:t0k@127.0.0.1/in").unwrap(),
            "https://agent:t0k@127.0.0.1:443/in?drain-type=all&body=envelopes"
        );
        for bad in [
            "udp://127.0.0.1:1",
            "http://127.0.0.1:1/?x=1",
            "http://t0ken@127.0.0.1:1",
            "grpc://127.0.0.1",
        ] {
            assert!(route(bad).is_err(), "{bad}");
        }
    }
}
