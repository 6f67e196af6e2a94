//! Hourly rollups behind `health.summary`, kept lazily from the change feed (docs/sql-reference.md,
//! "health_rls.summary_hours").
//!
//! A year of 5-minute samples is ~105,000 rows, and a user's rows lie scattered among every other
//! user's in the heap: the plain `GROUP BY` reads ~100,000 pages whatever index it uses. The
//! summary instead reads one row per UTC hour with samples (count, min, max, sum) from
//! `health_rls.summary_hours`, whose primary key keeps a user's hours together, and buckets those
//! into local hours, days, weeks or months with `date_trunc` in the requested zone.
//!
//! Why lazily and from the change feed: writers pay nothing. Every write to a table with realtime
//! is already logged in `health_rls.changes` with a per-user seq that grows in commit order
//! without gaps (src/realtime/changelog.rs). `health_rls.summary_state` records, per user, table
//! and kind, the seq through which the rollups hold every change. At read time the changes after
//! it say what to recompute: the hours of inserted and deleted rows (their keys carry `kind` and
//! `recorded_at`), or everything after an update. The rollups are used only while the feed is complete: the state also records
//! the table's name, its file (TRUNCATE and VACUUM FULL change it) and its enabled realtime
//! triggers with the transaction that last changed each (dropping, recreating, disabling and
//! enabling them all show), and any difference means a full rebuild or, if the table has no
//! complete feed now, no rollups at all. Writes the feed cannot see are those made with
//! `session_replication_role = replica` (triggers do not fire): after such a bulk load, a
//! superuser empties the table's rollups (`DELETE FROM health_rls.summary_state`).
//!
//! Why UTC hours: every zone whose offset is a whole number of hours (all of them today but a
//! few, such as Asia/Kolkata) maps each UTC hour into one local hour, day, week and month. The
//! read checks this hour by hour and falls back to the plain aggregate when it fails, as it does
//! for the partial hours at the ends of a [from, until) that does not start and end on the hour.
//!
//! Rollups hold every row of a user, so they answer only a caller who reads every row of its own:
//! row level security off for it, or no policy applying to it but the owner policy of
//! `enable_owner_rls` (and permissive ones, which only add rows). A restrictive policy, a custom
//! owner policy, or a role the owner policy is not for, and the samples are read instead.
//!
//! Rollups are written by the extension owner from what the caller reads under RLS, only in a
//! read-write READ COMMITTED transaction and under a per-(user, table, kind) advisory lock taken
//! without waiting; otherwise (a read-only or REPEATABLE READ transaction, a hot standby, a
//! concurrent builder) the summary uses them only if they are current, and else aggregates the
//! samples as before. Builders never run concurrently, and each reads after taking the lock, so
//! it sees what the previous one committed.
use super::summary::{aggregate, bucket_of, Bucket, Buckets, Request, Stats};
use crate::error;
use crate::pg::as_caller::as_caller;
use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::pg_sys;
use pgrx::prelude::*;

extension_sql_file!("../../sql/summary.sql", name = "summary_rollups", requires = ["bootstrap"]);

/// One hour in µs: Postgres's epoch (2000-01-01 00:00 UTC) is on the hour, so UTC hours are the
/// multiples of it.
const HOUR: i64 = 3_600_000_000;

/// More changed hours than this since the last build: rebuild everything in one pass instead.
const MOST_HOURS: usize = 2_000;

pub fn floor_hour(t: i64) -> i64 {
    t.div_euclid(HOUR) * HOUR
}

pub fn ceil_hour(t: i64) -> i64 {
    -floor_hour(-t)
}

/// The part of [from, until) the rollups answer: whole UTC hours. None: no whole hour inside.
pub fn whole_hours(from: Option<i64>, until: Option<i64>) -> Option<(Option<i64>, Option<i64>)> {
    let lo = from.map(ceil_hour);
    let hi = until.map(floor_hour);
    match (lo, hi) {
        (Some(l), Some(h)) if l >= h => None,
        _ => Some((lo, hi)),
    }
}

