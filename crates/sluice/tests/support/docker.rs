//! Docker helpers for the agent's end-to-end tests: the test image (a
//! static busybox imported once), containers labelled per test and removed
//! after it, and reads of what the agent stored.

use std::process::Command;
use std::sync::OnceLock;

use super::*;

pub const IMAGE: &str = "sluice-test-busybox:1";

/// Runs the docker CLI; panics with its stderr when it fails.
pub fn docker(args: &[&str]) -> String {
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
pub fn ensure_image() {
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
pub struct Containers {
    label: String,
    ids: Vec<String>,
}

impl Containers {
    pub fn new(tag: &str) -> Self {
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
    pub fn include(&self) -> String {
        format!("sluice.test:{}", self.label)
    }

    /// `docker run -d` of a shell script; returns the container id.
    pub fn run(&mut self, name: &str, options: &[&str], script: &str) -> String {
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

    pub fn name(&self, name: &str) -> String {
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
pub fn all_entries(server: &ServerProcess, source: &str) -> Vec<envelope::v2::Envelope> {
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

pub fn payload(e: &envelope::v2::Envelope) -> String {
    String::from_utf8_lossy(&e.as_log().expect("a log envelope").payload).into_owned()
}

/// Polls until `source` holds `n` entries (or `secs` pass); returns them.
pub fn wait_entries(
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

pub fn start_agent(data: &std::path::Path, containers: &Containers) -> ServerProcess {
    ServerProcess::start_agent_at(
        "127.0.0.1:0",
        "127.0.0.1:0",
        data,
        &["--include-label", &containers.include()],
    )
}

/// The numbers in lines `<prefix> <n>`, in the order stored.
pub fn numbers(entries: &[envelope::v2::Envelope], prefix: &str) -> Vec<u64> {
    entries
        .iter()
        .filter_map(|e| {
            payload(e)
                .strip_prefix(prefix)
                .and_then(|n| n.trim().parse().ok())
        })
        .collect()
}

/// Asserts `got` is 1..=n in order, saying briefly what is wrong if not
/// (how many, the first repeats, the first missing), never the whole list.
pub fn assert_exactly_once(got: &[u64], n: u64, when: &str) {
    if got.iter().copied().eq(1..=n) {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    let repeats: Vec<u64> = got
        .iter()
        .copied()
        .filter(|x| !seen.insert(*x))
        .take(10)
        .collect();
    let missing: Vec<u64> = (1..=n).filter(|x| !seen.contains(x)).take(10).collect();
    let out_of_order = got.windows(2).filter(|w| w[1] < w[0]).count();
    panic!(
        "{when}: {} lines for {n} numbers; first repeats {repeats:?}; first missing {missing:?}; {out_of_order} steps back",
        got.len()
    );
}
