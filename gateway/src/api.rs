//! What the page reads and changes, each request in its own transaction AS the signed-in user
//! (db::as_user): owner-only RLS decides which rows come back, the sharing functions decide who
//! may share, revoke and read. The gateway adds no filter of its own.
use crate::db::{as_user, as_user_read_committed, json_response, ApiError};
use crate::gateway::Gateway;
use crate::relay;
use crate::session::{cookie, ACCESS};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The access token from its HttpOnly cookie; without one the page asks for a refresh.
fn token(headers: &HeaderMap) -> Result<String, ApiError> {
    cookie(headers, ACCESS).ok_or_else(|| ApiError::Unauthorized("no_session", "You are not signed in.".into()))
}

fn body_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|_| ApiError::BadRequest("The request body is not JSON.".into()))
}

/// A user, share or invitation id, checked before it reaches SQL so the answer names what was wrong.
fn uuid_of(v: &Value, what: &str) -> Result<String, ApiError> {
    let text = v.as_str().unwrap_or_default().trim();
    uuid::Uuid::parse_str(text).map(|u| u.to_string()).map_err(|_| {
        ApiError::BadRequest(format!("{what} is not an id (one looks like 8-4-4-4-12 hexadecimal digits)."))
    })
}

/// A sample's time as milliseconds since the epoch (what the page's Date wants).
const MS: &str = "(extract(epoch FROM recorded_at) * 1000)::int8";

pub async fn me(State(g): State<Arc<Gateway>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = token(&headers)?;
    let mut conn = g.db.conn().await?;
    let tx = as_user(&mut conn, &token).await?;
    let row = tx.query_one("SELECT auth.uid()::text, auth.email()", &[]).await?;
    let (id, email): (String, Option<String>) = (row.get(0), row.get(1));
    Ok(json_response(StatusCode::OK, &json!({"user": {"id": id, "email": email}, "table": g.table_name})))
}

/// The page's starting picture: the last hour of heart rate, the latest value of every kind,
/// and the change-feed position they were read at (the stream resumes after it, so nothing
/// committed between this read and the stream's start is missed).
pub async fn dashboard(State(g): State<Arc<Gateway>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = token(&headers)?;
    let mut conn = g.db.conn().await?;
    let tx = as_user(&mut conn, &token).await?;
    let after: i64 = tx
        .query_one(
            "SELECT coalesce((SELECT seq + n - 1 FROM health_rls.changes ORDER BY seq DESC LIMIT 1), 0)::int8",
            &[],
        )
        .await?
        .get(0);
    let heart = tx
        .query(
            &format!(
                "SELECT id, value, {MS} FROM {} WHERE kind = 'heart_rate' AND recorded_at > now() - interval '1 hour' \
                 ORDER BY recorded_at",
                g.table
            ),
            &[],
        )
        .await?;
    let latest = tx
        .query(
            &format!(
                "SELECT DISTINCT ON (kind) id, kind, value, unit, {MS} FROM {} ORDER BY kind, recorded_at DESC",
                g.table
            ),
            &[],
        )
        .await?;
    tx.commit().await?;
    let heart: Vec<Value> = heart
        .iter()
        .map(|r| json!({"id": r.get::<_, i64>(0), "value": r.get::<_, f64>(1), "at": r.get::<_, i64>(2)}))
        .collect();
    let latest: Vec<Value> = latest.iter().map(sample).collect();
    Ok(json_response(StatusCode::OK, &json!({"after_seq": after, "heart_rate": heart, "latest": latest})))
}

fn sample(r: &tokio_postgres::Row) -> Value {
    json!({"id": r.get::<_, i64>(0), "kind": r.get::<_, String>(1), "value": r.get::<_, f64>(2),
           "unit": r.get::<_, String>(3), "at": r.get::<_, i64>(4)})
}

