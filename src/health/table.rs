//! `health.create_metric_table(name)`: the standard sample table of docs/sql-reference.md.
use crate::error;
use crate::pg::spi::select_one;
use crate::pg::sql::{Ident, QualifiedName};
use crate::policy;
use crate::realtime::{self, KeyColumns, Payload};
use pgrx::prelude::*;

/// DDL of the standard table, for an already quoted (possibly schema-qualified) name.
///
/// Decisions, so a DBA can rely on them:
/// - A re-sent sample is the same (user_id, kind, recorded_at, source): a device sends a
///   sample again with the same timestamp, and two devices measuring the same instant are two
///   samples. The value is not part of the key (a corrected re-send is still a duplicate; fix
///   it with UPDATE). `NULLS NOT DISTINCT` (PostgreSQL 15) makes a sample without a source a
///   duplicate of itself too, where a plain UNIQUE would store NULL-source re-sends twice.
/// - That unique index is declared `(user_id, kind, recorded_at DESC, source)`, so the one index
///   is both the duplicate check and the `(user_id, kind, recorded_at desc)` index that serves
///   "latest samples of a kind for this user": one index to maintain per insert, not two.
/// - `kind` has no foreign key to `health.metric_kinds`: the validation trigger already refuses
///   an unknown kind (22023) from the cached catalog, and a foreign key would check it again with
///   one SPI lookup per row (~3 µs, a third of a 10k-sample `ingest`). Deleting a kind that rows
///   still use is refused by `health.refuse_deleting_kinds_in_use` instead (23503, as before).
/// - Values are stored in the kind's canonical unit (the trigger rewrites them), so queries
///   never convert; `unit` keeps saying what the number means.
pub fn metric_table_ddl(table: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE {table} (\n\
             \x20   id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n\
             \x20   user_id     uuid NOT NULL DEFAULT auth.uid(),\n\
             \x20   kind        text NOT NULL,\n\
             \x20   value       double precision NOT NULL,\n\
             \x20   unit        text NOT NULL,\n\
             \x20   recorded_at timestamptz NOT NULL,\n\
             \x20   source      text,\n\
             \x20   created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()\n\
             )"
        ),
        format!("CREATE UNIQUE INDEX ON {table} (user_id, kind, recorded_at DESC, source) NULLS NOT DISTINCT"),
        format!(
            "CREATE TRIGGER normalize_sample BEFORE INSERT OR UPDATE OF kind, value, unit ON {table} \
             FOR EACH ROW EXECUTE FUNCTION health.normalize_sample()"
        ),
        // 0.2.0's columns, added the way updates add them to older tables, so both end alike.
        format!("{}", sync_columns_ddl(table).join(";\n")),
        format!(
            "COMMENT ON TABLE {table} IS 'Health samples (health.create_metric_table): values in the canonical unit of health.metric_kinds, one row per (user_id, kind, recorded_at, source), owner-only RLS'"
        ),
    ]
}

/// What 0.2.0 adds to the standard table: interval end, the writer's UTC offset, the platform's
/// sync identity and the blood-pressure pairing (docs/ingest.md).
/// - `ended_at`: an interval sample (steps, sleep) keeps both ends; `recorded_at` is the start.
/// - `tz_offset`: minutes east of UTC the device was in, to bucket days in the user's local time.
/// - `sync_id`, `sync_version`: HealthKit's sync identifier/version, Health Connect's client record
///   id/version. Unique per (user, source, sync_id): a higher version replaces the stored row.
/// - `correlation_id`: the two rows of one blood-pressure measurement share it.
pub fn sync_columns_ddl(table: &str) -> Vec<String> {
    vec![
        format!(
            "ALTER TABLE {table} \
             ADD COLUMN ended_at timestamptz CHECK (ended_at >= recorded_at), \
             ADD COLUMN tz_offset smallint CHECK (tz_offset BETWEEN -1080 AND 1080), \
             ADD COLUMN sync_id text, \
             ADD COLUMN sync_version bigint, \
             ADD COLUMN correlation_id uuid"
        ),
        format!(
            "CREATE UNIQUE INDEX ON {table} (user_id, source, sync_id) NULLS NOT DISTINCT WHERE sync_id IS NOT NULL"
        ),
    ]
}

