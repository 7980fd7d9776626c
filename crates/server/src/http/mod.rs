//! The HTTP API (axum).
//!
//! | route | what |
//! | --- | --- |
//! | `GET /logs`, `/logs/{filter:…,id:…,name:…,app:…}` | live streams, logspout-style ([`stream`]) |
//! | `POST /logs` | ingest: logplex-1, NDJSON, text ([`ingest`]) |
//! | `GET /api/v1/read/{source_id}`, `GET /api/v1/meta` | Log Cache reads ([`read`]) |
//! | `GET /health`, `GET /metrics` | liveness and Prometheus metrics ([`ops`]) |
//! | `/v1/drains[/NAME]`, `/v1/formats[/NAME]` | drains and saved formats ([`drains`]) |
//! | `/routes[/ID]` | logspout's routes API over the same drains ([`routes`]) |
//!
//! Errors are JSON bodies `{"error": "…"}` with a fitting status. When auth
//! tokens are configured every route but `/health` wants
//! `Authorization: Bearer <token>` (or `?token=` for browsers' WebSockets).

pub mod drains;
pub mod error;
pub mod ingest;
pub mod ops;
pub mod read;
pub mod render;
pub mod routes;
pub mod stream;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use router::Bus;
use sources::IngestContext;
use store::RecentStore;
use tokio::sync::Semaphore;

use crate::config::Config;
use error::ApiError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub bus: Bus,
    pub store: Arc<dyn RecentStore>,
    pub ingest: IngestContext,
    pub heartbeat: Duration,
    pub streams: Arc<Semaphore>,
    pub drains: ::drains::DrainManager,
    tokens: Arc<Vec<String>>,
}

impl AppState {
    pub fn new(
        config: &Config,
        bus: Bus,
        store: Arc<dyn RecentStore>,
        ingest: IngestContext,
        drains: ::drains::DrainManager,
    ) -> Self {
        AppState {
            bus,
            store,
            ingest,
            heartbeat: Duration::from_secs(config.http.heartbeat_secs.max(1)),
            streams: Arc::new(Semaphore::new(config.http.max_streams.max(1))),
            drains,
            tokens: Arc::new(config.auth.tokens.clone()),
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/logs", get(stream::all).post(ingest::post_logs))
        .route("/logs/{spec}", get(stream::filtered))
        .route("/api/v1/read/{source_id}", get(read::read))
        .route("/api/v1/meta", get(read::meta))
        .route("/metrics", get(ops::metrics))
        .route("/v1/drains", get(drains::list).post(drains::add))
        .route("/v1/drains/{name}", get(drains::get).delete(drains::delete))
        .route("/v1/formats", get(drains::formats))
        .route("/v1/formats/{name}", axum::routing::put(drains::set_format))
        .route("/routes", get(routes::list).post(routes::add))
        .route("/routes/{id}", get(routes::get).delete(routes::delete))
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .route("/health", get(ops::health))
        .with_state(state)
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.tokens.is_empty() {
        return next.run(request).await;
    }
    let bearer = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let from_query = request.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    let presented = bearer.or(from_query);
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
