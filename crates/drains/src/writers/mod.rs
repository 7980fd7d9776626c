//! One writer per URL scheme. The manager owns batching, retry and status;
//! a writer only connects and delivers one batch at a time.
//!
//! Each writer takes its own part of the parsed URL ([`Target`]'s variant:
//! its endpoint and the options of its scheme) besides the shared
//! [`WriterContext`].
//!
//! Contract: [`connect`] opens a writer (resolving the host through the
//! drain's [`NetPolicy`], so a forbidden address fails here too; a file
//! drain checks its path against the [`PathPolicy`]);
//! [`DrainWriter::send`] delivers the front of a batch, as many entries as
//! fit in the scheme's [`BatchPolicy::max_bytes`] of *rendered* bytes (at
//! least one), and says how many, or fails. On
//! [`WriteError::Retry`] the manager reconnects (on its schedule) and sends
//! the same batch again, so delivery is at-least-once across a broken
//! connection; on [`WriteError::Reject`] it drops the batch and counts it;
//! [`WriteError::Fatal`] stops the drain.
//!
//! | scheme | file |
//! | --- | --- |
//! | `syslog://`, `syslog-tls://` | `syslog.rs` (TLS config in [`tls`]) |
//! | `syslog+udp://`, `udp://` | `datagram.rs` |
//! | `tcp://` | `tcp_lines.rs` |
//! | `https://`, `http://` | `https.rs` |
//! | `file://` | [`file`](mod@file) |
//! | `redis://` | `redis.rs` |
//!
//! `stream.rs` is the byte-stream writer the TCP and TLS schemes share and
//! `encode.rs` turns entries into messages. Errors name the peer and say
//! what happened (`connect 127.0.0.1:6514: Connection refused (os error
//! 111)`), as they are shown as a drain's last error.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use envelope::Entry;
use metrics::Metrics;
use tokio::net::TcpStream;

use crate::format::Format;
use crate::netpolicy::{NetPolicy, PolicyError};
use crate::paths::PathPolicy;
use crate::spec::{DrainUrl, Endpoint, Scheme, SyslogTransport, Target};

mod datagram;
mod encode;
pub mod file;
mod grpc;
mod https;
mod redis;
mod stream;
mod syslog;
mod tcp_lines;
#[cfg(test)]
pub(crate) mod testutil;
pub mod tls;

pub use datagram::MAX_DATAGRAM;

/// What a writer needs to know.
#[derive(Clone)]
pub struct WriterContext {
    pub name: String,
    pub url: DrainUrl,
    /// The drain's format; `None` means the scheme's default (RFC 5424 for
    /// syslog schemes, logplex-1 frames for HTTPS, Logyard JSON records
    /// for Redis, verbatim lines else). For syslog schemes and HTTPS a
    /// format replaces the MSG part of each RFC 5424 message.
    pub format: Option<Format>,
    pub policy: Arc<NetPolicy>,
    /// Where file drains may write and TLS files may be read from.
    pub paths: Arc<PathPolicy>,
    /// Unix ns when the drain was created: `?overwrite=1` truncates only a
    /// file born after it.
    pub created: i64,
    /// Longest rendered record, in bytes.
    pub max_record: usize,
    pub metrics: Arc<Metrics>,
    /// A logspout route's `append_tag` and `structured_data`, for the
    /// syslog schemes and HTTPS.
    pub syslog_extras: Arc<codec::loggregator::SyslogExtras>,
}

impl WriterContext {
    /// Rendered bytes a writer sends at once at most (one record more for
    /// the stream schemes).
    pub fn max_bytes(&self) -> usize {
        batch_policy(self.url.scheme()).max_bytes
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A connection or I/O problem: reconnect and resend the batch.
    #[error("{0}")]
    Retry(String),
    /// The receiver refused this batch for good (HTTP 4xx other than 429):
    /// `reason` is what it answered (`receiver answered 400 Bad
    /// Request`), told in the apps' streams; `detail` what it said besides
    /// (`: no such token`, its body), for the drain's last error only.
    #[error("{reason}{detail}")]
    Reject { reason: String, detail: String },
    /// The drain can never work as configured.
    #[error("{0}")]
    Fatal(String),
}

/// How the manager gathers a batch for a writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPolicy {
    pub max_entries: usize,
    /// Bytes per batch: the manager gathers about this much payload, and a
    /// writer sends at most this much rendered output at once.
    pub max_bytes: usize,
    /// How long to wait for more entries once one is there.
    pub max_wait: Duration,
}