/// A metric table's change feed as it is now.
struct Feed {
    relid: pg_sys::Oid,
    /// Name, file and enabled realtime triggers: what a complete feed was built against.
    fingerprint: String,
    /// This transaction may write rollups.
    can_write: bool,
    /// The caller reads every row of its own in the table: row level security is off for it, or
    /// the only policies that apply to it are the owner policy `enable_owner_rls` makes (any
    /// other permissive ones can only add rows; a restrictive one could hide some). Rollups hold
    /// all of a user's rows, so they may answer only such a caller.
    sees_all_own_rows: bool,
}

const FEED: &str = "\
SELECT c.oid, \
       pg_catalog.format('%s %s %s', c.oid::pg_catalog.regclass, c.relfilenode, t.triggers), \
       pg_catalog.current_setting('transaction_read_only') OPERATOR(pg_catalog.=) 'off' \
         AND pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.=) 'read committed', \
       NOT c.relrowsecurity \
         OR r.rolbypassrls \
         OR (NOT c.relforcerowsecurity AND pg_catalog.pg_has_role($2, c.relowner, 'USAGE')) \
         OR (EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) c.oid \
                       AND p.polpermissive AND p.polcmd OPERATOR(pg_catalog.=) ANY ('{r,*}'::pg_catalog.char[]) \
                       AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) OPERATOR(pg_catalog.=) '(( SELECT auth.uid() AS uid) = user_id)' \
                       AND (p.polroles OPERATOR(pg_catalog.=) '{0}' OR EXISTS (SELECT 1 FROM pg_catalog.unnest(p.polroles) o \
                                 WHERE pg_catalog.pg_has_role($2, o, 'USAGE')))) \
             AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) c.oid \
                       AND NOT p.polpermissive AND p.polcmd OPERATOR(pg_catalog.=) ANY ('{r,*}'::pg_catalog.char[]) \
                       AND (p.polroles OPERATOR(pg_catalog.=) '{0}' OR EXISTS (SELECT 1 FROM pg_catalog.unnest(p.polroles) o \
                                 WHERE pg_catalog.pg_has_role($2, o, 'USAGE'))))) \
  FROM pg_catalog.pg_roles r, pg_catalog.pg_class c, \
       LATERAL (SELECT pg_catalog.count(*) AS n, \
                       pg_catalog.string_agg(g.oid::pg_catalog.text OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) g.xmin::pg_catalog.text, ',' ORDER BY g.oid) AS triggers, \
                       pg_catalog.bit_or(g.tgtype::pg_catalog.int4) AS events \
                  FROM pg_catalog.pg_trigger g \
                 WHERE g.tgrelid OPERATOR(pg_catalog.=) c.oid \
                   AND g.tgfoid OPERATOR(pg_catalog.=) 'health_rls.realtime_notify()'::pg_catalog.regprocedure \
                   AND g.tgenabled OPERATOR(pg_catalog.=) ANY ('{O,A}'::pg_catalog.char[])) t \
 WHERE c.oid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass AND c.relkind OPERATOR(pg_catalog.=) 'r' \
   AND r.oid OPERATOR(pg_catalog.=) $2 \
   AND t.events OPERATOR(pg_catalog.&) 28 OPERATOR(pg_catalog.=) 28";
// 28 = TRIGGER_TYPE_INSERT | DELETE | UPDATE (4 | 8 | 16): the feed sees every row change.

/// The feed of `table`, if it has a complete one (enabled realtime triggers for insert, update
/// and delete on a plain table), and what the caller may see of it.
fn feed(table: &str) -> Option<Feed> {
    Spi::connect(|c| {
        // SAFETY: reads the role the session had before the SECURITY DEFINER switch.
        let caller = unsafe { pg_sys::GetOuterUserId() };
        let rows = c.select(FEED, Some(1), &[table.into(), caller.into()])?;
        if rows.is_empty() {
            return Ok(None);
        }
        let r = rows.first();
        Ok(Some(Feed {
            relid: r.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
            fingerprint: r.get::<String>(2)?.unwrap_or_default(),
            can_write: r.get::<bool>(3)?.unwrap_or(false),
            sees_all_own_rows: r.get::<bool>(4)?.unwrap_or(false),
        }))
    })
    .unwrap_or_else(|e| error::spi_failed("health.summary: reading the change feed's state", e))
}

