//! The owner's data out, and erased (docs/export.md): FHIR R4 Observations (GDPR Art. 20 in a
//! standard format), `health.export_my_data()` (Art. 20, everything) and
//! `health.erase_my_data(confirm)` (Art. 17). The FHIR mapping itself is pure (`fhir.rs`); this
//! file reads the rows.
//!
//! Export and erasure run as the extension owner (they read and delete in `auth`, which no
//! application role can read), so RLS does not filter for them: every statement here names the
//! caller's id explicitly.
use super::fhir::{self, Kind, Sample};
use crate::auth::identity;
use crate::error;
use crate::pg::uuid::{from_pg, to_pg};
use crate::registry::{metric_tables, owner_tables};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};
use std::collections::HashMap;

fn caller() -> uuid::Uuid {
    identity::current_sub()
        .unwrap_or_else(|| error::not_authorized("no authenticated user (call auth.authenticate first)"))
}

fn kinds() -> HashMap<String, Kind> {
    Spi::connect(|c| {
        c.select("SELECT code, display, loinc FROM health.metric_kinds", None, &[])
            .unwrap_or_else(|e| error::spi_failed("reading health.metric_kinds", e))
            .filter_map(|r| {
                let code: String = r.get(1).ok().flatten()?;
                let display: String = r.get(2).ok().flatten()?;
                Some((code.clone(), Kind { code, display, loinc: r.get(3).ok().flatten() }))
            })
            .collect()
    })
}

/// The window and kinds of an export, checked (22023 for a window that ends before it starts).
struct Filter {
    from: Option<TimestampWithTimeZone>,
    until: Option<TimestampWithTimeZone>,
    kinds: Option<Vec<String>>,
}

impl Filter {
    fn new(
        from: Option<TimestampWithTimeZone>,
        until: Option<TimestampWithTimeZone>,
        kinds: Option<Vec<String>>,
    ) -> Filter {
        if let (Some(f), Some(u)) = (from, until) {
            if f > u {
                error::bad_argument("the export window ends before it starts (from > until)");
            }
        }
        Filter { from, until, kinds }
    }
}

/// The caller's samples of every metric table, in time order.
fn samples(owner: uuid::Uuid, filter: &Filter) -> Vec<Sample> {
    let mut out = Vec::new();
    for managed in metric_tables() {
        let table = &managed.name;
        let sql = format!(
            "SELECT id::pg_catalog.int8, kind::pg_catalog.text, value::pg_catalog.float8, unit::pg_catalog.text, \
                    (pg_catalog.date_part('epoch', recorded_at)::pg_catalog.numeric * 1000000)::pg_catalog.int8, \
                    (pg_catalog.date_part('epoch', ended_at)::pg_catalog.numeric * 1000000)::pg_catalog.int8, \
                    tz_offset::pg_catalog.int4, source::pg_catalog.text, correlation_id \
               FROM {table} WHERE user_id OPERATOR(pg_catalog.=) $1 \
                AND ($2::pg_catalog.timestamptz IS NULL OR recorded_at OPERATOR(pg_catalog.>=) $2) \
                AND ($3::pg_catalog.timestamptz IS NULL OR recorded_at OPERATOR(pg_catalog.<) $3) \
                AND ($4::pg_catalog.text[] IS NULL OR kind OPERATOR(pg_catalog.=) ANY ($4)) \
              ORDER BY recorded_at, id"
        );
        let mut read = || {
            Spi::connect(|c| {
                let rows = c
                    .select(
                        &sql,
                        None,
                        &[to_pg(owner).into(), filter.from.into(), filter.until.into(), filter.kinds.clone().into()],
                    )
                    .unwrap_or_else(|e| error::spi_failed(&format!("reading {table}"), e));
                for r in rows {
                    let get_i64 = |i| r.get::<i64>(i).ok().flatten();
                    let (Some(id), Some(kind), Some(value), Some(unit), Some(at)) = (
                        get_i64(1),
                        r.get::<String>(2).ok().flatten(),
                        r.get::<f64>(3).ok().flatten(),
                        r.get::<String>(4).ok().flatten(),
                        get_i64(5),
                    ) else {
                        continue;
                    };
                    out.push(Sample {
                        id,
                        kind,
                        value,
                        unit,
                        recorded_at_us: at,
                        ended_at_us: get_i64(6),
                        tz_offset_min: r.get::<i32>(7).ok().flatten(),
                        source: r.get::<String>(8).ok().flatten(),
                        correlation_id: r.get::<pgrx::Uuid>(9).ok().flatten().map(from_pg),
                    });
                }
            })
        };
        if managed.trusted {
            read()
        } else {
            crate::pg::as_caller::as_caller(read)
        }
    }
    out.sort_by_key(|s| (s.recorded_at_us, s.id));
    out
}

fn bundle_of(owner: uuid::Uuid, filter: &Filter) -> Value {
    fhir::bundle(&owner, &samples(owner, filter), &kinds()).unwrap_or_else(|e| error::bad_argument(e.to_string()))
}

