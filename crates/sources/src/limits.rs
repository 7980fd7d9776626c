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
    /// Concurrent syslog TCP connections. At the limit the connection that
    /// completed a frame longest ago is closed to make room (counted).
    pub max_connections: usize,
    /// A TCP connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// A TCP connection that has not finished a frame this long after the
    /// frame's first byte is closed (slowloris).
    pub frame_timeout: Duration,
    /// Bytes of HTTP request bodies buffered at once across all requests.
    pub max_inflight_bytes: usize,
    /// Bounds on identity fields (source id, instance id, tags).
    pub fields: FieldLimits,
    /// Largest UDP datagram read (longer datagrams are truncated by the OS).
    pub max_datagram: usize,
    /// How far in the future a sender's timestamp may be before it is
    /// replaced with the receive time.
    pub max_future_skew: Duration,
    /// How far in the past a sender's timestamp may be before it is replaced
    /// with the receive time.
    pub max_past_skew: Duration,
    /// Lines per second (and burst) per source before lines are dropped
    /// ([`crate::rate`]).
    pub rate: crate::rate::RateLimit,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_message: 64 * 1024,
            max_body: 8 << 20,
            max_connections: 1024,
            idle_timeout: Duration::from_secs(300),
            frame_timeout: Duration::from_secs(30),
            max_inflight_bytes: 64 << 20,
            fields: FieldLimits::default(),
            max_datagram: 64 * 1024,
            max_future_skew: Duration::from_secs(600),
            max_past_skew: Duration::from_secs(24 * 3600),
            rate: crate::rate::RateLimit::default(),
        }
    }
}

/// Bounds on an envelope's identity fields, near Loggregator's: they keep
/// per-source state (sequences, indexes, drain matching) small whatever a
/// sender puts there.
#[derive(Clone, Debug)]
pub struct FieldLimits {
    /// Longest source id in bytes (truncated beyond).
    pub max_source_id: usize,
    /// Longest instance id in bytes (truncated beyond).
    pub max_instance_id: usize,
    /// Most tags per envelope (the rest are dropped).
    pub max_tags: usize,
    /// Longest tag name in bytes (such tags are dropped).
    pub max_tag_key: usize,
    /// Longest tag value in bytes (truncated beyond).
    pub max_tag_value: usize,
}

impl Default for FieldLimits {
    fn default() -> Self {
        FieldLimits {
            max_source_id: 256,
            max_instance_id: 256,
            max_tags: 64,
            max_tag_key: 256,
            max_tag_value: 1024,
        }
    }
}

/// What [`FieldLimits::apply`] changed, for counting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FieldCuts {
    /// Fields truncated (source id, instance id, tag values).
    pub truncated: u64,
    /// Tags dropped (too many, or a name too long).
    pub tags_dropped: u64,
}

impl FieldLimits {
    /// Truncates over-long identity fields and drops excess tags, in place.
    /// Tags are kept in name order (the first `max_tags` names survive).
    pub fn apply(&self, env: &mut envelope::Envelope) -> FieldCuts {
        let mut cuts = FieldCuts::default();
        if truncate_utf8(&mut env.source_id, self.max_source_id) {
            cuts.truncated += 1;
        }
        if truncate_utf8(&mut env.instance_id, self.max_instance_id) {
            cuts.truncated += 1;
        }
        let before = env.tags.len();
        // `retain` walks the map with a cursor that can delete: dearer
        // than a look, and nearly always there is nothing to delete.
        if env.tags.keys().any(|k| k.len() > self.max_tag_key) {
            env.tags.retain(|k, _| k.len() <= self.max_tag_key);
        }
        if let Some(first_extra) = env.tags.keys().nth(self.max_tags).cloned() {
            env.tags.split_off(&first_extra);
        }
        cuts.tags_dropped = (before - env.tags.len()) as u64;
        // Loggregator v1-style tags are never produced by sluice; only kept
        // when small.
        if env.deprecated_tags.len() > self.max_tags
            || env
                .deprecated_tags
                .keys()
                .any(|k| k.len() > self.max_tag_key)
        {
            cuts.tags_dropped += env.deprecated_tags.len() as u64;
            env.deprecated_tags.clear();
        }
        for value in env.tags.values_mut() {
            if truncate_utf8(value, self.max_tag_value) {
                cuts.truncated += 1;
            }
        }
        self.apply_to_message(env, &mut cuts);
        cuts
    }

    /// Metric names and units are names too: bounded like tag names; a
    /// gauge keeps at most `max_tags` metrics; an event title is bounded
    /// like a tag value (its body by the max message, in
    /// [`crate::IngestContext::publish`]).
    fn apply_to_message(&self, env: &mut envelope::Envelope, cuts: &mut FieldCuts) {
        use envelope::v2::Message;
        match env.message.as_mut() {
            Some(Message::Counter(c)) => {
                cuts.truncated += u64::from(truncate_utf8(&mut c.name, self.max_tag_key));
            }
            Some(Message::Timer(t)) => {
                cuts.truncated += u64::from(truncate_utf8(&mut t.name, self.max_tag_key));
            }
            Some(Message::Gauge(g)) => {
                let before = g.metrics.len();
                g.metrics.retain(|k, _| k.len() <= self.max_tag_key);
                if let Some(first_extra) = g.metrics.keys().nth(self.max_tags).cloned() {
                    g.metrics.split_off(&first_extra);
                }
                cuts.tags_dropped += (before - g.metrics.len()) as u64;
                for v in g.metrics.values_mut() {
                    cuts.truncated += u64::from(truncate_utf8(&mut v.unit, self.max_tag_key));
                }
            }
            Some(Message::Event(e)) => {
                cuts.truncated += u64::from(truncate_utf8(&mut e.title, self.max_tag_value));
            }
            Some(Message::Log(_)) | None => {}
        }
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary; true if cut.
pub fn truncate_utf8(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    // Give the cut-off capacity back: a 1 MiB id cut to 256 bytes must not
    // keep its 1 MiB.
    s.shrink_to_fit();
    true
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
    fn identity_fields_are_bounded() {
        let limits = FieldLimits::default();
        let mut env = envelope::Envelope::log(
            1,
            "é".repeat(1000),
            "i".repeat(300),
            bytes::Bytes::from_static(b"x"),
            envelope::LogType::Out,
        );
        for i in 0..100 {
            env.tags.insert(format!("k{i:03}"), "v".repeat(2000));
        }
        env.tags.insert("x".repeat(300), "long key".into());
        let cuts = limits.apply(&mut env);
        assert!(env.source_id.len() <= 256 && env.source_id.chars().all(|c| c == 'é'));
        assert_eq!(env.instance_id.len(), 256);
        assert_eq!(env.tags.len(), 64);
        assert!(env.tags.contains_key("k000") && !env.tags.contains_key("k064"));
        assert!(env.tags.values().all(|v| v.len() == 1024));
        assert_eq!(cuts.tags_dropped, 37);
        assert_eq!(cuts.truncated, 2 + 64);
        let mut small =
            envelope::Envelope::log(1, "a", "0", bytes::Bytes::new(), envelope::LogType::Out);
        assert_eq!(limits.apply(&mut small), FieldCuts::default());
    }

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
