//! `health.ingest(tbl, samples)`: one wearable sync batch in, one outcome per element out.
//!
//! `plan.rs` reads every element against the catalog in Rust and de-duplicates the batch; this
//! file runs the statements, each set-based (one per step, whatever the batch size):
//! 1. deletions (`DELETE … USING unnest(…)`), so a batch can delete and re-add;
//! 2. the stored versions of synced samples (one SELECT);
//! 3. new samples (`INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING`), then one
//!    lookup for the ones already stored — or, for a batch of new samples, the same INSERT without
//!    `ON CONFLICT` (below);
//! 4. newer versions of stored samples (`UPDATE … FROM unnest(…)`);
//! 5. the rejected elements into `health.rejected_samples`, so nothing a device sent is lost.
//!
//! The function runs with the caller's rights: RLS and grants of `tbl` apply exactly as to plain
//! statements, and the table's triggers (validation, realtime) fire as usual.
//!
//! **New samples without `ON CONFLICT`.** `ON CONFLICT DO NOTHING` probes every unique index
//! before each row and inserts it speculatively (a second WAL record per row): a fifth of a 10k
//! batch's time. A sync batch is mostly samples never seen before, so when nothing stored of the
//! caller's lies in the batch's time range (one range scan per kind), the rows go in with a plain
//! INSERT. That is exact only while no other writer of the caller's can add one of those samples
//! between the check and the INSERT, so the fast path is taken only
//! - in READ COMMITTED (each statement reads with a fresh snapshot), on a table with realtime
//!   (whose change feed already orders one user's writers by the user's counter row), and
//! - after taking that same row lock first, before any of the batch's reads: a second `ingest` of
//!   the same user (a phone re-sending a batch whose answer it missed) waits for the first to
//!   commit and then finds its samples stored. Other writers take that lock at their first write
//!   too, so the order of locks is the feed's as before.
//!
//! What is not covered: a plain INSERT of one of the batch's samples by a client outside `ingest`
//! in the instant between the check and the INSERT makes the batch fail — `23505`, or `40P01`
//! when that writer then waits for the lock — with nothing stored; sent again, the sample reports
//! `duplicate`. Everything else — REPEATABLE READ and SERIALIZABLE, tables without realtime,
//! batches of fewer than `FAST_PATH_MIN_ROWS` new samples, a range with a stored sample — takes
//! the general path.
use super::catalog;
use super::plan::{Outcome, Plan, Row};
use super::timestamp::PG_EPOCH_UNIX_US;
use crate::auth::identity;
use crate::error;
use crate::pg::relation::qualified_name;
use crate::pg::uuid::to_pg;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;

/// New samples a batch needs before the fast path pays for its two extra statements (the lock and
/// the range check) with what `ON CONFLICT` costs per row.
pub const FAST_PATH_MIN_ROWS: usize = 32;

/// The columns `health.ingest` writes besides kind/value/unit/recorded_at/source.
pub const COLUMNS_0_2: [&str; 5] = ["ended_at", "tz_offset", "sync_id", "sync_version", "correlation_id"];

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
    error::spi_failed(&format!("health.ingest: {what}"), e)
}

