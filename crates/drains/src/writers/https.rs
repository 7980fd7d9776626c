//! `https://` (and `http://`) drains, Logplex-style: each batch is one POST
//! whose body is the octet-counted RFC 5424 frames of its entries
//! (`Content-Type: application/logplex-1`), with `Logplex-Msg-Count` and a
//! `Logplex-Frame-Id` that is the same when the manager resends the same
//! batch after a failure, so receivers can drop duplicates. With
//! `?body=envelopes` the body is NDJSON instead, one Log Cache JSON
//! envelope per line (`application/x-ndjson`): what a sluice server's
//! `POST /logs` takes with every field intact (`sluice agent --forward
//! https://…` uses it).
//!
//! The client is built once per writer: rustls configured like
//! `syslog-tls://` ([`super::tls`]: system roots or only `?ca=`, mTLS with
//! `?cert=` + `?key=`), every DNS lookup filtered by the drain's
//! [`NetPolicy`](crate::netpolicy::NetPolicy), no proxies from the
//! environment, no redirects (a redirect could lead to an address the
//! policy refuses), 10 s to connect and 30 s per request. User and password
//! in the drain URL are sent as basic auth.
//!
//! A POST carries at most 512 KiB of frames ([`super::batch_policy`]),
//! counted after rendering; the rest of a batch goes in the next one.
//!
//! A 2xx answer delivers the batch; 429, 401, 403 (the drain's
//! credentials, not the batch: fixed, the drain goes on where it was), 5xx,
//! 3xx and network errors are [`WriteError::Retry`]; any other 4xx is
//! [`WriteError::Reject`]: the receiver refused this batch for good.

use std::net::IpAddr;
use std::sync::Arc;

use envelope::Entry;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::StatusCode;

use super::encode::SyslogEncoder;
use super::{
    host_port, tls, DrainWriter, SendFuture, WriteError, WriterContext, CONNECT_TIMEOUT,
    WRITE_TIMEOUT,
};
use crate::spec::HttpTarget;

/// How much of an error answer's body goes into the error message.
const MAX_ERROR_BODY: usize = 200;

struct HttpsWriter {
    client: reqwest::Client,
    url: reqwest::Url,
    /// `host:port`, for messages (the URL may hold secrets in its query).
    target: String,
    basic_auth: Option<(String, Option<String>)>,
    encoder: SyslogEncoder,
    /// `body=envelopes`: NDJSON envelopes rather than syslog frames.
    envelopes: bool,
    max_bytes: usize,
    /// For explaining an untrusted certificate ([`tls::explain`]).
    ca: Option<std::path::PathBuf>,
    tls_dirs: Vec<std::path::PathBuf>,
}

pub(super) async fn connect(
    ctx: &WriterContext,
    http: &HttpTarget,
) -> Result<Box<dyn DrainWriter>, WriteError> {
    let host = &http.endpoint.host;
    let target = host_port(host, http.endpoint.port);
    // Checked now so a refused address fails here, with a clear message; the
    // resolver checks again on every lookup, but is never asked about an
    // IP literal, so those are checked here only (they cannot change).
    if let Ok(ip) = host.parse::<IpAddr>() {
        ctx.policy.check(host, ip).map_err(super::policy_error)?;
    } else {
        super::resolve(ctx, &http.endpoint).await?;
    }
    let scheme = if http.tls.is_some() { "https" } else { "http" };
    let path = if http.path.is_empty() {
        "/"
    } else {
        http.path.as_str()
    };
    let raw = format!("{scheme}://{target}{path}");
    let url = reqwest::Url::parse(&raw)
        .map_err(|e| WriteError::Fatal(format!("drain URL {}: {e}", crate::redact::url(&raw))))?;

    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(if http.envelopes {
            "application/x-ndjson"
        } else {
            "application/logplex-1"
        }),
    );
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .default_headers(headers)
        .dns_resolver2(ctx.policy.reqwest_resolver())
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(WRITE_TIMEOUT);
    if let Some(files) = &http.tls {
        builder =
            builder.use_preconfigured_tls(tls::client_config(files, &ctx.paths)?.as_ref().clone());
    }
    let client = builder
        .build()
        .map_err(|e| WriteError::Fatal(format!("HTTP client for {target}: {}", error_chain(&e))))?;
    Ok(Box::new(HttpsWriter {
        client,
        url,
        target,
        basic_auth: super::userinfo(&ctx.url.raw),
        encoder: SyslogEncoder::new(ctx, http.omit_metadata),
        envelopes: http.envelopes,
        max_bytes: ctx.max_bytes(),
        ca: http.tls.as_ref().and_then(|t| t.ca.clone()),
        tls_dirs: ctx.paths.tls_dirs().to_vec(),
    }))
}

