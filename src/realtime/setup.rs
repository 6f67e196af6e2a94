//! `health_rls.enable_realtime` / `disable_realtime`: the three statement triggers of a table,
//! generated as SQL text by plain functions (unit-tested below) from names quoted by `pg::sql`.
use crate::error::{self, Code};
use crate::pg::relation::{oid_of, qualified_name, require_uuid_owner};
use crate::pg::sql::{run_all, Ident, Literal, QualifiedName};
use pgrx::prelude::*;
use pgrx::PgRelation;

pub const TRIGGER_PREFIX: &str = "health_rls_realtime_";

/// What each notification carries per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// The key columns only (default): no health values travel on the notification bus.
    Keys,
    /// The whole row as JSON.
    Row,
}

impl Payload {
    pub fn parse(text: &str) -> Option<Payload> {
        match text {
            "keys" => Some(Payload::Keys),
            "row" => Some(Payload::Row),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Payload::Keys => "keys",
            Payload::Row => "row",
        }
    }
}

/// Which columns name a row in a notification; the first one names it alone when a row is too
/// large to travel whole.
pub enum KeyColumns<'a> {
    /// The table's primary key (or its `id` column when it has no primary key).
    PrimaryKey,
    Named(&'a [&'a str]),
}

/// The trigger's arguments: owner column, payload mode, key columns. Literals, not identifiers:
/// the trigger looks the names up in the table's descriptor and never puts them in SQL.
pub fn trigger_args(owner_column: &str, payload: Payload, key_columns: &[String]) -> Vec<Literal> {
    let mut args = vec![Literal::quote(owner_column), Literal::quote(payload.as_str())];
    args.extend(key_columns.iter().map(|k| Literal::quote(k)));
    args
}

/// The DDL that (re)creates the three triggers of `table`.
pub fn realtime_trigger_sql(table: &QualifiedName, args: &[Literal], existing: &[Ident]) -> Vec<String> {
    let args = args.iter().map(Literal::to_string).collect::<Vec<_>>().join(", ");
    let mut out = realtime_drop_sql(table, existing);
    for (event, referencing, name) in [
        ("INSERT", "NEW TABLE AS new_rows", "insert"),
        ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows", "update"),
        ("DELETE", "OLD TABLE AS old_rows", "delete"),
    ] {
        out.push(format!(
            "CREATE TRIGGER {TRIGGER_PREFIX}{name} AFTER {event} ON {table} REFERENCING {referencing} \
             FOR EACH STATEMENT EXECUTE FUNCTION health_rls.realtime_notify({args})"
        ));
    }
    out
}

pub fn realtime_drop_sql(table: &QualifiedName, existing: &[Ident]) -> Vec<String> {
    existing.iter().map(|t| format!("DROP TRIGGER {t} ON {table}")).collect()
}

struct TableFacts {
    name: QualifiedName,
    rls: bool,
    owner_type: Option<String>,
    primary_key: Vec<String>,
    has_id: bool,
    columns: Vec<String>,
    existing: Vec<Ident>,
}

fn table_facts(relid: pg_sys::Oid, owner_column: &str) -> TableFacts {
    let name = qualified_name(relid);
    Spi::connect(|c| {
        let t = c
            .select(
                "SELECT c.relrowsecurity, \
                   (SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a \
                     WHERE a.attrelid = c.oid AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped), \
                   ARRAY(SELECT a.attname::text FROM pg_catalog.pg_index i \
                           CROSS JOIN LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) \
                           JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                          WHERE i.indrelid = c.oid AND i.indisprimary ORDER BY k.n), \
                   ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a \
                          WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), \
                   ARRAY(SELECT t.tgname::text FROM pg_catalog.pg_trigger t \
                          WHERE t.tgrelid = c.oid AND t.tgname LIKE 'health\\_rls\\_realtime\\_%' ORDER BY 1) \
                 FROM pg_catalog.pg_class c WHERE c.oid = $1",
                None,
                &[relid.into(), owner_column.into()],
            )
            .unwrap_or_else(|e| error::spi_failed("catalog lookup failed", e));
        let r = t.first();
        let columns: Vec<String> = r.get(4).ok().flatten().unwrap_or_default();
        TableFacts {
            rls: r.get(1).ok().flatten().unwrap_or(false),
            owner_type: r.get(2).ok().flatten(),
            primary_key: r.get(3).ok().flatten().unwrap_or_default(),
            has_id: columns.iter().any(|c| c == "id"),
            columns,
            existing: r
                .get::<Vec<String>>(5)
                .ok()
                .flatten()
                .unwrap_or_default()
                .iter()
                .map(|t| Ident::quote(t))
                .collect(),
            name: name.clone(),
        }
    })
}

