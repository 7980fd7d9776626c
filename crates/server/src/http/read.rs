//! Log Cache's read API: `GET /api/v1/read/{source_id}` and `/api/v1/meta`.
//!
//! Query parameters as Log Cache takes them: `start_time` (ns, inclusive,
//! default 0), `end_time` (ns, exclusive; by default no bound, unlike Log
//! Cache's "now", so entries a sender stamped slightly ahead of our clock —
//! accepted within the configured skew — are readable at once), `envelope_types`
//! (repeatable or comma-separated: LOG, COUNTER, GAUGE, TIMER, EVENT),
//! `limit` (default 100, at most 1000) and `descending`. A client pages
//! forward by asking again from the last timestamp + 1.
//!
//! Reads go to the log's per-source index ([`sluice_log::Log::read_source`]);
//! the disk log reads the records on a blocking thread.

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;
use envelope::v2::EnvelopeType;
use sluice_log::{Log, StoredEntry};

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
    let entries = read_typed(state.log.as_ref(), &source_id, &query)
        .await
        .map_err(ApiError::unavailable)?;
    let body = envelope::json::batch_to_json(entries.iter().map(|e| &e.entry.envelope));
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}

/// A Log Cache read: `[start_time, end_time)`, oldest first (newest first
/// with `descending`), at most `limit`.
#[derive(Clone, Debug)]
pub struct ReadQuery {
    pub start_time: i64,
    pub end_time: i64,
    pub envelope_types: Vec<EnvelopeType>,
    pub limit: usize,
    pub descending: bool,
}

impl Default for ReadQuery {
    fn default() -> Self {
        ReadQuery {
            start_time: 0,
            end_time: i64::MAX,
            envelope_types: Vec::new(),
            limit: DEFAULT_LIMIT,
            descending: false,
        }
    }
}

/// Index pages read at most for one request whose type filter matches
/// little: bounds the work a sparse filter can cause.
const MAX_TYPED_PAGES: usize = 32;

/// Reads through the index, keeping only the asked envelope types: pages
/// of `limit` are read, continuing past the last timestamp, until `limit`
/// entries match or the range is done.
pub async fn read_typed(
    log: &dyn Log,
    source_id: &str,
    q: &ReadQuery,
) -> Result<Vec<StoredEntry>, sluice_log::ApiError> {
    let (mut start, mut end) = (q.start_time, q.end_time);
    let mut out = Vec::new();
    for _ in 0..MAX_TYPED_PAGES {
        let page = log
            .read_source(source_id, start, end, q.limit, q.descending)
            .await?;
        let full = page.len() == q.limit;
        let Some(last) = page.last().map(|e| e.entry.envelope.timestamp) else {
            break;
        };
        out.extend(page.into_iter().filter(|e| {
            q.envelope_types.is_empty()
                || q.envelope_types
                    .iter()
                    .any(|t| e.entry.envelope.envelope_type() == Some(*t))
        }));
        if out.len() >= q.limit || !full || q.envelope_types.is_empty() {
            break;
        }
        if q.descending {
            end = last;
        } else {
            start = last.saturating_add(1);
        }
        if start >= end {
            break;
        }
    }
    out.truncate(q.limit);
    Ok(out)
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
/// as `?after=`. Rendered on a blocking thread: with millions of sources it
/// is real work, and the async workers must keep serving `/health` and
/// ingest (the log answers `meta` off the async workers itself).
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
    let page = state
        .log
        .meta(q.after.as_deref(), limit)
        .await
        .map_err(ApiError::unavailable)?;
    let body = tokio::task::spawn_blocking(move || {
        let next = (page.len() == limit)
            .then(|| page.last().map(|m| m.source_id.clone()))
            .flatten();
        let mut meta = serde_json::Map::new();
        for m in page {
            meta.insert(
                m.source_id,
                serde_json::json!({
                    "count": m.count.to_string(),
                    // Log Cache counts what its per-source cap pushed
                    // out; the log's index does not track that.
                    "expired": "0",
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
