//! End to end: the web console in headless Chromium (WebDriver), against a
//! real `sluice server`. Each view is saved as a screenshot under
//! `target/console-screenshots/` for a reviewer to look at.

mod support;

use std::io::BufRead as _;
use std::time::{Duration, Instant};

use support::browser::{screenshot_path, Browser};
use support::*;

/// Lines of one app as `POST /logs` text, OUT or ERR.
fn post(server: &ServerProcess, app: &str, err: bool, lines: &[String]) {
    let query = format!(
        "source_id={app}&app_name={app}&source_type=APP/PROC/WEB&instance_id=0{}",
        if err { "&type=ERR" } else { "" }
    );
    let body = lines.join("\n");
    assert_eq!(
        post_text_to(&server.http, &query, &body),
        Some(true),
        "POST /logs for {app}"
    );
}

fn numbered(prefix: &str, from: u64, to: u64) -> Vec<String> {
    (from..=to).map(|n| format!("{prefix} {n}")).collect()
}

/// The message texts the stream view shows.
fn shown(browser: &Browser) -> Vec<String> {
    browser.texts("#lines .line .msg")
}

fn wait_shown(browser: &Browser, text: &str, secs: u64) -> bool {
    browser
        .wait_until(secs, |b| shown(b).iter().any(|t| t == text).then_some(()))
        .is_some()
}

/// Waits until the stream view is connected (the status says `live`).
fn wait_live(browser: &Browser) {
    let live = browser.wait_until(10, |b| {
        (b.texts("#status").first().map(String::as_str) == Some("live")).then_some(())
    });
    assert!(live.is_some(), "the stream never went live");
}

#[test]
fn apps_stream_filters_pause_and_hostile_text() {
    let server = ServerProcess::start(&[]);
    post(&server, "alpha", false, &numbered("a", 1, 3));
    post(&server, "beta", true, &numbered("b", 1, 2));
    let browser = Browser::start();

    // Apps: every source, with its lines.
    browser.goto(&format!("{}/", server.http));
    browser.wait_for("tr.app-row[data-source=beta]", 10);
    let rows = browser.texts("tr.app-row td:first-child");
    assert_eq!(rows, vec!["alpha", "beta"]);
    let beta = browser.texts("tr.app-row[data-source=beta] td");
    assert_eq!(beta[2], "2", "lines held: {beta:?}");
    assert_eq!(beta[3], "2", "errors in the last hour: {beta:?}");
    browser.screenshot(&screenshot_path("apps"));

    // A click opens the app's stream; a new line shows within a second.
    browser.click("tr.app-row[data-source=alpha]");
    wait_live(&browser);
    let sent = Instant::now();
    post(&server, "alpha", false, &["live one".to_owned()]);
    assert!(
        wait_shown(&browser, "live one", 10),
        "{:?}",
        shown(&browser)
    );
    let latency = sent.elapsed();
    assert!(latency < Duration::from_secs(1), "shown after {latency:?}");
    assert!(
        !shown(&browser).iter().any(|t| t.starts_with("b ")),
        "only alpha"
    );

    // Hostile text is text: shown as written, nothing runs.
    let hostile = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>";
    post(&server, "alpha", false, &[hostile.to_owned()]);
    assert!(wait_shown(&browser, hostile, 10));
    assert_eq!(browser.execute("return window.__pwned === undefined"), true);
    assert_eq!(
        browser.execute("return document.querySelectorAll('#lines img, #lines script').length"),
        0
    );

    // Both apps, then the filters: stream, text, instance.
    browser.fill("#f-apps", "alpha,beta");
    wait_live(&browser);
    post(&server, "beta", true, &["beta err".to_owned()]);
    post(&server, "alpha", false, &["alpha out".to_owned()]);
    assert!(wait_shown(&browser, "beta err", 10));
    assert!(wait_shown(&browser, "alpha out", 10));
    browser.execute(
        "const s = document.querySelector('#f-stream'); s.value = 'stderr'; s.dispatchEvent(new Event('change'))",
    );
    let only_errors = browser.wait_until(10, |b| {
        let texts = shown(b);
        (texts.contains(&"beta err".to_owned()) && !texts.contains(&"alpha out".to_owned()))
            .then_some(texts)
    });
    assert!(only_errors.is_some(), "stderr only: {:?}", shown(&browser));
    browser.execute(
        "const s = document.querySelector('#f-stream'); s.value = ''; s.dispatchEvent(new Event('change'))",
    );
    browser.fill("#f-q", "OUT");
    let texts = browser
        .wait_until(10, |b| {
            let t = shown(b);
            (!t.is_empty() && t.iter().all(|x| x.to_lowercase().contains("out"))).then_some(t)
        })
        .unwrap_or_else(|| shown(&browser));
    assert_eq!(texts, vec!["alpha out"], "the text filter");
    browser.fill("#f-q", "");
    assert!(wait_shown(&browser, "beta err", 10), "clearing shows again");
    // A space: lines of other spaces (or none) are hidden.
    let in_prod = "source_id=alpha&app_name=alpha&space_name=prod&source_type=APP/PROC/WEB";
    assert_eq!(post_text_to(&server.http, in_prod, "in prod"), Some(true));
    assert!(wait_shown(&browser, "in prod", 10));
    browser.fill("#f-space", "prod");
    let prod_only = browser.wait_until(10, |b| {
        (shown(b) == vec!["in prod".to_owned()]).then_some(())
    });
    assert!(prod_only.is_some(), "space prod: {:?}", shown(&browser));
    browser.fill("#f-space", "");
    assert!(wait_shown(&browser, "beta err", 10));
    browser.screenshot(&screenshot_path("stream"));

    // Pause, lines arrive meanwhile, resume: every one once, in order.
    browser.click("#pause");
    post(&server, "alpha", false, &numbered("p", 1, 300));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!shown(&browser).contains(&"p 1".to_owned()), "paused");
    browser.click("#pause");
    assert!(wait_shown(&browser, "p 300", 10));
    // Paused again, every kept line is drawn (following a fast stream the
    // page draws only the newest of each batch).
    browser.click("#pause");
    let paused: Vec<String> = shown(&browser)
        .into_iter()
        .filter(|t| t.starts_with("p "))
        .collect();
    assert_eq!(paused, numbered("p", 1, 300), "nothing lost or doubled");
}

