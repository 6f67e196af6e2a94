//! Reading and pruning the change feed (docs/realtime.md, "Change feed"): a client that was
//! offline asks for what it missed after the last seq it saw; retention removes old changes, and a
//! client asking for removed ones is told to resync (55000), never handed a silent gap.
use crate::auth::identity;
use crate::error::{self, Code};
use crate::pg::spi::select_one;
use crate::pg::uuid::to_pg;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::prelude::*;
use pgrx::JsonB;

pub static CHANGES_RETENTION: GucSetting<i32> = GucSetting::<i32>::new(7 * 24 * 3600);

pub fn init() {
    GucRegistry::define_int_guc(
        c"health_rls.changes_retention",
        c"How long health_rls.prune_changes() keeps changes in the per-user change feed.",
        c"A client that asks for changes older than this is told to resync (55000).",
        &CHANGES_RETENTION,
        60,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
}

/// The largest page a client may ask for at once.
pub const MAX_PAGE: i32 = 100_000;

/// Whether a cursor is still answerable: changes after `after_seq` are all still kept unless
/// retention already removed some of them.
pub fn needs_resync(after_seq: i64, pruned_through: i64) -> bool {
    after_seq < pruned_through
}

/// The changes after seq $2 of user $1, one per seq, at most $3: a statement's row of several
/// (`n` > 1, `keys` an array) gives one change per element. The row holding seq $2 + 1 is the
/// last one starting at or before it (rows of one user never overlap); from there the primary key
/// is read in order, so the LIMIT stops the scan.
pub const CHANGES_AFTER: &str = "\
SELECT c.seq OPERATOR(pg_catalog.+) e.o OPERATOR(pg_catalog.-) 1, c.tbl, c.op, e.k, c.at \
  FROM health_rls.changes c, \
       LATERAL pg_catalog.jsonb_array_elements(CASE WHEN c.n OPERATOR(pg_catalog.=) 1 \
                 THEN pg_catalog.jsonb_build_array(c.keys) ELSE c.keys END) WITH ORDINALITY AS e(k, o) \
 WHERE c.user_id OPERATOR(pg_catalog.=) $1 \
   AND c.seq OPERATOR(pg_catalog.>=) (SELECT COALESCE(pg_catalog.max(f.seq), 0) FROM health_rls.changes f \
                         WHERE f.user_id OPERATOR(pg_catalog.=) $1 AND f.seq OPERATOR(pg_catalog.<=) ($2 OPERATOR(pg_catalog.+) 1)) \
   AND c.seq OPERATOR(pg_catalog.+) e.o OPERATOR(pg_catalog.-) 1 OPERATOR(pg_catalog.>) $2 \
 ORDER BY c.seq, e.o LIMIT $3";

#[pg_extern(stable, security_definer)]
fn changes_since(
    after_seq: i64,
    max_rows: default!(i32, 1000),
) -> TableIterator<
    'static,
    (name!(seq, i64), name!(tbl, String), name!(op, String), name!(keys, JsonB), name!(at, TimestampWithTimeZone)),
> {
    let owner = identity::current_sub().unwrap_or_else(|| {
        error::not_authorized("health_rls.changes_since: no authenticated user (call auth.authenticate first)")
    });
    if after_seq < 0 {
        error::bad_argument("health_rls.changes_since: after_seq must be 0 (everything) or a seq you received");
    }
    if !(1..=MAX_PAGE).contains(&max_rows) {
        error::bad_argument(format!("health_rls.changes_since: max_rows must be from 1 to {MAX_PAGE}"));
    }
    let pruned = select_one::<i64>(
        "SELECT pruned_through FROM health_rls.change_counters WHERE user_id OPERATOR(pg_catalog.=) $1",
        &[to_pg(owner).into()],
    )
    .unwrap_or(0);
    if needs_resync(after_seq, pruned) {
        error::raise(
            Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!(
                "resync needed: changes up to seq {pruned} were removed by retention (health_rls.changes_retention); \
                 read the current rows and continue from seq {pruned}"
            ),
        );
    }
    let rows: Vec<_> = Spi::connect(|c| {
        c.select(CHANGES_AFTER, None, &[to_pg(owner).into(), after_seq.into(), i64::from(max_rows).into()])
            .unwrap_or_else(|e| error::spi_failed("health_rls.changes_since", e))
            .filter_map(|r| {
                Some((
                    r.get::<i64>(1).ok().flatten()?,
                    r.get::<String>(2).ok().flatten()?,
                    r.get::<String>(3).ok().flatten()?,
                    r.get::<JsonB>(4).ok().flatten()?,
                    r.get::<TimestampWithTimeZone>(5).ok().flatten()?,
                ))
            })
            .collect()
    });
    TableIterator::new(rows)
}

/// Remove changes older than health_rls.changes_retention; returns how many. Run it from cron
/// or pg_cron as the extension owner.
#[pg_extern(volatile)]
fn prune_changes() -> i64 {
    Spi::connect_mut(|c| {
        c.update(
            "WITH d AS (DELETE FROM health_rls.changes \
                         WHERE at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $1)) \
                         RETURNING user_id, seq, n), \
                  m AS (SELECT user_id, pg_catalog.max(seq OPERATOR(pg_catalog.+) n OPERATOR(pg_catalog.-) 1) AS s FROM d GROUP BY user_id), \
                  u AS (UPDATE health_rls.change_counters k SET pruned_through = GREATEST(k.pruned_through, m.s) \
                          FROM m WHERE k.user_id OPERATOR(pg_catalog.=) m.user_id) \
             SELECT COALESCE(pg_catalog.sum(n), 0)::pg_catalog.int8 FROM d",
            None,
            &[f64::from(CHANGES_RETENTION.get()).into()],
        )
        .and_then(|t| t.first().get_one::<i64>())
    })
    .unwrap_or_else(|e| error::spi_failed("health_rls.prune_changes", e))
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_behind_retention_needs_a_resync() {
        assert!(!needs_resync(0, 0), "nothing pruned: everything is still there");
        assert!(!needs_resync(10, 10), "the client saw everything that was pruned");
        assert!(needs_resync(9, 10), "seq 10 is gone and the client never saw it");
        assert!(needs_resync(0, 1));
    }
}
