//! `health.ingest(tbl, samples)`: one wearable sync batch in, one outcome per sample out.
//!
//! `plan.rs` validates every element in Rust (shape, owner, kind, unit, range) and de-duplicates
//! the batch; this file runs the statements: the valid samples go into the table with ONE
//! `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING`, the rejected ones into
//! `health.rejected_samples` with one more insert, so nothing a device sent is lost and the cost
//! per sample is a few microseconds, not a statement. The function runs with the caller's
//! rights: RLS and grants of `tbl` apply exactly as to a plain INSERT.
use super::catalog;
use super::plan::{Outcome, Plan, Refused, Row};
use super::sample::PG_EPOCH_UNIX_US;
use crate::auth::identity;
use crate::error;
use crate::pg::relation::qualified_name;
use crate::pg::uuid::to_pg;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;

/// The five-character SQLSTATE of a pgrx error code (MAKE_SQLSTATE packs 6 bits per char).
pub fn sqlstate(code: error::Code) -> String {
    let packed = code as isize;
    (0..5).map(|i| char::from(((packed >> (6 * i)) & 0x3F) as u8 + b'0')).collect()
}

fn pg_time(unix_us: i64) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(unix_us - PG_EPOCH_UNIX_US)
        .unwrap_or_else(|_| error::bad_argument("health.ingest: recorded_at out of range"))
}

fn spi_failed(what: &str, e: pgrx::spi::Error) -> ! {
    error::raise(error::Code::ERRCODE_INTERNAL_ERROR, format!("health.ingest: {what}: {e}"))
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
    let table = qualified_name(tbl).as_sql().to_string();
    let catalog = catalog::current();
    let mut plan =
        Plan::new(elements, caller, &catalog).unwrap_or_else(|_| error::bad_argument("health.ingest: batch too large"));

    let caller = to_pg(caller);
    if !plan.rows.is_empty() {
        insert_valid(&table, caller, &mut plan);
        let skipped = plan.take_not_inserted();
        if !skipped.is_empty() {
            find_existing(&table, caller, &skipped, &mut plan);
        }
    }
    if !plan.refused.is_empty() {
        store_rejected(&table, caller, &mut plan);
    }
    plan.finish()
}

/// The one INSERT for every valid, batch-unique sample; marks the inserted ones.
fn insert_valid(table: &str, caller: pgrx::Uuid, plan: &mut Plan) {
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
    let rows = &plan.rows;
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
                &[caller.into(), kinds.into(), values.into(), units.into(), times.into(), sources.into()],
            )
            .unwrap_or_else(|e| spi_failed("insert", e));
        for row in returned {
            let id: Option<i64> = row.get(1).unwrap_or_else(|e| spi_failed("id", e));
            let kind: Option<String> = row.get(2).unwrap_or_else(|e| spi_failed("kind", e));
            let at: Option<TimestampWithTimeZone> = row.get(3).unwrap_or_else(|e| spi_failed("recorded_at", e));
            let source: Option<String> = row.get(4).unwrap_or_else(|e| spi_failed("source", e));
            let (Some(kind), Some(at)) = (kind, at) else { continue };
            plan.inserted(&(kind, at.into_inner() + PG_EPOCH_UNIX_US, source), id);
        }
    });
}

/// Valid samples the INSERT skipped were already stored: report them as duplicates with the
/// id of the stored row (one query for all of them).
fn find_existing(table: &str, caller: pgrx::Uuid, rows: &[Row], plan: &mut Plan) {
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
            .select(&sql, None, &[caller.into(), ords.into(), kinds.into(), times.into(), sources.into()])
            .unwrap_or_else(|e| spi_failed("duplicate lookup", e));
        for row in found {
            let ord: Option<i32> = row.get(1).unwrap_or_else(|e| spi_failed("ord", e));
            let id: Option<i64> = row.get(2).unwrap_or_else(|e| spi_failed("id", e));
            if let Some(ord) = ord {
                plan.found(ord, id);
            }
        }
    });
}

/// Keep every rejected sample, as sent, with its reason (one insert). A sample rejected
/// before (a re-sent batch) is not stored again: it reports the id of the stored copy.
fn store_rejected(table: &str, caller: pgrx::Uuid, plan: &mut Plan) {
    let refused: &[Refused] = &plan.refused;
    let count = refused.len();
    let ords: Vec<i32> = refused.iter().map(|r| r.ord).collect();
    let samples: Vec<JsonB> = refused.iter().map(|r| JsonB(r.element.clone())).collect();
    let reasons: Vec<String> = refused.iter().map(|r| r.rejection.reason.clone()).collect();
    let states: Vec<String> = refused.iter().map(|r| sqlstate(r.rejection.code)).collect();
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
                plan.found(ord, id);
                stored += 1;
            }
        }
    });
    if stored == count {
        return;
    }
    // Stored before (or twice in this batch): find the stored copy.
    let samples: Vec<JsonB> = plan.refused.iter().map(|r| JsonB(r.element.clone())).collect();
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
                plan.found(ord, id);
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
