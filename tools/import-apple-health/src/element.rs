//! From parsed records to `health.ingest` elements: legacy date rewriting, numbers, the JSON of a
//! record and of a blood-pressure correlation, and the decision per item (send, part of a
//! correlation, unsupported type). The database does all unit and vocabulary mapping: values,
//! units and category strings go out as the platform wrote them.
use crate::xml::{Correlation, Item, Record};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::collections::HashSet;

pub const BLOOD_PRESSURE: &str = "HKCorrelationTypeIdentifierBloodPressure";
pub const SYSTOLIC: &str = "HKQuantityTypeIdentifierBloodPressureSystolic";
pub const DIASTOLIC: &str = "HKQuantityTypeIdentifierBloodPressureDiastolic";

/// iOS 8 wrote `20150909045734+0100`; the modern export (and the database) use
/// `2015-09-09 04:57:34 +0100`. Anything else is returned unchanged.
pub fn rewrite_legacy_date(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    let legacy = b.len() == 19
        && b[..14].iter().all(u8::is_ascii_digit)
        && (b[14] == b'+' || b[14] == b'-')
        && b[15..].iter().all(u8::is_ascii_digit);
    if !legacy {
        return Cow::Borrowed(s);
    }
    Cow::Owned(format!(
        "{}-{}-{} {}:{}:{} {}",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[8..10],
        &s[10..12],
        &s[12..14],
        &s[14..19]
    ))
}

/// A JSON number for a finite numeric string (integers stay integers: `75`, not `75.0`).
pub fn number(s: &str) -> Option<Number> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(Number::from(i));
    }
    let f = s.parse::<f64>().ok().filter(|f| f.is_finite())?;
    // Rust also parses "inf", "NaN", "infinity": those are not finite; anything else here is a
    // plain decimal or exponent form.
    Number::from_f64(f)
}

/// A number when the text is one, else the text (`HKCategoryValueSleepAnalysisAsleep`).
pub fn number_or_string(s: &str) -> Value {
    number(s).map(Value::Number).unwrap_or_else(|| Value::String(s.to_string()))
}

fn put_str(m: &mut Map<String, Value>, k: &str, v: Option<&str>) {
    if let Some(v) = v {
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
}

fn put_date(m: &mut Map<String, Value>, k: &str, v: Option<&str>) {
    if let Some(v) = v {
        m.insert(k.to_string(), Value::String(rewrite_legacy_date(v).into_owned()));
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|u| !u.is_empty())
}

/// The ingest element of a plain record.
pub fn record_element(r: &Record) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), Value::String(r.kind.clone()));
    if let Some(v) = r.value.as_deref() {
        m.insert("value".into(), number_or_string(v));
    }
    put_str(&mut m, "unit", non_empty(&r.unit));
    put_date(&mut m, "start", r.start.as_deref());
    put_date(&mut m, "end", r.end.as_deref());
    put_str(&mut m, "source", r.source.as_deref());
    put_str(&mut m, "sync_id", r.meta.sync_id.as_deref());
    if let Some(v) = r.meta.sync_version.as_deref() {
        m.insert("sync_version".into(), number_or_string(v));
    }
    put_str(&mut m, "tz", r.meta.tz.as_deref());
    Value::Object(m)
}

fn side(r: &Record) -> Value {
    let mut m = Map::new();
    if let Some(v) = r.value.as_deref() {
        m.insert("value".into(), number_or_string(v));
    }
    put_str(&mut m, "unit", non_empty(&r.unit));
    Value::Object(m)
}