impl HttpsWriter {
    async fn send_batch(&mut self, batch: &[Arc<Entry>]) -> Result<usize, WriteError> {
        if batch.is_empty() {
            return Ok(0);
        }
        // Frames up to max_bytes (at least one); the same batch gives the
        // same body again, so a resend keeps its frame id.
        let mut body = Vec::new();
        let mut n = 0;
        for entry in batch {
            let before = body.len();
            if self.envelopes {
                envelope::json::write_json(&entry.envelope, &mut body);
                body.push(b'\n');
            } else {
                self.encoder.frame(entry, &mut body);
            }
            if n > 0 && body.len() > self.max_bytes {
                body.truncate(before);
                break;
            }
            n += 1;
        }
        let batch = &batch[..n];
        let mut request = self
            .client
            .post(self.url.clone())
            .header("Logplex-Msg-Count", batch.len())
            .header("Logplex-Frame-Id", frame_id(batch, body.len()))
            .body(body);
        if let Some((user, password)) = &self.basic_auth {
            request = request.basic_auth(user, password.as_ref());
        }
        let response = request.send().await.map_err(|e| {
            WriteError::Retry(tls::explain(
                format!("POST to {}: {}", self.target, error_chain(&e)),
                self.ca.as_deref(),
                &self.tls_dirs,
            ))
        })?;
        let status = response.status();
        if status.is_success() {
            // Read what little there is so the connection can be reused.
            let _ = read_some(response, 64 * 1024).await;
            return Ok(n);
        }
        let text = read_some(response, MAX_ERROR_BODY).await;
        let text = text.trim();
        let detail = if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        };
        // 401 and 403 are the drain's credentials, not this batch: kept
        // and retried (the drain shows RETRYING and why) until they are
        // fixed, rather than each batch dropped in turn.
        let retried = [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::UNAUTHORIZED,
            StatusCode::FORBIDDEN,
        ];
        if status.is_client_error() && !retried.contains(&status) {
            Err(WriteError::Reject {
                reason: format!("receiver answered {}", status_text(status)),
                detail,
            })
        } else {
            Err(WriteError::Retry(format!(
                "receiver answered {}{detail}",
                status_text(status)
            )))
        }
    }
}

impl DrainWriter for HttpsWriter {
    fn send<'a>(&'a mut self, batch: &'a [Arc<Entry>]) -> SendFuture<'a> {
        Box::pin(self.send_batch(batch))
    }
}

/// `503 Service Unavailable`, and the redirect target for a 3xx.
fn status_text(status: StatusCode) -> String {
    let mut text = status.to_string();
    if status.is_redirection() {
        text.push_str(" (redirects are not followed: give the drain the final URL)");
    }
    text
}

/// Up to `limit` bytes of the response body, as text.
async fn read_some(mut response: reqwest::Response, limit: usize) -> String {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(limit);
    String::from_utf8_lossy(&body).into_owned()
}

/// A batch's id: a hash of what identifies it (first and last entry,
/// length), so a resend of the same batch carries the same id.
fn frame_id(batch: &[Arc<Entry>], body_len: usize) -> String {
    // FNV-1a: stable across processes and Rust versions.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for entry in [batch.first(), batch.last()].into_iter().flatten() {
        eat(entry.envelope.source_id.as_bytes());
        eat(&[0]);
        eat(entry.envelope.instance_id.as_bytes());
        eat(&[0]);
        eat(&entry.seq.to_le_bytes());
        eat(&entry.envelope.timestamp.to_le_bytes());
    }
    eat(&(batch.len() as u64).to_le_bytes());
    eat(&(body_len as u64).to_le_bytes());
    format!("{hash:016x}")
}