/// Adds `table`'s buckets for `request` to `into` from the rollups (brought up to date first when
/// this transaction may). False when they cannot answer: then nothing was added.
pub fn summarise(table: &str, request: &Request, into: &mut Buckets) -> bool {
    let from = request.from.map(|t| t.into_inner());
    let until = request.until.map(|t| t.into_inner());
    let Some((lo, hi)) = whole_hours(from, until) else { return false };
    let Some(feed) = feed(table) else { return false };
    if !feed.sees_all_own_rows || !current(table, &feed, request) {
        return false;
    }
    let Some(hours) = read(&feed, request, lo, hi) else { return false };
    for (start, stats) in hours {
        into.add(start, stats);
    }
    // The partial hours at the ends, from the samples.
    let edge = |f: i64, u: i64, into: &mut Buckets| {
        let mut part = request.clone();
        part.from = TimestampWithTimeZone::try_from(f).ok();
        part.until = TimestampWithTimeZone::try_from(u).ok();
        as_caller(|| aggregate(table, &part, "", Vec::new(), into));
    };
    if let (Some(f), Some(l)) = (from, lo) {
        if f < l {
            edge(f, l, into);
        }
    }
    if let (Some(u), Some(h)) = (until, hi) {
        if h < u {
            edge(h, u, into);
        }
    }
    true
}

const STATE: &str = "\
SELECT k.last_seq, k.pruned_through, s.through_seq, s.feed \
  FROM (SELECT 1) one \
  LEFT JOIN health_rls.change_counters k ON k.user_id OPERATOR(pg_catalog.=) $1 \
  LEFT JOIN health_rls.summary_state s ON s.user_id OPERATOR(pg_catalog.=) $1 \
        AND s.relid OPERATOR(pg_catalog.=) $2 AND s.kind OPERATOR(pg_catalog.=) $3";

/// The user's last seq, the seq through which retention removed changes, and the rollups' state.
struct State {
    last: i64,
    pruned: i64,
    built: Option<(i64, String)>,
}

impl State {
    fn current(&self, feed: &Feed) -> bool {
        matches!(&self.built, Some((through, fp)) if *through == self.last && *fp == feed.fingerprint)
    }
}

/// `fresh`: read with a snapshot of its own (a statement run as an update takes one), so that after
/// the lock a builder sees what the one before it committed. Only a builder asks for it: a
/// statement run as an update takes a transaction id, which a read-only transaction, and a hot
/// standby, must not.
fn state(feed: &Feed, request: &Request, fresh: bool) -> State {
    Spi::connect_mut(|c| {
        let args = [request.user.into(), feed.relid.into(), request.kind.as_str().into()];
        let rows = if fresh { c.update(STATE, Some(1), &args)? } else { c.select(STATE, Some(1), &args)? };
        let r = rows.first();
        let built = match (r.get::<i64>(3)?, r.get::<String>(4)?) {
            (Some(t), Some(f)) => Some((t, f)),
            _ => None,
        };
        Ok(State { last: r.get::<i64>(1)?.unwrap_or(0), pruned: r.get::<i64>(2)?.unwrap_or(0), built })
    })
    .unwrap_or_else(|e| error::spi_failed("health.summary: reading the rollups' state", e))
}

/// Are the rollups of (user, table, kind) current — made so if this transaction may?
fn current(table: &str, feed: &Feed, request: &Request) -> bool {
    if state(feed, request, false).current(feed) {
        return true;
    }
    if !feed.can_write || !try_lock(feed, request) {
        return false;
    }
    let state = state(feed, request, true);
    if state.current(feed) {
        return true;
    }
    let dirty = match &state.built {
        Some((through, fp)) if *fp == feed.fingerprint && *through <= state.last && *through >= state.pruned => {
            changed_hours(table, request, *through, state.last)
        }
        _ => None,
    };
    rebuild(table, feed, request, dirty.as_deref());
    save(feed, request, state.last);
    true
}

