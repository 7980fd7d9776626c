//! What cf, Heroku and logspout users expect of the streams: each lifecycle
//! transition once, `types=` applying to every envelope, logspout's JSON
//! fields, `since` as RFC 3339, and JSON errors from every route.

mod common;

use bytes::Bytes;
use envelope::{Envelope, LogType};

fn log(app: &str, text: &'static str, source_type: &str) -> Envelope {
    let mut e = Envelope::log(
        common_now(),
        app,
        "0",
        Bytes::from_static(text.as_bytes()),
        LogType::Out,
    );
    e.tags.insert("app_name".into(), app.into());
    e.tags.insert("source_type".into(), source_type.into());
    e
}

fn lifecycle_event(app: &str, text: &str) -> Envelope {
    let mut e = Envelope::event(common_now(), app, "audit.app.start", text);
    e.tags.insert("app_name".into(), app.into());
    e.tags.insert("event_type".into(), "audit.app.start".into());
    e
}

fn common_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

async fn get(url: String, accept: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(url)
        .header("accept", accept)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

#[tokio::test]
async fn a_lifecycle_transition_shows_once_and_types_filter_everything() {
    let s = common::start(|_| {}).await;
    let text = "Starting app web (instance 0) with command: ./web";
    s.server
        .publish(vec![
            lifecycle_event("web", text),
            log(
                "web",
                "Starting app web (instance 0) with command: ./web",
                "API",
            ),
            log("web", "hello", "APP/PROC/WEB"),
        ])
        .await
        .expect("published");
    s.wait_for_entries(3).await;
    let (_, all) = get(
        format!("{}/logs/app:web?recent=10&follow=false", s.http),
        "*/*",
    )
    .await;
    assert_eq!(all, format!("{text}\nhello\n"));
    let (_, errs) = get(
        format!(
            "{}/logs/app:web?recent=10&follow=false&types=stderr",
            s.http
        ),
        "*/*",
    )
    .await;
    assert_eq!(errs, "", "an event is not stderr");
    let (_, events) = get(
        format!(
            "{}/logs/app:web?recent=10&follow=false&types=events",
            s.http
        ),
        "application/json",
    )
    .await;
    let lines: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 1, "{events}");
    assert_eq!(lines[0]["event"]["title"], "audit.app.start");
    assert_eq!(lines[0]["source"], "event");
}

#[tokio::test]
async fn json_streams_carry_logspout_fields() {
    let s = common::start(|_| {}).await;
    s.server
        .publish(vec![log("web", "hello world", "APP/PROC/WEB")])
        .await
        .expect("published");
    s.wait_for_entries(1).await;
    let (_, body) = get(
        format!("{}/logs?recent=1&follow=false", s.http),
        "application/json",
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(body.trim()).expect("json");
    assert_eq!(v["data"], "hello world");
    assert_eq!(v["source"], "stdout");
    assert_eq!(v["container"]["name"], "web");
    assert_eq!(v["container"]["id"], "web");
    assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(v["log"]["payload"], "aGVsbG8gd29ybGQ=");

    use futures_util::StreamExt;
    let url = format!("{}/logs?recent=1", s.http.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
    let frame = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
        .await
        .expect("a frame")
        .expect("open")
        .expect("frame");
    let v: serde_json::Value = serde_json::from_str(frame.to_text().expect("text")).expect("json");
    assert_eq!(v["data"], "hello world");
}

#[tokio::test]
async fn since_takes_rfc3339_and_every_error_is_json() {
    let s = common::start(|_| {}).await;
    s.server
        .publish(vec![log("web", "new", "APP/PROC/WEB")])
        .await
        .expect("published");
    s.wait_for_entries(1).await;
    let (status, body) = get(
        format!(
            "{}/logs?since=2020-01-01T00:00:00Z&follow=false&colors=off",
            s.http
        ),
        "*/*",
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "web|new\n"));
    let (status, body) = get(
        format!("{}/logs?since=2200-01-01T00:00:00Z&follow=false", s.http),
        "*/*",
    )
    .await;
    assert_eq!((status, body.as_str()), (200, ""));
    for (path, want) in [
        ("/logs?since=yesterday", 400),
        ("/logs?recent=many", 400),
        ("/no/such/route", 404),
        ("/api/v1/read/x?limit=0", 400),
    ] {
        let (status, body) = get(format!("{}{path}", s.http), "*/*").await;
        assert_eq!(status, want, "{path}: {body}");
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: not JSON: {body:?}"));
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {body}"
        );
    }
    let r = reqwest::Client::new()
        .delete(format!("{}/health", s.http))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 405);
    assert!(r.headers().contains_key("allow"));
    let v: serde_json::Value = r.json().await.expect("405 is JSON");
    assert!(v["error"].is_string());
}
