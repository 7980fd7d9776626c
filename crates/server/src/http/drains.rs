//! `/v1/drains` and `/v1/formats`: drains and saved formats over HTTP.
//!
//! - `POST /v1/drains` with a JSON drain (`name`, `url`, optional `apps`,
//!   `source_ids`, `prefixes`, `app_glob`, `streams`, `format`) → 201 and
//!   the drain with its status; without a `name` (or with `""`) the drain
//!   gets one, `d.<8 hex>` as Logplex does, returned in the answer;
//! - `PUT /v1/drains/NAME` with the same JSON (its `name` left out or the
//!   same): a new name → 201; the same definition → 200, and a drain that
//!   is not running (FATAL, RETRYING) is restarted; a different one → the
//!   drain is replaced, 200;
//! - `POST /v1/drains/NAME/restart` (`{}`) → 200 and the drain, started
//!   again from its definition with a fresh retry schedule;
//! - `POST /v1/drains/NAME/test` (`{}`) → one test message through the
//!   drain's writer on a connection of its own: 200
//!   `{"ok": true, "detail": "delivered to HOST:PORT"}` or 502
//!   `{"error": "<what the receiver or connection said>"}`;
//! - `GET /v1/drains` → `{"drains": […]}`; `GET /v1/drains/NAME`;
//!   `DELETE /v1/drains/NAME` → 204 (409 for a standing route);
//! - `GET /v1/formats` → `{"formats": {name: template}}`;
//!   `PUT /v1/formats/NAME` with `{"template": "…"}` (or the template as
//!   plain text) → 204; `DELETE /v1/formats/NAME` → 204 (404 unknown, 409
//!   naming the drains that use it).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use drains::manager::{DrainError, DrainInfo, PutOutcome};
use drains::status::State as DrainState;
use drains::DrainSpec;
use serde::Deserialize;

use super::error::ApiError;
use super::scope::Access;
use super::AppState;

/// How long a restart answer waits for the drain to leave STARTING.
const SETTLE: Duration = Duration::from_secs(2);

