//! End to end: drains from the `sluice server` binary to real receivers —
//! rsyslog over TCP and TLS (fields checked one by one), redis-server, a
//! local HTTPS receiver, files with rotation — plus outages, persistence
//! across restarts, refused URLs, files and names, and secrets that are
//! never shown back. A test that needs a peer program (rsyslogd, openssl,
//! redis-server, python3) fails when it is missing; it never skips.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use support::{eventually, free_port, require, ServerProcess, TempDir};

const LOOPBACK: &[&str] = &["--allow-drain-ranges", "127.0.0.0/8"];

/// Copies `file` into the server's TLS directory (`<data dir>/tls`, the
/// only place drain URLs may name TLS files from by default) and returns
/// the copy's path.
fn install_tls_file(server: &ServerProcess, file: &Path) -> std::path::PathBuf {
    let dir = server.data_dir.join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let to = dir.join(file.file_name().unwrap());
    std::fs::copy(file, &to).unwrap();
    to
}

fn lines(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix} {i}")).collect()
}

struct Rsyslog {
    child: Child,
    out: std::path::PathBuf,
    port: u16,
    _dir: TempDir,
}

impl Rsyslog {
    /// rsyslog receiving on TCP (TLS when `tls` holds the CA, cert, key
    /// paths), writing `hostname|app-name|procid|msgid|sd|msg` per message.
    fn start(tls: Option<(&Path, &Path, &Path)>) -> Self {
        let rsyslogd = require("rsyslogd");
        let dir = TempDir::new("rsyslog-rx");
        let port = free_port();
        let out = dir.0.join("out.log");
        let (global_tls, module) = match tls {
            Some((ca, cert, key)) => (
                format!(
                    "DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\"",
                    ca.display(), cert.display(), key.display()
                ),
                "module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\")".to_owned(),
            ),
            None => (String::new(), "module(load=\"imtcp\")".to_owned()),
        };
        let conf = dir.0.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{dir}" {global_tls})
{module}
input(type="imtcp" address="127.0.0.1" port="{port}")
template(name="fields" type="string" string="%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\n")
action(type="omfile" file="{out}" template="fields")
"#,
                dir = dir.0.display(),
                out = out.display()
            ),
        )
        .unwrap();
        let child = Command::new(rsyslogd)
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.0.join("pid"))
            .spawn()
            .expect("start rsyslogd");
        eventually(10, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .expect("rsyslog listens");
        Rsyslog {
            child,
            out,
            port,
            _dir: dir,
        }
    }

    fn wait_lines(&self, n: usize) -> Vec<String> {
        eventually(15, || {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            let got: Vec<String> = text.lines().map(str::to_owned).collect();
            (got.len() >= n).then_some(got)
        })
        .unwrap_or_else(|| {
            std::fs::read_to_string(&self.out)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect()
        })
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn check_loggregator_fields(line: &str, text: &str) {
    let f: Vec<&str> = line.splitn(6, '|').collect();
    assert_eq!(f.len(), 6, "{line}");
    assert_eq!(f[0], "acme.dev.web", "HOSTNAME org.space.app: {line}");
    assert_eq!(f[1], "web", "APP-NAME is the source id: {line}");
    assert_eq!(f[2], "[APP/PROC/WEB/0]", "PROCID: {line}");
    assert_eq!(f[3], "-", "MSGID: {line}");
    assert!(f[4].starts_with("[tags@47450 "), "SD: {line}");
    for tag in [
        "app_name=\"web\"",
        "space_name=\"dev\"",
        "organization_name=\"acme\"",
        "source_type=\"APP/PROC/WEB\"",
    ] {
        assert!(f[4].contains(tag), "SD has {tag}: {line}");
    }
    assert_eq!(f[5].trim_start(), text, "MSG: {line}");
}

#[test]
fn syslog_tcp_drain_to_rsyslog_field_by_field() {
    let rx = Rsyslog::start(None);
    let server = ServerProcess::start(LOOPBACK);
    let url = format!("syslog://127.0.0.1:{}", rx.port);
    let (code, out, err) = server.cli(&["drain", "add", "rs", &url, "--app", "web"]);
    assert_eq!(code, 0, "{out}{err}");
    server.wait_drain_state("rs", "RUNNING");
    server.post_lines("web", &lines("hello", 3));
    server.post_lines("other", &lines("not drained", 2));
    let got = rx.wait_lines(3);
    assert_eq!(got.len(), 3, "{got:?}");
    for (i, line) in got.iter().enumerate() {
        check_loggregator_fields(line, &format!("hello {i}"));
    }
    let (code, out, _) = server.cli(&["drain", "status"]);
    assert_eq!(code, 0);
    assert!(out.contains("rs") && out.contains("RUNNING["), "{out}");
}

fn make_certs(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let openssl = require("openssl");
    let run = |args: &[&str]| {
        let status = Command::new(&openssl)
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            status.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=sluice test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

#[test]
fn syslog_tls_drain_to_rsyslog() {
    let certs = TempDir::new("certs");
    let (ca, cert, key) = make_certs(&certs.0);
    let rx = Rsyslog::start(Some((&ca, &cert, &key)));
    let server = ServerProcess::start(LOOPBACK);
    // Unknown CA: the drain retries with a clear TLS error.
    let url = format!("syslog-tls://localhost:{}", rx.port);
    assert_eq!(
        server
            .cli(&["drain", "add", "untrusted", &url, "--app", "web"])
            .0,
        0
    );
    let v = server.wait_drain_state("untrusted", "RETRYING");
    let err = v["status"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        err.to_lowercase().contains("certificate") || err.to_lowercase().contains("issuer"),
        "{v}"
    );
    // Explained, with the way out: ?ca=FILE from the TLS directory.
    let tls_dir = server.data_dir.join("tls");
    assert!(
        err.contains("UnknownIssuer (the receiver's certificate is not signed by a CA among the system's roots")
            && err.contains(&format!("[drains] tls_dirs ({}", tls_dir.display()))
            && err.contains("?ca=FILE"),
        "{v}"
    );
    assert_eq!(server.cli(&["drain", "delete", "untrusted"]).0, 0);
    // A CA outside the server's TLS directory is refused.
    let url = format!("syslog-tls://localhost:{}?ca={}", rx.port, ca.display());
    let (code, _, err) = server.cli(&["drain", "add", "tls", &url, "--app", "web"]);
    assert_ne!(code, 0);
    assert!(err.contains("[drains] tls_dirs"), "{err}");
    // With the CA in the data dir's tls/: delivered over TLS.
    let ca = install_tls_file(&server, &ca);
    let url = format!("syslog-tls://localhost:{}?ca={}", rx.port, ca.display());
    let (code, out, err) = server.cli(&["drain", "add", "tls", &url, "--app", "web"]);
    assert_eq!(code, 0, "{out}{err}");
    server.wait_drain_state("tls", "RUNNING");
    server.post_lines("web", &lines("secret", 2));
    let got = rx.wait_lines(2);
    assert_eq!(got.len(), 2, "{got:?}");
    check_loggregator_fields(&got[0], "secret 0");
    check_loggregator_fields(&got[1], "secret 1");
}

#[test]
fn redis_drain_keeps_the_newest_limit() {
    let redis = require("redis-server");
    let port = free_port();
    let dir = TempDir::new("redis");
    let mut child = Command::new(redis)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
        ])
        .arg(&dir.0)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start redis-server");
    eventually(10, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .expect("redis listens");
    let server = ServerProcess::start(LOOPBACK);
    let url = format!("redis://127.0.0.1:{port}/0?key=hist&limit=10");
    assert_eq!(
        server
            .cli(&[
                "drain",
                "add",
                "hist",
                &url,
                "--app",
                "web",
                "-f",
                "{{.app_name}}: {{.text}}"
            ])
            .0,
        0
    );
    server.wait_drain_state("hist", "RUNNING");
    server.post_lines("web", &lines("line", 25));
    let cli = require("redis-cli");
    let redis_cli = |args: &[&str]| {
        let out = Command::new(&cli)
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let sent = eventually(10, || {
        (server.drain_status("hist")["status"]["sent"].as_u64() == Some(25)).then_some(())
    });
    assert!(sent.is_some(), "{}", server.drain_status("hist"));
    assert_eq!(redis_cli(&["LLEN", "hist"]), "10");
    assert_eq!(redis_cli(&["LINDEX", "hist", "0"]), "web: line 24");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn file_drain_follows_rotation() {
    let dir = TempDir::new("filedrain");
    let path = dir.0.join("all.log");
    let allowed = dir.0.to_str().unwrap();
    let server = ServerProcess::start(&["--allow-file-dirs", allowed]);
    let url = format!("file://{}", path.display());
    let (code, out, err) = server.cli(&[
        "drain",
        "add",
        "archive",
        &url,
        "--prefix",
        "apptail",
        "-f",
        "{{.app_name}}: {{.text}}",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    server.wait_drain_state("archive", "RUNNING");
    server.post_lines("web", &lines("before", 2));
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    eventually(10, || (read(&path).lines().count() >= 2).then_some(())).expect("lines in file");
    assert_eq!(read(&path), "web: before 0\nweb: before 1\n");
    // logrotate moves the file away: the drain starts a new one.
    let rotated = dir.0.join("all.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    server.post_lines("web", &lines("after", 2));
    eventually(10, || (read(&path).lines().count() >= 2).then_some(())).expect("new file");
    assert_eq!(read(&path), "web: after 0\nweb: after 1\n");
    assert_eq!(read(&rotated), "web: before 0\nweb: before 1\n");
}

/// A plain TCP syslog receiver counting octet-counted frames.
fn tcp_receiver(listener: TcpListener) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(stream);
                loop {
                    let mut len = Vec::new();
                    if r.read_until(b' ', &mut len).unwrap_or(0) == 0 {
                        return;
                    }
                    let Ok(n) = String::from_utf8_lossy(&len).trim().parse::<usize>() else {
                        return;
                    };
                    let mut msg = vec![0; n];
                    if r.read_exact(&mut msg).is_err() {
                        return;
                    }
                    let text = String::from_utf8_lossy(&msg).into_owned();
                    if tx.send(text).is_err() {
                        return;
                    }
                }
            });
        }
    });
    rx
}

#[test]
fn outage_goes_retrying_then_running_and_catches_up_in_order() {
    let server = ServerProcess::start(&["--allow-drain-ranges", "127.0.0.0/8"]);
    let port = free_port();
    let url = format!("syslog://127.0.0.1:{port}");
    // The receiver is down from the start: RETRYING with the error.
    assert_eq!(
        server
            .cli(&["drain", "add", "flaky", &url, "--app", "web"])
            .0,
        0
    );
    let v = server.wait_drain_state("flaky", "RETRYING");
    assert!(
        v["status"]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("refused"),
        "{v}"
    );
    // 2,000 lines while down: the drain falls behind and keeps them all.
    server.post_lines("web", &lines("down", 2_000));
    // `behind` is computed when asked; the age of the oldest waiting
    // message is looked up by the drain as the log grows.
    let behind = eventually(10, || {
        let v = server.drain_status("flaky");
        (v["status"]["behind"].as_u64() == Some(2_000)
            && v["status"]["oldest_undelivered_ns"].as_i64().unwrap_or(0) > 0)
            .then_some(v)
    });
    assert!(behind.is_some(), "{}", server.drain_status("flaky"));
    let (code, text, _) = server.cli(&["drain", "status", "flaky"]);
    assert_eq!(code, 0);
    assert!(text.contains("behind 2000"), "{text}");
    // The receiver comes back; the drain reconnects on its schedule (5 s)
    // and delivers everything, in order, once.
    let rx = tcp_receiver(TcpListener::bind(("127.0.0.1", port)).unwrap());
    server.wait_drain_state("flaky", "RUNNING");
    let mut got = Vec::new();
    while got.len() < 2_000 {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(m) => got.push(m),
            Err(_) => break,
        }
    }
    let delivered: Vec<String> = got
        .iter()
        .filter_map(|m| m.split(" down ").nth(1).map(|n| n.trim().to_owned()))
        .collect();
    let want: Vec<String> = (0..2_000).map(|i| i.to_string()).collect();
    assert_eq!(delivered, want, "every line, in order");
    assert!(
        !got.iter().any(|m| m.contains("messages lost")),
        "nothing lost: {:?}",
        got.iter().find(|m| m.contains("messages lost"))
    );
    // The status counts a batch once its send returned.
    let status = eventually(10, || {
        let v = server.drain_status("flaky");
        (v["status"]["behind"].as_u64() == Some(0) && v["status"]["sent"].as_u64() == Some(2_000))
            .then_some(v)
    })
    .expect("caught up");
    assert_eq!(status["status"]["dropped"].as_u64(), Some(0), "{status}");
    assert_eq!(status["status"]["sent"].as_u64(), Some(2_000), "{status}");
}

