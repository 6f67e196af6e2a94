//! The part of PostgREST's URL grammar that postgrest-js emits for reads, parsed into a plan and
//! turned into SQL whose identifiers come from the catalog and whose values are bind parameters
//! only. Pure: no database, unit- and property-tested below (no input panics; no client value
//! ever appears in the SQL text).
//!
//! Supported: `select=` (`*`, columns, `alias:column`), filters `col=[not.]op.value` with `eq neq gt
//! gte lt lte like ilike in is`, `or=(…)` / `and=(…)` (nested, `not.` too), `order=col[.asc|.desc]
//! [.nullsfirst|.nullslast],…`, `limit`, `offset`; inserts (with `ON CONFLICT` for upserts),
//! updates and deletes with the same filters. Anything else is refused with PostgREST's
//! `PGRST100` (never silently ignored).

/// A column of the target table, from the catalog: its name and its type (`format_type`).
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub type_sql: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
    In,
    Is,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    pub column: String,
    pub negated: bool,
    pub op: Op,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub column: String,
    pub descending: bool,
    pub nulls_first: Option<bool>,
}

/// A condition: one filter, or `and(…)` / `or(…)` of conditions (`not.` negates a group).
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Leaf(Filter),
    Group { any: bool, negated: bool, items: Vec<Cond> },
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Read {
    /// (alias, column); empty means `*`.
    pub select: Vec<(String, String)>,
    /// All must hold (the query string's filters are ANDed).
    pub filters: Vec<Cond>,
    /// Also count every row the filters match (`Prefer: count=exact`).
    pub count: bool,
    pub order: Vec<Order>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// A refusal in PostgREST's terms: its code and a message for a person.
#[derive(Clone, Debug, PartialEq)]
pub struct GrammarError {
    pub code: &'static str,
    pub message: String,
}

fn refuse(message: impl Into<String>) -> GrammarError {
    GrammarError { code: "PGRST100", message: message.into() }
}

/// A bind parameter: text, or a text array (for `in`), cast in SQL to the column's type.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Text(String),
    TextArray(Vec<String>),
}

/// Parse the query string's (already percent-decoded) pairs of a read.
pub fn parse_read(pairs: &[(String, String)]) -> Result<Read, GrammarError> {
    let mut read = Read::default();
    for (key, value) in pairs {
        match key.as_str() {
            "select" => read.select = parse_select(value)?,
            "order" => read.order = parse_order(value)?,
            "limit" => {
                read.limit =
                    Some(value.parse().map_err(|_| refuse(format!("limit must be a number, not \"{value}\"")))?)
            }
            "offset" => {
                read.offset =
                    Some(value.parse().map_err(|_| refuse(format!("offset must be a number, not \"{value}\"")))?)
            }
            "or" | "and" | "not.or" | "not.and" => {
                let negated = key.starts_with("not.");
                let items = parse_logic(value, 0)?;
                read.filters.push(Cond::Group { any: key.ends_with("or"), negated, items });
            }
            "apikey" | "columns" | "on_conflict" => {}
            _ => read.filters.push(Cond::Leaf(parse_filter(key, value)?)),
        }
    }
    Ok(read)
}

/// `(a.eq.1,and(b.gt.2,c.is.null))`: the items of a logic group (nesting limited to 8 levels).
fn parse_logic(value: &str, depth: usize) -> Result<Vec<Cond>, GrammarError> {
    if depth > 8 {
        return Err(refuse("or=/and= nest at most 8 levels"));
    }
    let inner = value
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| refuse("or= and and= take a list in parentheses: or=(a.eq.1,b.eq.2)"))?;
    let mut items = Vec::new();
    for item in split_top_level(inner) {
        let (negated, rest) = match item.strip_prefix("not.") {
            Some(r) if r.starts_with("and(") || r.starts_with("or(") => (true, r),
            _ => (false, item.as_str()),
        };
        if let Some(group) = rest.strip_prefix("and") {
            items.push(Cond::Group { any: false, negated, items: parse_logic(group, depth + 1)? });
        } else if let Some(group) = rest.strip_prefix("or").filter(|g| g.starts_with('(')) {
            items.push(Cond::Group { any: true, negated, items: parse_logic(group, depth + 1)? });
        } else {
            let (column, filter) =
                item.split_once('.').ok_or_else(|| refuse(format!("\"{item}\": expected column.operator.value")))?;
            let mut f = parse_filter(column, filter)?;
            if f.op != Op::In {
                if let Some(unquoted) = f.value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                    f.value = unquoted.to_string();
                }
            }
            items.push(Cond::Leaf(f));
        }
    }
    if items.is_empty() {
        return Err(refuse("or= and and= need at least one condition"));
    }
    Ok(items)
}

