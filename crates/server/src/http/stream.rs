//! Live streams, as logspout serves them: `GET /logs` and
//! `/logs/{filter:<substr>|id:<source_id>|name:<app_name>|app:<name or id>}`.
//!
//! Query parameters: `types=stdout,stderr` (log streams), `space`, `org`
//! (tags), `colors=off`, and sluice's own: `recent=N` replays the newest N
//! stored entries first, `since=<unix ns or RFC 3339>` replays stored
//! entries from that time on, `after=<cursor>` (or SSE's `Last-Event-ID`
//! header) replays every stored entry after that cursor and then goes on
//! live — how `sluice logs` and a browser resume exactly after a
//! reconnect — and `follow=false` ends the response after the replay.
//!
//! The format follows the request: a WebSocket upgrade gets JSON text
//! frames; `Accept: text/event-stream` gets SSE; `Accept: application/json`
//! (or `x-ndjson`) gets NDJSON; anything else gets logspout's text. Output
//! is flushed per batch, with a heartbeat when idle.
//!
//! Every entry carries its place in the log (its `seq` is its position), so
//! replay and live meet without a gap or a duplicate: a replay reads the log
//! up to its end, then subscribes, reads once more up to the end `E` (what
//! was appended meanwhile), and from then on takes live entries at `E` and
//! after. Live entries are at-most-once: a stream that cannot keep up loses
//! its oldest and is told in-band; a resume by cursor after that reads what
//! was lost from the log.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use envelope::v2::EnvelopeType;
use envelope::{tags, Entry, LogType, Selector};
use router::{Delivery, Loss, Subscription};
use serde::Deserialize;
use sluice_log::Cursor;
use tokio::sync::OwnedSemaphorePermit;

use super::error::ApiError;
use super::render::{Renderer, StreamFormat};
use super::scope::Access;
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
    /// A cursor (`v1.<N>`) from a previous stream: replay from there.
    pub after: Option<String>,
    pub follow: Option<String>,
}

pub async fn all(
    state: State<AppState>,
    access: Option<Extension<Access>>,
    query: Query<StreamQuery>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    serve(state, access, None, query, headers, ws).await
}

pub async fn filtered(
    state: State<AppState>,
    access: Option<Extension<Access>>,
    Path(spec): Path<String>,
    query: Query<StreamQuery>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    serve(state, access, Some(spec), query, headers, ws).await
}

