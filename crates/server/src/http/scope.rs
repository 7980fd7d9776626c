//! What a token may see and do (`[[auth.tokens]]`): an admin token reads
//! everything and manages every drain; an app token reads only its sources
//! (its `source_ids` and `apps`: a source id, or an app name matched
//! against the `app_name` tag) and manages only drains of those apps, never
//! file drains. A read that is not allowed answers 404, as Log Cache and
//! the RLP gateway do, so a token cannot probe which sources exist.
//!
//! [`enforce`] runs after the token check on every authenticated route:
//! admin-only routes (`/metrics`, `/routes`, formats changes, `/v1/health`,
//! `/v1/agent`)
//! are 404 for an app token, a Log Cache read or a `/v2/read` naming a
//! source outside its scope is 404, and a `/v2/read` without a source id
//! (the firehose) needs admin. Handlers that see many sources narrow what
//! they return with the request's [`Access`]: streams (their selector gets
//! the token's apps ANDed in), `/api/v1/meta`, `/v1/apps`, `POST /logs` (every
//! envelope must be the token's), and the drain API.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use envelope::{Envelope, Selector};

use super::error::ApiError;

/// What the request's token may see; set by the token check.
#[derive(Clone, Debug)]
pub enum Access {
    Admin,
    /// Source ids and app names.
    Apps(Arc<Vec<String>>),
}

impl Access {
    pub fn is_admin(&self) -> bool {
        matches!(self, Access::Admin)
    }

    /// Whether reads of this source id are allowed.
    pub fn may_read_source(&self, source_id: &str) -> bool {
        match self {
            Access::Admin => true,
            Access::Apps(list) => list.iter().any(|s| s == source_id),
        }
    }

    /// Whether an app of this name is the token's.
    pub fn may_see_app(&self, app_name: &str) -> bool {
        match self {
            Access::Admin => true,
            Access::Apps(list) => list.iter().any(|s| s == app_name),
        }
    }

    /// Whether this envelope is the token's (its source id or app name).
    pub fn may_see(&self, env: &Envelope) -> bool {
        match self {
            Access::Admin => true,
            Access::Apps(list) => {
                let app = env.tag(envelope::tags::APP_NAME);
                list.iter()
                    .any(|s| *s == env.source_id || Some(s.as_str()) == app)
            }
        }
    }

    /// Narrows a stream's selector to the token's apps (ANDed with what
    /// was asked); 404 when what was asked is none of them.
    pub fn restrict(&self, selector: &mut Selector) -> Result<(), ApiError> {
        let Access::Apps(list) = self else {
            return Ok(());
        };
        if selector.apps.is_empty() {
            selector.apps = list.as_ref().clone();
        } else {
            selector.apps.retain(|a| list.contains(a));
            if selector.apps.is_empty() {
                return Err(not_found());
            }
        }
        if selector.source_ids.iter().any(|s| !list.contains(s)) {
            return Err(not_found());
        }
        Ok(())
    }

    /// Whether a drain (its selection and URL) is the token's to see and
    /// manage: it selects only the token's apps, and is not a file drain.
    pub fn may_manage(&self, spec: &drains::DrainSpec) -> bool {
        match self {
            Access::Admin => true,
            Access::Apps(list) => {
                let named: Vec<&String> = spec.apps.iter().chain(&spec.source_ids).collect();
                // The scheme as the drain itself reads it; a URL that does
                // not parse is refused here too (it could not be made).
                let file_or_bad = drains::DrainUrl::parse(&spec.url)
                    .map_or(true, |u| u.scheme() == drains::Scheme::File);
                !named.is_empty() && named.iter().all(|n| list.contains(n)) && !file_or_bad
            }
        }
    }
}

/// The 404 every refused read gets.
pub fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not found")
}

/// Routes only an admin token may use, by path prefix and method.
fn admin_only(method: &Method, path: &str) -> bool {
    path == "/metrics"
        || path == "/v1/health"
        || path == "/v1/agent"
        || path == "/v1/cluster"
        || path == "/routes"
        || path.starts_with("/routes/")
        || (path.starts_with("/v1/formats/") && method != Method::GET)
}

pub async fn enforce(request: Request, next: Next) -> Response {
    let access = request
        .extensions()
        .get::<Access>()
        .cloned()
        .unwrap_or(Access::Admin);
    if access.is_admin() {
        return next.run(request).await;
    }
    let path = request.uri().path();
    if admin_only(request.method(), path) {
        return not_found().into_response();
    }
    if let Some(source) = path.strip_prefix("/api/v1/read/") {
        let source = percent_decode(source);
        if !access.may_read_source(&source) {
            return not_found().into_response();
        }
    }
    if path == "/v2/read" {
        let query = request.uri().query().unwrap_or("");
        if let Ok(r) = super::rlp::parse_query(query) {
            let ok = r
                .selectors
                .iter()
                .all(|s| !s.source_id.is_empty() && access.may_read_source(&s.source_id));
            if !ok {
                return not_found().into_response();
            }
        }
    }
    next.run(request).await
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(list: &[&str]) -> Access {
        Access::Apps(Arc::new(list.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn selectors_are_narrowed_to_the_token_s_apps() {
        let a = app(&["web", "api"]);
        let mut all = Selector::all();
        a.restrict(&mut all).unwrap();
        assert_eq!(all.apps, ["web", "api"]);
        let mut one = Selector {
            apps: vec!["web".into(), "db".into()],
            ..Selector::all()
        };
        a.restrict(&mut one).unwrap();
        assert_eq!(one.apps, ["web"]);
        let mut other = Selector {
            apps: vec!["db".into()],
            ..Selector::all()
        };
        assert!(a.restrict(&mut other).is_err());
        let mut by_id = Selector {
            source_ids: vec!["db".into()],
            ..Selector::all()
        };
        assert!(a.restrict(&mut by_id).is_err());
    }

    #[test]
    fn drains_of_the_token_s_apps_only_and_never_files() {
        let a = app(&["web"]);
        let spec = |url: &str, apps: &[&str]| drains::DrainSpec {
            url: url.into(),
            apps: apps.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert!(a.may_manage(&spec("syslog://h:514", &["web"])));
        assert!(!a.may_manage(&spec("syslog://h:514", &[])), "every app");
        assert!(!a.may_manage(&spec("syslog://h:514", &["web", "db"])));
        assert!(!a.may_manage(&spec("file:///tmp/x.log", &["web"])));
        assert!(!a.may_manage(&spec(" FILE:///tmp/x.log", &["web"])));
        assert_eq!(percent_decode("a%2Fb"), "a/b");
    }
}
