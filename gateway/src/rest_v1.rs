//! `/rest/v1`: the PostgREST requests postgrest-js sends for reading a table, inserting into it
//! (upserts too), updating and deleting what filters match, and calling a function
//! (docs/supabase-js.md). One transaction per request, as `anon` or — with a
//! user's bearer token — as `authenticated` after `auth.authenticate`: row level security decides
//! what is seen and written. Table, column and function names come from the catalog (a name that is
//! not there is PostgREST's 404 or 42703); every value is a bind parameter (`rest_grammar`).
// The helpers' errors are the finished HTTP answers the handlers return early; boxing them would
// only add an allocation on the error path.
#![allow(clippy::result_large_err)]
use crate::auth_v1::bearer;
use crate::db::json_response;
use crate::gateway::Gateway;
use crate::rest_grammar::{self, Column, GrammarError, OnConflict, Param, Read};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio_postgres::types::ToSql;
use tokio_postgres::types::Type;
use tokio_postgres::Row;
use tokio_postgres::Transaction;

/// The schemas a client may name with `Accept-Profile` / `Content-Profile` (the first is the default).
pub const SCHEMAS: [&str; 2] = ["public", "health"];

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/rest/v1/rpc/{function}", post(rpc))
        .route("/rest/v1/{table}", get(read).post(insert).patch(update).delete(delete))
}

/// PostgREST's error body.
fn pgrst(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &json!({"code": code, "message": message, "details": null, "hint": null}))
}

fn from_grammar(e: GrammarError) -> Response {
    pgrst(StatusCode::BAD_REQUEST, e.code, &e.message)
}

/// The `Prefer` header's preferences (`return=representation`, `count=exact`, …), comma-separated.
fn prefers(headers: &HeaderMap, preference: &str) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim() == preference))
}

/// A database error as PostgREST answers it (its status mapping, the SQLSTATE as `code`).
fn from_db(e: tokio_postgres::Error, as_user: bool) -> Response {
    let Some(db) = e.as_db_error() else {
        eprintln!("gateway: database connection problem: {e}");
        return pgrst(StatusCode::SERVICE_UNAVAILABLE, "PGRST000", "The database cannot be reached right now");
    };
    let code = db.code().code();
    let status = match code {
        "42501" if as_user => StatusCode::FORBIDDEN,
        "42501" | "28000" => StatusCode::UNAUTHORIZED,
        "23505" | "23503" => StatusCode::CONFLICT,
        "42883" | "42P01" => StatusCode::NOT_FOUND,
        c if c.starts_with("22") || c.starts_with("23") || c == "P0001" || c == "42703" || c == "55000" => {
            StatusCode::BAD_REQUEST
        }
        _ => {
            eprintln!("gateway: database error {code}: {}", db.message());
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"code": code, "message": "Something went wrong on the server", "details": null, "hint": null}),
            );
        }
    };
    json_response(status, &json!({"code": code, "message": db.message(), "details": db.detail(), "hint": db.hint()}))
}

/// The schema a request names (`Accept-Profile` for reads, `Content-Profile` for writes).
fn profile(headers: &HeaderMap, method: &Method) -> Result<&'static str, Response> {
    let name = if method == Method::GET || method == Method::HEAD { "accept-profile" } else { "content-profile" };
    match headers.get(name).and_then(|v| v.to_str().ok()) {
        None => Ok(SCHEMAS[0]),
        Some(s) => SCHEMAS.iter().find(|x| **x == s).copied().ok_or_else(|| {
            pgrst(
                StatusCode::NOT_ACCEPTABLE,
                "PGRST106",
                &format!("The schema must be one of the following: {}", SCHEMAS.join(", ")),
            )
        }),
    }
}

fn unavailable() -> Response {
    pgrst(StatusCode::SERVICE_UNAVAILABLE, "PGRST000", "The database cannot be reached right now")
}

/// Run `sql` with `params` in `tx` and commit: its first column (text), or the database's error.
async fn run_and_commit(
    tx: Transaction<'_>,
    sql: &str,
    params: &[Param],
    as_user: bool,
) -> Result<Option<String>, Response> {
    Ok(run_row_and_commit(tx, sql, params, as_user).await?.get(0))
}

