//! Times as the client commands show them: in the local time zone, or in
//! UTC with `--utc`, and the times they take (`--since 10m`,
//! `--since 2026-12-01T10:00:00Z`).
//!
//! The local zone comes from [jiff] (BurntSushi's date-time crate, well
//! kept): it reads `TZ` (an IANA name such as `Europe/Paris`, a POSIX rule
//! such as `CET-1CEST,M3.5.0,M10.5.0/3`, or a TZif path) or else
//! `/etc/localtime` itself, in Rust, and gives the offset *of each instant*.
//! Two alternatives were set aside:
//! - the `time` crate's local offset calls `localtime_r`, which reads the
//!   environment and is unsound while other threads may change it, so
//!   `time` refuses it once a program has more than one thread;
//! - asking for the offset once at startup, before any thread, would be
//!   sound, but one offset is wrong for every entry on the other side of a
//!   daylight-saving change (an hour of history, or a long tail, can span
//!   one).
//!
//! When `TZ` is set but cannot be understood, times are shown in UTC and
//! the command says so once on stderr; with neither `TZ` nor a readable
//! `/etc/localtime` (a bare container) UTC is the local zone, silently.

use anyhow::{bail, Result};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Where times are shown.
#[derive(Clone, Debug)]
pub struct Zone {
    tz: TimeZone,
}

/// The civil fields of one instant in a zone.
struct Civil {
    date: DateTime,
    offset_secs: i32,
}

impl Zone {
    /// UTC with `utc`, else the local zone.
    pub fn choose(utc: bool) -> Zone {
        if utc {
            Zone::utc()
        } else {
            Zone::local()
        }
    }

    pub fn utc() -> Zone {
        Zone { tz: TimeZone::UTC }
    }

    /// The local zone (`TZ`, else `/etc/localtime`), or UTC.
    pub fn local() -> Zone {
        match TimeZone::try_system() {
            Ok(tz) => Zone { tz },
            Err(err) => {
                if std::env::var_os("TZ").is_some_and(|tz| !tz.is_empty()) {
                    crate::say!("sluice: cannot use the time zone in TZ ({err}); showing UTC");
                }
                Zone::utc()
            }
        }
    }

    /// A zone from a POSIX TZ rule or IANA name (for tests).
    #[cfg(test)]
    pub fn posix(rule: &str) -> Zone {
        Zone {
            tz: TimeZone::posix(rule).expect("a valid POSIX TZ rule"),
        }
    }

    fn civil(&self, ns: i64) -> Civil {
        let ts = Timestamp::from_nanosecond(i128::from(ns)).unwrap_or(Timestamp::UNIX_EPOCH);
        let offset = self.tz.to_offset(ts);
        Civil {
            date: offset.to_datetime(ts),
            offset_secs: offset.seconds(),
        }
    }

    /// As `cf logs` shows times, to hundredths (truncated):
    /// `2026-11-21T14:14:58.00+0100`.
    pub fn cf(&self, ns: i64) -> String {
        let c = self.civil(ns);
        format!(
            "{}.{:02}{}",
            date_time(&c.date),
            c.date.subsec_nanosecond() / 10_000_000,
            offset(c.offset_secs, false)
        )
    }

    /// As `heroku logs` shows times, to microseconds:
    /// `2026-12-01T13:14:58.123456+00:00`.
    pub fn heroku(&self, ns: i64) -> String {
        let c = self.civil(ns);
        format!(
            "{}.{:06}{}",
            date_time(&c.date),
            c.date.subsec_nanosecond() / 1_000,
            offset(c.offset_secs, true)
        )
    }

    /// RFC 3339 to the second: `2026-12-01T14:14:58+01:00`.
    pub fn seconds(&self, ns: i64) -> String {
        let c = self.civil(ns);
        format!("{}{}", date_time(&c.date), offset(c.offset_secs, true))
    }

