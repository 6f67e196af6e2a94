//! Sharing with consent, and a log of who looked (docs/sharing.md).
//!
//! An owner shares chosen kinds of samples, recorded inside a window, with one grantee until an
//! expiry (FHIR Consent's actor, dataPeriod and period). The metric tables stay owner-only: a
//! grantee has no policy on them, so `health.shared_samples` — which commits a `health.access_log`
//! entry in a transaction of its own before it returns a row — is the only way to read shared data. These functions run as the
//! extension owner, so RLS does not filter for them: every statement names the caller.

use crate::auth::identity;
use crate::error::{self, Code};
use crate::pg::spi::select_one;
use crate::pg::spi::types::UUID;
use crate::pg::spi::KeptStatement;
use crate::pg::uuid::{from_pg, to_pg};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;

use super::share_window::{shared_items, Grant, LiveShare, Share};

// Every announced statement of a sharing owner runs the first; every grantee read the others.
// Kept plans: their parse and plan would otherwise dominate (bench parts 4 and 8).
/// An owner's active shares, as the realtime fan-out reads them (times in µs since the epoch).
macro_rules! live_shares_sql {
    ($and:literal) => {
        concat!(
            "SELECT grantee_id, kinds, \
               (pg_catalog.date_part('epoch', data_from)::pg_catalog.numeric * 1000000)::pg_catalog.int8, \
               (pg_catalog.date_part('epoch', data_until)::pg_catalog.numeric * 1000000)::pg_catalog.int8 \
             FROM health.shares WHERE owner_id OPERATOR(pg_catalog.=) $1 AND revoked_at IS NULL \
              AND (expires_at IS NULL OR expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp())",
            $and
        )
    };
}
static LIVE_SHARES: KeptStatement = KeptStatement { sql: live_shares_sql!(""), types: &[UUID], writes: true };
/// The same, of one grantee ($2).
static LIVE_SHARES_TO: KeptStatement = KeptStatement {
    sql: live_shares_sql!(" AND grantee_id OPERATOR(pg_catalog.=) $2"),
    types: &[UUID, UUID],
    writes: false,
};
static SHARES_TO_GRANTEE: KeptStatement = KeptStatement {
    sql: "SELECT id, kinds, data_from, data_until FROM health.shares \
           WHERE owner_id OPERATOR(pg_catalog.=) $1 AND grantee_id OPERATOR(pg_catalog.=) $2 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp())",
    types: &[UUID, UUID],
    writes: false,
};
/// The access log entry of one grantee read, committed in a transaction of its own
/// (`pg::own_transaction`) before any row is returned: a grantee who rolls back keeps the entry.
const LOG_READ: &str = "INSERT INTO health.access_log (owner_id, grantee_id, share_ids, kinds, row_count) \
    SELECT (a OPERATOR(pg_catalog.->>) 'owner')::pg_catalog.uuid, (a OPERATOR(pg_catalog.->>) 'grantee')::pg_catalog.uuid, \
           ARRAY(SELECT pg_catalog.jsonb_array_elements_text(a OPERATOR(pg_catalog.->) 'shares'))::pg_catalog.uuid[], \
           ARRAY(SELECT pg_catalog.jsonb_array_elements_text(a OPERATOR(pg_catalog.->) 'kinds')), \
           (a OPERATOR(pg_catalog.->>) 'rows')::pg_catalog.int4 \
      FROM (SELECT $1::pg_catalog.jsonb AS a) AS arg RETURNING id";

/// The realtime fan-out (registered at load): an owner's announced rows go to the grantees of its
/// active shares too, filtered by each share's kinds and window. Revoked and expired shares are
/// not read, so their grantees hear nothing from the next statement on.
pub fn fanout(owner: &uuid::Uuid, items: &[String]) -> Vec<(uuid::Uuid, Vec<String>)> {
    let shares = live_shares(&LIVE_SHARES, &[*owner]);
    if shares.is_empty() {
        return Vec::new();
    }
    shared_items(&shares, items)
}

