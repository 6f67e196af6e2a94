//! The pure part of `health.ingest`: read every element against the catalog, de-duplicate the
//! batch, decide what each row needs (insert, update to a newer sync version, delete), and match
//! what the database returns back to the elements. No Postgres here, so every rule is
//! unit-tested below; `ingest.rs` only runs the statements the plan asks for.
use super::catalog::Catalog;
use super::rules::{self, Invalid, KindRule};
use super::sample::{self, Element, Half, RawSample, RawValue, Rejection};
use super::units::{Dimension, Unit};
use super::vocabulary::{self, Platform};
use pgrx::PgSqlErrorCode as Code;
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Inserted,
    Updated,
    Deleted,
    Duplicate,
    Rejected,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Inserted => "inserted",
            Status::Updated => "updated",
            Status::Deleted => "deleted",
            Status::Duplicate => "duplicate",
            Status::Rejected => "rejected",
        }
    }
}

/// The report row of one element.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub ord: i32,
    pub status: Status,
    /// The table row's id (the systolic row of a pair); for rejected: the health.rejected_samples row.
    pub id: Option<i64>,
    pub error: Option<String>,
}

/// A valid sample in canonical form, ready for the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub ord: i32,
    pub kind: String,
    pub value: f64,
    pub unit: &'static str,
    /// Microseconds since 1970-01-01 00:00 UTC.
    pub at_us: i64,
    pub end_us: Option<i64>,
    pub tz_offset: i32,
    pub source: Option<String>,
    pub sync_id: Option<String>,
    /// 0 when a sync id came without a version.
    pub sync_version: Option<i64>,
    pub correlation: Option<Uuid>,
    /// The row that speaks for its element in the report (the systolic half of a pair).
    pub primary: bool,
}

/// What makes a re-sent sample a duplicate (the table's unique key, less the owner).
pub type Key = (String, i64, Option<String>);
/// (source, sync id): what makes a synced sample the same one.
type SyncKey = (Option<String>, String);

impl Row {
    pub fn key(&self) -> Key {
        (self.kind.clone(), self.at_us, self.source.clone())
    }
    fn sync_key(&self) -> Option<SyncKey> {
        self.sync_id.clone().map(|id| (self.source.clone(), id))
    }
}

/// A deletion the database still has to find.
#[derive(Clone, Debug, PartialEq)]
pub struct Deletion {
    pub ord: i32,
    pub sync_id: Option<String>,
    pub id: Option<i64>,
    pub source: Option<String>,
}

/// An element refused, kept as sent.
pub struct Refused<'a> {
    pub ord: i32,
    pub element: &'a Value,
    pub rejection: Rejection,
}

/// What the database does with one valid row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    Insert,
    /// Replace stored row `id` (its sync version is lower).
    Update(i64),
    /// Stored row `id` has this sync version or a higher one.
    Keep(i64),
}

pub struct Plan<'a> {
    elements: &'a [Value],
    outcomes: Vec<Outcome>,
    /// Valid rows, in element order (two for a blood-pressure pair).
    pub rows: Vec<Row>,
    pub deletions: Vec<Deletion>,
    pub refused: Vec<Refused<'a>>,
    actions: Vec<Action>,
    by_key: HashMap<Key, usize>,
    /// (ord, ord of the first element with the same key or sync id): reported as duplicates of it.
    repeats: Vec<(i32, i32)>,
}

/// A batch larger than an `int` can number.
#[derive(Debug, PartialEq)]
pub struct BatchTooLarge;

/// The suffix that keeps the two halves of a synced pair apart under one sync id.
pub const SYSTOLIC_SUFFIX: &str = "#systolic";
pub const DIASTOLIC_SUFFIX: &str = "#diastolic";