/// Splits at commas outside parentheses and double quotes.
fn split_top_level(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quoted) = (Vec::new(), String::new(), 0usize, false);
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.is_empty() || !out.is_empty() {
        out.push(cur);
    }
    out
}

fn parse_select(value: &str) -> Result<Vec<(String, String)>, GrammarError> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "*" {
            return if value.split(',').filter(|s| !s.trim().is_empty()).count() == 1 {
                Ok(Vec::new())
            } else {
                Err(refuse("select=* cannot be combined with other columns yet"))
            };
        }
        if item.contains('(') || item.contains("::") || item.contains("->") {
            return Err(refuse(format!("\"{item}\": embedded resources, casts and JSON paths are not supported yet")));
        }
        let (alias, column) = item.split_once(':').unwrap_or((item, item));
        out.push((alias.to_string(), column.to_string()));
    }
    Ok(out)
}

fn parse_order(value: &str) -> Result<Vec<Order>, GrammarError> {
    value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|term| {
            let mut parts = term.split('.');
            let column = parts.next().unwrap_or_default().to_string();
            let mut order = Order { column, descending: false, nulls_first: None };
            for p in parts {
                match p {
                    "asc" => order.descending = false,
                    "desc" => order.descending = true,
                    "nullsfirst" => order.nulls_first = Some(true),
                    "nullslast" => order.nulls_first = Some(false),
                    other => return Err(refuse(format!("unknown order modifier \"{other}\""))),
                }
            }
            Ok(order)
        })
        .collect()
}

fn parse_filter(column: &str, value: &str) -> Result<Filter, GrammarError> {
    let (negated, rest) = match value.strip_prefix("not.") {
        Some(r) => (true, r),
        None => (false, value),
    };
    let (op, operand) =
        rest.split_once('.').ok_or_else(|| refuse(format!("\"{column}={value}\": expected operator.value")))?;
    let op = match op {
        "eq" => Op::Eq,
        "neq" => Op::Neq,
        "gt" => Op::Gt,
        "gte" => Op::Gte,
        "lt" => Op::Lt,
        "lte" => Op::Lte,
        "like" => Op::Like,
        "ilike" => Op::Ilike,
        "in" => Op::In,
        "is" => Op::Is,
        other => return Err(refuse(format!("unknown operator \"{other}\""))),
    };
    Ok(Filter { column: column.to_string(), negated, op, value: operand.to_string() })
}

/// A Postgres identifier, quoted (the name comes from the catalog; quoting keeps it one name).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The column named `name` (exactly), or PostgREST's 42703.
fn column<'a>(columns: &'a [Column], name: &str) -> Result<&'a Column, GrammarError> {
    columns
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| GrammarError { code: "42703", message: format!("column \"{name}\" does not exist") })
}

/// `in.(a,b,"c,d")`: the list's items, double quotes allowed around an item with commas.
fn in_list(operand: &str) -> Result<Vec<String>, GrammarError> {
    let inner = operand
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| refuse("in. takes a list in parentheses: in.(a,b)"))?;
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for ch in inner.chars() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if !inner.is_empty() {
        items.push(current);
    }
    Ok(items)
}

