//! One element of a `health.ingest` batch: its JSON shape and the RFC 3339 time it carries.
//! Plain Rust, so every way a device can send nonsense is unit-tested without Postgres.
//!
//! Accepted element:
//! `{"kind": "heart_rate", "value": 72, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z",
//!   "source": "Apple Watch", "user_id": "<uuid>"}` — `source` and `user_id` optional, other
//! members ignored (devices add metadata). `recorded_at` must carry a time zone: a wall-clock time
//! without one means a different instant in every zone.
use pgrx::PgSqlErrorCode as Code;
use serde_json::Value;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub kind: String,
    pub value: f64,
    pub unit: String,
    /// Microseconds since 1970-01-01 00:00 UTC.
    pub recorded_at_unix_us: i64,
    pub source: Option<String>,
}

/// Why an element was rejected, with the SQLSTATE the same fault raises elsewhere.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub code: Code,
    pub reason: String,
}

impl Rejection {
    fn malformed(reason: impl Into<String>) -> Rejection {
        Rejection {
            code: Code::ERRCODE_INVALID_TEXT_REPRESENTATION,
            reason: format!("malformed sample: {}", reason.into()),
        }
    }
}

fn shown(s: &str) -> String {
    // Echo enough of a bad value to find it, never a whole payload.
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

fn string_member<'a>(obj: &'a serde_json::Map<String, Value>, name: &str) -> Result<&'a str, Rejection> {
    match obj.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        None | Some(Value::Null) => Err(Rejection::malformed(format!("\"{name}\" is missing"))),
        Some(_) => Err(Rejection::malformed(format!("\"{name}\" must be a non-empty string"))),
    }
}

/// Parse one batch element. `caller` is `auth.uid()`: a sample naming any other user is
/// refused (42501), never re-owned.
pub fn parse_sample(element: &Value, caller: Uuid) -> Result<Sample, Rejection> {
    let Value::Object(obj) = element else {
        return Err(Rejection::malformed("expected a JSON object"));
    };
    match obj.get("user_id") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => match Uuid::parse_str(s) {
            Ok(u) if u == caller => {}
            Ok(u) => {
                return Err(Rejection {
                    code: Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
                    reason: format!("sample names user_id {u}, which is not the authenticated user"),
                })
            }
            Err(_) => return Err(Rejection::malformed(format!("\"user_id\" is not a UUID: {}", shown(s)))),
        },
        Some(_) => return Err(Rejection::malformed("\"user_id\" must be a UUID string")),
    }
    let kind = string_member(obj, "kind")?.to_string();
    let value = match obj.get("value") {
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| Rejection::malformed("\"value\" is not a finite number"))?,
        None | Some(Value::Null) => return Err(Rejection::malformed("\"value\" is missing")),
        Some(_) => return Err(Rejection::malformed("\"value\" must be a JSON number")),
    };
    let unit = string_member(obj, "unit")?.to_string();
    let at = string_member(obj, "recorded_at")?;
    let recorded_at_unix_us = parse_rfc3339(at).ok_or_else(|| {
        Rejection::malformed(format!("\"recorded_at\" is not an RFC 3339 timestamp with time zone: {}", shown(at)))
    })?;
    let source = match obj.get("source") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(Rejection::malformed("\"source\" must be a string")),
    };
    Ok(Sample { kind, value, unit, recorded_at_unix_us, source })
}

/// Microseconds between 1970-01-01 and 2000-01-01, Postgres' timestamp epoch.
pub const PG_EPOCH_UNIX_US: i64 = 946_684_800_000_000;

/// Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// RFC 3339 date-time (`2026-11-24T08:00:00.123+01:00`, `…Z`; a space may replace the `T`)
/// → microseconds since the Unix epoch. Fractions beyond microseconds are rounded, as
/// Postgres does. A leap second (:60) is read as the next second, as Postgres does.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (num(0, 4)?, num(5, 2)?, num(8, 2)?, num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if y < 1 || !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_us = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &b[start..i];
        if digits.is_empty() {
            return None;
        }
        // First 7 digits, rounded half up to 6.
        let mut scaled = 0i64;
        for k in 0..7 {
            scaled = scaled * 10 + digits.get(k).map_or(0, |c| i64::from(c - b'0'));
        }
        frac_us = (scaled + 5) / 10;
    }
    let offset_s = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    Some(secs * 1_000_000 + frac_us)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALICE: &str = "11111111-1111-4111-8111-111111111111";
    fn alice() -> Uuid {
        Uuid::parse_str(ALICE).unwrap()
    }

    #[test]
    fn rfc3339_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2000-01-01T00:00:00Z"), Some(PG_EPOCH_UNIX_US));
        // `date -d 2026-11-24T08:00:00Z +%s` = 1795507200
        assert_eq!(parse_rfc3339("2026-11-24T08:00:00Z"), Some(1_795_507_200_000_000));
        assert_eq!(parse_rfc3339("2026-11-24T09:00:00+01:00"), Some(1_795_507_200_000_000));
        assert_eq!(parse_rfc3339("2026-11-24 03:00:00-05:00"), Some(1_795_507_200_000_000));
        assert_eq!(parse_rfc3339("2026-11-24t08:00:00z"), Some(1_795_507_200_000_000));
        assert_eq!(parse_rfc3339("2026-11-24T08:00:00.5Z"), Some(1_795_507_200_500_000));
        assert_eq!(parse_rfc3339("2026-11-24T08:00:00.123456Z"), Some(1_795_507_200_123_456));
        assert_eq!(parse_rfc3339("2026-11-24T08:00:00.1234565Z"), Some(1_795_507_200_123_457), "rounded");
        assert_eq!(parse_rfc3339("2026-11-24T08:00:00.9999999Z"), Some(1_795_507_201_000_000), "carries");
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800_000_000), "leap day");
        assert_eq!(parse_rfc3339("2016-12-31T23:59:60Z"), parse_rfc3339("2017-01-01T00:00:00Z"), "leap second");
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-1_000_000));
    }

    #[test]
    fn rfc3339_refusals() {
        for bad in [
            "",
            "2026-11-24",
            "2026-11-24T08:00:00", // no zone: ambiguous
            "2026-11-24T08:00Z",   // no seconds
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z", // not a leap year
            "2026-11-31T00:00:00Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T08:60:00Z",
            "2026-11-24T08:00:61Z",
            "2026-11-24T08:00:00.Z",
            "2026-11-24T08:00:00+0100",
            "2026-11-24T08:00:00+01",
            "2026-11-24T08:00:00+24:00",
            "2026-11-24T08:00:00Zjunk",
            "2026-11-24T08:00:00 Z",
            "26-11-24T08:00:00Z",
            "0000-01-01T00:00:00Z",
            "２026-11-24T08:00:00Z",
            "yesterday",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_full_sample() {
        let s = parse_sample(
            &json!({"kind": "heart_rate", "value": 72, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z",
                    "source": "watch", "user_id": ALICE, "metadata": {"x": 1}}),
            alice(),
        )
        .unwrap();
        assert_eq!(
            s,
            Sample {
                kind: "heart_rate".into(),
                value: 72.0,
                unit: "/min".into(),
                recorded_at_unix_us: 1_795_507_200_000_000,
                source: Some("watch".into())
            }
        );
        let s = parse_sample(&json!({"kind": "steps", "value": 10.5, "unit": "{steps}", "recorded_at": "2026-11-24T08:00:00Z", "source": null}), alice()).unwrap();
        assert_eq!(s.source, None);
    }

    #[test]
    fn malformed_elements() {
        let ok = json!({"kind": "heart_rate", "value": 72, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z"});
        let with = |k: &str, v: Value| {
            let mut e = ok.clone();
            e[k] = v;
            parse_sample(&e, alice()).unwrap_err()
        };
        let without = |k: &str| {
            let mut e = ok.clone();
            e.as_object_mut().unwrap().remove(k);
            parse_sample(&e, alice()).unwrap_err()
        };
        for e in [json!(42), json!("heart_rate"), json!([1, 2]), json!(null)] {
            let r = parse_sample(&e, alice()).unwrap_err();
            assert_eq!(r.code, Code::ERRCODE_INVALID_TEXT_REPRESENTATION);
            assert_eq!(r.reason, "malformed sample: expected a JSON object");
        }
        assert_eq!(without("kind").reason, "malformed sample: \"kind\" is missing");
        assert_eq!(without("value").reason, "malformed sample: \"value\" is missing");
        assert_eq!(without("unit").reason, "malformed sample: \"unit\" is missing");
        assert_eq!(without("recorded_at").reason, "malformed sample: \"recorded_at\" is missing");
        assert_eq!(with("value", json!("72")).reason, "malformed sample: \"value\" must be a JSON number");
        assert_eq!(with("kind", json!(7)).reason, "malformed sample: \"kind\" must be a non-empty string");
        assert_eq!(with("kind", json!("")).reason, "malformed sample: \"kind\" must be a non-empty string");
        assert_eq!(with("source", json!(1)).reason, "malformed sample: \"source\" must be a string");
        assert_eq!(
            with("recorded_at", json!("2026-11-24 08:00")).reason,
            "malformed sample: \"recorded_at\" is not an RFC 3339 timestamp with time zone: \"2026-11-24 08:00\""
        );
        assert_eq!(with("user_id", json!("bob")).reason, "malformed sample: \"user_id\" is not a UUID: \"bob\"");
        assert_eq!(with("user_id", json!(5)).code, Code::ERRCODE_INVALID_TEXT_REPRESENTATION);
        let long = "x".repeat(500);
        assert!(with("recorded_at", json!(long)).reason.len() < 150, "a long bad value is not echoed whole");
    }

    #[test]
    fn another_users_sample_is_refused_not_reowned() {
        let bob = "22222222-2222-4222-8222-222222222222";
        let r = parse_sample(
            &json!({"kind": "heart_rate", "value": 72, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z", "user_id": bob}),
            alice(),
        )
        .unwrap_err();
        assert_eq!(r.code, Code::ERRCODE_INSUFFICIENT_PRIVILEGE);
        assert_eq!(r.reason, format!("sample names user_id {bob}, which is not the authenticated user"));
    }
}