#[test]
fn drains_and_formats_survive_a_restart() {
    let data = TempDir::new("persist");
    let http = format!("127.0.0.1:{}", free_port());
    let syslog = format!("127.0.0.1:{}", free_port());
    // Outside the data dir: file drains never write inside it.
    let logs = TempDir::new("persist-logs");
    let file = logs.0.join("out.log");
    let allow = ["--allow-file-dirs", logs.0.to_str().unwrap()];
    let mut server = ServerProcess::start_at(&http, &syslog, &data.0, &allow);
    assert_eq!(
        server
            .cli(&["format", "set", "short", "{{.app_name}}> {{.text}}"])
            .0,
        0
    );
    let url = format!("file://{}", file.display());
    assert_eq!(
        server.cli(&["drain", "add", "keep", &url, "-f", "short"]).0,
        0
    );
    server.stop();
    let server = ServerProcess::start_at(&http, &syslog, &data.0, &allow);
    let (_, out, _) = server.cli(&["drain", "list"]);
    assert!(out.contains("keep") && out.contains("file://"), "{out}");
    server.wait_drain_state("keep", "RUNNING");
    server.post_lines("web", &lines("again", 1));
    let text = eventually(10, || {
        let t = std::fs::read_to_string(&file).unwrap_or_default();
        (!t.is_empty()).then_some(t)
    });
    assert_eq!(text.as_deref(), Some("web> again 0\n"));
}