/// Tables made by 0.1.0's create_metric_table and not updated lack the interval and sync columns.
fn require_columns(tbl: pg_sys::Oid, table: &str) {
    let missing: Vec<String> = Spi::connect(|c| {
        c.select(
            "SELECT pg_catalog.array_agg(w.name ORDER BY w.name) FROM pg_catalog.unnest($2::pg_catalog.text[]) AS w(name) \
              WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1 \
                                   AND a.attname = w.name AND NOT a.attisdropped)",
            Some(1),
            &[tbl.into(), COLUMNS_0_2.map(String::from).to_vec().into()],
        )
        .and_then(|t| t.first().get_one::<Vec<String>>())
        .unwrap_or_else(|e| spi_failed("column check", e))
        .unwrap_or_default()
    });
    if !missing.is_empty() {
        error::raise(
            error::Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!(
                "health.ingest: table {table} lacks column(s) {} (tables made by health.create_metric_table have them; \
                 ALTER EXTENSION health_rls UPDATE adds them to older ones)",
                missing.join(", ")
            ),
        );
    }
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
    let table = qualified_name(tbl).to_string();
    require_columns(tbl, &table);
    let catalog = catalog::current();
    let mut plan =
        Plan::new(elements, caller, &catalog).unwrap_or_else(|_| error::bad_argument("health.ingest: batch too large"));

    let caller = to_pg(caller);
    // Before any read of the batch: what the fast path's check reads must stay true until it writes.
    let fast = plan.to_insert().len() >= FAST_PATH_MIN_ROWS && !uses_transaction_snapshot() && lock_feed(tbl, caller);
    if !plan.deletions.is_empty() {
        delete(&table, caller, &mut plan);
    }
    if plan.synced_rows().next().is_some() {
        find_synced(&table, caller, &mut plan);
    }
    let inserts: Vec<Row> = plan.to_insert().into_iter().cloned().collect();
    if !inserts.is_empty() {
        let plain = fast && inserts.len() >= FAST_PATH_MIN_ROWS && !stored_in_range(&table, caller, &inserts);
        insert(&table, caller, &inserts, &mut plan, plain);
        let skipped = plan.take_not_inserted();
        if !skipped.is_empty() {
            find_existing(&table, caller, &skipped, &mut plan);
        }
    }
    let updates: Vec<(i64, Row)> = plan.to_update().into_iter().map(|(id, r)| (id, r.clone())).collect();
    if !updates.is_empty() {
        update(&table, caller, &updates, &mut plan);
    }
    if !plan.refused.is_empty() {
        store_rejected(&table, caller, &mut plan);
    }
    plan.finish()
}

/// REPEATABLE READ or SERIALIZABLE: every statement reads the transaction's first snapshot.
fn uses_transaction_snapshot() -> bool {
    // SAFETY: a plain read of the backend's current isolation level.
    unsafe { pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as std::ffi::c_int }
}

/// Take the lock the change feed takes at a realtime table's first write of the caller's rows —
/// the caller's `health_rls.change_counters` row, held until commit — now, if `tbl` has realtime
/// on. True when taken. Runs as the extension owner (the caller has no rights on the feed's
/// tables; the realtime trigger runs as the owner too); one fixed statement on the extension's
/// own tables and catalogs, so no code of anyone else's runs with those rights.
fn lock_feed(tbl: pg_sys::Oid, caller: pgrx::Uuid) -> bool {
    crate::pg::as_caller::as_extension_owner(|| {
        Spi::connect_mut(|c| {
            c.update(
                "INSERT INTO health_rls.change_counters AS k (user_id) \
                 SELECT $1 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g \
                                          WHERE g.tgrelid OPERATOR(pg_catalog.=) $2 \
                                            AND g.tgfoid OPERATOR(pg_catalog.=) 'health_rls.realtime_notify()'::pg_catalog.regprocedure \
                                            AND g.tgenabled OPERATOR(pg_catalog.<>) 'D') \
                 ON CONFLICT (user_id) DO UPDATE SET last_seq = k.last_seq RETURNING true",
                None,
                &[caller.into(), tbl.into()],
            )
            .map(|t| !t.is_empty())
        })
        .unwrap_or_else(|e| spi_failed("locking the change feed", e))
    })
}

/// Whether the caller has any stored sample of the rows' kinds inside the rows' time range of
/// that kind (one range scan per kind; read with a fresh snapshot, after the lock).
fn stored_in_range(table: &str, caller: pgrx::Uuid, rows: &[Row]) -> bool {
    let mut ranges: std::collections::BTreeMap<&str, (i64, i64)> = std::collections::BTreeMap::new();
    for r in rows {
        let range = ranges.entry(r.kind.as_str()).or_insert((r.at_us, r.at_us));
        range.0 = range.0.min(r.at_us);
        range.1 = range.1.max(r.at_us);
    }
    let kinds: Vec<String> = ranges.keys().map(|k| k.to_string()).collect();
    let from: Vec<TimestampWithTimeZone> = ranges.values().map(|r| pg_time(r.0)).collect();
    let until: Vec<TimestampWithTimeZone> = ranges.values().map(|r| pg_time(r.1)).collect();
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.timestamptz[]), \
                                                pg_catalog.unnest($4::pg_catalog.timestamptz[])) AS r(kind, lo, hi) \
                          JOIN {table} AS t ON t.user_id OPERATOR(pg_catalog.=) $1 AND t.kind OPERATOR(pg_catalog.=) r.kind \
                               AND t.recorded_at OPERATOR(pg_catalog.>=) r.lo AND t.recorded_at OPERATOR(pg_catalog.<=) r.hi)"
    );
    // `update`, not `select`: a read-write statement takes a fresh snapshot in READ COMMITTED.
    Spi::connect_mut(|c| {
        c.update(&sql, None, &[caller.into(), kinds.into(), from.into(), until.into()])
            .and_then(|t| t.first().get_one::<bool>())
    })
    .unwrap_or_else(|e| spi_failed("range check", e))
    .unwrap_or(true)
}