/// The key columns to announce: as named (each must exist), or the primary key.
fn resolve_keys(facts: &TableFacts, keys: KeyColumns) -> Vec<String> {
    match keys {
        KeyColumns::Named(named) => {
            if named.is_empty() {
                error::bad_argument(format!("key_columns of table {} must name at least one column", facts.name));
            }
            for k in named {
                if !facts.columns.iter().any(|c| c == k) {
                    error::raise(
                        Code::ERRCODE_UNDEFINED_COLUMN,
                        format!("column \"{k}\" of table {} does not exist (key_columns)", facts.name),
                    );
                }
            }
            named.iter().map(|k| k.to_string()).collect()
        }
        KeyColumns::PrimaryKey if !facts.primary_key.is_empty() => facts.primary_key.clone(),
        KeyColumns::PrimaryKey if facts.has_id => vec!["id".to_string()],
        KeyColumns::PrimaryKey => error::bad_argument(format!(
            "table {} needs a primary key, an id column or key_columns to name its rows",
            facts.name
        )),
    }
}

/// Announce each affected owner's rows of `relid` on the owner's channel. Returns what it ran.
pub fn enable(relid: pg_sys::Oid, owner_column: &str, payload: Payload, keys: KeyColumns) -> Vec<String> {
    let facts = table_facts(relid, owner_column);
    require_uuid_owner(facts.owner_type.as_deref(), owner_column, &facts.name);
    let keys = resolve_keys(&facts, keys);
    if !facts.rls {
        pgrx::warning!(
            "table {} has row level security off: anyone told about a row can read every row (see health_rls.enable_owner_rls)",
            facts.name
        );
    }
    let args = trigger_args(owner_column, payload, &keys);
    let statements = realtime_trigger_sql(&facts.name, &args, &facts.existing);
    run_all(&statements);
    crate::registry::record_realtime(relid, owner_column, payload.as_str());
    statements
}

/// Notify each affected user, once per statement, on its own channel.
#[pg_extern(volatile)]
fn enable_realtime(
    tbl: PgRelation,
    owner_column: default!(&str, "'user_id'"),
    payload: default!(&str, "'keys'"),
    key_columns: default!(Option<Vec<String>>, "NULL"),
) -> SetOfIterator<'static, String> {
    let relid = oid_of(tbl);
    let payload = Payload::parse(payload)
        .unwrap_or_else(|| error::bad_argument(format!("payload must be 'keys' or 'row', not '{payload}'")));
    let named: Option<Vec<&str>> = key_columns.as_ref().map(|k| k.iter().map(String::as_str).collect());
    let keys = match &named {
        Some(k) => KeyColumns::Named(k),
        None => KeyColumns::PrimaryKey,
    };
    SetOfIterator::new(enable(relid, owner_column, payload, keys))
}

#[pg_extern(volatile)]
fn disable_realtime(tbl: PgRelation) -> SetOfIterator<'static, String> {
    let relid = oid_of(tbl);
    let facts = table_facts(relid, "");
    let statements = realtime_drop_sql(&facts.name, &facts.existing);
    run_all(&statements);
    crate::registry::forget_realtime(relid);
    SetOfIterator::new(statements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recreates_three_statement_triggers_with_transition_tables() {
        let table = QualifiedName::quoted_for_test("public.\"My Table\"");
        let args = [
            Literal::quoted_for_test("'user_id'"),
            Literal::quoted_for_test("'keys'"),
            Literal::quoted_for_test("'id'"),
        ];
        let existing = [Ident::quoted_for_test("health_rls_realtime_insert")];
        let sql = realtime_trigger_sql(&table, &args, &existing);
        assert_eq!(sql.len(), 4);
        assert_eq!(sql[0], "DROP TRIGGER health_rls_realtime_insert ON public.\"My Table\"");
        assert_eq!(
            sql[1],
            "CREATE TRIGGER health_rls_realtime_insert AFTER INSERT ON public.\"My Table\" REFERENCING NEW TABLE AS new_rows \
             FOR EACH STATEMENT EXECUTE FUNCTION health_rls.realtime_notify('user_id', 'keys', 'id')"
        );
        assert!(sql[2].contains("AFTER UPDATE") && sql[2].contains("OLD TABLE AS old_rows NEW TABLE AS new_rows"));
        assert!(sql[3].contains("AFTER DELETE") && sql[3].contains("REFERENCING OLD TABLE AS old_rows FOR EACH"));
        assert_eq!(realtime_drop_sql(&table, &[]), Vec::<String>::new());
    }

    #[test]
    fn payload_modes() {
        assert_eq!(Payload::parse("keys"), Some(Payload::Keys));
        assert_eq!(Payload::parse("row"), Some(Payload::Row));
        assert_eq!(Payload::parse("rows"), None);
    }
}
