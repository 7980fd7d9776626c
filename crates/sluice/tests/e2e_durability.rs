//! End to end: the durable log across `kill -9` of the real `sluice
//! server` (the process dies; the machine and its page cache stay up).
//! Each test starts the server on ports picked once and a data dir of its
//! own, kills it mid-way, restarts it on the same ports and data dir, and
//! checks what a client got:
//!
//! - under full ingest, every acknowledged `POST /logs` line is readable
//!   after the restart (none twice);
//! - during delivery to a syslog drain, every line arrives at least once
//!   and at most one drain batch twice;
//! - during `sluice logs` tailing, the tail shows every line once;
//!
//! and, against a stand-in server, that a tail reconnects with the cursor
//! of the last entry it received (`after=`).
//!
//! Counts are printed (`--nocapture` shows them).

mod support;

use std::collections::{BTreeMap, HashSet};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::{
    app_query, free_port, lines_of, post_text_to, recent_texts, sluice_bin, ServerProcess,
    SyslogReceiver, TempDir,
};

/// Drains may send to loopback.
const LOOPBACK: &[&str] = &["--allow-drain-ranges", "127.0.0.0/8"];

/// A server's fixed addresses and data dir, to start it again after a kill.
struct Site {
    http: String,
    syslog: String,
    data: TempDir,
    extra: Vec<String>,
}

impl Site {
    fn new(tag: &str, extra: &[&str]) -> Self {
        Site {
            http: format!("127.0.0.1:{}", free_port()),
            syslog: format!("127.0.0.1:{}", free_port()),
            data: TempDir::new(tag),
            // One app at full speed: these tests are about the pipeline
            // under load, not the noisy-neighbour limit.
            extra: ["--max-lines-per-second", "0"]
                .iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect(),
        }
    }

    /// Starts the server; returns once its listeners are up.
    fn start(&self) -> ServerProcess {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        ServerProcess::start_at(&self.http, &self.syslog, &self.data.0, &extra)
    }
}

/// The number at the end of `text` after `prefix ` (`n 42` → 42).
fn number(text: &str, prefix: &str) -> Option<usize> {
    let (head, n) = text.trim_end().rsplit_once(' ')?;
    if !head.ends_with(prefix) {
        return None;
    }
    n.parse().ok()
}

