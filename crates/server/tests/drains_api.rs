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

#[tokio::test]
async fn secrets_in_urls_are_never_shown() {
    let s = common::start(|c| c.drains.allow_ranges = vec!["127.0.0.0/8".into()]).await;
    let url = format!("{}/v1/drains", s.http);
    let spec = json!({
        "name": "withsecrets",
        "url": "https://user:hunter2@127.0.0.1:9/in?token=s3cr3t&app=web",
    });
    let (status, v) = send(reqwest::Method::POST, url.clone(), Some(spec)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let shown = "https://user:***@127.0.0.1:9/in?token=***&app=web";
    assert_eq!(v["url"], shown);
    let (_, v) = send(reqwest::Method::GET, format!("{url}/withsecrets"), None).await;
    assert_eq!(v["url"], shown);
    let (_, list) = send(reqwest::Method::GET, url.clone(), None).await;
    assert_eq!(list["drains"][0]["url"], shown);
    let (_, routes) = send(reqwest::Method::GET, format!("{}/routes", s.http), None).await;
    assert_eq!(
        routes[0]["address"],
        "user:***@127.0.0.1:9/in?token=***&app=web"
    );
    // The status (last error) and everything else: no secret anywhere.
    for body in [list.to_string(), routes.to_string()] {
        assert!(
            !body.contains("hunter2") && !body.contains("s3cr3t"),
            "{body}"
        );
    }
    // Errors that quote a URL mask it too.
    let (status, v) = send(
        reqwest::Method::POST,
        url,
        Some(json!({"name": "bad", "url": "https://u:hunter2@h:0/x?token=s3cr3t"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = v.to_string();
    assert!(
        !text.contains("hunter2") && !text.contains("s3cr3t") && text.contains("u:***@"),
        "{text}"
    );
}

#[tokio::test]
async fn files_names_and_addresses_are_checked_on_add() {
    let allowed = common::TempDir::new("drain-files");
    let dir = allowed.0.clone();
    let s = common::start(move |c| c.drains.file_dirs = vec![dir]).await;
    let url = format!("{}/v1/drains", s.http);
    let post = |body: Value| send(reqwest::Method::POST, url.clone(), Some(body));
    // Outside the allowed directories: refused, naming the setting.
    let (status, v) = post(json!({"name": "f", "url": "file:///etc/cron.d/x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let err = v["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("[drains] file_dirs") && err.contains("--allow-file-dirs"),
        "{v}"
    );
    assert!(!std::path::Path::new("/etc/cron.d/x").exists());
    // Inside: accepted, missing directories made, lines written one per
    // message.
    let target = allowed.0.join("sub").join("all.log");
    let (status, v) =
        post(json!({"name": "f", "url": format!("file://{}", target.display())})).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    wait_state(&s, "f", "RUNNING").await;
    s.server
        .bus
        .publish(vec![log("web", "one\ntwo", LogType::Out)]);
    let mut text = String::new();
    for _ in 0..200 {
        text = std::fs::read_to_string(&target).unwrap_or_default();
        if !text.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(text, "one\\ntwo\n");
    // TLS files only from the data dir's tls/, without saying what exists.
    for ca in ["/etc/passwd", "/nonexistent.pem"] {
        let (status, v) =
            post(json!({"name": "t", "url": format!("syslog-tls://203.0.113.1:6514?ca={ca}")}))
                .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let err = v["error"].as_str().unwrap_or_default();
        assert!(err.contains("[drains] tls_dirs"), "{v}");
        assert!(!err.contains("No such file"), "{v}");
    }
    // `.` and `..` are not names.
    for name in [".", ".."] {
        let (status, v) = post(json!({"name": name, "url": "udp://203.0.113.1:9"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert!(
            v["error"]
                .as_str()
                .unwrap_or_default()
                .contains("invalid drain name"),
            "{v}"
        );
        // (The router may answer 404 before the name is even checked.)
        let (status, _) = send(
            reqwest::Method::PUT,
            format!(
                "{}/v1/formats/{}",
                s.http,
                if name == "." { "%2E" } else { "%2E%2E" }
            ),
            Some(json!({"template": "{{.text}}"})),
        )
        .await;
        assert!(status.is_client_error(), "format {name}: {status}");
        let (_, v) = send(reqwest::Method::GET, format!("{}/v1/formats", s.http), None).await;
        assert!(v["formats"].get(name).is_none(), "{v}");
    }
    // A name that resolves to loopback is refused on add, not at connect.
    let (status, v) = post(json!({"name": "sneaky", "url": "syslog://localhost:9"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("--allow-drain-ranges"),
        "{v}"
    );
}