impl From<DrainError> for ApiError {
    fn from(e: DrainError) -> Self {
        let status = match &e {
            DrainError::Spec(_)
            | DrainError::Format(_)
            | DrainError::Policy(_)
            | DrainError::Path(_)
            | DrainError::ReservedName(_) => StatusCode::BAD_REQUEST,
            DrainError::Exists(_)
            | DrainError::PerAppLimit { .. }
            | DrainError::TooMany(_)
            | DrainError::Standing(_)
            | DrainError::FormatInUse { .. } => StatusCode::CONFLICT,
            DrainError::NotFound(_) | DrainError::FormatNotFound(_) => StatusCode::NOT_FOUND,
            DrainError::TestFailed(_) => StatusCode::BAD_GATEWAY,
            DrainError::Persist(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// Parses a JSON body with a clear 400 on failure.
pub fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// The body of an action (`restart`, `test`): `{}` (or nothing).
fn empty_body(body: &[u8]) -> Result<(), ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Empty {}
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    json_body::<Empty>(body).map(|_| ())
}

/// The request's access (admin when no token is configured).
fn access_of(access: Option<Extension<Access>>) -> Access {
    access.map_or(Access::Admin, |Extension(a)| a)
}

/// 403 for a drain an app token may not create.
fn out_of_scope() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "this token manages only drains of its own apps (name them in \"apps\"), never file drains",
    )
}

/// The drain named, if the token may see it (else 404, as if it did not exist).
fn drain_in_scope(state: &AppState, access: &Access, name: &str) -> Result<DrainInfo, ApiError> {
    match state.drains.get(name) {
        Some(info) if access.may_manage(&info.spec) => Ok(info),
        Some(_) => Err(super::scope::not_found()),
        None => Err(DrainError::NotFound(name.to_owned()).into()),
    }
}

pub async fn add(
    State(state): State<AppState>,
    access: Option<Extension<Access>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec: DrainSpec = json_body(&body)?;
    if !access_of(access).may_manage(&spec) {
        return Err(out_of_scope());
    }
    let info = add_blocking(&state, spec).await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// Runs a blocking manager call (it may resolve a host and writes files
/// with fsync) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DrainError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)
}

/// Adding a drain writes its file with fsync: off the async workers.
pub async fn add_blocking(state: &AppState, spec: DrainSpec) -> Result<DrainInfo, ApiError> {
    let drains = state.drains.clone();
    blocking(move || drains.add(spec)).await
}

/// Deleting removes a file: off the async workers too.
pub async fn delete_blocking(state: &AppState, name: String) -> Result<(), ApiError> {
    let drains = state.drains.clone();
    blocking(move || drains.delete(&name)).await
}

pub async fn put(
    State(state): State<AppState>,
    access: Option<Extension<Access>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let access = access_of(access);
    if state.drains.get(&name).is_some() {
        drain_in_scope(&state, &access, &name)?;
    }
    let mut spec: DrainSpec = json_body(&body)?;
    if !access.may_manage(&spec) {
        return Err(out_of_scope());
    }
    if !spec.name.is_empty() && spec.name != name {
        return Err(ApiError::bad_request(format!(
            "the body names drain {:?} but the path {name:?}; leave \"name\" out or make them the same",
            spec.name
        )));
    }
    spec.name = name;
    let drains = state.drains.clone();
    let outcome = blocking(move || drains.put(spec)).await?;
    let (status, info) = match outcome {
        PutOutcome::Created(info) => (StatusCode::CREATED, info),
        PutOutcome::Replaced(info) => (StatusCode::OK, info),
        PutOutcome::Unchanged(info) => {
            let stuck = matches!(
                info.status.state,
                DrainState::Fatal | DrainState::Retrying | DrainState::Stopped
            );
            let info = if stuck {
                restarted(&state, &info.spec.name).await?
            } else {
                info
            };
            (StatusCode::OK, info)
        }
    };
    Ok((status, Json(info)).into_response())
}

/// Restarts and waits (a little) for the outcome.
async fn restarted(state: &AppState, name: &str) -> Result<DrainInfo, ApiError> {
    let info = state.drains.restart(name).await?;
    Ok(state.drains.settled(name, SETTLE).await.unwrap_or(info))
}

pub async fn restart(
    State(state): State<AppState>,
    access: Option<Extension<Access>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    drain_in_scope(&state, &access_of(access), &name)?;
    empty_body(&body)?;
    let info = restarted(&state, &name).await?;
    Ok(Json(info).into_response())
}

pub async fn test(
    State(state): State<AppState>,
    access: Option<Extension<Access>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    drain_in_scope(&state, &access_of(access), &name)?;
    empty_body(&body)?;
    let detail = state.drains.test(&name).await?;
    Ok(Json(serde_json::json!({ "ok": true, "detail": detail })).into_response())
}

pub async fn list(
    State(state): State<AppState>,
    access: Option<Extension<Access>>,
) -> impl IntoResponse {
    let access = access_of(access);
    let drains: Vec<DrainInfo> = state
        .drains
        .list()
        .into_iter()
        .filter(|d| access.may_manage(&d.spec))
        .collect();
    Json(serde_json::json!({ "drains": drains }))
}

pub async fn get(
    State(state): State<AppState>,
    access: Option<Extension<Access>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let info = drain_in_scope(&state, &access_of(access), &name)?;
    Ok(Json(info).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    access: Option<Extension<Access>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    drain_in_scope(&state, &access_of(access), &name)?;
    delete_blocking(&state, name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn formats(State(state): State<AppState>) -> impl IntoResponse {
    Json(serde_json::json!({ "formats": state.drains.formats() }))
}

pub async fn set_format(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        template: String,
    }
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    let template = if is_json {
        json_body::<Body>(&body)?.template
    } else {
        String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::bad_request("the template must be UTF-8"))?
    };
    state.drains.set_format(&name, &template)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_format(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let drains = state.drains.clone();
    blocking(move || drains.delete_format(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}
