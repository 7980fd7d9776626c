//! The web console at `GET /`: one HTML page, one script, one stylesheet,
//! embedded in the binary (`include_bytes!`; nothing to install or build).
//! It speaks only the public HTTP API, with the tab's token when the
//! server wants one, so everything it does can be done with curl.
//!
//! The script and stylesheet are served under names that carry a hash of
//! their content (`/console/console.<hash>.js`), cached for a year as
//! immutable; the page itself is `no-cache`, so a new binary's assets are
//! fetched at once. Every console response carries a strict
//! `Content-Security-Policy`: no inline script or style, no other origin,
//! no framing. The assets are plain files with no bundler or npm
//! dependency: to change the console, edit `console/*` and rebuild.
//!
//! The routes sit outside the token check (the page must load to ask for
//! a token) but inside the Host guard, like every route.

use std::hash::{Hash as _, Hasher as _};
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &[u8] = include_bytes!("console/console.js");
const STYLE: &[u8] = include_bytes!("console/console.css");

/// The policy of every console response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

struct Assets {
    index: String,
    script_name: String,
    style_name: String,
}

fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let script_name = hashed_name("console", "js", SCRIPT);
        let style_name = hashed_name("console", "css", STYLE);
        Assets {
            index: INDEX
                .replace("{{JS}}", &script_name)
                .replace("{{CSS}}", &style_name),
            script_name,
            style_name,
        }
    })
}

/// `stem.<16 hex digits of the content's hash>.ext`: a new content is a
/// new name (the hash is only compared within one binary's lifetime).
fn hashed_name(stem: &str, ext: &str, content: &[u8]) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    content.hash(&mut hasher);
    format!("{stem}.{:016x}.{ext}", hasher.finish())
}

fn with_headers(
    content_type: &'static str,
    cache: &'static str,
    body: impl IntoResponse,
) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /`: the page.
pub async fn index() -> Response {
    with_headers(
        "text/html; charset=utf-8",
        "no-cache",
        assets().index.clone(),
    )
}

/// `GET /console/{name}`: the script or the stylesheet, by hashed name.
pub async fn asset(Path(name): Path<String>) -> Response {
    const IMMUTABLE: &str = "public, max-age=31536000, immutable";
    let a = assets();
    if name == a.script_name {
        with_headers("text/javascript; charset=utf-8", IMMUTABLE, SCRIPT)
    } else if name == a.style_name {
        with_headers("text/css; charset=utf-8", IMMUTABLE, STYLE)
    } else {
        with_headers(
            "application/json",
            "no-cache",
            (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({ "error": format!("no console asset {name:?}") })),
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_hashed_assets() {
        let a = assets();
        assert!(a.script_name.starts_with("console.") && a.script_name.ends_with(".js"));
        assert!(a.index.contains(&format!("/console/{}", a.script_name)));
        assert!(a.index.contains(&format!("/console/{}", a.style_name)));
        assert!(!a.index.contains("{{"), "every placeholder replaced");
        assert_ne!(
            hashed_name("x", "js", b"one"),
            hashed_name("x", "js", b"two")
        );
    }

    #[test]
    fn the_script_never_writes_html() {
        let script = std::str::from_utf8(SCRIPT).expect("UTF-8");
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!script.contains(sink), "console.js uses {sink}");
        }
    }
}
