//! Shipping the buffer to the server: `POST /logs` with NDJSON batches.
//!
//! A batch goes out when 1000 lines are waiting or 100 ms after the first
//! of them arrived, whichever comes first. A batch is removed from the
//! buffer only once the server took it; on a network error, a timeout, 408,
//! 429 or a 5xx it stays queued and the shipper waits (100 ms doubling to
//! 5 s, jittered) before trying again, while the readers keep filling the
//! buffer and dropping its oldest lines. A 401 or 403 (the server wants a
//! token, or another one) is handled the same way, but said only once per
//! run however long it lasts: the lines stay buffered (the oldest dropped
//! when full) and are retried with backoff, never in a tight loop. A 413
//! halves the batch size; any other 4xx drops the batch (counted as lost,
//! said once on stderr).
//!
//! On close, what is queued is flushed until the flush deadline; any
//! failure then ends the flush at once, so a dead server never holds up the
//! exit.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};
use tokio::sync::watch;
use tokio::time::Instant;

use super::batch::{next_batch, Limits};
use super::buffer::Shared;
use super::clock::Clock;
use super::envelopes::{Identity, Item};
use crate::client::{auth_hint, describe_error, error_message, Backoff};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Shipping settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub batch: Limits,
    pub linger: Duration,
    pub flush_deadline: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch: Limits {
                max_items: 1000,
                max_bytes: 1 << 20,
            },
            linger: Duration::from_millis(100),
            flush_deadline: Duration::from_secs(2),
        }
    }
}

pub struct Shipper {
    pub client: reqwest::Client,
    /// Whether `client` presents a token (for what a 401 is said to mean).
    pub has_token: bool,
    /// `{server}/logs`.
    pub url: Url,
    pub queue: Arc<Shared<Item>>,
    pub identity: Arc<Identity>,
    pub clock: Arc<Clock>,
    /// Turns true when no more lines will come.
    pub closing: watch::Receiver<bool>,
    pub settings: Settings,
}

/// What the server said to one batch.
enum Outcome {
    Delivered,
    TooLarge,
    Rejected(String),
    Retry(String),
    /// 401/403: the server wants a (different) token.
    Denied(String),
}

/// What has been said on stderr, so each trouble is said once.
#[derive(Default)]
struct Told {
    /// In an outage now (said; "reachable again" is owed).
    outage: bool,
    denied: bool,
    rejected: bool,
}