/// Row columns as arrays, one per column, for `unnest`.
struct Columns {
    kinds: Vec<String>,
    values: Vec<f64>,
    units: Vec<String>,
    starts: Vec<TimestampWithTimeZone>,
    ends: Vec<Option<TimestampWithTimeZone>>,
    offsets: Vec<i32>,
    sources: Vec<Option<String>>,
    sync_ids: Vec<Option<String>>,
    versions: Vec<Option<i64>>,
    correlations: Vec<Option<pgrx::Uuid>>,
}

impl Columns {
    fn of<'r>(rows: impl Iterator<Item = &'r Row> + Clone) -> Columns {
        Columns {
            kinds: rows.clone().map(|r| r.kind.clone()).collect(),
            values: rows.clone().map(|r| r.value).collect(),
            units: rows.clone().map(|r| r.unit.to_string()).collect(),
            starts: rows.clone().map(|r| pg_time(r.at_us)).collect(),
            ends: rows.clone().map(|r| r.end_us.map(pg_time)).collect(),
            offsets: rows.clone().map(|r| r.tz_offset).collect(),
            sources: rows.clone().map(|r| r.source.clone()).collect(),
            sync_ids: rows.clone().map(|r| r.sync_id.clone()).collect(),
            versions: rows.clone().map(|r| r.sync_version).collect(),
            correlations: rows.map(|r| r.correlation.map(to_pg)).collect(),
        }
    }
}

/// The deletions, matched by id or by sync id (a pair's two halves by their shared one).
fn delete(table: &str, caller: pgrx::Uuid, plan: &mut Plan) {
    let sql = format!(
        "DELETE FROM {table} AS t USING ROWS FROM (pg_catalog.unnest($2::pg_catalog.int4[]), pg_catalog.unnest($3::pg_catalog.text[]), \
                                 pg_catalog.unnest($4::pg_catalog.int8[]), pg_catalog.unnest($5::pg_catalog.text[])) AS d(ord, sync_id, id, source) \
          WHERE t.user_id OPERATOR(pg_catalog.=) $1 \
            AND (t.id OPERATOR(pg_catalog.=) d.id \
                 OR (t.sync_id OPERATOR(pg_catalog.=) ANY (ARRAY[d.sync_id, d.sync_id OPERATOR(pg_catalog.||) '#systolic', \
                                                                 d.sync_id OPERATOR(pg_catalog.||) '#diastolic']) \
                     AND (d.source IS NULL OR t.source OPERATOR(pg_catalog.=) d.source))) \
         RETURNING d.ord, t.id::pg_catalog.int8"
    );
    let ords: Vec<i32> = plan.deletions.iter().map(|d| d.ord).collect();
    let sync_ids: Vec<Option<String>> = plan.deletions.iter().map(|d| d.sync_id.clone()).collect();
    let ids: Vec<Option<i64>> = plan.deletions.iter().map(|d| d.id).collect();
    let sources: Vec<Option<String>> = plan.deletions.iter().map(|d| d.source.clone()).collect();
    Spi::connect_mut(|c| {
        let deleted = c
            .update(&sql, None, &[caller.into(), ords.into(), sync_ids.into(), ids.into(), sources.into()])
            .unwrap_or_else(|e| spi_failed("delete", e));
        for row in deleted {
            let ord: Option<i32> = row.get(1).unwrap_or_else(|e| spi_failed("ord", e));
            let id: Option<i64> = row.get(2).unwrap_or_else(|e| spi_failed("id", e));
            if let (Some(ord), Some(id)) = (ord, id) {
                plan.deleted(ord, id);
            }
        }
    });
    plan.refuse_unmatched_deletions();
}