/// The active shares `statement` (LIVE_SHARES or LIVE_SHARES_TO) finds for `args`.
fn live_shares(statement: &KeptStatement, args: &[uuid::Uuid]) -> Vec<LiveShare> {
    Spi::connect_mut(|c| {
        statement.run(c, |c, plan| {
            let args: Vec<pgrx::datum::DatumWithOid> = args.iter().map(|a| to_pg(*a).into()).collect();
            let rows = c.select(plan, None, &args)?;
            Ok(rows
                .filter_map(|r| {
                    Some(LiveShare {
                        grantee: from_pg(r.get::<pgrx::Uuid>(1).ok().flatten()?),
                        kinds: r.get::<Vec<String>>(2).ok().flatten()?,
                        from_us: r.get::<i64>(3).ok().flatten(),
                        until_us: r.get::<i64>(4).ok().flatten(),
                    })
                })
                .collect())
        })
    })
    .unwrap_or_else(|e| error::spi_failed("realtime fan-out to shares", e))
}

extension_sql_file!("../../sql/sharing.sql", name = "sharing", requires = ["health_catalog"]);

/// Commits the access log entry of one grantee read (`LOG_READ`) before anything is returned:
/// the shares it was read under, the kinds read and how many rows (or samples) it returned.
fn log_read(what: &str, owner: uuid::Uuid, grantee: uuid::Uuid, shares: &[Share], kinds: Vec<String>, rows: i64) {
    let ids: Vec<String> = shares.iter().map(|s| s.id.to_string()).collect();
    let entry = serde_json::json!({
        "owner": owner.to_string(), "grantee": grantee.to_string(), "shares": ids, "kinds": kinds,
        "rows": rows.min(i64::from(i32::MAX)),
    });
    crate::pg::own_transaction::commit_now(&format!("{what}: the access log entry"), LOG_READ, entry);
}

/// The authenticated caller, or 28000 naming the function `what`.
pub(super) fn caller(what: &str) -> uuid::Uuid {
    identity::current_sub().unwrap_or_else(|| {
        error::not_authorized(format!("{what}: no authenticated user (call auth.authenticate first)"))
    })
}

/// The terms of a share (or of an invitation to one), checked: at least one kind, every kind in
/// the catalog, a window that does not end before it starts, an expiry still to come. Returns
/// the kinds as they are recorded (each once, in order); `what` names the function in messages.
pub(super) fn check_terms(
    what: &str,
    kinds: Option<Vec<String>>,
    data_from: Option<TimestampWithTimeZone>,
    data_until: Option<TimestampWithTimeZone>,
    expires_at: Option<TimestampWithTimeZone>,
) -> Vec<Option<String>> {
    let bad = |m: &str| -> ! { error::bad_argument(format!("{what}: {m}")) };
    let kinds = kinds.filter(|k| !k.is_empty()).unwrap_or_else(|| bad("kinds must name at least one kind"));
    // Unknown kinds, and the kinds as they are recorded: each once, in order.
    let (unknown, kinds) = Spi::connect(|c| {
        let t = c.select(
            "SELECT pg_catalog.array_agg(k) FILTER (WHERE k IS NOT NULL AND NOT EXISTS \
                      (SELECT 1 FROM health.metric_kinds m WHERE m.code OPERATOR(pg_catalog.=) k)), \
                    pg_catalog.array_agg(DISTINCT k ORDER BY k) \
               FROM pg_catalog.unnest($1::pg_catalog.text[]) AS k",
            Some(1),
            &[kinds.into()],
        )?;
        let r = t.first();
        Ok::<_, pgrx::spi::Error>((
            r.get::<Vec<String>>(1)?.unwrap_or_default(),
            r.get::<Vec<Option<String>>>(2)?.unwrap_or_default(),
        ))
    })
    .unwrap_or_else(|e| error::spi_failed(what, e));
    if !unknown.is_empty() {
        bad(&format!("unknown kind(s) {} (see health.metric_kinds)", unknown.join(", ")));
    }
    if let (Some(f), Some(u)) = (data_from, data_until) {
        if f > u {
            bad("the data window ends before it starts (data_from > data_until)");
        }
    }
    if expires_at.is_some_and(|e| {
        select_one::<bool>("SELECT $1 OPERATOR(pg_catalog.<=) pg_catalog.now()", &[e.into()]).unwrap_or(true)
    }) {
        bad("expires_at is already past");
    }
    kinds
}