/// The ingest element of a blood-pressure correlation: one element, both sides. A side that is
/// missing is left out (the database rejects the half pair and says why).
pub fn correlation_element(c: &Correlation) -> Value {
    let mut m = Map::new();
    m.insert("correlation".into(), Value::String(c.kind.clone()));
    put_date(&mut m, "start", c.start.as_deref());
    put_date(&mut m, "end", c.end.as_deref());
    put_str(&mut m, "source", c.source.as_deref());
    for (name, kind) in [("systolic", SYSTOLIC), ("diastolic", DIASTOLIC)] {
        if let Some(child) = c.children.iter().find(|r| r.kind == kind) {
            m.insert(name.into(), side(child));
        }
    }
    put_str(&mut m, "sync_id", c.meta.sync_id.as_deref());
    if let Some(v) = c.meta.sync_version.as_deref() {
        m.insert("sync_version".into(), number_or_string(v));
    }
    Value::Object(m)
}

/// What identifies a correlation child repeated at top level: (type, start, end, value, source),
/// as written in the file.
pub type Key = (String, Option<String>, Option<String>, Option<String>, Option<String>);

pub fn key_of(r: &Record) -> Key {
    (r.kind.clone(), r.start.clone(), r.end.clone(), r.value.clone(), r.source.clone())
}

/// The correlation types this importer sends (each becomes one element).
pub fn is_sent_correlation(kind: &str) -> bool {
    kind == BLOOD_PRESSURE
}

/// Pass 1: remember the children of the correlations that are sent, so that their top-level
/// repeats are not sent again. Only those children are kept in memory.
#[derive(Debug, Default)]
pub struct CorrelationKeys {
    keys: HashSet<Key>,
}

impl CorrelationKeys {
    pub fn observe(&mut self, item: &Item) {
        if let Item::Correlation(c) = item {
            if is_sent_correlation(&c.kind) {
                self.keys.extend(c.children.iter().map(key_of));
            }
        }
    }

    pub fn contains(&self, r: &Record) -> bool {
        !self.keys.is_empty() && self.keys.contains(&key_of(r))
    }

    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.keys.len()
    }
}

/// What happens to one item of pass 2.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    Send(Value),
    /// A top-level repeat of a child of a correlation that is sent.
    PartOfCorrelation,
    /// The database has no kind for this type.
    Unsupported,
}

pub struct Classifier<'a> {
    /// `health.metric_kinds.healthkit`
    pub supported: &'a HashSet<String>,
    pub correlations: &'a CorrelationKeys,
}

