//! The HTTP API on a live in-process server: ingest bodies and their
//! errors, Log Cache reads and paging, meta, health, metrics.

mod common;

use reqwest::StatusCode;
use serde_json::Value;
use sluice_server::config::LogBackend;

async fn post(
    s: &common::TestServer,
    path: &str,
    ct: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    post_with(s, path, ct, body, &[]).await
}

async fn post_with(
    s: &common::TestServer,
    path: &str,
    ct: &str,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", s.http))
        .header("content-type", ct)
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let json = resp.json().await.unwrap_or(Value::Null);
    (status, json)
}

#[tokio::test]
async fn ingest_bodies_of_each_kind() {
    let s = common::start(|_| {}).await;
    let msg = "<14>1 - host web web.1 - - logplex";
    let logplex = format!("{} {msg}\n", msg.len());
    let (status, json) = post_with(
        &s,
        "/logs",
        "application/logplex-1",
        logplex,
        &[("Logplex-Msg-Count", "1")],
    )
    .await;
    assert_eq!(
        (status, json["accepted"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{json}"
    );
    let ndjson = "{\"source_id\":\"web\",\"log\":{\"payload\":\"bmRqc29u\",\"type\":\"ERR\"}}\n";
    let (status, _) = post(&s, "/logs", "application/x-ndjson", ndjson).await;
    assert_eq!(status, StatusCode::OK);
    let (status, json) = post(
        &s,
        "/logs?source_id=web&source_type=STG",
        "text/plain",
        "text one\ntext two\n",
    )
    .await;
    assert_eq!(
        (status, json["accepted"].as_u64()),
        (StatusCode::OK, Some(2))
    );
    s.wait_for_entries(4).await;
    assert_eq!(
        s.payloads("web").await,
        vec!["logplex", "ndjson", "text one", "text two"]
    );
    assert_eq!(
        s.metric("sluice_ingress_envelopes_total{protocol=\"http_text\"}")
            .await,
        2
    );
}

#[tokio::test]
async fn bad_bodies_get_clear_json_errors() {
    let s = common::start(|c| c.ingest.max_body = 1024).await;
    let (status, json) = post(
        &s,
        "/logs",
        "application/x-ndjson",
        "{\"source_id\":\"a\"}\n{nope}\n",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json["error"].as_str().unwrap().starts_with("line 2:"),
        "{json}"
    );
    let (status, json) = post_with(
        &s,
        "/logs",
        "application/logplex-1",
        "34 <14>1 - host web web.1 - - logplex",
        &[("Logplex-Msg-Count", "2")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("Logplex-Msg-Count says 2"),
        "{json}"
    );
    let (status, json) = post(&s, "/logs", "application/logplex-1", "50 <14>1 short").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    let (status, json) = post(&s, "/logs", "text/plain", "x".repeat(4096)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(json["error"].as_str().unwrap().contains("1024"), "{json}");
    let (status, _) = post(&s, "/logs", "image/png", "x").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Nothing from a rejected body was published; a good one still is.
    assert_eq!(s.entries().await, 0);
    let (status, _) = post(&s, "/logs?source_id=a", "text/plain", "fine").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        s.metric("sluice_ingress_errors_total{reason=\"bad_json\"}")
            .await,
        1
    );
    assert_eq!(
        s.metric("sluice_ingress_errors_total{reason=\"too_large\"}")
            .await,
        1
    );
}

/// apptail's noisy-neighbour limit holds in server ingest: a flooding app
/// keeps its burst, the rest is dropped, counted and told in its own
/// stream, and a quiet app loses nothing.
#[tokio::test]
async fn a_noisy_app_is_limited_and_told_a_quiet_one_is_not() {
    let s = common::start(|c| {
        c.ingest.max_lines_per_second = 100;
        c.ingest.max_lines_burst = 1000;
    })
    .await;
    let noisy: Vec<String> = (1..=5000).map(|i| format!("n {i}")).collect();
    let (status, _) = post(&s, "/logs?source_id=noisy", "text/plain", noisy.join("\n")).await;
    assert_eq!(status, StatusCode::OK);
    let quiet: Vec<String> = (1..=20).map(|i| format!("q {i}")).collect();
    let (status, _) = post(&s, "/logs?source_id=quiet", "text/plain", quiet.join("\n")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        s.payloads("quiet").await,
        quiet,
        "the quiet app is untouched"
    );

    let dropped = s
        .metric("sluice_drops_total{reason=\"rate_limited\"}")
        .await;
    assert!((3900..=4000).contains(&dropped), "{dropped} dropped");
    let kept = s.payloads("noisy").await;
    // (A read gives at most 1,000.)
    assert_eq!(kept.len() as u64, (5000 - dropped).min(1000));
    assert_eq!(kept[..1000], noisy[..1000], "the burst is the first lines");
    // Told within about a second, in the app's stream, with the count.
    let want = format!("sluice: {dropped} lines dropped for app noisy: over 100 lines/s");
    let mut newest = Vec::new();
    for _ in 0..40 {
        newest = common::texts(&s.read("noisy", "descending=true&limit=1").await);
        if newest.first() == Some(&want) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(newest, vec![want]);
}

#[tokio::test]
async fn read_pages_through_100k_lines_by_time() {
    // 100,000 lines of one source at once: past the noisy-neighbour limit.
    let s = common::start(|c| c.ingest.max_lines_per_second = 0).await;
    let lines: Vec<String> = (0..100_000).map(|i| format!("line {i}")).collect();
    for chunk in lines.chunks(10_000) {
        let (status, _) = post(&s, "/logs?source_id=big", "text/plain", chunk.join("\n")).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(s.wait_for_entries(100_000).await, 100_000);
    let client = reqwest::Client::new();
    let mut start = 0i64;
    let mut seen = 0usize;
    loop {
        let batch = s
            .read("big", &format!("start_time={start}&limit=1000"))
            .await;
        let Some(last) = batch.last() else { break };
        start = last.timestamp + 1;
        for text in common::texts(&batch) {
            assert_eq!(text, format!("line {seen}"));
            seen += 1;
        }
    }
    assert_eq!(seen, 100_000);
    // Newest first, and limits checked.
    let newest = s.read("big", "descending=true&limit=2").await;
    assert_eq!(common::texts(&newest), vec!["line 99999", "line 99998"]);
    let resp = client
        .get(format!("{}/api/v1/read/big?limit=5000", s.http))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = client
        .get(format!("{}/api/v1/read/big?envelope_types=COUNTER", s.http))
        .send()
        .await
        .unwrap();
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["envelopes"]["batch"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn meta_health_and_metrics() {
    let s = common::start(|_| {}).await;
    post(&s, "/logs?source_id=a", "text/plain", "1\n2\n").await;
    post(&s, "/logs?source_id=b", "text/plain", "3\n").await;
    s.wait_for_entries(3).await;
    let meta: Value = reqwest::get(format!("{}/api/v1/meta", s.http))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["meta"]["a"]["count"], "2");
    assert_eq!(meta["meta"]["b"]["count"], "1");
    assert_eq!(meta["meta"]["a"]["expired"], "0");
    let oldest: i64 = meta["meta"]["a"]["oldestTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let newest: i64 = meta["meta"]["a"]["newestTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(oldest < newest);
    let health: Value = reqwest::get(format!("{}/health", s.http))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(s.metric("sluice_log_entries").await, 3);
    assert_eq!(s.metric("sluice_log_sources").await, 2);
}

#[tokio::test]
async fn tokens_are_enforced_when_configured() {
    let token = "0123456789abcdef0123";
    let s = common::start(|c| c.auth.tokens = vec![token.into()]).await;
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{}/api/v1/meta", s.http))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let json: Value = resp.json().await.unwrap();
    assert!(json["error"].as_str().unwrap().contains("Bearer"));
    let resp = client
        .get(format!("{}/api/v1/meta", s.http))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = client
        .get(format!("{}/health", s.http))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn history_survives_a_restart_on_disk_and_not_in_memory() {
    for backend in [LogBackend::Disk, LogBackend::Memory] {
        let s = common::start(|c| c.log.backend = backend).await;
        let (status, _) = post(&s, "/logs?source_id=kept", "text/plain", "one\ntwo\n").await;
        assert_eq!(status, StatusCode::OK);
        let dir = s.stop().await;
        let s = common::start_in(dir, |c| c.log.backend = backend).await;
        let texts: Vec<Vec<u8>> = s
            .read("kept", "")
            .await
            .iter()
            .map(|e| e.as_log().unwrap().payload.to_vec())
            .collect();
        match backend {
            LogBackend::Disk => assert_eq!(texts, vec![b"one".to_vec(), b"two".to_vec()]),
            LogBackend::Memory => assert!(texts.is_empty()),
        }
        // Positions only grow across the restart.
        let (status, _) = post(&s, "/logs?source_id=kept", "text/plain", "three").await;
        assert_eq!(status, StatusCode::OK);
        let end = s.server.log.end_cursor().await.unwrap();
        let want = if backend == LogBackend::Disk { 3 } else { 1 };
        assert_eq!(end.next(), want, "{backend:?}");
    }
}

#[tokio::test]
async fn a_disk_at_its_floor_refuses_ingest_with_503_and_counts_it() {
    // A floor above any real disk's free space.
    let s = common::start(|c| c.log.min_free_disk_mb = 1 << 30).await;
    let (status, json) = post(&s, "/logs?source_id=a", "text/plain", "one\ntwo").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert!(
        json["error"].as_str().unwrap_or_default().contains("free"),
        "{json}"
    );
    assert_eq!(s.metric("sluice_drops_total{reason=\"log_full\"}").await, 2);
    assert_eq!(s.entries().await, 0);
}

/// The rest of what Log Cache clients use: `name_filter`, source ids with
/// `/`, `/api/v1/info`, and bad filters answered 400.
#[tokio::test]
async fn log_cache_name_filter_slashed_ids_and_info() {
    use envelope::v2::{Counter, Gauge, GaugeValue, Message, Timer};
    let s = common::start(|_| {}).await;
    let at = |source: &str, message: Message| {
        let mut e = envelope::Envelope::log(
            envelope::time::now_ns(),
            source,
            "0",
            bytes::Bytes::from("x"),
            envelope::LogType::Out,
        );
        e.message = Some(message);
        e
    };
    let counter = |name: &str| {
        Message::Counter(Counter {
            name: name.into(),
            delta: 1,
            total: 1,
        })
    };
    let gauge = Message::Gauge(Gauge {
        metrics: [(
            "cpu_percent".to_owned(),
            GaugeValue {
                unit: "percentage".into(),
                value: 1.0,
            },
        )]
        .into(),
    });
    let timer = Message::Timer(Timer {
        name: "http_latency".into(),
        start: 1,
        stop: 2,
    });
    s.server
        .publish(vec![
            at("apps/web", counter("requests_total")),
            at("apps/web", counter("errors_total")),
            at("apps/web", gauge),
            at("apps/web", timer),
            envelope::Envelope::log(
                envelope::time::now_ns(),
                "apps/web",
                "0",
                bytes::Bytes::from("a log"),
                envelope::LogType::Out,
            ),
        ])
        .await
        .expect("published");
    assert_eq!(s.read("apps/web", "").await.len(), 5, "a source id with /");
    let names = |envs: Vec<envelope::Envelope>| -> Vec<String> {
        envs.iter()
            .map(|e| match &e.message {
                Some(Message::Counter(c)) => c.name.clone(),
                Some(Message::Timer(t)) => t.name.clone(),
                Some(Message::Gauge(g)) => g.metrics.keys().next().cloned().unwrap_or_default(),
                _ => "log".into(),
            })
            .collect()
    };
    assert_eq!(
        names(s.read("apps/web", "name_filter=_total%24").await),
        ["requests_total", "errors_total"]
    );
    assert_eq!(
        names(s.read("apps/web", "name_filter=cpu|latency").await),
        ["cpu_percent", "http_latency"]
    );
    assert_eq!(
        names(
            s.read("apps/web", "name_filter=.&envelope_types=TIMER")
                .await
        ),
        ["http_latency"]
    );
    let bad = reqwest::get(format!("{}/api/v1/read/apps/web?name_filter=(", s.http))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let info: serde_json::Value = reqwest::get(format!("{}/api/v1/info", s.http))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(info["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(info["vm_uptime"].as_str().is_some());
}