/// The SQL of a read of `table` (schema-qualified and quoted, from the catalog) returning the rows
/// as one JSON array (text), the count of every matching row when `read.count` (else NULL) and the
/// number of rows returned, and its parameters. Every identifier is one of `columns`; every value
/// is a parameter.
pub fn read_sql(table: &str, columns: &[Column], read: &Read) -> Result<(String, Vec<Param>), GrammarError> {
    let mut params = Vec::new();
    let (list, row_json) = projection(columns, &read.select, &mut params)?;
    let condition = where_clause(columns, &read.filters, &mut params)?;
    let mut sql = format!("SELECT {list} FROM {table}{condition}");
    if !read.order.is_empty() {
        let mut terms = Vec::new();
        for o in &read.order {
            let c = column(columns, &o.column)?;
            let mut t = format!("{} {}", quote_ident(&c.name), if o.descending { "DESC" } else { "ASC" });
            match o.nulls_first {
                Some(true) => t.push_str(" NULLS FIRST"),
                Some(false) => t.push_str(" NULLS LAST"),
                None => {}
            }
            terms.push(t);
        }
        sql.push_str(" ORDER BY ");
        sql.push_str(&terms.join(", "));
    }
    if let Some(l) = read.limit {
        sql.push_str(&format!(" LIMIT {l}"));
    }
    if let Some(o) = read.offset {
        sql.push_str(&format!(" OFFSET {o}"));
    }
    let count = if read.count {
        format!(", (SELECT pg_catalog.count(*) FROM {table}{condition})")
    } else {
        ", NULL::int8".to_string()
    };
    Ok((
        format!(
            "SELECT coalesce(pg_catalog.json_agg({row_json}), '[]')::text{count}, pg_catalog.count(*) FROM ({sql}) r"
        ),
        params,
    ))
}

/// The select list's columns and the JSON of one row `r` with the response's keys (aliases are
/// client text: they travel as parameters of json_build_object; the query names catalog columns).
fn projection(
    columns: &[Column],
    select: &[(String, String)],
    params: &mut Vec<Param>,
) -> Result<(String, String), GrammarError> {
    if select.is_empty() {
        return Ok(("*".to_string(), "r".to_string()));
    }
    let (mut names, mut pairs) = (Vec::new(), Vec::new());
    for (alias, name) in select {
        let c = quote_ident(&column(columns, name)?.name);
        params.push(Param::Text(alias.clone()));
        pairs.push(format!("${}::pg_catalog.text, r.{c}", params.len()));
        if !names.contains(&c) {
            names.push(c);
        }
    }
    Ok((names.join(", "), format!("pg_catalog.json_build_object({})", pairs.join(", "))))
}

/// ` WHERE …` for the conditions (all must hold), or nothing when there are none.
fn where_clause(columns: &[Column], conds: &[Cond], params: &mut Vec<Param>) -> Result<String, GrammarError> {
    if conds.is_empty() {
        return Ok(String::new());
    }
    let mut parts = Vec::new();
    for c in conds {
        parts.push(cond_sql(columns, c, params)?);
    }
    Ok(format!(" WHERE {}", parts.join(" AND ")))
}

fn cond_sql(columns: &[Column], cond: &Cond, params: &mut Vec<Param>) -> Result<String, GrammarError> {
    match cond {
        Cond::Leaf(f) => filter_sql(columns, f, params),
        Cond::Group { any, negated, items } => {
            let mut parts = Vec::new();
            for i in items {
                parts.push(cond_sql(columns, i, params)?);
            }
            let joined = format!("({})", parts.join(if *any { " OR " } else { " AND " }));
            Ok(if *negated { format!("NOT {joined}") } else { joined })
        }
    }
}

fn filter_sql(columns: &[Column], f: &Filter, params: &mut Vec<Param>) -> Result<String, GrammarError> {
    let c = column(columns, &f.column)?;
    let col = quote_ident(&c.name);
    let condition = match f.op {
        Op::Is => match f.value.as_str() {
            "null" => format!("{col} IS NULL"),
            "true" => format!("{col} IS TRUE"),
            "false" => format!("{col} IS FALSE"),
            "unknown" => format!("{col} IS UNKNOWN"),
            other => return Err(refuse(format!("is. takes null, true, false or unknown, not \"{other}\""))),
        },
        Op::In => {
            params.push(Param::TextArray(in_list(&f.value)?));
            format!("{col} = ANY (${}::pg_catalog.text[]::{}[])", params.len(), c.type_sql)
        }
        Op::Like | Op::Ilike => {
            params.push(Param::Text(f.value.replace('*', "%")));
            let op = if f.op == Op::Like { "LIKE" } else { "ILIKE" };
            format!("{col}::pg_catalog.text {op} ${}", params.len())
        }
        _ => {
            params.push(Param::Text(f.value.clone()));
            let op = match f.op {
                Op::Eq => "=",
                Op::Neq => "<>",
                Op::Gt => ">",
                Op::Gte => ">=",
                Op::Lt => "<",
                _ => "<=",
            };
            format!("{col} {op} ${}::pg_catalog.text::{}", params.len(), c.type_sql)
        }
    };
    Ok(if f.negated { format!("NOT ({condition})") } else { condition })
}

