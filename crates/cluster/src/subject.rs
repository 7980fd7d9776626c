//! NATS subjects for envelopes: the routing key (DESIGN.md §2) spelt so
//! that no source id can become a wildcard, a separator or collide with
//! another.
//!
//! [`envelope::key::key_for`] is made for prefix matching and is lossy
//! (`a.b` and `a_b` both become `a_b`), so subjects are built from the
//! envelope's fields again, one escaped token each, under the stream's
//! prefix: `<prefix>.apptail.<source>`, `<prefix>.metric.<source>`,
//! `<prefix>.systail.<file>.<host>`, `<prefix>.event.<type>`. A token keeps
//! ASCII letters, digits and `-`; every other byte (`.`, `*`, `>`, white
//! space, `_` itself, non-ASCII UTF-8 bytes) becomes `_` and two lowercase
//! hex digits. The mapping is injective and its output is always a valid,
//! literal subject token; the empty string is `_` alone.

use envelope::key::{EVENT, EVENT_TYPE_TAG, METRIC, SYSTAIL, SYSTAIL_TAG};
use envelope::v2::{Envelope, Message};

/// The subject kind token of app logs and events about an app.
pub const APPTAIL: &str = envelope::key::APPTAIL;

/// Appends `raw` to `out` as one subject token.
pub fn push_token(out: &mut String, raw: &str) {
    if raw.is_empty() {
        out.push('_');
        return;
    }
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            out.push('_');
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b & 0xf));
        }
    }
}

/// One token for `raw` ([`push_token`]).
pub fn token(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 2);
    push_token(&mut out, raw);
    out
}

/// The raw text of a token made by [`push_token`]; `None` for anything
/// else.
pub fn untoken(token: &str) -> Option<String> {
    if token == "_" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'_' {
            let hi = hex_value(*bytes.get(i + 1)?)?;
            let lo = hex_value(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// The subject an envelope is published on, under `prefix`.
pub fn subject_for(prefix: &str, envelope: &Envelope) -> String {
    let mut s = String::with_capacity(prefix.len() + 16 + envelope.source_id.len());
    s.push_str(prefix);
    s.push('.');
    match &envelope.message {
        Some(Message::Counter(_) | Message::Gauge(_) | Message::Timer(_)) => {
            s.push_str(METRIC);
            s.push('.');
            push_token(&mut s, &envelope.source_id);
        }
        Some(Message::Log(_)) if envelope.tags.contains_key(SYSTAIL_TAG) => {
            s.push_str(SYSTAIL);
            s.push('.');
            push_token(&mut s, &envelope.tags[SYSTAIL_TAG]);
            s.push('.');
            push_token(
                &mut s,
                envelope.tags.get("host").map(String::as_str).unwrap_or("-"),
            );
        }
        Some(Message::Event(_)) if envelope.tags.contains_key(EVENT_TYPE_TAG) => {
            s.push_str(EVENT);
            s.push('.');
            push_token(&mut s, &envelope.tags[EVENT_TYPE_TAG]);
        }
        _ => {
            s.push_str(APPTAIL);
            s.push('.');
            push_token(&mut s, &envelope.source_id);
        }
    }
    s
}

/// The filter that holds every envelope of `source_id` that Log Cache
/// reads by source (its app logs, events about it and its metrics):
/// `<prefix>.*.<source>`.
pub fn source_filter(prefix: &str, source_id: &str) -> String {
    let mut s = format!("{prefix}.*.");
    push_token(&mut s, source_id);
    s
}

/// The source id a subject made by [`subject_for`] names for Log Cache
/// (`apptail` and `metric` subjects); `None` for the others.
pub fn source_of(prefix: &str, subject: &str) -> Option<String> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
    let (kind, tok) = rest.split_once('.')?;
    if (kind == APPTAIL || kind == METRIC) && !tok.contains('.') {
        untoken(tok)
    } else {
        None
    }
}

fn hex_digit(n: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(n & 0xf)])
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use envelope::LogType;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn subjects_by_kind() {
        let mut e = Envelope::log(0, "web.guid", "0", Bytes::new(), LogType::Out);
        assert_eq!(subject_for("L", &e), "L.apptail.web_2eguid");
        e.tags.insert("systail".into(), "kern.log".into());
        assert_eq!(subject_for("L", &e), "L.systail.kern_2elog.-");
        let mut ev = Envelope::event(0, "", "deploy", "done");
        assert_eq!(subject_for("L", &ev), "L.apptail._");
        ev.tags.insert("event_type".into(), "a b".into());
        assert_eq!(subject_for("L", &ev), "L.event.a_20b");
        assert_eq!(source_filter("L", "*>"), "L.*._2a_3e");
        assert_eq!(
            source_of("L", "L.apptail.web_2eguid").as_deref(),
            Some("web.guid")
        );
        assert_eq!(source_of("L", "L.systail.a.b"), None);
    }

    #[test]
    fn ids_that_once_collided_stay_apart() {
        assert_ne!(token("a.b"), token("a_b"));
        assert_ne!(token("a b"), token("a_b"));
        assert_ne!(token(""), token("_"));
        assert_eq!(token("ü"), "_c3_bc");
    }

    proptest! {
        #[test]
        fn tokens_are_literal_and_round_trip(raw in any::<String>()) {
            let t = token(&raw);
            prop_assert!(!t.is_empty());
            prop_assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            prop_assert_eq!(untoken(&t), Some(raw));
        }

        #[test]
        fn untoken_never_panics(raw in any::<String>()) {
            let _ = untoken(&raw);
        }
    }
}