/// The values behind a change event's keys (events carry keys only). `?ids=1,2,3`; ids of other
/// users' rows simply do not come back. Or `?kind=code&from=time` (ISO 8601): the raw samples of
/// one kind since then (the page's hour view), at most 5000.
pub async fn samples(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let token = token(&headers)?;
    let ids: Vec<i64> = q
        .get("ids")
        .map(|s| s.split(',').filter_map(|i| i.trim().parse().ok()).take(1000).collect())
        .unwrap_or_default();
    let mut conn = g.db.conn().await?;
    let tx = as_user(&mut conn, &token).await?;
    let rows = match q.get("kind") {
        None => {
            let sql =
                format!("SELECT id, kind, value, unit, {MS} FROM {} WHERE id = ANY($1) ORDER BY recorded_at", g.table);
            tx.query(&sql, &[&ids]).await?
        }
        Some(kind) => {
            let sql = format!(
                "SELECT id, kind, value, unit, {MS} FROM {} WHERE kind = $1 AND recorded_at >= $2::text::timestamptz \
                 ORDER BY recorded_at LIMIT 5000",
                g.table
            );
            tx.query(&sql, &[kind, &q.get("from").map_or("-infinity", String::as_str)]).await?
        }
    };
    tx.commit().await?;
    Ok(json_response(StatusCode::OK, &json!({"samples": rows.iter().map(sample).collect::<Vec<_>>()})))
}

/// The catalog's kinds as a page shows them (health.metric_kinds: the unit people read and its
/// decimals, with the documented fallbacks: the canonical unit, 2), and whether the caller has
/// samples of each in the page's table (RLS: an index probe per kind, own rows only).
pub async fn kinds(State(g): State<Arc<Gateway>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = token(&headers)?;
    let mut conn = g.db.conn().await?;
    let tx = as_user(&mut conn, &token).await?;
    let rows = tx
        .query(
            &format!(
                "SELECT k.code, k.display, k.unit, coalesce(k.display_unit, k.unit), coalesce(k.display_precision, 2)::int4, \
                        EXISTS (SELECT 1 FROM {} s WHERE s.kind = k.code) \
                   FROM health.metric_kinds k ORDER BY k.display",
                g.table
            ),
            &[],
        )
        .await?;
    tx.commit().await?;
    let kinds: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"code": r.get::<_, String>(0), "display": r.get::<_, String>(1), "unit": r.get::<_, String>(2),
                   "display_unit": r.get::<_, String>(3), "display_precision": r.get::<_, i32>(4),
                   "has_samples": r.get::<_, bool>(5)})
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"kinds": kinds})))
}

/// The caller's trend of one kind: health.summary's buckets (`?kind=&bucket=&from=&until=&tz=`,
/// times ISO 8601, tz an IANA zone). The database checks every parameter (22023 / 22007 become
/// a 400 with its words); bucket starts come back as milliseconds since the epoch.
pub async fn summary(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let token = token(&headers)?;
    let param = |name: &str| q.get(name).map(String::as_str);
    let (bucket, tz) = (param("bucket").unwrap_or("day"), param("tz").unwrap_or("UTC"));
    let mut conn = g.db.conn().await?;
    let tx = as_user_read_committed(&mut conn, &token).await?;
    let rows = tx
        .query(
            "SELECT (extract(epoch FROM bucket_start) * 1000)::int8, n, min, avg, max, sum \
               FROM health.summary($1, $2, $3::text::timestamptz, $4::text::timestamptz, $5)",
            &[&param("kind"), &bucket, &param("from"), &param("until"), &tz],
        )
        .await?;
    tx.commit().await?;
    let buckets: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"start": r.get::<_, i64>(0), "n": r.get::<_, i64>(1), "min": r.get::<_, f64>(2),
                   "avg": r.get::<_, f64>(3), "max": r.get::<_, f64>(4), "sum": r.get::<_, f64>(5)})
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"kind": param("kind"), "bucket": bucket, "tz": tz, "buckets": buckets})))
}

/// The stream of change events, authenticated by the access cookie (EventSource cannot send an
/// Authorization header, and a token in the URL would end up in logs and history). A browser
/// reconnecting on its own sends Last-Event-ID; a page that opens a new stream says `?after=seq`.
pub async fn stream(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let token = token(&headers)?;
    let after = relay::last_event_id(&headers).or_else(|| q.get("after").and_then(|a| a.parse().ok()));
    Ok(relay::stream(&g.relay, &token, after).await)
}