/// Run `sql` with `params` in `tx` and commit: its one row, or the database's error. The statement
/// is sent with its parameter types (text, text[]): parse, bind and execute in one round trip.
async fn run_row_and_commit(tx: Transaction<'_>, sql: &str, params: &[Param], as_user: bool) -> Result<Row, Response> {
    let bound = bind(params);
    let typed: Vec<(&(dyn ToSql + Sync), Type)> = bound
        .iter()
        .zip(params)
        .map(|(b, p)| {
            let ty = match p {
                Param::Text(_) => Type::TEXT,
                Param::TextArray(_) => Type::TEXT_ARRAY,
            };
            (b.as_ref() as &(dyn ToSql + Sync), ty)
        })
        .collect();
    let row = tx.query_typed(sql, &typed).await.map_err(|e| from_db(e, as_user))?;
    let row = row
        .into_iter()
        .next()
        .ok_or_else(|| pgrst(StatusCode::INTERNAL_SERVER_ERROR, "PGRST000", "Something went wrong on the server"))?;
    tx.commit().await.map_err(|e| from_db(e, as_user))?;
    Ok(row)
}

/// Begin the request's transaction as the bearer's user (verified by the database) or as `anon`.
async fn begin<'a>(client: &'a mut tokio_postgres::Client, token: Option<&str>) -> Result<Transaction<'a>, Response> {
    let tx = client.transaction().await.map_err(|e| from_db(e, false))?;
    match token {
        // The identity and the role in one statement (as PostgREST does): one round trip.
        Some(t) => {
            tx.query_typed(
                "SELECT auth.authenticate($1) IS NOT NULL, pg_catalog.set_config('role', 'authenticated', true)",
                &[(&t, Type::TEXT)],
            )
            .await
            .map_err(|e| from_db(e, true))?;
        }
        None => tx.batch_execute("SET LOCAL ROLE anon").await.map_err(|e| from_db(e, false))?,
    }
    Ok(tx)
}

/// What the catalog said of the tables requests named, for a second: a schema cache that sees a
/// DDL change within a second without a reload command (PostgREST's needs `NOTIFY pgrst`).
#[derive(Default)]
pub struct RelationCache {
    entries: Mutex<HashMap<(String, String), (Instant, Relation)>>,
}

/// A table's quoted `schema.name` and its columns.
type Relation = Arc<(String, Vec<Column>)>;

const RELATION_TTL: Duration = Duration::from_secs(1);

/// The table or view `schema.name`: its quoted name and columns (404 when absent), from the cache
/// when it was looked up in the last second.
async fn relation(g: &Gateway, tx: &Transaction<'_>, schema: &str, name: &str) -> Result<Relation, Response> {
    let key = (schema.to_string(), name.to_string());
    if let Some((at, found)) = g.relations.entries.lock().unwrap().get(&key) {
        if at.elapsed() < RELATION_TTL {
            return Ok(found.clone());
        }
    }
    let found = Arc::new(relation_from_catalog(tx, schema, name).await?);
    let mut entries = g.relations.entries.lock().unwrap();
    if entries.len() > 10_000 {
        entries.clear(); // names are client text: bound what they can make us keep
    }
    entries.insert(key, (Instant::now(), found.clone()));
    Ok(found)
}

async fn relation_from_catalog(
    tx: &Transaction<'_>,
    schema: &str,
    name: &str,
) -> Result<(String, Vec<Column>), Response> {
    let rows = tx
        .query(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod) \
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
               JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
              WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY a.attnum",
            &[&schema, &name],
        )
        .await
        .map_err(|e| from_db(e, false))?;
    let Some(first) = rows.first() else {
        return Err(pgrst(
            StatusCode::NOT_FOUND,
            "PGRST205",
            &format!("Could not find the table '{schema}.{name}' in the schema cache"),
        ));
    };
    let table: String = first.get(0);
    let columns = rows.iter().map(|r| Column { name: r.get(1), type_sql: r.get(2) }).collect();
    Ok((table, columns))
}

fn json_text(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

/// Parameters for tokio-postgres: text, or text arrays.
fn bind(params: &[Param]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                Param::Text(t) => Box::new(t.clone()),
                Param::TextArray(a) => Box::new(a.clone()),
            }
        })
        .collect()
}

/// `Range: 0-9` (items) as offset and limit, when the query string names neither.
fn range_header(headers: &HeaderMap, plan: &mut Read) {
    if plan.limit.is_some() || plan.offset.is_some() {
        return;
    }
    let Some((from, to)) = headers.get("range").and_then(|v| v.to_str().ok()).and_then(|v| v.split_once('-')) else {
        return;
    };
    if let Ok(from) = from.trim().parse::<u64>() {
        plan.offset = Some(from);
        if let Ok(to) = to.trim().parse::<u64>() {
            plan.limit = Some(to.saturating_sub(from) + 1);
        }
    }
}

