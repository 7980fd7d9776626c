//! End to end: the web console's stream view under load, in headless
//! Chromium. A test binary of its own, so no other browser shares the two
//! cores while it measures.

mod support;

use std::time::{Duration, Instant};

use support::browser::{screenshot_path, Browser};
use support::*;

fn post(server: &ServerProcess, app: &str, lines: &[String]) {
    let query = format!("source_id={app}&app_name={app}&source_type=APP/PROC/WEB&instance_id=0");
    assert_eq!(
        post_text_to(&server.http, &query, &lines.join("\n")),
        Some(true),
        "POST /logs for {app}"
    );
}

/// 5,000 lines a second for 10 s into an open stream of everything: the
/// page keeps its timers (of the ~200 ticks of a 50 ms interval, at most
/// two fire 100 ms late or more, and none a quarter second late) and
/// shows the newest lines. The allowance is for the machine, not the page:
/// on two cores shared with the debug-build server, the test's sender and
/// Chromium's other processes, the scheduler alone now and then holds the
/// page's thread back by 100 ms (seen in about one run of four).
#[test]
fn the_stream_keeps_up_with_5000_lines_a_second() {
    let server = ServerProcess::start(&[]);
    let browser = Browser::start();
    browser.goto(&format!("{}/#stream", server.http));
    let live = browser.wait_until(10, |b| {
        (b.texts("#status").first().map(String::as_str) == Some("live")).then_some(())
    });
    assert!(live.is_some(), "the stream never went live");
    // The browser's other processes (and the last test's) settle before
    // the page is measured.
    std::thread::sleep(Duration::from_secs(2));
    browser.execute(
        "window.__gaps = []; let last = performance.now(); \
         window.__timer = setInterval(() => { const now = performance.now(); \
         window.__gaps.push(now - last); last = now; }, 50);",
    );
    // Ten apps at 500 lines/s each (each under the noisy-neighbour limit),
    // posted every 100 ms.
    const APPS: u64 = 10;
    const PER_TICK: u64 = 50;
    let start = Instant::now();
    let mut tick = 0u64;
    while start.elapsed() < Duration::from_secs(10) {
        for app in 0..APPS {
            let from = tick * PER_TICK + 1;
            let lines: Vec<String> = (from..from + PER_TICK)
                .map(|n| format!("l{app} {n}"))
                .collect();
            post(&server, &format!("load{app}"), &lines);
        }
        tick += 1;
        let next = Duration::from_millis(100 * tick);
        if let Some(wait) = next.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let sent = tick * PER_TICK * APPS;
    assert!(sent >= 45_000, "the load ran: {sent} lines");
    let last = format!("l{} {}", APPS - 1, tick * PER_TICK);
    let shown = browser.wait_until(10, |b| {
        b.texts("#lines .line .msg").contains(&last).then_some(())
    });
    assert!(shown.is_some(), "the newest line is shown");
    let gaps = browser.execute("clearInterval(window.__timer); return window.__gaps");
    let gaps: Vec<f64> = gaps
        .as_array()
        .expect("gaps")
        .iter()
        .filter_map(|g| g.as_f64())
        .collect();
    let worst = gaps.iter().copied().fold(0.0, f64::max);
    println!(
        "{sent} lines in {:?}; {} timer ticks of 50 ms, the longest gap {worst:.1} ms",
        start.elapsed(),
        gaps.len()
    );
    assert!(gaps.len() > 150, "the timer ran: {} ticks", gaps.len());
    let late: Vec<f64> = gaps
        .iter()
        .map(|g| g - 50.0)
        .filter(|&l| l >= 100.0)
        .collect();
    assert!(
        late.len() <= 2,
        "timers fired 100 ms late or more: {late:?}"
    );
    assert!(
        worst - 50.0 < 250.0,
        "a timer fired {:.1} ms late",
        worst - 50.0
    );
    let rows = browser.execute("return document.querySelectorAll('#lines .line').length");
    assert!(
        rows.as_u64().is_some_and(|n| n <= 2000),
        "a bounded DOM: {rows}"
    );
    browser.screenshot(&screenshot_path("stream-load"));
}
