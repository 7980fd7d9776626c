//! Helpers for end-to-end tests: the real `sluice` binary on loopback
//! ports, and real peers (logger, rsyslogd) found on PATH.

#![allow(dead_code)] // each test binary uses a different part

pub mod browser;
pub mod docker;
pub mod nats;
pub mod reads;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn sluice_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sluice")
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("sluice-e2e-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `sluice server` child process.
pub struct ServerProcess {
    pub child: Child,
    pub http: String,
    pub syslog_tcp: SocketAddr,
    pub syslog_udp: SocketAddr,
    /// Where gRPC listens, when the server serves it.
    pub grpc: Option<SocketAddr>,
    /// Where statsd listens, when asked for (`--statsd`).
    pub statsd: Option<SocketAddr>,
    pub data_dir: PathBuf,
    _dir: Option<TempDir>,
}

impl ServerProcess {
    /// Starts on port 0 everywhere with a fresh data dir.
    pub fn start(extra: &[&str]) -> Self {
        let dir = TempDir::new("server");
        let data = dir.0.clone();
        let mut s = Self::start_at("127.0.0.1:0", "127.0.0.1:0", &data, extra);
        s._dir = Some(dir);
        s
    }

    /// Starts on port 0 everywhere with a fresh data dir, with these
    /// environment variables set for the server.
    pub fn start_with_env(extra: &[&str], envs: &[(&str, &str)]) -> Self {
        let dir = TempDir::new("server");
        let data = dir.0.clone();
        let mut s = Self::start_at_with_env("127.0.0.1:0", "127.0.0.1:0", &data, extra, envs);
        s._dir = Some(dir);
        s
    }

    /// Starts at given addresses (to restart on the same ports).
    pub fn start_at(http: &str, syslog: &str, data_dir: &std::path::Path, extra: &[&str]) -> Self {
        Self::start_at_with_env(http, syslog, data_dir, extra, &[])
    }

    /// [`start_at`](Self::start_at) with environment variables set.
    pub fn start_at_with_env(
        http: &str,
        syslog: &str,
        data_dir: &std::path::Path,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        Self::spawn("server", http, syslog, data_dir, extra, envs)
    }

    /// `sluice agent` (the server plus Docker collection) at given
    /// addresses.
    pub fn start_agent_at(
        http: &str,
        syslog: &str,
        data_dir: &std::path::Path,
        extra: &[&str],
    ) -> Self {
        Self::spawn("agent", http, syslog, data_dir, extra, &[])
    }

    fn spawn(
        command: &str,
        http: &str,
        syslog: &str,
        data_dir: &std::path::Path,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        // gRPC on a port of its own unless `extra` names one (a restart
        // on the same port).
        let grpc: &[&str] = if extra.contains(&"--grpc") {
            &[]
        } else {
            &["--grpc", "127.0.0.1:0"]
        };
        let mut child = Command::new(sluice_bin())
            .args([command, "--http", http, "--syslog", syslog])
            .args(grpc)
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("SLUICE_LOG", "warn")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sluice server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut http_url, mut tcp, mut udp, mut grpc, mut statsd) = (None, None, None, None, None);
        while let Some(Ok(line)) = lines.next() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["http", url, ..] => http_url = Some(url.to_string()),
                ["syslog", "tcp", addr] => tcp = addr.parse().ok(),
                ["syslog", "udp", addr] => udp = addr.parse().ok(),
                ["grpc", addr] => grpc = addr.parse().ok(),
                ["statsd", "udp", addr] => statsd = addr.parse().ok(),
                ["data", ..] => break,
                _ => {}
            }
        }
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        ServerProcess {
            child,
            http: http_url.expect("server printed its http address"),
            syslog_tcp: tcp.expect("server printed its syslog tcp address"),
            syslog_udp: udp.expect("server printed its syslog udp address"),
            grpc,
            statsd,
            data_dir: data_dir.to_owned(),
            _dir: None,
        }
    }

    pub fn get(&self, path: &str) -> String {
        http_get(&format!("{}{path}", self.http)).unwrap_or_default()
    }

    /// Payloads stored for `source`, oldest first.
    pub fn payloads(&self, source: &str) -> Vec<String> {
        let body = self.get(&format!("/api/v1/read/{source}?limit=1000"));
        let Ok(batch) = envelope::json::batch_from_json(body.as_bytes()) else {
            return Vec::new();
        };
        batch
            .batch
            .iter()
            .filter_map(|e| e.as_log())
            .map(|l| String::from_utf8_lossy(&l.payload).into_owned())
            .collect()
    }

    /// Polls until `source` has at least `n` payloads (or 10 s pass).
    pub fn wait_payloads(&self, source: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.payloads(source);
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One sample from /metrics, 0 when absent.
    pub fn metric(&self, sample: &str) -> u64 {
        self.get("/metrics")
            .lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0)
    }

    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking GET with a short timeout (std only, HTTP/1.0).
