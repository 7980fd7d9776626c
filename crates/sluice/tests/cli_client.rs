//! End to end, the client commands' share of the security fixes: terminal
//! escapes from payloads kept off the operator's terminal (`sluice logs`),
//! a server that wants a token told once, not in a flood, by `sluice run`,
//! and a closed stdout ending client commands quietly.

mod support;

use std::io::Read as _;
use std::time::Duration;

use support::{run_within, stdout_on_a_terminal, ServerProcess};

const SERVER_TOKEN: &str = "0123456789abcdef0123";

use support::sluice_clean as sluice;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---- C: terminal escapes from payloads ----

const HOSTILE: &str = "title\x1b]0;pwned\x07 clear\x1b[2J csi\u{9b}31m end";
const ESCAPED: &str = "title\\x1b]0;pwned\\x07 clear\\x1b[2J csi\\x9b31m end";

fn server_with_hostile_line() -> ServerProcess {
    let server = ServerProcess::start(&[]);
    server.post_lines("hostile", &[HOSTILE.to_owned()]);
    let got = server.wait_payloads("hostile", 1);
    assert_eq!(got, [HOSTILE], "the server keeps the payload as sent");
    server
}

#[test]
fn output_that_is_not_a_terminal_is_unchanged() {
    let server = server_with_hostile_line();
    let (out, _) = run_within(
        sluice(&["logs", "hostile", "--recent", "--server", &server.http]),
        Duration::from_secs(20),
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains(&format!("OUT {HOSTILE}\n")), "{stdout:?}");
}

/// Runs `sluice ARGS…` with stdout on a pseudo-terminal; what it printed.
fn on_a_terminal(args: &[&str]) -> String {
    let (code, shown) = stdout_on_a_terminal(sluice(args));
    assert_eq!(
        code,
        Some(0),
        "sluice {args:?} failed; it printed {shown:?}"
    );
    shown
}

#[test]
fn a_terminal_sees_escapes_shown_not_obeyed() {
    let server = server_with_hostile_line();
    let shown = on_a_terminal(&["logs", "hostile", "--recent", "--server", &server.http]);
    assert!(shown.contains(&format!("OUT {ESCAPED}")), "{shown:?}");
    assert!(!shown.contains('\x1b'), "{shown:?}");
    assert!(!shown.contains('\u{9b}'), "{shown:?}");

    let raw = on_a_terminal(&[
        "logs",
        "hostile",
        "--recent",
        "--raw",
        "--server",
        &server.http,
    ]);
    assert!(raw.contains(&format!("OUT {HOSTILE}")), "{raw:?}");
}

// ---- D: a server that wants a token, and `sluice run` without one ----

#[test]
fn run_without_a_token_says_so_once_and_keeps_the_child_fast() {
    let server = ServerProcess::start(&["--token", SERVER_TOKEN]);
    let cmd = sluice(&[
        "run",
        "--app",
        "denied",
        "--server",
        &server.http,
        "--",
        "sh",
        "-c",
        "seq 1 2000; exit 3",
    ]);
    let (out, took) = run_within(cmd, Duration::from_secs(30));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(took < Duration::from_secs(8), "took {took:?}: {err}");
    assert!(err.lines().count() <= 3, "{err}");
    assert_eq!(err.matches("requires a token").count(), 1, "{err}");
    assert!(
        err.contains("--token") && err.contains("SLUICE_TOKEN"),
        "{err}"
    );

    // A wrong token is told apart from none.
    let mut cmd = sluice(&[
        "run",
        "--server",
        &server.http,
        "--",
        "sh",
        "-c",
        "seq 1 2000",
    ]);
    cmd.env("SLUICE_TOKEN", "not-the-right-token-0123");
    let (out, _) = run_within(cmd, Duration::from_secs(30));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.lines().count() <= 3, "{err}");
    assert_eq!(err.matches("refused the token").count(), 1, "{err}");
}

// ---- E: closed pipes ----

/// Runs with stdout's reader gone before anything is written (as with
/// `| head -c 0`); exit code and stderr.
fn with_stdout_closed(args: &[&str]) -> (Option<i32>, String) {
    let mut child = sluice(args).spawn().expect("spawn sluice");
    drop(child.stdout.take());
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut err);
    }
    let status = child.wait().expect("wait");
    (status.code(), err)
}

#[test]
fn client_commands_end_quietly_on_a_closed_stdout() {
    let server = ServerProcess::start(&[]);
    server.post_lines(
        "piped",
        &(0..200).map(|i| format!("line {i}")).collect::<Vec<_>>(),
    );
    server.wait_payloads("piped", 200);
    let http = server.http.as_str();
    let commands: [&[&str]; 4] = [
        &["drain", "list", "--json", "--server", http],
        &["logs", "piped", "--recent", "--json", "--server", http],
        &["logs", "piped", "--recent", "--server", http],
        &["format", "set", "short", "{{.text}}", "--server", http],
    ];
    for args in commands {
        let (code, err) = with_stdout_closed(args);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert_eq!(err, "", "{args:?}");
    }
}
