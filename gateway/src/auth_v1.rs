//! `/auth/v1`: the part of GoTrue's API that supabase-js's auth client calls, over the extension's
//! `auth` schema (docs/supabase-js.md). The database does all the work, in one transaction per
//! request: as `anon` for sign-up, sign-in and refresh (nobody is known yet), as the user for
//! `logout` and `user` (`auth.authenticate` verifies the bearer token and its session). Answers
//! and errors have GoTrue's shapes: a session `{access_token, token_type, expires_in, expires_at,
//! refresh_token, user}`, a user object, and errors `{code, error_code, msg}` with its codes.
use crate::db::{as_anon, as_user, json_response, ApiError};
use crate::gateway::Gateway;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The `/auth/v1` routes (the publishable key and CORS are checked around them: `api_keys`).
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/auth/v1/signup", post(signup))
        .route("/auth/v1/token", post(token))
        .route("/auth/v1/logout", post(logout))
        .route("/auth/v1/user", get(user))
        .route("/auth/v1/.well-known/jwks.json", get(jwks))
}

/// A GoTrue error: `status`, its `error_code`, and words for a person.
pub fn error(status: StatusCode, code: &str, msg: &str) -> Response {
    json_response(status, &json!({"code": code, "error_code": code, "msg": msg}))
}

fn invalid_credentials() -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_credentials", "Invalid login credentials")
}

fn server_error(e: ApiError) -> Response {
    match e {
        ApiError::Unavailable => {
            error(StatusCode::SERVICE_UNAVAILABLE, "unexpected_failure", "The database cannot be reached right now")
        }
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure", "Something went wrong on the server"),
    }
}

/// The request's JSON object body (None: answer `not_an_object()`).
fn body_object(body: &Bytes) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

fn not_an_object() -> Response {
    error(StatusCode::BAD_REQUEST, "validation_failed", "The request body must be a JSON object")
}

fn text<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The bearer token of the request, unless it is absent or the publishable key itself (then the
/// request is anonymous).
pub fn bearer<'a>(headers: &'a HeaderMap, g: &Gateway) -> Option<&'a str> {
    let token = headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")?.trim();
    let publishable = g.api.as_ref().map(|a| a.publishable_key.as_str());
    (!token.is_empty() && Some(token) != publishable).then_some(token)
}

/// A GoTrue user object from the verified claims (`auth.jwt()`).
fn user_object(claims: &Value) -> Value {
    let claim = |k: &str| claims.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "id": claim("sub"),
        "aud": claim("aud"),
        "role": claim("role"),
        "email": claim("email"),
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {},
        "identities": [],
        "is_anonymous": false,
    })
}

/// GoTrue's code and message for the database's reason a refresh was refused.
fn refresh_refusal_code(message: &str) -> (&'static str, &'static str) {
    if message.contains("already used") {
        ("refresh_token_already_used", "Invalid Refresh Token: Already Used")
    } else if message.contains("expired") || message.contains("idle") {
        ("session_expired", "Session Expired")
    } else if message.contains("revoked") {
        ("session_not_found", "Session from session_id claim in JWT does not exist")
    } else {
        ("refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    }
}

fn refresh_refusal(message: &str) -> Response {
    let (code, msg) = refresh_refusal_code(message);
    error(StatusCode::BAD_REQUEST, code, msg)
}

/// `POST /auth/v1/signup {email, password, data?}`: an account, no session, and the same answer
/// for an email that already has one (`auth.sign_up` returns a fresh id then, creating nothing).
async fn signup(State(g): State<Arc<Gateway>>, body: Bytes) -> Response {
    let Some(b) = body_object(&body) else { return not_an_object() };
    let (email, password) = (text(&b, "email"), text(&b, "password"));
    let result: Result<Result<String, (String, String)>, ApiError> = async {
        let mut c = g.db.conn().await?;
        let tx = as_anon(&mut c).await?;
        let outcome = match tx.query_one("SELECT auth.sign_up($1, $2)::text", &[&email, &password]).await {
            Ok(row) => Ok(row.get::<_, String>(0)),
            Err(e) => match e.as_db_error() {
                Some(db) => Err((db.code().code().to_string(), db.message().to_string())),
                None => return Err(ApiError::from(e)),
            },
        };
        if outcome.is_ok() {
            tx.commit().await?;
        }
        Ok(outcome)
    }
    .await;
    match result {
        Ok(Ok(id)) => {
            let now = chrono_now();
            let data = b.get("data").filter(|d| d.is_object()).cloned().unwrap_or_else(|| json!({}));
            json_response(
                StatusCode::OK,
                &json!({
                    "id": id, "aud": "authenticated", "role": "authenticated", "email": email.to_lowercase(),
                    "phone": "", "app_metadata": {"provider": "email", "providers": ["email"]},
                    "user_metadata": data, "identities": [], "created_at": now, "updated_at": now,
                    "is_anonymous": false,
                }),
            )
        }
        Ok(Err((code, message))) if code == "22023" && message.contains("password") => json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"code": "weak_password", "error_code": "weak_password", "msg": message,
                    "weak_password": {"reasons": ["length"]}}),
        ),
        Ok(Err((code, message))) if code.starts_with("22") => {
            error(StatusCode::BAD_REQUEST, "validation_failed", &message)
        }
        Ok(Err(_)) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure", "Something went wrong on the server")
        }
        Err(e) => server_error(e),
    }
}