impl Classifier<'_> {
    /// Blood pressure is sent when the database knows either side (it rejects what it cannot map).
    pub fn supports_correlation(&self, kind: &str) -> bool {
        is_sent_correlation(kind)
            && (self.supported.contains(kind)
                || self.supported.contains(SYSTOLIC)
                || self.supported.contains(DIASTOLIC))
    }

    /// The type the item is counted under, and what to do with it.
    pub fn classify<'i>(&self, item: &'i Item) -> (&'i str, Disposition) {
        match item {
            Item::Record(r) => {
                let d = if !self.supported.contains(&r.kind) {
                    Disposition::Unsupported
                } else if self.correlations.contains(r) {
                    Disposition::PartOfCorrelation
                } else {
                    Disposition::Send(record_element(r))
                };
                (&r.kind, d)
            }
            Item::Correlation(c) => {
                let d = if self.supports_correlation(&c.kind) {
                    Disposition::Send(correlation_element(c))
                } else {
                    Disposition::Unsupported
                };
                (&c.kind, d)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::Metadata;
    use serde_json::json;

    fn rec(kind: &str, value: Option<&str>, unit: Option<&str>) -> Record {
        Record {
            kind: kind.into(),
            unit: unit.map(Into::into),
            value: value.map(Into::into),
            start: Some("2020-08-02 19:12:21 +0900".into()),
            end: Some("2020-08-02 19:12:21 +0900".into()),
            source: Some("ShinzoAdvisor".into()),
            meta: Metadata::default(),
        }
    }

    #[test]
    fn legacy_dates_are_rewritten_modern_ones_kept() {
        assert_eq!(rewrite_legacy_date("20150909045734+0100"), "2015-09-09 04:57:34 +0100");
        assert_eq!(rewrite_legacy_date("20141202014500-0800"), "2014-12-02 01:45:00 -0800");
        for keep in [
            "2021-11-30 07:47:59 +0200",
            "2021-11-30T07:47:59Z",
            "",
            "2015090904573+0100",
            "201509090457340+0100",
            "20150909045734 0100",
            "2015090904573x+0100",
            "20150909045734+01:0",
        ] {
            assert_eq!(rewrite_legacy_date(keep), keep);
            assert!(matches!(rewrite_legacy_date(keep), Cow::Borrowed(_)));
        }
    }

    #[test]
    fn numbers_and_strings() {
        assert_eq!(number_or_string("75"), json!(75));
        assert_eq!(number_or_string("47.8478"), json!(47.8478));
        assert_eq!(number_or_string("3.33067e-16"), json!(3.33067e-16));
        assert_eq!(number_or_string("-0.5"), json!(-0.5));
        assert_eq!(number_or_string("HKCategoryValueSleepAnalysisAsleep"), json!("HKCategoryValueSleepAnalysisAsleep"));
        for not_finite in ["NaN", "inf", "-infinity", "1e400"] {
            assert_eq!(number_or_string(not_finite), json!(not_finite));
        }
        assert_eq!(number_or_string(""), json!(""));
        assert_eq!(number_or_string(" 5"), json!(" 5"));
        // Exact text survives serialisation of a decimal.
        assert_eq!(serde_json::to_string(&number_or_string("0.00205053")).unwrap(), "0.00205053");
        assert_eq!(serde_json::to_string(&number_or_string("9007199254740993")).unwrap(), "9007199254740993");
    }

    #[test]
    fn quantity_record_element() {
        let mut r = rec("HKQuantityTypeIdentifierHeartRate", Some("75"), Some("count/min"));
        r.meta =
            Metadata { sync_id: Some("ABC".into()), sync_version: Some("1".into()), tz: Some("Asia/Tokyo".into()) };
        assert_eq!(
            record_element(&r),
            json!({"kind": "HKQuantityTypeIdentifierHeartRate", "value": 75, "unit": "count/min",
                   "start": "2020-08-02 19:12:21 +0900", "end": "2020-08-02 19:12:21 +0900",
                   "source": "ShinzoAdvisor", "sync_id": "ABC", "sync_version": 1, "tz": "Asia/Tokyo"})
        );
    }

    #[test]
    fn category_record_element_has_no_unit() {
        for unit in [None, Some("")] {
            let r = rec("HKCategoryTypeIdentifierSleepAnalysis", Some("HKCategoryValueSleepAnalysisAsleep"), unit);
            let e = record_element(&r);
            assert_eq!(e["value"], json!("HKCategoryValueSleepAnalysisAsleep"));
            assert!(e.get("unit").is_none(), "{e}");
            assert!(e.get("sync_id").is_none() && e.get("sync_version").is_none() && e.get("tz").is_none());
        }
        // No value at all (legacy sleep, MindfulSession): no "value" member, the database decides.
        let e = record_element(&rec("HKCategoryTypeIdentifierSleepAnalysis", None, Some("")));
        assert!(e.get("value").is_none(), "{e}");
    }

    #[test]
    fn legacy_record_element() {
        let mut r = rec("HKQuantityTypeIdentifierHeartRate", Some("1.11667"), Some("count/s"));
        r.start = Some("20150531161900+0100".into());
        r.end = Some("20150601161900+0100".into());
        let e = record_element(&r);
        assert_eq!(e["start"], json!("2015-05-31 16:19:00 +0100"));
        assert_eq!(e["end"], json!("2015-06-01 16:19:00 +0100"));
        assert_eq!(e["value"], json!(1.11667));
        assert_eq!(e["unit"], json!("count/s"));
    }

    #[test]
    fn non_numeric_sync_version_is_sent_as_text() {
        let mut r = rec("HKQuantityTypeIdentifierHeartRate", Some("60"), Some("count/min"));
        r.meta.sync_version = Some("v2".into());
        assert_eq!(record_element(&r)["sync_version"], json!("v2"));
    }

    fn bp(children: Vec<Record>) -> Correlation {
        Correlation {
            kind: BLOOD_PRESSURE.into(),
            start: Some("2020-08-02 19:12:21 +0900".into()),
            end: Some("2020-08-02 19:12:21 +0900".into()),
            source: Some("ShinzoAdvisor".into()),
            meta: Metadata { sync_id: Some("S".into()), sync_version: Some("3".into()), tz: Some("Asia/Tokyo".into()) },
            children,
        }
    }

    #[test]
    fn blood_pressure_element() {
        let c = bp(vec![rec(DIASTOLIC, Some("74"), Some("mmHg")), rec(SYSTOLIC, Some("125"), Some("mmHg"))]);
        assert_eq!(
            correlation_element(&c),
            json!({"correlation": BLOOD_PRESSURE, "start": "2020-08-02 19:12:21 +0900",
                   "end": "2020-08-02 19:12:21 +0900", "source": "ShinzoAdvisor",
                   "systolic": {"value": 125, "unit": "mmHg"}, "diastolic": {"value": 74, "unit": "mmHg"},
                   "sync_id": "S", "sync_version": 3})
        );
        let half = correlation_element(&bp(vec![rec(SYSTOLIC, Some("125"), Some("mmHg"))]));
        assert!(half.get("diastolic").is_none());
        assert_eq!(half["systolic"], json!({"value": 125, "unit": "mmHg"}));
    }

    #[test]
    fn classification() {
        let supported: HashSet<String> =
            [SYSTOLIC, DIASTOLIC, "HKQuantityTypeIdentifierHeartRate"].iter().map(|s| s.to_string()).collect();
        let child = rec(SYSTOLIC, Some("125"), Some("mmHg"));
        let corr = Item::Correlation(bp(vec![rec(DIASTOLIC, Some("74"), Some("mmHg")), child.clone()]));
        let mut keys = CorrelationKeys::default();
        keys.observe(&corr);
        // Food correlations are not sent, so their children are not remembered.
        let food_child = rec("HKQuantityTypeIdentifierDietaryProtein", Some("3"), Some("g"));
        keys.observe(&Item::Correlation(Correlation {
            kind: "HKCorrelationTypeIdentifierFood".into(),
            children: vec![food_child.clone()],
            ..Default::default()
        }));
        assert_eq!(keys.count(), 2);
        let cl = Classifier { supported: &supported, correlations: &keys };

        let (kind, d) = cl.classify(&corr);
        assert_eq!(kind, BLOOD_PRESSURE);
        assert!(matches!(d, Disposition::Send(ref e) if e["correlation"] == json!(BLOOD_PRESSURE)));
        assert_eq!(cl.classify(&Item::Record(child.clone())).1, Disposition::PartOfCorrelation);
        // Same time, other value: a different sample.
        let other = rec(SYSTOLIC, Some("126"), Some("mmHg"));
        assert!(matches!(cl.classify(&Item::Record(other)).1, Disposition::Send(_)));
        let mut other_source = child.clone();
        other_source.source = Some("Other".into());
        assert!(matches!(cl.classify(&Item::Record(other_source)).1, Disposition::Send(_)));
        assert_eq!(cl.classify(&Item::Record(food_child)).1, Disposition::Unsupported);
        let junk = rec("c", Some("68.0391"), Some("dBASPL"));
        assert_eq!(cl.classify(&Item::Record(junk)), ("c", Disposition::Unsupported));
        let food =
            Item::Correlation(Correlation { kind: "HKCorrelationTypeIdentifierFood".into(), ..Default::default() });
        assert_eq!(cl.classify(&food).1, Disposition::Unsupported);

        // Without either blood-pressure kind in the catalog, the correlation is unsupported.
        let only_hr: HashSet<String> = ["HKQuantityTypeIdentifierHeartRate".to_string()].into();
        let cl = Classifier { supported: &only_hr, correlations: &keys };
        assert_eq!(cl.classify(&corr).1, Disposition::Unsupported);
    }
}