async fn serve(
    State(state): State<AppState>,
    access: Option<Extension<Access>>,
    spec: Option<String>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let access = access.map_or(Access::Admin, |Extension(a)| a);
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    match prepare(&state, &access, spec.as_deref(), &query, resume).await {
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

/// One stream's state: what is left to replay from the log, then live.
struct Prepared {
    state: AppState,
    selector: Selector,
    /// Replayed entries not yet sent (`recent`, `since`).
    replay: VecDeque<Arc<Entry>>,
    /// Reading the log from here until caught up (`after`, and after a
    /// `recent` replay what came meanwhile).
    catch_up: Option<Cursor>,
    /// Entries at or below this position were replayed already.
    replayed_to: Option<u64>,
    /// Live entries below this position were read from the log.
    live_from: u64,
    /// Made once the replay caught up (at once for a plain tail).
    sub: Option<Subscription>,
    follow: bool,
    _permit: OwnedSemaphorePermit,
}

async fn prepare(
    state: &AppState,
    access: &Access,
    spec: Option<&str>,
    q: &StreamQuery,
    last_event_id: Option<&str>,
) -> Result<Prepared, ApiError> {
    let mut selector = selector_for(spec, q)?;
    access.restrict(&mut selector)?;
    let after = q
        .after
        .as_deref()
        .or(last_event_id)
        .map(|c| {
            c.trim().parse::<Cursor>().map_err(|e| {
                ApiError::bad_request(format!("after: {e} (use the cursor of a streamed entry)"))
            })
        })
        .transpose()?;
    let since = q.since.as_deref().map(parse_since).transpose()?;
    let permit = Arc::clone(&state.streams)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many live streams; try again later",
            )
        })?;
    let follow = !matches!(q.follow.as_deref(), Some("false" | "0" | "no"));
    let mut p = Prepared {
        state: state.clone(),
        selector,
        replay: VecDeque::new(),
        catch_up: after,
        replayed_to: None,
        live_from: 0,
        sub: None,
        follow,
        _permit: permit,
    };
    if p.catch_up.is_none() && (q.recent.is_some() || since.is_some()) {
        let limit = q.recent.unwrap_or(MAX_REPLAY).min(MAX_REPLAY);
        let after_ns = since.map_or(i64::MIN, |s| s.saturating_sub(1));
        // Entries appended from `end` on may or may not be in the replay:
        // the catch-up reads them and skips those that were.
        let log = &state.log;
        let end = log.end_cursor().await.map_err(ApiError::unavailable)?;
        let entries = log
            .recent(&p.selector, after_ns, limit)
            .await
            .map_err(ApiError::unavailable)?;
        p.replayed_to = entries.last().map(|e| e.position);
        p.replay = entries.into_iter().map(|e| e.entry).collect();
        if follow {
            p.catch_up = Some(end);
        }
    } else if p.catch_up.is_none() && follow {
        p.sub = Some(state.bus.subscribe(p.selector.clone(), "stream"));
    }
    Ok(p)
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
        while let Some(cursor) = self.catch_up {
            let d = self.read_log(cursor).await?;
            if d.loss.is_some() || !d.entries.is_empty() {
                return Some(Some(d));
            }
        }
        let sub = self.sub.as_mut()?;
        loop {
            match tokio::time::timeout(heartbeat, sub.recv(CHUNK)).await {
                Err(_) => return Some(None),
                Ok(None) => return None,
                Ok(Some(mut d)) => {
                    let from = self.live_from;
                    d.entries.retain(|e| e.seq >= from);
                    if d.loss.is_some() || !d.entries.is_empty() {
                        return Some(Some(d));
                    }
                }
            }
        }
    }

    /// One page of the catch-up from `cursor`. Once caught up, subscribes
    /// and reads once more (what came meanwhile), then hands over to live.
    /// Entries the retention removed before they were read are told as a
    /// loss. `None` when the log failed (the stream ends; its last cursor
    /// resumes it).
    async fn read_log(&mut self, cursor: Cursor) -> Option<Delivery> {
        let page = match self
            .state
            .log
            .read_from(cursor, &self.selector, CHUNK)
            .await
        {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(error = %err, "stream replay failed; ending the stream");
                self.catch_up = None;
                self.follow = false;
                self.sub = None;
                return None;
            }
        };
        let mut entries: Vec<Arc<Entry>> = page.entries.into_iter().map(|e| e.entry).collect();
        if let Some(to) = self.replayed_to {
            entries.retain(|e| e.seq > to);
        }
        self.catch_up = Some(page.next_cursor);
        if page.caught_up {
            if self.sub.is_none() && self.follow {
                self.sub = Some(self.state.bus.subscribe(self.selector.clone(), "stream"));
            } else {
                self.catch_up = None;
                self.live_from = page.next_cursor.next();
            }
        }
        let loss = (page.skipped > 0).then(|| Loss {
            count: page.skipped,
            since: entries
                .first()
                .map_or_else(envelope::time::now_ns, |e| e.timestamp()),
        });
        Some(Delivery { loss, entries })
    }
}

fn http_stream(
    prepared: Prepared,
    format: StreamFormat,
    q: &StreamQuery,
    heartbeat: std::time::Duration,
) -> Response {
    let colors = !matches!(q.colors.as_deref(), Some("off" | "false" | "0"));
    let prefix = !prepared.selector.single_source();
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
    let frame = |env: &envelope::Envelope, cursor: Option<Cursor>| {
        let mut out = Vec::with_capacity(256);
        super::render::write_stream_json(env, cursor, &mut out);
        // JSON is UTF-8 by construction.
        WsMessage::Text(String::from_utf8(out).unwrap_or_default().into())
    };
    if let Some(loss) = d.loss {
        socket.send(frame(&loss.notice_envelope(), None)).await?;
    }
    for e in &d.entries {
        socket
            .send(frame(&e.envelope, Some(Cursor::after(e.seq))))
            .await?;
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