/// PostgREST's `Content-Range`: `first-last/total` (`*` for an uncounted total or no rows).
fn content_range(offset: u64, returned: usize, total: Option<i64>) -> String {
    let total = total.map_or_else(|| "*".to_string(), |t| t.to_string());
    match returned {
        0 => format!("*/{total}"),
        n => format!("{offset}-{}/{total}", offset + n as u64 - 1),
    }
}

/// `GET /rest/v1/<table>?select=…&<filters>&order=…&limit=…`
async fn read(
    State(g): State<Arc<Gateway>>,
    Path(table): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    async {
        let schema = profile(&headers, &method)?;
        let mut plan = rest_grammar::parse_read(&pairs).map_err(from_grammar)?;
        plan.count = prefers(&headers, "count=exact");
        range_header(&headers, &mut plan);
        let token = bearer(&headers, &g);
        let mut c = g.db.conn().await.map_err(|_| unavailable())?;
        let tx = begin(&mut c, token).await?;
        let found = relation(&g, &tx, schema, &table).await?;
        let (name, columns) = (found.0.as_str(), found.1.as_slice());
        let (sql, params) = rest_grammar::read_sql(name, columns, &plan).map_err(from_grammar)?;
        let row = run_row_and_commit(tx, &sql, &params, token.is_some()).await?;
        let body: String = row.get::<_, Option<String>>(0).unwrap_or_else(|| "[]".into());
        let total: Option<i64> = row.get(1);
        let returned = usize::try_from(row.get::<_, i64>(2)).unwrap_or(0);
        let offset = plan.offset.unwrap_or(0);
        // A counted read that returns only part of the rows is 206, as PostgREST answers it.
        let partial = total.is_some_and(|t| offset + (returned as u64) < u64::try_from(t).unwrap_or(0));
        let mut resp = json_text(if partial { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK }, body);
        let range = content_range(offset, returned, total);
        resp.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::from_str(&range).expect("digits, - and /"));
        Ok::<_, Response>(resp)
    }
    .await
    .unwrap_or_else(|r| r)
}

/// `POST /rest/v1/<table>` with one object or an array; `Prefer: return=representation` answers
/// the inserted rows, otherwise 201 without a body.
async fn insert(
    State(g): State<Arc<Gateway>>,
    Path(table): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    async {
        let schema = profile(&headers, &Method::POST)?;
        let rows = match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(o)) => vec![Value::Object(o)],
            Ok(Value::Array(a)) if a.iter().all(Value::is_object) => a,
            _ => {
                return Err(pgrst(
                    StatusCode::BAD_REQUEST,
                    "PGRST102",
                    "The body must be a JSON object or an array of objects",
                ))
            }
        };
        let mut keys: Vec<String> = Vec::new();
        for k in rows.iter().filter_map(Value::as_object).flat_map(|o| o.keys()) {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        let representation = prefers(&headers, "return=representation");
        let select = rest_grammar::parse_read(&query).map_err(from_grammar)?.select;
        let target: Vec<String> = query
            .iter()
            .find(|(k, _)| k == "on_conflict")
            .map(|(_, v)| v.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect())
            .unwrap_or_default();
        let token = bearer(&headers, &g);
        let mut c = g.db.conn().await.map_err(|_| unavailable())?;
        let tx = begin(&mut c, token).await?;
        let found = relation(&g, &tx, schema, &table).await?;
        let (name, columns) = (found.0.as_str(), found.1.as_slice());
        let on_conflict = if prefers(&headers, "resolution=merge-duplicates") {
            // Without on_conflict=, PostgREST merges on the primary key.
            OnConflict::Merge(if target.is_empty() { primary_key(&tx, name).await? } else { target })
        } else if prefers(&headers, "resolution=ignore-duplicates") {
            OnConflict::Ignore(target)
        } else {
            OnConflict::Error
        };
        let (sql, mut params) =
            rest_grammar::insert_sql(name, columns, &keys, &on_conflict, &select).map_err(from_grammar)?;
        params[0] = Param::Text(Value::Array(rows).to_string());
        let inserted = run_and_commit(tx, &sql, &params, token.is_some()).await?;
        Ok::<_, Response>(if representation {
            json_text(StatusCode::CREATED, inserted.unwrap_or_else(|| "[]".into()))
        } else {
            StatusCode::CREATED.into_response()
        })
    }
    .await
    .unwrap_or_else(|r| r)
}

