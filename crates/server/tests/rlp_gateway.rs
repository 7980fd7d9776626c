//! `GET /v2/read`, the RLP gateway's firehose over SSE: frames parsed as
//! go-loggregator's RLP gateway client parses them (`data:` lines holding
//! an `EnvelopeBatch` in JSON), heartbeats when idle, `event: closing` at
//! the stream timeout, and the gateway's error names.

mod common;

use std::time::Duration;

use bytes::Bytes;
use envelope::v2::{Counter, Envelope, Gauge, GaugeValue, Message};
use envelope::LogType;
use futures_util::StreamExt as _;

fn log(source: &str, text: &str) -> Envelope {
    Envelope::log(
        envelope::time::now_ns(),
        source,
        "0",
        Bytes::from(text.to_owned()),
        LogType::Out,
    )
}

fn counter(source: &str, name: &str) -> Envelope {
    let mut e = log(source, "");
    e.message = Some(Message::Counter(Counter {
        name: name.into(),
        delta: 1,
        total: 7,
    }));
    e
}

fn gauge(source: &str) -> Envelope {
    let mut e = log(source, "");
    let value = GaugeValue {
        unit: "percentage".into(),
        value: 1.5,
    };
    e.message = Some(Message::Gauge(Gauge {
        metrics: [("cpu".to_owned(), value)].into(),
    }));
    e
}

#[tokio::test]
async fn errors_carry_the_gateway_s_names() {
    let s = common::start(|_| {}).await;
    for (query, name) in [
        ("", "empty_query"),
        ("?source_id=a", "missing_envelope_type"),
        ("?counter.name=", "counter_name_empty"),
    ] {
        let resp = reqwest::get(format!("{}/v2/read{query}", s.http))
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{query}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], name, "{query}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn selected_batches_then_heartbeats_then_closing() {
    let s = common::start(|c| {
        c.http.heartbeat_secs = 1;
        c.http.stream_timeout_secs = 3;
    })
    .await;
    let resp = reqwest::Client::new()
        .get(format!("{}/v2/read?log&counter&source_id=rlp", s.http))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let opened = tokio::time::Instant::now();
    let mut body = resp.bytes_stream();
    // The stream is open once the headers came: publish.
    s.server
        .publish(vec![
            log("rlp", "one"),
            counter("rlp", "requests"),
            gauge("rlp"),
            log("other", "not selected"),
            log("rlp", "two"),
        ])
        .await
        .expect("published");

    let mut text = String::new();
    let deadline = opened + Duration::from_secs(10);
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, body.next()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let ended = opened.elapsed();
    assert!(
        ended >= Duration::from_secs(3) && ended < Duration::from_secs(8),
        "ended after {ended:?}"
    );

    // As the RLP client reads it: events split by blank lines, `data:`
    // lines unmarshalled as an EnvelopeBatch.
    let mut got = Vec::new();
    let mut events = Vec::new();
    for event in text.split("\n\n").filter(|e| !e.is_empty()) {
        let mut name = "message";
        for line in event.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = n;
            } else if let Some(data) = line.strip_prefix("data: ") {
                if name == "message" {
                    let batch = envelope::json::batch_from_json(data.as_bytes())
                        .unwrap_or_else(|e| panic!("{e}: {data}"));
                    got.extend(batch.batch);
                }
            }
        }
        events.push(name.to_owned());
    }
    let summary: Vec<(String, String)> = got
        .iter()
        .map(|e| {
            let what = match &e.message {
                Some(Message::Log(l)) => String::from_utf8_lossy(&l.payload).into_owned(),
                Some(Message::Counter(c)) => format!("counter {}", c.name),
                other => format!("{other:?}"),
            };
            (e.source_id.clone(), what)
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("rlp".into(), "one".into()),
            ("rlp".into(), "counter requests".into()),
            ("rlp".into(), "two".into())
        ]
    );
    assert!(
        events.iter().any(|e| e == "heartbeat"),
        "idle: heartbeats: {events:?}"
    );
    assert_eq!(events.last().map(String::as_str), Some("closing"), "{text}");
    assert!(
        text.contains("\"timestamp\":\""),
        "int64 as strings: {text}"
    );
}

/// `/v2/read` and gRPC `BatchedReceiver` with the same `shard_id` and
/// selectors are one shard group: each envelope reaches one of them, and
/// together they see all.
#[tokio::test]
async fn a_shard_group_spans_the_gateway_and_grpc() {
    use grpc::ingress_server_glue::egress_client::EgressClient;
    use grpc::messages::{EgressBatchRequest, LogSelector, Selector, SelectorMessage};

    let s = common::start(|_| {}).await;
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/v2/read?log&source_id=split&shard_id=both",
            s.http
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut sse = resp.bytes_stream();
    let grpc_addr = s.server.grpc_addr.expect("gRPC listens");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc_addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("gRPC connects");
    let mut client = EgressClient::new(channel);
    let mut stream = client
        .batched_receiver(EgressBatchRequest {
            shard_id: "both".into(),
            legacy_selector: None,
            use_preferred_tags: true,
            selectors: vec![Selector {
                source_id: "split".into(),
                message: Some(SelectorMessage::Log(LogSelector {})),
            }],
            deterministic_name: String::new(),
        })
        .await
        .expect("BatchedReceiver")
        .into_inner();
    // Both answered, so both joined the group: publish.
    let lines: Vec<Envelope> = (0..200).map(|i| log("split", &format!("{i}"))).collect();
    s.server.publish(lines).await.expect("published");

    let number = |e: &Envelope| -> u32 {
        match &e.message {
            Some(Message::Log(l)) => String::from_utf8_lossy(&l.payload).parse().expect("n"),
            other => panic!("not a log: {other:?}"),
        }
    };
    let mut over_grpc = Vec::new();
    let mut over_sse = Vec::new();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while over_grpc.len() + over_sse.len() < 200 {
        tokio::select! {
            m = stream.message() => {
                over_grpc.extend(m.expect("stream").expect("open").batch.iter().map(number));
            }
            Some(chunk) = sse.next() => {
                let chunk: Bytes = chunk.expect("the SSE stream");
                text.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = text.find("\n\n") {
                    let event: String = text.drain(..end + 2).collect();
                    if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                        let batch = envelope::json::batch_from_json(data.as_bytes()).expect("batch");
                        over_sse.extend(batch.batch.iter().map(number));
                    }
                }
            }
            () = tokio::time::sleep_until(deadline) => panic!(
                "only {} over gRPC and {} over SSE", over_grpc.len(), over_sse.len()
            ),
        }
    }
    assert!(!over_grpc.is_empty() && !over_sse.is_empty(), "both busy");
    let mut all: Vec<u32> = over_grpc.iter().chain(&over_sse).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..200).collect::<Vec<u32>>(), "disjoint and complete");
}
