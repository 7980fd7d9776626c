//! End to end, the habits of cf, Heroku and logspout users that the
//! `sluice` client commands honour (issue 7): app names in multi-app views,
//! `-n` counting the lines shown, Heroku's flags and line format, `--since`,
//! empty results said, local times, `sluice apps`, completions, and the
//! drain and format commands.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::{lines_of, sluice_bin, stdout_on_a_terminal, wait_for_line, ServerProcess};

/// Identity of a test app: source id `guid-<name>`, app name `<name>`.
fn app(name: &str, instance: u32) -> String {
    format!(
        "source_id=guid-{name}&app_name={name}&space_name=dev&organization_name=acme&source_type=APP/PROC/WEB&instance_id={instance}"
    )
}

/// Non-empty lines of `text`.
fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// `sluice ARGS… --server URL` with its stdout on a pseudo-terminal.
fn on_a_terminal(server: &ServerProcess, args: &[&str]) -> String {
    let mut cmd = Command::new(sluice_bin());
    cmd.args(args)
        .args(["--server", &server.http])
        .env("TZ", "UTC")
        .stdin(Stdio::null());
    let (code, shown) = stdout_on_a_terminal(cmd);
    assert_eq!(code, Some(0), "{shown}");
    shown
}

// ---- item 2: which app ----

/// `sluice logs APP` running, with its stdout and stderr lines as they come.
fn tail(
    server: &ServerProcess,
    app: &str,
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<String>,
    std::sync::mpsc::Receiver<String>,
) {
    let mut child = Command::new(sluice_bin())
        .args(["logs", app, "--server", &server.http])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice logs");
    let out = lines_of(child.stdout.take().expect("stdout"));
    let err = lines_of(child.stderr.take().expect("stderr"));
    (child, out, err)
}

#[test]
fn multi_app_views_name_the_app() {
    let server = ServerProcess::start(&[]);
    server.post_text(&app("alpha", 0), &["from-alpha"]);
    server.post_text(&app("beta", 0), &["from-beta"]);
    server.wait_payloads("guid-beta", 1);

    for view in [
        &["logs", "--recent"][..],
        &["logs", "--recent", "--space", "dev"],
        &["logs", "--recent", "--org", "acme"],
    ] {
        let (code, out, err) = server.cli(view);
        assert_eq!(code, 0, "{view:?}: {err}");
        let shown = lines(&out);
        assert_eq!(shown.len(), 2, "{view:?}: {out}");
        // The app name (not the source id), padded to a common width.
        assert!(
            shown[0].ends_with(" alpha [APP/PROC/WEB/0] OUT from-alpha"),
            "{view:?}: {out}"
        );
        assert!(
            shown[1].ends_with(" beta  [APP/PROC/WEB/0] OUT from-beta"),
            "{view:?}: {out}"
        );
    }

    // One app: no name.
    let (_, out, _) = server.cli(&["logs", "alpha", "--recent"]);
    assert_eq!(lines(&out).len(), 1, "{out}");
    assert!(
        lines(&out)[0].ends_with("[APP/PROC/WEB/0] OUT from-alpha"),
        "{out}"
    );
    assert!(!out.contains(" alpha ["), "{out}");

    // On a terminal each app has its colour, the same on every run.
    let first = on_a_terminal(&server, &["logs", "--recent"]);
    let colour = |shown: &str, name: &str| {
        let at = shown.find(&format!("{name}\x1b[0m")).expect(name);
        let start = shown[..at].rfind('\x1b').expect("a colour before the name");
        shown[start..at].to_owned()
    };
    let (alpha, beta) = (colour(&first, "alpha"), colour(&first, "beta"));
    assert!(
        alpha.starts_with("\x1b[") && alpha.ends_with('m'),
        "{first:?}"
    );
    assert_ne!(alpha, "\x1b[31m", "red is for ERR lines");
    let again = on_a_terminal(&server, &["logs", "--recent"]);
    assert_eq!(
        (colour(&again, "alpha"), colour(&again, "beta")),
        (alpha, beta)
    );
}