impl Shipper {
    /// Ships until closed and flushed (or the flush gave up).
    pub async fn run(mut self) {
        let mut backoff = Backoff::new();
        let mut limits = self.settings.batch;
        let mut told = Told::default();
        let mut deadline: Option<Instant> = None;
        loop {
            if !self.is_closing() {
                self.gather(limits.max_items).await;
            }
            if self.is_closing() && deadline.is_none() {
                deadline = Some(Instant::now() + self.settings.flush_deadline);
            }
            let batch = {
                let mut queue = self.queue.lock();
                let batch = next_batch(&queue, &self.identity, limits, self.clock.stamp());
                if let Some(last) = batch.as_ref().and_then(|b| b.last_seq) {
                    queue.mark_in_flight(last);
                }
                batch
            };
            let Some(mut batch) = batch else {
                if deadline.is_some() {
                    return; // closed and all delivered
                }
                continue;
            };
            let timeout = match deadline {
                Some(at) => at.saturating_duration_since(Instant::now()),
                None => REQUEST_TIMEOUT,
            };
            if timeout.is_zero() {
                self.queue.lock().release();
                return;
            }
            let mut outcome = self.send(std::mem::take(&mut batch.body), timeout).await;
            if matches!(outcome, Outcome::TooLarge) && batch.entries <= 1 {
                outcome = Outcome::Rejected("HTTP 413: a single line is too large".into());
            }
            if !matches!(outcome, Outcome::Delivered | Outcome::Rejected(_)) {
                self.queue.lock().release();
            }
            match outcome {
                Outcome::Delivered => {
                    let mut queue = self.queue.lock();
                    if let Some(last) = batch.last_seq {
                        queue.ack(last);
                    }
                    if let Some(loss) = batch.loss {
                        queue.ack_loss(loss.count);
                    }
                    drop(queue);
                    backoff.reset();
                    limits = self.settings.batch;
                    if std::mem::take(&mut told.outage) {
                        crate::say!("sluice: log server {} is reachable again", self.url);
                    }
                }
                Outcome::TooLarge => limits.max_items = (batch.entries / 2).max(1),
                Outcome::Rejected(why) => {
                    if !std::mem::replace(&mut told.rejected, true) {
                        crate::say!(
                            "sluice: the log server rejected {} lines: {why}",
                            batch.entries
                        );
                    }
                    self.reject(&batch);
                }
                Outcome::Denied(why) => {
                    // Said once for the whole run, however often it recurs.
                    if !std::mem::replace(&mut told.denied, true) {
                        crate::say!(
                            "sluice: cannot ship logs to {}: {why}; {}",
                            self.url,
                            if deadline.is_some() {
                                "giving up"
                            } else {
                                "retrying (keeping the newest lines)"
                            }
                        );
                    }
                    told.outage = true;
                    if deadline.is_some() {
                        return;
                    }
                    let delay = backoff.next_delay();
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = closed(&mut self.closing) => {}
                    }
                }
                Outcome::Retry(why) => {
                    if deadline.is_some() {
                        if !told.outage {
                            crate::say!("sluice: cannot ship logs to {}: {why}", self.url);
                        }
                        return;
                    }
                    if !std::mem::replace(&mut told.outage, true) {
                        crate::say!(
                            "sluice: cannot ship logs to {}: {why}; retrying (keeping the newest lines)",
                            self.url
                        );
                    }
                    let delay = backoff.next_delay();
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = closed(&mut self.closing) => {}
                    }
                }
            }
        }
    }

    fn is_closing(&self) -> bool {
        *self.closing.borrow() || self.closing.has_changed().is_err()
    }

    /// Waits until a batch is due: `max_items` waiting, the linger time
    /// passed since something arrived, or closing.
    async fn gather(&mut self, max_items: usize) {
        let queue = self.queue.clone();
        loop {
            let pending = {
                let q = queue.lock();
                !q.is_empty() || q.loss().is_some()
            };
            if pending {
                break;
            }
            tokio::select! {
                () = queue.pushed() => {}
                () = closed(&mut self.closing) => return,
            }
        }
        let due = Instant::now() + self.settings.linger;
        while queue.lock().len() < max_items {
            tokio::select! {
                () = queue.pushed() => {}
                () = tokio::time::sleep_until(due) => return,
                () = closed(&mut self.closing) => return,
            }
        }
    }

    /// The server refused the batch for good: drop it, count it as lost.
    fn reject(&self, batch: &super::batch::Batch) {
        let mut queue = self.queue.lock();
        if let Some(last) = batch.last_seq {
            queue.ack(last);
        }
        if let Some(loss) = batch.loss {
            queue.ack_loss(loss.count);
        }
        let now = self.clock.stamp();
        // A rejected notice is lost too: fold it back into the next one.
        let lost = batch.entries as u64 + batch.loss.map_or(0, |l| l.count);
        queue.record_loss(lost, now);
    }

    async fn send(&self, body: Vec<u8>, timeout: Duration) -> Outcome {
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/x-ndjson")
            .timeout(timeout)
            .body(body)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(err) => return Outcome::Retry(describe_error(&err)),
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Delivered;
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return Outcome::TooLarge;
        }
        let retry = status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS;
        let why = error_text(status, response).await;
        if let Some(hint) = auth_hint(status, self.has_token) {
            Outcome::Denied(format!("{why} ({hint})"))
        } else if retry {
            Outcome::Retry(why)
        } else {
            Outcome::Rejected(why)
        }
    }
}

/// Resolves once closing is true (or the sender is gone).
async fn closed(closing: &mut watch::Receiver<bool>) {
    let _ = closing.wait_for(|c| *c).await;
}

/// `HTTP 400: <the server's "error" field>`.
async fn error_text(status: StatusCode, response: reqwest::Response) -> String {
    let body = response.bytes().await.unwrap_or_default();
    let message = error_message(&body);
    if message.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {message}")
    }
}
