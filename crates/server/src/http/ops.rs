//! `/health` and `/metrics`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;

use super::AppState;

pub async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Prometheus text exposition; the log's gauges are read at scrape time.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = state.bus.metrics();
    refresh_log_gauges(m, state.log.as_ref()).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.encode(),
    )
}

/// Sets the log's gauges (entries, bytes, sources) from its stats.
pub async fn refresh_log_gauges(m: &metrics::Metrics, log: &dyn sluice_log::Log) {
    if let Ok(stats) = log.stats().await {
        m.log_entries.set(clamp(stats.entries));
        m.log_bytes.set(clamp(stats.bytes));
        m.log_sources.set(clamp(stats.sources));
    }
}

/// `/v1/health`: ingress, egress and loss over the last minute and hour
/// with Loggregator's alert levels (`self_metrics`).
pub async fn health_report(State(state): State<AppState>) -> impl IntoResponse {
    let mut report = state.health.report(state.bus.metrics());
    if let Some(node) = &state.node {
        let degraded = node.degraded();
        report.cluster_degraded = Some(degraded);
        if degraded && report.level == "ok" {
            report.level = "warn";
        }
    }
    Json(report)
}

/// `/v1/agent`: what `sluice agent` follows (containers with positions,
/// lines, bytes, last error); 404 on a plain server.
pub async fn agent_report(
    State(state): State<AppState>,
    uri: axum::http::Uri,
) -> axum::response::Response {
    match state.agent_status.get() {
        Some(report) => Json(report()).into_response(),
        None => super::error::not_found(uri).await.into_response(),
    }
}

/// `/v1/cluster`: the nodes, the stream and how this node sees them
/// (`sluice cluster status`); 404 on a server that is not a cluster node.
pub async fn cluster_report(
    State(state): State<AppState>,
    uri: axum::http::Uri,
) -> axum::response::Response {
    match &state.node {
        Some(node) => Json(node.status().await).into_response(),
        None => super::error::not_found(uri).await.into_response(),
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
