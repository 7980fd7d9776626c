//! `GET /v2/read`: the firehose over HTTP, as Loggregator's RLP gateway
//! serves it, so its clients (go-loggregator's `RLPGatewayClient`, the cf
//! CLI's log streaming) work unchanged.
//!
//! The query selects as the gateway's does: any of `log`, `counter`,
//! `gauge`, `timer`, `event` (flags; at least one), `counter.name=N`,
//! `gauge.name=a,b` (repeatable or comma-separated), `source_id=…`
//! (repeatable; none: every source), `shard_id`, `deterministic_name`. One
//! selector per source and type goes to the same egress as gRPC
//! (`grpc::EgressService`: shard groups span both). The answer is
//! `text/event-stream`: `data: <EnvelopeBatch JSON>` per batch (int64 as
//! strings, payloads base64), `event: heartbeat` after `[http]
//! heartbeat_secs` without data, and `event: closing` before the stream
//! ends at `[http] stream_timeout_secs`. Errors are JSON with the
//! gateway's names: `{"error": "empty_query", "message": "…"}`.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use grpc::messages::{
    CounterSelector, EgressBatchRequest, EventSelector, GaugeSelector, LogSelector, Selector,
    SelectorMessage, TimerSelector,
};

use super::AppState;

/// A `/v2/read` error: the gateway's name and message.
#[derive(Debug, PartialEq)]
pub struct ReadError {
    status: StatusCode,
    name: &'static str,
    message: String,
}

impl ReadError {
    fn bad(name: &'static str, message: &str) -> Self {
        ReadError {
            status: StatusCode::BAD_REQUEST,
            name,
            message: message.to_owned(),
        }
    }
}

impl IntoResponse for ReadError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.name, "message": self.message});
        (self.status, Json(body)).into_response()
    }
}

/// Turns the query into an egress request (the gateway's rules).
pub fn parse_query(query: &str) -> Result<EgressBatchRequest, ReadError> {
    if query.trim().is_empty() {
        return Err(ReadError::bad("empty_query", "query cannot be empty"));
    }
    let mut request = EgressBatchRequest {
        use_preferred_tags: true,
        ..Default::default()
    };
    let mut sources: Vec<String> = Vec::new();
    let mut kinds: Vec<SelectorMessage> = Vec::new();
    let (mut counter_names, mut gauge_names) = (Vec::new(), Vec::new());
    let (mut counter, mut gauge) = (false, false);
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "log" => kinds.push(SelectorMessage::Log(LogSelector {})),
            "timer" => kinds.push(SelectorMessage::Timer(TimerSelector {})),
            "event" => kinds.push(SelectorMessage::Event(EventSelector {})),
            "counter" => counter = true,
            "gauge" => gauge = true,
            "counter.name" if value.is_empty() => {
                return Err(ReadError::bad(
                    "counter_name_empty",
                    "counter.name cannot be empty",
                ))
            }
            "counter.name" => counter_names.push(value.into_owned()),
            "gauge.name" => {
                let names: Vec<String> = value
                    .split(',')
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect();
                if names.is_empty() {
                    return Err(ReadError::bad(
                        "gauge_name_empty",
                        "gauge.name cannot be empty",
                    ));
                }
                gauge_names.extend(names);
            }
            "source_id" if !value.is_empty() => sources.push(value.into_owned()),
            "shard_id" => request.shard_id = value.into_owned(),
            "deterministic_name" => request.deterministic_name = value.into_owned(),
            _ => {}
        }
    }
    if counter || !counter_names.is_empty() {
        if counter_names.is_empty() {
            counter_names.push(String::new());
        }
        for name in counter_names {
            kinds.push(SelectorMessage::Counter(CounterSelector { name }));
        }
    }
    if gauge || !gauge_names.is_empty() {
        kinds.push(SelectorMessage::Gauge(GaugeSelector { names: gauge_names }));
    }
    if kinds.is_empty() {
        return Err(ReadError::bad(
            "missing_envelope_type",
            "query must provide at least one envelope type",
        ));
    }
    if sources.is_empty() {
        sources.push(String::new());
    }
    for source_id in &sources {
        for kind in &kinds {
            request.selectors.push(Selector {
                source_id: source_id.clone(),
                message: Some(kind.clone()),
            });
        }
    }
    Ok(request)
}

pub async fn read(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let request = match parse_query(query.as_deref().unwrap_or("")) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let stream = match state.egress.open(&request) {
        Ok(s) => s,
        Err(status) if status.code() == tonic::Code::ResourceExhausted => {
            let e = ReadError {
                status: StatusCode::TOO_MANY_REQUESTS,
                name: "too_many_streams",
                message: status.message().to_owned(),
            };
            return e.into_response();
        }
        Err(status) => return ReadError::bad("bad_request", status.message()).into_response(),
    };
    let deadline = tokio::time::Instant::now() + state.stream_timeout;
    let heartbeat = state.heartbeat;
    let body = futures_util::stream::unfold(Some(stream), move |stream| async move {
        let mut stream = stream?;
        let frame = tokio::select! {
            next = tokio::time::timeout(heartbeat, stream.next(grpc::egress::MAX_BATCH)) => match next {
                Ok(Some(batch)) => data_frame(&batch),
                Ok(None) => return None,
                Err(_) => heartbeat_frame(),
            },
            () = tokio::time::sleep_until(deadline) => {
                let closing = Bytes::from_static(b"event: closing\ndata: closing due to stream timeout\n\n");
                return Some((Ok::<_, Infallible>(closing), None));
            }
        };
        Some((Ok(frame), Some(stream)))
    });
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    h.insert("x-accel-buffering", header::HeaderValue::from_static("no"));
    response
}

fn data_frame(batch: &[envelope::Envelope]) -> Bytes {
    let json = envelope::json::batch_to_json(batch);
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

fn heartbeat_frame() -> Bytes {
    let secs = envelope::time::now_ns() / 1_000_000_000;
    Bytes::from(format!("event: heartbeat\ndata: {secs}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_s_query_rules() {
        assert_eq!(parse_query("").unwrap_err().name, "empty_query");
        assert_eq!(
            parse_query("source_id=a").unwrap_err().name,
            "missing_envelope_type"
        );
        assert_eq!(
            parse_query("counter.name=").unwrap_err().name,
            "counter_name_empty"
        );
        let r = parse_query("log&counter.name=hits&source_id=a&source_id=b&shard_id=s").unwrap();
        assert_eq!(r.shard_id, "s");
        assert_eq!(r.selectors.len(), 4, "{:?}", r.selectors);
        assert!(r.use_preferred_tags);
        let r = parse_query("gauge.name=cpu,mem&gauge.name=disk").unwrap();
        match &r.selectors[0].message {
            Some(SelectorMessage::Gauge(g)) => assert_eq!(g.names, ["cpu", "mem", "disk"]),
            other => panic!("{other:?}"),
        }
        assert_eq!(r.selectors[0].source_id, "", "no source: every source");
    }
}
