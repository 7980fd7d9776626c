//! End to end: `sluice agent --file` following a host file across real
//! logrotate runs (`create` and `copytruncate`), a `kill -9` of the agent
//! and a rotation while it was down: every line exactly once, in order.

mod support;

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::reads::*;
use support::*;

fn append(path: &Path, from: u64, to: u64) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the log file");
    for n in from..=to {
        writeln!(file, "f {n}").expect("append a line");
        if n % 200 == 0 {
            file.flush().expect("flush");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs the real logrotate once, forced, with `directive` (`create` or
/// `copytruncate`).
fn logrotate(dir: &Path, file: &Path, directive: &str) {
    let conf = dir.join(format!("rotate-{directive}.conf"));
    std::fs::write(
        &conf,
        format!(
            "{} {{\n  rotate 10\n  {directive}\n  missingok\n}}\n",
            file.display()
        ),
    )
    .expect("logrotate config");
    let out = Command::new(require("logrotate"))
        .arg("-f")
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg(&conf)
        .output()
        .expect("run logrotate");
    assert!(
        out.status.success(),
        "logrotate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_file_is_followed_exactly_across_rotations_and_kill9() {
    let data = TempDir::new("agent-files");
    let logs = TempDir::new("agent-files-logs");
    let file = logs.0.join("app.log");
    std::fs::write(&file, "before the agent 1\nbefore the agent 2\n").expect("seed");
    let spec = format!("app={}", file.display());
    let args = ["--docker", "off", "--file", spec.as_str()];
    let mut agent = ServerProcess::start_agent_at("127.0.0.1:0", "127.0.0.1:0", &data.0, &args);
    let http = agent.http.trim_start_matches("http://").to_owned();
    let syslog = agent.syslog_tcp.to_string();

    // The first line written after the agent follows (it starts at the end).
    let marker = eventually(10, || {
        append(&file, 0, 0);
        let got = all_entries(&agent, "app");
        (!got.is_empty()).then_some(got)
    })
    .expect("the agent follows the file");
    assert!(
        marker.iter().all(|e| payload(e) == "f 0"),
        "old lines are not read"
    );
    let zeros = marker.len() as u64;

    append(&file, 1, 1000);
    logrotate(&logs.0, &file, "create");
    append(&file, 1001, 2000);
    wait_entries(&agent, "app", (zeros + 2000) as usize, 20);
    logrotate(&logs.0, &file, "copytruncate");
    // copytruncate's own race: lines written before the tailer's next poll
    // saw the truncation and past the old size are indistinguishable.
    std::thread::sleep(Duration::from_millis(600));
    append(&file, 2001, 3000);
    // Read after the truncation, before any restart could mask it.
    let after_truncate = wait_entries(&agent, "app", (zeros + 3000) as usize, 20);
    assert!(
        after_truncate.len() as u64 >= zeros + 3000,
        "lines after copytruncate are read: {} of {}",
        after_truncate.len(),
        zeros + 3000
    );
    agent.kill9();
    append(&file, 3001, 3500);
    logrotate(&logs.0, &file, "create");
    append(&file, 3501, 4000);
    agent = ServerProcess::start_agent_at(&http, &syslog, &data.0, &args);
    let entries = settled_entries(&agent, "app", (zeros + 4000) as usize, 30);
    let got: Vec<u64> = numbers(&entries, "f ")
        .into_iter()
        .filter(|&n| n > 0)
        .collect();
    assert_exactly_once(
        &got,
        4000,
        "across create, copytruncate, kill -9 and a rotation while down",
    );
    let first = &entries[0];
    assert_eq!(first.tag("systail"), Some("app"));
    assert_eq!(first.tag("source_type"), Some("SYSTAIL"));
    assert_eq!(first.tag("path"), Some(file.display().to_string().as_str()));
    // Reported with its position: the whole current file is read.
    let report: serde_json::Value =
        serde_json::from_str(&agent.get("/v1/agent")).expect("GET /v1/agent is JSON");
    let size = std::fs::metadata(&file).expect("the file").len();
    let path = file.display().to_string();
    let ours = report["files"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["path"] == path.as_str()).cloned())
        .expect("the file is reported");
    assert_eq!(ours["offset"], size);
    let out = Command::new(sluice_bin())
        .args(["agent", "status", "--server", &agent.http])
        .output()
        .expect("sluice agent status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.ends_with(&path) && l.contains(&size.to_string())),
        "{text}"
    );
    agent.stop();
}

#[test]
fn a_file_that_grew_too_much_while_away_is_skipped_and_told() {
    let data = TempDir::new("agent-files-limit");
    let logs = TempDir::new("agent-files-limit-logs");
    let file = logs.0.join("big.log");
    std::fs::write(&file, "").expect("create");
    let spec = format!("big={}", file.display());
    let args = [
        "--docker",
        "off",
        "--file",
        spec.as_str(),
        "--file-read-limit-mb",
        "1",
        // The megabyte read at once is more than the default burst.
        "--max-lines-per-second",
        "0",
    ];
    let mut agent = ServerProcess::start_agent_at("127.0.0.1:0", "127.0.0.1:0", &data.0, &args);
    let http = agent.http.trim_start_matches("http://").to_owned();
    let syslog = agent.syslog_tcp.to_string();
    wait_followed(&agent, "big", || append(&file, 0, 0));
    std::thread::sleep(Duration::from_millis(1500)); // its position is saved
    agent.stop();
    // About 3.9 MB while the agent is away.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .expect("open");
    let line = "x".repeat(90);
    for n in 1..=40_000 {
        writeln!(f, "f {n} {line}").expect("append");
    }
    drop(f);
    let agent = ServerProcess::start_agent_at(&http, &syslog, &data.0, &args);
    let notice = eventually(15, || {
        all_entries(&agent, "big")
            .iter()
            .map(payload)
            .find(|p| p.starts_with("sluice: skipping much of a large log file"))
    })
    .expect("the skip is told in-band");
    assert!(notice.contains(&file.display().to_string()), "{notice}");
    // The newest megabyte is read: the last line, and not the first ones.
    let last = eventually(15, || {
        let all = all_entries(&agent, "big");
        let nums: Vec<u64> = all
            .iter()
            .filter_map(|e| payload(e).split_whitespace().nth(1)?.parse().ok())
            .collect();
        nums.contains(&40_000).then_some(nums)
    })
    .expect("the end of the file is read");
    assert!(!last.contains(&1), "the start of what grew is skipped");
    let read = last.iter().filter(|&&n| n > 0).count();
    assert!(
        (10_000..=12_000).contains(&read),
        "about 1 MiB of 98-byte lines: {read}"
    );
}

#[test]
fn sieve_rules_turn_lines_into_events() {
    let data = TempDir::new("agent-sieve");
    let logs = TempDir::new("agent-sieve-logs");
    let file = logs.0.join("syslog");
    std::fs::write(&file, "").expect("create");
    let conf = logs.0.join("sluice.toml");
    std::fs::write(
        &conf,
        format!(
            r#"
[[agent.files]]
name = "syslog"
path = "{}"

[[agent.sieve]]
process = "deployer"
type = "deploy"
substring = "deployed"
regex = 'deployed (\S+) version (\S+)'
severity = "INFO"
format = "$1 is at version $2"
app_group = 1
"#,
            file.display()
        ),
    )
    .expect("config");
    let conf_arg = conf.display().to_string();
    let agent = ServerProcess::start_agent_at(
        "127.0.0.1:0",
        "127.0.0.1:0",
        &data.0,
        &["--docker", "off", "-c", &conf_arg],
    );
    wait_followed(&agent, "syslog", || {
        append_text(&file, "Dec  2 10:00:00 vm cron[5]: (root) CMD (true)\n")
    });
    append_text(
        &file,
        "Dec  2 10:00:01 vm deployer[7]: deployed shop version 42\n\
         Dec  2 10:00:02 vm kernel: [99.1] Out of memory: Killed process 4242 (java) total-vm:1kB\n",
    );
    let node = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_owned();
    let events = eventually(10, || {
        let got = all_entries(&agent, &node);
        (got.len() >= 2).then_some(got)
    })
    .expect("two events on the host's source");
    let event_of = |e: &envelope::v2::Envelope| match &e.message {
        Some(envelope::v2::Message::Event(ev)) => Some((ev.title.clone(), ev.body.clone())),
        _ => None,
    };
    let deploy = events
        .iter()
        .find(|e| e.tag("event_type") == Some("deploy"))
        .expect("the deploy event");
    assert_eq!(
        event_of(deploy),
        Some(("deploy".into(), "shop is at version 42".into()))
    );
    assert_eq!(deploy.tag("process"), Some("deployer"));
    assert_eq!(deploy.tag("severity"), Some("INFO"));
    assert_eq!(deploy.tag("app"), Some("shop"));
    let oom = events
        .iter()
        .find(|e| e.tag("event_type") == Some("oom_kill"))
        .expect("the default OOM rule's event");
    assert_eq!(oom.tag("severity"), Some("ERROR"));
    // The same event in the app's own stream.
    let in_app = eventually(10, || {
        let got = all_entries(&agent, "shop");
        (!got.is_empty()).then_some(got)
    })
    .expect("the event in the app's stream");
    assert_eq!(
        event_of(&in_app[0]),
        Some(("deploy".into(), "shop is at version 42".into()))
    );
    // The lines themselves are in the file's stream.
    let lines = all_entries(&agent, "syslog");
    assert!(lines.iter().any(|e| payload(e).contains("deployed shop")));
}

fn append_text(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open the log file");
    file.write_all(text.as_bytes()).expect("append");
}

/// Calls `touch` (which writes a line) until `source` holds an entry on
/// `server`: the file is followed.
fn wait_followed(server: &ServerProcess, source: &str, touch: impl Fn()) {
    let followed = eventually(15, || {
        touch();
        (!all_entries(server, source).is_empty()).then_some(())
    });
    assert!(followed.is_some(), "{source}: the file is never followed");
}

/// `sluice certs` into `dir`, and a server config whose gRPC wants client
/// certificates from that CA.
fn mtls_server_config(dir: &Path) -> std::path::PathBuf {
    sluice_ok(&["certs", &dir.display().to_string()]);
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        format!(
            "[grpc]\ntls_cert = {:?}\ntls_key = {:?}\ntls_client_ca = {:?}\n",
            dir.join("server.crt"),
            dir.join("server.key"),
            dir.join("ca.crt"),
        ),
    )
    .expect("server config");
    config
}

#[test]
fn an_agent_forwards_over_grpc_with_mtls_across_a_server_outage() {
    let pki = TempDir::new("forward-pki");
    let config = mtls_server_config(&pki.0);
    let config_arg = config.display().to_string();
    let server_data = TempDir::new("forward-server");
    let mut server = ServerProcess::start_at(
        "127.0.0.1:0",
        "127.0.0.1:0",
        &server_data.0,
        &["-c", &config_arg],
    );
    let grpc = server.grpc.expect("the server serves gRPC").to_string();
    let server_http = server.http.trim_start_matches("http://").to_owned();
    let server_syslog = server.syslog_tcp.to_string();

    let agent_data = TempDir::new("forward-agent");
    let logs = TempDir::new("forward-logs");
    let file = logs.0.join("app.log");
    std::fs::write(&file, "").expect("create");
    let spec = format!("fwd={}", file.display());
    let forward = format!("grpc://{grpc}");
    let pki_arg = pki.0.display().to_string();
    let agent = ServerProcess::start_agent_at(
        "127.0.0.1:0",
        "127.0.0.1:0",
        &agent_data.0,
        &[
            "--docker",
            "off",
            "--file",
            &spec,
            "--forward",
            &forward,
            "--tls-dir",
            &pki_arg,
        ],
    );
    wait_followed(&server, "fwd", || append(&file, 0, 0));
    append(&file, 1, 1000);
    wait_entries(&server, "fwd", 1000, 20);

    // The server goes away; the agent keeps what it collects meanwhile.
    server.stop();
    append(&file, 1001, 3000);
    std::thread::sleep(Duration::from_millis(1500));
    let drains = agent.get("/v1/drains");
    assert!(drains.contains("RETRYING"), "the forward waits: {drains}");
    server = ServerProcess::start_at(
        &server_http,
        &server_syslog,
        &server_data.0,
        &["-c", &config_arg, "--grpc", &grpc],
    );
    let entries = settled_entries(&server, "fwd", 3000, 30);
    let got: Vec<u64> = numbers(&entries, "f ")
        .into_iter()
        .filter(|&n| n > 0)
        .collect();
    assert_exactly_once(&got, 3000, "forwarded across a server outage");
    // The whole envelope arrives: the host as instance id, the tags.
    let node = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_owned();
    let last = entries.last().expect("entries");
    assert_eq!(last.instance_id, node);
    assert_eq!(last.tag("systail"), Some("fwd"));
    assert_eq!(last.tag("source_type"), Some("SYSTAIL"));
}

#[test]
fn a_globbed_file_is_followed_across_a_rename_with_a_gap() {
    let data = TempDir::new("agent-glob");
    let logs = TempDir::new("agent-glob-logs");
    let file = logs.0.join("a.log");
    std::fs::write(&file, "").expect("create");
    let spec = format!("g={}/*.log", logs.0.display());
    let agent = ServerProcess::start_agent_at(
        "127.0.0.1:0",
        "127.0.0.1:0",
        &data.0,
        &["--docker", "off", "--file", &spec],
    );
    wait_followed(&agent, "g", || append(&file, 0, 0));
    append(&file, 1, 500);
    // Renamed out of the glob, and nothing at the name for a while: the
    // tailer reads the old file to its end and ends; the next scan finds
    // the new file and starts it from its first line.
    std::fs::rename(&file, logs.0.join("a.log.1")).expect("rename");
    std::thread::sleep(Duration::from_millis(800));
    append(&file, 501, 1000);
    let entries = settled_entries(&agent, "g", 1000, 20);
    let got: Vec<u64> = numbers(&entries, "f ")
        .into_iter()
        .filter(|&n| n > 0)
        .collect();
    assert_exactly_once(&got, 1000, "across a rename rotation of a globbed file");
}