/// The primary key columns of `table` (quoted `schema.name`, from `relation`), from the catalog.
async fn primary_key(tx: &Transaction<'_>, table: &str) -> Result<Vec<String>, Response> {
    let row = tx
        .query_one(
            "SELECT coalesce(array_agg(a.attname::text ORDER BY k.i), '{}') \
               FROM pg_catalog.pg_index x CROSS JOIN pg_catalog.unnest(x.indkey) WITH ORDINALITY AS k(attnum, i) \
               JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum \
              WHERE x.indrelid = $1::pg_catalog.text::pg_catalog.regclass AND x.indisprimary",
            &[&table],
        )
        .await
        .map_err(|e| from_db(e, false))?;
    Ok(row.get(0))
}

/// `PATCH /rest/v1/<table>?<filters>` with one JSON object: the matching rows get its values.
/// `Prefer: return=representation` answers the updated rows (200), otherwise 204.
async fn update(
    State(g): State<Arc<Gateway>>,
    Path(table): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    async {
        let schema = profile(&headers, &Method::PATCH)?;
        let Ok(Value::Object(values)) = serde_json::from_slice::<Value>(&body) else {
            return Err(pgrst(StatusCode::BAD_REQUEST, "PGRST102", "The body must be a JSON object"));
        };
        let plan = rest_grammar::parse_read(&pairs).map_err(from_grammar)?;
        let keys: Vec<String> = values.keys().cloned().collect();
        let token = bearer(&headers, &g);
        let mut c = g.db.conn().await.map_err(|_| unavailable())?;
        let tx = begin(&mut c, token).await?;
        let found = relation(&g, &tx, schema, &table).await?;
        let (name, columns) = (found.0.as_str(), found.1.as_slice());
        let (sql, mut params) = rest_grammar::update_sql(name, columns, &keys, &plan).map_err(from_grammar)?;
        params[0] = Param::Text(Value::Object(values).to_string());
        let rows = run_and_commit(tx, &sql, &params, token.is_some()).await?;
        Ok::<_, Response>(written(&headers, StatusCode::OK, rows))
    }
    .await
    .unwrap_or_else(|r| r)
}

/// `DELETE /rest/v1/<table>?<filters>`: `Prefer: return=representation` answers the deleted rows.
async fn delete(
    State(g): State<Arc<Gateway>>,
    Path(table): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    async {
        let schema = profile(&headers, &Method::DELETE)?;
        let plan = rest_grammar::parse_read(&pairs).map_err(from_grammar)?;
        let token = bearer(&headers, &g);
        let mut c = g.db.conn().await.map_err(|_| unavailable())?;
        let tx = begin(&mut c, token).await?;
        let found = relation(&g, &tx, schema, &table).await?;
        let (name, columns) = (found.0.as_str(), found.1.as_slice());
        let (sql, params) = rest_grammar::delete_sql(name, columns, &plan).map_err(from_grammar)?;
        let rows = run_and_commit(tx, &sql, &params, token.is_some()).await?;
        Ok::<_, Response>(written(&headers, StatusCode::OK, rows))
    }
    .await
    .unwrap_or_else(|r| r)
}

/// The answer to a write: the rows (with `return=representation`) or 204 No Content.
fn written(headers: &HeaderMap, status: StatusCode, rows: Option<String>) -> Response {
    if prefers(headers, "return=representation") {
        json_text(status, rows.unwrap_or_else(|| "[]".into()))
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

/// One function of `schema` named `name` from the catalog: its quoted name, whether it returns a
/// set, and its input arguments (name, type) with the number of trailing ones that have defaults.
struct Function {
    name: String,
    returns_set: bool,
    args: Vec<(String, String)>,
    defaults: usize,
}

async fn functions(tx: &Transaction<'_>, schema: &str, name: &str) -> Result<Vec<Function>, Response> {
    let rows = tx
        .query(
            "SELECT pg_catalog.format('%I.%I', n.nspname, p.proname), p.proretset, p.pronargdefaults::int4, \
                    coalesce(p.proargnames[1:p.pronargs], '{}')::text[], \
                    ARRAY(SELECT pg_catalog.format_type(t, NULL) FROM pg_catalog.unnest(p.proargtypes) WITH ORDINALITY AS a(t, i) ORDER BY i) \
               FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
              WHERE n.nspname = $1 AND p.proname = $2 AND p.prokind = 'f'",
            &[&schema, &name],
        )
        .await
        .map_err(|e| from_db(e, false))?;
    Ok(rows
        .iter()
        .map(|r| {
            let names: Vec<String> = r.get(3);
            let types: Vec<String> = r.get(4);
            Function {
                name: r.get(0),
                returns_set: r.get(1),
                defaults: r.get::<_, i32>(2) as usize,
                args: names.into_iter().zip(types).collect(),
            }
        })
        .collect())
}

/// A JSON argument as the text Postgres reads for `type`: strings as they are, JSON objects and
/// arrays as JSON text (for json/jsonb), numbers and booleans as written; arrays for array types
/// become text arrays.
fn argument(value: &Value, type_sql: &str) -> Param {
    match value {
        Value::Array(items) if type_sql.ends_with("[]") => Param::TextArray(
            items.iter().map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string())).collect(),
        ),
        Value::String(s) => Param::Text(s.clone()),
        other => Param::Text(other.to_string()),
    }
}