fn try_lock(feed: &Feed, request: &Request) -> bool {
    crate::pg::spi::select_one::<bool>(
        "SELECT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtextextended( \
           pg_catalog.format('health_rls.summary %s %s %s', $1, $2, $3), 0))",
        &[request.user.into(), feed.relid.into(), request.kind.as_str().into()],
    )
    .unwrap_or(false)
}

/// The UTC hours of `request.kind` that the table's changes in (through, last] touched (`through`
/// is a seq a statement's row ended at, so no row straddles it), read from
/// the changes themselves: an insert's keys and a delete's tombstone carry the row's `kind` and
/// `recorded_at` (the keys `create_metric_table` announces). None — rebuild everything — after an
/// update (the feed names the row's new hour, not its old one), for changes without those keys,
/// and for more hours than a rebuild would read.
fn changed_hours(table: &str, request: &Request, through: i64, last: i64) -> Option<Vec<i64>> {
    if through == last {
        return Some(Vec::new());
    }
    let (incremental, hours) = Spi::connect_mut(|c| {
        let rows = c.update(
            "SELECT pg_catalog.bool_and(c.op OPERATOR(pg_catalog.=) ANY ('{INSERT,DELETE}'::pg_catalog.text[]) \
                        AND (e.k OPERATOR(pg_catalog.->>) 'kind') IS NOT NULL \
                        AND (e.k OPERATOR(pg_catalog.->>) 'recorded_at') IS NOT NULL \
                        AND pg_catalog.isfinite((e.k OPERATOR(pg_catalog.->>) 'recorded_at')::pg_catalog.timestamptz)), \
                    pg_catalog.array_agg(DISTINCT pg_catalog.date_trunc('hour', \
                        (e.k OPERATOR(pg_catalog.->>) 'recorded_at')::pg_catalog.timestamptz, 'UTC')) \
                      FILTER (WHERE (e.k OPERATOR(pg_catalog.->>) 'kind') OPERATOR(pg_catalog.=) $5 \
                                AND (e.k OPERATOR(pg_catalog.->>) 'recorded_at') IS NOT NULL) \
               FROM health_rls.changes c, \
                    LATERAL pg_catalog.jsonb_array_elements(CASE WHEN c.n OPERATOR(pg_catalog.=) 1 \
                              THEN pg_catalog.jsonb_build_array(c.keys) ELSE c.keys END) AS e(k) \
              WHERE c.user_id OPERATOR(pg_catalog.=) $1 AND c.seq OPERATOR(pg_catalog.>) $2 \
                AND c.seq OPERATOR(pg_catalog.<=) $3 AND c.tbl OPERATOR(pg_catalog.=) $4",
            Some(1),
            &[request.user.into(), through.into(), last.into(), table.into(), request.kind.as_str().into()],
        )?;
        let r = rows.first();
        // No change of this table at all: bool_and over no rows is NULL, and nothing is dirty.
        Ok::<_, pgrx::spi::Error>((
            r.get::<bool>(1)?.unwrap_or(true),
            r.get::<Vec<TimestampWithTimeZone>>(2)?.unwrap_or_default(),
        ))
    })
    .unwrap_or_else(|e| error::spi_failed("health.summary: reading the change feed", e));
    if !incremental || hours.len() > MOST_HOURS {
        return None;
    }
    Some(hours.into_iter().map(|h| h.into_inner()).collect())
}

