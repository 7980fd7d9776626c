//! Live streams, as logspout serves them: `GET /logs` and
//! `/logs/{filter:<substr>|id:<source_id>|name:<app_name>|app:<name or id>}`.
//!
//! Query parameters: `types=stdout,stderr` (log streams), `space`, `org`
//! (tags), `colors=off`, and three of sluice's own: `recent=N` replays the
//! newest N stored entries first, `since=<unix ns>` replays stored entries
//! from that time on (how `sluice logs` resumes after a reconnect), and
//! `follow=false` ends the response after the replay.
//!
//! The format follows the request: a WebSocket upgrade gets JSON text
//! frames; `Accept: text/event-stream` gets SSE; `Accept: application/json`
//! (or `x-ndjson`) gets NDJSON; anything else gets logspout's text. Output
//! is flushed per batch, with a heartbeat when idle.
//!
//! Replay and live meet without a gap or a duplicate: the subscription is
//! made before the store is read, and live entries whose per-source
//! sequence is not newer than the replayed ones are skipped.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use envelope::v2::EnvelopeType;
use envelope::{tags, Entry, LogType, Selector};
use router::{Delivery, Subscription};
use serde::Deserialize;
use tokio::sync::OwnedSemaphorePermit;

use super::error::ApiError;
use super::render::{Renderer, StreamFormat};
use super::AppState;

/// Replayed entries at most (per-source history is 100,000 by default).
pub const MAX_REPLAY: usize = 100_000;
/// Largest inbound WebSocket frame or message; streams only ever receive
/// pings, pongs and close frames.
pub const WS_MAX_INBOUND: usize = 4096;
/// Entries rendered into one chunk.
const CHUNK: usize = 1024;

#[derive(Debug, Default, Deserialize)]
pub struct StreamQuery {
    pub types: Option<String>,
    pub space: Option<String>,
    pub org: Option<String>,
    pub colors: Option<String>,
    pub recent: Option<usize>,
    /// Unix ns, or RFC 3339 (`2026-12-01T10:00:00Z`).
    pub since: Option<String>,
    pub follow: Option<String>,
}

pub async fn all(
    state: State<AppState>,
    query: Query<StreamQuery>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    serve(state, None, query, headers, ws).await
}

pub async fn filtered(
    state: State<AppState>,
    Path(spec): Path<String>,
    query: Query<StreamQuery>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    serve(state, Some(spec), query, headers, ws).await
}

async fn serve(
    State(state): State<AppState>,
    spec: Option<String>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match prepare(&state, spec.as_deref(), &query) {
        Ok(stream) => match ws.ok() {
            // sluice reads nothing from a stream's socket but control
            // frames: anything bigger is refused, not buffered.
            Some(ws) => ws
                .max_message_size(WS_MAX_INBOUND)
                .max_frame_size(WS_MAX_INBOUND)
                .on_upgrade(move |socket| websocket(socket, stream, state)),
            None => {
                let format = negotiate(&headers);
                http_stream(stream, format, &query, state.heartbeat)
            }
        },
        Err(err) => err.into_response(),
    }
}

/// A subscription with its pending replay.
struct Prepared {
    sub: Subscription,
    replay: VecDeque<Arc<Entry>>,
    /// Highest replayed sequence per source, to skip live duplicates.
    replayed: HashMap<String, u64>,
    follow: bool,
    _permit: OwnedSemaphorePermit,
}

fn prepare(state: &AppState, spec: Option<&str>, q: &StreamQuery) -> Result<Prepared, ApiError> {
    let selector = selector_for(spec, q)?;
    let permit = Arc::clone(&state.streams)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many live streams; try again later",
            )
        })?;
    let follow = !matches!(q.follow.as_deref(), Some("false" | "0" | "no"));
    let sub = state.bus.subscribe(selector.clone(), "stream");
    let mut replay = VecDeque::new();
    if q.recent.is_some() || q.since.is_some() {
        let limit = q.recent.unwrap_or(MAX_REPLAY).min(MAX_REPLAY);
        let since = q.since.as_deref().map(parse_since).transpose()?;
        let after = since.map_or(i64::MIN, |s| s.saturating_sub(1));
        replay.extend(state.store.recent(&selector, after, limit));
    }
    let mut replayed = HashMap::new();
    for e in &replay {
        let seq = replayed.entry(e.source_id().to_owned()).or_insert(0);
        *seq = (*seq).max(e.seq);
    }
    Ok(Prepared {
        sub,
        replay,
        replayed,
        follow,
        _permit: permit,
    })
}

