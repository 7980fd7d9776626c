//! Browser defences (DESIGN.md §7: a browser page is an attacker too).
//!
//! - **Host**: every request names the host it meant. On a loopback
//!   listener only loopback names (`localhost`, `127.0.0.0/8`, `[::1]`)
//!   with the listener's port are served, plus `[http] allowed_hosts`; a
//!   page on `evil.example` that rebinds its name to 127.0.0.1 sends
//!   `Host: evil.example:8000` and gets 421. On other listeners (which
//!   require tokens) any host is served unless `allowed_hosts` is set.
//! - **Origin**: a state-changing request (`POST`, `PUT`, `DELETE`,
//!   `PATCH`) whose `Origin` is not the server's own (same host and port as
//!   its `Host`) gets 403. Browsers send `Origin` on every cross-site
//!   request of those methods; curl and the CLI send none.
//! - **Content-Type**: `POST` and `PUT` on the management API (`/v1/*`,
//!   `/routes`) take only `application/json` (415), which a page cannot send
//!   cross-site without a CORS preflight that sluice never answers.
//!   `POST /logs` keeps its ingest types.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;

/// Which `Host` values this server answers to.
#[derive(Clone, Debug)]
pub struct HostPolicy {
    listen: SocketAddr,
    /// Lower-cased `name` or `name:port` entries.
    allowed: Vec<String>,
}

impl HostPolicy {
    pub fn new(listen: SocketAddr, allowed: &[String]) -> Self {
        HostPolicy {
            listen,
            allowed: allowed
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a `Host` header value may be served. A request without one
    /// (HTTP/1.0 tools) is served: browsers always send it.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return true };
        let host = host.trim().to_ascii_lowercase();
        let Some((name, port)) = split_host(&host) else {
            return false;
        };
        // An entry with a port names that host and port; one without, the
        // host on any port.
        let listed = self.allowed.iter().any(|entry| match split_host(entry) {
            Some((entry_name, entry_port)) => {
                entry_name == name && entry_port.is_none_or(|p| Some(p) == port)
            }
            None => false,
        });
        if listed {
            return true;
        }
        if !self.listen.ip().is_loopback() {
            // Off loopback every request needs a token anyway; a listed set
            // of names, when given, is the only one served.
            return self.allowed.is_empty();
        }
        let loopback_name = name == "localhost"
            || name.ends_with(".localhost")
            || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let port_ok = match port {
            Some(p) => p == self.listen.port(),
            None => self.listen.port() == 80,
        };
        loopback_name && port_ok
    }
}

/// `name[:port]` or `[v6][:port]` → (name without brackets, port).
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = host.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((name, port));
    }
    match host.rsplit_once(':') {
        Some((name, port)) => Some((name, Some(port.parse().ok()?))),
        None => Some((host, None)),
    }
}

fn is_state_changing(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH
    )
}

fn is_management(path: &str) -> bool {
    path.starts_with("/v1/") || path == "/routes" || path.starts_with("/routes/")
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let essence = ct.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("application/json")
    })
}

/// Whether `origin` (`scheme://host[:port]`) names the same host and port
/// the request was sent to.
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let Ok(url) = url_host_port(origin) else {
        return false;
    };
    url.eq_ignore_ascii_case(host.trim())
}

/// `http://h:1` → `h:1`; `https://h` → `h`; anything else is an error.
fn url_host_port(origin: &str) -> Result<&str, ()> {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .ok_or(())?;
    if rest.is_empty() || rest.contains('/') {
        return Err(());
    }
    Ok(rest)
}

/// The middleware: Host on every route, Origin and Content-Type on
/// state-changing ones.
pub async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let host = text(header::HOST);
    let metrics = state.bus.metrics();
    if !state.hosts.allows(host) {
        metrics.error("bad_host");
        return ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this server does not answer to host {:?}; add it to [http] allowed_hosts",
                host.unwrap_or_default()
            ),
        )
        .into_response();
    }
    if is_state_changing(request.method()) {
        if let Some(origin) = text(header::ORIGIN) {
            if !same_origin(origin, host) {
                metrics.error("bad_origin");
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("cross-origin request from {origin:?} refused"),
                )
                .into_response();
            }
        }
        let content_type = text(header::CONTENT_TYPE);
        let needs_json = matches!(
            *request.method(),
            Method::POST | Method::PUT | Method::PATCH
        ) || content_type.is_some();
        if is_management(request.uri().path()) && needs_json && !is_json(content_type) {
            metrics.error("bad_content_type");
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "the management API takes only Content-Type: application/json, not {:?}",
                    content_type.unwrap_or_default()
                ),
            )
            .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_listener_serves_only_loopback_names() {
        let p = HostPolicy::new("127.0.0.1:8000".parse().unwrap(), &[]);
        for ok in [
            "127.0.0.1:8000",
            "localhost:8000",
            "LOCALHOST:8000",
            "[::1]:8000",
            "127.1.2.3:8000",
        ] {
            assert!(p.allows(Some(ok)), "{ok}");
        }
        for bad in [
            "evil.example:8000",
            "127.0.0.1:9000",
            "localhost",
            "127.0.0.1.nip.io:8000",
            "[::1",
            "",
            "localhost:8000:1",
        ] {
            assert!(!p.allows(Some(bad)), "{bad}");
        }
        assert!(p.allows(None));
        let p = HostPolicy::new("127.0.0.1:8000".parse().unwrap(), &["logs.internal".into()]);
        assert!(p.allows(Some("logs.internal:8000")));
        assert!(p.allows(Some("logs.internal")));
        let p = HostPolicy::new("[::1]:80".parse().unwrap(), &[]);
        assert!(p.allows(Some("localhost")));
    }

    #[test]
    fn other_listeners_serve_any_host_unless_listed() {
        let p = HostPolicy::new("0.0.0.0:8000".parse().unwrap(), &[]);
        assert!(p.allows(Some("sluice.example:8000")));
        let p = HostPolicy::new(
            "0.0.0.0:8000".parse().unwrap(),
            &["sluice.example:8000".into()],
        );
        assert!(p.allows(Some("sluice.example:8000")));
        assert!(!p.allows(Some("other.example:8000")));
        // Found by the host_header fuzz target: a listed host:port matched
        // as a bare name.
        for bad in [
            "sluice.example:8000:1",
            "[sluice.example:8000]:6",
            "[sluice.example:8000]",
            "sluice.example:9000",
        ] {
            assert!(!p.allows(Some(bad)), "{bad}");
        }
    }

    #[test]
    fn origins() {
        assert!(same_origin("http://127.0.0.1:8000", Some("127.0.0.1:8000")));
        assert!(!same_origin("http://evil.example", Some("127.0.0.1:8000")));
        assert!(!same_origin("null", Some("127.0.0.1:8000")));
        assert!(!same_origin(
            "http://127.0.0.1:8000/x",
            Some("127.0.0.1:8000")
        ));
        assert!(is_json(Some("application/json; charset=utf-8")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(None));
    }
}
