//! Instants as devices write them: RFC 3339 (`2026-11-24T08:00:00.5+01:00`) and Apple Health's
//! export form (`2021-11-30 07:47:59 +0200`). Parsed by `chrono`; both must carry a UTC offset
//! (a wall-clock time without one means a different instant in every zone).
use chrono::{DateTime, FixedOffset};

/// Microseconds between 1970-01-01 and 2000-01-01, Postgres' timestamp epoch.
pub const PG_EPOCH_UNIX_US: i64 = 946_684_800_000_000;

/// An instant and the UTC offset it was written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instant {
    /// Microseconds since 1970-01-01 00:00 UTC.
    pub unix_us: i64,
    /// The writer's UTC offset in minutes (east positive).
    pub offset_minutes: i32,
}

/// Parse `s` as RFC 3339 or Apple's export form. Fractions beyond microseconds are rounded,
/// as Postgres does; a leap second (:60) reads as the next second, as Postgres does.
pub fn parse(s: &str) -> Option<Instant> {
    if !s.is_ascii() || s.len() > 40 {
        return None;
    }
    let parsed: DateTime<FixedOffset> =
        DateTime::parse_from_rfc3339(s).or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S %z")).ok()?;
    if parsed.format("%Y").to_string().len() != 4 || parsed.timestamp() < -62_135_596_800 {
        return None; // year 0 and below: not a date a device writes
    }
    // Rounding at microseconds (half up), carried into the seconds; chrono keeps a leap second
    // as nanoseconds ≥ 1e9 of the second before, which carries the same way.
    let nanos = i64::from(parsed.timestamp_subsec_nanos());
    let unix_us = parsed.timestamp().checked_mul(1_000_000)?.checked_add((nanos + 500) / 1000)?;
    Some(Instant { unix_us, offset_minutes: parsed.offset().local_minus_utc() / 60 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(s: &str) -> Option<i64> {
        parse(s).map(|i| i.unix_us)
    }

    #[test]
    fn rfc3339_instants() {
        assert_eq!(us("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(us("2000-01-01T00:00:00Z"), Some(PG_EPOCH_UNIX_US));
        // `date -d 2026-11-24T08:00:00Z +%s` = 1795507200
        assert_eq!(us("2026-11-24T08:00:00Z"), Some(1_795_507_200_000_000));
        assert_eq!(us("2026-11-24T09:00:00+01:00"), Some(1_795_507_200_000_000));
        assert_eq!(us("2026-11-24 03:00:00-05:00"), Some(1_795_507_200_000_000));
        assert_eq!(us("2026-11-24t08:00:00z"), Some(1_795_507_200_000_000));
        assert_eq!(us("2026-11-24T08:00:00.5Z"), Some(1_795_507_200_500_000));
        assert_eq!(us("2026-11-24T08:00:00.123456Z"), Some(1_795_507_200_123_456));
        assert_eq!(us("2026-11-24T08:00:00.1234565Z"), Some(1_795_507_200_123_457), "rounded");
        assert_eq!(us("2026-11-24T08:00:00.9999999Z"), Some(1_795_507_201_000_000), "carries");
        assert_eq!(us("2024-02-29T00:00:00Z"), Some(1_709_164_800_000_000), "leap day");
        assert_eq!(us("2016-12-31T23:59:60Z"), us("2017-01-01T00:00:00Z"), "leap second");
        assert_eq!(us("1969-12-31T23:59:59Z"), Some(-1_000_000));
    }

    #[test]
    fn apple_export_form_with_its_offset() {
        // 2021-11-30 07:47:59 +0200 = 05:47:59Z; `date -d 2021-11-30T05:47:59Z +%s` = 1638251279
        let i = parse("2021-11-30 07:47:59 +0200").unwrap();
        assert_eq!(i, Instant { unix_us: 1_638_251_279_000_000, offset_minutes: 120 });
        assert_eq!(parse("2021-11-30 07:47:59 -0800").unwrap().offset_minutes, -480);
        assert_eq!(parse("2021-11-30 07:47:59 +0530").unwrap().offset_minutes, 330);
        assert_eq!(parse("2026-11-24T08:00:00Z").unwrap().offset_minutes, 0);
        assert_eq!(parse("2026-11-24T09:00:00+01:00").unwrap().offset_minutes, 60);
        assert_eq!(us("2021-11-30 07:47:59 +0200"), us("2021-11-30T05:47:59Z"));
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "2026-11-24",
            "2026-11-24T08:00:00", // no zone: ambiguous
            "2021-11-30 07:47:59", // Apple form without its offset
            "2026-11-24T08:00Z",   // no seconds
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z", // not a leap year
            "2026-11-31T00:00:00Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T08:60:00Z",
            "2026-11-24T08:00:61Z",
            "2026-11-24T08:00:00.Z",
            "2026-11-24T08:00:00+01",
            "2026-11-24T08:00:00Zjunk",
            "26-11-24T08:00:00Z",
            "0000-01-01T00:00:00Z",
            "２026-11-24T08:00:00Z",
            "20150909045734+0100", // iOS 8 export form: importers rewrite it
            "yesterday",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(parse(&"2026-11-24T08:00:00Z".repeat(1000)), None);
    }
}
