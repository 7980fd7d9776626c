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
