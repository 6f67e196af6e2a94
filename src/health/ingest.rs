//! `health.ingest(tbl, samples)`: one wearable sync batch in, one outcome per sample out.
//!
//! Every element is validated here in Rust (shape, owner, kind, unit, range); the valid ones go
//! into the table with ONE `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING`,
//! the rejected ones into `health.rejected_samples` with one more insert, so nothing a device
//! sent is lost and the cost per sample is a few microseconds, not a statement. The function
//! runs with the caller's rights: RLS and grants of `tbl` apply exactly as to a plain INSERT.
use super::catalog;
use super::rules::Invalid;
use super::sample::{self, Rejection, PG_EPOCH_UNIX_US};
use crate::auth::identity;
use crate::error;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;
use std::collections::HashMap;

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

#[derive(Clone, Debug)]
pub struct Outcome {
    pub ord: i32,
    pub status: Status,
    /// inserted/duplicate: the table row's id; rejected: the health.rejected_samples row's id.
    pub id: Option<i64>,
    pub error: Option<String>,
}

/// A valid sample in canonical form.
struct Row {
    ord: i32,
    kind: String,
    value: f64,
    unit: &'static str,
    at_us: i64,
    source: Option<String>,
}

type Key = (String, i64, Option<String>);

/// The five-character SQLSTATE of a pgrx error code (MAKE_SQLSTATE packs 6 bits per char).
pub fn sqlstate(code: error::Code) -> String {
    let packed = code as isize;
    (0..5)
        .map(|i| char::from(((packed >> (6 * i)) & 0x3F) as u8 + b'0'))
        .collect()
}

fn pg_time(unix_us: i64) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(unix_us - PG_EPOCH_UNIX_US)
        .unwrap_or_else(|_| error::bad_argument("health.ingest: recorded_at out of range"))
}

