//! End-to-end tests of `sluice run` and `sluice logs`: the real binary,
//! against a real `sluice server` on loopback (or none at all).

mod support;

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{run_within, sluice_bin, ServerProcess};

/// A loopback URL where nothing listens.
fn dead_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn sluice(server: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(sluice_bin());
    cmd.args(args)
        .env("SLUICE_SERVER", server)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// ---- sluice run without a server ----

#[test]
fn a_million_lines_with_the_server_down_finish_promptly() {
    let server = dead_server();
    let cmd = sluice(
        &server,
        &["run", "--app", "flood", "--", "sh", "-c", "seq 1 1000000"],
    );
    let (output, took) = run_within(cmd, Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let err = stderr_of(&output);
    assert!(err.contains("cannot ship logs"), "{err}");
    assert!(err.contains("messages not delivered"), "{err}");
}

#[test]
fn exit_codes_propagate() {
    let server = dead_server();
    let cases: [(&str, i32); 4] = [
        ("exit 0", 0),
        ("exit 3", 3),
        ("kill -TERM $$", 143),
        ("kill -KILL $$", 137),
    ];
    for (script, expected) in cases {
        let cmd = sluice(&server, &["run", "--", "sh", "-c", script]);
        let (output, _) = run_within(cmd, Duration::from_secs(20));
        assert_eq!(
            output.status.code(),
            Some(expected),
            "{script}: {}",
            stderr_of(&output)
        );
    }
}

#[test]
fn commands_that_cannot_start() {
    let server = dead_server();
    let cmd = sluice(&server, &["run", "--", "/nonexistent/sluice-test-command"]);
    let (output, _) = run_within(cmd, Duration::from_secs(20));
    assert_eq!(output.status.code(), Some(127));
    assert!(
        stderr_of(&output).contains("cannot run"),
        "{}",
        stderr_of(&output)
    );

    let cmd = sluice(&server, &["run", "--", "/"]);
    let (output, _) = run_within(cmd, Duration::from_secs(20));
    assert_eq!(output.status.code(), Some(126));
}

#[test]
fn tee_copies_the_output() {
    let server = dead_server();
    let cmd = sluice(
        &server,
        &[
            "run",
            "--tee",
            "--",
            "sh",
            "-c",
            "echo to-out; echo to-err >&2",
        ],
    );
    let (output, _) = run_within(cmd, Duration::from_secs(20));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout_of(&output), "to-out\n");
    assert!(stderr_of(&output).contains("to-err\n"));
}

#[test]
fn recent_logs_from_a_dead_server_are_an_error() {
    let server = dead_server();
    let cmd = sluice(&server, &["logs", "web", "--recent"]);
    let (output, _) = run_within(cmd, Duration::from_secs(20));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("cannot read logs"),
        "{}",
        stderr_of(&output)
    );
}

// ---- against a real server ----

#[test]
fn run_ships_lines_and_logs_shows_them() {
    let server = ServerProcess::start(&[]);
    let cmd = sluice(
        &server.http,
        &[
            "run",
            "--app",
            "web",
            "--instance",
            "2",
            "--space",
            "dev",
            "--",
            "sh",
            "-c",
            "echo hello; echo oops >&2; printf 'no newline'; exit 4",
        ],
    );
    let (output, _) = run_within(cmd, Duration::from_secs(20));
    assert_eq!(output.status.code(), Some(4), "{}", stderr_of(&output));
    assert_eq!(stderr_of(&output), "", "nothing to complain about");

    let got = server.wait_payloads("web", 5);
    for expected in ["hello", "oops", "no newline", "Exited with status 4"] {
        assert!(
            got.iter().any(|p| p == expected),
            "{expected:?} not in {got:?}"
        );
    }

    let cmd = sluice(&server.http, &["logs", "web", "--recent"]);
    let (output, _) = run_within(cmd, Duration::from_secs(20));
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let text = stdout_of(&output);
    assert!(text.contains("[APP/PROC/WEB/2] OUT hello"), "{text}");
    assert!(text.contains("[APP/PROC/WEB/2] ERR oops"), "{text}");
    assert!(
        text.contains("[API/2] OUT Starting app web (instance 2) with command: sh -c"),
        "{text}"
    );
    assert!(text.contains("[CELL/2] OUT Exited with status 4"), "{text}");
    assert_eq!(
        text.matches("Starting app web").count(),
        1,
        "each lifecycle transition shows once: {text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no color when stdout is not a terminal"
    );

    let cmd = sluice(
        &server.http,
        &[
            "logs", "web", "--recent", "-n", "2", "--json", "--space", "dev",
        ],
    );
    let (output, _) = run_within(cmd, Duration::from_secs(20));
    let lines: Vec<String> = stdout_of(&output).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        let env = envelope::json::from_json(line.as_bytes()).expect("NDJSON envelope");
        assert_eq!(env.source_id, "web");
        assert_eq!(env.tag("space_name"), Some("dev"));
    }

    let cmd = sluice(&server.http, &["logs", "web", "--recent", "--types", "err"]);
    let (output, _) = run_within(cmd, Duration::from_secs(20));
    let text = stdout_of(&output);
    assert!(
        text.contains("ERR oops") && !text.contains("OUT hello"),
        "{text}"
    );
}