/// The stored id and sync version of every synced row of the batch (one query).
fn find_synced(table: &str, caller: pgrx::Uuid, plan: &mut Plan) {
    let sql = format!(
        "SELECT s.i, t.id::pg_catalog.int8, t.sync_version::pg_catalog.int8 \
           FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.int4[]), pg_catalog.unnest($3::pg_catalog.text[]), \
                           pg_catalog.unnest($4::pg_catalog.text[])) AS s(i, sync_id, source) \
           JOIN {table} AS t ON t.user_id OPERATOR(pg_catalog.=) $1 AND t.sync_id OPERATOR(pg_catalog.=) s.sync_id \
                AND t.source IS NOT DISTINCT FROM s.source"
    );
    let indexes: Vec<i32> = plan.synced_rows().map(|(i, _)| i as i32).collect();
    let sync_ids: Vec<Option<String>> = plan.synced_rows().map(|(_, r)| r.sync_id.clone()).collect();
    let sources: Vec<Option<String>> = plan.synced_rows().map(|(_, r)| r.source.clone()).collect();
    // `update`, not `select`: in READ COMMITTED it reads what committed up to now (the fast path
    // relies on it after its lock), not the snapshot the calling statement started with.
    let found: Vec<(usize, i64, Option<i64>)> = Spi::connect_mut(|c| {
        c.update(&sql, None, &[caller.into(), indexes.into(), sync_ids.into(), sources.into()])
            .unwrap_or_else(|e| spi_failed("sync lookup", e))
            .filter_map(|row| {
                let i: Option<i32> = row.get(1).unwrap_or_else(|e| spi_failed("index", e));
                let id: Option<i64> = row.get(2).unwrap_or_else(|e| spi_failed("id", e));
                let version: Option<i64> = row.get(3).unwrap_or_else(|e| spi_failed("sync_version", e));
                Some((usize::try_from(i?).ok()?, id?, version))
            })
            .collect()
    });
    for (i, id, version) in found {
        plan.stored(i, id, version);
    }
}