fn table_name(tbl: pg_sys::Oid) -> String {
    Spi::get_one_with_args::<String>(
        "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c \
           JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
          WHERE c.oid OPERATOR(pg_catalog.=) $1",
        &[tbl.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| error::bad_argument("health.ingest: no such table"))
}

fn spi_failed(what: &str, e: pgrx::spi::Error) -> ! {
    error::raise(
        error::Code::ERRCODE_INTERNAL_ERROR,
        format!("health.ingest: {what}: {e}"),
    )
}

pub fn ingest(tbl: pg_sys::Oid, samples: &Value) -> Vec<Outcome> {
    let caller = identity::current().sub.unwrap_or_else(|| {
        error::not_authorized(
            "health.ingest: no authenticated user (call auth.authenticate first); samples are stored as the caller's",
        )
    });
    let Value::Array(elements) = samples else {
        error::bad_argument("health.ingest: samples must be a JSON array of sample objects")
    };
    let table = table_name(tbl);
    let catalog = catalog::current();

    let mut outcomes: Vec<Outcome> = Vec::with_capacity(elements.len());
    let mut rows: Vec<Row> = Vec::new();
    let mut rejected: Vec<(i32, &Value, Rejection)> = Vec::new();
    let mut first_of: HashMap<Key, i32> = HashMap::new();
    let mut repeats: Vec<(i32, i32)> = Vec::new(); // (ord, ord of the first sample with its key)

    for (i, element) in elements.iter().enumerate() {
        let ord = i32::try_from(i + 1).unwrap_or_else(|_| error::bad_argument("health.ingest: batch too large"));
        outcomes.push(Outcome {
            ord,
            status: Status::Rejected,
            id: None,
            error: None,
        });
        let checked = sample::parse_sample(element, caller).and_then(|s| {
            let invalid = |e: Invalid| Rejection {
                code: e.code(),
                reason: e.to_string(),
            };
            let rule = catalog
                .rule(&s.kind)
                .ok_or_else(|| invalid(Invalid::UnknownKind(s.kind.clone())))?;
            let value = super::rules::normalize(&s.kind, rule, s.value, &s.unit).map_err(invalid)?;
            Ok(Row {
                ord,
                kind: s.kind,
                value,
                unit: rule.unit.code(),
                at_us: s.recorded_at_unix_us,
                source: s.source,
            })
        });
        match checked {
            Err(r) => rejected.push((ord, element, r)),
            Ok(row) => {
                let key = (row.kind.clone(), row.at_us, row.source.clone());
                match first_of.get(&key) {
                    Some(&first) => repeats.push((ord, first)),
                    None => {
                        first_of.insert(key, ord);
                        rows.push(row);
                    }
                }
            }
        }
    }

    let caller_pg = crate::auth::to_pg_uuid(caller);
    if !rows.is_empty() {
        insert_valid(&table, caller_pg, &rows, &first_of, &mut outcomes);
        let unresolved: Vec<&Row> = rows
            .iter()
            .filter(|r| outcomes[r.ord as usize - 1].status != Status::Inserted)
            .collect();
        if !unresolved.is_empty() {
            find_existing(&table, caller_pg, &unresolved, &mut outcomes);
        }
    }
    for (ord, first) in repeats {
        let id = outcomes[first as usize - 1].id;
        let o = &mut outcomes[ord as usize - 1];
        o.status = Status::Duplicate;
        o.id = id;
    }
    if !rejected.is_empty() {
        store_rejected(&table, caller_pg, &rejected, &mut outcomes);
    }
    outcomes
}

/// The one INSERT for every valid, batch-unique sample; marks the inserted ones.
fn insert_valid(table: &str, caller: pgrx::Uuid, rows: &[Row], first_of: &HashMap<Key, i32>, outcomes: &mut [Outcome]) {
    let sql = format!(
        "INSERT INTO {table} AS t (user_id, kind, value, unit, recorded_at, source) \
         SELECT $1, s.kind, s.value, s.unit, s.recorded_at, s.source \
           FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.float8[]), \
                           pg_catalog.unnest($4::pg_catalog.text[]), pg_catalog.unnest($5::pg_catalog.timestamptz[]), \
                           pg_catalog.unnest($6::pg_catalog.text[])) \
                AS s(kind, value, unit, recorded_at, source) \
         ON CONFLICT DO NOTHING \
         RETURNING t.id::pg_catalog.int8, t.kind::pg_catalog.text, t.recorded_at, t.source::pg_catalog.text"
    );
    let kinds: Vec<String> = rows.iter().map(|r| r.kind.clone()).collect();
    let values: Vec<f64> = rows.iter().map(|r| r.value).collect();
    let units: Vec<String> = rows.iter().map(|r| r.unit.to_string()).collect();
    let times: Vec<TimestampWithTimeZone> = rows.iter().map(|r| pg_time(r.at_us)).collect();
    let sources: Vec<Option<String>> = rows.iter().map(|r| r.source.clone()).collect();
    Spi::connect_mut(|c| {
        let returned = c
            .update(
                &sql,
                None,
                &[
                    caller.into(),
                    kinds.into(),
                    values.into(),
                    units.into(),
                    times.into(),
                    sources.into(),
                ],
            )
            .unwrap_or_else(|e| spi_failed("insert", e));
        for row in returned {
            let id: Option<i64> = row.get(1).unwrap_or_else(|e| spi_failed("id", e));
            let kind: Option<String> = row.get(2).unwrap_or_else(|e| spi_failed("kind", e));
            let at: Option<TimestampWithTimeZone> = row.get(3).unwrap_or_else(|e| spi_failed("recorded_at", e));
            let source: Option<String> = row.get(4).unwrap_or_else(|e| spi_failed("source", e));
            let (Some(kind), Some(at)) = (kind, at) else { continue };
            let key = (kind, at.into_inner() + PG_EPOCH_UNIX_US, source);
            if let Some(&ord) = first_of.get(&key) {
                let o = &mut outcomes[ord as usize - 1];
                o.status = Status::Inserted;
                o.id = id;
            }
        }
    });
}

/// Valid samples the INSERT skipped were already stored: report them as duplicates with the
/// id of the stored row (one query for all of them).
fn find_existing(table: &str, caller: pgrx::Uuid, rows: &[&Row], outcomes: &mut [Outcome]) {
    for r in rows {
        outcomes[r.ord as usize - 1].status = Status::Duplicate;
    }
    let sql = format!(
        "SELECT s.ord, t.id::pg_catalog.int8 \
           FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.int4[]), pg_catalog.unnest($3::pg_catalog.text[]), \
                           pg_catalog.unnest($4::pg_catalog.timestamptz[]), pg_catalog.unnest($5::pg_catalog.text[])) \
                AS s(ord, kind, recorded_at, source) \
           JOIN {table} AS t ON t.user_id OPERATOR(pg_catalog.=) $1 AND t.kind OPERATOR(pg_catalog.=) s.kind \
                AND t.recorded_at OPERATOR(pg_catalog.=) s.recorded_at \
                AND (t.source OPERATOR(pg_catalog.=) s.source OR (t.source IS NULL AND s.source IS NULL))"
    );
    let ords: Vec<i32> = rows.iter().map(|r| r.ord).collect();
    let kinds: Vec<String> = rows.iter().map(|r| r.kind.clone()).collect();
    let times: Vec<TimestampWithTimeZone> = rows.iter().map(|r| pg_time(r.at_us)).collect();
    let sources: Vec<Option<String>> = rows.iter().map(|r| r.source.clone()).collect();
    Spi::connect(|c| {
        let found = c
            .select(
                &sql,
                None,
                &[caller.into(), ords.into(), kinds.into(), times.into(), sources.into()],
            )
            .unwrap_or_else(|e| spi_failed("duplicate lookup", e));
        for row in found {
            let ord: Option<i32> = row.get(1).unwrap_or_else(|e| spi_failed("ord", e));
            let id: Option<i64> = row.get(2).unwrap_or_else(|e| spi_failed("id", e));
            if let Some(ord) = ord {
                outcomes[ord as usize - 1].id = id;
            }
        }
    });
}

/// Keep every rejected sample, as sent, with its reason (one insert). A sample rejected
/// before (a re-sent batch) is not stored again: it reports the id of the stored copy.
fn store_rejected(table: &str, caller: pgrx::Uuid, rejected: &[(i32, &Value, Rejection)], outcomes: &mut [Outcome]) {
    let ords: Vec<i32> = rejected.iter().map(|(o, _, _)| *o).collect();
    let samples: Vec<JsonB> = rejected.iter().map(|(_, v, _)| JsonB((*v).clone())).collect();
    let reasons: Vec<String> = rejected.iter().map(|(_, _, r)| r.reason.clone()).collect();
    let states: Vec<String> = rejected.iter().map(|(_, _, r)| sqlstate(r.code)).collect();
    for (ord, _, r) in rejected {
        outcomes[*ord as usize - 1].error = Some(r.reason.clone());
    }
    let mut stored = 0;
    Spi::connect_mut(|c| {
        let returned = c
            .update(
                "INSERT INTO health.rejected_samples (user_id, target_table, ord, sample, reason, sqlstate) \
                 SELECT $1, $2, s.ord, s.sample, s.reason, s.sqlstate \
                   FROM ROWS FROM (pg_catalog.unnest($3::pg_catalog.int4[]), pg_catalog.unnest($4::pg_catalog.jsonb[]), \
                                   pg_catalog.unnest($5::pg_catalog.text[]), pg_catalog.unnest($6::pg_catalog.text[])) \
                        AS s(ord, sample, reason, sqlstate) \
                 ON CONFLICT DO NOTHING \
                 RETURNING id, ord",
                None,
                &[caller.into(), table.into(), ords.clone().into(), samples.into(), reasons.into(), states.into()],
            )
            .unwrap_or_else(|e| spi_failed("storing rejected samples", e));
        for row in returned {
            let id: Option<i64> = row.get(1).unwrap_or_else(|e| spi_failed("id", e));
            let ord: Option<i32> = row.get(2).unwrap_or_else(|e| spi_failed("ord", e));
            if let Some(ord) = ord {
                outcomes[ord as usize - 1].id = id;
                stored += 1;
            }
        }
    });
    if stored == rejected.len() {
        return;
    }
    // Stored before (or twice in this batch): find the stored copy.
    let samples: Vec<JsonB> = rejected.iter().map(|(_, v, _)| JsonB((*v).clone())).collect();
    Spi::connect(|c| {
        let found = c
            .select(
                "SELECT s.ord, r.id \
                   FROM ROWS FROM (pg_catalog.unnest($3::pg_catalog.int4[]), pg_catalog.unnest($4::pg_catalog.jsonb[])) AS s(ord, sample) \
                   JOIN health.rejected_samples r ON r.user_id OPERATOR(pg_catalog.=) $1 \
                        AND r.target_table OPERATOR(pg_catalog.=) $2 \
                        AND r.sample_md5 OPERATOR(pg_catalog.=) pg_catalog.md5(s.sample::pg_catalog.text)::pg_catalog.uuid",
                None,
                &[caller.into(), table.into(), ords.into(), samples.into()],
            )
            .unwrap_or_else(|e| spi_failed("rejected sample lookup", e));
        for row in found {
            let ord: Option<i32> = row.get(1).unwrap_or_else(|e| spi_failed("ord", e));
            let id: Option<i64> = row.get(2).unwrap_or_else(|e| spi_failed("id", e));
            if let Some(ord) = ord {
                let o = &mut outcomes[ord as usize - 1];
                if o.id.is_none() {
                    o.id = id;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates() {
        assert_eq!(sqlstate(error::Code::ERRCODE_INVALID_PARAMETER_VALUE), "22023");
        assert_eq!(sqlstate(error::Code::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE), "22003");
        assert_eq!(sqlstate(error::Code::ERRCODE_INVALID_TEXT_REPRESENTATION), "22P02");
        assert_eq!(sqlstate(error::Code::ERRCODE_INSUFFICIENT_PRIVILEGE), "42501");
    }
}