/// The current time as GoTrue writes it (RFC 3339, UTC, seconds).
fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `POST /auth/v1/token?grant_type=password|refresh_token`: a new session, or a refreshed one.
async fn token(State(g): State<Arc<Gateway>>, Query(q): Query<HashMap<String, String>>, body: Bytes) -> Response {
    let Some(b) = body_object(&body) else { return not_an_object() };
    let grant = q.get("grant_type").map(String::as_str).unwrap_or("");
    let (sql, args): (&str, Vec<&str>) = match grant {
        "password" => ("SELECT auth.start_session($1, $2)", vec![text(&b, "email"), text(&b, "password")]),
        "refresh_token" => ("SELECT auth.refresh_session($1)", vec![text(&b, "refresh_token")]),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be password or refresh_token",
            )
        }
    };
    let result: Result<Result<Value, (String, String)>, ApiError> = async {
        let mut c = g.db.conn().await?;
        let tx = as_anon(&mut c).await?;
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            args.iter().map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
        let session = match tx.query_one(sql, &params).await {
            Ok(row) => row.get::<_, Value>(0),
            Err(e) => {
                return match e.as_db_error() {
                    Some(db) => Ok(Err((db.code().code().to_string(), db.message().to_string()))),
                    None => Err(ApiError::from(e)),
                }
            }
        };
        // The user object from the new token's verified claims.
        let access = session["access_token"].as_str().unwrap_or("").to_string();
        tx.query_one("SELECT auth.authenticate($1)", &[&access]).await?;
        let claims: Value = tx.query_one("SELECT auth.jwt()", &[]).await?.get(0);
        tx.commit().await?;
        let mut session = session;
        session["user"] = user_object(&claims);
        Ok(Ok(session))
    }
    .await;
    match result {
        Ok(Ok(session)) => json_response(StatusCode::OK, &session),
        Ok(Err((code, message))) if code == "28000" || code == "22023" => {
            if grant == "password" {
                invalid_credentials()
            } else {
                refresh_refusal(&message)
            }
        }
        Ok(Err(_)) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure", "Something went wrong on the server")
        }
        Err(e) => server_error(e),
    }
}

fn no_authorization() -> Response {
    error(StatusCode::UNAUTHORIZED, "no_authorization", "This endpoint requires a valid Bearer token")
}

fn bad_jwt() -> Response {
    error(StatusCode::UNAUTHORIZED, "bad_jwt", "invalid JWT: the token is expired, forged, or its session has ended")
}

/// `POST /auth/v1/logout?scope=global|local|others` (bearer): ends the sessions; 204.
async fn logout(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(token) = bearer(&headers, &g) else { return no_authorization() };
    let sql = match q.get("scope").map(String::as_str).unwrap_or("global") {
        "global" => "SELECT auth.sign_out_everywhere()",
        "local" => "SELECT auth.sign_out()",
        "others" => "SELECT auth.sign_out_others()",
        _ => return error(StatusCode::BAD_REQUEST, "validation_failed", "scope must be global, local or others"),
    };
    let result: Result<(), ApiError> = async {
        let mut c = g.db.conn().await?;
        let tx = as_user(&mut c, token).await?;
        tx.query_one(sql, &[]).await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(ApiError::Unauthorized(..)) => bad_jwt(),
        Err(e) => server_error(e),
    }
}

/// `GET /auth/v1/user` (bearer): the user of the verified token.
async fn user(State(g): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers, &g) else { return no_authorization() };
    let result: Result<Value, ApiError> = async {
        let mut c = g.db.conn().await?;
        let tx = as_user(&mut c, token).await?;
        let claims: Value = tx.query_one("SELECT auth.jwt()", &[]).await?.get(0);
        tx.commit().await?;
        Ok(claims)
    }
    .await;
    match result {
        Ok(claims) => json_response(StatusCode::OK, &user_object(&claims)),
        Err(ApiError::Unauthorized(..)) => bad_jwt(),
        Err(e) => server_error(e),
    }
}

/// `GET /auth/v1/.well-known/jwks.json`: the public halves of the signing keys (`auth.jwks()`).
async fn jwks(State(g): State<Arc<Gateway>>) -> Response {
    let result: Result<Value, ApiError> = async {
        let mut c = g.db.conn().await?;
        let tx = as_anon(&mut c).await?;
        let keys: Value = tx.query_one("SELECT auth.jwks()", &[]).await?.get(0);
        tx.commit().await?;
        Ok(keys)
    }
    .await;
    match result {
        Ok(keys) => json_response(StatusCode::OK, &keys),
        Err(e) => server_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_refusals_get_gotrue_codes() {
        for (message, code) in [
            (
                "refresh token rejected: already used, the session is revoked (reuse detection)",
                "refresh_token_already_used",
            ),
            ("refresh token rejected: revoked session", "session_not_found"),
            ("refresh token rejected: revoked", "session_not_found"),
            ("refresh token rejected: session expired (health_rls.session_lifetime)", "session_expired"),
            ("refresh token rejected: session idle too long (health_rls.session_idle_timeout)", "session_expired"),
            ("refresh token rejected: unknown", "refresh_token_not_found"),
            ("refresh token rejected: empty or malformed", "refresh_token_not_found"),
        ] {
            assert_eq!(refresh_refusal_code(message).0, code, "{message}");
        }
        assert_eq!(refresh_refusal("refresh token rejected: unknown").status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_date_is_rfc3339() {
        let now = chrono_now();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
    }
}
