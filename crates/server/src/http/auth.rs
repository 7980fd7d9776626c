//! Bearer tokens for the HTTP API.
//!
//! When tokens are configured every route but `/health` wants
//! `Authorization: Bearer <token>` (the scheme is case-insensitive, RFC
//! 7235). `?token=` is accepted only where a browser cannot set a header: a
//! WebSocket upgrade and an SSE request (`Accept: text/event-stream`);
//! elsewhere a token in the URL would end up in logs and histories. An
//! admin token (`tokens`) sees everything; an app token (`[[auth.tokens]]`
//! with `source_ids`/`apps`) only its sources ([`super::scope`]).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use super::error::ApiError;
use super::scope::Access;
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

/// The token as the password of `Authorization: Basic` (the user name is
/// ignored), taken for `POST /logs` only: a Logplex-style HTTPS drain
/// (Heroku's, or `sluice agent --forward https://…`) can carry only the
/// URL's user info. Elsewhere a browser that cached such credentials could
/// be made to send them cross-site; the server never asks for them (it
/// sends no `WWW-Authenticate: Basic`), so no browser caches them unasked.
fn basic_password(request: &Request) -> Option<String> {
    use base64::Engine as _;
    if request.method() != axum::http::Method::POST || request.uri().path() != "/logs" {
        return None;
    }
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let (_, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    (!password.is_empty()).then(|| password.to_owned())
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

/// Checks the token and records what it may see ([`Access`]) for the
/// routes and handlers after it.
pub async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if state.tokens.is_empty() && state.app_tokens.is_empty() {
        request.extensions_mut().insert(Access::Admin);
        return next.run(request).await;
    }
    let presented = match bearer(request.headers()) {
        Some(t) => Some(t.to_owned()),
        None if browser_stream(request.headers()) => query_token(&request),
        None => basic_password(&request),
    };
    let access = presented.and_then(|p| {
        if state.tokens.iter().any(|t| constant_time_eq(t, &p)) {
            return Some(Access::Admin);
        }
        state
            .app_tokens
            .iter()
            .find(|(t, _)| constant_time_eq(t, &p))
            .map(|(_, sources)| Access::Apps(Arc::clone(sources)))
    });
    match access {
        Some(access) => {
            request.extensions_mut().insert(access);
            next.run(request).await
        }
        None => {
            state.bus.metrics().error("unauthorized");
            ApiError::unauthorized().into_response()
        }
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
    fn basic_auth_password_only_for_posted_logs() {
        let request = |method: &str, path: &str, auth: &str| {
            axum::http::Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", auth)
                .body(axum::body::Body::empty())
                .expect("a valid request")
        };
        // "x:s3cret" and ":s3cret" and "x:"
        let (with_user, without_user, empty) =
            ("Basic eDpzM2NyZXQ=", "basic OnMzY3JldA==", "Basic eDo=");
        assert_eq!(
            basic_password(&request("POST", "/logs", with_user)).as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            basic_password(&request("POST", "/logs?x=1", without_user)).as_deref(),
            Some("s3cret")
        );
        assert_eq!(basic_password(&request("POST", "/logs", empty)), None);
        assert_eq!(basic_password(&request("GET", "/logs", with_user)), None);
        assert_eq!(
            basic_password(&request("POST", "/v1/drains", with_user)),
            None
        );
        assert_eq!(basic_password(&request("POST", "/logs", "Basic %%%")), None);
    }

    #[test]
    fn query_tokens_only_for_browser_streams() {
        assert!(browser_stream(&headers(&[("upgrade", "websocket")])));
        assert!(browser_stream(&headers(&[("accept", "text/event-stream")])));
        assert!(!browser_stream(&headers(&[("accept", "application/json")])));
    }
}
