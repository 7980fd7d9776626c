//! Bearer tokens for the HTTP API.
//!
//! When tokens are configured every route but `/health` wants
//! `Authorization: Bearer <token>` (the scheme is case-insensitive, RFC
//! 7235). `?token=` is accepted only where a browser cannot set a header: a
//! WebSocket upgrade and an SSE request (`Accept: text/event-stream`);
//! elsewhere a token in the URL would end up in logs and histories.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;

/// The token in `Authorization: Bearer <t>`, any case of the scheme.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Whether the request is one a browser cannot add headers to.
fn browser_stream(headers: &HeaderMap) -> bool {
    let has = |name, want: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains(want))
    };
    has(header::UPGRADE, "websocket") || has(header::ACCEPT, "text/event-stream")
}

fn query_token(request: &Request) -> Option<String> {
    let query = request.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.tokens.is_empty() {
        return next.run(request).await;
    }
    let presented = match bearer(request.headers()) {
        Some(t) => Some(t.to_owned()),
        None if browser_stream(request.headers()) => query_token(&request),
        None => None,
    };
    let ok = presented.is_some_and(|p| state.tokens.iter().any(|t| constant_time_eq(t, &p)));
    if ok {
        next.run(request).await
    } else {
        state.bus.metrics().error("unauthorized");
        ApiError::unauthorized().into_response()
    }
}

/// Compares without an early exit, so timing does not leak the token.
fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for v in ["Bearer abc", "bearer abc", "BEARER  abc "] {
            assert_eq!(
                bearer(&headers(&[("authorization", v)])),
                Some("abc"),
                "{v}"
            );
        }
        assert_eq!(bearer(&headers(&[("authorization", "Basic abc")])), None);
        assert_eq!(bearer(&headers(&[("authorization", "Bearer")])), None);
    }

    #[test]
    fn query_tokens_only_for_browser_streams() {
        assert!(browser_stream(&headers(&[("upgrade", "websocket")])));
        assert!(browser_stream(&headers(&[("accept", "text/event-stream")])));
        assert!(!browser_stream(&headers(&[("accept", "application/json")])));
    }
}
