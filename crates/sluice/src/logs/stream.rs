//! One connection to the stream endpoint: the request, then NDJSON lines
//! until the response ends, breaks or goes quiet. Blank lines are the
//! server's heartbeats.

use std::io;
use std::time::Duration;

use futures_util::StreamExt as _;
use reqwest::header::ACCEPT;
use reqwest::{StatusCode, Url};

use crate::client::{auth_hint, describe_error, error_message};

/// The server sends a heartbeat every 15 s by default; this much silence
/// means the connection is dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest line accepted (a 64 KiB payload is ~90 KiB as JSON).
const MAX_LINE: usize = 16 * 1024 * 1024;

/// Why a connection could not be opened.
#[derive(Debug)]
pub enum ConnectError {
    /// Worth retrying: network trouble, 5xx, 429.
    Retry(String),
    /// The request itself is wrong (4xx): retrying will not help.
    Fatal(String),
}

/// How a stream ended.
#[derive(Debug)]
pub enum End {
    /// The server ended the response.
    Closed,
    /// The connection broke or went quiet.
    Broken(String),
    /// Writing the output failed (stdout closed, ...).
    Output(io::Error),
}

/// Where lines go.
pub trait Sink {
    /// One non-blank line of the response.
    fn line(&mut self, line: &[u8]) -> io::Result<()>;
    /// After each chunk of the response.
    fn flush(&mut self) -> io::Result<()>;
}

/// Opens the stream at `url`; `has_token` tunes the hint on a 401/403.
pub async fn connect(
    client: &reqwest::Client,
    url: Url,
    has_token: bool,
) -> Result<reqwest::Response, ConnectError> {
    let response = client
        .get(url)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| ConnectError::Retry(describe_error(&e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.bytes().await.unwrap_or_default();
    let message = error_message(&body);
    let mut why = if message.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {message}")
    };
    if let Some(hint) = auth_hint(status, has_token) {
        why = format!("{why} ({hint})");
    }
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Err(ConnectError::Retry(why))
    } else {
        Err(ConnectError::Fatal(why))
    }
}

/// Feeds the response's lines to `sink` until it ends.
pub async fn read(response: reqwest::Response, sink: &mut impl Sink) -> End {
    let mut body = response.bytes_stream();
    let mut lines = LineBuffer::default();
    loop {
        let chunk = match tokio::time::timeout(IDLE_TIMEOUT, body.next()).await {
            Err(_) => return End::Broken(format!("no data for {}s", IDLE_TIMEOUT.as_secs())),
            Ok(None) => return End::Closed,
            Ok(Some(Err(err))) => return End::Broken(describe_error(&err)),
            Ok(Some(Ok(chunk))) => chunk,
        };
        if let Err(err) = lines.feed(&chunk, |line| sink.line(line)) {
            return End::Output(err);
        }
        if lines.pending() > MAX_LINE {
            return End::Broken("a line longer than 16 MiB".into());
        }
        if let Err(err) = sink.flush() {
            return End::Output(err);
        }
    }
}

/// Splits a byte stream into non-blank lines (a partial line waits for the
/// next chunk; one cut off by the end of the response is dropped).
#[derive(Debug, Default)]
struct LineBuffer {
    partial: Vec<u8>,
}

impl LineBuffer {
    fn feed(
        &mut self,
        mut chunk: &[u8],
        mut each: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            let piece = &chunk[..end];
            chunk = &chunk[end + 1..];
            let line = if self.partial.is_empty() {
                piece
            } else {
                self.partial.extend_from_slice(piece);
                &self.partial[..]
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.iter().all(u8::is_ascii_whitespace) {
                each(line)?;
            }
            self.partial.clear();
        }
        self.partial.extend_from_slice(chunk);
        Ok(())
    }

    fn pending(&self) -> usize {
        self.partial.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&[u8]]) -> Vec<String> {
        let mut buf = LineBuffer::default();
        let mut out = Vec::new();
        for c in chunks {
            buf.feed(c, |l| {
                out.push(String::from_utf8_lossy(l).into_owned());
                Ok(())
            })
            .unwrap();
        }
        out
    }

    #[test]
    fn heartbeats_are_skipped_and_lines_joined() {
        assert_eq!(
            lines(&[b"{\"a\":1}\n\n", b"{\"b\"", b":2}\r\n", b"\n{\"c\":3}"]),
            ["{\"a\":1}", "{\"b\":2}"]
        );
    }
}
