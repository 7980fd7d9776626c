//! Resource bounds of the real server under hostile clients: each test
//! drives the `sluice server` binary over loopback with a bounded amount of
//! abuse and asserts on the server's resident memory (`VmRSS` from
//! `/proc/PID/status`, with a margin) or on a real client still getting in.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{http_request, ServerProcess, TempDir};

/// The server's resident memory in MiB.
fn rss_mib(server: &ServerProcess) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .expect("server status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kib / 1024
}

fn host(server: &ServerProcess) -> String {
    server.http.trim_start_matches("http://").to_owned()
}

/// Lets this test process open a few thousand sockets.
fn raise_open_files() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain struct in, plain struct out.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// A server with a config file (for settings that have no flag).
fn server_with(config: &str, extra: &[&str]) -> (ServerProcess, TempDir) {
    let dir = TempDir::new("bounds");
    let path = dir.0.join("sluice.toml");
    std::fs::write(&path, config).expect("config");
    let path = path.display().to_string();
    let mut args = vec!["--config", path.as_str()];
    args.extend_from_slice(extra);
    (ServerProcess::start(&args), dir)
}

#[test]
fn lines_cut_from_big_text_bodies_do_not_keep_the_bodies() {
    // Each body is one short line and 8 MiB of newlines; before the fix
    // every stored line kept its whole body alive (1.38 GB for 150 posts).
    let server = ServerProcess::start(&["--memory-budget-mb", "16"]);
    let mut body = b"a\n".to_vec();
    body.resize(8 << 20, b'\n');
    let url = format!("{}/logs?source_id=big", server.http);
    for _ in 0..60 {
        let (status, answer) = http_request("POST", &url, "text/plain", &body).expect("post");
        assert_eq!(status, 200, "{answer}");
    }
    assert_eq!(server.wait_payloads("big", 60).len(), 60);
    let rss = rss_mib(&server);
    eprintln!("figure: RSS {rss} MiB after 60 x 8 MiB text bodies");
    assert!(rss < 150, "RSS {rss} MiB after 60 × 8 MiB bodies");
}

#[test]
fn stalled_bodies_are_bounded_by_the_inflight_budget() {
    raise_open_files();
    let server = ServerProcess::start(&[]);
    let h = host(&server);
    let baseline = rss_mib(&server);
    // 100 uploads announce 7 MiB each, send 6 MiB of it and stall. At most
    // [ingest] max_inflight_bytes (64 MiB) is buffered; the rest are told
    // 503 with Retry-After.
    let chunk = vec![b'x'; 1 << 20];
    let mut stalled = Vec::new();
    let mut refused = 0;
    for _ in 0..100 {
        let mut tcp = TcpStream::connect(&h).expect("connect");
        write!(
            tcp,
            "POST /logs?source_id=s HTTP/1.1\r\nHost: {h}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            7 << 20
        )
        .expect("headers");
        let mut sent_all = true;
        for _ in 0..6 {
            if tcp.write_all(&chunk).is_err() {
                sent_all = false;
                break;
            }
        }
        if !sent_all {
            refused += 1;
        }
        stalled.push(tcp);
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss = rss_mib(&server);
    eprintln!("figure: RSS {rss} MiB (baseline {baseline}) with 100 stalled 7 MiB bodies");
    assert!(
        rss < baseline + 64 + 80,
        "RSS {rss} MiB (baseline {baseline}) with 100 stalled 7 MiB bodies"
    );
    // Those beyond the budget were answered 503 (read what came back).
    let mut answered_503 = 0;
    for tcp in &mut stalled {
        tcp.set_read_timeout(Some(Duration::from_millis(200))).ok();
        let mut buf = [0u8; 64];
        if let Ok(n) = tcp.read(&mut buf) {
            if String::from_utf8_lossy(&buf[..n]).contains(" 503 ") {
                answered_503 += 1;
            }
        }
    }
    assert!(
        answered_503 + refused >= 80,
        "503s: {answered_503}, refused: {refused}"
    );
    assert!(server.metric("sluice_ingress_errors_total{reason=\"inflight_full\"}") >= 80);
}

#[test]
fn websocket_floods_are_refused_not_buffered() {
    let server = ServerProcess::start(&[]);
    let h = host(&server);
    let baseline = rss_mib(&server);
    let mut sockets = Vec::new();
    for _ in 0..10 {
        let mut tcp = TcpStream::connect(&h).expect("connect");
        write!(
            tcp,
            "GET /logs HTTP/1.1\r\nHost: {h}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .expect("upgrade");
        let mut head = [0u8; 512];
        let n = tcp.read(&mut head).expect("101");
        assert!(String::from_utf8_lossy(&head[..n]).contains(" 101 "));
        // A masked binary frame announcing 64 MiB, then 8 MiB of it.
        let mut frame = vec![0x82, 0xFF];
        frame.extend_from_slice(&(64u64 << 20).to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4]);
        let _ = tcp.write_all(&frame);
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..8 {
            if tcp.write_all(&chunk).is_err() {
                break;
            }
        }
        sockets.push(tcp);
    }
    let rss = rss_mib(&server);
    eprintln!("figure: RSS {rss} MiB (baseline {baseline}) after 10 sockets sent 8 MiB of a 64 MiB message");
    assert!(
        rss < baseline + 40,
        "RSS {rss} MiB (baseline {baseline}) after 10 flooding sockets"
    );
    // Each socket was closed by the server.
    for tcp in &mut sockets {
        tcp.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let mut rest = Vec::new();
        match tcp.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "the server kept a flooding socket open"
            ),
        }
    }
}