impl<'a> Plan<'a> {
    /// Read each element as `caller`'s against `catalog`.
    pub fn new(elements: &'a [Value], caller: Uuid, catalog: &Catalog) -> Result<Plan<'a>, BatchTooLarge> {
        let mut plan = Plan {
            elements,
            outcomes: Vec::with_capacity(elements.len()),
            rows: Vec::new(),
            deletions: Vec::new(),
            refused: Vec::new(),
            actions: Vec::new(),
            by_key: HashMap::new(),
            repeats: Vec::new(),
        };
        let mut by_sync: HashMap<SyncKey, i32> = HashMap::new();
        for (i, element) in elements.iter().enumerate() {
            let ord = i32::try_from(i + 1).map_err(|_| BatchTooLarge)?;
            plan.outcomes.push(Outcome { ord, status: Status::Rejected, id: None, error: None });
            let rows = match sample::parse_element(element, caller) {
                Err(r) => Err(r),
                Ok(Element::Deletion { sync_id, id, source }) => {
                    plan.deletions.push(Deletion { ord, sync_id, id, source });
                    continue;
                }
                Ok(Element::Sample(s)) => sample_row(&s, catalog, ord).map(|r| vec![r]),
                Ok(Element::BloodPressure { common, systolic, diastolic }) => {
                    pair_rows(&common, &systolic, &diastolic, catalog, ord)
                }
            };
            let rows = match rows {
                Ok(rows) => rows,
                Err(rejection) => {
                    plan.refuse(ord, rejection);
                    continue;
                }
            };
            // A repeat of an earlier element of this batch (same key or same sync id) reports
            // as a duplicate of it; the first one is what the database sees.
            // Each key made once (its strings are copies), looked up and then kept.
            let keys: Vec<(Key, Option<SyncKey>)> = rows.iter().map(|r| (r.key(), r.sync_key())).collect();
            let earlier = keys.iter().find_map(|(key, sync_key)| {
                plan.by_key
                    .get(key)
                    .map(|&i| plan.rows[i].ord)
                    .or_else(|| sync_key.as_ref().and_then(|k| by_sync.get(k).copied()))
            });
            if let Some(first) = earlier {
                plan.repeats.push((ord, first));
                continue;
            }
            for (row, (key, sync_key)) in rows.into_iter().zip(keys) {
                if let Some(k) = sync_key {
                    by_sync.insert(k, ord);
                }
                plan.by_key.insert(key, plan.rows.len());
                plan.rows.push(row);
                plan.actions.push(Action::Insert);
            }
        }
        Ok(plan)
    }

    fn outcome(&mut self, ord: i32) -> &mut Outcome {
        &mut self.outcomes[ord as usize - 1]
    }

    /// Refuse element `ord` with `rejection` (kept in health.rejected_samples).
    pub fn refuse(&mut self, ord: i32, rejection: Rejection) {
        let element = &self.elements[ord as usize - 1];
        let o = self.outcome(ord);
        o.status = Status::Rejected;
        o.error = Some(rejection.reason.clone());
        self.refused.push(Refused { ord, element, rejection });
    }

    /// Rows with a sync id: the ones whose stored version decides their action.
    pub fn synced_rows(&self) -> impl Iterator<Item = (usize, &Row)> {
        self.rows.iter().enumerate().filter(|(_, r)| r.sync_id.is_some())
    }

    /// The table holds row `id` with the sync id of row `index`, at `stored_version`.
    pub fn stored(&mut self, index: usize, id: i64, stored_version: Option<i64>) {
        let newer = self.rows[index].sync_version.unwrap_or(0) > stored_version.unwrap_or(0);
        self.actions[index] = if newer { Action::Update(id) } else { Action::Keep(id) };
        if !newer && self.rows[index].primary {
            let ord = self.rows[index].ord;
            let o = self.outcome(ord);
            o.status = Status::Duplicate;
            o.id = Some(id);
        }
    }

    /// Rows to insert, and rows to update with the stored id they replace.
    pub fn to_insert(&self) -> Vec<&Row> {
        self.rows.iter().zip(&self.actions).filter(|(_, a)| **a == Action::Insert).map(|(r, _)| r).collect()
    }
    pub fn to_update(&self) -> Vec<(i64, &Row)> {
        self.rows
            .iter()
            .zip(&self.actions)
            .filter_map(|(r, a)| match a {
                Action::Update(id) => Some((*id, r)),
                _ => None,
            })
            .collect()
    }

    /// The INSERT returned a row with `key`: that sample was inserted as `id`.
    pub fn inserted(&mut self, key: &Key, id: Option<i64>) {
        if let Some(&i) = self.by_key.get(key) {
            self.actions[i] = Action::Keep(id.unwrap_or(0));
            if self.rows[i].primary {
                let ord = self.rows[i].ord;
                let o = self.outcome(ord);
                o.status = Status::Inserted;
                o.id = id;
            }
        }
    }

    /// Rows to insert that the INSERT skipped (a sample with the same key is stored): now
    /// reported as duplicates, their stored ids still to be found.
    pub fn take_not_inserted(&mut self) -> Vec<Row> {
        let rows: Vec<Row> = self
            .rows
            .iter()
            .zip(&self.actions)
            .filter(|(_, a)| **a == Action::Insert)
            .map(|(r, _)| r.clone())
            .collect();
        for r in rows.iter().filter(|r| r.primary) {
            self.outcome(r.ord).status = Status::Duplicate;
        }
        rows
    }

    /// The UPDATE replaced stored row `id` with a newer version.
    pub fn updated(&mut self, id: i64) {
        let found = self
            .rows
            .iter()
            .zip(&self.actions)
            .find(|(_, a)| **a == Action::Update(id))
            .map(|(r, _)| (r.ord, r.primary));
        if let Some((ord, true)) = found {
            let o = self.outcome(ord);
            o.status = Status::Updated;
            o.id = Some(id);
        }
    }

    /// Updates the UPDATE did not make: a newer version whose new time collides with another
    /// stored sample of the same kind and source. Refused, the stored row left as it was.
    pub fn refuse_unmade_updates(&mut self, made: &[i64]) {
        let unmade: Vec<(i32, i64)> = self
            .rows
            .iter()
            .zip(&self.actions)
            .filter_map(|(r, a)| match a {
                Action::Update(id) if r.primary && !made.contains(id) => Some((r.ord, *id)),
                _ => None,
            })
            .collect();
        for (ord, id) in unmade {
            self.refuse(
                ord,
                Rejection {
                    code: Code::ERRCODE_UNIQUE_VIOLATION,
                    reason: format!("the new version would collide with another stored sample of the same kind, time and source (stored row {id} kept)"),
                },
            );
        }
    }

    /// Deletion `ord` removed stored row `id`.
    pub fn deleted(&mut self, ord: i32, id: i64) {
        let o = self.outcome(ord);
        if o.status != Status::Deleted {
            o.status = Status::Deleted;
            o.id = Some(id);
        }
    }

    /// Deletions that found nothing of the caller's: refused, nothing else touched.
    pub fn refuse_unmatched_deletions(&mut self) {
        let unmatched: Vec<Deletion> = self
            .deletions
            .iter()
            .filter(|d| self.outcomes[d.ord as usize - 1].status != Status::Deleted)
            .cloned()
            .collect();
        for d in unmatched {
            let what = match (&d.sync_id, d.id) {
                (Some(s), _) => format!("sync_id {}", sample::shown(s)),
                (None, Some(id)) => format!("id {id}"),
                _ => "that key".to_string(),
            };
            self.refuse(
                d.ord,
                Rejection {
                    code: Code::ERRCODE_UNDEFINED_OBJECT,
                    reason: format!("no stored sample of yours with {what} to delete"),
                },
            );
        }
    }

    /// The stored row `id` is what element `ord` duplicates (or, for a refused element, the
    /// health.rejected_samples row that keeps it). The first id found wins.
    pub fn found(&mut self, ord: i32, id: Option<i64>) {
        if ord < 1 || ord as usize > self.outcomes.len() {
            return;
        }
        let o = self.outcome(ord);
        if o.id.is_none() {
            o.id = id;
        }
    }

    /// The report, one row per element in order; repeats within the batch point at the row of
    /// their first occurrence.
    pub fn finish(mut self) -> Vec<Outcome> {
        for (ord, first) in std::mem::take(&mut self.repeats) {
            let id = self.outcome(first).id;
            let o = self.outcome(ord);
            o.status = Status::Duplicate;
            o.id = id;
            o.error = None;
        }
        self.outcomes
    }
}

fn invalid(e: Invalid) -> Rejection {
    Rejection { code: e.code(), reason: e.to_string() }
}

fn bad(reason: String) -> Rejection {
    Rejection { code: Code::ERRCODE_INVALID_PARAMETER_VALUE, reason }
}

/// Hours (or the kind's time unit) between start and end, for interval samples without a value.
fn duration_in(rule: &KindRule, s: &RawSample) -> Option<f64> {
    let end = s.end?;
    (rule.unit.dimension() == Dimension::Time).then_some(())?;
    let seconds = (end.unix_us - s.start.unix_us) as f64 / 1e6;
    super::units::convert(seconds, Unit::Second, rule.unit, None).ok()
}

/// A sample element: its kind and unit through the catalog, its value canonical and in range.
fn sample_row(s: &RawSample, catalog: &Catalog, ord: i32) -> Result<Row, Rejection> {
    let (kind, platform, value, unit) = if s.kind == vocabulary::HK_SLEEP_ANALYSIS && s.value != RawValue::Absent {
        // A sleep category sample: the category names the kind, the interval is the value.
        let category = match &s.value {
            RawValue::Number(n) => Value::from(*n as i64),
            RawValue::Text(t) => Value::from(t.as_str()),
            RawValue::Absent => Value::Null,
        };
        let kind = vocabulary::sleep_stage_kind(&category).ok_or_else(|| {
            bad(format!(
                "unknown sleep category {} (expected an HKCategoryValueSleepAnalysis value)",
                sample::shown(&category.to_string())
            ))
        })?;
        let rule = catalog.rule(kind).ok_or_else(|| invalid(Invalid::UnknownKind(kind.to_string())))?;
        let hours =
            duration_in(rule, s).ok_or_else(|| bad(format!("{kind}: a sleep category sample needs \"end\"")))?;
        (kind, Platform::HealthKit, hours, rule.unit)
    } else {
        let (kind, platform) =
            catalog.resolve_kind(&s.kind).ok_or_else(|| invalid(Invalid::UnknownKind(s.kind.clone())))?;
        let rule = catalog.rule(kind).expect("resolved kinds are in the catalog");
        match (&s.value, &s.unit) {
            (RawValue::Number(v), Some(u)) => {
                let unit = catalog
                    .resolve_unit(u, platform, rule.unit)
                    .ok_or_else(|| invalid(Invalid::UnknownUnit { kind: kind.to_string(), unit: u.clone() }))?;
                (kind, platform, *v, unit)
            }
            (RawValue::Number(_), None) => {
                return Err(Rejection::malformed(format!(
                    "{kind}: \"unit\" is missing (the unit decides how the value is read)"
                )))
            }
            (RawValue::Absent, _) => match duration_in(rule, s) {
                Some(d) => (kind, platform, d, rule.unit),
                None => return Err(Rejection::malformed("\"value\" is missing")),
            },
            (RawValue::Text(t), _) => {
                return Err(Rejection::malformed(format!("\"value\" must be a JSON number, not {}", sample::shown(t))))
            }
        }
    };
    let _ = platform;
    let rule = catalog.rule(kind).expect("resolved kinds are in the catalog");
    let canonical = rules::normalize_unit(kind, rule, value, unit).map_err(invalid)?;
    Ok(Row {
        ord,
        kind: kind.to_string(),
        value: canonical,
        unit: rule.unit.code(),
        at_us: s.start.unix_us,
        end_us: s.end.map(|e| e.unix_us),
        tz_offset: s.tz_offset,
        source: s.source.clone(),
        sync_id: s.sync_id.clone(),
        sync_version: s.sync_id.as_ref().map(|_| s.sync_version.unwrap_or(0)),
        correlation: None,
        primary: true,
    })
}

/// A blood-pressure pair: both halves valid, or the element is refused whole.
fn pair_rows(
    common: &RawSample,
    systolic: &Half,
    diastolic: &Half,
    catalog: &Catalog,
    ord: i32,
) -> Result<Vec<Row>, Rejection> {
    let correlation = Uuid::new_v4();
    let platform = match common.kind.as_str() {
        "HKCorrelationTypeIdentifierBloodPressure" => "HKQuantityTypeIdentifierBloodPressure",
        "BloodPressureRecord" => "BloodPressureRecord.",
        _ => "blood_pressure_",
    };
    let mut rows = Vec::with_capacity(2);
    for (half, field, suffix) in [(systolic, "systolic", SYSTOLIC_SUFFIX), (diastolic, "diastolic", DIASTOLIC_SUFFIX)] {
        let kind = match platform {
            "HKQuantityTypeIdentifierBloodPressure" => {
                format!("{platform}{}", if field == "systolic" { "Systolic" } else { "Diastolic" })
            }
            _ => format!("{platform}{field}"),
        };
        let raw = RawSample {
            kind,
            value: RawValue::Number(half.value),
            unit: half.unit.clone().or_else(|| common.unit.clone()),
            ..common.clone()
        };
        let mut row = sample_row(&raw, catalog, ord)
            .map_err(|r| Rejection { code: r.code, reason: format!("{field}: {}", r.reason) })?;
        row.sync_id = common.sync_id.as_ref().map(|s| format!("{s}{suffix}"));
        row.correlation = Some(correlation);
        row.primary = field == "systolic";
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::rules::KindRule;
    use serde_json::json;

    fn rule(unit: &str, min: f64, max: f64) -> KindRule {
        KindRule { unit: Unit::parse(unit).unwrap(), min: Some(min), max: Some(max), molar_mass: None }
    }
    fn catalog() -> Catalog {
        let mut kinds = HashMap::new();
        kinds.insert("heart_rate".to_string(), rule("/min", 20.0, 300.0));
        kinds.insert("body_weight".to_string(), rule("kg", 0.2, 700.0));
        kinds.insert("oxygen_saturation".to_string(), rule("%", 20.0, 100.0));
        kinds.insert("steps".to_string(), rule("{steps}", 0.0, 1e6));
        kinds.insert("sleep_asleep".to_string(), rule("h", 0.0, 24.0));
        kinds.insert("sleep_duration".to_string(), rule("h", 0.0, 24.0));
        kinds.insert("blood_pressure_systolic".to_string(), rule("mm[Hg]", 10.0, 500.0));
        kinds.insert("blood_pressure_diastolic".to_string(), rule("mm[Hg]", 0.0, 350.0));
        Catalog::from_rules(kinds).with_names(
            &[
                ("HKQuantityTypeIdentifierHeartRate", "heart_rate"),
                ("HKQuantityTypeIdentifierOxygenSaturation", "oxygen_saturation"),
                ("HKQuantityTypeIdentifierStepCount", "steps"),
                ("HKCategoryTypeIdentifierSleepAnalysis", "sleep_duration"),
                ("HKQuantityTypeIdentifierBloodPressureSystolic", "blood_pressure_systolic"),
                ("HKQuantityTypeIdentifierBloodPressureDiastolic", "blood_pressure_diastolic"),
            ],
            &[
                ("HeartRateRecord", "heart_rate"),
                ("BloodPressureRecord.systolic", "blood_pressure_systolic"),
                ("BloodPressureRecord.diastolic", "blood_pressure_diastolic"),
            ],
            &[
                ("count/min", "healthkit", Some("/min")),
                ("count/s", "healthkit", Some("/s")),
                ("count", "healthkit", None),
                ("%", "healthkit", Some("1")),
                ("mmHg", "healthkit", Some("mm[Hg]")),
                ("millimetersOfMercury", "health_connect", Some("mm[Hg]")),
                ("lb", "healthkit", Some("[lb_av]")),
                ("bpm", "any", Some("/min")),
            ],
        )
    }
    fn hr(value: f64, at: &str) -> Value {
        json!({"kind": "heart_rate", "value": value, "unit": "/min", "recorded_at": at})
    }
    const ME: Uuid = Uuid::from_u128(0x1111_1111_1111_4111_8111_1111_1111_1111);

    fn one(e: Value) -> Result<Row, String> {
        let batch = [e];
        let cat = catalog();
        let plan = Plan::new(&batch, ME, &cat).unwrap();
        match (plan.rows.first(), plan.refused.first()) {
            (Some(r), _) => Ok(r.clone()),
            (None, Some(r)) => Err(r.rejection.reason.clone()),
            _ => Err("nothing".into()),
        }
    }

    #[test]
    fn valid_rejected_and_repeated_elements() {
        let batch = vec![
            hr(72.0, "2026-11-24T08:00:00Z"),
            hr(400.0, "2026-11-24T08:01:00Z"),
            hr(73.0, "2026-11-24T08:00:00Z"), // same key as the first: a duplicate, not a row
            json!("nonsense"),
        ];
        let cat = catalog();
        let mut plan = Plan::new(&batch, ME, &cat).unwrap();
        assert_eq!(plan.rows.len(), 1);
        assert_eq!(plan.refused.iter().map(|r| r.ord).collect::<Vec<_>>(), vec![2, 4]);
        assert_eq!(plan.refused[0].rejection.code, Code::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE);
        let key = plan.rows[0].key();
        plan.inserted(&key, Some(10));
        assert!(plan.take_not_inserted().is_empty());
        plan.found(2, Some(500));
        let out = plan.finish();
        assert_eq!(
            out.iter().map(|o| o.status.as_str()).collect::<Vec<_>>(),
            ["inserted", "rejected", "duplicate", "rejected"]
        );
        assert_eq!(out.iter().map(|o| o.id).collect::<Vec<_>>(), [Some(10), Some(500), Some(10), None]);
        assert!(out[1].error.as_deref().unwrap().contains("400"));
        assert!(out[0].error.is_none());
    }

    #[test]
    fn healthkit_names_and_units() {
        let r = one(json!({"kind": "HKQuantityTypeIdentifierHeartRate", "value": 61, "unit": "count/min", "start": "2021-11-30 07:47:59 +0200", "end": "2021-11-30 07:47:59 +0200"})).unwrap();
        assert_eq!((r.kind.as_str(), r.value, r.unit, r.tz_offset), ("heart_rate", 61.0, "/min", 120));
        let legacy = one(json!({"kind": "HKQuantityTypeIdentifierHeartRate", "value": 1.1166666666667, "unit": "count/s", "recorded_at": "2015-09-09 04:57:34 +0100"})).unwrap();
        assert!((legacy.value - 67.0).abs() < 1e-9, "{}", legacy.value);
        let spo2 = one(json!({"kind": "HKQuantityTypeIdentifierOxygenSaturation", "value": 0.97, "unit": "%", "recorded_at": "2026-11-24T08:00:00Z"})).unwrap();
        assert_eq!(spo2.value, 97.0, "HealthKit's % is a fraction");
        let ours =
            one(json!({"kind": "oxygen_saturation", "value": 97, "unit": "%", "recorded_at": "2026-11-24T08:00:00Z"}))
                .unwrap();
        assert_eq!(ours.value, 97.0, "our % is a percentage");
        let steps = one(json!({"kind": "HKQuantityTypeIdentifierStepCount", "value": 611, "unit": "count", "start": "2021-11-30 07:00:00 +0200", "end": "2021-11-30 07:10:00 +0200"})).unwrap();
        assert_eq!((steps.value, steps.unit), (611.0, "{steps}"));
        assert_eq!(steps.end_us.unwrap() - steps.at_us, 600_000_000, "an interval keeps both ends");
        assert_eq!(
            one(json!({"kind": "heart_rate", "value": 72, "unit": "bpm", "recorded_at": "2026-11-24T08:00:00Z"}))
                .unwrap()
                .value,
            72.0
        );
        assert!(
            one(json!({"kind": "heart_rate", "value": 72, "unit": "count/min", "recorded_at": "2026-11-24T08:00:00Z"}))
                .unwrap_err()
                .contains("unknown unit"),
            "HealthKit spellings need a HealthKit kind"
        );
        assert!(one(json!({"kind": "HKQuantityTypeIdentifierDietaryFiber", "value": 3, "unit": "g", "recorded_at": "2026-11-24T08:00:00Z"})).unwrap_err().contains("unknown metric kind"));
        let hc = one(json!({"kind": "HeartRateRecord.beatsPerMinute", "value": 64, "unit": "bpm", "recorded_at": "2026-11-24T08:00:00Z"})).unwrap();
        assert_eq!(hc.kind, "heart_rate");
    }

    #[test]
    fn sleep_categories_become_stage_durations() {
        let r = one(json!({"kind": "HKCategoryTypeIdentifierSleepAnalysis", "value": "HKCategoryValueSleepAnalysisAsleep", "start": "2021-01-01 00:00:00 +0200", "end": "2021-01-01 07:30:00 +0200"})).unwrap();
        assert_eq!((r.kind.as_str(), r.value, r.unit), ("sleep_asleep", 7.5, "h"));
        assert!(one(json!({"kind": "HKCategoryTypeIdentifierSleepAnalysis", "value": "HKCategoryValueSleepAnalysisAsleep", "recorded_at": "2021-01-01 00:00:00 +0200"})).unwrap_err().contains("needs \"end\""));
        assert!(one(json!({"kind": "HKCategoryTypeIdentifierSleepAnalysis", "value": "Dreaming", "start": "2021-01-01 00:00:00 +0200", "end": "2021-01-01 01:00:00 +0200"})).unwrap_err().contains("unknown sleep category"));
        let two_days = one(
            json!({"kind": "HKCategoryTypeIdentifierSleepAnalysis", "value": 1, "start": "2021-01-01 00:00:00 +0200", "end": "2021-01-03 00:00:00 +0200"}),
        );
        assert!(two_days.unwrap_err().contains("outside the accepted range"), "48 h of sleep in one record is refused");
        let session =
            one(json!({"kind": "sleep_duration", "start": "2026-11-24T00:00:00Z", "end": "2026-11-24T06:00:00Z"}))
                .unwrap();
        assert_eq!(session.value, 6.0, "a time-valued kind without value takes the interval's length");
    }

    #[test]
    fn blood_pressure_pairs_share_a_correlation() {
        let batch = vec![
            json!({"correlation": "HKCorrelationTypeIdentifierBloodPressure", "start": "2021-11-30 07:47:59 +0200",
            "systolic": {"value": 120, "unit": "mmHg"}, "diastolic": {"value": 80, "unit": "mmHg"}, "sync_id": "S1", "sync_version": 2}),
        ];
        let cat = catalog();
        let plan = Plan::new(&batch, ME, &cat).unwrap();
        assert_eq!(plan.rows.len(), 2);
        assert_eq!(plan.rows[0].kind, "blood_pressure_systolic");
        assert_eq!(plan.rows[1].kind, "blood_pressure_diastolic");
        assert!(plan.rows[0].correlation.is_some() && plan.rows[0].correlation == plan.rows[1].correlation);
        assert_eq!(plan.rows[0].sync_id.as_deref(), Some("S1#systolic"));
        assert_eq!(plan.rows[1].sync_id.as_deref(), Some("S1#diastolic"));
        assert!(plan.rows[0].primary && !plan.rows[1].primary);
        let bad_half = [
            json!({"kind": "BloodPressureRecord", "systolic": 118, "diastolic": 900, "unit": "millimetersOfMercury", "recorded_at": "2026-11-24T08:00:00Z"}),
        ];
        let plan = Plan::new(&bad_half, ME, &cat).unwrap();
        assert!(plan.rows.is_empty(), "never half-stored");
        assert!(plan.refused[0].rejection.reason.starts_with("diastolic: "), "{}", plan.refused[0].rejection.reason);
    }

    #[test]
    fn sync_versions_decide_between_update_and_duplicate() {
        let batch = vec![
            json!({"kind": "heart_rate", "value": 70, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z", "source": "w", "sync_id": "a", "sync_version": 2}),
            json!({"kind": "heart_rate", "value": 71, "unit": "/min", "recorded_at": "2026-11-24T08:01:00Z", "source": "w", "sync_id": "b", "sync_version": 1}),
            json!({"kind": "heart_rate", "value": 72, "unit": "/min", "recorded_at": "2026-11-24T08:02:00Z", "source": "w", "sync_id": "c"}),
            json!({"kind": "heart_rate", "value": 73, "unit": "/min", "recorded_at": "2026-11-24T08:03:00Z", "source": "w", "sync_id": "a", "sync_version": 3}),
        ];
        let cat = catalog();
        let mut plan = Plan::new(&batch, ME, &cat).unwrap();
        assert_eq!(plan.rows.len(), 3, "the second \"a\" repeats the first within the batch");
        assert_eq!(plan.synced_rows().count(), 3);
        plan.stored(0, 100, Some(1)); // stored older: update
        plan.stored(1, 101, Some(1)); // stored same: duplicate
        assert_eq!(plan.to_update().iter().map(|(id, r)| (*id, r.ord)).collect::<Vec<_>>(), vec![(100, 1)]);
        assert_eq!(plan.to_insert().iter().map(|r| r.ord).collect::<Vec<_>>(), vec![3]);
        plan.updated(100);
        let key = plan.rows[2].key();
        plan.inserted(&key, Some(102));
        let out = plan.finish();
        assert_eq!(
            out.iter().map(|o| (o.status, o.id)).collect::<Vec<_>>(),
            vec![
                (Status::Updated, Some(100)),
                (Status::Duplicate, Some(101)),
                (Status::Inserted, Some(102)),
                (Status::Duplicate, Some(100)),
            ]
        );
    }

    #[test]
    fn an_update_that_would_collide_is_refused() {
        let batch = vec![
            json!({"kind": "heart_rate", "value": 70, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z", "sync_id": "a", "sync_version": 5}),
        ];
        let cat = catalog();
        let mut plan = Plan::new(&batch, ME, &cat).unwrap();
        plan.stored(0, 9, Some(4));
        plan.refuse_unmade_updates(&[]);
        assert_eq!(plan.refused.len(), 1);
        assert_eq!(plan.refused[0].rejection.code, Code::ERRCODE_UNIQUE_VIOLATION);
        assert_eq!(plan.finish()[0].status, Status::Rejected);
    }

    #[test]
    fn deletions_found_or_refused() {
        let batch = vec![
            json!({"deleted": true, "sync_id": "a"}),
            json!({"deleted": true, "id": 5}),
            json!({"deleted": true, "sync_id": "zz"}),
        ];
        let cat = catalog();
        let mut plan = Plan::new(&batch, ME, &cat).unwrap();
        assert_eq!(plan.deletions.len(), 3);
        plan.deleted(1, 40);
        plan.deleted(1, 41); // the second half of a pair
        plan.deleted(2, 5);
        plan.refuse_unmatched_deletions();
        assert_eq!(plan.refused.len(), 1);
        assert!(plan.refused[0].rejection.reason.contains("no stored sample of yours with sync_id \"zz\""));
        let out = plan.finish();
        assert_eq!(
            out.iter().map(|o| (o.status, o.id)).collect::<Vec<_>>(),
            vec![(Status::Deleted, Some(40)), (Status::Deleted, Some(5)), (Status::Rejected, None),]
        );
    }

    #[test]
    fn samples_already_stored_are_duplicates_with_the_stored_id() {
        let batch = vec![hr(72.0, "2026-11-24T08:00:00Z"), hr(74.0, "2026-11-24T08:02:00Z")];
        let cat = catalog();
        let mut plan = Plan::new(&batch, ME, &cat).unwrap();
        let second = plan.rows[1].key();
        plan.inserted(&second, Some(2));
        let skipped = plan.take_not_inserted();
        assert_eq!(skipped.iter().map(|r| r.ord).collect::<Vec<_>>(), vec![1]);
        plan.found(1, Some(1));
        plan.found(1, Some(99)); // a second match does not replace the first
        plan.found(7, Some(3)); // an ord that is not in the batch is ignored
        let out = plan.finish();
        assert_eq!(out[0], Outcome { ord: 1, status: Status::Duplicate, id: Some(1), error: None });
        assert_eq!(out[1].status, Status::Inserted);
    }

    #[test]
    fn values_are_canonical_and_sources_part_of_the_key() {
        let batch = vec![
            json!({"kind": "body_weight", "value": 22.046226218487757, "unit": "[lb_av]", "recorded_at": "2026-11-24T08:00:00Z", "source": "scale"}),
            json!({"kind": "body_weight", "value": 10, "unit": "kg", "recorded_at": "2026-11-24T08:00:00Z", "source": "other scale"}),
        ];
        let cat = catalog();
        let plan = Plan::new(&batch, ME, &cat).unwrap();
        assert_eq!(plan.rows.len(), 2, "two devices measuring the same instant are two samples");
        assert!((plan.rows[0].value - 10.0).abs() < 1e-9, "{}", plan.rows[0].value);
        assert_eq!(plan.rows[0].unit, "kg");
    }
}

/// Every seeded alias of `sql/vocabulary.sql`, read as the database reads them: each names a
/// unit we know, and the conversions the platforms need come out right.
#[cfg(test)]
mod seeded_aliases {
    use super::*;
    use crate::health::rules::KindRule;
    use serde_json::json;

    /// (alias, platform, unit) rows of the seed, parsed from the SQL file itself.
    fn seeded() -> Vec<(String, String, Option<String>)> {
        let sql = include_str!("../../sql/vocabulary.sql");
        let start = sql.find("INSERT INTO health.unit_aliases").expect("alias seed");
        sql[start..]
            .lines()
            .skip(1)
            .take_while(|l| l.trim_start().starts_with('('))
            .map(|l| {
                let fields: Vec<&str> = l.trim().trim_start_matches('(').split(", ").collect();
                let text = |f: &str| f.trim_matches('\'').to_string();
                let unit = (fields[2] != "NULL").then(|| text(fields[2]));
                (text(fields[0]), text(fields[1]), unit)
            })
            .collect()
    }

    fn catalog() -> Catalog {
        let rule = |unit: &str, min: f64, max: f64, molar: Option<f64>| KindRule {
            unit: Unit::parse(unit).unwrap(),
            min: Some(min),
            max: Some(max),
            molar_mass: molar,
        };
        let mut kinds = HashMap::new();
        kinds.insert("heart_rate".to_string(), rule("/min", 20.0, 300.0, None));
        kinds.insert("oxygen_saturation".to_string(), rule("%", 20.0, 100.0, None));
        kinds.insert("active_energy".to_string(), rule("kcal", 0.0, 1e6, None));
        kinds.insert("body_height".to_string(), rule("cm", 20.0, 280.0, None));
        kinds.insert("body_weight".to_string(), rule("kg", 0.2, 700.0, None));
        kinds.insert("blood_glucose".to_string(), rule("mmol/L", 0.1, 150.0, Some(180.16)));
        kinds.insert("body_temperature".to_string(), rule("Cel", 10.0, 50.0, None));
        kinds.insert("steps".to_string(), rule("{steps}", 0.0, 1e6, None));
        kinds.insert("sleep_duration".to_string(), rule("h", 0.0, 24.0, None));
        kinds.insert("vo2_max".to_string(), rule("mL/min/kg", 5.0, 100.0, None));
        let hk = |n: &str| format!("HKQuantityTypeIdentifier{n}");
        let names: Vec<(String, &str)> = vec![
            (hk("HeartRate"), "heart_rate"),
            (hk("OxygenSaturation"), "oxygen_saturation"),
            (hk("ActiveEnergyBurned"), "active_energy"),
            (hk("Height"), "body_height"),
            (hk("BodyMass"), "body_weight"),
            (hk("BloodGlucose"), "blood_glucose"),
            (hk("BodyTemperature"), "body_temperature"),
            (hk("StepCount"), "steps"),
            (hk("VO2Max"), "vo2_max"),
            ("HKCategoryTypeIdentifierSleepAnalysis".to_string(), "sleep_duration"),
        ];
        let hk_names: Vec<(&str, &str)> = names.iter().map(|(a, k)| (a.as_str(), *k)).collect();
        let aliases = seeded();
        let alias_refs: Vec<(&str, &str, Option<&str>)> =
            aliases.iter().map(|(a, p, u)| (a.as_str(), p.as_str(), u.as_deref())).collect();
        Catalog::from_rules(kinds).with_names(
            &hk_names,
            &[("WeightRecord", "body_weight"), ("HeightRecord", "body_height")],
            &alias_refs,
        )
    }

    fn value(kind: &str, v: f64, unit: &str) -> f64 {
        let batch = [json!({"kind": kind, "value": v, "unit": unit, "recorded_at": "2026-11-24T08:00:00Z"})];
        let cat = catalog();
        let plan = Plan::new(&batch, Uuid::nil(), &cat).unwrap();
        assert!(plan.refused.is_empty(), "{kind} {v} {unit}: {}", plan.refused[0].rejection.reason);
        plan.rows[0].value
    }

    #[test]
    fn every_seeded_alias_names_a_known_unit() {
        let aliases = seeded();
        assert!(aliases.len() >= 45, "the seed was read ({} rows)", aliases.len());
        for (alias, platform, unit) in &aliases {
            assert!(["any", "healthkit", "health_connect"].contains(&platform.as_str()), "{alias}: {platform}");
            if let Some(u) = unit {
                assert!(Unit::parse(u).is_some(), "{alias} ({platform}) maps to unknown unit {u}");
            }
        }
    }

    #[test]
    fn the_platforms_conversions() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        let hk = |n: &str| format!("HKQuantityTypeIdentifier{n}");
        assert_eq!(value(&hk("OxygenSaturation"), 0.97, "%"), 97.0, "HealthKit's % is a fraction");
        assert_eq!(value("oxygen_saturation", 97.0, "%"), 97.0);
        assert_eq!(value(&hk("HeartRate"), 1.2, "count/s"), 72.0);
        assert_eq!(value(&hk("HeartRate"), 61.0, "count/min"), 61.0);
        assert_eq!(value("heart_rate", 70.0, "bpm"), 70.0);
        assert_eq!(value(&hk("ActiveEnergyBurned"), 250.0, "Cal"), 250.0);
        assert!(close(value(&hk("ActiveEnergyBurned"), 418.4, "kJ"), 100.0));
        assert_eq!(value(&hk("Height"), 6.0, "ft"), 182.88);
        assert_eq!(value(&hk("Height"), 70.0, "in"), 177.8);
        assert!(close(value(&hk("BodyMass"), 154.0, "lb"), 69.85322498));
        assert!(close(value(&hk("BodyMass"), 11.0, "st"), 69.85322498));
        assert!(close(value(&hk("BodyMass"), 16.0, "oz"), 0.45359237));
        assert!(close(value(&hk("BloodGlucose"), 100.0, "mg/dL"), 5.55062166963));
        assert_eq!(value(&hk("BloodGlucose"), 5.5, "mmol<180.15588000005408>/L"), 5.5);
        assert_eq!(value(&hk("BodyTemperature"), 98.6, "degF"), 37.0);
        assert_eq!(value(&hk("StepCount"), 611.0, "count"), 611.0);
        assert_eq!(value(&hk("VO2Max"), 42.39, "mL/min·kg"), 42.39);
        // HealthKit's own spellings stay HealthKit's: a canonical kind does not take them.
        let batch =
            [json!({"kind": "sleep_duration", "value": 7.5, "unit": "hr", "recorded_at": "2026-11-24T08:00:00Z"})];
        let cat = catalog();
        let plan = Plan::new(&batch, Uuid::nil(), &cat).unwrap();
        assert_eq!(plan.refused.len(), 1, "'hr' is a healthkit-only alias");
        assert!(close(value("WeightRecord", 154.0, "pounds"), 69.85322498));
        assert_eq!(value("HeightRecord", 1.8, "meters"), 180.0);
    }
}
