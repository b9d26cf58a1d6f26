//! Wall-clock instants and human-friendly durations.
//!
//! The machine never reads a clock: every input carries the caller's `now` as a
//! [`Timestamp`], milliseconds since the Unix epoch. Milliseconds keep the type
//! a plain integer that crosses wasm-bindgen as a JavaScript number.

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

use alloc::string::String;

use crate::errors::DurationParseError;

/// An instant of wall-clock time, in milliseconds since the Unix epoch (UTC).
///
/// Wall clocks may jump in either direction; the machine copes with both.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// An instant from milliseconds since the Unix epoch.
    #[must_use]
    pub const fn from_unix_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// An instant from whole seconds since the Unix epoch.
    #[must_use]
    pub const fn from_unix_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// How long after `earlier` this instant is; zero if it is not after it.
    #[must_use]
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// Signed milliseconds from `other` to `self`.
    #[must_use]
    pub const fn millis_since(self, other: Timestamp) -> i64 {
        self.0.saturating_sub(other.0)
    }

    /// Shift by a signed number of milliseconds.
    #[must_use]
    pub const fn shifted_by_millis(self, millis: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(millis))
    }

    /// Parse an RFC 3339 timestamp such as `2026-11-29T06:00:00Z`.
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, time::error::Parse> {
        let parsed =
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)?;
        let millis = parsed.unix_timestamp_nanos() / 1_000_000;
        Ok(Timestamp(millis as i64))
    }

    /// Format as RFC 3339 in UTC, e.g. `2026-11-29T06:00:00Z` (milliseconds
    /// appear only when non-zero).
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        // `time`'s formatter needs std; the layout is simple enough to write.
        let nanos = i128::from(self.0) * 1_000_000;
        let Ok(at) = time::OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
            return alloc::format!("{}ms", self.0);
        };
        let millis = at.millisecond();
        let fraction = if millis == 0 {
            String::new()
        } else {
            alloc::format!(".{millis:03}")
        };
        alloc::format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        )
    }
}

fn millis_of(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(millis_of(rhs)))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(millis_of(rhs)))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Parse a duration written as `250ms`, `90s`, `5h50m` or `3d`.
///
/// Units: `d`, `h`, `m`, `s`, `ms`, combined largest first. A bare `0` is zero.
pub fn parse_duration(text: &str) -> Result<Duration, DurationParseError> {
    let bad = || DurationParseError {
        input: String::from(text),
    };
    let text_trimmed = text.trim();
    if text_trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    if text_trimmed.is_empty() {
        return Err(bad());
    }
    let mut total_ms: u64 = 0;
    let mut rest = text_trimmed.as_bytes();
    let mut last_unit_rank = u8::MAX;
    while !rest.is_empty() {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 12 {
            return Err(bad());
        }
        let number: u64 = core::str::from_utf8(&rest[..digits])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        rest = &rest[digits..];
        let (unit_ms, rank, len) = match rest {
            [b'm', b's', ..] => (1, 0, 2),
            [b'd', ..] => (86_400_000, 4, 1),
            [b'h', ..] => (3_600_000, 3, 1),
            [b'm', ..] => (60_000, 2, 1),
            [b's', ..] => (1_000, 1, 1),
            _ => return Err(bad()),
        };
        if rank >= last_unit_rank {
            return Err(bad());
        }
        last_unit_rank = rank;
        rest = &rest[len..];
        total_ms = number
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(bad)?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Write a duration the way [`parse_duration`] reads it, e.g. `5h50m`, `1s500ms`.
#[must_use]
pub fn format_duration(duration: Duration) -> String {
    let mut ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return String::from("0s");
    }
    let mut out = String::new();
    for (unit, suffix) in [
        (86_400_000u64, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ] {
        if ms >= unit {
            let count = ms / unit;
            ms %= unit;
            out.push_str(&alloc::format!("{count}{suffix}"));
        }
    }
    out
}

/// Serde helpers for durations written as strings like `90s`.
pub mod serde_duration {
    use super::{format_duration, parse_duration};
    use core::time::Duration;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    /// Serialize as a duration string.
    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*value))
    }

    /// Deserialize from a duration string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = alloc::string::String::deserialize(d)?;
        parse_duration(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_documented_form() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_duration("5h50m").unwrap(),
            Duration::from_secs(5 * 3600 + 50 * 60)
        );
        assert_eq!(
            parse_duration("3d").unwrap(),
            Duration::from_secs(3 * 86_400)
        );
        assert_eq!(
            parse_duration("1s500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn malformed_durations_are_rejected_with_the_input() {
        for bad in [
            "",
            "5",
            "h",
            "5x",
            "50m5h",
            "1m1m",
            "-5s",
            "1.5s",
            "9999999999999d",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert_eq!(err.input, bad);
        }
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["250ms", "90s", "5h50m", "3d", "1s500ms"] {
            let parsed = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(parsed)).unwrap(), parsed);
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn timestamps_parse_rfc3339_and_print_back() {
        let at = Timestamp::parse_rfc3339("2026-11-29T06:00:00Z").unwrap();
        assert_eq!(at.unix_millis(), 1_795_932_000_000);
        assert_eq!(at.to_rfc3339(), "2026-11-29T06:00:00Z");
        assert!(Timestamp::parse_rfc3339("2026-11-29 06:00").is_err());
    }
}
