//! `/v1/drains`, `/v1/formats` and logspout's `/routes` on an in-process
//! server, with a real TCP syslog receiver for delivery.

mod common;

use std::time::Duration;

use bytes::Bytes;
use envelope::{Envelope, LogType};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpListener;

async fn send(method: reqwest::Method, url: String, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Accepts one connection and yields octet-counted frames.
async fn receiver() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let mut r = BufReader::new(stream);
        loop {
            let mut len = Vec::new();
            if r.read_until(b' ', &mut len).await.unwrap_or(0) == 0 {
                return;
            }
            let Ok(n) = String::from_utf8_lossy(&len).trim().parse::<usize>() else {
                return;
            };
            let mut msg = vec![0; n];
            if r.read_exact(&mut msg).await.is_err() {
                return;
            }
            if tx.send(String::from_utf8_lossy(&msg).into_owned()).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

fn log(app: &str, text: &str, t: LogType) -> Envelope {
    let mut e = Envelope::log(sources::now_ns(), app, "0", Bytes::from(text.to_owned()), t);
    e.tags.insert("app_name".into(), app.into());
    e
}

async fn wait_state(s: &common::TestServer, name: &str, state: &str) -> Value {
    for _ in 0..200 {
        let (_, v) = send(
            reqwest::Method::GET,
            format!("{}/v1/drains/{name}", s.http),
            None,
        )
        .await;
        if v["status"]["state"] == state {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("drain {name} never reached {state}");
}

#[tokio::test]
async fn drains_crud_and_errors() {
    let s = common::start(|c| c.drains.allow_ranges = vec!["127.0.0.0/8".into()]).await;
    let (port, mut rx) = receiver().await;
    let url = format!("{}/v1/drains", s.http);
    let spec = json!({"name": "pt", "url": format!("syslog://127.0.0.1:{port}"), "apps": ["web"]});
    let (status, v) = send(reqwest::Method::POST, url.clone(), Some(spec.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["name"], "pt");
    wait_state(&s, "pt", "RUNNING").await;
    s.server.bus.publish(vec![
        log("web", "to the drain", LogType::Out),
        log("api", "not", LogType::Out),
    ]);
    let msg = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        msg.starts_with("<14>1 ") && msg.ends_with(" to the drain\n"),
        "{msg}"
    );
    let (status, v) = send(reqwest::Method::POST, url.clone(), Some(spec)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(v["error"].as_str().unwrap().contains("already exists"));
    let (status, v) = send(
        reqwest::Method::POST,
        url.clone(),
        Some(json!({"name": "x", "url": "ftp://h:1"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("unsupported drain scheme"),
        "{v}"
    );
    let (status, v) = send(
        reqwest::Method::POST,
        url.clone(),
        Some(json!({"name": "x", "url": "syslog://h:1", "colour": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("colour"), "{v}");
    let (_, v) = send(reqwest::Method::GET, url.clone(), None).await;
    assert_eq!(v["drains"].as_array().unwrap().len(), 1);
    assert!(v["drains"][0]["status"]["sent"].as_u64().unwrap() >= 1);
    let (status, _) = send(reqwest::Method::DELETE, format!("{url}/pt"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, v) = send(reqwest::Method::GET, format!("{url}/pt"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(v["error"].as_str().unwrap().contains("no drain named"));
}

#[tokio::test]
async fn saved_formats() {
    let s = common::start(|_| {}).await;
    let url = format!("{}/v1/formats", s.http);
    let (status, _) = send(
        reqwest::Method::PUT,
        format!("{url}/short"),
        Some(json!({"template": "{{.app_name}}: {{.text}}"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, v) = send(
        reqwest::Method::PUT,
        format!("{url}/bad"),
        Some(json!({"template": "{{ range .x }}"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("unsupported template action"),
        "{v}"
    );
    let (_, v) = send(reqwest::Method::GET, url, None).await;
    assert_eq!(v["formats"]["short"], "{{.app_name}}: {{.text}}");
}

#[tokio::test]
async fn logspout_routes() {
    let s = common::start(|c| c.drains.allow_ranges = vec!["127.0.0.0/8".into()]).await;
    let (port, mut rx) = receiver().await;
    let route = json!({
        "adapter": "syslog+tcp",
        "address": format!("127.0.0.1:{port}"),
        "filter_name": "we*",
        "filter_sources": ["stderr"],
        "options": {"append_tag": ".x", "structured_data": "[meta@1 team=\"core\"]"}
    });
    let (status, v) = send(
        reqwest::Method::POST,
        format!("{}/routes", s.http),
        Some(route),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 12);
    assert_eq!(v["adapter"], "syslog+tcp");
    assert_eq!(v["filter_name"], "we*");
    assert_eq!(v["options"]["append_tag"], ".x");
    wait_state(&s, &id, "RUNNING").await;
    s.server.bus.publish(vec![
        log("web", "stdout line", LogType::Out),
        log("worker", "other app", LogType::Err),
        log("web", "stderr line", LogType::Err),
    ]);
    let msg = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(msg.starts_with("<11>1 "), "{msg}");
    assert!(msg.contains(" web.x "), "append_tag: {msg}");
    assert!(
        msg.contains("[meta@1 team=\"core\"][tags@47450 "),
        "structured data: {msg}"
    );
    assert!(msg.ends_with(" stderr line\n"), "{msg}");
    let (_, list) = send(reqwest::Method::GET, format!("{}/routes", s.http), None).await;
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["address"], format!("127.0.0.1:{port}"));
    let (status, _) = send(
        reqwest::Method::DELETE,
        format!("{}/routes/{id}", s.http),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, v) = send(
        reqwest::Method::POST,
        format!("{}/routes", s.http),
        Some(json!({"adapter": "syslog", "address": "h:1", "options": {"weird": "1"}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("unsupported route option"));
}
