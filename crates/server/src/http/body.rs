//! Request bodies, bounded in size, time and memory before any handler
//! sees them.
//!
//! - a `Content-Length` over `[ingest] max_body` gets 413 before a byte of
//!   the body is read; a chunked body is cut off with 413 when it passes it;
//! - the whole body must arrive within `[http] body_timeout_secs` (408);
//! - all bodies buffered at once share `[ingest] max_inflight_bytes`; a
//!   request that would pass it gets 503 with `Retry-After: 1`, so a crowd
//!   of stalled uploads cannot take the server's memory.
//!
//! The body is read here into one buffer and handed on; the reservation is
//! held until the handler has answered (it decodes from that buffer).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use super::AppState;

/// The shared budget of buffered body bytes.
#[derive(Clone)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    pub max_body: usize,
    pub timeout: Duration,
}

impl BodyBudget {
    pub fn new(max_inflight: usize, max_body: usize, timeout: Duration) -> Self {
        let max_inflight = max_inflight.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        BodyBudget {
            bytes: Arc::new(Semaphore::new(max_inflight)),
            max_body,
            timeout,
        }
    }

    /// Reserves `n` more bytes, or says the server is busy.
    fn reserve(&self, held: &mut Option<OwnedSemaphorePermit>, n: usize) -> Result<(), ApiError> {
        if n == 0 {
            return Ok(());
        }
        let n = u32::try_from(n).map_err(|_| busy())?;
        let more = Arc::clone(&self.bytes)
            .try_acquire_many_owned(n)
            .map_err(|_| busy())?;
        match held {
            Some(p) => p.merge(more),
            None => *held = Some(more),
        }
        Ok(())
    }
}

fn busy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many request bodies in flight ([ingest] max_inflight_bytes); retry shortly",
    )
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body exceeds {max} bytes ([ingest] max_body)"),
    )
}

/// Whether the request announces a body.
fn has_body(request: &Request) -> bool {
    let h = request.headers();
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

pub async fn bounded(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !has_body(&request) {
        return next.run(request).await;
    }
    let budget = &state.bodies;
    let metrics = state.bus.metrics();
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > budget.max_body as u64) {
        metrics.error("too_large");
        return too_large(budget.max_body).into_response();
    }
    let mut held = None;
    let read = async {
        budget.reserve(&mut held, declared.unwrap_or(0) as usize)?;
        let mut reserved = declared.unwrap_or(0) as usize;
        let mut buf = BytesMut::with_capacity(reserved);
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if buf.len() + data.len() > budget.max_body {
                return Err(too_large(budget.max_body));
            }
            if buf.len() + data.len() > reserved {
                let more = buf.len() + data.len() - reserved;
                budget.reserve(&mut held, more)?;
                reserved += more;
            }
            buf.extend_from_slice(&data);
        }
        Ok::<Bytes, ApiError>(buf.freeze())
    };
    let bytes = match tokio::time::timeout(budget.timeout, read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(err)) => {
            metrics.error(match err.status {
                StatusCode::PAYLOAD_TOO_LARGE => "too_large",
                StatusCode::SERVICE_UNAVAILABLE => "inflight_full",
                _ => "bad_body",
            });
            let mut response = err.into_response();
            if response.status() == StatusCode::SERVICE_UNAVAILABLE {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            return response;
        }
        Err(_) => {
            metrics.error("body_timeout");
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s ([http] body_timeout_secs)",
                    budget.timeout.as_secs()
                ),
            )
            .into_response();
        }
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    drop(held);
    response
}