/// A query's rows as a JSON array of objects (jsonb_agg), for the export.
fn json_rows(sql: &str, owner: uuid::Uuid) -> Value {
    crate::pg::spi::select_one::<JsonB>(
        &format!("SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r)), '[]') FROM ({sql}) r"),
        &[to_pg(owner).into()],
    )
    .map(|j| j.0)
    .unwrap_or(Value::Array(vec![]))
}

#[pg_schema]
mod health {
    use super::*;

    /// The caller's samples as a FHIR R4 `collection` Bundle of Observations.
    #[pg_extern(stable, security_definer)]
    fn fhir_observations(
        from: default!(Option<TimestampWithTimeZone>, "NULL"),
        until: default!(Option<TimestampWithTimeZone>, "NULL"),
        kinds: default!(Option<Vec<String>>, "NULL"),
    ) -> JsonB {
        let owner = caller();
        JsonB(bundle_of(owner, &Filter::new(from, until, kinds)))
    }

    /// The same Observations one per row (NDJSON when written out line by line): for exports too
    /// large for one jsonb value (1 GB).
    #[pg_extern(stable, security_definer)]
    fn fhir_observations_ndjson(
        from: default!(Option<TimestampWithTimeZone>, "NULL"),
        until: default!(Option<TimestampWithTimeZone>, "NULL"),
        kinds: default!(Option<Vec<String>>, "NULL"),
    ) -> SetOfIterator<'static, JsonB> {
        let owner = caller();
        let rows = fhir::observations(&owner, &samples(owner, &Filter::new(from, until, kinds)), &super::kinds())
            .unwrap_or_else(|e| error::bad_argument(e.to_string()));
        SetOfIterator::new(rows.into_iter().map(JsonB))
    }

    /// Everything the database holds about the caller (GDPR Art. 20): the account without its
    /// password hash, sessions, samples as FHIR, rejected samples.
    #[pg_extern(stable, security_definer)]
    fn export_my_data() -> JsonB {
        let owner = caller();
        let account = json_rows(
            "SELECT id, email, role, created_at, last_sign_in_at FROM auth.users WHERE id OPERATOR(pg_catalog.=) $1",
            owner,
        );
        JsonB(json!({
            "format": "health_rls export 1",
            "user_id": owner.to_string(),
            "account": account.as_array().and_then(|a| a.first().cloned()),
            "sessions": json_rows(
                "SELECT id, created_at, refreshed_at, revoked_at FROM auth.sessions WHERE user_id OPERATOR(pg_catalog.=) $1 ORDER BY created_at",
                owner,
            ),
            "samples": bundle_of(owner, &Filter::new(None, None, None)),
            "shares": json_rows(
                "SELECT id, owner_id, grantee_id, kinds, data_from, data_until, expires_at, created_at, revoked_at FROM health.shares \
                  WHERE owner_id OPERATOR(pg_catalog.=) $1 OR grantee_id OPERATOR(pg_catalog.=) $1 ORDER BY created_at",
                owner,
            ),
            "invitations": json_rows(
                "SELECT id, owner_id, email, kinds, data_from, data_until, expires_at, created_at, valid_until, \
                        accepted_at, declined_at, revoked_at, share_id FROM health.invitations \
                  WHERE owner_id OPERATOR(pg_catalog.=) $1 \
                     OR email OPERATOR(pg_catalog.=) (SELECT pg_catalog.lower(email) FROM auth.users WHERE id OPERATOR(pg_catalog.=) $1) \
                  ORDER BY created_at",
                owner,
            ),
            "access_log": json_rows(
                "SELECT at, owner_id, grantee_id, share_ids, kinds, row_count FROM health.access_log \
                  WHERE owner_id OPERATOR(pg_catalog.=) $1 OR grantee_id OPERATOR(pg_catalog.=) $1 ORDER BY at",
                owner,
            ),
            "change_log": json_rows(
                "SELECT c.seq OPERATOR(pg_catalog.+) e.o OPERATOR(pg_catalog.-) 1 AS seq, c.tbl, c.op, e.k AS keys, c.at \
                   FROM health_rls.changes c, \
                        LATERAL pg_catalog.jsonb_array_elements(CASE WHEN c.n OPERATOR(pg_catalog.=) 1 \
                                  THEN pg_catalog.jsonb_build_array(c.keys) ELSE c.keys END) WITH ORDINALITY AS e(k, o) \
                  WHERE c.user_id OPERATOR(pg_catalog.=) $1 ORDER BY c.seq, e.o",
                owner,
            ),
            "rejected_samples": json_rows(
                "SELECT id, target_table, ord, sample, reason, sqlstate, received_at FROM health.rejected_samples \
                  WHERE user_id OPERATOR(pg_catalog.=) $1 ORDER BY id",
                owner,
            ),
        }))
    }

    /// Delete everything of the caller (GDPR Art. 17): samples in every owner-RLS table, rejected
    /// samples, sessions and refresh tokens, the account. `confirm` must be the caller's email.
    /// The caller's live streams hear it first. Returns the rows deleted per table.
    #[pg_extern(volatile, security_definer)]
    fn erase_my_data(confirm: Option<&str>) -> JsonB {
        let owner = caller();
        let email = crate::pg::spi::select_one::<String>(
            "SELECT email FROM auth.users WHERE id OPERATOR(pg_catalog.=) $1",
            &[to_pg(owner).into()],
        )
        .or_else(|| identity::current().claim_str("email"));
        let confirmed = match (email.as_deref(), confirm) {
            (Some(e), Some(c)) => e.to_lowercase() == c.trim().to_lowercase(),
            _ => false,
        };
        if !confirmed {
            error::bad_argument(
                "health.erase_my_data: confirm must be the email address of your account; nothing was deleted",
            );
        }
        crate::realtime::announce_erasure(&owner);
        let mut deleted = serde_json::Map::new();
        let statement = |label: &str, sql: &str| {
            Spi::connect_mut(|c| c.update(sql, None, &[to_pg(owner).into()]).map(|t| t.len()))
                .unwrap_or_else(|e| error::spi_failed(&format!("erasing from {label}"), e))
        };
        // The change feed last: deleting from a realtime table logs (and announces) the deletions.
        let mut tables = owner_tables();
        tables.sort_by_key(|(t, _)| t.name == "health_rls.changes");
        for (managed, owner_column) in tables {
            let table = managed.name;
            let delete = format!("DELETE FROM {table} WHERE {owner_column} OPERATOR(pg_catalog.=) $1 RETURNING 1");
            if managed.trusted {
                let n = statement(&table, &delete);
                deleted.insert(table, json!(n));
                continue;
            }
            // Not a superuser's table: deleted with the caller's rights, under its policies; rows
            // those policies keep from the caller stop the erasure instead of staying silently.
            let (n, left) = crate::pg::as_caller::as_caller(|| {
                let n = statement(&table, &delete);
                let left = statement(
                    &table,
                    &format!("SELECT 1 FROM {table} WHERE {owner_column} OPERATOR(pg_catalog.=) $1 LIMIT 1"),
                );
                (n, left)
            });
            if left > 0 {
                error::raise(
                    error::Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
                    format!("health.erase_my_data: your rows in {table} cannot be deleted by you (its owner is not a superuser and its policies allow you no DELETE); nothing was deleted"),
                );
            }
            deleted.insert(table, json!(n));
        }
        let mut run = |label: String, sql: String| {
            let n = statement(&label, &sql);
            deleted.insert(label, json!(n));
        };
        run(
            "health.shares".into(),
            "DELETE FROM health.shares WHERE owner_id OPERATOR(pg_catalog.=) $1 OR grantee_id OPERATOR(pg_catalog.=) $1 RETURNING 1".into(),
        );
        run(
            "health.access_log".into(),
            "DELETE FROM health.access_log WHERE owner_id OPERATOR(pg_catalog.=) $1 OR grantee_id OPERATOR(pg_catalog.=) $1 RETURNING 1".into(),
        );
        run(
            "health.invitations".into(),
            "DELETE FROM health.invitations WHERE owner_id OPERATOR(pg_catalog.=) $1 \
                OR email OPERATOR(pg_catalog.=) (SELECT pg_catalog.lower(email) FROM auth.users WHERE id OPERATOR(pg_catalog.=) $1) RETURNING 1"
                .into(),
        );
        run(
            "health_rls.change_counters".into(),
            "DELETE FROM health_rls.change_counters WHERE user_id OPERATOR(pg_catalog.=) $1 RETURNING 1".into(),
        );
        run(
            "health_rls.summary_hours".into(),
            "DELETE FROM health_rls.summary_hours WHERE user_id OPERATOR(pg_catalog.=) $1 RETURNING 1".into(),
        );
        run(
            "health_rls.summary_state".into(),
            "DELETE FROM health_rls.summary_state WHERE user_id OPERATOR(pg_catalog.=) $1 RETURNING 1".into(),
        );
        run(
            "auth.refresh_tokens".into(),
            "DELETE FROM auth.refresh_tokens WHERE session_id IN \
              (SELECT id FROM auth.sessions WHERE user_id OPERATOR(pg_catalog.=) $1) RETURNING 1"
                .into(),
        );
        run(
            "auth.sessions".into(),
            "DELETE FROM auth.sessions WHERE user_id OPERATOR(pg_catalog.=) $1 RETURNING 1".into(),
        );
        run("auth.users".into(), "DELETE FROM auth.users WHERE id OPERATOR(pg_catalog.=) $1 RETURNING 1".into());
        JsonB(json!({"erased_user": owner.to_string(), "deleted": deleted}))
    }
}