/// How many entries of the batch were delivered.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<usize, WriteError>> + Send + 'a>>;

pub trait DrainWriter: Send {
    /// Delivers the front of `batch`: entries in order until their
    /// rendering reaches [`WriterContext::max_bytes`] (at least one entry;
    /// all of an empty batch), and returns how many. The manager sends the
    /// rest next.
    fn send<'a>(&'a mut self, batch: &'a [Arc<Entry>]) -> SendFuture<'a>;
}

/// The batching each scheme wants: HTTPS posts Logplex-sized batches
/// (512 KiB or 1 s); stream writers take what is there.
pub fn batch_policy(scheme: Scheme) -> BatchPolicy {
    match scheme {
        Scheme::Https | Scheme::Http => BatchPolicy {
            max_entries: 10_000,
            max_bytes: 512 * 1024,
            max_wait: Duration::from_secs(1),
        },
        _ => BatchPolicy {
            max_entries: 1_000,
            max_bytes: 1 << 20,
            max_wait: Duration::ZERO,
        },
    }
}

/// Opens the writer for the drain's scheme, handing it its target.
pub async fn connect(ctx: &WriterContext) -> Result<Box<dyn DrainWriter>, WriteError> {
    match &ctx.url.target {
        Target::Syslog(syslog) => match &syslog.transport {
            SyslogTransport::Tcp => syslog::connect_tcp(ctx, syslog).await,
            SyslogTransport::Tls(files) => syslog::connect_tls(ctx, syslog, files).await,
            SyslogTransport::Udp => datagram::connect_syslog(ctx, syslog).await,
        },
        Target::Lines(lines) if lines.udp => datagram::connect_lines(ctx, lines).await,
        Target::Lines(lines) => tcp_lines::connect(ctx, lines).await,
        Target::Http(http) => https::connect(ctx, http).await,
        Target::File(file) => file::connect(ctx, file).await,
        Target::Redis(redis) => redis::connect(ctx, redis).await,
        Target::Grpc(to) => grpc::connect(ctx, to).await,
    }
}

/// How long a TCP connect (per address) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long delivering one batch may take (a write, an HTTP request).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// A policy refusal can only be fixed by an operator (`--allow-drain-ranges`):
/// fatal. A failed lookup may succeed later: retry.
fn policy_error(e: PolicyError) -> WriteError {
    match e {
        PolicyError::Resolve { .. } => WriteError::Retry(e.to_string()),
        PolicyError::Forbidden { .. } | PolicyError::Range(_) => WriteError::Fatal(e.to_string()),
    }
}

/// The drain's host resolved to the addresses its policy allows.
async fn resolve(ctx: &WriterContext, to: &Endpoint) -> Result<Vec<SocketAddr>, WriteError> {
    ctx.policy
        .resolve(&to.host, to.port)
        .await
        .map_err(policy_error)
}

/// Connects to the first allowed address of the drain's host that answers,
/// each attempt bounded by [`CONNECT_TIMEOUT`].
async fn connect_tcp(
    ctx: &WriterContext,
    to: &Endpoint,
) -> Result<(TcpStream, SocketAddr), WriteError> {
    let mut errors = Vec::new();
    for addr in resolve(ctx, to).await? {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok((stream, addr)),
            Ok(Err(e)) => errors.push(format!("connect {addr}: {e}")),
            Err(_) => errors.push(format!(
                "connect {addr}: timed out after {} s",
                CONNECT_TIMEOUT.as_secs()
            )),
        }
    }
    Err(WriteError::Retry(errors.join("; ")))
}

/// `host:port`, with brackets around an IPv6 address.
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// User and password from a drain URL (`scheme://user:pass@host/…`),
/// percent-decoded; `None` when it has neither.
fn userinfo(raw: &str) -> Option<(String, Option<String>)> {
    let url = url::Url::parse(raw).ok()?;
    let user = percent_decode(url.username());
    let password = url.password().map(percent_decode);
    (!user.is_empty() || password.is_some()).then_some((user, password))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