// ---- item 4: -n ----

#[test]
fn num_prints_exactly_the_last_lines_shown() {
    let server = ServerProcess::start(&[]);
    // `sluice run` adds lifecycle events, which the text view hides.
    let out = Command::new(sluice_bin())
        .args(["run", "--app", "numbers", "--server", &server.http, "--"])
        .args(["sh", "-c", "echo one; echo two; echo three"])
        .output()
        .expect("sluice run");
    assert!(out.status.success(), "{out:?}");
    support::eventually(10, || {
        let (_, out, _) = server.cli(&["logs", "numbers", "--recent"]);
        out.contains("Exited with status 0").then_some(())
    })
    .expect("the run's lines arrived");
    let (code, out, err) = server.cli(&["logs", "numbers", "--recent", "-n", "2"]);
    assert_eq!(code, 0, "{err}");
    let shown = lines(&out);
    assert_eq!(shown.len(), 2, "{out}");
    assert!(shown[0].ends_with("OUT three"), "{out}");
    assert!(shown[1].ends_with("OUT Exited with status 0"), "{out}");

    // Filters apply before counting, on the server (--types) or here
    // (--dyno), also when the newest entries are all hidden.
    let web1: Vec<String> = (1..=3).map(|i| format!("web1-{i}")).collect();
    let web1: Vec<&str> = web1.iter().map(String::as_str).collect();
    server.post_text(&format!("{}&type=ERR", app("busy", 1)), &web1);
    let noise: Vec<String> = (0..200).map(|i| format!("noise-{i}")).collect();
    let noise: Vec<&str> = noise.iter().map(String::as_str).collect();
    server.post_text(&app("busy", 0), &noise);
    server.wait_payloads("guid-busy", 203);
    for filter in [&["--types", "err"][..], &["-d", "web.1"], &["--dyno", "1"]] {
        let mut args = vec!["logs", "busy", "--recent", "-n", "2"];
        args.extend_from_slice(filter);
        let (code, out, err) = server.cli(&args);
        assert_eq!(code, 0, "{filter:?}: {err}");
        let shown = lines(&out);
        assert_eq!(shown.len(), 2, "{filter:?}: {out}");
        assert!(shown[0].ends_with("ERR web1-2"), "{filter:?}: {out}");
        assert!(shown[1].ends_with("ERR web1-3"), "{filter:?}: {out}");
    }
    // The default for --recent is 100 lines.
    let (_, out, _) = server.cli(&["logs", "busy", "--recent"]);
    assert_eq!(lines(&out).len(), 100);
    let (_, out, _) = server.cli(&["logs", "busy", "--recent", "-n", "0"]);
    assert_eq!(out, "");
}

#[test]
fn tail_with_num_shows_the_last_lines_then_live_ones() {
    let server = ServerProcess::start(&[]);
    server.post_text(&app("tailed", 0), &["old-1", "old-2", "old-3"]);
    server.wait_payloads("guid-tailed", 3);
    let mut child = Command::new(sluice_bin())
        .args([
            "logs",
            "-a",
            "tailed",
            "-t",
            "-n",
            "2",
            "--server",
            &server.http,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sluice logs");
    let rx = lines_of(child.stdout.take().expect("stdout"));
    let (found, seen) = wait_for_line(&rx, "old-3", 15);
    assert!(found, "{seen:?}");
    std::thread::sleep(Duration::from_millis(500));
    server.post_text(&app("tailed", 0), &["new-1"]);
    let (found, more) = wait_for_line(&rx, "new-1", 15);
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "{more:?}");
    let all: Vec<String> = seen.into_iter().chain(more).collect();
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all[0].ends_with("OUT old-2"), "{all:?}");
}

// ---- Heroku's habits ----

