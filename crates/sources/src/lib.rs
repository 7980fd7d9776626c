//! Ingest: turn bytes from the outside world into envelopes on the bus.
//!
//! - [`syslog_tcp`] and [`syslog_udp`]: syslog listeners (RFC 5424 / 3164,
//!   octet-counted or LF framing detected per frame);
//! - [`http_body`]: decoding of `POST /logs` bodies (logplex-1, NDJSON,
//!   text), used by the server's HTTP handler;
//! - [`mapping`]: how a syslog message becomes a Loggregator envelope;
//! - [`limits`]: every ingest limit with its default.
//!
//! Every source publishes through [`router::Bus::publish`], which never
//! waits on a consumer, so a sender is only ever slowed by its own socket.
//! Bad input is counted in the shared [`router::Metrics`] and never panics.
//! This crate must never depend on the store, drains or server code.

pub mod http_body;
pub mod limits;
pub mod mapping;
pub mod syslog_tcp;
pub mod syslog_udp;

pub use limits::IngestLimits;

use std::time::{SystemTime, UNIX_EPOCH};

/// Now as Unix nanoseconds.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// What every source needs: where to publish, and its limits.
#[derive(Clone)]
pub struct IngestContext {
    pub bus: router::Bus,
    pub limits: IngestLimits,
}

impl IngestContext {
    /// Turns one syslog frame into an envelope, counting truncation and
    /// parse errors. The payload is copied out of the read buffer so that a
    /// stored message holds only its own bytes (the store's memory budget
    /// then counts what is really kept); after this, fan-out shares it.
    pub fn syslog_frame(&self, frame: &[u8], truncated: bool, now: i64) -> envelope::Envelope {
        let metrics = self.bus.metrics();
        let parsed = codec::syslog::parse(frame, now);
        if parsed.format == codec::syslog::SyslogFormat::Raw && frame.first() == Some(&b'<') {
            metrics.count_drop("parse_error", 1);
        }
        let mut message = parsed.message;
        if message.len() > self.limits.max_message {
            message = &message[..self.limits.max_message];
            metrics.count_drop("truncated", 1);
        } else if truncated {
            metrics.count_drop("truncated", 1);
        }
        let payload = bytes::Bytes::copy_from_slice(message);
        mapping::syslog_to_envelope(&parsed, payload, &self.limits, now)
    }
}