#[test]
fn syslog_and_http_crowds_cannot_lock_clients_out() {
    raise_open_files();
    let server = ServerProcess::start(&[]);
    let h = host(&server);
    // 1,100 syslog connections trickling a byte (the limit is 1,024) and
    // 2,100 HTTP connections with a half-sent header (the limit is 2,048).
    let mut crowd = Vec::new();
    for _ in 0..1100 {
        let mut c = TcpStream::connect(server.syslog_tcp).expect("syslog connect");
        let _ = c.write_all(b"<");
        crowd.push(c);
    }
    for _ in 0..2100 {
        let mut c = TcpStream::connect(&h).expect("http connect");
        let _ = c.write_all(b"GET /hea");
        crowd.push(c);
    }
    let started = Instant::now();
    let mut sender = TcpStream::connect(server.syslog_tcp).expect("sender");
    sender
        .write_all(b"<14>1 - h real - - - got in\n")
        .expect("send");
    drop(sender);
    assert_eq!(server.wait_payloads("real", 1), vec!["got in"]);
    let syslog_wait = started.elapsed();
    let started = Instant::now();
    let health = support::http_get(&format!("{}/health", server.http)).unwrap_or_default();
    let health_wait = started.elapsed();
    assert!(health.contains("ok"), "{health}");
    eprintln!("figure: syslog sender waited {syslog_wait:?}, /health {health_wait:?} behind 1,100 syslog + 2,100 HTTP slow connections");
    assert!(
        syslog_wait < Duration::from_secs(2),
        "syslog sender waited {syslog_wait:?}"
    );
    assert!(
        health_wait < Duration::from_secs(1),
        "/health waited {health_wait:?}"
    );
    let evicted = server.metric("sluice_ingress_errors_total{reason=\"evicted\"}");
    // Some of the crowd may never reach the accept queue (the kernel's
    // backlog overflows first), so only part of it is counted.
    assert!(evicted > 0, "evicted {evicted}");
    drop(crowd);
}

#[test]
fn meta_of_many_sources_leaves_health_responsive() {
    let server = ServerProcess::start(&[]);
    // 150,000 sources in NDJSON bodies of 10,000 lines.
    let url = format!("{}/logs", server.http);
    for chunk in 0..15 {
        let mut body = String::new();
        for i in 0..10_000 {
            body.push_str(&format!(
                "{{\"source_id\":\"source-{chunk:02}-{i:05}\",\"log\":{{\"payload\":\"aGk=\"}}}}\n"
            ));
        }
        let (status, answer) =
            http_request("POST", &url, "application/x-ndjson", body.as_bytes()).expect("post");
        assert_eq!(status, 200, "{answer}");
    }
    let meta_url = format!("{}/api/v1/meta", server.http);
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let url = meta_url.clone();
            std::thread::spawn(move || support::http_get(&url).map(|b| b.len()).unwrap_or(0))
        })
        .collect();
    let mut waits = Vec::new();
    while callers.iter().any(|c| !c.is_finished()) && waits.len() < 200 {
        let started = Instant::now();
        let health = support::http_get(&format!("{}/health", server.http)).unwrap_or_default();
        assert!(health.contains("ok"));
        waits.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    let sizes: Vec<usize> = callers.into_iter().map(|c| c.join().unwrap_or(0)).collect();
    assert!(sizes.iter().all(|s| *s > 100_000 * 50), "{sizes:?}");
    waits.sort();
    let median = waits.get(waits.len() / 2).copied().unwrap_or_default();
    eprintln!("figure: /health median {median:?}, max {:?} over {} probes during two meta calls of 150,000 sources ({sizes:?} bytes)", waits.last().copied().unwrap_or_default(), waits.len());
    assert!(
        median < Duration::from_millis(100),
        "/health median {median:?} during two meta calls ({} probes)",
        waits.len()
    );
}

#[test]
fn long_source_ids_do_not_grow_memory() {
    let (server, _dir) = server_with("", &[]);
    let url = format!("{}/logs", server.http);
    let post = |i: usize| {
        let id = format!("{i:04}{}", "x".repeat(1 << 20));
        let body = format!("{{\"source_id\":\"{id}\",\"log\":{{\"payload\":\"aGk=\"}}}}\n");
        let (status, answer) =
            http_request("POST", &url, "application/x-ndjson", body.as_bytes()).expect("post");
        assert_eq!(status, 200, "{answer}");
    };
    // Distinct 1 MiB source ids, each cut to 256 bytes at ingest. After a
    // warm-up (allocator caches), 200 more must not grow memory: before the
    // bound each one kept about 1.1 MB.
    for i in 0..50 {
        post(i);
    }
    let before = rss_mib(&server);
    for i in 50..250 {
        post(i);
    }
    let after = rss_mib(&server);
    eprintln!("figure: RSS {before} -> {after} MiB over 200 posts with distinct 1 MiB source ids");
    assert!(after < before + 20, "RSS grew from {before} to {after} MiB");
    assert!(server.metric("sluice_drops_total{reason=\"truncated\"}") >= 250);
}