#[test]
fn bad_urls_and_forbidden_addresses_are_refused() {
    let server = ServerProcess::start(&[]);
    let refuse = |args: &[&str], expect: &str| {
        let (code, out, err) = server.cli(args);
        assert_ne!(code, 0, "{args:?} should fail: {out}");
        assert!(err.contains(expect), "{args:?}: {err}");
    };
    refuse(
        &["drain", "add", "x", "gopher://h:1"],
        "unsupported drain scheme",
    );
    refuse(&["drain", "add", "x", "syslog://h"], "a port is required");
    refuse(
        &["drain", "add", "x", "syslog://127.0.0.1:514"],
        "--allow-drain-ranges",
    );
    refuse(
        &["drain", "add", "x", "syslog://169.254.169.254:514"],
        "cloud metadata",
    );
    // TLS files only from the TLS dir, without saying whether they exist.
    refuse(
        &["drain", "add", "x", "syslog-tls://h:1?ca=/nonexistent.pem"],
        "[drains] tls_dirs",
    );
    refuse(
        &["drain", "add", "x", "syslog-tls://h:1?ca=/etc/passwd"],
        "[drains] tls_dirs",
    );
    // No file drains unless the operator allows a directory.
    refuse(
        &["drain", "add", "x", "file:///tmp/sluice-e2e-never.log"],
        "--allow-file-dirs",
    );
    assert!(!Path::new("/tmp/sluice-e2e-never.log").exists());
    refuse(
        &["drain", "add", "bad name", "syslog://h:1"],
        "invalid drain name",
    );
    for name in [".", ".."] {
        refuse(
            &["drain", "add", name, "udp://203.0.113.1:9"],
            "invalid drain name",
        );
        // (The request path `/v1/formats/.` may be normalised before the
        // name is even checked; refused either way.)
        let (code, out, _) = server.cli(&["format", "set", name, "{{.text}}"]);
        assert_ne!(code, 0, "format {name:?}: {out}");
    }
    refuse(
        &["drain", "add", "x", "tcp://203.0.113.1:9", "-f", "{{.text"],
        "invalid format",
    );
    // A name that resolves to loopback is refused on add already.
    refuse(
        &["drain", "add", "sneaky", "syslog://localhost:9"],
        "--allow-drain-ranges",
    );
    refuse(
        &["drain", "add", "sneaky", "syslog://[::ffff:127.0.0.1]:9"],
        "--allow-drain-ranges",
    );
    // Per-app limit.
    for i in 0..5 {
        assert_eq!(
            server
                .cli(&[
                    "drain",
                    "add",
                    &format!("d{i}"),
                    "udp://203.0.113.1:9",
                    "--app",
                    "web"
                ])
                .0,
            0
        );
    }
    refuse(
        &["drain", "add", "d5", "udp://203.0.113.1:9", "--app", "web"],
        "per-app drain limit (5) reached",
    );
}

