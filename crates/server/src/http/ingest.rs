//! `POST /logs`: HTTP ingest of logplex-1, NDJSON and text bodies.
//!
//! The body is read up to `max_body` (413 beyond), decoded whole (400 with
//! the place of the first error), then appended to the log as one batch.
//! The answer, `{"accepted": N}`, comes once the log has it; a log that
//! refuses it (a full disk) makes it a 503.

use axum::body::{to_bytes, Body};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use sources::http_body::{BodyError, BodyKind, TextParams};

use super::error::ApiError;
use super::scope::Access;
use super::AppState;

pub async fn post_logs(
    State(state): State<AppState>,
    access: Option<Extension<Access>>,
    Query(params): Query<TextParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let metrics = &state.ingest.metrics;
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let kind = BodyKind::from_content_type(content_type).ok_or_else(|| {
        let err = BodyError::UnsupportedType(content_type.unwrap_or_default().to_owned());
        metrics.error(err.reason());
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, err.to_string())
    })?;
    let max = state.ingest.limits.max_body;
    let body = to_bytes(body, max).await.map_err(|_| {
        metrics.error("too_large");
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body exceeds {max} bytes"),
        )
    })?;
    let now = envelope::time::now_ns();
    let size = body.len() as u64;
    let (protocol, decoded) = match kind {
        BodyKind::Logplex => {
            let count = headers
                .get("logplex-msg-count")
                .and_then(|v| v.to_str().ok());
            (
                "http_logplex",
                state.ingest.decode_logplex(body, count, now),
            )
        }
        BodyKind::NdJson => ("http_ndjson", state.ingest.decode_ndjson(&body, now)),
        BodyKind::Text => (
            "http_text",
            Ok(state.ingest.decode_text(&body, &params, now)),
        ),
    };
    let envelopes = decoded.map_err(|err| {
        metrics.error(err.reason());
        ApiError::bad_request(err.to_string())
    })?;
    // An app token writes only its own sources.
    if let Some(Extension(access)) = &access {
        if let Some(e) = envelopes.iter().find(|e| !access.may_see(e)) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("this token may not write source {:?}", e.source_id),
            ));
        }
    }
    let accepted = envelopes.len();
    metrics
        .ingress_counters(protocol)
        .record(accepted as u64, size);
    // Answered once the log has the batch: acknowledged means stored.
    state
        .ingest
        .publish(envelopes)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Json(serde_json::json!({ "accepted": accepted })))
}
