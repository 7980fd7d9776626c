//! gRPC ingress end to end: a client generated from Cloud Foundry's
//! published `loggregator.v2` definitions (`tests/python/loggregator_client.py`,
//! Python's grpcio-tools, installed by scripts/test.sh) sends every envelope
//! type through `BatchSender`, `Sender` and `Send` over mutual TLS with
//! certificates from `sluice certs`; the envelopes are read back field for
//! field. A client certificate from another CA, or none, is refused.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use envelope::v2::{Envelope, LogType, Message, ValueData};
use support::{require, sluice_ok, ServerProcess, TempDir};

/// Cloud Foundry's `loggregator.v2` .proto files: `$SLUICE_LOGGREGATOR_PROTO`,
/// else `../shared/proto/loggregator-v2` beside the repository, else
/// `/work/shared/proto/loggregator-v2`. Missing fails the test.
fn proto_dir() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [
        std::env::var_os("SLUICE_LOGGREGATOR_PROTO").map(PathBuf::from),
        Some(repo.join("../shared/proto/loggregator-v2")),
        Some(PathBuf::from("/work/shared/proto/loggregator-v2")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("ingress.proto").is_file())
        .expect("the loggregator.v2 .proto files (set SLUICE_LOGGREGATOR_PROTO to their directory)")
}

fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/loggregator_client.py")
}

/// `sluice certs DIR`, checked.
fn certs(dir: &Path) {
    sluice_ok(&[
        "certs",
        "--san",
        "grpc.test",
        dir.to_str().expect("utf-8 path"),
    ]);
    for key in ["ca.key", "server.key", "client.key"] {
        let mode = std::fs::metadata(dir.join(key))
            .expect(key)
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    // Never overwritten without --force.
    let again = Command::new(support::sluice_bin())
        .arg("certs")
        .arg(dir)
        .output()
        .expect("run sluice certs");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

/// A server whose gRPC wants client certificates from the CA in `pki`
/// (written there by [`certs`]).
fn mtls_server(pki: &Path) -> ServerProcess {
    let config = pki.join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[grpc]\ntls_cert = {:?}\ntls_key = {:?}\ntls_client_ca = {:?}\n",
            pki.join("server.crt"),
            pki.join("server.key"),
            pki.join("ca.crt"),
        ),
    )
    .expect("config");
    ServerProcess::start(&["--config", config.to_str().expect("utf-8 path")])
}

/// Runs the client; (exit code, stdout).
fn client(server: &ServerProcess, tls: Option<(&Path, &str)>, args: &[&str]) -> (i32, String) {
    let python = require("python3");
    let target = server
        .grpc
        .expect("the server printed its grpc address")
        .to_string();
    let mut cmd = Command::new(python);
    cmd.arg(client_script())
        .arg("--proto-dir")
        .arg(proto_dir())
        .args(["--target", &target])
        .args(args);
    if let Some((dir, prefix)) = tls {
        cmd.arg("--ca")
            .arg(dir.join("ca.crt"))
            .arg("--cert")
            .arg(dir.join(format!("{prefix}.crt")))
            .arg("--key")
            .arg(dir.join(format!("{prefix}.key")));
    }
    let out = cmd.output().expect("run the python client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(0) && out.status.code() != Some(3) {
        panic!("the client failed: {stdout}{stderr}");
    }
    (out.status.code().unwrap_or(-1), stdout)
}

/// The `base=` the client printed.
fn base(stdout: &str) -> i64 {
    stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("base=")?.parse().ok())
        .unwrap_or_else(|| panic!("no base in {stdout:?}"))
}

fn read(server: &ServerProcess, source: &str, n: usize) -> Vec<Envelope> {
    support::eventually(10, || {
        let body = server.get(&format!("/api/v1/read/{source}?limit=1000"));
        let batch = envelope::json::batch_from_json(body.as_bytes()).ok()?.batch;
        (batch.len() >= n).then_some(batch)
    })
    .unwrap_or_else(|| panic!("{n} envelopes of {source} never arrived"))
}

