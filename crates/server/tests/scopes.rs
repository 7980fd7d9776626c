//! Token scopes: an admin token sees everything; an app token reads only
//! its sources on every read path (404 otherwise, as Log Cache answers),
//! writes only its sources, manages only drains of its apps and never file
//! drains, and cannot reach admin routes.

mod common;

use reqwest::StatusCode;
use serde_json::Value;
use sluice_server::config::{AppToken, Config};

const ADMIN: &str = "admin-token-0123456789";
const WEB: &str = "web-app-token-0123456789";

fn scoped(c: &mut Config) {
    c.auth.tokens = vec![ADMIN.into()];
    c.auth.app_tokens = vec![AppToken {
        token: WEB.into(),
        sources: vec!["web".into()],
    }];
    c.drains.allow_ranges = vec!["127.0.0.0/8".into()];
}

async fn get(s: &common::TestServer, token: &str, path: &str) -> (StatusCode, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", s.http))
        .bearer_auth(token)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap())
}

async fn send(
    s: &common::TestServer,
    token: &str,
    method: reqwest::Method,
    path: &str,
    content_type: &str,
    body: &str,
) -> (StatusCode, String) {
    let resp = reqwest::Client::new()
        .request(method, format!("{}{path}", s.http))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap())
}

#[tokio::test]
async fn an_app_token_sees_and_manages_only_its_apps() {
    let s = common::start(scoped).await;
    let post = reqwest::Method::POST;
    for source in ["web", "db"] {
        let (status, body) = send(
            &s,
            ADMIN,
            post.clone(),
            &format!("/logs?source_id={source}"),
            "text/plain",
            &format!("hello from {source}\n"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    s.wait_for_entries(2).await;

    // Reads: admin everything, the app token its own, 404 for the rest.
    assert_eq!(get(&s, ADMIN, "/api/v1/read/db").await.0, StatusCode::OK);
    let (status, body) = get(&s, WEB, "/api/v1/read/web").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("web"), "{body}");
    assert_eq!(
        get(&s, WEB, "/api/v1/read/db").await.0,
        StatusCode::NOT_FOUND
    );
    let (_, meta) = get(&s, WEB, "/api/v1/meta").await;
    let meta: Value = serde_json::from_str(&meta).unwrap();
    let ids: Vec<&String> = meta["meta"].as_object().unwrap().keys().collect();
    assert_eq!(ids, ["web"]);
    let (_, recent) = get(&s, WEB, "/logs?follow=false&recent=10").await;
    assert!(
        recent.contains("hello from web") && !recent.contains("hello from db"),
        "{recent}"
    );
    assert_eq!(
        get(&s, WEB, "/logs/app:db?follow=false&recent=10").await.0,
        StatusCode::NOT_FOUND
    );
    for firehose in ["/v2/read?log", "/v2/read?log&source_id=db"] {
        assert_eq!(
            get(&s, WEB, firehose).await.0,
            StatusCode::NOT_FOUND,
            "{firehose}"
        );
    }
    // Admin routes are not there for it.
    for path in ["/metrics", "/routes", "/v1/health"] {
        assert_eq!(get(&s, WEB, path).await.0, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(get(&s, ADMIN, path).await.0, StatusCode::OK, "{path}");
    }

    // Writes: its own sources only.
    let (status, _) = send(
        &s,
        WEB,
        post.clone(),
        "/logs?source_id=db",
        "text/plain",
        "x\n",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(
        &s,
        WEB,
        post.clone(),
        "/logs?source_id=web",
        "text/plain",
        "x\n",
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Drains: of its apps, never files; others' drains are invisible.
    let json = "application/json";
    let (status, body) = send(
        &s,
        ADMIN,
        post.clone(),
        "/v1/drains",
        json,
        r#"{"name":"db-drain","url":"syslog://127.0.0.1:9","apps":["db"]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (spec, want) in [
        (
            r#"{"name":"w","url":"syslog://127.0.0.1:9","apps":["web"]}"#,
            StatusCode::CREATED,
        ),
        (
            r#"{"name":"x","url":"syslog://127.0.0.1:9","apps":["db"]}"#,
            StatusCode::FORBIDDEN,
        ),
        (
            r#"{"name":"y","url":"syslog://127.0.0.1:9"}"#,
            StatusCode::FORBIDDEN,
        ),
        (
            r#"{"name":"z","url":"file:///tmp/z.log","apps":["web"]}"#,
            StatusCode::FORBIDDEN,
        ),
    ] {
        let (status, body) = send(&s, WEB, post.clone(), "/v1/drains", json, spec).await;
        assert_eq!(status, want, "{spec}: {body}");
    }
    let (_, list) = get(&s, WEB, "/v1/drains").await;
    let list: Value = serde_json::from_str(&list).unwrap();
    let names: Vec<&str> = list["drains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["w"]);
    assert_eq!(
        get(&s, WEB, "/v1/drains/db-drain").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = send(
        &s,
        WEB,
        reqwest::Method::DELETE,
        "/v1/drains/db-drain",
        json,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&s, ADMIN, "/v1/drains/db-drain").await.0,
        StatusCode::OK
    );
}

#[test]
fn scoped_tokens_in_the_config_file() {
    let c = Config::parse(
        r#"
[[auth.tokens]]
token = "admin-token-0123456789"
scopes = ["doppler.firehose"]

[[auth.tokens]]
token = "web-app-token-0123456789"
source_ids = ["web-guid"]
apps = ["web"]
"#,
    )
    .unwrap();
    assert_eq!(c.auth.tokens, ["admin-token-0123456789"]);
    assert_eq!(c.auth.app_tokens[0].sources, ["web-guid", "web"]);
    c.validate().unwrap();
    let plain = Config::parse("[auth]\ntokens = [\"0123456789abcdef\"]\n").unwrap();
    assert_eq!(plain.auth.tokens, ["0123456789abcdef"]);
    let bad = Config::parse("[[auth.tokens]]\ntoken = \"0123456789abcdef\"\n").unwrap();
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("logs.admin"));
}
