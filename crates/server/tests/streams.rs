//! Live streams over HTTP: logspout's text, NDJSON, SSE and WebSocket,
//! filters, replay (`recent`, `since`) without duplicates, loss notices,
//! exact resumption by cursor (`after`, `Last-Event-ID`).

mod common;

use std::time::Duration;

use bytes::Bytes;
use envelope::{Envelope, LogType};
use futures_util::StreamExt;

fn log(source: &str, app: &str, text: &str, t: LogType) -> Envelope {
    let mut e = Envelope::log(
        envelope::time::now_ns(),
        source,
        "0",
        Bytes::from(text.to_owned()),
        t,
    );
    e.tags.insert("app_name".into(), app.into());
    e.tags.insert("space_name".into(), "dev".into());
    e
}

/// Opens a stream and returns a reader that collects text until `until`
/// holds (or 5 s pass).
struct StreamReader {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<Bytes>>,
    pub text: String,
    pub content_type: String,
}

impl StreamReader {
    async fn open(url: String, accept: &str) -> Self {
        let resp = reqwest::Client::new()
            .get(url)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        StreamReader {
            body: resp.bytes_stream().boxed(),
            text: String::new(),
            content_type,
        }
    }

    async fn read_until(&mut self, until: impl Fn(&str) -> bool) -> &str {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !until(&self.text) {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                _ => break,
            }
        }
        &self.text
    }

    /// Reads to the end of the response (for `follow=false`).
    async fn read_to_end(&mut self) -> &str {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, self.body.next()).await {
            self.text.push_str(&String::from_utf8_lossy(&chunk));
        }
        &self.text
    }
}

#[tokio::test]
async fn text_streams_like_logspout() {
    let s = common::start(|_| {}).await;
    let mut all = StreamReader::open(format!("{}/logs?colors=off", s.http), "*/*").await;
    let mut one = StreamReader::open(format!("{}/logs/id:web-guid", s.http), "*/*").await;
    let mut colored = StreamReader::open(format!("{}/logs/filter:wor", s.http), "*/*").await;
    let mut errs =
        StreamReader::open(format!("{}/logs/name:web?types=stderr", s.http), "*/*").await;
    s.server
        .publish(vec![
            log("web-guid", "web", "hello", LogType::Out),
            log("worker-guid", "worker", "working", LogType::Out),
            log("web-guid", "web", "oops", LogType::Err),
        ])
        .await
        .expect("published");
    assert_eq!(
        all.read_until(|t| t.lines().count() >= 3).await,
        "web|hello\nworker|working\n   web|oops\n"
    );
    assert!(all.content_type.starts_with("text/plain"));
    assert_eq!(
        one.read_until(|t| t.lines().count() >= 2).await,
        "hello\noops\n"
    );
    assert_eq!(
        colored.read_until(|t| !t.is_empty()).await,
        "\x1b[31mworker|working\x1b[0m\n"
    );
    assert_eq!(errs.read_until(|t| !t.is_empty()).await, "oops\n");
}

#[tokio::test]
async fn ndjson_and_sse_carry_envelopes() {
    let s = common::start(|_| {}).await;
    let mut nd = StreamReader::open(format!("{}/logs/app:web", s.http), "application/json").await;
    let mut sse =
        StreamReader::open(format!("{}/logs?space=dev", s.http), "text/event-stream").await;
    s.server
        .publish(vec![log("web-guid", "web", "hello", LogType::Out)])
        .await
        .expect("published");
    let text = nd.read_until(|t| t.contains('\n')).await.to_owned();
    let env = envelope::json::from_json(text.trim().as_bytes()).unwrap();
    assert_eq!(&env.as_log().unwrap().payload[..], b"hello");
    assert_eq!(nd.content_type, "application/x-ndjson");
    let cursor = serde_json::from_str::<serde_json::Value>(text.trim()).unwrap()["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        cursor, "v1.1",
        "the first entry of a new log is at position 0"
    );
    let text = sse.read_until(|t| t.contains("\n\n")).await.to_owned();
    let data = text.strip_prefix("id: v1.1\ndata: ").unwrap().trim();
    assert_eq!(
        envelope::json::from_json(data.as_bytes())
            .unwrap()
            .source_id,
        "web-guid"
    );
    // Idle streams get heartbeats (1 s in tests).
    let text = sse.read_until(|t| t.contains(": heartbeat")).await;
    assert!(text.contains(": heartbeat\n\n"));
}