#[test]
fn logs_tails_live_lines() {
    let server = ServerProcess::start(&[]);
    let mut tail = sluice(&server.http, &["logs", "tailed"])
        .spawn()
        .expect("spawn sluice logs");
    let (tx, rx) = mpsc::channel();
    let stdout = tail.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The stream may not be subscribed yet: keep logging until a line shows.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("OUT live-line")) && Instant::now() < deadline {
        let cmd = sluice(
            &server.http,
            &["run", "--app", "tailed", "--", "echo", "live-line"],
        );
        run_within(cmd, Duration::from_secs(20));
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            seen.push(line);
        }
    }
    let _ = Command::new("kill")
        .args(["-INT", &tail.id().to_string()])
        .status();
    let status = tail.wait().expect("wait");
    assert!(
        seen.iter()
            .any(|l| l.contains("[APP/PROC/WEB/0] OUT live-line")),
        "{seen:?}"
    );
    assert_eq!(status.code(), Some(0), "Ctrl-C exits with 0");
}

#[test]
fn signals_are_forwarded_to_the_command() {
    let server = ServerProcess::start(&[]);
    let mut run = sluice(
        &server.http,
        &[
            "run",
            "--app",
            "trapper",
            "--",
            "sh",
            "-c",
            "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done",
        ],
    )
    .spawn()
    .expect("spawn sluice run");
    let ready = server.wait_payloads("trapper", 3);
    assert!(ready.iter().any(|p| p == "ready"), "{ready:?}");
    let _ = Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status();
    let status = run.wait().expect("wait");
    assert_eq!(status.code(), Some(7));
    let got = server.wait_payloads("trapper", 6);
    assert!(got.iter().any(|p| p == "got TERM"), "{got:?}");
    assert!(got.iter().any(|p| p == "Exited with status 7"), "{got:?}");
}

#[test]
fn a_server_blip_loses_nothing() {
    let mut server = ServerProcess::start(&[]);
    let http = server.http.clone();
    let addr = http.trim_start_matches("http://").to_owned();
    let data_dir = server.data_dir.clone();
    let run = sluice(
        &http,
        &[
            "run",
            "--app",
            "blip",
            "--",
            "sh",
            "-c",
            "i=0; while [ $i -lt 40 ]; do echo tick$i; i=$((i+1)); sleep 0.1; done",
        ],
    )
    .spawn()
    .expect("spawn sluice run");
    std::thread::sleep(Duration::from_millis(800));
    server.stop();
    std::thread::sleep(Duration::from_millis(1000));
    let server = ServerProcess::start_at(&addr, "127.0.0.1:0", &data_dir, &[]);
    let output = run.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0));
    let got = server.wait_payloads("blip", 10);
    // What the first server had is gone with it (memory store); everything
    // after that, including the lines logged while no server was up, is
    // here, in order, with no gap and no loss notice.
    let ticks: Vec<u32> = got
        .iter()
        .filter_map(|p| p.strip_prefix("tick")?.parse().ok())
        .collect();
    assert_eq!(ticks.last(), Some(&39), "{got:?}");
    let first = ticks.first().copied().unwrap_or(0);
    assert_eq!(ticks, (first..=39).collect::<Vec<_>>(), "{got:?}");
    assert!(first <= 12, "lines from the outage were kept: {got:?}");
    assert!(!got.iter().any(|p| p.contains("dropped")), "{got:?}");
}

#[test]
fn a_full_buffer_is_reported_in_band() {
    let server = ServerProcess::start(&[]);
    // The first lines fill a tiny buffer faster than 100 ms batches drain it.
    let cmd = sluice(
        &server.http,
        &[
            "run",
            "--app",
            "tiny",
            "--buffer",
            "10",
            "--",
            "sh",
            "-c",
            "seq 1 50000",
        ],
    );
    let (output, _) = run_within(cmd, Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(0));
    let body = server.get("/api/v1/read/tiny?limit=1000");
    assert!(body.contains("\"SLUICE\""), "no loss notice in {body}");
}

#[test]
fn logs_exits_quietly_when_stdout_closes() {
    let server = ServerProcess::start(&[]);
    let cmd = sluice(
        &server.http,
        &["run", "--app", "many", "--", "sh", "-c", "seq 1 5000"],
    );
    run_within(cmd, Duration::from_secs(30));
    server.wait_payloads("many", 1000);
    let mut logs = sluice(&server.http, &["logs", "many", "--recent", "-n", "5000"])
        .spawn()
        .expect("spawn sluice logs");
    let mut stdout = logs.stdout.take().expect("stdout");
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).expect("some output");
    drop(stdout); // like `| head -c 16`
    let mut stderr = String::new();
    if let Some(mut err) = logs.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    let status = logs.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "");
}