#[test]
fn heroku_flags_and_format() {
    let server = ServerProcess::start(&[]);
    server.post_text(&app("shop", 1), &["hello from web.1"]);
    server.post_text(
        "source_id=heroku&source_type=router&app_name=shop",
        &["at=info method=GET path=/"],
    );
    server.post_text(&app("shop", 2), &["hello from web.2"]);
    server.wait_payloads("guid-shop", 2);
    server.wait_payloads("heroku", 1);

    let (code, out, err) = server.cli(&[
        "logs", "-a", "shop", "--recent", "--output", "heroku", "--utc",
    ]);
    assert_eq!(code, 0, "{err}");
    let shown = lines(&out);
    assert_eq!(shown.len(), 3, "{out}");
    for (line, rest) in shown.iter().zip([
        "app[web.1]: hello from web.1",
        "heroku[router]: at=info method=GET path=/",
        "app[web.2]: hello from web.2",
    ]) {
        // 2026-12-01T13:14:58.123456+00:00 app[web.1]: message
        let (time, text) = line.split_once(' ').expect("a time");
        assert_eq!(text, rest, "{out}");
        assert_eq!(time.len(), 32, "{time}");
        assert!(time.ends_with("+00:00"), "{time}");
        assert_eq!(&time[19..20], ".", "{time}");
        assert!(time[20..26].bytes().all(|b| b.is_ascii_digit()), "{time}");
    }

    let only = |args: &[&str]| {
        let mut all = vec!["logs", "--app", "shop", "--recent", "--output", "heroku"];
        all.extend_from_slice(args);
        let (code, out, err) = server.cli(&all);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    let router = only(&["-s", "router"]);
    assert_eq!(lines(&router).len(), 1, "{router}");
    assert!(router.contains("heroku[router]"), "{router}");
    assert_eq!(only(&["--source", "heroku"]), router);
    let app_only = only(&["-s", "app"]);
    assert_eq!(lines(&app_only).len(), 2, "{app_only}");
    let cf_type = only(&["--source", "APP/PROC/WEB"]);
    assert_eq!(cf_type, app_only);
    let dyno = only(&["-d", "web.2"]);
    assert_eq!(lines(&dyno).len(), 1, "{dyno}");
    assert!(dyno.contains("app[web.2]: hello from web.2"), "{dyno}");
    assert_eq!(only(&["--ps", "web.2"]), dyno);
    assert_eq!(lines(&only(&["--dyno", "web"])).len(), 2);
}

// ---- --since ----

#[test]
fn since_sets_a_time_window() {
    let server = ServerProcess::start(&[]);
    server.post_text(&app("win", 0), &["before"]);
    server.wait_payloads("guid-win", 1);
    std::thread::sleep(Duration::from_millis(1200));
    let cut = jiff::Timestamp::now().to_string();
    std::thread::sleep(Duration::from_millis(200));
    server.post_text(&app("win", 0), &["after"]);
    server.wait_payloads("guid-win", 2);

    let (code, out, err) = server.cli(&["logs", "win", "--recent", "--since", &cut]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines(&out).len(), 1, "{cut}: {out}");
    assert!(out.contains("OUT after"), "{out}");
    let (_, out, _) = server.cli(&["logs", "win", "--recent", "--since", "10m"]);
    assert_eq!(lines(&out).len(), 2, "{out}");
    let (_, out, _) = server.cli(&["logs", "win", "--recent", "--since", "10m", "-n", "1"]);
    assert_eq!(lines(&out).len(), 1, "{out}");
    assert!(out.trim_end().ends_with("OUT after"), "{out}");

    // Nothing in the window is said.
    let (code, out, err) = server.cli(&[
        "logs",
        "win",
        "--recent",
        "--utc",
        "--since",
        "2099-01-01T00:00:00Z",
    ]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(
        err.contains("no logs for win since 2099-01-01T00:00:00+00:00"),
        "{err}"
    );

    let (code, _, err) = server.cli(&["logs", "win", "--recent", "--since", "yesterday"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid --since \"yesterday\""), "{err}");
}

// ---- item 3: empty results ----

#[test]
fn empty_results_are_said() {
    let server = ServerProcess::start(&[]);
    let (code, out, err) = server.cli(&["logs", "nosuchapp", "--recent"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(
        err.contains("no logs for nosuchapp in the last hour"),
        "{err}"
    );
    assert!(err.contains("holds no logs at all"), "{err}");

    server.post_text(&app("present", 0), &["here"]);
    server.wait_payloads("guid-present", 1);
    let (code, out, err) = server.cli(&["logs", "nosuchapp", "--recent"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert_eq!(
        err.trim(),
        "sluice: no logs for nosuchapp in the last hour",
        "{err}"
    );
    let (code, _, err) = server.cli(&["logs", "present", "--recent", "--types", "err"]);
    assert_eq!(code, 0);
    assert!(
        err.contains("no logs for present matching --types in the last hour"),
        "{err}"
    );

    // A tail of an app never seen says so once, and keeps waiting.
    let (mut child, out, err) = tail(&server, "ghost");
    let (said, notes) = wait_for_line(&err, "nothing logged by ghost yet", 15);
    std::thread::sleep(Duration::from_millis(500));
    server.post_text(&app("ghost", 0), &["boo"]);
    let (arrived, seen) = wait_for_line(&out, "OUT boo", 15);
    let _ = child.kill();
    let _ = child.wait();
    assert!(said, "{notes:?}");
    assert!(arrived, "{seen:?}");
    let more: Vec<String> = err.try_iter().collect();
    assert!(
        !more.iter().any(|l| l.contains("nothing logged")),
        "{more:?}"
    );

    // An app with history is not announced.
    let (mut child, out, err) = tail(&server, "present");
    std::thread::sleep(Duration::from_millis(800));
    server.post_text(&app("present", 0), &["still here"]);
    let (arrived, seen) = wait_for_line(&out, "OUT still here", 15);
    let _ = child.kill();
    let _ = child.wait();
    assert!(arrived, "{seen:?}");
    let notes: Vec<String> = err.try_iter().collect();
    assert!(notes.is_empty(), "{notes:?}");
}

// ---- item 10: local times ----

#[test]
fn times_are_local_unless_utc() {
    let server = ServerProcess::start(&[]);
    server.post_text(&app("clock", 0), &["tick"]);
    server.wait_payloads("guid-clock", 1);
    let show = |args: &[&str], tz: &str| {
        let (code, out, err) = server.cli_env(args, &[("TZ", tz)]);
        assert_eq!(code, 0, "{err}");
        assert!(!err.contains("time zone"), "{err}");
        out
    };
    let recent = ["logs", "clock", "--recent"];
    assert!(show(&recent, "IST-5:30").contains("+0530 [APP/PROC/WEB/0] OUT tick"));
    assert!(show(&recent, "UTC").contains("+0000 [APP/PROC/WEB/0] OUT tick"));
    let utc = ["logs", "clock", "--recent", "--utc"];
    assert!(show(&utc, "IST-5:30").contains("+0000 [APP/PROC/WEB/0] OUT tick"));
    let heroku = ["logs", "clock", "--recent", "--output", "heroku"];
    assert!(show(&heroku, "NST3:30").contains("-03:30 app[web.0]: tick"));
    if std::path::Path::new("/usr/share/zoneinfo/Asia/Kolkata").exists() {
        assert!(show(&recent, "Asia/Kolkata").contains("+0530 [APP/PROC/WEB/0]"));
    }
    // A TZ that means nothing: UTC, and said.
    let (code, out, err) = server.cli_env(&recent, &[("TZ", "No/Such_Zone")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("+0000 [APP/PROC/WEB/0] OUT tick"), "{out}");
    assert!(err.contains("showing UTC"), "{err}");
}

// ---- sluice apps ----

#[test]
fn apps_lists_the_sources_held() {
    let server = ServerProcess::start(&[]);
    let (code, out, err) = server.cli(&["apps"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(err.contains("holds no logs"), "{err}");

    server.post_text(&app("alpha", 0), &["a1", "a2", "a3"]);
    server.post_text("source_id=nameless", &["n1"]);
    server.wait_payloads("guid-alpha", 3);
    server.wait_payloads("nameless", 1);
    let (code, out, err) = server.cli(&["apps", "--utc"]);
    assert_eq!(code, 0, "{err}");
    let rows = lines(&out);
    assert_eq!(rows.len(), 3, "{out}");
    let words = |row: &str| {
        row.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(words(rows[0]), ["name", "source", "id", "lines", "newest"]);
    let alpha = words(rows[1]);
    assert_eq!(alpha[..3], ["alpha", "guid-alpha", "3"], "{out}");
    assert!(alpha[3].ends_with("+00:00"), "{out}");
    assert_eq!(words(rows[2])[..3], ["nameless", "nameless", "1"], "{out}");

    let (_, out, _) = server.cli(&["apps", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v[0]["name"], "alpha");
    assert_eq!(v[0]["source_id"], "guid-alpha");
    assert_eq!(v[0]["lines"], 3);
    assert!(v[0]["newest"].as_i64().is_some_and(|t| t > 0), "{out}");

    let (_, out, _) = server.cli(&["apps", "--no-names"]);
    assert!(lines(&out)[1].starts_with("guid-alpha"), "{out}");
}

// ---- completions ----

#[test]
fn completion_scripts() {
    for (shell, marker) in [
        ("bash", "_sluice()"),
        ("zsh", "#compdef sluice"),
        ("fish", "complete -c sluice"),
    ] {
        let out = Command::new(sluice_bin())
            .args(["completions", shell])
            .output()
            .expect("run sluice");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shell}");
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("--recent"), "{shell}");
    }
    let out = Command::new(sluice_bin())
        .args(["completions", "tcsh"])
        .output()
        .expect("run sluice");
    assert_eq!(out.status.code(), Some(2));
}

// ---- drains and formats ----

#[test]
fn drain_add_without_a_name_test_and_restart() {
    let server = ServerProcess::start(&["--allow-drain-ranges", "127.0.0.0/8"]);
    let receiver = support::TcpReceiver::start();
    let url = format!("tcp://127.0.0.1:{}", receiver.port);
    let (code, out, err) = server.cli(&["drain", "add", &url]);
    assert_eq!(code, 0, "{err}");
    let name = out
        .trim()
        .strip_prefix("drain ")
        .and_then(|r| r.strip_suffix(" added"))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    assert!(name.starts_with("d.") && name.len() == 10, "{name}");
    assert!(name[2..].bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
    let (_, list, _) = server.cli(&["drain", "list"]);
    assert!(list.contains(&name), "{list}");

    let (code, out, err) = server.cli(&["drain", "test", &name]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("drain {name}: ok")), "{out}");
    let (got, lines) = wait_for_line(&receiver.lines, "", 10);
    assert!(got, "the receiver got the test message: {lines:?}");

    let (code, out, err) = server.cli(&["drain", "restart", &name]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("drain {name} restarted")), "{out}");

    // A receiver that is not there: the failure, and exit 1.
    let dead = support::free_port();
    let (code, _, err) = server.cli(&["drain", "add", "dead", &format!("tcp://127.0.0.1:{dead}")]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = server.cli(&["drain", "test", "dead"]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("drain dead: test failed: "), "{err}");

    let (code, _, err) = server.cli(&["drain", "test", "nosuchdrain"]);
    assert_eq!(code, 1);
    assert!(!err.is_empty());
    let (code, _, err) = server.cli(&["drain", "add", "not-a-url"]);
    assert_eq!(code, 1);
    assert!(err.contains("not a drain URL"), "{err}");
}

#[test]
fn format_delete() {
    let server = ServerProcess::start(&[]);
    let (code, out, err) = server.cli(&["format", "set", "short", "{{.text}}"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "format short saved");
    let (code, out, err) = server.cli(&["format", "delete", "short"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "format short deleted");
    let (_, list, _) = server.cli(&["format", "list"]);
    assert!(!list.contains("short"), "{list}");
    let (code, _, err) = server.cli(&["format", "delete", "short"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = server.cli(&["format", "delete", ".."]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid format name"), "{err}");
}
