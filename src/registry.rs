//! The tables the extension manages, recorded in `health_rls.managed_tables` (sql/registry.sql):
//! the pattern of pgmq's `meta` table. What made a table ours is written when it happens —
//! `health.create_metric_table`, `enable_owner_rls`, `enable_realtime` — and read back by oid, so
//! a comment, a rename or a move to another schema changes nothing about export, sharing or
//! erasure. Readers (below the writers) join `pg_class`: an entry whose table is gone is never
//! returned.
use crate::error;
use crate::pg::spi::KeptStatement;
use pgrx::prelude::*;

extension_sql_file!("../sql/registry.sql", name = "registry", requires = ["bootstrap"]);

fn run(what: &str, sql: &str, args: &[pgrx::datum::DatumWithOid]) {
    // An update from 0.1.0 runs 0.2.0's script with this library, before the registry exists;
    // the 0.3.0 script then fills it from what the earlier versions made.
    let exists = crate::pg::spi::select_one::<bool>(
        "SELECT pg_catalog.to_regclass('health_rls.managed_tables') IS NOT NULL",
        &[],
    );
    if exists != Some(true) {
        return;
    }
    Spi::connect_mut(|c| c.update(sql, None, args).map(|_| ()))
        .unwrap_or_else(|e| error::spi_failed(&format!("recording {what} in health_rls.managed_tables"), e));
}

/// Drop the entry of `relid` once nothing of ours is left on it.
const FORGET_EMPTY: &str =
    "DELETE FROM health_rls.managed_tables WHERE relid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass \
     AND NOT metric_table AND owner_column IS NULL AND realtime_column IS NULL";

/// `relid` is a standard metric table (`health.create_metric_table`).
pub fn record_metric_table(relid: pg_sys::Oid) {
    run(
        "a metric table",
        "INSERT INTO health_rls.managed_tables (relid, metric_table) VALUES ($1::pg_catalog.regclass, true) \
         ON CONFLICT (relid) DO UPDATE SET metric_table = true",
        &[relid.into()],
    );
}

/// `relid` has owner-only RLS on `owner_column` for `roles`, covering `commands`.
pub fn record_owner_rls(relid: pg_sys::Oid, owner_column: &str, roles: &[String], commands: &[String]) {
    run(
        "owner-only RLS",
        "INSERT INTO health_rls.managed_tables (relid, owner_column, owner_roles, owner_commands) \
         VALUES ($1::pg_catalog.regclass, $2, $3::pg_catalog.name[], $4) \
         ON CONFLICT (relid) DO UPDATE SET owner_column = EXCLUDED.owner_column, owner_roles = EXCLUDED.owner_roles, \
                                           owner_commands = EXCLUDED.owner_commands",
        &[relid.into(), owner_column.into(), roles.to_vec().into(), commands.to_vec().into()],
    );
}

/// `relid` no longer has owner-only RLS.
pub fn forget_owner_rls(relid: pg_sys::Oid) {
    run(
        "the end of owner-only RLS",
        "UPDATE health_rls.managed_tables SET owner_column = NULL, owner_roles = NULL, owner_commands = NULL \
          WHERE relid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
        &[relid.into()],
    );
    run("the end of owner-only RLS", FORGET_EMPTY, &[relid.into()]);
}

/// `relid` announces its rows to the user in `owner_column`, as `payload` ('keys' or 'row').
pub fn record_realtime(relid: pg_sys::Oid, owner_column: &str, payload: &str) {
    run(
        "realtime",
        "INSERT INTO health_rls.managed_tables (relid, realtime_column, realtime_payload) \
         VALUES ($1::pg_catalog.regclass, $2, $3) \
         ON CONFLICT (relid) DO UPDATE SET realtime_column = EXCLUDED.realtime_column, realtime_payload = EXCLUDED.realtime_payload",
        &[relid.into(), owner_column.into(), payload.into()],
    );
}

/// `relid` no longer announces its rows.
pub fn forget_realtime(relid: pg_sys::Oid) {
    run(
        "the end of realtime",
        "UPDATE health_rls.managed_tables SET realtime_column = NULL, realtime_payload = NULL \
          WHERE relid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
        &[relid.into()],
    );
    run("the end of realtime", FORGET_EMPTY, &[relid.into()]);
}

// Kept: every grantee read runs it. Only tables (relkind r, p), never a view registered by hand.
static METRIC_TABLES: KeptStatement = KeptStatement {
    sql: "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), r.rolsuper FROM health_rls.managed_tables m \
            JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) m.relid::pg_catalog.oid \
            JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
            JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) c.relowner \
           WHERE m.metric_table AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog.char[]) ORDER BY c.oid",
    types: &[],
    writes: false,
};

/// A table the extension manages, as its SECURITY DEFINER functions see it.
pub struct Managed {
    /// Schema-qualified and quoted.
    pub name: String,
    /// Owned by a superuser: only a superuser's code is on it, so the extension owner may read and
    /// write it. Any other table is touched only with the caller's rights (`pg::as_caller`).
    pub trusted: bool,
}

/// Every standard metric table (`health_rls.managed_tables`).
pub fn metric_tables() -> Vec<Managed> {
    Spi::connect_mut(|c| {
        METRIC_TABLES.run(c, |c, plan| {
            Ok(c.select(plan, None, &[])?
                .filter_map(|r| {
                    Some(Managed {
                        name: r.get::<String>(1).ok().flatten()?,
                        trusted: r.get::<bool>(2).ok().flatten()?,
                    })
                })
                .collect())
        })
    })
    .unwrap_or_else(|e| error::spi_failed("finding metric tables", e))
}

/// Tables with owner-only RLS (`health_rls.managed_tables`), and their owner column, quoted.
pub fn owner_tables() -> Vec<(Managed, String)> {
    Spi::connect(|c| {
        c.select(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), r.rolsuper, pg_catalog.quote_ident(m.owner_column) \
               FROM health_rls.managed_tables m \
               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) m.relid::pg_catalog.oid \
               JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
               JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) c.relowner \
              WHERE m.owner_column IS NOT NULL AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog.char[]) ORDER BY 1",
            None,
            &[],
        )
        .unwrap_or_else(|e| error::spi_failed("finding owner tables", e))
        .filter_map(|r| {
            Some((
                Managed { name: r.get::<String>(1).ok().flatten()?, trusted: r.get::<bool>(2).ok().flatten()? },
                r.get::<String>(3).ok().flatten()?,
            ))
        })
        .collect()
    })
}