/// Recompute the rollups of `dirty` hours (all of them when None) from what the caller reads:
/// the summary's own statement (`aggregate`) by UTC hour. It runs with a snapshot of its own, as
/// the state was just read: pgrx runs every statement of a transaction that has a transaction id
/// as not read-only, and the state was read as an update, which took one.
fn rebuild(table: &str, feed: &Feed, request: &Request, dirty: Option<&[i64]>) {
    if dirty.is_some_and(|d| d.is_empty()) {
        return;
    }
    let mut by_hour = request.clone();
    by_hour.bucket = Bucket::Hour;
    by_hour.tz = "UTC".into();
    let (condition, condition_args): (&str, Vec<DatumWithOid<'static>>) = match dirty {
        None => {
            (by_hour.from, by_hour.until) = (None, None);
            ("", Vec::new())
        }
        Some(hours) => {
            let (lo, hi) = (hours.iter().min().copied().unwrap_or(0), hours.iter().max().copied().unwrap_or(0) + HOUR);
            by_hour.from = TimestampWithTimeZone::try_from(lo).ok();
            by_hour.until = TimestampWithTimeZone::try_from(hi).ok();
            (
                "pg_catalog.date_trunc('hour', recorded_at, 'UTC') OPERATOR(pg_catalog.=) ANY ($7)",
                vec![timestamps(hours).into()],
            )
        }
    };
    let mut found = Buckets::default();
    as_caller(|| aggregate(table, &by_hour, condition, condition_args, &mut found));
    let (mut hours, mut n, mut min, mut max, mut sum) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (hour, s) in found.into_rows() {
        let Ok(hour) = TimestampWithTimeZone::try_from(hour) else { continue };
        hours.push(hour);
        n.push(s.n);
        min.push(s.min);
        max.push(s.max);
        sum.push(s.sum);
    }

    let key = || -> Vec<DatumWithOid> { vec![request.user.into(), feed.relid.into(), request.kind.as_str().into()] };
    Spi::connect_mut(|c| {
        match dirty {
            None => c.update(
                "DELETE FROM health_rls.summary_hours WHERE user_id OPERATOR(pg_catalog.=) $1 \
                    AND relid OPERATOR(pg_catalog.=) $2 AND kind OPERATOR(pg_catalog.=) $3",
                None,
                &key(),
            )?,
            Some(d) => {
                let mut a = key();
                a.push(timestamps(d).into());
                c.update(
                    "DELETE FROM health_rls.summary_hours WHERE user_id OPERATOR(pg_catalog.=) $1 \
                        AND relid OPERATOR(pg_catalog.=) $2 AND kind OPERATOR(pg_catalog.=) $3 \
                        AND hour OPERATOR(pg_catalog.=) ANY ($4)",
                    None,
                    &a,
                )?
            }
        };
        let mut a = key();
        a.extend([hours.into(), n.into(), min.into(), max.into(), sum.into()]);
        c.update(
            "INSERT INTO health_rls.summary_hours (user_id, relid, kind, hour, n, min, max, sum) \
             SELECT $1, $2, $3, u.* FROM ROWS FROM (pg_catalog.unnest($4::pg_catalog.timestamptz[]), \
                    pg_catalog.unnest($5::pg_catalog.int8[]), pg_catalog.unnest($6::pg_catalog.float8[]), \
                    pg_catalog.unnest($7::pg_catalog.float8[]), pg_catalog.unnest($8::pg_catalog.float8[])) u",
            None,
            &a,
        )?;
        Ok::<_, pgrx::spi::Error>(())
    })
    .unwrap_or_else(|e| error::spi_failed("health.summary: writing rollups", e));
}

fn timestamps(hours: &[i64]) -> Vec<TimestampWithTimeZone> {
    hours.iter().filter_map(|h| TimestampWithTimeZone::try_from(*h).ok()).collect()
}

fn save(feed: &Feed, request: &Request, through: i64) {
    Spi::connect_mut(|c| {
        c.update(
            "INSERT INTO health_rls.summary_state AS s (user_id, relid, kind, through_seq, feed) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, relid, kind) \
             DO UPDATE SET through_seq = excluded.through_seq, feed = excluded.feed, built_at = pg_catalog.now()",
            None,
            &[
                request.user.into(),
                feed.relid.into(),
                request.kind.as_str().into(),
                through.into(),
                feed.fingerprint.as_str().into(),
            ],
        )
        .map(|_| ())
    })
    .unwrap_or_else(|e| error::spi_failed("health.summary: saving the rollups' state", e));
}