/// Envelope `i` as the client builds it (see its docs), field for field.
fn check(env: &Envelope, source: &str, i: i64, base: i64) {
    assert_eq!(env.source_id, source);
    assert_eq!(env.timestamp, base + i, "envelope {i}");
    assert_eq!(env.instance_id, (i % 3).to_string());
    assert_eq!(
        env.tags.get("seq").map(String::as_str),
        Some(i.to_string().as_str())
    );
    assert_eq!(env.tags.get("origin").map(String::as_str), Some(source));
    let legacy = env
        .deprecated_tags
        .get("legacy")
        .and_then(|v| v.data.clone());
    assert_eq!(legacy, Some(ValueData::Text("old".into())));
    match (i % 5, env.message.as_ref()) {
        (0, Some(Message::Log(log))) => {
            assert_eq!(log.payload.as_ref(), format!("line {i}").as_bytes());
            let want = if i % 10 == 5 {
                LogType::Err
            } else {
                LogType::Out
            };
            assert_eq!(log.r#type, want as i32);
        }
        (1, Some(Message::Counter(c))) => {
            assert_eq!(
                (c.name.as_str(), c.delta, c.total),
                ("requests", i as u64, 1000 + i as u64)
            );
        }
        (2, Some(Message::Gauge(g))) => {
            let cpu = &g.metrics["cpu"];
            let mem = &g.metrics["mem"];
            assert_eq!(
                (cpu.unit.as_str(), cpu.value),
                ("percentage", i as f64 / 2.0)
            );
            assert_eq!((mem.unit.as_str(), mem.value), ("bytes", 1024.0 * i as f64));
        }
        (3, Some(Message::Timer(t))) => {
            assert_eq!((t.name.as_str(), t.start, t.stop), ("http", i, i + 10));
        }
        (4, Some(Message::Event(e))) => {
            assert_eq!(
                (e.title.clone(), e.body.clone()),
                (format!("deploy {i}"), format!("body {i}"))
            );
        }
        (kind, other) => panic!("envelope {i} (kind {kind}): {other:?}"),
    }
}

#[test]
fn every_envelope_type_over_mutual_tls_and_other_cas_are_refused() {
    let pki = TempDir::new("grpc-pki");
    let other = TempDir::new("grpc-other-pki");
    certs(&pki.0);
    certs(&other.0);
    let server = mtls_server(&pki.0);
    let tls = Some((pki.0.as_path(), "client"));

    for (mode, source, count) in [
        ("batch", "grpc-batch", 250),
        ("sender", "grpc-sender", 60),
        ("send", "grpc-send", 120),
    ] {
        let (code, out) = client(
            &server,
            tls,
            &[
                "--mode",
                mode,
                "--source",
                source,
                "--count",
                &count.to_string(),
            ],
        );
        assert_eq!(code, 0, "{mode}: {out}");
        let base = base(&out);
        let got = read(&server, source, count);
        assert_eq!(got.len(), count, "{mode}");
        for (i, env) in got.iter().enumerate() {
            check(env, source, i as i64, base);
        }
    }

    // An empty source id takes the origin tag, as Metron does.
    let (code, out) = client(
        &server,
        tls,
        &[
            "--mode",
            "send",
            "--source",
            "from-origin",
            "--count",
            "5",
            "--empty-source",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(read(&server, "from-origin", 5).len(), 5);

    // The server certificate also serves the names Loggregator's carry.
    let (code, out) = client(
        &server,
        tls,
        &[
            "--mode",
            "send",
            "--source",
            "by-name",
            "--count",
            "1",
            "--server-name",
            "grpc.test",
        ],
    );
    assert_eq!(code, 0, "{out}");

    // A client certificate from another CA, and none at all: refused,
    // nothing stored.
    let (code, out) = client(
        &server,
        Some((other.0.as_path(), "client")),
        &["--mode", "send", "--source", "intruder", "--count", "3"],
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("UNAVAILABLE"), "{out}");
    let target = server.grpc.expect("grpc").to_string();
    let out = Command::new(require("python3"))
        .arg(client_script())
        .arg("--proto-dir")
        .arg(proto_dir())
        .args([
            "--target", &target, "--mode", "send", "--source", "intruder", "--count", "3", "--ca",
        ])
        .arg(pki.0.join("ca.crt"))
        .output()
        .expect("client");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A plaintext client cannot talk to the TLS port either.
    let (code, out) = client(
        &server,
        None,
        &["--mode", "send", "--source", "intruder", "--count", "3"],
    );
    assert_eq!(code, 3, "{out}");
    assert!(!server.get("/api/v1/meta").contains("intruder"));
    // 250 + 60 + 120 + 5 + 1 accepted; the refused never reached the service.
    assert_eq!(
        server.metric("sluice_ingress_envelopes_total{protocol=\"grpc\"}"),
        436
    );
}

#[test]
fn plaintext_grpc_on_loopback_and_refused_elsewhere() {
    let server = ServerProcess::start(&[]);
    let (code, out) = client(
        &server,
        None,
        &["--mode", "batch", "--source", "plain", "--count", "20"],
    );
    assert_eq!(code, 0, "{out}");
    let base = base(&out);
    for (i, env) in read(&server, "plain", 20).iter().enumerate() {
        check(env, "plain", i as i64, base);
    }

    // Not on loopback without TLS: the server will not start.
    let out = Command::new(support::sluice_bin())
        .args([
            "server",
            "--http",
            "127.0.0.1:0",
            "--syslog",
            "127.0.0.1:0",
            "--grpc",
            "0.0.0.0:0",
            "--token",
            "0123456789abcdef0123",
        ])
        .output()
        .expect("run sluice server");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs TLS") && err.contains("sluice certs"),
        "{err}"
    );
}

/// A receiver (`--mode receive`) in the background, once the server
/// answered its call: the child and its stdout lines.
fn receiver(
    server: &ServerProcess,
    args: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let target = server.grpc.expect("grpc").to_string();
    let mut child = Command::new(require("python3"))
        .arg(client_script())
        .arg("--proto-dir")
        .arg(proto_dir())
        .args(["--target", &target, "--mode", "receive"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start a receiver");
    let lines = support::lines_of(child.stdout.take().expect("stdout"));
    let (ready, seen) = support::wait_for_line(&lines, "ready", 30);
    assert!(ready, "the receiver {args:?} never got going: {seen:?}");
    (child, lines)
}

/// What a receiver printed until it exited: its envelopes (JSON) and the
/// rest of its lines.
fn received(
    (mut child, lines): (std::process::Child, std::sync::mpsc::Receiver<String>),
) -> (Vec<serde_json::Value>, Vec<String>) {
    let status = child.wait().expect("receiver exits");
    let (mut envs, mut other) = (Vec::new(), Vec::new());
    for line in lines.iter() {
        match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(v) if v.is_object() => envs.push(v),
            _ => other.push(line),
        }
    }
    assert!(status.success(), "receiver failed: {other:?}");
    (envs, other)
}

fn seqs(envs: &[serde_json::Value]) -> Vec<u64> {
    let mut v: Vec<u64> = envs
        .iter()
        .filter_map(|e| e["seq"].as_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn the_firehose_with_selectors_shard_groups_and_limits() {
    let dir = TempDir::new("grpc-egress");
    let config = dir.0.join("sluice.toml");
    std::fs::write(&config, "[grpc]\nmax_egress_streams = 6\n").expect("config");
    let server = ServerProcess::start(&["--config", config.to_str().expect("utf-8")]);

    // No selectors: refused as Loggregator refuses it.
    let target = server.grpc.expect("grpc").to_string();
    let out = Command::new(require("python3"))
        .arg(client_script())
        .arg("--proto-dir")
        .arg(proto_dir())
        .args(["--target", &target, "--mode", "receive"])
        .output()
        .expect("receiver");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("INVALID_ARGUMENT: Selectors cannot be empty"),
        "{text}"
    );

    // Six streams, the limit.
    let logs = receiver(&server, &["--selector", "fh:log", "--expect", "20"]);
    let counters = receiver(
        &server,
        &["--selector", ":counter:requests", "--expect", "20"],
    );
    let lone = receiver(&server, &["--selector", "fh:", "--expect", "100"]);
    let events = receiver(
        &server,
        &[
            "--selector",
            "fh:event",
            "--no-preferred-tags",
            "--single",
            "--expect",
            "20",
        ],
    );
    let shard = [
        "--selector",
        "fh:",
        "--shard-id",
        "nozzle",
        "--expect",
        "1000",
        "--timeout",
        "6",
    ];
    let shard_a = receiver(&server, &shard);
    let shard_b = receiver(&server, &shard);
    // A seventh is refused.
    let out = Command::new(require("python3"))
        .arg(client_script())
        .arg("--proto-dir")
        .arg(proto_dir())
        .args([
            "--target",
            &target,
            "--mode",
            "receive",
            "--selector",
            "fh:",
        ])
        .output()
        .expect("receiver");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("RESOURCE_EXHAUSTED"), "{text}");

    let (code, out) = client(
        &server,
        None,
        &["--mode", "batch", "--source", "fh", "--count", "100"],
    );
    assert_eq!(code, 0, "{out}");

    let (envs, _) = received(logs);
    assert_eq!(seqs(&envs), (0..100).step_by(5).collect::<Vec<u64>>());
    assert!(envs
        .iter()
        .all(|e| e["type"] == "log" && e["source_id"] == "fh"));
    let (envs, _) = received(counters);
    assert_eq!(seqs(&envs), (1..100).step_by(5).collect::<Vec<u64>>());
    assert!(envs.iter().all(|e| e["name"] == "requests"));
    let (envs, _) = received(lone);
    assert_eq!(seqs(&envs), (0..100).collect::<Vec<u64>>());
    let (envs, _) = received(events);
    assert_eq!(seqs(&envs), (4..100).step_by(5).collect::<Vec<u64>>());
    assert!(
        envs.iter().all(|e| e["deprecated"] == true),
        "tags moved to deprecated_tags"
    );

    // The shard group: disjoint, both busy, together everything.
    let (a, _) = received(shard_a);
    let (b, _) = received(shard_b);
    let (a, b) = (seqs(&a), seqs(&b));
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both busy: {} and {}",
        a.len(),
        b.len()
    );
    assert!(a.iter().all(|s| !b.contains(s)), "disjoint");
    let mut all: Vec<u64> = a.into_iter().chain(b).collect();
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<u64>>());
}

#[test]
fn self_metrics_reach_the_firehose_and_health_reports_loss_levels() {
    let dir = TempDir::new("grpc-self");
    let config = dir.0.join("sluice.toml");
    std::fs::write(&config, "[metrics]\nemit_interval_secs = 1\n").expect("config");
    let server = ServerProcess::start(&["--config", config.to_str().expect("utf-8")]);
    let (code, out) = client(
        &server,
        None,
        &["--mode", "send", "--source", "app", "--count", "50"],
    );
    assert_eq!(code, 0, "{out}");

    // sluice's own counters, on the firehose like any envelope.
    let rx = receiver(
        &server,
        &[
            "--selector",
            "sluice:counter:ingress_envelopes",
            "--expect",
            "1",
        ],
    );
    let (envs, _) = received(rx);
    assert_eq!(envs[0]["source_id"], "sluice");
    assert_eq!(envs[0]["name"], "ingress_envelopes");

    let health: serde_json::Value =
        serde_json::from_str(&server.get("/v1/health")).expect("health JSON");
    assert_eq!(health["last_minute"]["ingress"], 50, "{health}");
    assert_eq!(health["level"], "ok", "{health}");
    let out = Command::new(support::sluice_bin())
        .args(["health", "--server", &server.http])
        .output()
        .expect("sluice health");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("last minute") && text.contains("overall: ok"),
        "{text}"
    );
}