/// Bring a standard table made by an earlier version up to this one (run by ALTER EXTENSION
/// UPDATE for every table `health.create_metric_table` made).
pub fn upgrade_metric_table(relid: pg_sys::Oid) {
    let table = crate::pg::relation::qualified_name(relid);
    let mut statements = sync_columns_ddl(table.as_sql());
    // 0.1.0 made `kind` a foreign key; the trigger's catalog check and the delete guard replace it.
    let foreign_keys = select_one::<Vec<String>>(
        "SELECT pg_catalog.array_agg(conname::pg_catalog.text) FROM pg_catalog.pg_constraint \
          WHERE conrelid OPERATOR(pg_catalog.=) $1 AND contype OPERATOR(pg_catalog.=) 'f' \
            AND confrelid OPERATOR(pg_catalog.=) 'health.metric_kinds'::pg_catalog.regclass",
        &[relid.into()],
    )
    .unwrap_or_default();
    for name in foreign_keys {
        statements.push(format!("ALTER TABLE {} DROP CONSTRAINT {}", table.as_sql(), Ident::quote(&name)));
    }
    for statement in statements {
        Spi::run(&statement).unwrap_or_else(|e| error::bad_argument(format!("health._upgrade_metric_table: {e}")));
    }
}

/// A table name written as in SQL (`metrics`, `public.metrics`, `"My Metrics"`), split by
/// Postgres's own `parse_ident` and quoted again part by part.
fn quoted_name(name: &str) -> String {
    let parts = select_one::<Vec<String>>("SELECT pg_catalog.parse_ident($1)", &[name.into()]).unwrap_or_default();
    match parts.as_slice() {
        [table] => Ident::quote(table).to_string(),
        [schema, table] => QualifiedName::quote(schema, table).to_string(),
        _ => error::bad_argument(format!(
            "health.create_metric_table: invalid table name {name:?} (use table or schema.table)"
        )),
    }
}

/// The columns a metric table announces per row: the row's id, what it measures and when.
const ANNOUNCED_KEYS: [&str; 3] = ["id", "kind", "recorded_at"];

pub fn create_metric_table(name: &str) -> pg_sys::Oid {
    let table = quoted_name(name);
    for statement in metric_table_ddl(&table) {
        Spi::run(&statement).unwrap_or_else(|e| error::bad_argument(format!("health.create_metric_table: {e}")));
    }
    let oid = select_one::<pg_sys::Oid>("SELECT pg_catalog.to_regclass($1)::pg_catalog.oid", &[table.as_str().into()])
        .unwrap_or_else(|| error::bad_argument(format!("health.create_metric_table: {table} was not created")));
    // Owner-only RLS (with the grants to authenticated) and per-user realtime. These run as the
    // caller, who has just created (and so owns) the table.
    let commands = ["select", "insert", "update", "delete"].map(String::from);
    policy::enable(oid, "user_id", &commands, &["authenticated".to_string()], false);
    realtime::enable(oid, "user_id", Payload::Keys, KeyColumns::Named(&ANNOUNCED_KEYS));
    // Export, sharing and erasure know it by this entry (by oid), not by its name or comment.
    crate::registry::record_metric_table(oid);
    oid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_uses_the_quoted_name_everywhere() {
        let ddl = metric_table_ddl(r#"public."a""; drop table x; --""#);
        assert_eq!(ddl.len(), 5);
        for s in &ddl {
            assert!(s.contains(r#"public."a""; drop table x; --""#), "{s}");
        }
        assert!(ddl[1].contains("(user_id, kind, recorded_at DESC, source) NULLS NOT DISTINCT"));
        assert!(ddl[0].contains("user_id     uuid NOT NULL DEFAULT auth.uid()"));
        assert!(ddl[3].starts_with(&format!("ALTER TABLE {} ADD COLUMN ended_at", r#"public."a""; drop table x; --""#)));
        assert!(ddl[3].contains("WHERE sync_id IS NOT NULL"), "{}", ddl[3]);
    }
}