pub fn http_get(url: &str) -> Option<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response).into_owned();
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

/// Runs `sluice ARGS…` to its end, checked; its stdout.
pub fn sluice_ok(args: &[&str]) -> String {
    let out = Command::new(sluice_bin())
        .args(args)
        .output()
        .expect("run sluice");
    assert!(
        out.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a peer program is installed; tests that need it fail loudly
/// when it is not (the test script installs them).
pub fn require(program: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("{program} is not installed; run scripts/test.sh, which installs the test peers")
    })
}

/// A blocking request with a body (std only, HTTP/1.0); the status code and
/// the response body.
pub fn http_request(
    method: &str,
    url: &str,
    content_type: &str,
    body: &[u8],
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .ok()?;
    stream.write_all(body).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

impl ServerProcess {
    /// Posts plain-text lines for an app (`source_id` = app name).
    pub fn post_lines(&self, app: &str, lines: &[String]) {
        let url = format!(
            "{}/logs?source_id={app}&app_name={app}&space_name=dev&organization_name=acme&source_type=APP/PROC/WEB&instance_id=0",
            self.http
        );
        let (status, body) = http_request("POST", &url, "text/plain", lines.join("\n").as_bytes())
            .expect("POST /logs");
        assert_eq!(status, 200, "{body}");
    }

    /// Runs `sluice ARGS… --server URL` and returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(sluice_bin())
            .args(args)
            .args(["--server", &self.http])
            .output()
            .expect("run sluice");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A drain's status JSON (`GET /v1/drains/NAME`).
    pub fn drain_status(&self, name: &str) -> serde_json::Value {
        let body = self.get(&format!("/v1/drains/{name}"));
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
    }

    /// Polls until the drain's state is `state` (or 20 s pass).
    pub fn wait_drain_state(&self, name: &str, state: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.drain_status(name);
            if v["status"]["state"] == state || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A free TCP port on loopback (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls `check` until it returns Some (or `secs` pass).
pub fn eventually<T>(secs: u64, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs to completion, failing the test if it takes longer than `limit`.
pub fn run_within(mut cmd: Command, limit: Duration) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let child = cmd.spawn().expect("spawn sluice");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => (output.expect("wait"), started.elapsed()),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("sluice did not finish within {limit:?}");
        }
    }
}

impl ServerProcess {
    /// Posts plain-text lines as `POST /logs?QUERY` (`source_id=…&app_name=…`).
    pub fn post_text(&self, query: &str, lines: &[&str]) {
        let url = format!("{}/logs?{query}", self.http);
        let (status, body) = http_request("POST", &url, "text/plain", lines.join("\n").as_bytes())
            .expect("POST /logs");
        assert_eq!(status, 200, "{body}");
    }

    /// [`cli`](Self::cli) with environment variables set (`TZ`, …).
    pub fn cli_env(&self, args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
        let out = Command::new(sluice_bin())
            .args(args)
            .args(["--server", &self.http])
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run sluice");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// A pseudo-terminal: the controller, and its terminal side opened.
pub fn open_pty() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd as _;
    // SAFETY: plain libc calls on a descriptor we own; the name buffer is
    // ours and NUL-terminated by ptsname_r on success.
    unsafe {
        let controller = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(controller >= 0, "posix_openpt");
        let controller_file = std::fs::File::from_raw_fd(controller);
        assert_eq!(libc::grantpt(controller), 0, "grantpt");
        assert_eq!(libc::unlockpt(controller), 0, "unlockpt");
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(
            libc::ptsname_r(controller, name.as_mut_ptr(), name.len()),
            0,
            "ptsname_r"
        );
        let path = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_string_lossy()
            .into_owned();
        let terminal = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open the terminal side");
        (controller_file, terminal)
    }
}

/// Runs `cmd` with its stdout on a pseudo-terminal (within 20 s); its exit
/// code and what it printed there.
pub fn stdout_on_a_terminal(mut cmd: Command) -> (Option<i32>, String) {
    use std::io::Read as _;
    let (mut controller, terminal) = open_pty();
    cmd.stdout(Stdio::from(terminal)).stderr(Stdio::piped());
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // Ends (EIO) once no one holds the terminal side.
        while let Ok(n) = controller.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        seen
    });
    let (out, _) = run_within(cmd, Duration::from_secs(20));
    let shown = reader.join().expect("reader");
    (
        out.status.code(),
        String::from_utf8_lossy(&shown).into_owned(),
    )
}

/// The lines of a child's pipe, as they come, from a thread.
pub fn lines_of(pipe: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits up to `secs` for a line that contains `needle`; the lines read
/// until then (the match last), or all read if it never came.
pub fn wait_for_line(
    rx: &std::sync::mpsc::Receiver<String>,
    needle: &str,
    secs: u64,
) -> (bool, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return (true, seen);
                }
            }
            Err(_) => break,
        }
    }
    (false, seen)
}