    /// A `--since` value as Unix ns: a duration back from `now_ns` (`10m`,
    /// `90s`, `2h`, `1h30m`, `1d`), an RFC 3339 time
    /// (`2026-12-01T10:00:00Z`, `…+01:00`), or a date and time without an
    /// offset, taken in this zone (`2026-12-01T10:00:00`, `2026-12-01 10:00`).
    pub fn parse_since(&self, text: &str, now_ns: i64) -> Result<i64> {
        let text = text.trim();
        if let Some(secs) = duration_secs(text) {
            return Ok(now_ns.saturating_sub(secs.saturating_mul(1_000_000_000)));
        }
        let instant = text.parse::<Timestamp>().ok().or_else(|| {
            let civil = text.parse::<DateTime>().ok()?;
            self.tz.to_ambiguous_timestamp(civil).compatible().ok()
        });
        match instant.map(|t| i64::try_from(t.as_nanosecond())) {
            Some(Ok(ns)) => Ok(ns),
            _ => bail!(
                "invalid --since {text:?}: use a duration such as 10m, 2h or 1h30m, \
                 or a time such as 2026-12-01T10:00:00Z"
            ),
        }
    }
}

fn date_time(d: &DateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        d.year(),
        d.month(),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// `+0100` (`colon`: `+01:00`); seconds of an offset are dropped.
fn offset(secs: i32, colon: bool) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let minutes = secs.unsigned_abs() / 60;
    let (h, m) = (minutes / 60, minutes % 60);
    if colon {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}")
    }
}

/// `10m`, `1h30m`, `90s`, `2d`, `1w` in seconds; `None` if not a duration.
fn duration_secs(text: &str) -> Option<i64> {
    if text.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        let n: i64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
    }
    // A trailing number without a unit is not a duration.
    digits.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-21T13:14:58.0099Z
    const TS: i64 = 1_795_266_898_009_900_000;

    #[test]
    fn utc_formats() {
        let z = Zone::utc();
        assert_eq!(z.cf(TS), "2026-11-21T13:14:58.00+0000");
        assert_eq!(z.heroku(TS), "2026-11-21T13:14:58.009900+00:00");
        assert_eq!(z.seconds(TS), "2026-11-21T13:14:58+00:00");
    }

    #[test]
    fn local_offsets_follow_the_instant() {
        // Central European time: +01:00 in November, +02:00 in July.
        let z = Zone::posix("CET-1CEST,M3.5.0,M10.5.0/3");
        assert_eq!(z.cf(TS), "2026-11-21T14:14:58.00+0100");
        let july = 1_784_632_498_000_000_000; // 2026-07-21T11:14:58Z
        assert_eq!(z.heroku(july), "2026-07-21T13:14:58.000000+02:00");
        let z = Zone::posix("IST-5:30");
        assert_eq!(z.seconds(TS), "2026-11-21T18:44:58+05:30");
        let z = Zone::posix("NST3:30");
        assert_eq!(z.cf(TS), "2026-11-21T09:44:58.00-0330");
    }

    #[test]
    fn since_values() {
        let z = Zone::posix("CET-1");
        let now = TS;
        let sec = 1_000_000_000;
        assert_eq!(z.parse_since("10m", now).unwrap(), now - 600 * sec);
        assert_eq!(z.parse_since("1h30m", now).unwrap(), now - 5_400 * sec);
        assert_eq!(z.parse_since(" 90s ", now).unwrap(), now - 90 * sec);
        assert_eq!(z.parse_since("1d", now).unwrap(), now - 86_400 * sec);
        let at = 1_795_266_898 * sec;
        assert_eq!(z.parse_since("2026-11-21T13:14:58Z", now).unwrap(), at);
        assert_eq!(z.parse_since("2026-11-21T14:14:58+01:00", now).unwrap(), at);
        // Without an offset: in the zone.
        assert_eq!(z.parse_since("2026-11-21T14:14:58", now).unwrap(), at);
        assert_eq!(z.parse_since("2026-11-21 14:14:58", now).unwrap(), at);
        for bad in ["", "10", "m", "10x", "yesterday", "2026-13-01T00:00:00Z"] {
            let err = z.parse_since(bad, now).unwrap_err().to_string();
            assert!(err.contains("--since"), "{bad}: {err}");
        }
        assert!(z.parse_since("99999999999999999999d", now).is_err());
    }
}