/// `since`: Unix nanoseconds, or an RFC 3339 time.
pub fn parse_since(text: &str) -> Result<i64, ApiError> {
    let text = text.trim();
    text.parse::<i64>()
        .ok()
        .or_else(|| codec::timestamp::parse_rfc3339(text.as_bytes()))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "since must be Unix nanoseconds or an RFC 3339 time like 2026-12-01T10:00:00Z, got {text:?}"
            ))
        })
}

/// Builds the selector from the path spec and query.
pub fn selector_for(spec: Option<&str>, q: &StreamQuery) -> Result<Selector, ApiError> {
    let mut s = Selector::default();
    if let Some(spec) = spec {
        let (kind, value) = spec.split_once(':').ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown stream {spec:?}; use filter:<substr>, id:<source_id>, name:<app_name> or app:<name or id>"
            ))
        })?;
        let value = value.to_owned();
        match kind {
            "filter" => s.app_substring = Some(value),
            "id" => s.source_ids.push(value),
            "name" => s.tags.push((tags::APP_NAME.to_owned(), value)),
            "app" => s.apps.push(value),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown stream kind {kind:?}; use filter, id, name or app"
                )))
            }
        }
    }
    // What logspout and `cf logs` show: log lines. Other kinds only when
    // asked for, so a lifecycle transition (a log line and an event) shows
    // once.
    s.envelope_types = vec![EnvelopeType::Log];
    if let Some(types) = &q.types {
        s.envelope_types.clear();
        let mut logs = false;
        for t in types.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match t.to_ascii_lowercase().as_str() {
                "stdout" | "out" => s.log_types.push(LogType::Out),
                "stderr" | "err" => s.log_types.push(LogType::Err),
                "logs" | "log" => logs = true,
                "events" | "event" => s.envelope_types.push(EnvelopeType::Event),
                "metrics" | "metric" => s.envelope_types.extend([
                    EnvelopeType::Counter,
                    EnvelopeType::Gauge,
                    EnvelopeType::Timer,
                ]),
                "all" => {
                    s.envelope_types.clear();
                    s.log_types.clear();
                    return finish_selector(s, q);
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown type {other:?}; use stdout, stderr, logs, events, metrics or all"
                    )))
                }
            }
        }
        if logs || !s.log_types.is_empty() || s.envelope_types.is_empty() {
            s.envelope_types.push(EnvelopeType::Log);
        }
    }
    finish_selector(s, q)
}

fn finish_selector(mut s: Selector, q: &StreamQuery) -> Result<Selector, ApiError> {
    if let Some(space) = &q.space {
        s.tags.push((tags::SPACE_NAME.to_owned(), space.clone()));
    }
    if let Some(org) = &q.org {
        s.tags
            .push((tags::ORGANIZATION_NAME.to_owned(), org.clone()));
    }
    Ok(s)
}

fn negotiate(headers: &HeaderMap) -> StreamFormat {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("text/event-stream") {
        StreamFormat::Sse
    } else if accept.contains("application/json") || accept.contains("ndjson") {
        StreamFormat::NdJson
    } else {
        StreamFormat::Text
    }
}

impl Prepared {
    /// The next batch to send: replay first, then live. `None` at the end.
    /// `Some(None)` when the heartbeat interval passed with nothing to send.
    async fn next(&mut self, heartbeat: std::time::Duration) -> Option<Option<Delivery>> {
        if !self.replay.is_empty() {
            let n = self.replay.len().min(CHUNK);
            return Some(Some(Delivery {
                loss: None,
                entries: self.replay.drain(..n).collect(),
            }));
        }
        if !self.follow {
            return None;
        }
        loop {
            match tokio::time::timeout(heartbeat, self.sub.recv(CHUNK)).await {
                Err(_) => return Some(None),
                Ok(None) => return None,
                Ok(Some(mut d)) => {
                    if !self.replayed.is_empty() {
                        let replayed = &self.replayed;
                        d.entries
                            .retain(|e| replayed.get(e.source_id()).is_none_or(|seq| e.seq > *seq));
                    }
                    if d.loss.is_some() || !d.entries.is_empty() {
                        return Some(Some(d));
                    }
                }
            }
        }
    }
}

