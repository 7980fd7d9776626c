//! Routing keys, after Logyard's: every envelope has one, subscriptions match
//! on key prefixes, and in cluster mode the key becomes the NATS subject.
//!
//! - `apptail.<source_id>`: app logs and events about an app;
//! - `systail.<name>.<node>`: host log files (the `systail` tag names the
//!   file, the `host` tag the node);
//! - `event.<type>`: platform events (an Event with an `event_type` tag);
//! - `metric.<source_id>`: counters, gauges and timers.
//!
//! Key segments are made subject-safe: `.`, `*`, `>` and white space inside a
//! segment become `_`.

use crate::v2::{Envelope, Message};

pub const APPTAIL: &str = "apptail";
pub const SYSTAIL: &str = "systail";
pub const EVENT: &str = "event";
pub const METRIC: &str = "metric";

/// Tag naming a host log file; its presence makes a log a `systail` entry.
pub const SYSTAIL_TAG: &str = "systail";
/// Tag naming a platform event's type; its presence makes an event an
/// `event.<type>` entry.
pub const EVENT_TYPE_TAG: &str = "event_type";

/// Whether an envelope's key is `apptail.<source_id>`, so a key computed
/// for its source can be reused (the bus caches it per run of a source).
pub fn is_apptail(envelope: &Envelope) -> bool {
    match &envelope.message {
        Some(Message::Counter(_) | Message::Gauge(_) | Message::Timer(_)) => false,
        Some(Message::Log(_)) => !envelope.tags.contains_key(SYSTAIL_TAG),
        Some(Message::Event(_)) => !envelope.tags.contains_key(EVENT_TYPE_TAG),
        None => true,
    }
}

/// The routing key of an envelope.
pub fn key_for(envelope: &Envelope) -> String {
    let mut key = String::with_capacity(8 + envelope.source_id.len());
    match &envelope.message {
        Some(Message::Counter(_) | Message::Gauge(_) | Message::Timer(_)) => {
            key.push_str(METRIC);
            push_segment(&mut key, &envelope.source_id);
        }
        Some(Message::Log(_)) if envelope.tags.contains_key(SYSTAIL_TAG) => {
            key.push_str(SYSTAIL);
            push_segment(&mut key, &envelope.tags[SYSTAIL_TAG]);
            push_segment(
                &mut key,
                envelope.tags.get("host").map(String::as_str).unwrap_or("-"),
            );
        }
        Some(Message::Event(_)) if envelope.tags.contains_key(EVENT_TYPE_TAG) => {
            key.push_str(EVENT);
            push_segment(&mut key, &envelope.tags[EVENT_TYPE_TAG]);
        }
        _ => {
            key.push_str(APPTAIL);
            push_segment(&mut key, &envelope.source_id);
        }
    }
    key
}

fn push_segment(key: &mut String, segment: &str) {
    key.push('.');
    if segment.is_empty() {
        key.push('-');
        return;
    }
    key.extend(segment.chars().map(|c| match c {
        '.' | '*' | '>' => '_',
        c if c.is_whitespace() => '_',
        c => c,
    }));
}

/// Does `key` fall under `prefix`? A prefix matches whole dot-separated
/// segments, as a NATS subject wildcard does: `apptail` and `apptail.web`
/// both match `apptail.web` and `apptail.web.x`, but `apptail.web` does not
/// match `apptail.web2`. The empty prefix matches every key, and a prefix
/// ending in `.` already ends on a segment boundary (`apptail.` is
/// `apptail`).
pub fn has_prefix(key: &str, prefix: &str) -> bool {
    match key.strip_prefix(prefix) {
        Some(rest) => {
            rest.is_empty() || rest.starts_with('.') || prefix.is_empty() || prefix.ends_with('.')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v2::{Counter, LogType};
    use bytes::Bytes;

    #[test]
    fn keys_by_kind() {
        let mut e = Envelope::log(0, "web-guid", "0", Bytes::new(), LogType::Out);
        assert_eq!(key_for(&e), "apptail.web-guid");
        e.tags.insert("systail".into(), "kern.log".into());
        e.tags.insert("host".into(), "node-1".into());
        assert_eq!(key_for(&e), "systail.kern_log.node-1");
        let mut ev = Envelope::event(0, "", "deploy", "done");
        assert_eq!(key_for(&ev), "apptail.-");
        ev.tags.insert("event_type".into(), "deploy".into());
        assert_eq!(key_for(&ev), "event.deploy");
        let mut m = Envelope::log(0, "db", "", Bytes::new(), LogType::Out);
        m.message = Some(Message::Counter(Counter::default()));
        assert_eq!(key_for(&m), "metric.db");
    }

    #[test]
    fn apptail_kind_agrees_with_the_key() {
        let mut e = Envelope::log(0, "web", "0", Bytes::new(), LogType::Out);
        assert!(is_apptail(&e));
        e.tags.insert("systail".into(), "x".into());
        assert!(!is_apptail(&e));
        e.message = Some(Message::Counter(Counter::default()));
        assert!(!is_apptail(&e));
    }

    #[test]
    fn prefixes() {
        assert!(has_prefix("apptail.web", "apptail"));
        assert!(has_prefix("apptail.web", "apptail.web"));
        assert!(!has_prefix("apptail.web", "systail"));
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(!has_prefix("apptail.web2", "apptail.web"));
        assert!(has_prefix("apptail.web.x", "apptail.web"));
        assert!(has_prefix("apptail.web", "apptail.web"));
        assert!(has_prefix("apptail.web", "apptail"));
        assert!(!has_prefix("apptailx.web", "apptail"));
        assert!(!has_prefix("apptail", "apptail.web"));
        assert!(!has_prefix("systail.kern_log.node-1", "systail.kern"));
        assert!(has_prefix("systail.kern_log.node-1", "systail.kern_log"));
        // The empty prefix matches everything; a trailing dot is a boundary.
        assert!(has_prefix("apptail.web", ""));
        assert!(has_prefix("", ""));
        assert!(has_prefix("apptail.web", "apptail."));
        assert!(!has_prefix("apptail", "apptail."));
    }
}
