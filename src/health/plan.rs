//! The pure part of `health.ingest`: parse and validate every element, de-duplicate the batch,
//! and match what the database returns back to the elements. No Postgres here, so every rule
//! is unit-tested below; `ingest.rs` only runs the statements the plan asks for.
use super::catalog::Catalog;
use super::rules::Invalid;
use super::sample::{self, Rejection};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Inserted,
    Duplicate,
    Rejected,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Inserted => "inserted",
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
    /// inserted/duplicate: the table row's id; rejected: the health.rejected_samples row's id.
    pub id: Option<i64>,
    pub error: Option<String>,
}

/// A valid sample in canonical form, the first of its key in the batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub ord: i32,
    pub kind: String,
    pub value: f64,
    pub unit: &'static str,
    /// Microseconds since 1970-01-01 00:00 UTC.
    pub at_us: i64,
    pub source: Option<String>,
}

/// What makes a re-sent sample a duplicate (the table's unique key, less the owner).
pub type Key = (String, i64, Option<String>);

impl Row {
    pub fn key(&self) -> Key {
        (self.kind.clone(), self.at_us, self.source.clone())
    }
}

/// An element refused before reaching the table, kept as sent.
pub struct Refused<'a> {
    pub ord: i32,
    pub element: &'a Value,
    pub rejection: Rejection,
}

pub struct Plan<'a> {
    outcomes: Vec<Outcome>,
    /// Valid samples to insert, one per key.
    pub rows: Vec<Row>,
    pub refused: Vec<Refused<'a>>,
    first_of: HashMap<Key, i32>,
    /// (ord, ord of the first element with the same key): reported as duplicates of it.
    repeats: Vec<(i32, i32)>,
}

/// A batch larger than an `int` can number.
#[derive(Debug, PartialEq)]
pub struct BatchTooLarge;

impl<'a> Plan<'a> {
    /// Validate each element as `caller`'s sample against `catalog`.
    pub fn new(elements: &'a [Value], caller: Uuid, catalog: &Catalog) -> Result<Plan<'a>, BatchTooLarge> {
        let mut plan = Plan {
            outcomes: Vec::with_capacity(elements.len()),
            rows: Vec::new(),
            refused: Vec::new(),
            first_of: HashMap::new(),
            repeats: Vec::new(),
        };
        for (i, element) in elements.iter().enumerate() {
            let ord = i32::try_from(i + 1).map_err(|_| BatchTooLarge)?;
            plan.outcomes.push(Outcome { ord, status: Status::Rejected, id: None, error: None });
            match validate(element, caller, catalog, ord) {
                Err(rejection) => {
                    plan.outcomes[i].error = Some(rejection.reason.clone());
                    plan.refused.push(Refused { ord, element, rejection });
                }
                Ok(row) => match plan.first_of.get(&row.key()) {
                    Some(&first) => plan.repeats.push((ord, first)),
                    None => {
                        plan.first_of.insert(row.key(), ord);
                        plan.rows.push(row);
                    }
                },
            }
        }
        Ok(plan)
    }

    fn outcome(&mut self, ord: i32) -> &mut Outcome {
        &mut self.outcomes[ord as usize - 1]
    }

    /// The INSERT returned a row with `key`: that sample was inserted as `id`.
    pub fn inserted(&mut self, key: &Key, id: Option<i64>) {
        if let Some(&ord) = self.first_of.get(key) {
            let o = self.outcome(ord);
            o.status = Status::Inserted;
            o.id = id;
        }
    }

    /// The valid samples the INSERT skipped (already stored): now reported as duplicates, their
    /// stored ids still to be found.
    pub fn take_not_inserted(&mut self) -> Vec<Row> {
        let rows: Vec<Row> = self
            .rows
            .iter()
            .filter(|r| self.outcomes[r.ord as usize - 1].status != Status::Inserted)
            .cloned()
            .collect();
        for r in &rows {
            self.outcome(r.ord).status = Status::Duplicate;
        }
        rows
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
        }
        self.outcomes
    }
}

fn validate(element: &Value, caller: Uuid, catalog: &Catalog, ord: i32) -> Result<Row, Rejection> {
    let s = sample::parse_sample(element, caller)?;
    let invalid = |e: Invalid| Rejection { code: e.code(), reason: e.to_string() };
    let rule = catalog.rule(&s.kind).ok_or_else(|| invalid(Invalid::UnknownKind(s.kind.clone())))?;
    let value = super::rules::normalize(&s.kind, rule, s.value, &s.unit).map_err(invalid)?;
    Ok(Row { ord, kind: s.kind, value, unit: rule.unit.code(), at_us: s.recorded_at_unix_us, source: s.source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::rules::KindRule;
    use crate::health::units::Unit;
    use serde_json::json;

    fn catalog() -> Catalog {
        let mut kinds = HashMap::new();
        kinds.insert(
            "heart_rate".to_string(),
            KindRule { unit: Unit::parse("/min").unwrap(), min: Some(20.0), max: Some(300.0), molar_mass: None },
        );
        kinds.insert(
            "body_weight".to_string(),
            KindRule { unit: Unit::parse("kg").unwrap(), min: Some(0.2), max: Some(700.0), molar_mass: None },
        );
        Catalog::from_rules(kinds)
    }
    fn hr(value: f64, at: &str) -> Value {
        json!({"kind": "heart_rate", "value": value, "unit": "/min", "recorded_at": at})
    }
    const ME: Uuid = Uuid::from_u128(0x1111_1111_1111_4111_8111_1111_1111_1111);

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
        assert_eq!(plan.refused[0].rejection.code, pgrx::PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE);
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
    fn a_returned_key_that_was_not_sent_changes_nothing() {
        let batch = vec![hr(72.0, "2026-11-24T08:00:00Z")];
        let cat = catalog();
        let mut plan = Plan::new(&batch, ME, &cat).unwrap();
        plan.inserted(&("heart_rate".into(), 0, None), Some(5));
        assert_eq!(plan.take_not_inserted().len(), 1);
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
