//! Ingest limits. Each is a config value (see the server's `sluice.toml`)
//! with the default given here.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct IngestLimits {
    /// Longest payload kept; longer ones are truncated and counted
    /// (`sluice_drops_total{reason="truncated"}`).
    pub max_message: usize,
    /// Largest HTTP request body.
    pub max_body: usize,
    /// Concurrent syslog TCP connections; further ones wait in the backlog.
    pub max_connections: usize,
    /// A TCP connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Largest UDP datagram read (longer datagrams are truncated by the OS).
    pub max_datagram: usize,
    /// How far in the future a sender's timestamp may be before it is
    /// replaced with the receive time.
    pub max_future_skew: Duration,
    /// How far in the past a sender's timestamp may be before it is replaced
    /// with the receive time.
    pub max_past_skew: Duration,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_message: 64 * 1024,
            max_body: 8 << 20,
            max_connections: 1024,
            idle_timeout: Duration::from_secs(300),
            max_datagram: 64 * 1024,
            max_future_skew: Duration::from_secs(600),
            max_past_skew: Duration::from_secs(24 * 3600),
        }
    }
}

/// Room for the syslog header (PRI, timestamp, names, structured data) on
/// top of `max_message` when framing: the payload limit applies to MSG.
pub const HEADER_ALLOWANCE: usize = 4096;

impl IngestLimits {
    /// The longest frame read before truncating.
    pub fn max_frame(&self) -> usize {
        self.max_message + HEADER_ALLOWANCE
    }

    /// The sender's timestamp when present and sane, else `now`.
    pub fn timestamp(&self, sent: Option<i64>, now: i64) -> i64 {
        match sent {
            Some(ts)
                if ts <= now.saturating_add(self.max_future_skew.as_nanos() as i64)
                    && ts >= now.saturating_sub(self.max_past_skew.as_nanos() as i64) =>
            {
                ts
            }
            _ => now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insane_timestamps_become_receive_time() {
        let l = IngestLimits::default();
        let now = 1_800_000_000_000_000_000;
        assert_eq!(l.timestamp(Some(now - 5), now), now - 5);
        assert_eq!(l.timestamp(None, now), now);
        assert_eq!(l.timestamp(Some(0), now), now);
        assert_eq!(l.timestamp(Some(now + 3_600_000_000_000), now), now);
    }
}