/// A minimal HTTPS receiver: answers the first request with 503, the rest
/// with 200, recording headers and bodies.
#[test]
fn https_drain_posts_logplex_batches_and_retries_one_frame_id() {
    let certs = TempDir::new("https-certs");
    let (ca, cert, key) = make_certs(&certs.0);
    let port = free_port();
    // A tiny python receiver over ssl (python3 is on every test machine).
    let script = certs.0.join("rx.py");
    std::fs::write(
        &script,
        format!(
            r#"import http.server, ssl, sys
count = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        n = int(self.headers.get('Content-Length', '0'))
        body = self.rfile.read(n)
        count += 1
        sys.stdout.write("REQ %d %s %s %s %s\n" % (count, self.headers.get('Content-Type'), self.headers.get('Logplex-Msg-Count'), self.headers.get('Logplex-Frame-Id'), body.decode('utf-8', 'replace').replace('\n', '\\n')))
        sys.stdout.flush()
        self.send_response(503 if count == 1 else 200)
        self.send_header('Content-Length', '0')
        self.end_headers()
    def log_message(self, *a): pass
s = http.server.HTTPServer(('127.0.0.1', {port}), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain('{cert}', '{key}')
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print('READY', flush=True)
s.serve_forever()
"#,
            cert = cert.display(),
            key = key.display()
        ),
    )
    .unwrap();
    let mut rx = Command::new("python3")
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 https receiver");
    let mut out = BufReader::new(rx.stdout.take().unwrap()).lines();
    assert_eq!(out.next().and_then(Result::ok).as_deref(), Some("READY"));
    let server = ServerProcess::start(LOOPBACK);
    let ca = install_tls_file(&server, &ca);
    let url = format!("https://localhost:{port}/logs?ca={}", ca.display());
    let (code, o, e) = server.cli(&["drain", "add", "hp", &url, "--app", "web"]);
    assert_eq!(code, 0, "{o}{e}");
    server.wait_drain_state("hp", "RUNNING");
    server.post_lines("web", &lines("batched", 3));
    let first = out.next().and_then(Result::ok).unwrap_or_default();
    let second = out.next().and_then(Result::ok).unwrap_or_default();
    // The status counts the batch once the 200 has been read.
    let sent = eventually(10, || {
        (server.drain_status("hp")["status"]["sent"] == 3).then_some(())
    });
    let _ = rx.kill();
    let _ = rx.wait();
    assert!(sent.is_some(), "{}", server.drain_status("hp"));
    let f1: Vec<&str> = first.splitn(6, ' ').collect();
    let f2: Vec<&str> = second.splitn(6, ' ').collect();
    assert_eq!(f1.len(), 6, "{first}");
    assert_eq!(f1[2], "application/logplex-1");
    assert_eq!(f1[3], "3", "Logplex-Msg-Count: {first}");
    assert_eq!(f1[4], f2[4], "the retry keeps its Logplex-Frame-Id");
    assert_eq!(f1[5], f2[5], "the retry sends the same body");
    // The body is octet-counted RFC 5424 frames.
    let body = f2[5].replace("\\n", "\n");
    let mut rest = body.as_str();
    for i in 0..3 {
        let (len, tail) = rest.split_once(' ').expect("octet count");
        let n: usize = len.parse().expect("count is a number");
        let (frame, tail) = tail.split_at(n);
        assert!(
            frame.starts_with("<14>1 ") && frame.ends_with(&format!("batched {i}\n")),
            "{frame:?}"
        );
        rest = tail;
    }
    assert!(rest.is_empty());
}

#[test]
fn a_restart_delivers_what_a_stop_left_exactly_once() {
    let dir = TempDir::new("flush");
    let data = dir.0.join("data");
    let path = dir.0.join("out.log");
    let allow = ["--allow-file-dirs", dir.0.to_str().unwrap()];
    let mut server = ServerProcess::start_at("127.0.0.1:0", "127.0.0.1:0", &data, &allow);
    let url = format!("file://{}", path.display());
    assert_eq!(server.cli(&["drain", "add", "f", &url]).0, 0);
    server.wait_drain_state("f", "RUNNING");
    server.post_lines("web", &lines("last", 5_000));
    // A stop finishes the batch under way; what the drain had not reached
    // stays in the log for the next start.
    server.stop();
    let mut server = ServerProcess::start_at("127.0.0.1:0", "127.0.0.1:0", &data, &allow);
    let done = eventually(20, || {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        (text.lines().count() >= 5_000).then_some(text)
    })
    .expect("every line delivered after the restart");
    let want: String = lines("last", 5_000)
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(done, want, "each line once, in order");
    server.stop();
}

#[test]
fn secrets_in_drain_urls_are_not_shown() {
    let server = ServerProcess::start(&[]);
    let url = "https://user:hunter2@203.0.113.1:9/in?token=s3cr3t&app=web";
    let (code, out, err) = server.cli(&["drain", "add", "hidden", url]);
    assert_eq!(code, 0, "{out}{err}");
    for args in [
        &["drain", "list"][..],
        &["drain", "list", "--json"][..],
        &["drain", "status"][..],
    ] {
        let (code, out, err) = server.cli(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(
            !out.contains("hunter2") && !out.contains("s3cr3t"),
            "{args:?}: {out}"
        );
    }
    let (_, out, _) = server.cli(&["drain", "list"]);
    assert!(
        out.contains("https://user:***@203.0.113.1:9/in?token=***&app=web"),
        "{out}"
    );
    for path in ["/v1/drains", "/v1/drains/hidden", "/routes"] {
        let body = server.get(path);
        assert!(
            body.contains("***") && !body.contains("hunter2") && !body.contains("s3cr3t"),
            "{path}: {body}"
        );
    }
    // Kept, privately, in the persisted definition.
    let file = server.data_dir.join("drains/hidden.json");
    assert!(std::fs::read_to_string(&file).unwrap().contains("hunter2"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// A `POST /v1/…` with a JSON body to the server: (status, JSON).
fn post_json(
    server: &ServerProcess,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let (status, text) = support::http_request(
        method,
        &format!("{}{path}", server.http),
        "application/json",
        body.as_bytes(),
    )
    .expect("request");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// logspout's habit: route URIs given to the server (here `[drains]
/// routes` in its config file) deliver every app's log lines to a real
/// receiver, as standing drains that cannot be deleted over the API.
#[test]
fn standing_routes_deliver_to_a_local_receiver() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    return;
                }
            }
        }
    });
    let dir = TempDir::new("routes");
    let config = dir.0.join("sluice.toml");
    std::fs::write(
        &config,
        format!("[drains]\nroutes = [\"raw+tcp://127.0.0.1:{port}\"]\n"),
    )
    .unwrap();
    // No --allow-drain-ranges: the operator's own routes reach loopback.
    let server = ServerProcess::start(&["--config", config.to_str().unwrap()]);
    let v = server.wait_drain_state("route.1", "RUNNING");
    assert_eq!(v["standing"], true, "{v}");
    assert_eq!(v["url"], format!("raw+tcp://127.0.0.1:{port}"), "{v}");
    server.post_lines("web", &lines("web says", 2));
    server.post_lines("api", &lines("api says", 1));
    let got: Vec<String> = (0..3)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).expect("a line"))
        .collect();
    assert_eq!(got, ["web says 0", "web says 1", "api says 0"]);
    let (status, v) = post_json(&server, "DELETE", "/v1/drains/route.1", "");
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("server's command line"),
        "{v}"
    );
    assert!(!server.data_dir.join("drains/route.1.json").exists());
}