fn http_stream(
    prepared: Prepared,
    format: StreamFormat,
    q: &StreamQuery,
    heartbeat: std::time::Duration,
) -> Response {
    let colors = !matches!(q.colors.as_deref(), Some("off" | "false" | "0"));
    let prefix = !prepared.sub.selector().single_source();
    let renderer = Renderer::new(format, prefix, colors);
    let body = futures_util::stream::unfold(
        (prepared, renderer),
        move |(mut prepared, mut renderer)| async move {
            loop {
                let next = prepared.next(heartbeat).await?;
                let mut out = Vec::with_capacity(4096);
                match next {
                    None => out.extend_from_slice(renderer.heartbeat()),
                    Some(d) => {
                        if let Some(loss) = &d.loss {
                            renderer.loss(loss, &mut out);
                        }
                        for e in &d.entries {
                            renderer.entry(e, &mut out);
                        }
                    }
                }
                if !out.is_empty() {
                    return Some((Ok::<_, Infallible>(Bytes::from(out)), (prepared, renderer)));
                }
            }
        },
    );
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(format.content_type()),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    h.insert("x-accel-buffering", header::HeaderValue::from_static("no"));
    response
}

async fn websocket(mut socket: WebSocket, mut prepared: Prepared, state: AppState) {
    let heartbeat = state.heartbeat;
    loop {
        tokio::select! {
            next = prepared.next(heartbeat) => {
                let Some(next) = next else { break };
                let sent = match next {
                    None => socket.send(WsMessage::Ping(Bytes::new())).await,
                    Some(d) => send_delivery(&mut socket, d).await,
                };
                if sent.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(WsMessage::Close(None)).await;
}

async fn send_delivery(socket: &mut WebSocket, d: Delivery) -> Result<(), axum::Error> {
    let frame = |env: &envelope::Envelope| {
        let mut out = Vec::with_capacity(256);
        super::render::write_stream_json(env, &mut out);
        // JSON is UTF-8 by construction.
        WsMessage::Text(String::from_utf8(out).unwrap_or_default().into())
    };
    if let Some(loss) = d.loss {
        socket.send(frame(&loss.notice_envelope())).await?;
    }
    for e in &d.entries {
        socket.send(frame(&e.envelope)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_queries_build_selectors() {
        let q = StreamQuery {
            types: Some("stderr".into()),
            space: Some("dev".into()),
            ..Default::default()
        };
        let s = selector_for(Some("filter:we"), &q).unwrap();
        assert_eq!(s.app_substring.as_deref(), Some("we"));
        assert_eq!(s.log_types, vec![LogType::Err]);
        assert_eq!(s.envelope_types, vec![EnvelopeType::Log]);
        let only = |types: &str| {
            let q = StreamQuery {
                types: Some(types.into()),
                ..Default::default()
            };
            selector_for(None, &q).unwrap().envelope_types
        };
        assert_eq!(only("events"), vec![EnvelopeType::Event]);
        assert_eq!(
            only("stdout,events"),
            vec![EnvelopeType::Event, EnvelopeType::Log]
        );
        assert!(only("all").is_empty());
        assert_eq!(
            selector_for(None, &StreamQuery::default())
                .unwrap()
                .envelope_types,
            vec![EnvelopeType::Log]
        );
        assert_eq!(parse_since("5").unwrap(), 5);
        assert_eq!(parse_since("1970-01-01T00:00:01Z").unwrap(), 1_000_000_000);
        assert!(parse_since("yesterday").is_err());
        assert_eq!(s.tags, vec![("space_name".to_owned(), "dev".to_owned())]);
        assert!(selector_for(Some("bogus"), &q).is_err());
        assert!(selector_for(Some("x:y"), &q).is_err());
        let bad = StreamQuery {
            types: Some("stdin".into()),
            ..Default::default()
        };
        assert!(selector_for(None, &bad).is_err());
    }
}