/// Records a share with the terms `check_terms` returned; returns its id.
pub(super) fn insert_share(
    owner: uuid::Uuid,
    grantee: uuid::Uuid,
    kinds: Vec<Option<String>>,
    data_from: Option<TimestampWithTimeZone>,
    data_until: Option<TimestampWithTimeZone>,
    expires_at: Option<TimestampWithTimeZone>,
) -> uuid::Uuid {
    let id = uuid::Uuid::new_v4();
    Spi::connect_mut(|c| {
        c.update(
            "INSERT INTO health.shares (id, owner_id, grantee_id, kinds, data_from, data_until, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            None,
            &[
                to_pg(id).into(),
                to_pg(owner).into(),
                to_pg(grantee).into(),
                kinds.into(),
                data_from.into(),
                data_until.into(),
                expires_at.into(),
            ],
        )
        .map(|_| ())
    })
    .unwrap_or_else(|e| error::spi_failed("recording a share", e));
    id
}

/// The active shares `owner` gave `grantee` (not revoked, not expired), as of the statement.
fn active_shares(owner: uuid::Uuid, grantee: uuid::Uuid) -> Vec<Share> {
    Spi::connect_mut(|c| {
        SHARES_TO_GRANTEE.run(c, |c, plan| {
            Ok(c.select(plan, None, &[to_pg(owner).into(), to_pg(grantee).into()])?
                .filter_map(|r| {
                    Some(Share {
                        id: from_pg(r.get::<pgrx::Uuid>(1).ok().flatten()?),
                        kinds: r.get::<Vec<String>>(2).ok().flatten()?,
                        from: r.get::<TimestampWithTimeZone>(3).ok().flatten(),
                        until: r.get::<TimestampWithTimeZone>(4).ok().flatten(),
                    })
                })
                .collect())
        })
    })
    .unwrap_or_else(|e| error::spi_failed("reading shares", e))
}

/// One row of `health.shared_samples`.
type SharedRow = (i64, String, f64, String, TimestampWithTimeZone, Option<TimestampWithTimeZone>, Option<String>);

#[pg_schema]
mod health {
    use super::*;
    use pgrx::JsonB;

