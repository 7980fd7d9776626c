//! Headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, installed by the test command; missing, the test
//! fails), in blocking calls so console tests read like the other
//! end-to-end tests.
//!
//! The W3C WebDriver calls the tests need (a session, navigate, run a
//! script, find, click, type, screenshot) are a handful of JSON requests,
//! made here with reqwest. `fantoccini`, the maintained client, was tried:
//! its `webdriver` crate brings second copies of `http`, `cookie`, the
//! ICU crates and `thiserror` (about twenty duplicate crates) for these
//! six requests.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{free_port, require};

pub struct Browser {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
    driver: Child,
}

/// W3C WebDriver's key for an element reference in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// chromedriver on a free port, and a headless session of 1400x900.
    pub fn start() -> Self {
        let chromium = require("chromium");
        let chromedriver = require("chromedriver");
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let ready = super::eventually(20, || {
            let out = Command::new("curl")
                .args(["-s", "--max-time", "2", &format!("{url}/status")])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .contains("\"ready\":true")
                .then_some(())
        });
        assert!(ready.is_some(), "chromedriver did not get ready");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let mut browser = Browser {
            runtime,
            http: reqwest::Client::new(),
            session: String::new(),
            driver,
        };
        let created = browser.call(
            reqwest::Method::POST,
            &format!("{url}/session"),
            Some(json!({
                "capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                 "--disable-dev-shm-usage", "--window-size=1400,900"],
                    },
                }},
            })),
        );
        let id = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"));
        browser.session = format!("{url}/session/{id}");
        browser
    }

    /// One WebDriver command; its `value`.
    fn call(&self, method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
        self.try_call(method, url, body)
            .unwrap_or_else(|e| panic!("WebDriver {url}: {e}"))
    }

    /// [`call`](Self::call), with WebDriver's refusal as an error.
    fn try_call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        self.runtime.block_on(async {
            let mut request = self.http.request(method, url);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            let answer: Value = response.json().await.map_err(|e| e.to_string())?;
            if status.is_success() {
                Ok(answer["value"].clone())
            } else {
                Err(format!("{status} {}", answer["value"]["message"]))
            }
        })
    }

    fn command(&self, path: &str, body: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            &format!("{}/{path}", self.session),
            Some(body),
        )
    }

    pub fn goto(&self, url: &str) {
        self.command("url", json!({ "url": url }));
    }

    /// Runs a script in the page (`return …` gives a value).
    pub fn execute(&self, script: &str) -> Value {
        self.command("execute/sync", json!({ "script": script, "args": [] }))
    }

    /// The text of every element matching `css`.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let script = format!(
            "return Array.from(document.querySelectorAll({})).map(e => e.textContent)",
            json!(css)
        );
        match self.execute(&script) {
            Value::Array(items) => items
                .into_iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect(),
            other => panic!("texts of {css}: {other}"),
        }
    }

    /// Waits until `check` gives a value (polling every 50 ms).
    pub fn wait_until<T>(&self, secs: u64, mut check: impl FnMut(&Self) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = check(self) {
                return Some(v);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for an element matching `css`.
    pub fn wait_for(&self, css: &str, secs: u64) {
        let found = self.wait_until(secs, |b| (!b.texts(css).is_empty()).then_some(()));
        assert!(found.is_some(), "no {css} after {secs} s");
    }

    /// The element matching `css` (the first), as WebDriver names it.
    fn find(&self, css: &str) -> String {
        let found = self.command("element", json!({ "using": "css selector", "value": css }));
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no {css}: {found}"))
            .to_owned()
    }

    /// Clicks the element matching `css`. A page that redraws (the
    /// console refreshes its tables) can replace the element between
    /// finding and clicking it: then it is found again.
    pub fn click(&self, css: &str) {
        for _ in 0..5 {
            let element = self.find(css);
            let url = format!("{}/element/{element}/click", self.session);
            match self.try_call(reqwest::Method::POST, &url, Some(json!({}))) {
                Ok(_) => return,
                Err(e) if e.contains("stale element") => continue,
                Err(e) => panic!("click {css}: {e}"),
            }
        }
        panic!("click {css}: the element kept being replaced");
    }

    /// Replaces an input's text with `text`, then fires `change` (as
    /// leaving the field does).
    pub fn fill(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.command(&format!("element/{element}/clear"), json!({}));
        self.command(&format!("element/{element}/value"), json!({ "text": text }));
        self.execute(&format!(
            "document.querySelector({}).dispatchEvent(new Event('change'))",
            json!(css)
        ));
    }

    /// Saves a PNG of the page.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let shot = self.call(
            reqwest::Method::GET,
            &format!("{}/screenshot", self.session),
            None,
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().unwrap_or_default())
            .expect("a base64 PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let session = std::mem::take(&mut self.session);
            let _ = self.runtime.block_on(self.http.delete(session).send());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where screenshots go: `target/console-screenshots/NAME.png`.
pub fn screenshot_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/console-screenshots")
        .join(format!("{name}.png"))
}