#[tokio::test]
async fn websocket_gets_json_frames() {
    use tokio_tungstenite::tungstenite::Message;
    let s = common::start(|_| {}).await;
    let url = format!("{}/logs/app:web", s.http.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.server
        .publish(vec![log("web-guid", "web", "over ws", LogType::Out)])
        .await
        .expect("published");
    let frame = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return t.to_string(),
                Some(Ok(_)) => continue,
                other => panic!("websocket ended: {other:?}"),
            }
        }
    })
    .await
    .unwrap();
    let env = envelope::json::from_json(frame.as_bytes()).unwrap();
    assert_eq!(&env.as_log().unwrap().payload[..], b"over ws");
}

#[tokio::test]
async fn recent_replay_then_live_without_duplicates() {
    let s = common::start(|_| {}).await;
    let batch: Vec<_> = (0..10)
        .map(|i| log("web-guid", "web", &format!("old {i}"), LogType::Out))
        .collect();
    s.server.publish(batch).await.expect("published");
    // recent=3, follow=false: the newest three, then the response ends.
    let mut dump = StreamReader::open(
        format!("{}/logs/app:web?recent=3&follow=false", s.http),
        "*/*",
    )
    .await;
    assert_eq!(dump.read_to_end().await, "old 7\nold 8\nold 9\n");
    // since + live: everything from a time on, then new lines, once each.
    let since = s.read("web-guid", "").await[5].timestamp;
    let mut tail =
        StreamReader::open(format!("{}/logs/app:web?since={since}", s.http), "*/*").await;
    s.server
        .publish(vec![log("web-guid", "web", "new", LogType::Out)])
        .await
        .expect("published");
    let text = tail.read_until(|t| t.contains("new")).await;
    assert_eq!(text, "old 5\nold 6\nold 7\nold 8\nold 9\nnew\n");
}

#[tokio::test]
async fn a_slow_stream_is_told_its_loss() {
    let s = common::start(|c| c.router.queue_capacity = 5).await;
    let mut slow = StreamReader::open(format!("{}/logs/app:web", s.http), "*/*").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let batch: Vec<_> = (0..1000)
        .map(|i| log("web-guid", "web", &format!("line {i}"), LogType::Out))
        .collect();
    s.server.publish(batch).await.expect("published");
    let text = slow.read_until(|t| t.contains("line 999")).await.to_owned();
    let mut lines = text.lines();
    let notice = lines.next().unwrap();
    assert!(
        notice.starts_with("sluice: 995 messages dropped since "),
        "{notice}"
    );
    assert_eq!(
        lines.collect::<Vec<_>>(),
        vec!["line 995", "line 996", "line 997", "line 998", "line 999"]
    );
    assert_eq!(
        s.metric("sluice_drops_total{reason=\"queue_full\"}").await,
        995
    );
}

#[tokio::test]
async fn bad_stream_requests_are_400() {
    let s = common::start(|_| {}).await;
    for path in [
        "/logs/nonsense",
        "/logs/kind:x",
        "/logs?types=stdin",
        "/logs?after=12",
        "/logs?after=v1.x",
    ] {
        let resp = reqwest::get(format!("{}{path}", s.http)).await.unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::BAD_REQUEST, "{path}");
        let json: serde_json::Value = resp.json().await.unwrap();
        assert!(json["error"].is_string());
    }
}

