//! [`Cursor`]: an opaque, printable place in the log.
//!
//! Printed as `v1.<position>` (decimal), where the position is that of the
//! next entry to read. The version prefix leaves room for a cluster form
//! (say `v2.<stream sequence>`) without breaking stored cursors.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::types::Position;

const V1: &str = "v1.";

/// Where a reader continues: it reads entries at and after [`Cursor::next`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cursor {
    next: Position,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid cursor {0:?}: expected v1.<number>")]
pub struct CursorParseError(pub String);

impl Cursor {
    /// The start of the log (the oldest entry still kept).
    pub const START: Cursor = Cursor { next: 0 };

    /// Resumes at `position` (inclusive).
    pub fn at(position: Position) -> Self {
        Cursor { next: position }
    }

    /// Resumes right after `position`.
    pub fn after(position: Position) -> Self {
        Cursor {
            next: position.saturating_add(1),
        }
    }

    /// The position of the next entry to read.
    pub fn next(&self) -> Position {
        self.next
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{V1}{}", self.next)
    }
}

impl FromStr for Cursor {
    type Err = CursorParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CursorParseError(s.chars().take(64).collect());
        let digits = s.strip_prefix(V1).ok_or_else(bad)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let next = digits.parse().map_err(|_| bad())?;
        Ok(Cursor { next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for p in [0, 1, 42, u64::MAX] {
            let c = Cursor::at(p);
            assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
        }
        assert_eq!(Cursor::after(7).to_string(), "v1.8");
        assert_eq!(Cursor::after(u64::MAX).next(), u64::MAX);
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "v1.",
            "v1.-1",
            "v1.+1",
            "v2.3",
            "12",
            "v1.18446744073709551616",
            "v1.1 ",
        ] {
            assert!(s.parse::<Cursor>().is_err(), "{s:?}");
        }
    }
}
