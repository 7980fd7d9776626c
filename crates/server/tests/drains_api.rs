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
    let mut e = Envelope::log(
        envelope::time::now_ns(),
        app,
        "0",
        Bytes::from(text.to_owned()),
        t,
    );
    e.tags.insert("app_name".into(), app.into());
    e
}

/// `PUT /v1/formats/NAME` with a template; the status.
async fn put_format(s: &common::TestServer, name: &str, template: &str) -> StatusCode {
    send(
        reqwest::Method::PUT,
        format!("{}/v1/formats/{name}", s.http),
        Some(json!({ "template": template })),
    )
    .await
    .0
}

/// The file's text once it has any (at most 5 s).
async fn wait_for_file(path: &std::path::Path) -> String {
    for _ in 0..200 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if !text.is_empty() {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    String::new()
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
    s.server
        .publish(vec![
            log("web", "to the drain", LogType::Out),
            log("api", "not", LogType::Out),
        ])
        .await
        .expect("published");
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
    assert_eq!(
        put_format(&s, "short", "{{.app_name}}: {{.text}}").await,
        StatusCode::NO_CONTENT
    );
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
    s.server
        .publish(vec![
            log("web", "stdout line", LogType::Out),
            log("worker", "other app", LogType::Err),
            log("web", "stderr line", LogType::Err),
        ])
        .await
        .expect("published");
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
        .publish(vec![log("web", "one\ntwo", LogType::Out)])
        .await
        .expect("published");
    let text = wait_for_file(&target).await;
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

/// Accepts every connection; yields `(connection number, frame)` for
/// octet-counted frames, or `(connection number, line)` with `lines`.
async fn receiver_all(lines: bool) -> (u16, tokio::sync::mpsc::UnboundedReceiver<(usize, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((stream, _)) = listener.accept().await {
            n += 1;
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(stream);
                loop {
                    let mut head = Vec::new();
                    let stop = if lines { b'\n' } else { b' ' };
                    if r.read_until(stop, &mut head).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let text = if lines {
                        String::from_utf8_lossy(&head).trim_end().to_owned()
                    } else {
                        let Ok(len) = String::from_utf8_lossy(&head).trim().parse::<usize>() else {
                            return;
                        };
                        let mut msg = vec![0; len];
                        if r.read_exact(&mut msg).await.is_err() {
                            return;
                        }
                        String::from_utf8_lossy(&msg).into_owned()
                    };
                    if tx.send((n, text)).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, rx)
}

async fn next<T>(rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a message in time")
        .expect("receiver running")
}

fn post(
    s: &common::TestServer,
    path: &str,
    body: Value,
) -> impl std::future::Future<Output = (StatusCode, Value)> {
    send(
        reqwest::Method::POST,
        format!("{}{path}", s.http),
        Some(body),
    )
}

/// Issue 7 item 1: drains carry Log envelopes only unless drain-type says
/// otherwise, so a lifecycle event is not delivered next to the log line
/// that tells the same.
#[tokio::test]
async fn drains_carry_logs_only_by_default() {
    let s = common::start(|c| c.drains.allow_ranges = vec!["127.0.0.0/8".into()]).await;
    let (plain_port, mut plain) = receiver().await;
    let (events_port, mut events) = receiver().await;
    let (all_port, mut all) = receiver().await;
    for (name, url) in [
        ("plain", format!("syslog://127.0.0.1:{plain_port}")),
        (
            "ev",
            format!("syslog://127.0.0.1:{events_port}?drain-type=events"),
        ),
        (
            "all",
            format!("syslog://127.0.0.1:{all_port}?drain-type=all"),
        ),
    ] {
        let (status, v) = post(
            &s,
            "/v1/drains",
            json!({"name": name, "url": url, "apps": ["web"]}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        wait_state(&s, name, "RUNNING").await;
    }
    let mut event = Envelope::event(
        envelope::time::now_ns(),
        "web",
        "app.start",
        "Starting app web",
    );
    event.tags.insert("app_name".into(), "web".into());
    s.server
        .publish(vec![event, log("web", "a log line", LogType::Out)])
        .await
        .expect("published");
    let first = next(&mut plain).await;
    assert!(
        first.ends_with(" a log line\n"),
        "the event was skipped: {first}"
    );
    let first = next(&mut events).await;
    assert!(first.ends_with(" app.start: Starting app web\n"), "{first}");
    assert!(next(&mut all)
        .await
        .ends_with(" app.start: Starting app web\n"));
    assert!(next(&mut all).await.ends_with(" a log line\n"));
}

/// Issue 7 item 6: logspout's adapter schemes work on /v1/drains (and
/// /routes), and the URL is shown as given.
#[tokio::test]
async fn logspout_schemes_on_v1_drains() {
    let s = common::start(|c| c.drains.allow_ranges = vec!["127.0.0.0/8".into()]).await;
    let (syslog_port, mut syslog) = receiver().await;
    let (raw_port, mut raw) = receiver_all(true).await;
    let syslog_url = format!("syslog+tcp://127.0.0.1:{syslog_port}");
    let raw_url = format!("raw+tcp://127.0.0.1:{raw_port}");
    for (name, url) in [("st", &syslog_url), ("rt", &raw_url)] {
        let (status, v) = post(
            &s,
            "/v1/drains",
            json!({"name": name, "url": url, "apps": ["web"]}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        assert_eq!(v["url"], url.as_str());
        wait_state(&s, name, "RUNNING").await;
    }
    for url in [
        "syslog+tls://203.0.113.1:6514",
        "syslog+udp://203.0.113.1:514",
        "raw://203.0.113.1:5000",
        "raw+udp://203.0.113.1:5000",
    ] {
        let (status, v) = post(&s, "/v1/drains", json!({"url": url})).await;
        assert_eq!(status, StatusCode::CREATED, "{url}: {v}");
        assert_eq!(v["url"], url);
    }
    s.server
        .publish(vec![log("web", "hello", LogType::Out)])
        .await
        .expect("published");
    let msg = next(&mut syslog).await;
    assert!(
        msg.starts_with("<14>1 ") && msg.ends_with(" hello\n"),
        "{msg}"
    );
    assert_eq!(next(&mut raw).await.1, "hello");
    let (_, v) = send(
        reqwest::Method::GET,
        format!("{}/v1/drains/rt", s.http),
        None,
    )
    .await;
    assert_eq!(v["url"], raw_url.as_str());
    // /routes: the adapter as given.
    let (status, v) = post(
        &s,
        "/routes",
        json!({"adapter": "raw+tcp", "address": format!("127.0.0.1:{raw_port}")}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["adapter"], "raw+tcp");
}

/// Issue 7 item 5 (Heroku): a drain without a name gets `d.<8 hex>`.
#[tokio::test]
async fn drains_without_a_name_get_one() {
    let s = common::start(|_| {}).await;
    for body in [
        json!({"url": "udp://203.0.113.1:9"}),
        json!({"name": "", "url": "udp://203.0.113.1:9"}),
    ] {
        let (status, v) = post(&s, "/v1/drains", body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let name = v["name"].as_str().unwrap_or_default();
        let hex = name.strip_prefix("d.").unwrap_or_default();
        assert!(
            hex.len() == 8 && hex.bytes().all(|c| c.is_ascii_hexdigit()),
            "{v}"
        );
        let (status, _) = send(
            reqwest::Method::GET,
            format!("{}/v1/drains/{name}", s.http),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
}

/// Issue 7 item 5: a FATAL drain is retried by restart and by PUT of the
/// same definition; PUT creates (201) and replaces (200).
#[tokio::test]
async fn restart_and_put() {
    let logs = common::TempDir::new("restart-logs");
    let target = logs.0.join("all.log");
    let dir = logs.0.clone();
    // A drain saved earlier whose file path is now a directory: FATAL.
    let url = format!("file://{}", target.display());
    let saved = json!({"name": "arch", "url": url});
    std::fs::create_dir_all(&target).unwrap();
    let s = common::start(move |c| {
        c.drains.file_dirs = vec![dir];
        let drains = c.data_dir.join("drains");
        std::fs::create_dir_all(&drains).unwrap();
        std::fs::write(drains.join("arch.json"), saved.to_string()).unwrap();
    })
    .await;
    let v = wait_state(&s, "arch", "FATAL").await;
    assert!(
        v["status"]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("a directory"),
        "{v}"
    );
    // Still broken: restarted, FATAL again, said so.
    let (status, v) = post(&s, "/v1/drains/arch/restart", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "arch");
    assert_eq!(v["status"]["state"], "FATAL", "{v}");
    // The cause gone, PUT of the same definition retries it.
    std::fs::remove_dir(&target).unwrap();
    let def = json!({"url": url});
    let (status, v) = send(
        reqwest::Method::PUT,
        format!("{}/v1/drains/arch", s.http),
        Some(def.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"]["state"], "RUNNING", "{v}");
    assert!(v["status"].get("last_error").is_none(), "{v}");
    s.server
        .publish(vec![log("web", "after restart", LogType::Out)])
        .await
        .expect("published");
    let text = wait_for_file(&target).await;
    assert_eq!(text, "after restart\n");
    // PUT of the same definition on a running drain: 200, untouched.
    let since = v["status"]["since"].clone();
    let (status, v) = send(
        reqwest::Method::PUT,
        format!("{}/v1/drains/arch", s.http),
        Some(def),
    )
    .await;
    assert_eq!(
        (status, &v["status"]["since"]),
        (StatusCode::OK, &since),
        "{v}"
    );
    // Restart of a running drain: 200, running again.
    let (status, v) = post(&s, "/v1/drains/arch/restart", json!({})).await;
    assert_eq!(
        (status, v["status"]["state"].as_str()),
        (StatusCode::OK, Some("RUNNING")),
        "{v}"
    );
    assert_eq!(v["status"]["sent"], 1, "counters carry on: {v}");
    // A different definition replaces it; a new name creates one.
    let (status, v) = send(
        reqwest::Method::PUT,
        format!("{}/v1/drains/arch", s.http),
        Some(json!({"name": "arch", "url": url, "apps": ["web"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["apps"], json!(["web"]));
    let (status, v) = send(
        reqwest::Method::PUT,
        format!("{}/v1/drains/fresh", s.http),
        Some(json!({"url": "udp://203.0.113.1:9"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["name"], "fresh");
    // Mistakes.
    let (status, v) = send(
        reqwest::Method::PUT,
        format!("{}/v1/drains/fresh", s.http),
        Some(json!({"name": "other", "url": "udp://203.0.113.1:9"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, _) = post(&s, "/v1/drains/nope/restart", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, v) = post(&s, "/v1/drains/fresh/restart", json!({"force": true})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
}

/// Issue 7 item 5 (Heroku): `drain test` sends one message over a
/// connection of its own and says what happened.
#[tokio::test]
async fn drain_test_endpoint() {
    let s = common::start(|c| c.drains.allow_ranges = vec!["127.0.0.0/8".into()]).await;
    let (port, mut rx) = receiver_all(false).await;
    let (status, v) = post(
        &s,
        "/v1/drains",
        json!({"name": "pt", "url": format!("syslog://127.0.0.1:{port}"), "apps": ["web"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    wait_state(&s, "pt", "RUNNING").await;
    let (status, v) = post(&s, "/v1/drains/pt/test", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"ok": true, "detail": format!("delivered to 127.0.0.1:{port}")})
    );
    let (conn, msg) = next(&mut rx).await;
    assert_eq!(conn, 2, "a connection of its own");
    assert!(msg.contains(" sluice sluice [SLUICE] - "), "{msg}");
    assert!(msg.contains("sluice drain test for pt at "), "{msg}");
    // The running drain is undisturbed.
    s.server
        .publish(vec![log("web", "still here", LogType::Out)])
        .await
        .expect("published");
    let (conn, msg) = next(&mut rx).await;
    assert!(conn == 1 && msg.ends_with(" still here\n"), "{conn} {msg}");
    let (_, v) = send(
        reqwest::Method::GET,
        format!("{}/v1/drains/pt", s.http),
        None,
    )
    .await;
    assert_eq!(v["status"]["sent"], 1, "{v}");
    // A receiver that is not there: 502 with what the connection said.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (status, _) = post(
        &s,
        "/v1/drains",
        json!({"name": "gone", "url": format!("syslog://127.0.0.1:{closed}")}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, v) = post(&s, "/v1/drains/gone/test", json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Connection refused"),
        "{v}"
    );
    let (status, _) = post(&s, "/v1/drains/nope/test", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Issue 7 item 9: saved formats can be deleted, not while in use.
#[tokio::test]
async fn saved_formats_are_deleted() {
    let s = common::start(|_| {}).await;
    let url = format!("{}/v1/formats", s.http);
    assert_eq!(
        put_format(&s, "short", "{{.text}}").await,
        StatusCode::NO_CONTENT
    );
    let (status, v) = post(
        &s,
        "/v1/drains",
        json!({"name": "uses", "url": "udp://203.0.113.1:9", "format": "short"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = send(reqwest::Method::DELETE, format!("{url}/short"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("used by drain uses"),
        "{v}"
    );
    let (status, _) = send(
        reqwest::Method::DELETE,
        format!("{}/v1/drains/uses", s.http),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(reqwest::Method::DELETE, format!("{url}/short"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, v) = send(reqwest::Method::GET, url.clone(), None).await;
    assert_eq!(v["formats"], json!({}));
    let (status, v) = send(reqwest::Method::DELETE, format!("{url}/short"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no saved format"),
        "{v}"
    );
}

/// Issue 7 item 9: a batch an HTTPS receiver refuses (4xx) is told in the
/// app's own stream.
#[tokio::test]
async fn refused_batches_are_told_in_the_app_stream() {
    let s = common::start(|c| c.drains.allow_ranges = vec!["127.0.0.0/8".into()]).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut buf = vec![0u8; 65536];
                // One request per read is enough for these small batches.
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    let answer = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
                    if conn.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let (status, v) = post(
        &s,
        "/v1/drains",
        json!({"name": "h4", "url": format!("http://127.0.0.1:{port}/"), "apps": ["web"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    wait_state(&s, "h4", "RUNNING").await;
    s.server
        .publish(vec![log("web", "refused", LogType::Out)])
        .await
        .expect("published");
    let mut notices = Vec::new();
    for _ in 0..200 {
        notices = s
            .payloads("web")
            .await
            .into_iter()
            .filter(|p| p.starts_with("sluice: "))
            .collect();
        if !notices.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].starts_with("sluice: 1 messages lost for app web to drain h4 since "),
        "{notices:?}"
    );
    assert!(
        notices[0].ends_with(": receiver answered 400 Bad Request"),
        "{notices:?}"
    );
    let v = wait_state(&s, "h4", "RUNNING").await;
    assert!(v["status"]["dropped"].as_u64().unwrap_or(0) >= 1, "{v}");
}

/// Issue 7 item 6 (logspout): `[drains] routes` are standing drains.
#[tokio::test]
async fn standing_routes() {
    let (port, mut rx) = receiver().await;
    let route = format!("syslog://127.0.0.1:{port}");
    // No allow_ranges: the operator's routes may reach loopback.
    let s = common::start(move |c| c.drains.routes = vec![route]).await;
    let v = wait_state(&s, "route.1", "RUNNING").await;
    assert_eq!(v["standing"], true, "{v}");
    s.server
        .publish(vec![
            log("web", "from web", LogType::Out),
            log("api", "from api", LogType::Err),
        ])
        .await
        .expect("published");
    assert!(next(&mut rx).await.ends_with(" from web\n"));
    assert!(next(&mut rx).await.ends_with(" from api\n"));
    let (_, list) = send(reqwest::Method::GET, format!("{}/v1/drains", s.http), None).await;
    assert_eq!(list["drains"][0]["name"], "route.1");
    assert_eq!(list["drains"][0]["standing"], true);
    for path in ["/v1/drains/route.1", "/routes/route.1"] {
        let (status, v) = send(reqwest::Method::DELETE, format!("{}{path}", s.http), None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap_or_default()
                .contains("server's command line"),
            "{v}"
        );
    }
    let (status, _) = send(
        reqwest::Method::PUT,
        format!("{}/v1/drains/route.1", s.http),
        Some(json!({"url": "udp://203.0.113.1:9"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, v) = post(
        &s,
        "/v1/drains",
        json!({"name": "mine", "url": "udp://203.0.113.1:9"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(v["standing"], false);
    let (status, v) = post(
        &s,
        "/v1/drains",
        json!({"name": "route.7", "url": "udp://203.0.113.1:9"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("standing routes"),
        "{v}"
    );
    // A route that is not a drain URL stops the start, naming it.
    let mut config = sluice_server::Config::default();
    let dir = common::TempDir::new("badroute");
    config.data_dir = dir.0.clone();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.syslog.listen = "127.0.0.1:0".parse().unwrap();
    config.drains.routes = vec!["gopher://h:1".into()];
    let err = sluice_server::Server::start(config, tokio_util::sync::CancellationToken::new())
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("route 1") && err.contains("gopher"), "{err}");
}