/// A TCP receiver on loopback that collects the lines sent to it.
pub struct TcpReceiver {
    pub port: u16,
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl TcpReceiver {
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(conn).lines() {
                        let Ok(line) = line else { break };
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        TcpReceiver { port, lines: rx }
    }
}

/// `sluice ARGS…` with the token and server variables cleared, output
/// captured, no stdin.
pub fn sluice_clean(args: &[&str]) -> Command {
    let mut cmd = Command::new(sluice_bin());
    cmd.args(args)
        .env_remove("SLUICE_TOKEN")
        .env_remove("SLUICE_SERVER_TOKENS")
        .env_remove("SLUICE_SERVER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

impl ServerProcess {
    /// `kill -9`: the process dies at once, with no chance to flush or
    /// close anything (the machine and its page cache stay up).
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }
}

/// A syslog receiver on loopback for octet-counted TCP (RFC 6587 `LEN SP
/// MSG`, as sluice's syslog drains write): each whole frame's MSG is
/// sent on `frames`; a frame cut off by a dropped connection is not.
/// While it holds, no connection reads on: the sender's writes back up
/// (small socket buffers fill) until [`hold`](Self::hold)`(false)`.
pub struct SyslogReceiver {
    pub port: u16,
    pub frames: std::sync::mpsc::Receiver<String>,
    hold: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl SyslogReceiver {
    pub fn start() -> Self {
        Self::start_holding_at(usize::MAX)
    }

    /// Starts holding by itself once `at` frames were received in all.
    pub fn start_holding_at(at: usize) -> Self {
        use std::io::Read as _;
        use std::os::fd::AsRawFd as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        // Small receive buffers (inherited by accepted sockets), so little
        // sits in the kernel while the receiver holds.
        let size: libc::c_int = 16 * 1024;
        // SAFETY: a plain int option on a socket we own.
        unsafe {
            libc::setsockopt(
                listener.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                std::ptr::addr_of!(size).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = std::sync::mpsc::channel();
        let hold = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let gate = std::sync::Arc::clone(&hold);
        let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { break };
                let tx = tx.clone();
                let gate = std::sync::Arc::clone(&gate);
                let received = std::sync::Arc::clone(&received);
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        // Whole frames at the front of the buffer.
                        while let Some((msg, used)) = octet_frame(&buf) {
                            if tx.send(msg).is_err() {
                                return;
                            }
                            buf.drain(..used);
                            let n = received.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let (held, wake) = &*gate;
                            let mut held = held.lock().expect("gate");
                            if n + 1 == at {
                                *held = true;
                            }
                            while *held {
                                held = wake.wait(held).expect("gate");
                            }
                        }
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        SyslogReceiver {
            port,
            frames: rx,
            hold,
        }
    }

    /// Stops (true) or resumes (false) reading.
    pub fn hold(&self, on: bool) {
        let (held, wake) = &*self.hold;
        *held.lock().expect("gate") = on;
        wake.notify_all();
    }
}

/// The first octet-counted frame in `buf`: its MSG and the bytes it took.
fn octet_frame(buf: &[u8]) -> Option<(String, usize)> {
    let space = buf.iter().position(|&b| b == b' ')?;
    let len: usize = std::str::from_utf8(&buf[..space]).ok()?.parse().ok()?;
    let end = space + 1 + len;
    let msg = buf.get(space + 1..end)?;
    Some((String::from_utf8_lossy(msg).into_owned(), end))
}

/// POSTs a text body (one entry a line) to `{http}/logs?{query}`: whether
/// the server acknowledged it (200), or `None` when no answer came (the
/// connection failed: the server is down).
pub fn post_text_to(http: &str, query: &str, body: &str) -> Option<bool> {
    let url = format!("{http}/logs?{query}");
    http_request("POST", &url, "text/plain", body.as_bytes()).map(|(status, _)| status == 200)
}

/// The query of `POST /logs` for text lines of one app (source id = name).
pub fn app_query(app: &str) -> String {
    format!("source_id={app}&app_name={app}&space_name=dev&organization_name=acme&source_type=APP/PROC/WEB&instance_id=0")
}

/// The message texts of the last `n` stored log lines of `app`, oldest
/// first, as `sluice logs APP --recent -n N` prints them.
pub fn recent_texts(http: &str, app: &str, n: usize) -> Vec<String> {
    let (out, _) = run_within(
        {
            let mut cmd = sluice_clean(&["logs", app, "--recent", "-n", &n.to_string()]);
            cmd.args(["--server", http]);
            cmd
        },
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "sluice logs --recent: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(" OUT ").map(|(_, text)| text.to_owned()))
        .collect()
}