    /// Let `grantee` read the caller's samples of `kinds` recorded inside [data_from, data_until]
    /// until `expires_at`. Returns the share's id.
    #[pg_extern(volatile, security_definer)]
    fn share(
        grantee: Option<pgrx::Uuid>,
        kinds: Option<Vec<String>>,
        data_from: default!(Option<TimestampWithTimeZone>, "NULL"),
        data_until: default!(Option<TimestampWithTimeZone>, "NULL"),
        expires_at: default!(Option<TimestampWithTimeZone>, "NULL"),
    ) -> pgrx::Uuid {
        let owner = caller("health.share");
        let bad = |m: &str| -> ! { error::bad_argument(format!("health.share: {m}")) };
        let grantee = grantee.map(from_pg).unwrap_or_else(|| bad("grantee must not be NULL"));
        if grantee == owner {
            bad("you cannot share with yourself");
        }
        let kinds = check_terms("health.share", kinds, data_from, data_until, expires_at);
        let exists = select_one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM auth.users WHERE id OPERATOR(pg_catalog.=) $1)",
            &[to_pg(grantee).into()],
        )
        .unwrap_or(false);
        if !exists {
            bad("no such user to share with");
        }
        let id = insert_share(owner, grantee, kinds, data_from, data_until, expires_at);
        to_pg(id)
    }

    /// End a share the caller gave (at once: the next read and the next event are refused).
    #[pg_extern(volatile, security_definer)]
    fn revoke_share(share_id: Option<pgrx::Uuid>) {
        let owner = caller("health.revoke_share");
        let id = share_id.unwrap_or_else(|| error::bad_argument("health.revoke_share: share_id must not be NULL"));
        let n = Spi::connect_mut(|c| {
            c.update(
                "UPDATE health.shares SET revoked_at = pg_catalog.clock_timestamp() \
                  WHERE id OPERATOR(pg_catalog.=) $1 AND owner_id OPERATOR(pg_catalog.=) $2 AND revoked_at IS NULL RETURNING id",
                None,
                &[id.into(), to_pg(owner).into()],
            )
            .map(|t| t.len())
        })
        .unwrap_or_else(|e| error::spi_failed("health.revoke_share", e));
        if n == 0 {
            error::raise(Code::ERRCODE_UNDEFINED_OBJECT, "health.revoke_share: no active share of yours with that id");
        }
    }

    /// The shares the caller gave and received (nobody else's).
    #[pg_extern(stable, security_definer)]
    fn shares() -> TableIterator<'static, (name!(share, JsonB),)> {
        let me = caller("health.shares");
        let rows: Vec<(JsonB,)> = Spi::connect(|c| {
            c.select(
                "SELECT pg_catalog.to_jsonb(s) OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object( \
                        'direction', CASE WHEN s.owner_id OPERATOR(pg_catalog.=) $1 THEN 'given' ELSE 'received' END, \
                        'active', s.revoked_at IS NULL AND (s.expires_at IS NULL OR s.expires_at OPERATOR(pg_catalog.>) pg_catalog.now())) \
                   FROM health.shares s WHERE s.owner_id OPERATOR(pg_catalog.=) $1 OR s.grantee_id OPERATOR(pg_catalog.=) $1 \
                  ORDER BY s.created_at DESC, s.id",
                None,
                &[to_pg(me).into()],
            )
            .unwrap_or_else(|e| error::spi_failed("health.shares", e))
            .filter_map(|r| Some((r.get::<JsonB>(1).ok().flatten()?,)))
            .collect()
        });
        TableIterator::new(rows)
    }

    /// Of `keys` — the keys of an owner's changed rows as a change carries them: one object or an
    /// array of them — those the caller may see now under its active shares from `owner` (their
    /// kinds and data windows, the rule `shared_samples` reads by), as an array in the given
    /// order, empty when none. A gateway that reads the change feed by logical replication asks
    /// it as the grantee before it hands a grantee an owner's change, so a revoked or expired
    /// share is not heard from the next change on. It tells the caller nothing its own
    /// `health.shares()` does not.
    #[pg_extern(volatile, security_definer)]
    fn shared_keys(owner: Option<pgrx::Uuid>, keys: Option<JsonB>) -> JsonB {
        let me = caller("health.shared_keys");
        let items: Vec<String> = match keys.map(|k| k.0) {
            Some(serde_json::Value::Array(many)) => many.iter().map(|k| k.to_string()).collect(),
            Some(one) => vec![one.to_string()],
            None => Vec::new(),
        };
        let visible = match owner {
            Some(owner) if !items.is_empty() => {
                let shares = live_shares(&LIVE_SHARES_TO, &[from_pg(owner), me]);
                shared_items(&shares, &items).into_iter().flat_map(|(_, rows)| rows).collect()
            }
            _ => Vec::new(),
        };
        JsonB(serde_json::Value::Array(visible.iter().filter_map(|k| serde_json::from_str(k).ok()).collect()))
    }

    /// The owner's samples the caller may see under its active shares — nothing else — and a
    /// record of the read in health.access_log (when it returns rows). 42501 without an
    /// active share.
    // pgrx needs the row type spelled out in the signature (it reads the names from it).
    #[allow(clippy::type_complexity)]
    #[pg_extern(volatile, security_definer)]
    fn shared_samples(
        owner: Option<pgrx::Uuid>,
        kind: default!(Option<String>, "NULL"),
        from: default!(Option<TimestampWithTimeZone>, "NULL"),
        until: default!(Option<TimestampWithTimeZone>, "NULL"),
    ) -> TableIterator<
        'static,
        (
            name!(id, i64),
            name!(kind, String),
            name!(value, f64),
            name!(unit, String),
            name!(recorded_at, TimestampWithTimeZone),
            name!(ended_at, Option<TimestampWithTimeZone>),
            name!(source, Option<String>),
        ),
    > {
        let me = caller("health.shared_samples");
        let owner =
            owner.map(from_pg).unwrap_or_else(|| error::bad_argument("health.shared_samples: owner must not be NULL"));
        if let (Some(f), Some(u)) = (from, until) {
            if f > u {
                error::bad_argument("health.shared_samples: from > until");
            }
        }
        let shares = active_shares(owner, me);
        if shares.is_empty() {
            error::raise(
                Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
                "health.shared_samples: no active share from this owner to you",
            );
        }
        let grant = Grant::new(&shares, kind.as_deref(), from, until);
        let mut rows: Vec<SharedRow> = Vec::new();
        // The window of each share is applied in SQL (an OR of the shares' conditions), the
        // caller's filters on top; the same condition serves every table.
        let (condition, args) = grant.sql_condition(3);
        // Only superusers' tables: a grantee reads with the extension owner's rights, which must
        // never run another role's code (a table owned by another role is not shared).
        let tables = if condition.is_empty() { Vec::new() } else { crate::registry::metric_tables() };
        for table in tables.into_iter().filter(|t| t.trusted).map(|t| t.name) {
            // One statement per table.
            let sql = format!(
                "SELECT id::pg_catalog.int8, kind::pg_catalog.text, value::pg_catalog.float8, unit::pg_catalog.text, recorded_at, ended_at, source::pg_catalog.text \
                   FROM {table} WHERE user_id OPERATOR(pg_catalog.=) $1 AND ({condition}) \
                    AND ($2::pg_catalog.text IS NULL OR kind OPERATOR(pg_catalog.=) $2) ORDER BY recorded_at, id"
            );
            let mut all_args: Vec<pgrx::datum::DatumWithOid> = vec![to_pg(owner).into(), kind.clone().into()];
            all_args.extend(args.iter().cloned().map(|a| a.into_datum_with_oid()));
            Spi::connect(|c| {
                let found =
                    c.select(&sql, None, &all_args).unwrap_or_else(|e| error::spi_failed("health.shared_samples", e));
                for r in found {
                    if let (Some(id), Some(k), Some(v), Some(u), Some(at)) = (
                        r.get::<i64>(1).ok().flatten(),
                        r.get::<String>(2).ok().flatten(),
                        r.get::<f64>(3).ok().flatten(),
                        r.get::<String>(4).ok().flatten(),
                        r.get::<TimestampWithTimeZone>(5).ok().flatten(),
                    ) {
                        rows.push((id, k, v, u, at, r.get(6).ok().flatten(), r.get(7).ok().flatten()));
                    }
                }
            });
        }
        if !rows.is_empty() {
            let mut kinds: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
            kinds.sort();
            kinds.dedup();
            log_read("health.shared_samples", owner, me, &shares, kinds, rows.len() as i64);
        }
        TableIterator::new(rows)
    }

    /// The owner's samples of `kind` the caller may see under its active shares, in buckets of
    /// local time (as `health.summary`), and a record of the read in health.access_log (when a
    /// bucket is returned; its row_count is the number of samples summarised). 42501 without
    /// an active share.
    #[allow(clippy::type_complexity)]
    #[pg_extern(volatile, security_definer)]
    fn shared_summary(
        owner: Option<pgrx::Uuid>,
        kind: Option<String>,
        bucket: default!(Option<String>, "'day'"),
        from: default!(Option<TimestampWithTimeZone>, "NULL"),
        until: default!(Option<TimestampWithTimeZone>, "NULL"),
        tz: default!(Option<String>, "'UTC'"),
    ) -> TableIterator<
        'static,
        (
            name!(bucket_start, TimestampWithTimeZone),
            name!(n, i64),
            name!(min, f64),
            name!(avg, f64),
            name!(max, f64),
            name!(sum, f64),
        ),
    > {
        use crate::health::summary;
        let me = caller("health.shared_summary");
        let owner =
            owner.map(from_pg).unwrap_or_else(|| error::bad_argument("health.shared_summary: owner must not be NULL"));
        let request = summary::request("health.shared_summary", to_pg(owner), kind, bucket, from, until, tz);
        let shares = active_shares(owner, me);
        if shares.is_empty() {
            error::raise(
                Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
                "health.shared_summary: no active share from this owner to you",
            );
        }
        // The shares' kinds and windows, exactly as shared_samples applies them (the caller's
        // from/until are already in summary's own statement).
        let grant = Grant::new(&shares, Some(&request.kind), None, None);
        let (condition, args) = grant.sql_condition(7);
        let mut buckets = summary::Buckets::default();
        let tables = if condition.is_empty() { Vec::new() } else { crate::registry::metric_tables() };
        for table in tables.into_iter().filter(|t| t.trusted) {
            let args = args.iter().cloned().map(|a| a.into_datum_with_oid()).collect();
            summary::aggregate(&table.name, &request, &condition, args, &mut buckets);
        }
        let samples = buckets.samples();
        if samples > 0 {
            log_read("health.shared_summary", owner, me, &shares, vec![request.kind.clone()], samples);
        }
        TableIterator::new(summary::rows(buckets))
    }

    /// Who read the caller's shared samples, when, what and how many.
    #[allow(clippy::type_complexity)]
    #[pg_extern(stable, security_definer)]
    fn my_access_log() -> TableIterator<
        'static,
        (
            name!(at, TimestampWithTimeZone),
            name!(grantee_id, pgrx::Uuid),
            name!(grantee_email, Option<String>),
            name!(share_ids, Vec<pgrx::Uuid>),
            name!(kinds, Vec<String>),
            name!(row_count, i32),
        ),
    > {
        let me = caller("health.my_access_log");
        let rows: Vec<_> = Spi::connect(|c| {
            c.select(
                "SELECT l.at, l.grantee_id, u.email, l.share_ids, l.kinds, l.row_count FROM health.access_log l \
                   LEFT JOIN auth.users u ON u.id OPERATOR(pg_catalog.=) l.grantee_id \
                  WHERE l.owner_id OPERATOR(pg_catalog.=) $1 ORDER BY l.at DESC, l.id DESC",
                None,
                &[to_pg(me).into()],
            )
            .unwrap_or_else(|e| error::spi_failed("health.my_access_log", e))
            .filter_map(|r| {
                Some((
                    r.get::<TimestampWithTimeZone>(1).ok().flatten()?,
                    r.get::<pgrx::Uuid>(2).ok().flatten()?,
                    r.get::<String>(3).ok().flatten(),
                    r.get::<Vec<pgrx::Uuid>>(4).ok().flatten()?,
                    r.get::<Vec<String>>(5).ok().flatten()?,
                    r.get::<i32>(6).ok().flatten()?,
                ))
            })
            .collect()
        });
        TableIterator::new(rows)
    }
}