/// An update or delete names at least one filter (as Supabase's servers require, with
/// pg-safeupdate's code and wording): an app never rewrites or empties a table by accident.
fn require_filter(conds: &[Cond], verb: &str) -> Result<(), GrammarError> {
    if conds.is_empty() {
        return Err(GrammarError { code: "21000", message: format!("{verb} requires a WHERE clause") });
    }
    Ok(())
}

/// The SQL of an update of the rows `read.filters` match, setting the columns `keys` from the JSON
/// object `$1`, returning the updated rows (projected by `read.select`) as one JSON array (text).
pub fn update_sql(
    table: &str,
    columns: &[Column],
    keys: &[String],
    read: &Read,
) -> Result<(String, Vec<Param>), GrammarError> {
    require_filter(&read.filters, "UPDATE")?;
    if keys.is_empty() {
        return Err(refuse("nothing to update: the object has no keys"));
    }
    let mut names = Vec::new();
    for k in keys {
        names.push(quote_ident(&column(columns, k)?.name));
    }
    let names = names.join(", ");
    let mut params = vec![Param::Text(String::new())]; // $1: the body, filled in by the caller
    let condition = where_clause(columns, &read.filters, &mut params)?;
    let (_, row_json) = projection(columns, &read.select, &mut params)?;
    Ok((
        format!(
            "WITH r AS (UPDATE {table} SET ({names}) = (SELECT {names} FROM \
             pg_catalog.json_populate_record(NULL::{table}, $1::pg_catalog.text::pg_catalog.json)){condition} RETURNING *) \
             SELECT coalesce(pg_catalog.json_agg({row_json}), '[]')::text FROM r"
        ),
        params,
    ))
}

/// The SQL of a delete of the rows `read.filters` match, returning them (projected by
/// `read.select`) as one JSON array (text).
pub fn delete_sql(table: &str, columns: &[Column], read: &Read) -> Result<(String, Vec<Param>), GrammarError> {
    require_filter(&read.filters, "DELETE")?;
    let mut params = Vec::new();
    let condition = where_clause(columns, &read.filters, &mut params)?;
    let (_, row_json) = projection(columns, &read.select, &mut params)?;
    Ok((
        format!(
            "WITH r AS (DELETE FROM {table}{condition} RETURNING *) \
             SELECT coalesce(pg_catalog.json_agg({row_json}), '[]')::text FROM r"
        ),
        params,
    ))
}

/// What an insert does with a row that conflicts (`Prefer: resolution=…`, `on_conflict=`).
#[derive(Clone, Debug, PartialEq)]
pub enum OnConflict {
    /// A plain insert: a conflict is an error (23505).
    Error,
    /// `resolution=ignore-duplicates`: skip the conflicting rows.
    Ignore(Vec<String>),
    /// `resolution=merge-duplicates`: update the given columns of the existing row.
    Merge(Vec<String>),
}

