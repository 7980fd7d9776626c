//! Tests of the drain manager: add, delete, restart, standing routes,
//! path and TLS dirs, names, redaction and amplification bounds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use envelope::{Envelope, LogType};
use metrics::Metrics;
use sluice_log::{Cursor, Log, MemoryLog, MemoryLogConfig};
use tokio_util::sync::CancellationToken;

use super::{DrainError, DrainManager, DrainsConfig, PutOutcome};
use crate::netpolicy::NetPolicy;
use crate::spec::DrainSpec;
use crate::status::State;

use crate::writers::testutil::TempDir as Dir;

/// The log the drains read and the metrics they count into.
#[derive(Clone)]
pub(super) struct Env {
    pub(super) log: Arc<MemoryLog>,
    pub(super) metrics: Arc<Metrics>,
}

impl Env {
    pub(super) fn new(config: MemoryLogConfig) -> Self {
        Env {
            log: Arc::new(MemoryLog::new(config)),
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// Appends to the log, as ingest does.
    pub(super) async fn publish(&self, batch: Vec<Envelope>) {
        self.log.append(batch).await.unwrap();
    }

    pub(super) fn start(&self, config: DrainsConfig) -> (DrainManager, Vec<String>) {
        let log: Arc<dyn Log> = self.log.clone();
        DrainManager::start(
            log,
            Arc::clone(&self.metrics),
            config,
            CancellationToken::new(),
        )
    }
}

pub(super) fn manager(data: &Path, tweak: impl FnOnce(&mut DrainsConfig)) -> (DrainManager, Env) {
    let env = Env::new(MemoryLogConfig::default());
    let mut config = DrainsConfig::new(data.to_owned());
    tweak(&mut config);
    let (m, problems) = env.start(config);
    assert!(problems.is_empty(), "{problems:?}");
    (m, env)
}

pub(super) fn spec(name: &str, url: &str) -> DrainSpec {
    DrainSpec {
        name: name.into(),
        url: url.into(),
        ..Default::default()
    }
}

/// Runs `add` on a blocking thread, as the server does.
pub(super) async fn add(m: &DrainManager, s: DrainSpec) -> Result<super::DrainInfo, DrainError> {
    let m = m.clone();
    tokio::task::spawn_blocking(move || m.add(s)).await.unwrap()
}

#[tokio::test]
async fn file_drains_need_file_dirs() {
    let data = Dir::new("filedirs");
    let (m, _) = manager(&data.0, |_| {});
    let target = data.0.join("out.log");
    let err = add(&m, spec("f", &format!("file://{}", target.display())))
        .await
        .unwrap_err();
    assert!(matches!(err, DrainError::Path(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("[drains] file_dirs") && text.contains("--allow-file-dirs"),
        "{text}"
    );
    assert!(!target.exists());

    let logs_dir = Dir::new("filedirs-logs");
    let logs = logs_dir.0.join("logs");
    let (m, _) = manager(&data.0, |c| c.file_dirs = vec![logs.clone()]);
    // Missing directories inside an allowed one are made on add.
    let url = format!("file://{}/sluice/all.log", logs.display());
    add(&m, spec("archive", &url)).await.unwrap();
    assert!(logs.join("sluice").is_dir());
    // `..` does not escape.
    let url = format!("file://{}/../escape.log", logs.display());
    assert!(matches!(
        add(&m, spec("esc", &url)).await,
        Err(DrainError::Path(_))
    ));
    // Never into the data dir, even when an allowed dir holds it.
    let (m2, _) = manager(&data.0, |c| c.file_dirs = vec![data.0.clone()]);
    let url = format!("file://{}/drains/evil.json", data.0.display());
    let err = add(&m2, spec("evil", &url)).await.unwrap_err().to_string();
    assert!(err.contains("data dir"), "{err}");
    // Overwrite never truncates a file that was there before the drain.
    std::fs::write(logs.join("precious.log"), "keep\n").unwrap();
    let url = format!("file://{}/precious.log?overwrite=1", logs.display());
    let err = add(&m, spec("ow", &url)).await.unwrap_err().to_string();
    assert!(err.contains("exists already"), "{err}");
    assert_eq!(
        std::fs::read_to_string(logs.join("precious.log")).unwrap(),
        "keep\n"
    );
}

#[tokio::test]
async fn tls_files_only_from_tls_dirs() {
    let data = Dir::new("tlsdirs");
    let (m, _) = manager(&data.0, |_| {});
    std::fs::write(data.0.join("outside.pem"), "x").unwrap();
    for path in [
        data.0.join("outside.pem"),
        data.0.join("missing.pem"),
        PathBuf::from("/etc/shadow"),
    ] {
        let url = format!("syslog-tls://203.0.113.1:6514?ca={}", path.display());
        let err = add(&m, spec("t", &url)).await.unwrap_err().to_string();
        assert!(err.contains("[drains] tls_dirs"), "{err}");
        assert!(
            !err.contains("No such file") && !err.contains("readable"),
            "{err}"
        );
    }
    // Inside the data dir's tls/, found and read.
    std::fs::create_dir_all(data.0.join("tls")).unwrap();
    let url = "syslog-tls://203.0.113.1:6514?ca=nope.pem";
    let err = add(&m, spec("t", url)).await.unwrap_err().to_string();
    assert!(err.contains("not readable"), "{err}");
}

#[tokio::test]
async fn names_that_are_paths_are_refused() {
    let data = Dir::new("names");
    let (m, _) = manager(&data.0, |_| {});
    for name in [".", "..", ".x", "a/b"] {
        let err = add(&m, spec(name, "udp://203.0.113.1:9"))
            .await
            .unwrap_err();
        assert!(matches!(err, DrainError::Spec(_)), "{name}: {err:?}");
        let err = m.set_format(name, "{{.text}}").unwrap_err();
        assert!(matches!(err, DrainError::Format(_)), "{name}: {err:?}");
    }
    assert!(!data.0.join("drains/..json").exists());
}

#[tokio::test]
async fn names_resolving_to_refused_ranges_are_refused_on_add() {
    let data = Dir::new("ssrf");
    let (m, _) = manager(&data.0, |_| {});
    let err = add(&m, spec("sneaky", "syslog://localhost:9"))
        .await
        .unwrap_err();
    assert!(matches!(err, DrainError::Policy(_)), "{err:?}");
    assert!(err.to_string().contains("--allow-drain-ranges"), "{err}");
    let err = add(&m, spec("v6", "syslog://[64:ff9b::7f00:1]:9"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
    // Not resolvable now: accepted; connects retry.
    add(&m, spec("later", "syslog://no-such-host.invalid:514"))
        .await
        .unwrap();
    let (m, _) = manager(&data.0, |c| {
        c.policy = Arc::new(NetPolicy::from_list("127.0.0.0/8").unwrap());
    });
    add(&m, spec("allowed", "syslog://localhost:9"))
        .await
        .unwrap();
}

#[tokio::test]
async fn secrets_are_not_shown() {
    let data = Dir::new("redact");
    let (m, _) = manager(&data.0, |c| {
        c.policy = Arc::new(NetPolicy::from_list("127.0.0.0/8").unwrap());
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://user:hunter2@127.0.0.1:{port}/in?token=s3cr3t&app=web");
    let info = add(&m, spec("h", &url)).await.unwrap();
    let shown = format!("http://user:***@127.0.0.1:{port}/in?token=***&app=web");
    assert_eq!(info.spec.url, shown);
    assert_eq!(m.get("h").unwrap().spec.url, shown);
    let json = serde_json::to_string(&m.list()).unwrap();
    assert!(
        !json.contains("hunter2") && !json.contains("s3cr3t"),
        "{json}"
    );
    // The persisted definition keeps them, privately.
    let file = data.0.join("drains/h.json");
    assert!(std::fs::read_to_string(&file).unwrap().contains("hunter2"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // An error quoting the URL (a URL error on add) has them masked too.
    let err = add(&m, spec("bad", "https://u:hunter2@h:0/x"))
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
}

pub(super) async fn wait_state(m: &DrainManager, name: &str, state: State) -> super::DrainInfo {
    for _ in 0..400 {
        let info = m.get(name).unwrap();
        if info.status.state == state {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{name} never {state:?}: {:?}", m.get(name));
}

#[tokio::test]
async fn empty_names_get_a_logplex_style_one() {
    let data = Dir::new("autoname");
    let (m, _) = manager(&data.0, |_| {});
    let a = add(&m, spec("", "udp://203.0.113.1:9")).await.unwrap();
    let b = add(&m, spec("", "udp://203.0.113.1:9")).await.unwrap();
    for name in [&a.spec.name, &b.spec.name] {
        let hex = name.strip_prefix("d.").unwrap_or_default();
        assert!(
            hex.len() == 8 && hex.bytes().all(|c| c.is_ascii_hexdigit()),
            "{name}"
        );
        assert!(data.0.join(format!("drains/{name}.json")).exists());
    }
    assert_ne!(a.spec.name, b.spec.name);
}

/// A drain FATAL because its file's path is a directory: restart
/// (and PUT of the same definition, through the server) retries once
/// the cause is gone; counters carry on, the error is cleared.
#[tokio::test]
async fn restart_retries_a_fatal_drain() {
    let data = Dir::new("restart");
    let logs = Dir::new("restart-logs");
    let target = logs.0.join("all.log");
    std::fs::create_dir_all(&target).unwrap();
    let saved = spec("arch", &format!("file://{}", target.display()));
    crate::persist::Persist::new(&data.0)
        .save_drain(&saved)
        .unwrap();
    let (m, bus) = manager(&data.0, |c| c.file_dirs = vec![logs.0.clone()]);
    let fatal = wait_state(&m, "arch", State::Fatal).await;
    assert!(
        fatal.status.last_error.unwrap().contains("a directory"),
        "{:?}",
        m.get("arch")
    );
    // Nothing changes by itself.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(m.get("arch").unwrap().status.state, State::Fatal);
    std::fs::remove_dir(&target).unwrap();
    let info = m.restart("arch").await.unwrap();
    assert!(info.status.last_error.is_none(), "{info:?}");
    wait_state(&m, "arch", State::Running).await;
    bus.publish(vec![Envelope::log(
        1,
        "app",
        "0",
        Bytes::from("back"),
        LogType::Out,
    )])
    .await;
    for _ in 0..200 {
        if std::fs::read_to_string(&target).unwrap_or_default() == "back\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "back\n");
    // Concurrent restarts start one task; an unknown name is NotFound.
    let (a, b) = tokio::join!(m.restart("arch"), m.restart("arch"));
    assert!(a.is_ok() && b.is_ok());
    wait_state(&m, "arch", State::Running).await;
    assert_eq!(m.get("arch").unwrap().status.sent, 1);
    assert!(matches!(
        m.restart("nope").await,
        Err(DrainError::NotFound(_))
    ));
}

#[tokio::test]
async fn put_creates_keeps_or_replaces() {
    let data = Dir::new("put");
    let (m, _) = manager(&data.0, |c| c.per_app_limit = 1);
    let put = |s: DrainSpec| {
        let m = m.clone();
        async move { tokio::task::spawn_blocking(move || m.put(s)).await.unwrap() }
    };
    let mut s = spec("p", "udp://203.0.113.1:9");
    s.apps = vec!["web".into()];
    assert!(matches!(
        put(s.clone()).await.unwrap(),
        PutOutcome::Created(_)
    ));
    let created = m.get("p").unwrap().spec.created;
    match put(s.clone()).await.unwrap() {
        PutOutcome::Unchanged(info) => assert_eq!(info.spec.created, created),
        other => panic!("{other:?}"),
    }
    // A different definition replaces it (the per-app limit does not
    // count the drain being replaced).
    s.url = "udp://203.0.113.1:10".into();
    match put(s.clone()).await.unwrap() {
        PutOutcome::Replaced(info) => assert_eq!(info.spec.url, s.url),
        other => panic!("{other:?}"),
    }
    assert_eq!(m.list().len(), 1);
    let saved = std::fs::read_to_string(data.0.join("drains/p.json")).unwrap();
    assert!(saved.contains("203.0.113.1:10"), "{saved}");
    // Invalid replacements leave the drain as it was.
    s.url = "gopher://h:1".into();
    assert!(matches!(put(s).await, Err(DrainError::Spec(_))));
    assert_eq!(m.get("p").unwrap().spec.url, "udp://203.0.113.1:10");
}

#[tokio::test]
async fn standing_routes_run_unpersisted_and_stay() {
    let data = Dir::new("standing");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // The default policy refuses loopback: routes are the operator's.
    let (m, bus) = manager(&data.0, |c| {
        c.routes = vec![
            format!("raw+tcp://127.0.0.1:{port}"),
            "syslog+tls://203.0.113.1:6514".into(),
        ]
    });
    let names: Vec<String> = m.list().into_iter().map(|d| d.spec.name).collect();
    assert_eq!(names, ["route.1", "route.2"]);
    assert!(m.list().iter().all(|d| d.standing));
    assert!(!data.0.join("drains").join("route.1.json").exists());
    let (mut conn, _) = listener.accept().await.unwrap();
    wait_state(&m, "route.1", State::Running).await;
    bus.publish(vec![
        Envelope::event(1, "cc", "app.start", "x"),
        Envelope::log(2, "any-app", "0", Bytes::from("line"), LogType::Out),
    ])
    .await;
    let mut buf = [0u8; 5];
    tokio::io::AsyncReadExt::read_exact(&mut conn, &mut buf)
        .await
        .unwrap();
    assert_eq!(&buf, b"line\n", "logs only, every app");
    let err = m.delete("route.1").unwrap_err();
    assert!(matches!(err, DrainError::Standing(_)), "{err:?}");
    assert!(err.to_string().contains("command line"), "{err}");
    let m2 = m.clone();
    let s = spec("route.1", "udp://203.0.113.1:9");
    let err = tokio::task::spawn_blocking(move || m2.put(s))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, DrainError::Standing(_)), "{err:?}");
    // Their names are kept for them.
    let err = add(&m, spec("route.9", "udp://203.0.113.1:9"))
        .await
        .unwrap_err();
    assert!(matches!(err, DrainError::ReservedName(_)), "{err:?}");
    add(&m, spec("route.x", "udp://203.0.113.1:9"))
        .await
        .unwrap();
    // A route that cannot start is reported, the others run.
    let data2 = Dir::new("standing-bad");
    let mut config = DrainsConfig::new(data2.0.clone());
    config.routes = vec!["file:///nowhere/x.log".into(), "udp://203.0.113.1:9".into()];
    let (m3, problems) = Env::new(MemoryLogConfig::default()).start(config);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("route 1 (file:///nowhere/x.log)"),
        "{problems:?}"
    );
    assert_eq!(m3.list().len(), 1);
}

#[tokio::test]
async fn formats_in_use_are_not_deleted() {
    let data = Dir::new("fmtdel");
    let (m, _) = manager(&data.0, |_| {});
    m.set_format("short", "{{.text}}").unwrap();
    let mut s = spec("a", "udp://203.0.113.1:9");
    s.format = Some("short".into());
    add(&m, s).await.unwrap();
    add(&m, spec("b", "udp://203.0.113.1:9?format=short"))
        .await
        .unwrap();
    let err = m.delete_format("short").unwrap_err();
    assert!(matches!(err, DrainError::FormatInUse { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "format \"short\" is used by drains a, b; delete those drains or change their format first"
    );
    m.delete("a").unwrap();
    m.delete("b").unwrap();
    m.delete_format("short").unwrap();
    assert!(!data.0.join("formats/short.json").exists());
    assert!(m.formats().is_empty());
    assert!(matches!(
        m.delete_format("short"),
        Err(DrainError::FormatNotFound(_))
    ));
}

/// An HTTP receiver answering every request with 400; counts them.
async fn refusing_receiver() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    buf.drain(..end + 4 + len);
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let answer = "HTTP/1.1 400 Bad Request\r\nContent-Length: 9\r\n\r\nbad token";
                    if conn.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, requests)
}

/// A batch the receiver refuses is counted and told in the app's own
/// stream, with what the receiver answered; the notices themselves
/// are not told again (no loop).
#[tokio::test]
async fn refused_batches_are_told_in_the_apps_stream() {
    let data = Dir::new("reject");
    let (m, bus) = manager(&data.0, |c| {
        c.policy = Arc::new(NetPolicy::from_list("127.0.0.0/8").unwrap());
    });
    let (port, requests) = refusing_receiver().await;
    add(&m, spec("h", &format!("http://127.0.0.1:{port}/")))
        .await
        .unwrap();
    wait_state(&m, "h", State::Running).await;
    let mut web = Envelope::log(
        1_795_266_898_000_000_000,
        "web-guid",
        "0",
        Bytes::from("x"),
        LogType::Out,
    );
    web.tags.insert("app_name".into(), "web".into());
    bus.publish(vec![web.clone(), web]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while requests.load(std::sync::atomic::Ordering::SeqCst) < 2
        || m.get("h").unwrap().status.dropped < 3
    {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", m.get("h"));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The notice went to the receiver too (refused again) and no
    // notice about it followed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let page = bus
        .log
        .read_from(Cursor::START, &envelope::Selector::default(), 100)
        .await
        .unwrap();
    let notices: Vec<String> = page
        .entries
        .iter()
        .filter(|e| e.entry.envelope.tag("source_type") == Some("SLUICE"))
        .map(|e| {
            assert_eq!(e.entry.envelope.source_id, "web-guid");
            let log = e.entry.envelope.as_log().unwrap();
            String::from_utf8_lossy(&log.payload).into_owned()
        })
        .collect();
    assert_eq!(
        notices,
        ["sluice: 2 messages lost for app web to drain h since 2026-11-21T13:14:58Z: receiver answered 400 Bad Request"]
    );
    let info = m.get("h").unwrap();
    assert_eq!(info.status.dropped, 3);
    assert_eq!(
        info.status.last_error.as_deref(),
        Some("receiver answered 400 Bad Request: bad token (1 messages dropped)")
    );
}

/// `drain test`: a message of its own over a connection of its own.
#[tokio::test]
async fn test_sends_one_message_on_its_own_connection() {
    use tokio::io::AsyncReadExt;
    let data = Dir::new("draintest");
    let (m, _) = manager(&data.0, |c| {
        c.policy = Arc::new(NetPolicy::from_list("127.0.0.0/8").unwrap());
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    add(&m, spec("t", &format!("syslog://127.0.0.1:{port}")))
        .await
        .unwrap();
    let (running, _) = listener.accept().await.unwrap();
    wait_state(&m, "t", State::Running).await;
    let (detail, accepted) = tokio::join!(m.test("t"), listener.accept());
    assert_eq!(detail.unwrap(), format!("delivered to 127.0.0.1:{port}"));
    let (mut conn, _) = accepted.unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).await.unwrap();
    assert!(
        text.contains(" sluice sluice [SLUICE] - [tags@47450 source_type=\"SLUICE\"] sluice drain test for t at 20"),
        "{text}"
    );
    let info = m.get("t").unwrap();
    assert_eq!((info.status.state, info.status.sent), (State::Running, 0));
    drop(running);
    // Nobody listening: what the connection said.
    drop(listener);
    let err = m.test("t").await.unwrap_err();
    assert!(matches!(err, DrainError::TestFailed(_)), "{err:?}");
    assert!(err.to_string().contains("Connection refused"), "{err}");
    assert!(matches!(m.test("nope").await, Err(DrainError::NotFound(_))));
}

/// The report: a template of 256 `{{.text}}` actions turned 2.6 MB
/// of input into 671 MB of output. Through the manager, every line is
/// cut at `max_record` and the file stays within records × max_record.
#[tokio::test]
async fn template_amplification_is_bounded_end_to_end() {
    let data = Dir::new("amplify");
    let logs_dir = Dir::new("amplify-logs");
    let logs = logs_dir.0.join("logs");
    let (m, bus) = manager(&data.0, |c| {
        c.file_dirs = vec![logs.clone()];
        c.max_record = 16 * 1024;
    });
    let mut s = spec("amp", &format!("file://{}/amp.log", logs.display()));
    s.format = Some("{{.text}}".repeat(256));
    add(&m, s).await.unwrap();
    // Wait for the writer to open the file.
    let path = logs.join("amp.log");
    for _ in 0..200 {
        if path.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let payload = Bytes::from("z".repeat(10_000));
    let n = 260; // 2.6 MB in
    bus.publish(
        (0..n)
            .map(|i| Envelope::log(i, "app", "0", payload.clone(), LogType::Out))
            .collect(),
    )
    .await;
    let mut sent = 0;
    for _ in 0..500 {
        sent = m.get("amp").unwrap().status.sent;
        if sent >= n as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sent, n as u64);
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(len, n as u64 * (16 * 1024 + 1), "bounded output");
    assert_eq!(bus.metrics.dropped("truncated"), n as u64);
}
