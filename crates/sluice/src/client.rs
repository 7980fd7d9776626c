//! What the client subcommands (`sluice run`, `sluice logs`) share: the
//! `--server` flag, the HTTP client, the retry schedule and the clock.
//!
//! Nothing here talks to the network by itself; it only builds the pieces.

mod backoff;
pub mod grpc;

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use reqwest::Url;

pub use backoff::Backoff;

/// Where the server listens unless told otherwise (DESIGN.md §6).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8000";

/// The `--server URL` flag every client command takes.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArg {
    /// Base URL of the sluice server.
    #[arg(long = "server", value_name = "URL", env = "SLUICE_SERVER", default_value = DEFAULT_SERVER, global = true)]
    pub server: String,
    /// Bearer token for a server that requires one (any listener off loopback).
    #[arg(
        long = "token",
        value_name = "TOKEN",
        env = "SLUICE_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub token: Option<String>,
}

impl ServerArg {
    /// The base URL, checked: `http` or `https`, with a host.
    pub fn url(&self) -> Result<Url> {
        parse_server_url(&self.server)
    }
}

/// Parses a `--server` value; a bare `host:port` gets `http://` prepended.
pub fn parse_server_url(raw: &str) -> Result<Url> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    };
    let url = Url::parse(&with_scheme).with_context(|| format!("invalid --server URL {raw:?}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("invalid --server URL {raw:?}: the scheme must be http or https");
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        bail!("invalid --server URL {raw:?}: no host");
    }
    Ok(url)
}

/// `base` + `/segment/segment…`, keeping any path prefix `base` has
/// (`http://h/sluice/` + `logs` → `http://h/sluice/logs`). Segments are
/// percent-encoded as needed.
pub fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// The HTTP client both commands use. Proxies from the environment are
/// ignored: the log server is a local or internal peer, and sending a
/// workload's logs through an egress proxy would surprise.
pub fn http_client(token: Option<&str>) -> Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the token must be printable ASCII")?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")
}

/// A short reason for a failed request: the innermost cause
/// (`Connection refused (os error 111)`), or `timed out`.
pub fn describe_error(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timed out".to_owned();
    }
    let mut cause: &dyn std::error::Error = err;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

/// The message in a failed answer's body: its JSON `error` field, or the
/// start of the body; trimmed, with control characters escaped (it is
/// remote text bound for a terminal). Empty if there is none.
pub fn error_message(body: &[u8]) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    crate::term::escape_controls(message.trim()).into_owned()
}

/// For a 401 or 403: what to do about the token.
pub fn auth_hint(status: reqwest::StatusCode, has_token: bool) -> Option<&'static str> {
    let denied =
        status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN;
    match (denied, has_token) {
        (false, _) => None,
        (true, false) => Some("the server requires a token: pass --token or set SLUICE_TOKEN"),
        (true, true) => Some("the server refused the token: check --token or SLUICE_TOKEN"),
    }
}

/// GETs `url` from the server at `base` and parses its JSON answer; an
/// error answer says the server's message (and what to do about a token).
/// `what` names the answer in errors ("meta", "health").
pub async fn get_json(
    client: &reqwest::Client,
    base: &Url,
    url: Url,
    has_token: bool,
    what: &str,
) -> Result<serde_json::Value> {
    let resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {base}"))?;
    let status = resp.status();
    let body = resp.bytes().await.context("reading the server's answer")?;
    if !status.is_success() {
        let msg = error_message(&body);
        match auth_hint(status, has_token) {
            Some(hint) => anyhow::bail!("{msg} ({status}; {hint})"),
            None => anyhow::bail!("{msg} ({status})"),
        }
    }
    serde_json::from_slice(&body).with_context(|| format!("the server's {what} is not JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_checked() {
        assert_eq!(
            parse_server_url("http://127.0.0.1:8000").unwrap().as_str(),
            "http://127.0.0.1:8000/"
        );
        assert_eq!(
            parse_server_url("localhost:9000").unwrap().as_str(),
            "http://localhost:9000/"
        );
        assert!(parse_server_url("ftp://x").is_err());
        assert!(parse_server_url("http://").is_err());
        assert!(parse_server_url("").is_err());
    }

    #[test]
    fn endpoints_keep_the_base_path() {
        let base = parse_server_url("http://h:1/prefix/").unwrap();
        assert_eq!(
            endpoint(&base, &["logs"]).as_str(),
            "http://h:1/prefix/logs"
        );
        let base = parse_server_url("http://h:1").unwrap();
        assert_eq!(
            endpoint(&base, &["logs", "app:my app"]).as_str(),
            "http://h:1/logs/app:my%20app"
        );
    }

    #[test]
    fn error_messages_are_escaped() {
        assert_eq!(
            error_message(br#"{"error":" bad \u001b[2J thing "}"#),
            "bad \\x1b[2J thing"
        );
        assert_eq!(error_message(b"oops\x1b]0;x\x07"), "oops\\x1b]0;x\\x07");
        assert_eq!(error_message(b""), "");
    }

    #[test]
    fn auth_hints() {
        use reqwest::StatusCode;
        assert!(auth_hint(StatusCode::UNAUTHORIZED, false)
            .is_some_and(|h| h.contains("--token") && h.contains("SLUICE_TOKEN")));
        assert!(auth_hint(StatusCode::FORBIDDEN, true).is_some_and(|h| h.contains("refused")));
        assert_eq!(auth_hint(StatusCode::NOT_FOUND, false), None);
    }
}