/// The SQL of an insert of a JSON array of objects (`$1`) into `table`, the columns being the
/// union of the objects' keys (each one of `columns`; the others get their defaults), returning
/// the inserted rows (projected by `select`) as one JSON array (text), and its parameters.
pub fn insert_sql(
    table: &str,
    columns: &[Column],
    keys: &[String],
    on_conflict: &OnConflict,
    select: &[(String, String)],
) -> Result<(String, Vec<Param>), GrammarError> {
    if keys.is_empty() {
        return Err(refuse("nothing to insert: the objects have no keys"));
    }
    let mut names = Vec::new();
    for k in keys {
        names.push(quote_ident(&column(columns, k)?.name));
    }
    let target = |cols: &[String]| -> Result<String, GrammarError> {
        let mut t = Vec::new();
        for c in cols {
            t.push(quote_ident(&column(columns, c)?.name));
        }
        Ok(if t.is_empty() { String::new() } else { format!(" ({})", t.join(", ")) })
    };
    let conflict = match on_conflict {
        OnConflict::Error => String::new(),
        OnConflict::Ignore(cols) => format!(" ON CONFLICT{} DO NOTHING", target(cols)?),
        OnConflict::Merge(cols) if cols.is_empty() => {
            return Err(refuse(
                "merge-duplicates needs on_conflict= naming a unique key (the table has no primary key)",
            ))
        }
        OnConflict::Merge(cols) => {
            let set: Vec<String> = names.iter().map(|n| format!("{n} = EXCLUDED.{n}")).collect();
            format!(" ON CONFLICT{} DO UPDATE SET {}", target(cols)?, set.join(", "))
        }
    };
    let names = names.join(", ");
    let mut params = vec![Param::Text(String::new())]; // $1: the rows, filled in by the caller
    let (_, row_json) = projection(columns, select, &mut params)?;
    Ok((
        format!(
            "WITH r AS (INSERT INTO {table} ({names}) SELECT {names} FROM pg_catalog.json_populate_recordset(NULL::{table}, $1::pg_catalog.text::pg_catalog.json){conflict} RETURNING *) \
             SELECT coalesce(pg_catalog.json_agg({row_json}), '[]')::text FROM r"
        ),
        params,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<Column> {
        ["id:bigint", "user_id:uuid", "kind:text", "value:double precision", "recorded_at:timestamp with time zone"]
            .iter()
            .map(|c| {
                let (n, t) = c.split_once(':').unwrap();
                Column { name: n.into(), type_sql: t.into() }
            })
            .collect()
    }

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn what_postgrest_js_sends_for_a_history() {
        let read = parse_read(&pairs(&[
            ("select", "id,kind,value"),
            ("kind", "eq.heart_rate"),
            ("value", "gte.60"),
            ("order", "recorded_at.desc.nullslast"),
            ("limit", "50"),
        ]))
        .unwrap();
        let (sql, params) = read_sql("\"public\".\"health_metrics\"", &cols(), &read).unwrap();
        assert_eq!(
            sql,
            "SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object($1::pg_catalog.text, r.\"id\", $2::pg_catalog.text, r.\"kind\", \
             $3::pg_catalog.text, r.\"value\")), '[]')::text, NULL::int8, pg_catalog.count(*) FROM (SELECT \"id\", \"kind\", \"value\" \
             FROM \"public\".\"health_metrics\" WHERE \"kind\" = $4::pg_catalog.text::text AND \"value\" >= $5::pg_catalog.text::double precision \
             ORDER BY \"recorded_at\" DESC NULLS LAST LIMIT 50) r"
        );
        let text = |v: &str| Param::Text(v.into());
        assert_eq!(params, vec![text("id"), text("kind"), text("value"), text("heart_rate"), text("60")]);
    }

    #[test]
    fn in_is_not_like_and_aliases() {
        let read = parse_read(&pairs(&[
            ("select", "v:value"),
            ("kind", "in.(heart_rate,\"a,b\")"),
            ("recorded_at", "not.is.null"),
            ("kind", "ilike.*rate"),
        ]))
        .unwrap();
        let (sql, params) = read_sql("t", &cols(), &read).unwrap();
        assert!(sql.contains("json_build_object($1::pg_catalog.text, r.\"value\")"), "{sql}");
        assert!(!sql.contains("\"v\""), "the alias is a parameter: {sql}");
        assert!(sql.contains("\"kind\" = ANY ($2::pg_catalog.text[]::text[])"), "{sql}");
        assert!(sql.contains("NOT (\"recorded_at\" IS NULL)"), "{sql}");
        assert!(sql.contains("\"kind\"::pg_catalog.text ILIKE $3"), "{sql}");
        assert_eq!(params[0], Param::Text("v".into()));
        assert_eq!(params[1], Param::TextArray(vec!["heart_rate".into(), "a,b".into()]));
        assert_eq!(params[2], Param::Text("%rate".into()));
    }

    #[test]
    fn unknown_columns_and_operators_are_refused() {
        let read = parse_read(&pairs(&[("nope", "eq.1")])).unwrap();
        assert_eq!(read_sql("t", &cols(), &read).unwrap_err().code, "42703");
        assert_eq!(parse_read(&pairs(&[("kind", "regex.x")])).unwrap_err().code, "PGRST100");
        assert_eq!(parse_read(&pairs(&[("or", "a.eq.1")])).unwrap_err().code, "PGRST100");
        assert_eq!(parse_read(&pairs(&[("select", "*,other(*)")])).unwrap_err().code, "PGRST100");
        assert_eq!(
            insert_sql("t", &cols(), &["user_id\"; drop".into()], &OnConflict::Error, &[]).unwrap_err().code,
            "42703"
        );
    }

    #[test]
    fn inserts_name_only_the_given_columns() {
        let (sql, _) =
            insert_sql("\"public\".\"m\"", &cols(), &["kind".into(), "value".into()], &OnConflict::Error, &[]).unwrap();
        assert!(
            sql.contains("INSERT INTO \"public\".\"m\" (\"kind\", \"value\") SELECT \"kind\", \"value\" FROM"),
            "{sql}"
        );
        assert!(
            sql.contains("json_populate_recordset(NULL::\"public\".\"m\", $1::pg_catalog.text::pg_catalog.json)"),
            "{sql}"
        );
    }
}

#[cfg(test)]
mod writes_and_logic {
    use super::*;

    fn cols() -> Vec<Column> {
        ["id:bigint", "kind:text", "value:double precision"]
            .iter()
            .map(|c| {
                let (n, t) = c.split_once(':').unwrap();
                Column { name: n.into(), type_sql: t.into() }
            })
            .collect()
    }

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn or_and_nest_with_values_as_parameters() {
        let read =
            parse_read(&pairs(&[("or", "(kind.eq.steps,and(value.gt.100,not.or(id.eq.1,id.in.(2,3))))")])).unwrap();
        let (sql, params) = read_sql("t", &cols(), &read).unwrap();
        assert!(
            sql.contains(
                "WHERE (\"kind\" = $1::pg_catalog.text::text OR (\"value\" > $2::pg_catalog.text::double precision \
                 AND NOT (\"id\" = $3::pg_catalog.text::bigint OR \"id\" = ANY ($4::pg_catalog.text[]::bigint[]))))"
            ),
            "{sql}"
        );
        assert_eq!(params[3], Param::TextArray(vec!["2".into(), "3".into()]));
        let quoted = parse_read(&pairs(&[("or", "(kind.eq.\"a,b\",kind.is.null)")])).unwrap();
        let (_, params) = read_sql("t", &cols(), &quoted).unwrap();
        assert_eq!(params, vec![Param::Text("a,b".into())]);
        assert_eq!(parse_read(&pairs(&[("or", "()")])).unwrap_err().code, "PGRST100");
        assert_eq!(parse_read(&pairs(&[("and", "(kind)")])).unwrap_err().code, "PGRST100");
    }

    #[test]
    fn updates_and_deletes_need_a_filter_and_name_catalog_columns() {
        let none = parse_read(&[]).unwrap();
        assert_eq!(update_sql("t", &cols(), &["value".into()], &none).unwrap_err().code, "21000");
        assert_eq!(delete_sql("t", &cols(), &none).unwrap_err().code, "21000");
        let by_id = parse_read(&pairs(&[("id", "eq.7")])).unwrap();
        let (sql, params) = update_sql("t", &cols(), &["value".into()], &by_id).unwrap();
        assert!(sql.starts_with("WITH r AS (UPDATE t SET (\"value\") = (SELECT \"value\" FROM"), "{sql}");
        assert!(sql.contains(" WHERE \"id\" = $2::pg_catalog.text::bigint RETURNING *"), "{sql}");
        assert_eq!(params.len(), 2);
        assert_eq!(update_sql("t", &cols(), &["nope".into()], &by_id).unwrap_err().code, "42703");
        let (sql, _) = delete_sql("t", &cols(), &by_id).unwrap();
        assert!(
            sql.starts_with("WITH r AS (DELETE FROM t WHERE \"id\" = $1::pg_catalog.text::bigint RETURNING *)"),
            "{sql}"
        );
    }

    #[test]
    fn upserts_target_catalog_columns() {
        let keys = vec!["id".to_string(), "value".to_string()];
        let (merge, _) = insert_sql("t", &cols(), &keys, &OnConflict::Merge(vec!["id".into()]), &[]).unwrap();
        assert!(merge.contains(" ON CONFLICT (\"id\") DO UPDATE SET \"id\" = EXCLUDED.\"id\", \"value\" = EXCLUDED.\"value\" RETURNING"), "{merge}");
        let (ignore, _) = insert_sql("t", &cols(), &keys, &OnConflict::Ignore(vec![]), &[]).unwrap();
        assert!(ignore.contains(" ON CONFLICT DO NOTHING RETURNING"), "{ignore}");
        assert_eq!(
            insert_sql("t", &cols(), &keys, &OnConflict::Merge(vec!["x\"".into()]), &[]).unwrap_err().code,
            "42703"
        );
        let count = parse_read(&pairs(&[("kind", "eq.steps")])).map(|r| Read { count: true, ..r }).unwrap();
        let (sql, _) = read_sql("t", &cols(), &count).unwrap();
        assert!(
            sql.contains(", (SELECT pg_catalog.count(*) FROM t WHERE \"kind\" = $1::pg_catalog.text::text), pg_catalog.count(*) FROM"),
            "{sql}"
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn cols() -> Vec<Column> {
        vec![
            Column { name: "kind".into(), type_sql: "text".into() },
            Column { name: "value".into(), type_sql: "double precision".into() },
        ]
    }

    proptest! {
        /// Any query string: no panic; and the SQL text does not depend on the values at all (they
        /// travel only as parameters), whatever the operator other than `is` (whose values are keywords).
        #[test]
        fn no_panic_and_no_client_text_in_sql(
            key in "[a-z_.]{0,12}",
            op in "(not\\.)?(eq|neq|gt|gte|lt|lte|like|ilike|in|x)?",
            v1 in ".{0,40}",
            v2 in ".{0,40}",
        ) {
            let sql_of = |v: &str| {
                let q = vec![(key.clone(), format!("{op}.{v}")), ("kind".to_string(), format!("eq.{v}"))];
                parse_read(&q).ok().and_then(|read| read_sql("t", &cols(), &read).ok()).map(|(sql, _)| sql)
            };
            // in. needs parentheses to parse: compare values of the same shape.
            let (v1, v2) = if op.ends_with("in") { (format!("({v1})"), format!("({v2})")) } else { (v1, v2) };
            if let (Some(a), Some(b)) = (sql_of(&v1), sql_of(&v2)) {
                prop_assert_eq!(a, b);
            }
        }

        /// or=/and= of any text: no panic; values without the grammar's own punctuation never
        /// change the SQL text, in reads, updates and deletes alike.
        #[test]
        fn logic_groups_keep_values_out_of_sql(
            any in ".{0,60}",
            op in "(eq|neq|gt|like|is)",
            v1 in "[^,()\"]{0,30}",
            v2 in "[^,()\"]{0,30}",
        ) {
            let _ = parse_read(&[("or".to_string(), any.clone())]).map(|r| read_sql("t", &cols(), &r));
            let sqls = |v: &str| {
                let q = vec![("or".to_string(), format!("(kind.{op}.{v},and(value.gt.{v},kind.not.eq.{v}))"))];
                parse_read(&q).ok().and_then(|read| {
                    let r = read_sql("t", &cols(), &read).ok()?.0;
                    let u = update_sql("t", &cols(), &["value".into()], &read).ok()?.0;
                    let d = delete_sql("t", &cols(), &read).ok()?.0;
                    Some((r, u, d))
                })
            };
            if op != "is" {
                if let (Some(a), Some(b)) = (sqls(&v1), sqls(&v2)) {
                    prop_assert_eq!(a, b);
                }
            }
        }

        /// Whatever the select list and order say, only catalog columns are named.
        #[test]
        fn only_catalog_names_in_sql(select in "[a-z:,*\"; ]{0,30}", order in "[a-z.,\"; ]{0,30}") {
            let q = vec![("select".to_string(), select), ("order".to_string(), order)];
            if let Ok(read) = parse_read(&q) {
                if let Ok((sql, params)) = read_sql("t", &cols(), &read) {
                    prop_assert!(params.iter().all(|p| matches!(p, Param::Text(_))), "aliases only");
                    let names: Vec<&str> = sql.split('"').skip(1).step_by(2).collect();
                    for n in names {
                        prop_assert!(["kind", "value"].contains(&n), "unexpected identifier {n:?} in {sql}");
                    }
                }
            }
        }
    }
}
