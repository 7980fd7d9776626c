//! End to end: `sluice agent` against the real Docker engine. Containers
//! run from a test image imported from Debian's static busybox, with
//! `--network none`; each test follows only its own containers (by a
//! label), so the tests can share the daemon.
//!
//! The test command installs docker.io and busybox-static and starts
//! dockerd; without them these tests fail, they never skip.

mod support;

use std::process::Command;
use std::time::Duration;

use support::docker::*;
use support::reads::*;
use support::*;

#[test]
fn every_line_arrives_once_in_order_with_its_stream_and_tags() {
    let data = TempDir::new("agent-lines");
    let mut containers = Containers::new("lines");
    let agent = start_agent(&data.0, &containers);

    let plain = containers.run(
        "plain",
        &[],
        "i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo \"out $i\"; \
         if [ $((i % 10)) -eq 0 ]; then echo \"err $i\" >&2; fi; done; \
         head -c 20000 /dev/zero | tr '\\0' x; echo; printf 'last words'",
    );
    let tty = containers.run("tty", &["-t"], &counting("tty", 500, 0));
    containers.run(
        "ignored",
        &["-e", "LOGSPOUT=ignore"],
        "echo must not be collected",
    );
    docker(&["wait", &plain]);
    docker(&["wait", &tty]);

    let plain_name = containers.name("plain");
    let entries = wait_entries(&agent, &plain_name, 2000 + 200 + 2, 20);
    if entries.len() != 2202 {
        let texts: Vec<String> = entries
            .iter()
            .map(payload)
            .map(|p| p.chars().take(30).collect())
            .collect();
        panic!(
            "{} entries; tail {:?}",
            entries.len(),
            &texts[texts.len().saturating_sub(5)..]
        );
    }
    let outs: Vec<u64> = numbers(&entries, "out ");
    assert_eq!(outs, (1..=2000).collect::<Vec<_>>(), "stdout in order");
    let errs: Vec<u64> = numbers(&entries, "err ");
    assert_eq!(errs, (1..=200).map(|i| i * 10).collect::<Vec<_>>());
    for e in &entries {
        let text = payload(e);
        let want = if text.starts_with("err ") {
            envelope::v2::LogType::Err
        } else {
            envelope::v2::LogType::Out
        };
        assert_eq!(e.log_type(), Some(want), "{text:.20}");
        assert_eq!(e.instance_id, plain[..12]);
        assert_eq!(e.tag("container_id"), Some(plain.as_str()));
        assert_eq!(e.tag("image"), Some(IMAGE));
        assert_eq!(e.tag("source_type"), Some("DOCKER"));
    }
    let long: Vec<String> = entries
        .iter()
        .map(payload)
        .filter(|p| p.starts_with('x'))
        .collect();
    assert_eq!(long.len(), 1, "the 20,000-byte line is one entry");
    assert_eq!(long[0].len(), 20_000);
    assert!(long[0].bytes().all(|b| b == b'x'));
    assert_eq!(
        entries
            .iter()
            .map(payload)
            .filter(|p| p == "last words")
            .count(),
        1,
        "a last line without a newline is stored when the container exits"
    );

    let tty_entries = wait_entries(&agent, &containers.name("tty"), 500, 20);
    assert_eq!(
        numbers(&tty_entries, "tty "),
        (1..=500).collect::<Vec<_>>(),
        "a TTY container's lines, without their \\r"
    );
    assert_eq!(tty_entries.len(), 500);

    let ignored = all_entries(&agent, &containers.name("ignored"));
    assert!(
        ignored.is_empty(),
        "LOGSPOUT=ignore is skipped: {ignored:?}"
    );

    // What the agent reports: each followed container with its lines.
    let report: serde_json::Value =
        serde_json::from_str(&agent.get("/v1/agent")).expect("GET /v1/agent is JSON");
    let followed = report["docker"]["containers"]
        .as_array()
        .expect("containers");
    let plain_report = followed
        .iter()
        .find(|c| c["container_id"] == plain.as_str())
        .expect("the plain container is reported");
    assert_eq!(plain_report["lines"], 2202);
    assert_eq!(plain_report["source_id"], plain_name.as_str());
    assert!(
        followed
            .iter()
            .all(|c| c["source_id"] != containers.name("ignored").as_str()),
        "the ignored container is not followed"
    );
    let out = Command::new(sluice_bin())
        .args(["agent", "status", "--server", &agent.http])
        .output()
        .expect("sluice agent status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "agent status: {text}");
    let row = text
        .lines()
        .find(|l| l.starts_with(&plain[..12]))
        .unwrap_or_else(|| panic!("a row for the container in:\n{text}"));
    assert!(row.contains(" 2202 ") && row.contains("stopped"), "{row}");
}

#[test]
fn kill9_of_the_agent_loses_and_repeats_nothing() {
    let data = TempDir::new("agent-kill");
    let mut containers = Containers::new("kill");
    let mut agent = start_agent(&data.0, &containers);
    let http = agent.http.trim_start_matches("http://").to_owned();
    let syslog = agent.syslog_tcp.to_string();
    let restart = |containers: &Containers| {
        ServerProcess::start_agent_at(
            &http,
            &syslog,
            &data.0,
            &["--include-label", &containers.include()],
        )
    };
    const N: u64 = 6000;
    let id = containers.run("counter", &[], &counting("n", N, 300));
    let name = containers.name("counter");

    // Killed while the container writes, restarted while it still does.
    wait_entries(&agent, &name, 500, 30);
    agent.kill9();
    std::thread::sleep(Duration::from_millis(300));
    agent = restart(&containers);
    let mid = wait_entries(&agent, &name, 2500, 30);
    assert!(
        mid.len() >= 2500,
        "the restarted agent resumed: {}",
        mid.len()
    );

    // Killed again; the container finishes while the agent is down.
    agent.kill9();
    docker(&["wait", &id]);
    agent = restart(&containers);
    let entries = wait_entries(&agent, &name, N as usize, 30);
    assert_exactly_once(&numbers(&entries, "n "), N, "across two kill -9");
    agent.stop();
}

#[test]
fn lines_survive_json_file_rotation() {
    // The daemon's follow is known to stop after a json-file rotation; the
    // agent notices the silence while the file changes and reconnects.
    let data = TempDir::new("agent-rotate");
    let mut containers = Containers::new("rotate");
    let agent = start_agent_with(&data.0, &containers, &["--docker-silence", "2"]);
    const N: u64 = 4000;
    let id = containers.run(
        "rotating",
        &[
            "--log-driver",
            "json-file",
            "--log-opt",
            "max-size=16k",
            "--log-opt",
            "max-file=200",
        ],
        &counting("r", N, 200),
    );
    docker(&["wait", &id]);
    let entries = wait_entries(&agent, &containers.name("rotating"), N as usize, 30);
    assert_exactly_once(&numbers(&entries, "r "), N, "across about 50 rotations");
}

#[test]
fn a_noisy_container_is_limited_and_told() {
    let data = TempDir::new("agent-noisy");
    let mut containers = Containers::new("noisy");
    let agent = start_agent_with(
        &data.0,
        &containers,
        &["--max-lines-per-second", "100", "--max-lines-burst", "1000"],
    );
    const N: u64 = 20_000;
    let id = containers.run("noisy", &[], &counting("q", N, 0));
    docker(&["wait", &id]);
    let name = containers.name("noisy");
    let is_notice = |e: &envelope::v2::Envelope| e.tag("source_type") == Some("SLUICE");
    // Every line is either stored or counted in a notice.
    let mut entries = Vec::new();
    let settled = eventually(30, || {
        entries = all_entries(&agent, &name);
        let lines = entries.iter().filter(|e| !is_notice(e)).count() as u64;
        let told: u64 = entries
            .iter()
            .filter(|e| is_notice(e))
            .filter_map(|e| payload(e).split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        (lines + told == N).then_some((lines, told))
    });
    let (lines, told) = settled.unwrap_or_else(|| {
        panic!(
            "stored lines and told drops never added up to {N}: {} entries",
            entries.len()
        )
    });
    assert!(
        (1000..=1000 + 100 * 30).contains(&lines),
        "the burst and the rate: {lines} lines"
    );
    let notice = entries.iter().find(|e| is_notice(e)).map(payload);
    assert!(
        notice.as_deref().is_some_and(
            |t| t.ends_with(&format!("lines dropped for app {name}: over 100 lines/s"))
        ),
        "{notice:?}"
    );
    // The stored lines are the first ones, in order (the burst).
    let stored = numbers(&entries, "q ");
    assert!(stored.windows(2).all(|w| w[0] < w[1]), "in order");
    assert_eq!(stored.first(), Some(&1));
    // Counted where operators look.
    assert_eq!(
        agent.metric("sluice_drops_total{reason=\"rate_limited\"}"),
        told
    );
    let report: serde_json::Value =
        serde_json::from_str(&agent.get("/v1/agent")).expect("GET /v1/agent is JSON");
    let row = report["docker"]["containers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["container_id"] == id.as_str()).cloned())
        .expect("the container is reported");
    assert_eq!(row["dropped"], told);
    assert_eq!(row["lines"], lines);
}

#[test]
fn containers_are_forwarded_over_http_whole_across_a_server_outage() {
    let server_data = TempDir::new("http-forward-server");
    let mut server = ServerProcess::start_at("127.0.0.1:0", "127.0.0.1:0", &server_data.0, &[]);
    let server_http = server.http.trim_start_matches("http://").to_owned();
    let server_syslog = server.syslog_tcp.to_string();

    let data = TempDir::new("http-forward-agent");
    let mut containers = Containers::new("forward");
    let forward = server.http.clone();
    let agent = start_agent_with(&data.0, &containers, &["--forward", &forward]);
    const N: u64 = 3000;
    // 3,000 lines over about six seconds; the server is away for three of
    // them.
    let id = containers.run("fwd", &[], &counting("h", N, 2000));
    let name = containers.name("fwd");
    wait_entries(&server, &name, 100, 20);
    server.stop();
    std::thread::sleep(Duration::from_secs(3));
    let drains = agent.get("/v1/drains");
    assert!(drains.contains("RETRYING"), "the forward waits: {drains}");
    server = ServerProcess::start_at(&server_http, &server_syslog, &server_data.0, &[]);
    docker(&["wait", &id]);

    let entries = settled_entries(&server, &name, N as usize, 30);
    assert_exactly_once(
        &numbers(&entries, "h "),
        N,
        "forwarded across a server outage",
    );
    // Every field crosses: the short container id, the stream, the tags.
    for e in &entries {
        assert_eq!(e.instance_id, id[..12]);
        assert_eq!(e.tag("container_id"), Some(id.as_str()));
        assert_eq!(e.tag("image"), Some(IMAGE));
        assert_eq!(e.tag("source_type"), Some("DOCKER"));
        assert_eq!(e.log_type(), Some(envelope::v2::LogType::Out));
    }
}
