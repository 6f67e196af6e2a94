//! `/rest/v1`: the PostgREST requests postgrest-js sends for reading a table, inserting into it and
//! calling a function (docs/supabase-js.md). One transaction per request, as `anon` or — with a
//! user's bearer token — as `authenticated` after `auth.authenticate`: row level security decides
//! what is seen and written. Table, column and function names come from the catalog (a name that is
//! not there is PostgREST's 404 or 42703); every value is a bind parameter (`rest_grammar`).
// The helpers' errors are the finished HTTP answers the handlers return early; boxing them would
// only add an allocation on the error path.
#![allow(clippy::result_large_err)]
use crate::auth_v1::bearer;
use crate::db::json_response;
use crate::gateway::Gateway;
use crate::rest_grammar::{self, Column, GrammarError, Param};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;

/// The schemas a client may name with `Accept-Profile` / `Content-Profile` (the first is the default).
pub const SCHEMAS: [&str; 2] = ["public", "health"];

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new().route("/rest/v1/rpc/{function}", post(rpc)).route("/rest/v1/{table}", get(read).post(insert))
}

/// PostgREST's error body.
fn pgrst(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &json!({"code": code, "message": message, "details": null, "hint": null}))
}

fn from_grammar(e: GrammarError) -> Response {
    pgrst(StatusCode::BAD_REQUEST, e.code, &e.message)
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

/// Run `sql` with `params` in `tx` and commit: its one text column, or the database's error.
async fn run_and_commit(
    tx: Transaction<'_>,
    sql: &str,
    params: &[Param],
    as_user: bool,
) -> Result<Option<String>, Response> {
    let bound = bind(params);
    let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect();
    let row = tx.query_one(sql, &refs).await.map_err(|e| from_db(e, as_user))?;
    tx.commit().await.map_err(|e| from_db(e, as_user))?;
    Ok(row.get(0))
}

/// Begin the request's transaction as the bearer's user (verified by the database) or as `anon`.
async fn begin<'a>(client: &'a mut tokio_postgres::Client, token: Option<&str>) -> Result<Transaction<'a>, Response> {
    let tx = client.transaction().await.map_err(|e| from_db(e, false))?;
    match token {
        Some(t) => {
            tx.batch_execute("SET LOCAL ROLE authenticated").await.map_err(|e| from_db(e, true))?;
            tx.query_one("SELECT auth.authenticate($1)", &[&t]).await.map_err(|e| from_db(e, true))?;
        }
        None => tx.batch_execute("SET LOCAL ROLE anon").await.map_err(|e| from_db(e, false))?,
    }
    Ok(tx)
}

/// The table or view `schema.name` from the catalog: its quoted name and columns (404 when absent).
async fn relation(tx: &Transaction<'_>, schema: &str, name: &str) -> Result<(String, Vec<Column>), Response> {
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
        let plan = rest_grammar::parse_read(&pairs).map_err(from_grammar)?;
        let token = bearer(&headers, &g);
        let mut c = g.db.conn().await.map_err(|_| unavailable())?;
        let tx = begin(&mut c, token).await?;
        let (name, columns) = relation(&tx, schema, &table).await?;
        let (sql, params) = rest_grammar::read_sql(&name, &columns, &plan).map_err(from_grammar)?;
        let rows = run_and_commit(tx, &sql, &params, token.is_some()).await?;
        Ok::<_, Response>(json_text(StatusCode::OK, rows.unwrap_or_else(|| "[]".into())))
    }
    .await
    .unwrap_or_else(|r| r)
}

/// `POST /rest/v1/<table>` with one object or an array; `Prefer: return=representation` answers
/// the inserted rows, otherwise 201 without a body.
async fn insert(State(g): State<Arc<Gateway>>, Path(table): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
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
        let representation = headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|p| p.trim() == "return=representation"));
        let token = bearer(&headers, &g);
        let mut c = g.db.conn().await.map_err(|_| unavailable())?;
        let tx = begin(&mut c, token).await?;
        let (name, columns) = relation(&tx, schema, &table).await?;
        let sql = rest_grammar::insert_sql(&name, &columns, &keys).map_err(from_grammar)?;
        let inserted =
            run_and_commit(tx, &sql, &[Param::Text(Value::Array(rows).to_string())], token.is_some()).await?;
        Ok::<_, Response>(if representation {
            json_text(StatusCode::CREATED, inserted.unwrap_or_else(|| "[]".into()))
        } else {
            StatusCode::CREATED.into_response()
        })
    }
    .await
    .unwrap_or_else(|r| r)
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