/// The `cursor` of each NDJSON line, with its text.
fn cursors_and_texts(ndjson: &str) -> Vec<(String, String)> {
    ndjson
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["cursor"].as_str().unwrap_or_default().to_owned(),
                v["data"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn after_a_cursor_resumes_exactly_then_goes_live() {
    let s = common::start(|_| {}).await;
    let batch: Vec<_> = (0..20)
        .map(|i| log("web-guid", "web", &format!("line {i}"), LogType::Out))
        .collect();
    s.server.publish(batch).await.expect("published");
    // Another app's lines between do not show and do not break the cursor.
    s.server
        .publish(vec![log("db-guid", "db", "other app", LogType::Out)])
        .await
        .expect("published");
    let mut dump = StreamReader::open(
        format!("{}/logs/app:web?recent=20&follow=false", s.http),
        "application/json",
    )
    .await;
    let all = cursors_and_texts(dump.read_to_end().await);
    assert_eq!(all.len(), 20);
    let (cursor, text) = all[11].clone();
    assert_eq!(text, "line 11");
    let mut resumed = StreamReader::open(
        format!("{}/logs/app:web?after={cursor}", s.http),
        "application/json",
    )
    .await;
    s.server
        .publish(vec![log("web-guid", "web", "live", LogType::Out)])
        .await
        .expect("published");
    let got = cursors_and_texts(resumed.read_until(|t| t.contains("live")).await);
    let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    let mut want: Vec<String> = (12..20).map(|i| format!("line {i}")).collect();
    want.push("live".into());
    assert_eq!(texts, want, "everything after the cursor, once, then live");
    // follow=false ends after what is stored.
    let mut rest = StreamReader::open(
        format!("{}/logs/app:web?after={cursor}&follow=false", s.http),
        "application/json",
    )
    .await;
    assert_eq!(cursors_and_texts(rest.read_to_end().await).len(), 9);
}

#[tokio::test]
async fn sse_resumes_from_last_event_id() {
    let s = common::start(|_| {}).await;
    let batch: Vec<_> = (0..5)
        .map(|i| log("web-guid", "web", &format!("line {i}"), LogType::Out))
        .collect();
    s.server.publish(batch).await.expect("published");
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{}/logs/app:web?follow=false&recent=5", s.http))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ids: Vec<&str> = resp
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    assert_eq!(ids.len(), 5, "{resp}");
    let resp = client
        .get(format!("{}/logs/app:web?follow=false", s.http))
        .header("accept", "text/event-stream")
        .header("last-event-id", ids[2])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data: Vec<&str> = resp.lines().filter(|l| l.starts_with("data: ")).collect();
    assert_eq!(data.len(), 2, "{resp}");
    assert!(data[0].contains("line 3") && data[1].contains("line 4"));
}

#[tokio::test]
async fn a_cursor_resumes_what_a_slow_stream_lost() {
    let s = common::start(|c| c.router.queue_capacity = 5).await;
    let batch: Vec<_> = (0..1000)
        .map(|i| log("web-guid", "web", &format!("line {i}"), LogType::Out))
        .collect();
    s.server.publish(batch).await.expect("published");
    // The live queue holds 5, but a resume reads the log: all 999 after
    // the first line come, in order.
    let mut first = StreamReader::open(
        format!("{}/logs/app:web?recent=1000&follow=false", s.http),
        "application/json",
    )
    .await;
    let all = cursors_and_texts(first.read_to_end().await);
    assert_eq!(all.len(), 1000);
    let mut resumed = StreamReader::open(
        format!("{}/logs/app:web?after={}&follow=false", s.http, all[0].0),
        "application/json",
    )
    .await;
    let got = cursors_and_texts(resumed.read_to_end().await);
    assert_eq!(got.len(), 999);
    assert_eq!(got[998].1, "line 999");
    assert_eq!(
        s.metric("sluice_drops_total{reason=\"queue_full\"}").await,
        0
    );
}
