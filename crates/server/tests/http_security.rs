//! The HTTP API against a hostile browser page and hostile clients: Host
//! and Origin checks, JSON-only management, tokens, and the bounds on
//! headers, bodies, connections and WebSocket input. Each test fed raw
//! bytes to an in-process server on port 0.

mod common;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends raw bytes and reads the whole answer (the server closes after
/// an HTTP/1.0 request), at most 10 s.
async fn raw(addr: &str, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn addr(s: &common::TestServer) -> String {
    s.http.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn foreign_host_names_are_refused_on_loopback() {
    let s = common::start(|_| {}).await;
    let a = addr(&s);
    for path in ["/health", "/logs?follow=false", "/api/v1/meta"] {
        let answer = raw(
            &a,
            format!(
                "GET {path} HTTP/1.0\r\nHost: evil.example:{}\r\n\r\n",
                s.server.http_addr.port()
            )
            .as_bytes(),
        )
        .await;
        assert_eq!(status(&answer), 421, "{path}: {answer}");
        assert!(answer.contains("allowed_hosts"), "{answer}");
    }
    for host in [
        a.clone(),
        format!("localhost:{}", s.server.http_addr.port()),
    ] {
        let answer = raw(
            &a,
            format!("GET /health HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes(),
        )
        .await;
        assert_eq!(status(&answer), 200, "{host}: {answer}");
    }
    assert_eq!(
        s.metric("sluice_ingress_errors_total{reason=\"bad_host\"}")
            .await,
        3
    );

    let listed = common::start(|c| c.http.allowed_hosts = vec!["logs.internal".into()]).await;
    let answer = raw(
        &addr(&listed),
        b"GET /health HTTP/1.0\r\nHost: logs.internal:8000\r\n\r\n",
    )
    .await;
    assert_eq!(status(&answer), 200, "{answer}");
}

#[tokio::test]
async fn a_web_page_cannot_change_state() {
    let s = common::start(|_| {}).await;
    let a = addr(&s);
    let drain = r#"{"name":"x","url":"syslog://logs.example.com:514"}"#;
    // A "simple" cross-site form post: text/plain, foreign Origin.
    let post = |origin: &str, ct: &str, path: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.0\r\nHost: {a}\r\nOrigin: {origin}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let answer = raw(
        &a,
        post("http://evil.example", "text/plain", "/v1/drains", drain).as_bytes(),
    )
    .await;
    assert_eq!(status(&answer), 403, "{answer}");
    let answer = raw(
        &a,
        post("null", "application/json", "/v1/drains", drain).as_bytes(),
    )
    .await;
    assert_eq!(status(&answer), 403, "{answer}");
    // Same origin but not JSON.
    let own = format!("http://{a}");
    let answer = raw(&a, post(&own, "text/plain", "/v1/drains", drain).as_bytes()).await;
    assert_eq!(status(&answer), 415, "{answer}");
    let answer = raw(
        &a,
        post(&own, "application/x-www-form-urlencoded", "/routes", "{}").as_bytes(),
    )
    .await;
    assert_eq!(status(&answer), 415, "{answer}");
    // Ingest keeps its types but not foreign origins.
    let answer = raw(
        &a,
        post(
            "http://evil.example",
            "text/plain",
            "/logs?source_id=web",
            "hi",
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(status(&answer), 403, "{answer}");
    let answer = raw(
        &a,
        post(&own, "text/plain", "/logs?source_id=web", "hi").as_bytes(),
    )
    .await;
    assert_eq!(status(&answer), 200, "{answer}");
    // DELETE from a foreign origin.
    let answer = raw(
        &a,
        format!("DELETE /v1/drains/x HTTP/1.0\r\nHost: {a}\r\nOrigin: http://evil.example\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert_eq!(status(&answer), 403, "{answer}");
    // The CLI's way (no Origin, JSON) works.
    let answer = raw(&a, format!(
        "POST /v1/drains HTTP/1.0\r\nHost: {a}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{drain}",
        drain.len()
    ).as_bytes()).await;
    assert_ne!(status(&answer), 415, "{answer}");
    assert_ne!(status(&answer), 403, "{answer}");
    assert!(s.server.drains.list().len() <= 1);
}

#[tokio::test]
async fn tokens_in_the_query_only_for_browser_streams() {
    const TOKEN: &str = "0123456789abcdef0123";
    let s = common::start(|c| c.auth.tokens = vec![TOKEN.into()]).await;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{}{path}", s.http));
    let code = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        code(
            get(&format!("/api/v1/meta?token={TOKEN}"))
                .send()
                .await
                .unwrap()
        ),
        401
    );
    assert_eq!(
        code(
            get("/api/v1/meta")
                .header("authorization", format!("bearer {TOKEN}"))
                .send()
                .await
                .unwrap()
        ),
        200
    );
    assert_eq!(
        code(
            get("/api/v1/meta")
                .header("authorization", format!("BEARER {TOKEN}"))
                .send()
                .await
                .unwrap()
        ),
        200
    );
    let sse = get(&format!("/logs?follow=false&token={TOKEN}"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(code(sse), 200);
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/logs?token={TOKEN}", s.http.replace("http://", "ws://"));
    let request = url.into_client_request().unwrap();
    let ws = tokio_tungstenite::connect_async(request).await;
    assert!(ws.is_ok(), "{:?}", ws.err());
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_reading() {
    let s = common::start(|c| c.ingest.max_body = 1 << 20).await;
    let a = addr(&s);
    let started = Instant::now();
    // Announces 1 GiB and sends nothing: refused at once.
    let answer = raw(
        &a,
        format!("POST /logs?source_id=web HTTP/1.0\r\nHost: {a}\r\nContent-Type: text/plain\r\nContent-Length: 1073741824\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status(&answer), 413, "{answer}");
    assert!(answer.contains("max_body"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn stalled_bodies_time_out_and_share_a_budget() {
    let s = common::start(|c| {
        c.http.body_timeout_secs = 2;
        c.ingest.max_body = 1 << 20;
        c.ingest.max_inflight_bytes = 1 << 20;
    })
    .await;
    let a = addr(&s);
    // A body that announces the whole budget and stalls.
    let mut stalled = TcpStream::connect(&a).await.unwrap();
    stalled
        .write_all(format!("POST /logs?source_id=web HTTP/1.1\r\nHost: {a}\r\nContent-Type: text/plain\r\nContent-Length: 1048576\r\n\r\nabc").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile another body finds the budget taken: 503 + Retry-After.
    let answer = raw(
        &a,
        format!("POST /logs?source_id=web HTTP/1.0\r\nHost: {a}\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nhey").as_bytes(),
    )
    .await;
    assert_eq!(status(&answer), 503, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    // The stalled one gets 408 after the body timeout.
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stalled.read_to_end(&mut out)).await;
    let answer = String::from_utf8_lossy(&out);
    assert_eq!(status(&answer), 408, "{answer}");
    // And the budget is free again.
    let answer = raw(
        &a,
        format!("POST /logs?source_id=web HTTP/1.0\r\nHost: {a}\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nhey").as_bytes(),
    )
    .await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert_eq!(
        s.metric("sluice_ingress_errors_total{reason=\"body_timeout\"}")
            .await,
        1
    );
    assert_eq!(
        s.metric("sluice_ingress_errors_total{reason=\"inflight_full\"}")
            .await,
        1
    );
}

#[tokio::test]
async fn slow_headers_time_out_and_crowds_make_room() {
    let s = common::start(|c| {
        c.http.header_timeout_secs = 1;
        c.http.max_connections = 20;
    })
    .await;
    let a = addr(&s);
    // One header byte and then silence: closed after the header timeout.
    let mut slow = TcpStream::connect(&a).await.unwrap();
    slow.write_all(b"G").await.unwrap();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf)).await;
    assert!(closed.is_ok(), "a half-sent header was kept open");
    // 40 silent connections against a limit of 20: a real client still
    // gets in at once, because the crowd is what goes.
    let mut crowd = Vec::new();
    for _ in 0..40 {
        let mut c = TcpStream::connect(&a).await.unwrap();
        c.write_all(b"GET /he").await.unwrap();
        crowd.push(c);
    }
    let started = Instant::now();
    let answer = raw(
        &a,
        format!("GET /health HTTP/1.0\r\nHost: {a}\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert!(
        s.metric("sluice_ingress_errors_total{reason=\"evicted\"}")
            .await
            >= 20
    );
    // Evicted connections close as their tasks see it.
    let mut open = u64::MAX;
    for _ in 0..100 {
        open = s.metric("sluice_connections{protocol=\"http\"}").await;
        if (1..=20).contains(&open) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!((1..=20).contains(&open), "{open}");
}

#[tokio::test]
async fn websocket_input_is_capped() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let s = common::start(|_| {}).await;
    let url = format!("{}/logs", s.http.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let _ = ws.send(Message::Binary(vec![b'x'; 1 << 20].into())).await;
    // The server refuses the message and closes the socket.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the socket stayed open after a 1 MiB message"
    );
}

#[tokio::test]
async fn meta_pages() {
    let s = common::start(|_| {}).await;
    let a = addr(&s);
    let mut body = String::new();
    for i in 0..5 {
        body.push_str(&format!(
            "{{\"source_id\":\"s{i}\",\"log\":{{\"payload\":\"aGk=\"}}}}\n"
        ));
    }
    let answer = raw(&a, format!(
        "POST /logs HTTP/1.0\r\nHost: {a}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ).as_bytes()).await;
    assert_eq!(status(&answer), 200, "{answer}");
    s.wait_for_entries(5).await;
    let page = |q: &str| {
        let url = format!("{}/api/v1/meta?{q}", s.http);
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let first = page("limit=2").await;
    let ids: Vec<&String> = first["meta"].as_object().unwrap().keys().collect();
    assert_eq!(ids, ["s0", "s1"]);
    assert_eq!(first["next"], "s1");
    let last = page("limit=3&after=s2").await;
    let ids: Vec<&String> = last["meta"].as_object().unwrap().keys().collect();
    assert_eq!(ids, ["s3", "s4"]);
    assert!(last.get("next").is_none());
    let all = page("").await;
    assert_eq!(all["meta"].as_object().unwrap().len(), 5);
    assert_eq!(
        reqwest::get(format!("{}/api/v1/meta?limit=0", s.http))
            .await
            .unwrap()
            .status(),
        400
    );
}

#[tokio::test]
async fn identity_fields_are_bounded_at_ingest() {
    let s = common::start(|_| {}).await;
    let a = addr(&s);
    let long_id = "a".repeat(100_000);
    let tags: Vec<String> = (0..100).map(|i| format!("\"t{i:03}\":\"v\"")).collect();
    let body = format!(
        "{{\"source_id\":\"{long_id}\",\"instance_id\":\"{}\",\"tags\":{{{}}},\"log\":{{\"payload\":\"aGk=\"}}}}\n",
        "i".repeat(5000),
        tags.join(",")
    );
    let answer = raw(&a, format!(
        "POST /logs HTTP/1.0\r\nHost: {a}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ).as_bytes()).await;
    assert_eq!(status(&answer), 200, "{answer}");
    s.wait_for_entries(1).await;
    let short = "a".repeat(256);
    let got = s.read(&short, "").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].instance_id.len(), 256);
    assert_eq!(got[0].tags.len(), 64);
    assert_eq!(
        s.metric("sluice_drops_total{reason=\"too_many_tags\"}")
            .await,
        36
    );
    assert_eq!(
        s.metric("sluice_drops_total{reason=\"truncated\"}").await,
        2
    );
}