/// The rollups of [lo, hi) bucketed in the request's zone; None when a UTC hour is not one local
/// hour there (an offset that is not a whole number of hours).
fn read(feed: &Feed, request: &Request, lo: Option<i64>, hi: Option<i64>) -> Option<Vec<(i64, Stats)>> {
    let args: Vec<DatumWithOid> = vec![
        request.user.into(),
        feed.relid.into(),
        request.kind.as_str().into(),
        request.bucket.field().into(),
        request.tz.as_str().into(),
        lo.and_then(|t| TimestampWithTimeZone::try_from(t).ok()).into(),
        hi.and_then(|t| TimestampWithTimeZone::try_from(t).ok()).into(),
    ];
    Spi::connect(|c| {
        let rows = c.select(
            "SELECT pg_catalog.date_trunc($4, hour, $5), pg_catalog.sum(n)::pg_catalog.int8, pg_catalog.min(min), \
                    pg_catalog.max(max), pg_catalog.sum(sum), \
                    pg_catalog.bool_and(pg_catalog.date_trunc('hour', hour, $5) OPERATOR(pg_catalog.=) hour) \
               FROM health_rls.summary_hours \
              WHERE user_id OPERATOR(pg_catalog.=) $1 AND relid OPERATOR(pg_catalog.=) $2 AND kind OPERATOR(pg_catalog.=) $3 \
                AND ($6::pg_catalog.timestamptz IS NULL OR hour OPERATOR(pg_catalog.>=) $6) \
                AND ($7::pg_catalog.timestamptz IS NULL OR hour OPERATOR(pg_catalog.<) $7) \
              GROUP BY 1",
            None,
            &args,
        )?;
        let mut out = Vec::new();
        for r in rows {
            if r.get::<bool>(6)? != Some(true) {
                return Ok(None);
            }
            out.extend(bucket_of(&r)?);
        }
        Ok(Some(out))
    })
    .unwrap_or_else(|e| error::spi_failed("health.summary: reading rollups", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hours_round_toward_the_inside_of_the_range() {
        assert_eq!(floor_hour(HOUR + 1), HOUR);
        assert_eq!(ceil_hour(HOUR + 1), 2 * HOUR);
        assert_eq!(floor_hour(-1), -HOUR);
        assert_eq!(ceil_hour(-HOUR - 1), -HOUR);
        assert_eq!(whole_hours(Some(HOUR), Some(3 * HOUR)), Some((Some(HOUR), Some(3 * HOUR))));
        assert_eq!(whole_hours(Some(HOUR + 1), Some(4 * HOUR - 1)), Some((Some(2 * HOUR), Some(3 * HOUR))));
        assert_eq!(whole_hours(Some(HOUR + 1), Some(3 * HOUR - 1)), None);
        assert_eq!(whole_hours(Some(HOUR + 1), Some(2 * HOUR - 1)), None);
        assert_eq!(whole_hours(None, Some(HOUR + 5)), Some((None, Some(HOUR))));
        assert_eq!(whole_hours(None, None), Some((None, None)));
    }

    proptest! {
        // The whole hours and the two partial ends cover [from, until) exactly, without overlap.
        #[test]
        fn whole_hours_and_ends_partition_the_range(from in -10_000_000_000_000i64..10_000_000_000_000, len in 0i64..20_000_000_000) {
            let until = from + len;
            match whole_hours(Some(from), Some(until)) {
                None => prop_assert!(floor_hour(until) <= ceil_hour(from) || until - from < HOUR),
                Some((Some(lo), Some(hi))) => {
                    prop_assert!(from <= lo && lo < hi && hi <= until);
                    prop_assert_eq!(lo % HOUR, 0);
                    prop_assert_eq!(hi % HOUR, 0);
                    prop_assert!(lo - from < HOUR && until - hi < HOUR);
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
