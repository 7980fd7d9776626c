//! End to end: `sluice agent` against the real Docker engine. Containers
//! run from a test image imported from Debian's static busybox, with
//! `--network none`; each test follows only its own containers (by a
//! label), so the tests can share the daemon.
//!
//! The test command installs docker.io and busybox-static and starts
//! dockerd; without them these tests fail, they never skip.

mod support;

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use support::*;

const IMAGE: &str = "sluice-test-busybox:1";

/// Runs the docker CLI; panics with its stderr when it fails.
fn docker(args: &[&str]) -> String {
    let out = Command::new(require("docker"))
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The test image: a static busybox and a few applet links, imported once.
fn ensure_image() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let present = Command::new(require("docker"))
            .args(["image", "inspect", IMAGE])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if present {
            return;
        }
        let busybox = std::path::Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "/bin/busybox is missing: install Debian's busybox-static (scripts/test.sh does)"
        );
        let root = TempDir::new("rootfs");
        let bin = root.0.join("bin");
        std::fs::create_dir_all(&bin).expect("rootfs bin");
        std::fs::copy(busybox, bin.join("busybox")).expect("copy busybox");
        for applet in [
            "sh", "echo", "seq", "sleep", "usleep", "head", "tr", "cat", "yes",
        ] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet link");
        }
        let tar = root.0.join("rootfs.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&root.0)
            .arg("-cf")
            .arg(&tar)
            .arg("bin")
            .status()
            .expect("tar");
        assert!(status.success(), "tar of the test rootfs failed");
        docker(&["import", &tar.to_string_lossy(), IMAGE]);
    });
}

/// Containers a test started, removed when it ends.
struct Containers {
    label: String,
    ids: Vec<String>,
}

impl Containers {
    fn new(tag: &str) -> Self {
        ensure_image();
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Containers {
            label: format!("{tag}-{}-{n}", std::process::id()),
            ids: Vec::new(),
        }
    }

    /// The agent flag that follows only this test's containers.
    fn include(&self) -> String {
        format!("sluice.test:{}", self.label)
    }

    /// `docker run -d` of a shell script; returns the container id.
    fn run(&mut self, name: &str, options: &[&str], script: &str) -> String {
        let full_name = format!("{name}-{}", self.label);
        let label = format!("sluice.test={}", self.label);
        let mut args = vec![
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &full_name,
            "--label",
            &label,
        ];
        args.extend_from_slice(options);
        args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
        let id = docker(&args);
        self.ids.push(id.clone());
        id
    }

    fn name(&self, name: &str) -> String {
        format!("{name}-{}", self.label)
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
    }
}

/// Every log entry stored for `source`, oldest first: (type, payload,
/// envelope), read in pages by time.
fn all_entries(server: &ServerProcess, source: &str) -> Vec<envelope::v2::Envelope> {
    let mut out: Vec<envelope::v2::Envelope> = Vec::new();
    let mut start = 0i64;
    loop {
        let body = server.get(&format!(
            "/api/v1/read/{source}?start_time={start}&limit=1000"
        ));
        let batch = envelope::json::batch_from_json(body.as_bytes()).expect("a read answer");
        let n = batch.batch.len();
        if let Some(last) = batch.batch.last() {
            start = last.timestamp + 1;
        }
        out.extend(batch.batch);
        if n < 1000 {
            return out;
        }
    }
}

fn payload(e: &envelope::v2::Envelope) -> String {
    String::from_utf8_lossy(&e.as_log().expect("a log envelope").payload).into_owned()
}

/// Polls until `source` holds `n` entries (or `secs` pass); returns them.
fn wait_entries(
    server: &ServerProcess,
    source: &str,
    n: usize,
    secs: u64,
) -> Vec<envelope::v2::Envelope> {
    let mut last = Vec::new();
    eventually(secs, || {
        last = all_entries(server, source);
        (last.len() >= n).then_some(())
    });
    last
}

fn start_agent(data: &std::path::Path, containers: &Containers) -> ServerProcess {
    ServerProcess::start_agent_at(
        "127.0.0.1:0",
        "127.0.0.1:0",
        data,
        &["--include-label", &containers.include()],
    )
}

/// The numbers in lines `<prefix> <n>`, in the order stored.
fn numbers(entries: &[envelope::v2::Envelope], prefix: &str) -> Vec<u64> {
    entries
        .iter()
        .filter_map(|e| {
            payload(e)
                .strip_prefix(prefix)
                .and_then(|n| n.trim().parse().ok())
        })
        .collect()
}

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
    let tty = containers.run(
        "tty",
        &["-t"],
        "i=0; while [ $i -lt 500 ]; do i=$((i+1)); echo \"tty $i\"; done",
    );
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
    let id = containers.run(
        "counter",
        &[],
        &format!("i=0; while [ $i -lt {N} ]; do i=$((i+1)); echo \"n $i\"; usleep 300; done"),
    );
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
    let got = numbers(&entries, "n ");
    assert_eq!(got.len(), N as usize, "every line exactly once");
    assert_eq!(got, (1..=N).collect::<Vec<_>>(), "in order");
    agent.stop();
}