/// A line receiver for a `tcp://` drain.
fn tcp_receiver() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    let _ = tx.send(line);
                }
            });
        }
    });
    (port, rx)
}

#[test]
fn drains_and_health_views() {
    let server = ServerProcess::start(&["--allow-drain-ranges", "127.0.0.0/8"]);
    let (port, received) = tcp_receiver();
    let browser = Browser::start();
    browser.goto(&format!("{}/#drains", server.http));
    browser.wait_for("#drain-form", 10);

    // The API's own validation message, shown as is.
    browser.fill("#d-url", "gopher://nowhere");
    browser.click("#drain-form button[type=submit]");
    let error = browser.wait_until(10, |b| {
        b.texts("#drain-message.error")
            .into_iter()
            .find(|t| !t.is_empty())
    });
    assert!(
        error.as_deref().is_some_and(|e| e.contains("gopher")),
        "{error:?}"
    );

    browser.fill("#d-url", &format!("tcp://127.0.0.1:{port}?format=verbatim"));
    browser.fill("#d-apps", "gamma");
    browser.fill("#d-name", "to-local");
    browser.click("#drain-form button[type=submit]");
    browser.wait_for("tr[data-drain=to-local]", 10);
    let running = browser.wait_until(15, |b| {
        b.texts("tr[data-drain=to-local] td:nth-child(4)")
            .first()
            .filter(|s| s.as_str() == "RUNNING")
            .cloned()
    });
    assert!(running.is_some(), "the drain runs");
    post(
        &server,
        "gamma",
        false,
        &["drained through the console".to_owned()],
    );
    let line = received
        .recv_timeout(Duration::from_secs(15))
        .expect("the drain delivers");
    assert_eq!(line, "drained through the console");
    browser.screenshot(&screenshot_path("drains"));

    // Test and Restart answer in the page.
    browser.click("tr[data-drain=to-local] button:nth-of-type(1)");
    let tested = browser.wait_until(15, |b| {
        b.texts("#drain-message")
            .into_iter()
            .find(|t| t.starts_with("test to-local"))
    });
    assert!(tested.is_some(), "{:?}", browser.texts("#drain-message"));
    browser.click("tr[data-drain=to-local] button:nth-of-type(2)");
    let restarted = browser.wait_until(15, |b| {
        b.texts("#drain-message")
            .into_iter()
            .find(|t| t == "restarted to-local")
    });
    assert!(restarted.is_some(), "{:?}", browser.texts("#drain-message"));

    browser.click("tr[data-drain=to-local] button.danger");
    let gone = browser.wait_until(10, |b| {
        b.texts("tr[data-drain=to-local]").is_empty().then_some(())
    });
    assert!(gone.is_some(), "deleted");

    browser.goto(&format!("{}/#health", server.http));
    browser.wait_for("#health-summary .level-ok", 10);
    let charts = browser.texts(".chart strong");
    assert_eq!(
        charts,
        vec![
            "Envelopes per second, last hour",
            "Loss, % of ingress",
            "Live subscribers",
            "Log size, MiB"
        ]
    );
    assert_eq!(
        browser.texts(".chart line.level").len(),
        2,
        "alert levels marked"
    );
    browser.screenshot(&screenshot_path("health"));
}

