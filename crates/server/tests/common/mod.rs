//! A server on loopback port 0 with a throwaway data dir, for tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sluice_server::{Config, Server};
use tokio_util::sync::CancellationToken;

#[allow(dead_code)] // each test binary uses a different part
pub struct TestServer {
    pub server: Server,
    pub http: String,
    pub syslog: SocketAddr,
    pub udp: SocketAddr,
    _dir: TempDir,
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("sluice-test-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
    start_in(TempDir::new("srv"), tweak).await
}

/// A server on `dir` (which it removes when dropped).
pub async fn start_in(dir: TempDir, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = Config {
        data_dir: dir.0.clone(),
        ..Default::default()
    };
    config.http.listen = "127.0.0.1:0".parse().expect("addr");
    config.syslog.listen = "127.0.0.1:0".parse().expect("addr");
    config.grpc.listen = "127.0.0.1:0".parse().expect("addr");
    config.http.heartbeat_secs = 1;
    // sluice's own metric envelopes would change the counts tests check.
    config.metrics.emit_interval_secs = 0;
    tweak(&mut config);
    let server = Server::start(config, CancellationToken::new())
        .await
        .expect("server starts");
    TestServer {
        http: format!("http://{}", server.http_addr),
        syslog: server.syslog_tcp_addr.expect("tcp"),
        udp: server.syslog_udp_addr.expect("udp"),
        server,
        _dir: dir,
    }
}

#[allow(dead_code)]
impl TestServer {
    /// Waits until the log holds `n` entries (syslog ingest is
    /// asynchronous to the sender).
    pub async fn wait_for_entries(&self, n: u64) -> u64 {
        for _ in 0..200 {
            let have = self.entries().await;
            if have >= n {
                return have;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.entries().await
    }

    /// Shuts the server down and hands back its data dir.
    pub async fn stop(self) -> TempDir {
        self.server.shutdown();
        self.server.wait(Duration::from_secs(10)).await;
        self._dir
    }

    /// Entries in the log's per-source index.
    pub async fn entries(&self) -> u64 {
        self.server.log.stats().await.expect("log stats").entries
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.http))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// The value of one sample line in /metrics, 0 when absent.
    pub async fn metric(&self, sample: &str) -> u64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0)
    }

    /// Log Cache's read of a source with a query string.
    pub async fn read(&self, source: &str, query: &str) -> Vec<envelope::Envelope> {
        let body = reqwest::get(format!("{}/api/v1/read/{source}?{query}", self.http))
            .await
            .expect("read")
            .bytes()
            .await
            .expect("body");
        envelope::json::batch_from_json(&body)
            .expect("read json")
            .batch
    }

    /// Payloads of a source, oldest first, via Log Cache's read API.
    pub async fn payloads(&self, source: &str) -> Vec<String> {
        texts(&self.read(source, "limit=1000").await)
    }
}

/// The log payloads of envelopes, as text.
#[allow(dead_code)]
pub fn texts(envelopes: &[envelope::Envelope]) -> Vec<String> {
    envelopes
        .iter()
        .filter_map(|e| e.as_log())
        .map(|l| String::from_utf8_lossy(&l.payload).into_owned())
        .collect()
}