/// The one INSERT for every new, batch-unique row; marks the inserted ones. `plain`: without
/// `ON CONFLICT` (the fast path: nothing stored can conflict).
fn insert(table: &str, caller: pgrx::Uuid, rows: &[Row], plan: &mut Plan, plain: bool) {
    let on_conflict = if plain { "" } else { "ON CONFLICT DO NOTHING" };
    let sql = format!(
        "INSERT INTO {table} AS t (user_id, kind, value, unit, recorded_at, source, ended_at, tz_offset, sync_id, sync_version, correlation_id) \
         SELECT $1, s.kind, s.value, s.unit, s.recorded_at, s.source, s.ended_at, s.tz_offset, s.sync_id, s.sync_version, s.correlation_id \
           FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.float8[]), \
                           pg_catalog.unnest($4::pg_catalog.text[]), pg_catalog.unnest($5::pg_catalog.timestamptz[]), \
                           pg_catalog.unnest($6::pg_catalog.text[]), pg_catalog.unnest($7::pg_catalog.timestamptz[]), \
                           pg_catalog.unnest($8::pg_catalog.int4[]), pg_catalog.unnest($9::pg_catalog.text[]), \
                           pg_catalog.unnest($10::pg_catalog.int8[]), pg_catalog.unnest($11::pg_catalog.uuid[])) \
                AS s(kind, value, unit, recorded_at, source, ended_at, tz_offset, sync_id, sync_version, correlation_id) \
         {on_conflict} \
         RETURNING t.id::pg_catalog.int8, t.kind::pg_catalog.text, t.recorded_at, t.source::pg_catalog.text"
    );
    let c = Columns::of(rows.iter());
    Spi::connect_mut(|client| {
        let returned = client
            .update(
                &sql,
                None,
                &[
                    caller.into(),
                    c.kinds.into(),
                    c.values.into(),
                    c.units.into(),
                    c.starts.into(),
                    c.sources.into(),
                    c.ends.into(),
                    c.offsets.into(),
                    c.sync_ids.into(),
                    c.versions.into(),
                    c.correlations.into(),
                ],
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
                AND t.recorded_at OPERATOR(pg_catalog.=) s.recorded_at AND t.source IS NOT DISTINCT FROM s.source"
    );
    let primary: Vec<&Row> = rows.iter().filter(|r| r.primary).collect();
    let ords: Vec<i32> = primary.iter().map(|r| r.ord).collect();
    let kinds: Vec<String> = primary.iter().map(|r| r.kind.clone()).collect();
    let times: Vec<TimestampWithTimeZone> = primary.iter().map(|r| pg_time(r.at_us)).collect();
    let sources: Vec<Option<String>> = primary.iter().map(|r| r.source.clone()).collect();
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

/// Newer versions replace their stored rows, unless the new time collides with another stored
/// sample of the same kind and source (then the element is refused, the row kept).
fn update(table: &str, caller: pgrx::Uuid, updates: &[(i64, Row)], plan: &mut Plan) {
    let sql = format!(
        "UPDATE {table} AS t SET kind = s.kind, value = s.value, unit = s.unit, recorded_at = s.recorded_at, \
                ended_at = s.ended_at, tz_offset = s.tz_offset, sync_version = s.sync_version \
           FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.int8[]), pg_catalog.unnest($3::pg_catalog.text[]), \
                           pg_catalog.unnest($4::pg_catalog.float8[]), pg_catalog.unnest($5::pg_catalog.text[]), \
                           pg_catalog.unnest($6::pg_catalog.timestamptz[]), pg_catalog.unnest($7::pg_catalog.timestamptz[]), \
                           pg_catalog.unnest($8::pg_catalog.int4[]), pg_catalog.unnest($9::pg_catalog.int8[])) \
                AS s(id, kind, value, unit, recorded_at, ended_at, tz_offset, sync_version) \
          WHERE t.id OPERATOR(pg_catalog.=) s.id AND t.user_id OPERATOR(pg_catalog.=) $1 \
            AND coalesce(t.sync_version, 0) OPERATOR(pg_catalog.<) s.sync_version \
            AND NOT EXISTS (SELECT 1 FROM {table} AS o WHERE o.user_id OPERATOR(pg_catalog.=) $1 \
                               AND o.kind OPERATOR(pg_catalog.=) s.kind AND o.recorded_at OPERATOR(pg_catalog.=) s.recorded_at \
                               AND o.source IS NOT DISTINCT FROM t.source AND o.id OPERATOR(pg_catalog.<>) t.id) \
         RETURNING t.id::pg_catalog.int8"
    );
    let ids: Vec<i64> = updates.iter().map(|(id, _)| *id).collect();
    let c = Columns::of(updates.iter().map(|(_, r)| r));
    let made: Vec<i64> = Spi::connect_mut(|client| {
        client
            .update(
                &sql,
                None,
                &[
                    caller.into(),
                    ids.into(),
                    c.kinds.into(),
                    c.values.into(),
                    c.units.into(),
                    c.starts.into(),
                    c.ends.into(),
                    c.offsets.into(),
                    c.versions.into(),
                ],
            )
            .unwrap_or_else(|e| spi_failed("update", e))
            .filter_map(|row| row.get::<i64>(1).unwrap_or_else(|e| spi_failed("id", e)))
            .collect()
    });
    for id in &made {
        plan.updated(*id);
    }
    plan.refuse_unmade_updates(&made);
}

/// Keep every rejected element, as sent, with its reason (one insert). An element rejected
/// before (a re-sent batch) is not stored again: it reports the id of the stored copy.
fn store_rejected(table: &str, caller: pgrx::Uuid, plan: &mut Plan) {
    let count = plan.refused.len();
    let ords: Vec<i32> = plan.refused.iter().map(|r| r.ord).collect();
    let samples: Vec<JsonB> = plan.refused.iter().map(|r| JsonB(r.element.clone())).collect();
    let reasons: Vec<String> = plan.refused.iter().map(|r| r.rejection.reason.clone()).collect();
    let states: Vec<String> = plan.refused.iter().map(|r| sqlstate(r.rejection.code)).collect();
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
