//! Docker helpers for the agent's end-to-end tests: the test image (a
//! static busybox imported once), containers labelled per test and removed
//! after it, and an agent that follows only them.

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

/// A shell script that prints `PREFIX 1` … `PREFIX n`, pausing
/// `pause_us` microseconds after each line (0: as fast as it can).
pub fn counting(prefix: &str, n: u64, pause_us: u64) -> String {
    let pause = if pause_us > 0 {
        format!(" usleep {pause_us};")
    } else {
        String::new()
    };
    format!("i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo \"{prefix} $i\";{pause} done")
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

/// `sluice agent` on fresh ports following only `containers`.
pub fn start_agent(data: &std::path::Path, containers: &Containers) -> ServerProcess {
    start_agent_with(data, containers, &[])
}

/// [`start_agent`] with more flags.
pub fn start_agent_with(
    data: &std::path::Path,
    containers: &Containers,
    extra: &[&str],
) -> ServerProcess {
    let include = containers.include();
    let mut args = vec!["--include-label", include.as_str()];
    args.extend_from_slice(extra);
    ServerProcess::start_agent_at("127.0.0.1:0", "127.0.0.1:0", data, &args)
}
