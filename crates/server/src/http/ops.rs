//! `/health` and `/metrics`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;

use super::AppState;

pub async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Prometheus text exposition; store gauges are read at scrape time.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let stats = state.store.stats();
    let m = state.bus.metrics();
    m.store_entries.set(stats.entries as i64);
    m.store_bytes.set(stats.bytes as i64);
    m.store_sources.set(stats.sources as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.encode(),
    )
}