/// `a..b` as a text body, one `prefix N` a line.
fn numbered(prefix: &str, from: usize, to: usize) -> String {
    (from..to)
        .map(|i| format!("{prefix} {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- (a) under full ingest ----

/// Lines per POST.
const INGEST_BATCH: usize = 200;
/// Lines a sender posts at most: below the per-source history (100,000)
/// and the replay limit, so all of it stays readable.
const INGEST_MAX: usize = 45_000;
/// The kill comes once this many lines were acknowledged in all.
const KILL_AFTER: usize = 20_000;

/// How a sender ended: lines acknowledged (numbers `0..acked`), and
/// whether the server went away (rather than the sender finishing).
struct Sent {
    acked: usize,
    cut_off: bool,
}

/// Posts `prefix N` lines for `app` in batches, as fast as answers come,
/// until `INGEST_MAX` or until the server stops answering.
fn flood(http: String, app: String, total: Arc<AtomicUsize>) -> Sent {
    let query = app_query(&app);
    let mut acked = 0;
    let mut refusals = 0;
    while acked < INGEST_MAX {
        let body = numbered("n", acked, acked + INGEST_BATCH);
        match post_text_to(&http, &query, &body) {
            Some(true) => {
                acked += INGEST_BATCH;
                total.fetch_add(INGEST_BATCH, Ordering::SeqCst);
            }
            // Refused (pushed back): the same batch again, a little later.
            Some(false) => {
                refusals += 1;
                assert!(
                    refusals < 2_000,
                    "the server keeps refusing {app}'s batches"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            None => {
                return Sent {
                    acked,
                    cut_off: true,
                }
            }
        }
    }
    Sent {
        acked,
        cut_off: false,
    }
}

#[test]
fn kill9_under_full_ingest_loses_nothing_acknowledged() {
    let site = Site::new("dura-ingest", &[]);
    let mut server = site.start();
    let total = Arc::new(AtomicUsize::new(0));
    let apps = ["flood-a", "flood-b"];
    let senders: Vec<JoinHandle<Sent>> = apps
        .iter()
        .map(|app| {
            let (http, app, total) = (server.http.clone(), app.to_string(), Arc::clone(&total));
            std::thread::spawn(move || flood(http, app, total))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while total.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "only {} lines acknowledged in 20 s",
            total.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    server.kill9();
    let sent: Vec<Sent> = senders
        .into_iter()
        .map(|s| s.join().expect("sender"))
        .collect();
    for (app, s) in apps.iter().zip(&sent) {
        assert!(
            s.cut_off,
            "{app} posted all {} lines before the kill: it did not land mid-ingest",
            s.acked
        );
    }

    let server = site.start();
    let mut report = Vec::new();
    for (app, s) in apps.iter().zip(&sent) {
        let texts = recent_texts(&server.http, app, 100_000);
        let mut seen = HashSet::new();
        let mut twice = Vec::new();
        for n in texts.iter().filter_map(|t| number(t, "n")) {
            if !seen.insert(n) {
                twice.push(n);
            }
        }
        let missing: Vec<usize> = (0..s.acked).filter(|n| !seen.contains(n)).collect();
        report.push(format!(
            "{app}: {} acknowledged, {} readable after the restart",
            s.acked,
            seen.len()
        ));
        assert!(
            missing.is_empty(),
            "{app}: {} of {} acknowledged lines lost, first {:?}",
            missing.len(),
            s.acked,
            &missing[..missing.len().min(10)]
        );
        assert!(
            twice.is_empty(),
            "{app}: stored twice: {:?}",
            &twice[..twice.len().min(10)]
        );
        // Beyond the acknowledged: at most the batch in flight at the kill.
        assert!(
            seen.iter().all(|&n| n < s.acked + INGEST_BATCH),
            "{app}: lines that were never sent"
        );
    }
    println!("kill -9 under ingest: {}", report.join("; "));
}

// ---- (b) during drain delivery ----

/// Lines drained.
const DRAINED: usize = 20_000;
/// Bytes of padding before each drained line's number: big frames, so the
/// socket buffers (megabytes on loopback) hold few of them and most of
/// the lines are still to send at the kill.
const PAD: usize = 1_000;
/// Entries a syslog drain sends in one batch (`drains::writers::
/// batch_policy`): what may arrive twice after a kill.
const DRAIN_BATCH: usize = 1_000;
/// The receiver stops reading after this many frames, so the drain backs
/// up and is killed with most of its backlog still to send.
const HOLD_AT: usize = 3_000;

#[test]
fn kill9_during_drain_delivery_loses_nothing_and_repeats_at_most_a_batch() {
    let rx = SyslogReceiver::start_holding_at(HOLD_AT);
    let site = Site::new("dura-drain", LOOPBACK);
    let mut server = site.start();
    let url = format!("syslog://127.0.0.1:{}", rx.port);
    let (code, out, err) = server.cli(&["drain", "add", "dn", &url, "--app", "drained"]);
    assert_eq!(code, 0, "{out}{err}");
    let status = server.wait_drain_state("dn", "RUNNING");
    assert_eq!(status["status"]["state"], "RUNNING", "{status}");

    let query = app_query("drained");
    let prefix = format!("{} dn", "x".repeat(PAD));
    for from in (0..DRAINED).step_by(200) {
        let body = numbered(&prefix, from, from + 200);
        assert_eq!(
            post_text_to(&server.http, &query, &body),
            Some(true),
            "POST lines {from}.."
        );
    }
    let mut got = Tally::default();
    let deadline = Instant::now() + Duration::from_secs(15);
    while got.frames < HOLD_AT {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.frames.recv_timeout(left) {
            Ok(frame) => got.take(&frame),
            Err(_) => panic!("the drain delivered only {} frames in 15 s", got.frames),
        }
    }
    // The receiver now holds: the drain is stuck mid-delivery.
    server.kill9();
    rx.hold(false);
    // What the dead server had written to the socket still comes.
    while let Ok(frame) = rx.frames.recv_timeout(Duration::from_millis(300)) {
        got.take(&frame);
    }
    let at_kill = got.counts.len();
    assert!(
        at_kill < DRAINED,
        "the drain had sent all {DRAINED} lines before the kill: it did not land mid-delivery"
    );
    let server = site.start();
    let deadline = Instant::now() + Duration::from_secs(25);
    while got.counts.len() < DRAINED {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.frames.recv_timeout(left) {
            Ok(frame) => got.take(&frame),
            Err(_) => break,
        }
    }
    // A repeat still on its way is counted too.
    while let Ok(frame) = rx.frames.recv_timeout(Duration::from_millis(300)) {
        got.take(&frame);
    }
    let Tally { frames, counts } = got;
    let missing: Vec<usize> = (0..DRAINED).filter(|n| !counts.contains_key(n)).collect();
    let repeats: usize = counts.values().map(|c| c - 1).sum();
    println!(
        "kill -9 during drain delivery: {frames} frames, {} distinct of {DRAINED}, \
         {repeats} repeats; {at_kill} had been sent before the kill",
        counts.len()
    );
    assert!(
        missing.is_empty(),
        "{} of {DRAINED} lines never arrived, first {:?}; drain status after the restart: {}",
        missing.len(),
        &missing[..missing.len().min(10)],
        server.drain_status("dn")
    );
    assert!(
        repeats <= DRAIN_BATCH,
        "{repeats} lines arrived twice: more than one batch ({DRAIN_BATCH})"
    );
}

/// Frames received, and how often each number came.
#[derive(Default)]
struct Tally {
    frames: usize,
    counts: BTreeMap<usize, usize>,
}

impl Tally {
    fn take(&mut self, frame: &str) {
        self.frames += 1;
        if let Some(n) = number(frame, "dn") {
            *self.counts.entry(n).or_insert(0) += 1;
        }
    }
}

// ---- (c) during a tail ----

/// The tail shows this many lines before the kill, and this many more
/// after the restart before the sender stops.
const TAIL_BEFORE: usize = 2_000;
const TAIL_AFTER: usize = 2_000;
/// Lines per POST while tailing.
const TAIL_BATCH: usize = 20;
/// Lines acknowledged while the tail is stopped, before the kill: more
/// than the socket buffers hold (megabytes on loopback; each line is
/// padded), fewer than the server queues for a tail (10,000, beyond which
/// a live tail loses its oldest, by design).
const UNSENT: usize = 5_000;

fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: a signal to our own child, which has not been reaped.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill({signal})");
}

/// A child killed when dropped (a failed test leaves no tail behind,
/// stopped or not).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sluice logs APP` following, its stdout and stderr as lines.
fn tail(http: &str, app: &str) -> (Reaped, mpsc::Receiver<String>, mpsc::Receiver<String>) {
    let mut child = std::process::Command::new(sluice_bin())
        .args(["logs", app, "--server", http])
        .env_remove("SLUICE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice logs");
    let out = lines_of(child.stdout.take().expect("stdout"));
    let err = lines_of(child.stderr.take().expect("stderr"));
    (Reaped(child), out, err)
}

/// What the tail printed, read as it comes.
struct Shown {
    rx: mpsc::Receiver<String>,
    numbers: Vec<usize>,
    lines: Vec<String>,
}

impl Shown {
    /// Reads until a line numbered `n` or more was shown (or `secs` pass).
    fn until(&mut self, n: usize, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.numbers.last().is_none_or(|&last| last < n) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => self.take(line),
                Err(_) => return false,
            }
        }
        true
    }

    fn take(&mut self, line: String) {
        if let Some(n) = line.split_once(" OUT ").and_then(|(_, t)| number(t, "tl")) {
            self.numbers.push(n);
        }
        self.lines.push(line);
    }
}

#[test]
fn kill9_during_a_tail_shows_every_line_once() {
    let site = Site::new("dura-tail", &[]);
    let mut server = site.start();
    let (child, out, err) = tail(&server.http, "tailed");
    let mut shown = Shown {
        rx: out,
        numbers: Vec::new(),
        lines: Vec::new(),
    };
    let query = app_query("tailed");
    // The tail is live once it shows a line posted after it started.
    let deadline = Instant::now() + Duration::from_secs(15);
    while shown.lines.is_empty() {
        assert!(Instant::now() < deadline, "the tail never showed a line");
        assert_eq!(
            post_text_to(&server.http, &query, "ready"),
            Some(true),
            "POST ready"
        );
        if let Ok(line) = shown.rx.recv_timeout(Duration::from_millis(200)) {
            shown.take(line);
        }
    }

    // A sender posts numbered lines, a few at a time, until told to stop;
    // it keeps going while the server is away. It returns the numbers
    // acknowledged; `upto` is one past the highest so far.
    let stop = Arc::new(AtomicBool::new(false));
    let upto = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (http, query) = (server.http.clone(), query.clone());
        let (stop, upto) = (Arc::clone(&stop), Arc::clone(&upto));
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut next = 0;
            let prefix = format!("{} tl", "x".repeat(PAD));
            while !stop.load(Ordering::SeqCst) {
                let body = numbered(&prefix, next, next + TAIL_BATCH);
                match post_text_to(&http, &query, &body) {
                    Some(true) => {
                        acked.extend(next..next + TAIL_BATCH);
                        upto.store(next + TAIL_BATCH, Ordering::SeqCst);
                    }
                    // The server is away; these numbers are not acked
                    // (they may or may not have been stored).
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
                next += TAIL_BATCH;
                std::thread::sleep(Duration::from_millis(1));
            }
            acked
        })
    };
    assert!(
        shown.until(TAIL_BEFORE, 20),
        "the tail showed {:?} before the kill",
        shown.numbers.last()
    );
    // The tail is stopped while the server takes more lines, so the kill
    // comes with lines stored but not sent to the tail (in the server's
    // queue for it): only a resume from the log can show them.
    signal(&child.0, libc::SIGSTOP);
    let stopped_at = upto.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    while upto.load(Ordering::SeqCst) < stopped_at + UNSENT {
        assert!(Instant::now() < deadline, "the sender stalled");
        std::thread::sleep(Duration::from_millis(1));
    }
    server.kill9();
    let acked_at_kill = upto.load(Ordering::SeqCst);
    signal(&child.0, libc::SIGCONT);
    // The tail shows what reached it before the kill, then goes quiet.
    while let Ok(line) = shown.rx.recv_timeout(Duration::from_millis(300)) {
        shown.take(line);
    }
    let killed_at = shown.numbers.last().copied().unwrap_or(0);
    let unshown_at_kill = acked_at_kill.saturating_sub(killed_at + 1);
    let server = site.start();
    let resumed = shown.until(killed_at + TAIL_AFTER, 20);
    stop.store(true, Ordering::SeqCst);
    let acked = sender.join().expect("sender");
    let last = acked.last().copied().unwrap_or(0);
    let caught_up = shown.until(last, 10);
    drop(child);
    let notes: Vec<String> = err.try_iter().collect();
    assert!(
        resumed && caught_up,
        "the tail stopped at {:?} (last acknowledged {last}); stderr: {notes:?}",
        shown.numbers.last()
    );

    let mut times: BTreeMap<usize, usize> = BTreeMap::new();
    for &n in &shown.numbers {
        *times.entry(n).or_insert(0) += 1;
    }
    let missing: Vec<usize> = acked
        .iter()
        .copied()
        .filter(|n| !times.contains_key(n))
        .collect();
    let twice: Vec<usize> = times
        .iter()
        .filter(|(_, &c)| c > 1)
        .map(|(&n, _)| n)
        .collect();
    println!(
        "kill -9 during a tail: {} acknowledged, {} shown ({} distinct); at the kill \
         {unshown_at_kill} acknowledged lines were not shown yet",
        acked.len(),
        shown.numbers.len(),
        times.len()
    );
    assert!(
        missing.is_empty(),
        "{} acknowledged lines not shown, first {:?}; stderr: {notes:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        twice.is_empty(),
        "{} lines shown twice, first {:?}",
        twice.len(),
        &twice[..twice.len().min(10)]
    );
    drop(server);
}

/// What a reconnecting tail asks for, seen by a stand-in server: the
/// first request is live only; the answer's entries carry cursors (and a
/// notice that has none); the reconnect asks for what came after the last
/// cursor, not for a time.
#[test]
fn a_reconnecting_tail_asks_for_what_came_after_its_last_cursor() {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let http = format!("http://{}", listener.local_addr().expect("addr"));
    let (paths_tx, paths) = mpsc::channel();
    std::thread::spawn(move || {
        let entry = |text: &str, cursor: &str| {
            format!(
                r#"{{"timestamp":"1796000000000000000","source_id":"web","instance_id":"0","tags":{{"cursor":"v1.999"}},"log":{{"payload":"{text}","type":"OUT"}}{cursor}}}"#
            )
        };
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { break };
            let mut head = String::new();
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let _ = reader.read_line(&mut head);
            let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
            if paths_tx.send(path).is_err() {
                break;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut body = String::new();
            if i == 0 {
                // "one", "two" in base64; the notice has no cursor.
                body.push_str(&entry("b25l", r#","cursor":"v1.5""#));
                body.push('\n');
                body.push_str(&entry("dHdv", r#","cursor":"v1.6""#));
                body.push('\n');
                body.push_str(&entry("bm90aWNl", ""));
                body.push('\n');
            }
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let mut cmd = std::process::Command::new(sluice_bin());
    cmd.args(["logs", "--server", &http])
        .env_remove("SLUICE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn sluice logs");
    let out = lines_of(child.stdout.take().expect("stdout"));
    let child = Reaped(child);
    let first = paths
        .recv_timeout(Duration::from_secs(10))
        .expect("a request");
    let second = paths
        .recv_timeout(Duration::from_secs(10))
        .expect("a reconnect");
    let shown: Vec<String> = (0..3)
        .filter_map(|_| out.recv_timeout(Duration::from_secs(5)).ok())
        .collect();
    drop(child);
    assert_eq!(first, "/logs");
    assert_eq!(second, "/logs?after=v1.6", "shown: {shown:?}");
    assert!(
        shown.len() == 3 && shown[0].ends_with(" OUT one") && shown[2].ends_with(" OUT notice"),
        "{shown:?}"
    );
}
