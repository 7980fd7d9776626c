//! End to end, `sluice server`'s share of the security fixes: no secret's
//! value in `--help`, its tokens only from `--token`, the config file or
//! `SLUICE_SERVER_TOKENS` (never the client's `SLUICE_TOKEN`), and a closed
//! stdout does not stop it.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::{free_port, http_request, run_within, ServerProcess};

const CLIENT_SECRET: &str = "client-secret-value-0123456789";
const SERVER_SECRET: &str = "server-secret-value-0123456789";
const SERVER_TOKEN: &str = "0123456789abcdef0123";

use support::sluice_clean as sluice;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Status of `GET path` without credentials.
fn status_of(server: &ServerProcess, path: &str) -> u16 {
    let url = format!("{}{path}", server.http);
    http_request("GET", &url, "text/plain", b"").map_or(0, |(status, _)| status)
}

// ---- A: --help never shows a secret's value ----

#[test]
fn help_never_shows_token_values() {
    let commands: [&[&str]; 7] = [
        &["server", "--help"],
        &["run", "--help"],
        &["logs", "--help"],
        &["drain", "--help"],
        &["drain", "list", "--help"],
        &["format", "--help"],
        &["--help"],
    ];
    for args in commands {
        let mut cmd = sluice(args);
        cmd.env("SLUICE_TOKEN", CLIENT_SECRET)
            .env("SLUICE_SERVER_TOKENS", SERVER_SECRET);
        let (out, _) = run_within(cmd, Duration::from_secs(20));
        let help = text(&out.stdout) + &text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {help}");
        assert!(!help.contains(CLIENT_SECRET), "{args:?}: {help}");
        assert!(!help.contains(SERVER_SECRET), "{args:?}: {help}");
    }
    let (out, _) = run_within(sluice(&["server", "--help"]), Duration::from_secs(20));
    assert!(text(&out.stdout).contains("SLUICE_SERVER_TOKENS"));
}

// ---- B: the server's tokens are its own ----

#[test]
fn a_client_token_in_the_environment_does_not_reach_the_server() {
    // Short, so it would also have stopped the server from starting.
    let server = ServerProcess::start_with_env(&[], &[("SLUICE_TOKEN", "short")]);
    assert_eq!(status_of(&server, "/logs?follow=false"), 200);
    assert_eq!(status_of(&server, "/v1/drains"), 200);
}

#[test]
fn the_server_reads_its_tokens_from_sluice_server_tokens() {
    let tokens = format!("{SERVER_TOKEN}, another-token-0123456789");
    let server = ServerProcess::start_with_env(&[], &[("SLUICE_SERVER_TOKENS", &tokens)]);
    assert_eq!(status_of(&server, "/v1/drains"), 401);
    for token in [SERVER_TOKEN, "another-token-0123456789"] {
        let mut list = sluice(&["drain", "list", "--server", &server.http]);
        list.env("SLUICE_TOKEN", token);
        let (out, _) = run_within(list, Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }

    // A short one is refused at start, as a short --token is.
    let dir = support::TempDir::new("short-env-token");
    let mut cmd = sluice(&["server", "--http", "127.0.0.1:0", "--syslog", "127.0.0.1:0"]);
    cmd.arg("--data-dir")
        .arg(&dir.0)
        .env("SLUICE_SERVER_TOKENS", "short");
    let (out, _) = run_within(cmd, Duration::from_secs(20));
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("at least 16"),
        "{}",
        text(&out.stderr)
    );
}

// ---- a closed stdout ----

#[test]
fn the_server_keeps_running_when_its_stdout_is_closed() {
    let dir = support::TempDir::new("closed-stdout");
    let port = free_port();
    let mut cmd = sluice(&["server", "--syslog", "127.0.0.1:0", "--http"]);
    cmd.arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&dir.0)
        .env("SLUICE_LOG", "warn")
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn sluice server");
    drop(child.stdout.take());
    let health_url = format!("http://127.0.0.1:{port}/health");
    let health = support::eventually(10, || support::http_get(&health_url));
    // It printed its banner by now; still up a while later?
    std::thread::sleep(Duration::from_millis(500));
    let alive = child.try_wait().expect("try_wait").is_none();
    let health = health.and(support::http_get(&health_url));
    let _ = child.kill();
    let _ = child.wait();
    assert!(alive, "the server exited");
    assert!(
        health.is_some_and(|h| h.contains("ok")),
        "the server did not answer"
    );
}

// ---- issue 7: logspout's route URIs, host names, errors said once ----

#[test]
fn route_uris_on_the_command_line_and_in_route_uris_deliver() {
    let by_argument = support::TcpReceiver::start();
    let by_env = support::TcpReceiver::start();
    let argument = format!("tcp://127.0.0.1:{}", by_argument.port);
    let env = format!(" udp://127.0.0.1:9 ,tcp://127.0.0.1:{}", by_env.port);
    let server = ServerProcess::start_with_env(
        &["--allow-drain-ranges", "127.0.0.0/8", &argument],
        &[("ROUTE_URIS", &env)],
    );
    server.post_lines("routed", &["through the routes".to_owned()]);
    for receiver in [&by_argument, &by_env] {
        let (got, lines) = support::wait_for_line(&receiver.lines, "through the routes", 15);
        assert!(got, "{lines:?}");
    }
}

#[test]
fn a_bad_route_stops_the_server_with_its_reason() {
    let dir = support::TempDir::new("bad-route");
    let mut cmd = sluice(&["server", "--http", "127.0.0.1:0", "--syslog", "127.0.0.1:0"]);
    cmd.arg("--data-dir").arg(&dir.0).arg("gopher://x:70");
    let (out, _) = run_within(cmd, Duration::from_secs(20));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("gopher"), "{err}");
}

#[test]
fn listen_flags_take_host_names() {
    let server = ServerProcess::start_at(
        "localhost:0",
        "localhost:0",
        &support::TempDir::new("localhost").0,
        &[],
    );
    assert!(
        server.http.starts_with("http://127.0.0.1:"),
        "{}",
        server.http
    );
    assert_eq!(status_of(&server, "/health"), 200);

    let dir = support::TempDir::new("no-such-host");
    let mut cmd = sluice(&["server", "--syslog", "127.0.0.1:0"]);
    cmd.args(["--http", "no-such-host.invalid:8000", "--data-dir"])
        .arg(&dir.0);
    let (out, _) = run_within(cmd, Duration::from_secs(30));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--http \"no-such-host.invalid:8000\": cannot resolve"),
        "{err}"
    );
}

#[test]
fn an_address_in_use_is_said_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = support::TempDir::new("in-use");
    let mut cmd = sluice(&["server", "--syslog", "127.0.0.1:0", "--http"]);
    cmd.arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&dir.0);
    let (out, _) = run_within(cmd, Duration::from_secs(20));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("Address already in use").count(), 1, "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}
