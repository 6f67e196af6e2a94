//! One element of a `health.ingest` batch as the device sent it: its JSON shape, checked
//! member by member. Plain Rust, so every way a device can send nonsense is unit-tested
//! without Postgres. What the names and units mean is decided later, against the catalog
//! (`plan.rs`).
//!
//! Element forms (docs/ingest.md):
//! - a sample: `{"kind", "value", "unit", "start" | "recorded_at", "end"?, "tz_offset"?,
//!   "source"?, "sync_id"?, "sync_version"?, "user_id"?}`;
//! - a blood-pressure pair: `{"correlation"?, "systolic", "diastolic", "unit"?, times, …}`, each
//!   half a number or `{"value", "unit"}`;
//! - a deletion: `{"deleted": true, "sync_id" | "id", "source"?}`.
//!
//! Other members are ignored (devices add metadata).
use super::timestamp::{self, Instant};
use pgrx::PgSqlErrorCode as Code;
use serde_json::{Map, Value};
use uuid::Uuid;

/// Longest text member we store (kind, unit, source, sync id): a real one is far shorter, and a
/// 10 MB "source" is an attack or a bug, refused with its first characters shown.
pub const MAX_TEXT: usize = 512;

#[derive(Clone, Debug, PartialEq)]
pub enum RawValue {
    Number(f64),
    /// A category value (`HKCategoryValueSleepAnalysisAsleep`) or a number sent as text.
    Text(String),
    Absent,
}

/// A sample as sent, before the catalog gives its names a meaning.
#[derive(Clone, Debug, PartialEq)]
pub struct RawSample {
    pub kind: String,
    pub value: RawValue,
    pub unit: Option<String>,
    pub start: Instant,
    pub end: Option<Instant>,
    /// Minutes east of UTC: `tz_offset` as sent, else the start timestamp's own offset.
    pub tz_offset: i32,
    pub source: Option<String>,
    pub sync_id: Option<String>,
    pub sync_version: Option<i64>,
}

/// One half of a blood-pressure pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Half {
    pub value: f64,
    pub unit: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Element {
    Sample(RawSample),
    /// Systolic and diastolic of one measurement; `common` carries the times, source and sync
    /// members (its kind, value and unit are unused).
    BloodPressure {
        common: RawSample,
        systolic: Half,
        diastolic: Half,
    },
    Deletion {
        sync_id: Option<String>,
        id: Option<i64>,
        source: Option<String>,
    },
}

/// Why an element was rejected, with the SQLSTATE the same fault raises elsewhere.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub code: Code,
    pub reason: String,
}

impl Rejection {
    pub fn malformed(reason: impl Into<String>) -> Rejection {
        Rejection {
            code: Code::ERRCODE_INVALID_TEXT_REPRESENTATION,
            reason: format!("malformed sample: {}", reason.into()),
        }
    }
}

/// Enough of a bad value to find it, never a whole payload.
pub fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

fn text_member<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Rejection> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(Rejection::malformed(format!("\"{name}\" must not be empty"))),
        Some(Value::String(s)) if s.len() > MAX_TEXT => {
            Err(Rejection::malformed(format!("\"{name}\" is longer than {MAX_TEXT} bytes: {}", shown(s))))
        }
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Rejection::malformed(format!("\"{name}\" must be a string"))),
    }
}

fn required_text<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, Rejection> {
    text_member(obj, name)?.ok_or_else(|| Rejection::malformed(format!("\"{name}\" is missing")))
}

fn integer_member(
    obj: &Map<String, Value>,
    name: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, Rejection> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            match n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)) {
                Some(i) if range.contains(&i) => Ok(Some(i)),
                _ => Err(Rejection::malformed(format!(
                    "\"{name}\" must be an integer from {} to {}",
                    range.start(),
                    range.end()
                ))),
            }
        }
        Some(_) => Err(Rejection::malformed(format!("\"{name}\" must be an integer"))),
    }
}

