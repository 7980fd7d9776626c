//! `sluice check --data-dir`: a clean directory passes; a torn tail (what a
//! crash during a write leaves) is reported without being changed, and the
//! server still starts on it, cuts it and keeps everything before it.

mod support;

use std::io::Write as _;
use std::process::Command;

use support::*;

fn check(dir: &std::path::Path) -> (i32, String) {
    let out = Command::new(sluice_bin())
        .args(["check", "--data-dir"])
        .arg(dir)
        .output()
        .expect("run sluice check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The newest segment file of the log.
fn last_segment(data: &std::path::Path) -> std::path::PathBuf {
    let mut segments: Vec<_> = std::fs::read_dir(data.join("log"))
        .expect("log dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    segments.pop().expect("a segment")
}

#[test]
fn check_reports_a_torn_tail_and_the_server_repairs_it() {
    let dir = TempDir::new("check");
    let data = dir.0.join("data");
    let mut server = ServerProcess::start_at("127.0.0.1:0", "127.0.0.1:0", &data, &[]);
    let lines: Vec<String> = (0..100).map(|i| format!("kept {i}")).collect();
    server.post_lines("web", &lines);
    server.stop();

    let (code, out) = check(&data);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("clean"), "{out}");
    assert!(out.contains("100 records"), "{out}");

    // Half a frame at the end, as a crash mid-write leaves it.
    let segment = last_segment(&data);
    let before = std::fs::read(&segment).expect("segment").len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .expect("open segment")
        .write_all(&[0x40, 0, 0, 0, 1, 2, 3])
        .expect("tear the tail");
    let (code, out) = check(&data);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cut"), "says what it would cut: {out}");
    assert_eq!(
        std::fs::read(&segment).expect("segment").len(),
        before + 7,
        "check changes nothing"
    );

    // The server starts anyway, cuts the torn bytes, keeps every line.
    let mut server = ServerProcess::start_at("127.0.0.1:0", "127.0.0.1:0", &data, &[]);
    assert_eq!(server.payloads("web"), lines);
    assert_eq!(server.metric("sluice_log_repairs_total"), 1);
    server.stop();
    let (code, out) = check(&data);
    assert_eq!(code, 0, "{out}");
}
