//! Parsing the timestamps syslog senders write: RFC 3339 (RFC 5424's
//! TIMESTAMP) and BSD `Mmm dd hh:mm:ss` (RFC 3164), to Unix nanoseconds;
//! and writing Unix nanoseconds as RFC 3339 in UTC, to the second or the
//! nanosecond, for every crate that shows a time in that form.
//!
//! Hand-written rather than `time`'s `Rfc3339` parser: every ingested
//! message carries one, ingest runs at 500k+ messages/s, and this is a
//! straight pass over fixed positions with no allocation or error values.
//! The tests check it against `time` for the forms both accept.

use crate::civil::{CivilTime, NANOS_PER_SEC};

/// Two ASCII digits as a number.
fn two_digits(bytes: &[u8]) -> Option<u32> {
    match bytes {
        [a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some(u32::from(a - b'0') * 10 + u32::from(b - b'0')),
        _ => None,
    }
}

fn four_digits(bytes: &[u8]) -> Option<u32> {
    Some(two_digits(bytes.get(..2)?)? * 100 + two_digits(bytes.get(2..4)?)?)
}

/// Appends Unix nanoseconds as RFC 3339 in UTC to the second:
/// `2026-12-01T13:14:58Z` (the fraction is cut, not rounded).
pub fn push_rfc3339_seconds(out: &mut Vec<u8>, ns: i64) {
    crate::civil::CivilTime::from_unix_nanos(ns).push_rfc3339_seconds(out);
    out.push(b'Z');
}

/// Unix nanoseconds as RFC 3339 in UTC to the second:
/// `2026-12-01T13:14:58Z`, as loss notices and `sluice` messages show times.
pub fn rfc3339_seconds(ns: i64) -> String {
    let mut out = Vec::with_capacity(20);
    push_rfc3339_seconds(&mut out, ns);
    // Only ASCII digits and separators were written.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends Unix nanoseconds as RFC 3339 in UTC with nanoseconds:
/// `2026-12-01T13:14:58.123456789Z` (Go's `time.RFC3339Nano` keeps trailing
/// zeros out; this keeps all nine digits, which every RFC 3339 parser takes).
pub fn push_rfc3339_nanos(out: &mut Vec<u8>, ns: i64) {
    let t = crate::civil::CivilTime::from_unix_nanos(ns);
    t.push_rfc3339_seconds(out);
    out.push(b'.');
    crate::civil::push_digits(out, u64::from(t.nanosecond), 9);
    out.push(b'Z');
}

/// Parses an RFC 3339 timestamp such as `2026-11-21T13:14:58.123456+00:00`
/// or `...58Z`: any number of fractional digits (RFC 5424 allows 6; those
/// past nanoseconds are ignored), `T`/`Z` in either case, and the whole input must be the
/// timestamp. A leap second (`:60`) reads as `:59.999999999`.
pub fn parse_rfc3339(text: &[u8]) -> Option<i64> {
    let date = text.get(..10)?;
    if date.get(4) != Some(&b'-') || date.get(7) != Some(&b'-') {
        return None;
    }
    if !matches!(text.get(10), Some(b'T' | b't')) {
        return None;
    }
    let (mut civil, rest) = parse_time_of_day(text.get(11..)?)?;
    civil.year = i64::from(four_digits(date.get(..4)?)?);
    civil.month = two_digits(date.get(5..7)?)?;
    civil.day = two_digits(date.get(8..10)?)?;
    let (fraction, rest) = parse_fraction(rest)?;
    civil.nanosecond = civil.nanosecond.max(fraction);
    let offset_secs = parse_offset(rest)?;
    let local = civil.to_unix_nanos()?;
    local.checked_sub(offset_secs.checked_mul(NANOS_PER_SEC)?)
}

/// `hh:mm:ss` at the start of `text`: the fields (date left zero) and the
/// rest of the input. A leap second is clamped as [`parse_rfc3339`] says.
fn parse_time_of_day(text: &[u8]) -> Option<(CivilTime, &[u8])> {
    let clock = text.get(..8)?;
    if clock.get(2) != Some(&b':') || clock.get(5) != Some(&b':') {
        return None;
    }
    let mut civil = CivilTime {
        year: 0,
        month: 0,
        day: 0,
        hour: two_digits(clock.get(..2)?)?,
        minute: two_digits(clock.get(3..5)?)?,
        second: two_digits(clock.get(6..8)?)?,
        nanosecond: 0,
    };
    if civil.second == 60 {
        civil.second = 59;
        civil.nanosecond = NANOS_PER_SEC as u32 - 1;
    }
    Some((civil, text.get(8..)?))
}

/// An optional `.d+` fraction as nanoseconds (digits past the ninth are
/// ignored), and the rest.
fn parse_fraction(text: &[u8]) -> Option<(u32, &[u8])> {
    let Some(digits_and_rest) = text.strip_prefix(b".") else {
        return Some((0, text));
    };
    let digits = digits_and_rest
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return None;
    }
    let significant = digits.min(9);
    let mut nanos = 0u32;
    for &digit in digits_and_rest.get(..significant)? {
        nanos = nanos * 10 + u32::from(digit - b'0');
    }
    nanos *= 10u32.pow(9 - significant as u32);
    Some((nanos, digits_and_rest.get(digits..)?))
}

/// `Z` or `±hh:mm`, which must be all of `text`, as seconds east of UTC.
fn parse_offset(text: &[u8]) -> Option<i64> {
    let (sign, hh_mm) = match text {
        [b'Z' | b'z'] => return Some(0),
        [b'+', rest @ ..] => (1, rest),
        [b'-', rest @ ..] => (-1, rest),
        _ => return None,
    };
    let [h1, h2, b':', m1, m2] = hh_mm else {
        return None;
    };
    let hours = two_digits(&[*h1, *h2])?;
    let minutes = two_digits(&[*m1, *m2])?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * i64::from(hours * 3600 + minutes * 60))
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The length of a BSD timestamp, `Mmm dd hh:mm:ss`.
pub const BSD_TIMESTAMP_LEN: usize = 15;

/// Parses a BSD (RFC 3164) timestamp, `Nov 21 13:14:58` or `Nov  1 ...`
/// (a leading zero in the day is accepted too), read as UTC. It has no
/// year, so this picks the year that puts it closest to `now_unix_ns`: a
/// `Dec 31` message received on January 1st belongs to the year before.
pub fn parse_bsd(text: &[u8], now_unix_ns: i64) -> Option<i64> {
    let text = text.get(..BSD_TIMESTAMP_LEN)?;
    let month_name = text.get(..3)?;
    let month = MONTHS.iter().position(|m| m[..] == *month_name)? as u32 + 1;
    let day = match text.get(3..7)? {
        [b' ', b' ', d @ b'1'..=b'9', b' '] => u32::from(d - b'0'),
        [b' ', d1, d2, b' '] => two_digits(&[*d1, *d2])?,
        _ => return None,
    };
    let (mut civil, _) = parse_time_of_day(text.get(7..)?)?;
    civil.month = month;
    civil.day = day;
    let now_year = CivilTime::from_unix_nanos(now_unix_ns).year;
    [now_year, now_year - 1, now_year + 1]
        .into_iter()
        .filter_map(|year| CivilTime { year, ..civil }.to_unix_nanos())
        .min_by_key(|ns| ns.abs_diff(now_unix_ns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    fn by_time_crate(text: &str) -> Option<i64> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        i64::try_from(parsed.unix_timestamp_nanos()).ok()
    }

    #[test]
    fn rfc3339_seconds_cuts_the_fraction() {
        assert_eq!(
            rfc3339_seconds(1_795_266_898_009_900_000),
            "2026-11-21T13:14:58Z"
        );
        assert_eq!(
            rfc3339_seconds(1_795_266_898_999_999_999),
            "2026-11-21T13:14:58Z"
        );
        assert_eq!(rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_seconds(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn rfc3339_nanos_round_trips() {
        let ns = 1_795_266_898_009_900_001;
        let mut out = Vec::new();
        push_rfc3339_nanos(&mut out, ns);
        assert_eq!(out, b"2026-11-21T13:14:58.009900001Z");
        assert_eq!(parse_rfc3339(&out), Some(ns));
    }

    #[test]
    fn rfc3339_agrees_with_time_crate() {
        let samples = [
            "2026-11-21T13:14:58.123456+00:00",
            "2026-11-21T13:14:58Z",
            "2026-11-21T13:14:58.1Z",
            "2026-11-21T13:14:58.123456789Z",
            "2026-11-21T13:14:58.1234567890123Z",
            "2026-11-21t13:14:58z",
            "2026-11-21T13:14:58.5-07:30",
            "2026-11-21T23:59:59+14:00",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999Z",
            "2024-02-29T12:00:00Z",
            "2000-03-01T00:00:00+23:59",
            "2003-08-24T05:14:15.000003-07:00",
        ];
        for text in samples {
            let ours = parse_rfc3339(text.as_bytes());
            assert!(ours.is_some(), "{text}");
            assert_eq!(ours, by_time_crate(text), "{text}");
        }
    }

    #[test]
    fn rfc3339_rejects_malformed() {
        let bad = [
            "",
            "2026-11-21",
            "2026-11-21T13:14:58",
            "2026-13-21T13:14:58Z",
            "2026-02-29T13:14:58Z",
            "2026-11-21T24:00:00Z",
            "2026-11-21T13:60:00Z",
            "2026-11-21T13:14:58.Z",
            "2026-11-21T13:14:58+0000",
            "2026-11-21T13:14:58+24:00",
            "2026-11-21T13:14:58Z ",
            "2026-1-21T13:14:58Z",
            "+026-11-21T13:14:58Z",
        ];
        for text in bad {
            assert_eq!(parse_rfc3339(text.as_bytes()), None, "{text}");
            assert_eq!(by_time_crate(text), None, "{text}");
        }
        // RFC 3339 lets applications use a space for `T`; RFC 5424 doesn't.
        assert_eq!(parse_rfc3339(b"2026-11-21 13:14:58Z"), None);
    }

    #[test]
    fn leap_second_is_clamped() {
        assert_eq!(
            parse_rfc3339(b"2016-12-31T23:59:60Z"),
            by_time_crate("2016-12-31T23:59:59.999999999Z")
        );
    }

    fn utc(text: &str) -> i64 {
        by_time_crate(text).unwrap()
    }

    #[test]
    fn bsd_timestamp_uses_the_nearest_year() {
        let now = utc("2026-11-21T13:20:00Z");
        assert_eq!(
            parse_bsd(b"Nov 21 13:14:58", now),
            Some(utc("2026-11-21T13:14:58Z"))
        );
        assert_eq!(
            parse_bsd(b"Nov  1 01:02:03", now),
            Some(utc("2026-11-01T01:02:03Z"))
        );
        assert_eq!(
            parse_bsd(b"Nov 01 01:02:03", now),
            Some(utc("2026-11-01T01:02:03Z"))
        );
        let new_year = utc("2027-01-01T00:00:05Z");
        assert_eq!(
            parse_bsd(b"Dec 31 23:59:59", new_year),
            Some(utc("2026-12-31T23:59:59Z"))
        );
        let new_years_eve = utc("2026-12-31T23:59:59Z");
        assert_eq!(
            parse_bsd(b"Jan  1 00:00:01", new_years_eve),
            Some(utc("2027-01-01T00:00:01Z"))
        );
    }

    #[test]
    fn bsd_feb_29_picks_a_leap_year() {
        let now = utc("2025-03-01T00:00:00Z");
        assert_eq!(
            parse_bsd(b"Feb 29 10:00:00", now),
            Some(utc("2024-02-29T10:00:00Z"))
        );
        let now = utc("2024-03-01T00:00:00Z");
        assert_eq!(
            parse_bsd(b"Feb 29 10:00:00", now),
            Some(utc("2024-02-29T10:00:00Z"))
        );
    }

    #[test]
    fn bsd_rejects_malformed() {
        let now = utc("2026-11-21T13:20:00Z");
        for text in [
            "Nov 21 13:14",
            "nov 21 13:14:58",
            "Nov 32 13:14:58",
            "Nov  0 13:14:58",
            "Nov 2x 13:14:58",
            "Nov 21 13-14-58",
            "Xyz 21 13:14:58",
        ] {
            assert_eq!(parse_bsd(text.as_bytes(), now), None, "{text}");
        }
    }
}