/// Heroku's `drain test`: one message through the drain's format to the
/// real receiver (rsyslog), on a connection of its own; 502 with what the
/// connection said when the receiver is gone.
#[test]
fn drain_test_reaches_rsyslog() {
    let rx = Rsyslog::start(None);
    let server = ServerProcess::start(LOOPBACK);
    let url = format!("syslog://127.0.0.1:{}", rx.port);
    let body = format!("{{\"url\": \"{url}\", \"apps\": [\"web\"]}}");
    let (status, v) = post_json(&server, "POST", "/v1/drains", &body);
    assert_eq!(status, 201, "{v}");
    let name = v["name"].as_str().unwrap_or_default().to_owned();
    assert!(name.starts_with("d.") && name.len() == 10, "{v}");
    server.wait_drain_state(&name, "RUNNING");
    let (status, v) = post_json(&server, "POST", &format!("/v1/drains/{name}/test"), "{}");
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["detail"],
        format!("delivered to 127.0.0.1:{}", rx.port),
        "{v}"
    );
    let got = rx.wait_lines(1);
    assert_eq!(got.len(), 1, "{got:?}");
    let f: Vec<&str> = got[0].splitn(6, '|').collect();
    assert_eq!(&f[..4], ["sluice", "sluice", "[SLUICE]", "-"], "{got:?}");
    assert!(
        f[5].trim_start()
            .starts_with(&format!("sluice drain test for {name} at 20")),
        "{got:?}"
    );
    assert_eq!(server.drain_status(&name)["status"]["sent"], 0);
    drop(rx);
    let (status, v) = post_json(&server, "POST", &format!("/v1/drains/{name}/test"), "{}");
    assert_eq!(status, 502, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Connection refused"),
        "{v}"
    );
}

