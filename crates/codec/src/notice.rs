//! The in-band notices sluice writes into a stream when it lost messages.
//!
//! A consumer learns of its loss in the stream itself, before the next
//! message it gets, in the words Logyard and Loggregator users know. Every
//! crate that tells a loss (the router's drop-oldest queues, drains, `sluice
//! run`) takes its text from here, so the wording is the same everywhere.

use crate::timestamp::rfc3339_seconds;

/// The `source_type` tag of sluice's own notices.
pub const SOURCE_TYPE: &str = "SLUICE";

/// A queue dropped its oldest entries:
/// `sluice: N messages dropped since 2026-11-21T13:14:58Z`.
pub fn dropped(count: u64, since_ns: i64) -> String {
    format!(
        "sluice: {count} messages dropped since {}",
        rfc3339_seconds(since_ns)
    )
}

/// A drain lost an app's messages:
/// `sluice: N messages lost for app X to drain NAME since T`, followed by
/// `: why` when there is a reason to give (what the receiver answered).
pub fn lost_for_drain(
    count: u64,
    app: &str,
    drain: &str,
    since_ns: i64,
    why: Option<&str>,
) -> String {
    let mut text = format!(
        "sluice: {count} messages lost for app {app} to drain {drain} since {}",
        rfc3339_seconds(since_ns)
    );
    if let Some(why) = why {
        text.push_str(": ");
        text.push_str(why);
    }
    text
}

/// A collector dropped an app's lines over its rate limit (apptail's
/// words): `sluice: N lines dropped for app X: over R lines/s`.
pub fn rate_limited(count: u64, app: &str, per_second: u32) -> String {
    format!("sluice: {count} lines dropped for app {app}: over {per_second} lines/s")
}

/// A host file grew more than the read limit while it was not followed
/// (Logyard's systail warned the same way):
/// `sluice: skipping much of a large log file: N bytes of PATH not read`.
pub fn skipped_file(bytes: u64, path: &str) -> String {
    format!("sluice: skipping much of a large log file: {bytes} bytes of {path} not read")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_785_298_123_456_789;

    #[test]
    fn dropped_text() {
        assert_eq!(
            dropped(1234, T),
            "sluice: 1234 messages dropped since 2026-11-27T13:14:58Z"
        );
    }

    #[test]
    fn rate_limited_text() {
        assert_eq!(
            rate_limited(19000, "web", 100),
            "sluice: 19000 lines dropped for app web: over 100 lines/s"
        );
    }

    #[test]
    fn lost_for_drain_text() {
        assert_eq!(
            lost_for_drain(2, "web", "h", T, None),
            "sluice: 2 messages lost for app web to drain h since 2026-11-27T13:14:58Z"
        );
        assert_eq!(
            lost_for_drain(1, "web", "h", T, Some("receiver answered 400 Bad Request")),
            "sluice: 1 messages lost for app web to drain h since 2026-11-27T13:14:58Z: \
             receiver answered 400 Bad Request"
        );
    }
}