pub async fn shares(State(g): State<Arc<Gateway>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = token(&headers)?;
    let mut conn = g.db.conn().await?;
    let tx = as_user(&mut conn, &token).await?;
    let rows = tx.query("SELECT share FROM health.shares()", &[]).await?;
    tx.commit().await?;
    Ok(json_response(StatusCode::OK, &json!({"shares": rows.iter().map(|r| r.get::<_, Value>(0)).collect::<Vec<_>>()})))
}

/// `{"grantee": uuid, "kinds": [..], "expires_in_days": n?}` → a new share, by user id: for API
/// clients that already know it; the page shares by email (`invite`).
pub async fn share(State(g): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let token = token(&headers)?;
    let v = body_json(&body)?;
    let grantee = uuid_of(&v["grantee"], "The person's id")?;
    let kinds: Vec<String> = v["kinds"]
        .as_array()
        .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let days: Option<i32> = v["expires_in_days"].as_i64().and_then(|d| i32::try_from(d).ok());
    let mut conn = g.db.conn().await?;
    let tx = as_user(&mut conn, &token).await?;
    let row = tx
        .query_one(
            "SELECT health.share($1::text::uuid, $2::text[], NULL, NULL, now() + make_interval(days => $3::int4))::text",
            &[&grantee, &kinds, &days],
        )
        .await?;
    tx.commit().await?;
    Ok(json_response(StatusCode::OK, &json!({"share": row.get::<_, String>(0)})))
}

pub async fn revoke(State(g): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let token = token(&headers)?;
    let id = uuid_of(&body_json(&body)?["id"], "The share id")?;
    let mut conn = g.db.conn().await?;
    let tx = as_user(&mut conn, &token).await?;
    tx.execute("SELECT health.revoke_share($1::text::uuid)", &[&id]).await?;
    tx.commit().await?;
    Ok(json_response(StatusCode::OK, &json!({"revoked": id})))
}

pub async fn access_log(State(g): State<Arc<Gateway>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = token(&headers)?;
    let mut conn = g.db.conn().await?;
    let tx = as_user(&mut conn, &token).await?;
    let rows = tx
        .query(
            "SELECT (extract(epoch FROM at) * 1000)::int8, grantee_id::text, grantee_email, kinds, row_count \
               FROM health.my_access_log() LIMIT 50",
            &[],
        )
        .await?;
    tx.commit().await?;
    let log: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"at": r.get::<_, i64>(0), "grantee_id": r.get::<_, String>(1), "grantee_email": r.get::<_, Option<String>>(2),
                   "kinds": r.get::<_, Vec<String>>(3), "rows": r.get::<_, i32>(4)})
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"access_log": log})))
}

/// A grantee reads what an owner shared (the latest value per kind). POST, not GET: the read is
/// recorded in the owner's access log, so it changes state.
pub async fn shared(State(g): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let token = token(&headers)?;
    let owner = uuid_of(&body_json(&body)?["owner"], "The owner's id")?;
    let mut conn = g.db.conn().await?;
    let tx = as_user(&mut conn, &token).await?;
    let rows = tx
        .query(
            &format!(
                "SELECT DISTINCT ON (kind) id, kind, value, unit, {MS} FROM health.shared_samples($1::text::uuid) \
                 ORDER BY kind, recorded_at DESC"
            ),
            &[&owner],
        )
        .await?;
    tx.commit().await?;
    Ok(json_response(StatusCode::OK, &json!({"samples": rows.iter().map(sample).collect::<Vec<_>>()})))
}

