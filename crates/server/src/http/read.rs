//! Log Cache's read API: `GET /api/v1/read/{source_id}` and `/api/v1/meta`.
//!
//! Query parameters as Log Cache takes them: `start_time` (ns, inclusive,
//! default 0), `end_time` (ns, exclusive; by default no bound, unlike Log
//! Cache's "now", so entries a sender stamped slightly ahead of our clock —
//! accepted within the configured skew — are readable at once), `envelope_types`
//! (repeatable or comma-separated: LOG, COUNTER, GAUGE, TIMER, EVENT),
//! `name_filter` (a regular expression matched against a metric's name:
//! the counter's or timer's name, any of a gauge's metric names; logs and
//! events have none and are left out; at most [`MAX_NAME_FILTER`] bytes,
//! linear-time matching), `limit` (default 100, at most 1000) and
//! `descending`. A client pages forward by asking again from the last
//! timestamp + 1. Source ids may contain `/` (`/api/v1/read/a/b`).
//!
//! At most [`MAX_CONCURRENT_READS`] reads run at once; more get `429`, on
//! which cf and Log Cache clients back off (cf halves its page size).
//! `GET /api/v1/info` answers Log Cache's `{"version", "vm_uptime"}`.
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
/// The longest `name_filter` taken.
pub const MAX_NAME_FILTER: usize = 1024;
/// Reads that run at once before others get 429.
pub const MAX_CONCURRENT_READS: usize = 64;

/// `GET /api/v1/info`: Log Cache's answer, so clients that check it work.
pub async fn info(State(state): State<AppState>) -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "vm_uptime": state.started.elapsed().as_secs().to_string(),
    }))
}

pub async fn read(
    State(state): State<AppState>,
    Path(source_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let query = parse_read_query(query.as_deref().unwrap_or(""))?;
    let Ok(_slot) = state.reads.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "too many reads at once; retry with a smaller limit",
        ));
    };
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
    pub name_filter: Option<regex::Regex>,
}

impl Default for ReadQuery {
    fn default() -> Self {
        ReadQuery {
            start_time: 0,
            end_time: i64::MAX,
            envelope_types: Vec::new(),
            limit: DEFAULT_LIMIT,
            descending: false,
            name_filter: None,
        }
    }
}

impl ReadQuery {
    fn filters(&self) -> bool {
        !self.envelope_types.is_empty() || self.name_filter.is_some()
    }

    fn keeps(&self, env: &envelope::Envelope) -> bool {
        let typed = self.envelope_types.is_empty()
            || self
                .envelope_types
                .iter()
                .any(|t| env.envelope_type() == Some(*t));
        typed
            && self
                .name_filter
                .as_ref()
                .is_none_or(|re| name_matches(re, env))
    }
}

/// Whether a metric's name matches (logs and events have none).
fn name_matches(re: &regex::Regex, env: &envelope::Envelope) -> bool {
    use envelope::v2::Message;
    match &env.message {
        Some(Message::Counter(c)) => re.is_match(&c.name),
        Some(Message::Timer(t)) => re.is_match(&t.name),
        Some(Message::Gauge(g)) => g.metrics.keys().any(|n| re.is_match(n)),
        _ => false,
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
        out.extend(page.into_iter().filter(|e| q.keeps(&e.entry.envelope)));
        if out.len() >= q.limit || !full || !q.filters() {
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
            "name_filter" if !value.is_empty() => {
                if value.len() > MAX_NAME_FILTER {
                    return Err(ApiError::bad_request(format!(
                        "name_filter is longer than {MAX_NAME_FILTER} bytes"
                    )));
                }
                let re = regex::RegexBuilder::new(&value)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| ApiError::bad_request(format!("name_filter: {e}")))?;
                q.name_filter = Some(re);
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
    access: Option<axum::Extension<super::scope::Access>>,
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
            // An app token sees its own sources only.
            if access
                .as_ref()
                .is_some_and(|axum::Extension(a)| !a.may_read_source(&m.source_id))
            {
                continue;
            }
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
