//! `/v1/drains` and `/v1/formats`: drains and saved formats over HTTP.
//!
//! - `POST /v1/drains` with a JSON drain (`name`, `url`, optional `apps`,
//!   `source_ids`, `prefixes`, `app_glob`, `streams`, `format`) → 201 and
//!   the drain with its status;
//! - `GET /v1/drains` → `{"drains": […]}`; `GET /v1/drains/NAME`;
//!   `DELETE /v1/drains/NAME` → 204;
//! - `GET /v1/formats` → `{"formats": {name: template}}`;
//!   `PUT /v1/formats/NAME` with `{"template": "…"}` (or the template as
//!   plain text) → 204.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use drains::manager::DrainError;
use drains::DrainSpec;
use serde::Deserialize;

use super::error::ApiError;
use super::AppState;

impl From<DrainError> for ApiError {
    fn from(e: DrainError) -> Self {
        let status = match &e {
            DrainError::Spec(_)
            | DrainError::Format(_)
            | DrainError::Policy(_)
            | DrainError::Path(_) => StatusCode::BAD_REQUEST,
            DrainError::Exists(_) | DrainError::PerAppLimit { .. } | DrainError::TooMany(_) => {
                StatusCode::CONFLICT
            }
            DrainError::NotFound(_) => StatusCode::NOT_FOUND,
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

pub async fn add(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let spec: DrainSpec = json_body(&body)?;
    let info = add_blocking(&state, spec).await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// Adding a drain writes its file with fsync: off the async workers.
pub async fn add_blocking(
    state: &AppState,
    spec: DrainSpec,
) -> Result<drains::manager::DrainInfo, ApiError> {
    let drains = state.drains.clone();
    tokio::task::spawn_blocking(move || drains.add(spec))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)
}

/// Deleting removes a file: off the async workers too.
pub async fn delete_blocking(state: &AppState, name: String) -> Result<(), ApiError> {
    let drains = state.drains.clone();
    tokio::task::spawn_blocking(move || drains.delete(&name))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)
}

pub async fn list(State(state): State<AppState>) -> impl IntoResponse {
    Json(serde_json::json!({ "drains": state.drains.list() }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let info = state.drains.get(&name).ok_or(DrainError::NotFound(name))?;
    Ok(Json(info).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
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