fn instant_member(obj: &Map<String, Value>, name: &str) -> Result<Option<Instant>, Rejection> {
    let Some(text) = text_member(obj, name)? else { return Ok(None) };
    timestamp::parse(text).map(Some).ok_or_else(|| {
        Rejection::malformed(format!(
            "\"{name}\" is not a timestamp with time zone (RFC 3339 or Apple's 2021-11-30 07:47:59 +0200): {}",
            shown(text)
        ))
    })
}

/// The value member: a finite number, a text (category), or absent.
fn raw_value(obj: &Map<String, Value>) -> Result<RawValue, Rejection> {
    match obj.get("value") {
        None | Some(Value::Null) => Ok(RawValue::Absent),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(RawValue::Number)
            .ok_or_else(|| Rejection::malformed("\"value\" is not a finite number")),
        Some(Value::String(s)) if s.len() <= MAX_TEXT => Ok(RawValue::Text(s.clone())),
        Some(Value::String(s)) => {
            Err(Rejection::malformed(format!("\"value\" is longer than {MAX_TEXT} bytes: {}", shown(s))))
        }
        Some(_) => Err(Rejection::malformed("\"value\" must be a JSON number")),
    }
}

fn caller_only(obj: &Map<String, Value>, caller: Uuid) -> Result<(), Rejection> {
    match obj.get("user_id") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) => match Uuid::parse_str(s) {
            Ok(u) if u == caller => Ok(()),
            Ok(u) => Err(Rejection {
                code: Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
                reason: format!("sample names user_id {u}, which is not the authenticated user"),
            }),
            Err(_) => Err(Rejection::malformed(format!("\"user_id\" is not a UUID: {}", shown(s)))),
        },
        Some(_) => Err(Rejection::malformed("\"user_id\" must be a UUID string")),
    }
}

/// Times, source and sync members shared by every sample form.
fn common(obj: &Map<String, Value>, kind: &str, value: RawValue, unit: Option<String>) -> Result<RawSample, Rejection> {
    let start = match (instant_member(obj, "start")?, instant_member(obj, "recorded_at")?) {
        (Some(s), None) | (None, Some(s)) => s,
        (Some(_), Some(_)) => return Err(Rejection::malformed("give \"start\" or \"recorded_at\", not both")),
        (None, None) => return Err(Rejection::malformed("\"recorded_at\" (or \"start\") is missing")),
    };
    let end = match (instant_member(obj, "end")?, instant_member(obj, "ended_at")?) {
        (Some(_), Some(_)) => return Err(Rejection::malformed("give \"end\" or \"ended_at\", not both")),
        (e, None) | (None, e) => e,
    };
    if let Some(e) = end {
        if e.unix_us < start.unix_us {
            return Err(Rejection::malformed("\"end\" is before \"start\""));
        }
    }
    // ±18 h: the widest UTC offsets in use are -12:00 and +14:00.
    let tz_offset = integer_member(obj, "tz_offset", -1080..=1080)?.map_or(start.offset_minutes, |m| m as i32);
    let sync_id = text_member(obj, "sync_id")?.map(str::to_string);
    let sync_version = integer_member(obj, "sync_version", 0..=i64::MAX)?;
    if sync_version.is_some() && sync_id.is_none() {
        return Err(Rejection::malformed("\"sync_version\" needs a \"sync_id\""));
    }
    Ok(RawSample {
        kind: kind.to_string(),
        value,
        unit,
        start,
        end,
        tz_offset,
        source: text_member(obj, "source")?.map(str::to_string),
        sync_id,
        sync_version,
    })
}

fn half(obj: &Map<String, Value>, name: &str) -> Result<Option<Half>, Rejection> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|value| Some(Half { value, unit: None }))
            .ok_or_else(|| Rejection::malformed(format!("\"{name}\" is not a finite number"))),
        Some(Value::Object(h)) => match raw_value(h)? {
            RawValue::Number(value) => Ok(Some(Half { value, unit: text_member(h, "unit")?.map(str::to_string) })),
            _ => Err(Rejection::malformed(format!("\"{name}\".\"value\" must be a JSON number"))),
        },
        Some(_) => Err(Rejection::malformed(format!("\"{name}\" must be a number or {{\"value\", \"unit\"}}"))),
    }
}

