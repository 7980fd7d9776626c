//! Log Cache's read API: `GET /api/v1/read/{source_id}` and `/api/v1/meta`.
//!
//! Query parameters as Log Cache takes them: `start_time` (ns, inclusive,
//! default 0), `end_time` (ns, exclusive; by default no bound, unlike Log
//! Cache's "now", so entries a sender stamped slightly ahead of our clock —
//! accepted within the configured skew — are readable at once), `envelope_types`
//! (repeatable or comma-separated: LOG, COUNTER, GAUGE, TIMER, EVENT),
//! `limit` (default 100, at most 1000) and `descending`. A client pages
//! forward by asking again from the last timestamp + 1.

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;
use envelope::v2::EnvelopeType;
use store::ReadQuery;

use super::error::ApiError;
use super::AppState;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

pub async fn read(
    State(state): State<AppState>,
    Path(source_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let query = parse_read_query(query.as_deref().unwrap_or(""))?;
    let entries = state.store.read(&source_id, &query);
    let body = envelope::json::batch_to_json(entries.iter().map(|e| &e.envelope));
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}

pub fn parse_read_query(raw: &str) -> Result<ReadQuery, ApiError> {
    let mut q = ReadQuery {
        end_time: i64::MAX,
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let int = |what: &str| {
            value.trim().parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!("{what} must be an integer, got {value:?}"))
            })
        };
        match key.as_ref() {
            "start_time" => q.start_time = int("start_time")?,
            "end_time" => q.end_time = int("end_time")?,
            "limit" => {
                let limit = int("limit")?;
                if !(1..=MAX_LIMIT as i64).contains(&limit) {
                    return Err(ApiError::bad_request(format!(
                        "limit must be between 1 and {MAX_LIMIT}, got {limit}"
                    )));
                }
                q.limit = limit as usize;
            }
            "descending" => {
                q.descending = matches!(value.as_ref(), "true" | "1" | "yes" | "");
            }
            "envelope_types" | "envelope_type" => {
                for name in value.split(',').filter(|n| !n.is_empty()) {
                    let t = EnvelopeType::parse(name).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "unknown envelope type {name:?}; use LOG, COUNTER, GAUGE, TIMER or EVENT"
                        ))
                    })?;
                    if !q.envelope_types.contains(&t) {
                        q.envelope_types.push(t);
                    }
                }
            }
            _ => {}
        }
    }
    if q.end_time <= q.start_time {
        return Err(ApiError::bad_request("end_time must be after start_time"));
    }
    Ok(q)
}

/// Sources in one `/api/v1/meta` answer at most (and by default).
pub const MAX_META: usize = 100_000;

#[derive(Debug, Default, serde::Deserialize)]
pub struct MetaQuery {
    /// Sources per answer (1..=100000, default 100000).
    pub limit: Option<usize>,
    /// Only sources whose id sorts after this one (the previous `next`).
    pub after: Option<String>,
}

/// `{"meta":{"<source>":{"count":"…","expired":"…","oldestTimestamp":"…","newestTimestamp":"…"}}}`,
/// as Log Cache answers, sorted by source id, at most `limit` sources; when
/// the answer is full it also carries `"next": "<last source id>"` to pass
/// as `?after=`. Built on a blocking thread: with millions of sources it is
/// real work, and the async workers must keep serving `/health` and ingest.
pub async fn meta(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<MetaQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let limit = q.limit.unwrap_or(MAX_META);
    if !(1..=MAX_META).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_META}, got {limit}"
        )));
    }
    let store = std::sync::Arc::clone(&state.store);
    let body = tokio::task::spawn_blocking(move || {
        let page = store.meta(q.after.as_deref(), limit);
        let next = (page.len() == limit)
            .then(|| page.last().map(|m| m.source_id.clone()))
            .flatten();
        let mut meta = serde_json::Map::new();
        for m in page {
            meta.insert(
                m.source_id,
                serde_json::json!({
                    "count": m.count.to_string(),
                    "expired": m.expired.to_string(),
                    "oldestTimestamp": m.oldest_timestamp.to_string(),
                    "newestTimestamp": m.newest_timestamp.to_string(),
                }),
            );
        }
        let mut answer = serde_json::json!({ "meta": meta });
        if let Some(next) = next {
            answer["next"] = serde_json::Value::String(next);
        }
        serde_json::to_vec(&answer).unwrap_or_default()
    })
    .await
    .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_query_parsing() {
        let q = parse_read_query(
            "start_time=5&end_time=50&envelope_types=LOG&envelope_types=gauge,EVENT&limit=7&descending=true")
        .unwrap();
        assert_eq!(
            (q.start_time, q.end_time, q.limit, q.descending),
            (5, 50, 7, true)
        );
        assert_eq!(q.envelope_types.len(), 3);
        let q = parse_read_query("").unwrap();
        assert_eq!((q.start_time, q.end_time, q.limit), (0, i64::MAX, 100));
        assert!(parse_read_query("limit=1001").is_err());
        assert!(parse_read_query("start_time=abc").is_err());
        assert!(parse_read_query("envelope_types=LOGS").is_err());
    }
}