/// The README's file drain: FATAL while its path cannot be a file, back
/// to RUNNING by `restart` once the cause is gone, and then it delivers
/// what it could not before (it stayed in the log).
#[test]
fn fatal_file_drain_is_restarted() {
    let dir = TempDir::new("restart");
    let allowed = dir.0.join("var-log-sluice");
    let path = allowed.join("all.log");
    let server = ServerProcess::start(&["--allow-file-dirs", allowed.to_str().unwrap()]);
    let body = format!(
        "{{\"name\": \"archive\", \"url\": \"file://{}\", \"prefixes\": [\"apptail\"], \"format\": \"{{{{.human_time}}}} - {{{{.app_name}}}}: {{{{.text}}}}\"}}",
        path.display()
    );
    let (status, v) = post_json(&server, "POST", "/v1/drains", &body);
    assert_eq!(status, 201, "{v}");
    server.wait_drain_state("archive", "RUNNING");
    // Something takes the file's place: the next batch makes it FATAL.
    std::fs::remove_file(&path).ok();
    std::fs::create_dir_all(&path).unwrap();
    server.post_lines("web", &lines("held", 1));
    let v = server.wait_drain_state("archive", "FATAL");
    assert_eq!(v["status"]["state"], "FATAL", "{v}");
    std::fs::remove_dir(&path).unwrap();
    let (status, v) = post_json(&server, "POST", "/v1/drains/archive/restart", "{}");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"]["state"], "RUNNING", "{v}");
    server.post_lines("web", &lines("back", 1));
    let text = eventually(10, || {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        (text.lines().count() >= 2).then_some(text)
    })
    .expect("both lines after the restart");
    let got: Vec<&str> = text
        .lines()
        .map(|l| l.split(" - ").nth(1).unwrap_or(l))
        .collect();
    assert_eq!(got, ["web: held 0", "web: back 0"], "{text}");
}