/// A timestamp the caller may leave out: absent, null or "" mean none (the database reads the
/// text, so a time it cannot read is its 22007, a 400 in its words).
fn optional_time(v: &Value) -> Option<String> {
    v.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// The invitations the caller sent and those addressed to its own address (health.invitations):
/// `email` is the invitee's on a sent one and the inviter's on a received one; times in ms.
pub async fn invitations(State(g): State<Arc<Gateway>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = token(&headers)?;
    let mut conn = g.db.conn().await?;
    let tx = as_user(&mut conn, &token).await?;
    let ms = |c: &str| format!("(extract(epoch FROM {c}) * 1000)::int8");
    let rows = tx
        .query(
            &format!(
                "SELECT id::text, direction, email, kinds, {}, {}, {}, {}, {}, status, share_id::text \
                   FROM health.invitations() ORDER BY created_at DESC",
                ms("data_from"),
                ms("data_until"),
                ms("expires_at"),
                ms("created_at"),
                ms("valid_until")
            ),
            &[],
        )
        .await?;
    tx.commit().await?;
    let time = |r: &tokio_postgres::Row, i| r.get::<_, Option<i64>>(i);
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"id": r.get::<_, String>(0), "direction": r.get::<_, String>(1), "email": r.get::<_, String>(2),
                   "kinds": r.get::<_, Vec<String>>(3), "data_from": time(r, 4), "data_until": time(r, 5),
                   "expires_at": time(r, 6), "created_at": time(r, 7), "valid_until": time(r, 8),
                   "status": r.get::<_, String>(9), "share_id": r.get::<_, Option<String>>(10)})
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"invitations": list})))
}

/// `{"email", "kinds": [..], "data_from"?, "data_until"?, "expires_at"? (ISO 8601) or
/// "expires_in_days"?}` → the invitation's id. health.invite answers alike whether or not the
/// address has an account, and so does this: the id and nothing about the invitee.
pub async fn invite(State(g): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let token = token(&headers)?;
    let v = body_json(&body)?;
    let email = v["email"].as_str().unwrap_or_default().to_string();
    let kinds: Vec<String> = v["kinds"]
        .as_array()
        .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let (from, until, expires) =
        (optional_time(&v["data_from"]), optional_time(&v["data_until"]), optional_time(&v["expires_at"]));
    let days: Option<i32> = v["expires_in_days"].as_i64().and_then(|d| i32::try_from(d).ok());
    let mut conn = g.db.conn().await?;
    let tx = as_user(&mut conn, &token).await?;
    let row = tx
        .query_one(
            "SELECT health.invite($1, $2::text[], $3::text::timestamptz, $4::text::timestamptz, \
                    coalesce($5::text::timestamptz, now() + make_interval(days => $6::int4)))::text",
            &[&email, &kinds, &from, &until, &expires, &days],
        )
        .await?;
    tx.commit().await?;
    Ok(json_response(StatusCode::OK, &json!({"invitation": row.get::<_, String>(0)})))
}

/// `{"id"}`: accept (→ the share's id), decline or revoke one invitation. The database decides
/// who may: one 42501 (403) for any invitation not pending for the caller, 42704 (404) for a
/// revoke of one that is not the caller's to withdraw.
pub async fn accept_invitation(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (id, share) =
        on_invitation(&g, &headers, &body, "SELECT health.accept_invitation($1::text::uuid)::text").await?;
    Ok(json_response(StatusCode::OK, &json!({"accepted": id, "share": share})))
}

pub async fn decline_invitation(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (id, _) = on_invitation(&g, &headers, &body, "SELECT health.decline_invitation($1::text::uuid)::text").await?;
    Ok(json_response(StatusCode::OK, &json!({"declined": id})))
}

pub async fn revoke_invitation(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (id, _) = on_invitation(&g, &headers, &body, "SELECT health.revoke_invitation($1::text::uuid)::text").await?;
    Ok(json_response(StatusCode::OK, &json!({"revoked": id})))
}

/// Runs `sql` ($1: the body's invitation id) as the caller; returns the id and what `sql` returned.
async fn on_invitation(
    g: &Gateway,
    headers: &HeaderMap,
    body: &Bytes,
    sql: &str,
) -> Result<(String, Option<String>), ApiError> {
    let token = token(headers)?;
    let id = uuid_of(&body_json(body)?["id"], "The invitation id")?;
    let mut conn = g.db.conn().await?;
    let tx = as_user(&mut conn, &token).await?;
    let row = tx.query_one(sql, &[&id]).await?;
    tx.commit().await?;
    Ok((id, row.get(0)))
}