/// Blood-pressure correlation types: HealthKit's, Health Connect's record, our own name.
const PAIR_TYPES: [&str; 3] = ["HKCorrelationTypeIdentifierBloodPressure", "BloodPressureRecord", "blood_pressure"];

/// Parse one batch element. `caller` is `auth.uid()`: an element naming any other user is
/// refused (42501), never re-owned.
pub fn parse_element(element: &Value, caller: Uuid) -> Result<Element, Rejection> {
    let Value::Object(obj) = element else {
        return Err(Rejection::malformed("expected a JSON object"));
    };
    caller_only(obj, caller)?;
    match obj.get("deleted") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            let sync_id = text_member(obj, "sync_id")?.map(str::to_string);
            let id = integer_member(obj, "id", 1..=i64::MAX)?;
            if sync_id.is_none() == id.is_none() {
                return Err(Rejection::malformed(
                    "a deletion names the sample by \"sync_id\" or by \"id\" (one of them)",
                ));
            }
            return Ok(Element::Deletion { sync_id, id, source: text_member(obj, "source")?.map(str::to_string) });
        }
        Some(_) => return Err(Rejection::malformed("\"deleted\" must be true or false")),
    }
    let correlation = text_member(obj, "correlation")?;
    let kind = text_member(obj, "kind")?;
    let pair_kind = correlation.or(kind.filter(|k| PAIR_TYPES.contains(k)));
    if pair_kind.is_some() || obj.contains_key("systolic") || obj.contains_key("diastolic") {
        if let Some(c) = pair_kind.filter(|c| !PAIR_TYPES.contains(c)) {
            return Err(Rejection {
                code: Code::ERRCODE_INVALID_PARAMETER_VALUE,
                reason: format!("unsupported correlation {} (only blood pressure pairs are stored)", shown(c)),
            });
        }
        let unit = text_member(obj, "unit")?.map(str::to_string);
        let common = common(obj, pair_kind.unwrap_or("blood_pressure"), RawValue::Absent, unit)?;
        return match (half(obj, "systolic")?, half(obj, "diastolic")?) {
            (Some(systolic), Some(diastolic)) => Ok(Element::BloodPressure { common, systolic, diastolic }),
            (s, _) => Err(Rejection {
                code: Code::ERRCODE_INVALID_PARAMETER_VALUE,
                reason: format!(
                    "half a blood-pressure pair: \"{}\" is missing (a pair is stored whole or not at all)",
                    if s.is_none() { "systolic" } else { "diastolic" }
                ),
            }),
        };
    }
    let kind = required_text(obj, "kind")?;
    let unit = text_member(obj, "unit")?.map(str::to_string);
    Ok(Element::Sample(common(obj, kind, raw_value(obj)?, unit)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALICE: &str = "11111111-1111-4111-8111-111111111111";
    fn alice() -> Uuid {
        Uuid::parse_str(ALICE).unwrap()
    }
    fn sample(e: Value) -> RawSample {
        match parse_element(&e, alice()).unwrap() {
            Element::Sample(s) => s,
            other => panic!("not a sample: {other:?}"),
        }
    }
    fn refused(e: Value) -> Rejection {
        parse_element(&e, alice()).unwrap_err()
    }

    #[test]
    fn a_full_sample() {
        let s =
            sample(json!({"kind": "heart_rate", "value": 72, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z",
                    "source": "watch", "user_id": ALICE, "metadata": {"x": 1}}));
        assert_eq!(
            s,
            RawSample {
                kind: "heart_rate".into(),
                value: RawValue::Number(72.0),
                unit: Some("/min".into()),
                start: Instant { unix_us: 1_795_507_200_000_000, offset_minutes: 0 },
                end: None,
                tz_offset: 0,
                source: Some("watch".into()),
                sync_id: None,
                sync_version: None,
            }
        );
        assert_eq!(sample(json!({"kind": "steps", "value": 10.5, "unit": "{steps}", "recorded_at": "2026-11-24T08:00:00Z", "source": null})).source, None);
    }

    #[test]
    fn a_healthkit_interval_with_sync_members() {
        let s = sample(json!({"kind": "HKQuantityTypeIdentifierStepCount", "value": 611, "unit": "count",
            "start": "2021-11-30 07:47:59 +0200", "end": "2021-11-30 07:55:00 +0200", "source": "Jonathan’s iPhone",
            "sync_id": "A1B2", "sync_version": 3}));
        assert_eq!(s.start.unix_us, 1_638_251_279_000_000);
        assert_eq!(s.end.unwrap().unix_us - s.start.unix_us, 421_000_000);
        assert_eq!(s.tz_offset, 120, "taken from the timestamp");
        assert_eq!((s.sync_id.as_deref(), s.sync_version), (Some("A1B2"), Some(3)));
        assert_eq!(s.source.as_deref(), Some("Jonathan’s iPhone"));
        let t = sample(
            json!({"kind": "heart_rate", "value": 60, "unit": "/min", "recorded_at": "2021-01-01T00:00:00Z", "tz_offset": 60}),
        );
        assert_eq!(t.tz_offset, 60, "an explicit offset wins (Apple writes the exporting phone's offset)");
        let c = sample(
            json!({"kind": "HKCategoryTypeIdentifierSleepAnalysis", "value": "HKCategoryValueSleepAnalysisAsleep",
            "start": "2021-01-01 00:00:00 +0200", "end": "2021-01-01 07:00:00 +0200"}),
        );
        assert_eq!(c.value, RawValue::Text("HKCategoryValueSleepAnalysisAsleep".into()));
        assert_eq!(c.unit, None);
    }

    #[test]
    fn blood_pressure_pairs_whole_or_refused() {
        let e = parse_element(
            &json!({"correlation": "HKCorrelationTypeIdentifierBloodPressure", "start": "2021-11-30 07:47:59 +0200",
                    "systolic": {"value": 120, "unit": "mmHg"}, "diastolic": {"value": 80, "unit": "mmHg"}, "source": "cuff"}),
            alice(),
        )
        .unwrap();
        let Element::BloodPressure { common, systolic, diastolic } = e else { panic!("a pair") };
        assert_eq!((systolic.value, diastolic.value), (120.0, 80.0));
        assert_eq!(systolic.unit.as_deref(), Some("mmHg"));
        assert_eq!(common.source.as_deref(), Some("cuff"));
        let hc = parse_element(
            &json!({"kind": "BloodPressureRecord", "systolic": 118, "diastolic": 79, "unit": "millimetersOfMercury", "recorded_at": "2026-11-24T08:00:00Z"}),
            alice(),
        )
        .unwrap();
        assert!(
            matches!(hc, Element::BloodPressure { ref common, .. } if common.unit.as_deref() == Some("millimetersOfMercury"))
        );
        let half = refused(
            json!({"correlation": "HKCorrelationTypeIdentifierBloodPressure", "recorded_at": "2026-11-24T08:00:00Z", "systolic": 120}),
        );
        assert_eq!(half.code, Code::ERRCODE_INVALID_PARAMETER_VALUE);
        assert!(half.reason.contains("half a blood-pressure pair: \"diastolic\" is missing"), "{}", half.reason);
        let food =
            refused(json!({"correlation": "HKCorrelationTypeIdentifierFood", "recorded_at": "2026-11-24T08:00:00Z"}));
        assert!(food.reason.contains("unsupported correlation"), "{}", food.reason);
    }

    #[test]
    fn deletions() {
        assert_eq!(
            parse_element(&json!({"deleted": true, "sync_id": "A1", "source": "watch"}), alice()).unwrap(),
            Element::Deletion { sync_id: Some("A1".into()), id: None, source: Some("watch".into()) }
        );
        assert_eq!(
            parse_element(&json!({"deleted": true, "id": 7}), alice()).unwrap(),
            Element::Deletion { sync_id: None, id: Some(7), source: None }
        );
        assert!(refused(json!({"deleted": true})).reason.contains("by \"sync_id\" or by \"id\""));
        assert!(refused(json!({"deleted": "yes", "id": 1})).reason.contains("true or false"));
        let bob = "22222222-2222-4222-8222-222222222222";
        assert_eq!(
            refused(json!({"deleted": true, "id": 7, "user_id": bob})).code,
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE
        );
    }

    #[test]
    fn malformed_elements() {
        let ok = json!({"kind": "heart_rate", "value": 72, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z"});
        let with = |k: &str, v: Value| {
            let mut e = ok.clone();
            e[k] = v;
            refused(e)
        };
        for e in [json!(42), json!("heart_rate"), json!([1, 2]), json!(null)] {
            let r = refused(e);
            assert_eq!(r.code, Code::ERRCODE_INVALID_TEXT_REPRESENTATION);
            assert_eq!(r.reason, "malformed sample: expected a JSON object");
        }
        let mut no_kind = ok.clone();
        no_kind.as_object_mut().unwrap().remove("kind");
        assert_eq!(refused(no_kind).reason, "malformed sample: \"kind\" is missing");
        let mut no_time = ok.clone();
        no_time.as_object_mut().unwrap().remove("recorded_at");
        assert_eq!(refused(no_time).reason, "malformed sample: \"recorded_at\" (or \"start\") is missing");
        assert_eq!(with("value", json!([72])).reason, "malformed sample: \"value\" must be a JSON number");
        assert_eq!(with("kind", json!(7)).reason, "malformed sample: \"kind\" must be a string");
        assert_eq!(with("kind", json!("")).reason, "malformed sample: \"kind\" must not be empty");
        assert_eq!(with("source", json!(1)).reason, "malformed sample: \"source\" must be a string");
        assert!(with("recorded_at", json!("2026-11-24 08:00"))
            .reason
            .starts_with("malformed sample: \"recorded_at\" is not a timestamp with time zone"));
        assert_eq!(with("user_id", json!("bob")).reason, "malformed sample: \"user_id\" is not a UUID: \"bob\"");
        assert_eq!(with("user_id", json!(5)).code, Code::ERRCODE_INVALID_TEXT_REPRESENTATION);
        assert_eq!(with("end", json!("2026-11-24T07:00:00Z")).reason, "malformed sample: \"end\" is before \"start\"");
        assert!(with("tz_offset", json!(5000)).reason.contains("from -1080 to 1080"));
        assert!(with("sync_version", json!(2)).reason.contains("needs a \"sync_id\""));
        assert!(with("start", json!("2026-11-24T08:00:00Z")).reason.contains("not both"));
        let long = "x".repeat(500);
        assert!(with("recorded_at", json!(long)).reason.len() < 200, "a long bad value is not echoed whole");
        let ten_mb = "y".repeat(10 << 20);
        let r = with("source", json!(ten_mb));
        assert!(
            r.reason.contains("longer than 512 bytes") && r.reason.len() < 200,
            "{}",
            &r.reason[..100.min(r.reason.len())]
        );
    }

    #[test]
    fn another_users_sample_is_refused_not_reowned() {
        let bob = "22222222-2222-4222-8222-222222222222";
        let r = refused(
            json!({"kind": "heart_rate", "value": 72, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z", "user_id": bob}),
        );
        assert_eq!(r.code, Code::ERRCODE_INSUFFICIENT_PRIVILEGE);
        assert_eq!(r.reason, format!("sample names user_id {bob}, which is not the authenticated user"));
    }
}
