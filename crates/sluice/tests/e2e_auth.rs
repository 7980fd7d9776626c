//! End to end: a server that requires a token, and the client commands
//! that present it (`--token` or `SLUICE_TOKEN`).

mod support;

use std::process::Command;

use support::{sluice_bin, ServerProcess};

const TOKEN: &str = "s3cret-token-0123456789";

#[test]
fn clients_present_the_token() {
    let server = ServerProcess::start(&["--token", TOKEN]);
    // Without it: refused with the server's clear message.
    let (code, _, err) = server.cli(&["drain", "list"]);
    assert_ne!(code, 0);
    assert!(err.contains("missing or invalid token"), "{err}");
    // With it: run ships, logs reads, drain lists.
    let run = Command::new(sluice_bin())
        .args([
            "run",
            "--app",
            "secure",
            "--server",
            &server.http,
            "--token",
            TOKEN,
            "--",
            "sh",
            "-c",
            "echo guarded",
        ])
        .status()
        .expect("sluice run");
    assert!(run.success());
    let out = Command::new(sluice_bin())
        .args(["logs", "secure", "--recent", "--server", &server.http])
        .env("SLUICE_TOKEN", TOKEN)
        .output()
        .expect("sluice logs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("OUT guarded"), "{text}");
    let (code, _, err) = server.cli(&["drain", "list", "--token", TOKEN]);
    assert_eq!(code, 0, "{err}");
}

/// A Logplex-style HTTP drain carries only the URL's user info: a server
/// with tokens takes its token as the basic-auth password of `POST /logs`,
/// and nowhere else.
#[test]
fn a_drain_posts_with_the_token_as_its_password() {
    let guarded = ServerProcess::start(&["--token", TOKEN]);
    let port = guarded.http.rsplit(':').next().expect("a port");
    let route = format!("http://drain:{TOKEN}@127.0.0.1:{port}/logs?body=envelopes");
    let wrong = format!("http://drain:nope@127.0.0.1:{port}/logs");
    let sender = ServerProcess::start(&["--allow-drain-ranges", "127.0.0.1/32", &route, &wrong]);
    sender.post_lines("basic-app", &["through basic auth".to_owned()]);
    let out = support::eventually(15, || {
        let out = Command::new(sluice_bin())
            .args(["logs", "basic-app", "--recent", "--server", &guarded.http])
            .env("SLUICE_TOKEN", TOKEN)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("through basic auth").then_some(text)
    });
    assert!(out.is_some(), "the line reaches the guarded server");
    // The route with a wrong password is refused (401).
    let refused = support::eventually(15, || {
        let status = sender.drain_status("route.2");
        let error = status["status"]["last_error"].as_str()?.to_owned();
        error.contains("401").then_some(error)
    });
    assert!(refused.is_some(), "{}", sender.drain_status("route.2"));
    // Basic auth reads nothing.
    let read = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u"])
        .arg(format!("x:{TOKEN}"))
        .arg(format!("{}/api/v1/meta", guarded.http))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&read.stdout), "401");
}