/// `POST /rest/v1/rpc/<function>` with named arguments as a JSON object.
async fn rpc(State(g): State<Arc<Gateway>>, Path(function): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    async {
        let schema = profile(&headers, &Method::POST)?;
        let args = match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(o)) => o,
            _ if body.is_empty() => serde_json::Map::new(),
            _ => {
                return Err(pgrst(
                    StatusCode::BAD_REQUEST,
                    "PGRST102",
                    "The body must be a JSON object of named arguments",
                ))
            }
        };
        let token = bearer(&headers, &g);
        let mut c = g.db.conn().await.map_err(|_| unavailable())?;
        let tx = begin(&mut c, token).await?;
        let candidates = functions(&tx, schema, &function).await?;
        // The function whose argument names cover the body's keys and whose arguments without a
        // default are all given.
        let chosen = candidates.iter().find(|f| {
            let required = f.args.len() - f.defaults.min(f.args.len());
            args.keys().all(|k| f.args.iter().any(|(n, _)| n == k))
                && f.args[..required].iter().all(|(n, _)| args.contains_key(n))
        });
        let Some(f) = chosen else {
            let names: Vec<&str> = args.keys().map(String::as_str).collect();
            return Err(pgrst(
                StatusCode::NOT_FOUND,
                "PGRST202",
                &format!("Could not find the function {schema}.{function}({}) in the schema cache", names.join(", ")),
            ));
        };
        let mut params = Vec::new();
        let mut named = Vec::new();
        for (arg, type_sql) in &f.args {
            let Some(v) = args.get(arg) else { continue };
            let arg_sql = rest_grammar::quote_ident(arg);
            if v.is_null() {
                named.push(format!("{arg_sql} => NULL"));
                continue;
            }
            let p = argument(v, type_sql);
            let cast = match &p {
                Param::TextArray(_) => format!("pg_catalog.text[]::{type_sql}"),
                Param::Text(_) => format!("pg_catalog.text::{type_sql}"),
            };
            params.push(p);
            named.push(format!("{arg_sql} => ${}::{cast}", params.len()));
        }
        let call = format!("{}({})", f.name, named.join(", "));
        let sql = if f.returns_set {
            format!("SELECT coalesce(pg_catalog.json_agg(r), '[]')::text FROM {call} r")
        } else {
            format!("SELECT pg_catalog.to_json({call})::text")
        };
        let result = run_and_commit(tx, &sql, &params, token.is_some()).await?;
        Ok::<_, Response>(json_text(StatusCode::OK, result.unwrap_or_else(|| "null".into())))
    }
    .await
    .unwrap_or_else(|r| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_as_postgres_reads_them() {
        assert_eq!(argument(&json!("heart_rate"), "text"), Param::Text("heart_rate".into()));
        assert_eq!(argument(&json!([{"kind": "x"}]), "jsonb"), Param::Text("[{\"kind\":\"x\"}]".into()));
        assert_eq!(argument(&json!(["a", "b"]), "text[]"), Param::TextArray(vec!["a".into(), "b".into()]));
        assert_eq!(argument(&json!(61.5), "double precision"), Param::Text("61.5".into()));
    }

    #[test]
    fn only_exposed_schemas() {
        let mut h = HeaderMap::new();
        assert_eq!(profile(&h, &Method::GET).ok(), Some("public"));
        h.insert("accept-profile", HeaderValue::from_static("health"));
        assert_eq!(profile(&h, &Method::GET).ok(), Some("health"));
        h.insert("accept-profile", HeaderValue::from_static("auth"));
        assert_eq!(profile(&h, &Method::GET).unwrap_err().status(), StatusCode::NOT_ACCEPTABLE);
        h.insert("content-profile", HeaderValue::from_static("health"));
        assert_eq!(profile(&h, &Method::POST).ok(), Some("health"));
    }
}