/// A consumer that stops reading loses the oldest envelopes, never holds
/// anything back, and is told exactly how many: every envelope sent is
/// either received or counted in a `dropped` counter from `sluice`.
#[test]
fn a_slow_firehose_consumer_is_told_exactly_what_it_lost() {
    // 100,000 lines of one app at once: past the noisy-neighbour limit.
    let server = ServerProcess::start(&["--max-lines-per-second", "0"]);
    let target = server.grpc.expect("grpc").to_string();
    let sent = 100_000;
    // Reads nothing for 4 s, while 100 MB arrive: far past its queue
    // (10,000 envelopes) and what HTTP/2 windows hold.
    let rx = receiver(
        &server,
        &[
            "--selector",
            "slow:log",
            "--pause",
            "4",
            "--expect",
            "1000000",
            "--timeout",
            "12",
        ],
    );
    let count = sent.to_string();
    sluice_ok(&[
        "emit", "--over", "grpc", "--target", &target, "--count", &count, "--size", "1000",
        "--source", "slow",
    ]);
    let (envs, _) = received(rx);
    let logs = envs.iter().filter(|e| e["source_id"] == "slow").count() as u64;
    let told: u64 = envs
        .iter()
        .filter(|e| e["source_id"] == "sluice" && e["name"] == "dropped")
        .map(|e| e["delta"].as_u64().expect("a delta"))
        .sum();
    assert!(told > 0 && logs > 0, "received {logs}, told dropped {told}");
    assert_eq!(logs + told, sent, "received {logs} + told dropped {told}");
    let metrics = server.get("/metrics");
    assert!(
        metrics.contains("sluice_drops_total{reason=\"queue_full\"}"),
        "the loss is counted in /metrics too"
    );

    // The same stream through `sluice nozzle`, which keeps up: all of it.
    let nozzle = Command::new(support::sluice_bin())
        .args([
            "nozzle",
            "--target",
            &target,
            "--source-id",
            "quick",
            "--type",
            "log",
        ])
        .args(["--stats", "--count", "20000", "--duration", "30"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sluice nozzle");
    std::thread::sleep(std::time::Duration::from_millis(500));
    sluice_ok(&[
        "emit", "--over", "grpc", "--target", &target, "--count", "20000", "--source", "quick",
    ]);
    let report = nozzle.wait_with_output().expect("nozzle ends");
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        text.contains("received 20000 ") && text.contains("dropped 0 "),
        "{text}"
    );
}

/// `sluice nozzle` prints the firehose as Log Cache JSON, one envelope a
/// line, over mutual TLS, with selectors.
#[test]
fn nozzle_prints_what_its_selectors_select() {
    let pki = TempDir::new("nozzle-pki");
    certs(&pki.0);
    let server = mtls_server(&pki.0);
    let target = server.grpc.expect("grpc").to_string();
    let tls = pki.0.to_str().expect("utf-8");
    let nozzle = Command::new(support::sluice_bin())
        .args(["nozzle", "--target", &target, "--tls-dir", tls])
        .args(["--source-id", "mixed", "--type", "counter", "--count", "20"])
        .args(["--duration", "30"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sluice nozzle");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (code, out) = client(
        &server,
        Some((&pki.0, "client")),
        &["--mode", "batch", "--source", "mixed", "--count", "100"],
    );
    assert_eq!(code, 0, "{out}");
    let report = nozzle.wait_with_output().expect("nozzle ends");
    assert!(report.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&report.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON envelope per line"))
        .collect();
    // Envelope i is a counter when i % 5 == 1: 20 of the 100.
    assert_eq!(lines.len(), 20);
    for (k, env) in lines.iter().enumerate() {
        let i = 5 * k as u64 + 1;
        assert_eq!(env["source_id"], "mixed");
        assert_eq!(env["counter"]["name"], "requests");
        assert_eq!(env["counter"]["delta"], i.to_string(), "{env}");
    }
}

/// `sluice emit` sends numbered lines over gRPC (mutual TLS), syslog and
/// HTTP, and numbered counters and gauges over gRPC, and `--verify` finds
/// every one, once.
#[test]
fn emit_sends_and_verifies_over_grpc_syslog_and_http() {
    let pki = TempDir::new("emit-pki");
    certs(&pki.0);
    let server = mtls_server(&pki.0);
    let grpc = server.grpc.expect("grpc").to_string();
    let syslog = server.syslog_tcp.to_string();
    for (over, target, extra) in [
        (
            "grpc",
            grpc.as_str(),
            vec!["--tls-dir", pki.0.to_str().expect("utf-8")],
        ),
        ("syslog", syslog.as_str(), vec!["--sources", "3"]),
        ("http", server.http.as_str(), vec!["--batch", "250"]),
        (
            "grpc",
            grpc.as_str(),
            vec![
                "--tls-dir",
                pki.0.to_str().expect("utf-8"),
                "--kind",
                "counter",
            ],
        ),
        (
            "grpc",
            grpc.as_str(),
            vec![
                "--kind",
                "gauge",
                "--tls-dir",
                pki.0.to_str().expect("utf-8"),
            ],
        ),
    ] {
        let out = Command::new(support::sluice_bin())
            .args([
                "emit", "--over", over, "--target", target, "--count", "3000",
            ])
            .args([
                "--source",
                &format!("emit-{over}"),
                "--verify",
                "--server",
                &server.http,
            ])
            .args(&extra)
            .output()
            .expect("sluice emit");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{over}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("received 3000 unique 3000 duplicates 0 lost 0"),
            "{over}: {text}"
        );
    }
}