#[test]
fn a_token_is_asked_for_and_kept_for_the_tab() {
    let server = ServerProcess::start(&["--token", "console-t0ken-0123456789"]);
    let browser = Browser::start();
    browser.goto(&format!("{}/", server.http));
    let asked = browser.wait_until(10, |b| {
        (b.execute("return document.getElementById('token-dialog').open") == true).then_some(())
    });
    assert!(asked.is_some(), "the console asks for a token");
    browser.screenshot(&screenshot_path("token"));
    browser.fill("#token-input", "console-t0ken-0123456789");
    browser.click("#token-form button[type=submit]");
    // Lines sent with the token show in the apps list.
    let status = post_with_token(&server, "console-t0ken-0123456789", "guarded");
    assert_eq!(status, 200);
    browser.wait_for("tr.app-row[data-source=guarded]", 10);
    assert_eq!(
        browser.execute("return sessionStorage.getItem('sluice.token')"),
        "console-t0ken-0123456789"
    );
    assert_eq!(
        browser.execute("return localStorage.length"),
        0,
        "nothing kept beyond the tab"
    );
}

/// `POST /logs` of `hello` for `app` with a bearer token; the status.
fn post_with_token(server: &ServerProcess, token: &str, app: &str) -> u16 {
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .args(["-H", "Content-Type: text/plain", "--data-binary", "hello"])
        .arg(format!(
            "{}/logs?source_id={app}&app_name={app}",
            server.http
        ))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

/// A GET's response headers, lower-cased.
fn response_headers(url: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", url])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).to_lowercase()
}

#[test]
fn the_page_is_served_with_a_strict_policy() {
    let server = ServerProcess::start(&[]);
    let headers = response_headers(&format!("{}/", server.http));
    assert!(
        headers.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{headers}"
    );
    assert!(headers.contains("x-frame-options: deny"), "{headers}");
    assert!(headers.contains("cache-control: no-cache"), "{headers}");
    let page = http_get(&format!("{}/", server.http)).expect("the page");
    let script = page
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a script tag");
    assert!(script.starts_with("/console/console.") && script.ends_with(".js"));
    let headers = response_headers(&format!("{}{script}", server.http));
    assert!(headers.contains("immutable"), "{headers}");
}

/// One app's stream: the newest lines first, older ones read by time when
/// scrolled to the top, and sluice's loss notices set apart.
#[test]
fn older_lines_by_scrolling_up_and_notices_as_such() {
    let server = ServerProcess::start(&["--max-lines-per-second", "5", "--max-lines-burst", "300"]);
    post(&server, "older", false, &numbered("o", 1, 300));
    let browser = Browser::start();
    browser.goto(&format!("{}/#stream?apps=older", server.http));
    assert!(wait_shown(&browser, "o 300", 10));
    assert_eq!(
        shown(&browser),
        numbered("o", 201, 300),
        "the newest 100 first"
    );
    browser.execute(
        "const l = document.getElementById('lines'); l.scrollTop = 0; \
         l.dispatchEvent(new Event('scroll'))",
    );
    assert!(wait_shown(&browser, "o 1", 10), "older lines are read");
    assert_eq!(
        shown(&browser),
        numbered("o", 1, 300),
        "all, once, in order"
    );

    // Over its limit, the app is told in its stream, in sluice's voice.
    post(&server, "older", false, &numbered("x", 1, 50));
    let notice = browser.wait_until(15, |b| {
        b.texts("#lines .line.notice .msg")
            .into_iter()
            .find(|t| t.contains("lines dropped for app older"))
    });
    assert!(
        notice.is_some_and(|n| n.ends_with("over 5 lines/s")),
        "{:?}",
        shown(&browser)
    );
    browser.screenshot(&screenshot_path("stream-older"));
}

/// An app token's console shows its own apps only.
#[test]
fn an_app_token_sees_only_its_apps() {
    let dir = TempDir::new("console-scopes");
    let config = dir.0.join("sluice.toml");
    std::fs::write(
        &config,
        "[[auth.tokens]]\ntoken = \"admin-token-0123456789\"\nscopes = [\"logs.admin\"]\n\n\
         [[auth.tokens]]\ntoken = \"alpha-token-0123456789\"\napps = [\"alpha\"]\n",
    )
    .expect("config");
    let config = config.display().to_string();
    let server = ServerProcess::start(&["-c", &config]);
    for app in ["alpha", "beta"] {
        assert_eq!(post_with_token(&server, "admin-token-0123456789", app), 200);
    }
    let browser = Browser::start();
    browser.goto(&format!("{}/", server.http));
    browser.fill("#token-input", "alpha-token-0123456789");
    browser.click("#token-form button[type=submit]");
    browser.wait_for("tr.app-row[data-source=alpha]", 10);
    assert_eq!(browser.texts("tr.app-row td:first-child"), vec!["alpha"]);
    browser.goto(&format!("{}/#stream?apps=alpha,beta", server.http));
    assert!(wait_shown(&browser, "hello", 10));
    assert_eq!(
        shown(&browser),
        vec!["hello"],
        "beta's line is not the token's"
    );
}
