//! Calendar arithmetic shared by the timestamp parsers and formatters.
//!
//! Converting between a proleptic-Gregorian date and days since the Unix
//! epoch, with Howard Hinnant's `days_from_civil` / `civil_from_days`
//! algorithms. Hand-written rather than going through the `time` crate
//! because parsing and formatting timestamps is on the ingest hot path
//! (500k+ messages/s) and these few integer operations are all it needs;
//! the tests check them against `time`.

pub(crate) const NANOS_PER_SEC: i64 = 1_000_000_000;
pub(crate) const SECS_PER_DAY: i64 = 86_400;

/// A UTC date and time of day, broken into its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CivilTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanosecond: u32,
}

pub(crate) fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a valid date (month 1..=12, day 1..=31).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01: (year, month, day).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl CivilTime {
    /// Breaks Unix nanoseconds into UTC fields (negative values work too).
    pub(crate) fn from_unix_nanos(ns: i64) -> Self {
        let secs = ns.div_euclid(NANOS_PER_SEC);
        let nanosecond = ns.rem_euclid(NANOS_PER_SEC) as u32;
        let days = secs.div_euclid(SECS_PER_DAY);
        let second_of_day = secs.rem_euclid(SECS_PER_DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        CivilTime {
            year,
            month,
            day,
            hour: second_of_day / 3600,
            minute: second_of_day / 60 % 60,
            second: second_of_day % 60,
            nanosecond,
        }
    }

    /// Unix nanoseconds of these fields read as UTC; `None` if the date is
    /// invalid or the result does not fit in an `i64`.
    pub(crate) fn to_unix_nanos(self) -> Option<i64> {
        if !(1..=12).contains(&self.month)
            || self.day == 0
            || self.day > days_in_month(self.year, self.month)
            || self.hour > 23
            || self.minute > 59
            || self.second > 59
            || self.nanosecond >= NANOS_PER_SEC as u32
        {
            return None;
        }
        let days = days_from_civil(self.year, self.month, self.day);
        let secs = days
            .checked_mul(SECS_PER_DAY)?
            .checked_add(i64::from(self.hour * 3600 + self.minute * 60 + self.second))?;
        secs.checked_mul(NANOS_PER_SEC)?
            .checked_add(i64::from(self.nanosecond))
    }
}

impl CivilTime {
    /// Appends `YYYY-MM-DDThh:mm:ss` (RFC 3339 without fraction or zone).
    pub(crate) fn push_rfc3339_seconds(self, out: &mut Vec<u8>) {
        push_digits(out, self.year as u64, 4);
        out.push(b'-');
        push_digits(out, u64::from(self.month), 2);
        out.push(b'-');
        push_digits(out, u64::from(self.day), 2);
        out.push(b'T');
        self.push_clock(out);
    }

    /// Appends `hh:mm:ss`.
    pub(crate) fn push_clock(self, out: &mut Vec<u8>) {
        push_digits(out, u64::from(self.hour), 2);
        out.push(b':');
        push_digits(out, u64::from(self.minute), 2);
        out.push(b':');
        push_digits(out, u64::from(self.second), 2);
    }
}

/// Writes `n` as exactly `width` decimal digits (zero-padded, high digits
/// dropped if it is wider).
pub(crate) fn push_digits(out: &mut Vec<u8>, n: u64, width: u32) {
    let mut divisor = 10u64.pow(width.saturating_sub(1));
    for _ in 0..width {
        out.push(b'0' + (n / divisor % 10) as u8);
        divisor /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn matches_time_crate_over_a_wide_range() {
        let mut ns = -5_000_000_000_000_000_000i64;
        while ns < 5_000_000_000_000_000_000 {
            let ours = CivilTime::from_unix_nanos(ns);
            let theirs = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).unwrap();
            assert_eq!(ours.year, i64::from(theirs.year()), "{ns}");
            assert_eq!(ours.month, u8::from(theirs.month()) as u32);
            assert_eq!(ours.day, u32::from(theirs.day()));
            assert_eq!(ours.hour, u32::from(theirs.hour()));
            assert_eq!(ours.minute, u32::from(theirs.minute()));
            assert_eq!(ours.second, u32::from(theirs.second()));
            assert_eq!(ours.nanosecond, theirs.nanosecond());
            assert_eq!(ours.to_unix_nanos(), Some(ns));
            ns += 7_777_777_777_777_777;
        }
    }

    #[test]
    fn rejects_invalid_dates() {
        let base = CivilTime::from_unix_nanos(0);
        let feb29 = |year| CivilTime {
            year,
            month: 2,
            day: 29,
            ..base
        };
        assert!(feb29(2023).to_unix_nanos().is_none());
        assert!(feb29(2024).to_unix_nanos().is_some());
        assert!(feb29(1900).to_unix_nanos().is_none());
        assert!(feb29(2000).to_unix_nanos().is_some());
        let month13 = CivilTime { month: 13, ..base };
        assert!(month13.to_unix_nanos().is_none());
        let far = CivilTime {
            year: 1_000_000,
            ..base
        };
        assert!(far.to_unix_nanos().is_none());
    }

    #[test]
    fn push_digits_pads_and_truncates() {
        let mut out = Vec::new();
        push_digits(&mut out, 7, 3);
        push_digits(&mut out, 123_456, 2);
        assert_eq!(out, b"00756");
    }
}