/// An error with its causes: reqwest's own message says little
/// ("error sending request"); the cause says what happened. URLs are left
/// out (they may carry tokens).
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        format!("timed out after {} s", WRITE_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    let mut last = String::new();
    while let Some(cause) = source {
        let part = cause.to_string();
        // Wrappers often repeat their cause; say each thing once, and
        // leave out hyper's "client error (Connect)".
        if !part.is_empty() && !last.contains(&part) && !part.starts_with("client error (") {
            text.push_str(": ");
            text.push_str(&part);
        }
        last = part;
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};
    use std::sync::Arc;

    use parking_lot::Mutex;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::super::testutil::{batch, ctx, ctx_with, err_text, frames, Pki};
    use super::super::{connect, WriteError};
    use crate::netpolicy::NetPolicy;

    struct Request {
        path: String,
        headers: HashMap<String, String>,
        body: Vec<u8>,
    }

    /// A minimal HTTP/1.1 receiver: answers requests in order with the
    /// queued `(status line, body)` (then `200 OK`), and reports them.
    struct Receiver {
        port: u16,
        requests: mpsc::UnboundedReceiver<Request>,
        answers: Arc<Mutex<VecDeque<(&'static str, &'static str)>>>,
    }

    impl Receiver {
        async fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> Receiver {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let (tx, requests) = mpsc::unbounded_channel();
            let answers = Arc::new(Mutex::new(VecDeque::new()));
            let queue = Arc::clone(&answers);
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let (tx, queue, tls) = (tx.clone(), Arc::clone(&queue), tls.clone());
                    tokio::spawn(async move {
                        match tls {
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(tcp).await {
                                    serve(stream, tx, queue).await;
                                }
                            }
                            None => serve(tcp, tx, queue).await,
                        }
                    });
                }
            });
            Receiver {
                port,
                requests,
                answers,
            }
        }

        fn answer(&self, status: &'static str, body: &'static str) {
            self.answers.lock().push_back((status, body));
        }

        async fn next(&mut self) -> Request {
            tokio::time::timeout(std::time::Duration::from_secs(5), self.requests.recv())
                .await
                .expect("a request in time")
                .expect("receiver running")
        }
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        mut stream: S,
        tx: mpsc::UnboundedSender<Request>,
        queue: Arc<Mutex<VecDeque<(&'static str, &'static str)>>>,
    ) {
        let mut buf = Vec::new();
        loop {
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let mut chunk = [0u8; 8192];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let mut lines = head.split("\r\n");
            let path = lines
                .next()
                .unwrap_or_default()
                .split(' ')
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let headers: HashMap<String, String> = lines
                .filter_map(|l| l.split_once(": "))
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
                .collect();
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < head_end + len {
                let mut chunk = [0u8; 8192];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body = buf[head_end..head_end + len].to_vec();
            buf.drain(..head_end + len);
            let _ = tx.send(Request {
                path,
                headers,
                body,
            });
            let (status, text) = queue.lock().pop_front().unwrap_or(("200 OK", ""));
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            );
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    #[tokio::test]
    async fn logplex_batches_with_stable_frame_ids() {
        let pki = Pki::new();
        let mut receiver = Receiver::start(Some(pki.acceptor(false))).await;
        let url = format!(
            "https://localhost:{}/logs?ca={}&token=s3cret",
            receiver.port,
            pki.ca.display()
        );
        let mut writer = connect(&ctx(&url)).await.unwrap();
        let entries = batch(&["one", "two", "three"]);

        receiver.answer("503 Service Unavailable", "busy");
        let err = err_text(writer.send(&entries).await);
        assert!(matches!(err, WriteError::Retry(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "receiver answered 503 Service Unavailable: busy"
        );
        let first = receiver.next().await;

        writer.send(&entries).await.unwrap();
        let second = receiver.next().await;

        assert_eq!(first.path, "/logs?token=s3cret");
        let h = &second.headers;
        assert_eq!(h["content-type"], "application/logplex-1");
        assert_eq!(h["logplex-msg-count"], "3");
        assert_eq!(
            h["user-agent"],
            concat!("sluice/", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(h["logplex-frame-id"].len(), 16);
        assert_eq!(first.headers["logplex-frame-id"], h["logplex-frame-id"]);
        assert_eq!(first.body, second.body);
        let frames = frames(&second.body).expect("octet-counted body");
        assert_eq!(frames.len(), 3);
        assert!(
            frames[0].starts_with("<14>1 ") && frames[0].ends_with(" one\n"),
            "{frames:?}"
        );
        assert!(frames[2].ends_with(" three\n"));

        // Another batch, another id.
        writer.send(&batch(&["four"])).await.unwrap();
        let third = receiver.next().await;
        assert_ne!(third.headers["logplex-frame-id"], h["logplex-frame-id"]);
    }

    #[tokio::test]
    async fn envelope_bodies_keep_every_field() {
        let mut receiver = Receiver::start(None).await;
        let url = format!("http://127.0.0.1:{}/logs?body=envelopes&x=1", receiver.port);
        let mut writer = connect(&ctx(&url)).await.unwrap();
        let entries = batch(&["one", "two"]);
        writer.send(&entries).await.unwrap();
        let request = receiver.next().await;
        assert_eq!(request.path, "/logs?x=1", "body= is the drain's option");
        assert_eq!(request.headers["content-type"], "application/x-ndjson");
        let lines: Vec<_> = request
            .body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| envelope::json::from_json(l).expect("each line an envelope"))
            .collect();
        let sent: Vec<_> = entries.iter().map(|e| e.envelope.clone()).collect();
        assert_eq!(lines, sent, "the envelopes as they are");
    }

    #[tokio::test]
    async fn client_errors_reject_and_429_retries() {
        let mut receiver = Receiver::start(None).await;
        let url = format!("http://user:p%40ss@127.0.0.1:{}/", receiver.port);
        let mut writer = connect(&ctx(&url)).await.unwrap();

        receiver.answer("400 Bad Request", "no such drain token\n");
        let err = err_text(writer.send(&batch(&["x"])).await);
        assert!(matches!(err, WriteError::Reject { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "receiver answered 400 Bad Request: no such drain token"
        );
        let request = receiver.next().await;
        // user:p@ss
        assert_eq!(request.headers["authorization"], "Basic dXNlcjpwQHNz");

        receiver.answer("429 Too Many Requests", "");
        let err = err_text(writer.send(&batch(&["x"])).await);
        assert!(matches!(err, WriteError::Retry(_)), "{err:?}");
        assert_eq!(err.to_string(), "receiver answered 429 Too Many Requests");

        receiver.answer("401 Unauthorized", "");
        let err = err_text(writer.send(&batch(&["x"])).await);
        assert!(matches!(err, WriteError::Retry(_)), "credentials: {err:?}");

        receiver.answer("302 Found", "");
        let err = err_text(writer.send(&batch(&["x"])).await);
        assert!(
            matches!(err, WriteError::Retry(_)) && err.to_string().contains("redirects"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn network_errors_retry_and_forbidden_addresses_are_fatal() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut writer = connect(&ctx(&format!("http://127.0.0.1:{port}/")))
            .await
            .unwrap();
        let err = err_text(writer.send(&batch(&["x"])).await);
        assert!(matches!(err, WriteError::Retry(_)), "{err:?}");
        assert!(err.to_string().contains("Connection refused"), "{err}");

        let url = format!("https://127.0.0.1:{port}/");
        let err = err_text(connect(&ctx_with(&url, NetPolicy::default(), None)).await);
        assert!(matches!(err, WriteError::Fatal(_)), "{err:?}");
        assert!(
            err.to_string().contains("127.0.0.1")
                && err.to_string().contains("--allow-drain-ranges")
        );
        let url = format!("https://localhost:{port}/");
        let err = err_text(connect(&ctx_with(&url, NetPolicy::default(), None)).await);
        assert!(matches!(err, WriteError::Fatal(_)), "{err:?}");
    }
}
