//! Signing in and staying signed in, with nothing readable by the page's script.
//!
//! The gateway keeps no session state of its own: the database's session lives in two HttpOnly,
//! SameSite=Strict cookies (Secure when served over TLS):
//! - `hr_access`, the short-lived access token (`health_rls.jwt_ttl`), Path=/api: every data
//!   request and the event stream present it, and the database verifies it each time.
//! - `hr_refresh`, the single-use refresh token, Path=/api/session: the browser sends it only to
//!   the session endpoints, never with data requests or the stream.
//!
//! When the access cookie is gone or refused, the page calls POST /api/session/refresh once;
//! the gateway trades the refresh token for a new pair (`auth.refresh_session`) and sets BOTH
//! cookies again at once — the old refresh token is used up, and presenting it later would make
//! the database revoke the whole session (reuse detection).
use crate::db::{as_anon, as_user, json_response, ApiError};
use crate::gateway::Gateway;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;

pub const ACCESS: &str = "hr_access";
pub const REFRESH: &str = "hr_refresh";
/// How long the browser keeps the refresh cookie; the database's `health_rls.session_lifetime`
/// (30 days by default) and idle timeout still decide whether it is any good.
const REFRESH_MAX_AGE: i64 = 30 * 24 * 3600;

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    HeaderValue::from_str(&text).expect("token characters are cookie-safe")
}

/// Both cookies from a GoTrue-shaped token response; the body carries only the user.
fn signed_in(g: &Gateway, tokens: &Value) -> Result<Response, ApiError> {
    let (Some(access), Some(refresh)) = (tokens["access_token"].as_str(), tokens["refresh_token"].as_str()) else {
        return Err(ApiError::Internal);
    };
    // The cookie disappears when the token expires; the page then asks for a refresh.
    let ttl = tokens["expires_in"].as_i64().unwrap_or(3600).max(1);
    let mut resp = json_response(StatusCode::OK, &json!({"user": tokens["user"], "expires_at": tokens["expires_at"]}));
    let h = resp.headers_mut();
    h.append(SET_COOKIE, set_cookie(ACCESS, access, "/api", ttl, g.secure_cookies));
    h.append(SET_COOKIE, set_cookie(REFRESH, refresh, "/api/session", REFRESH_MAX_AGE, g.secure_cookies));
    Ok(resp)
}

fn cleared(g: &Gateway, mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.append(SET_COOKIE, set_cookie(ACCESS, "", "/api", 0, g.secure_cookies));
    h.append(SET_COOKIE, set_cookie(REFRESH, "", "/api/session", 0, g.secure_cookies));
    resp
}

/// `{"email": …, "password": …}` from a JSON body.
fn credentials(body: &Bytes) -> Result<(String, String), ApiError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| ApiError::BadRequest("The request body is not JSON.".into()))?;
    let field = |k: &str| v[k].as_str().map(str::to_string).filter(|s| !s.trim().is_empty());
    match (field("email"), field("password")) {
        (Some(e), Some(p)) => Ok((e, p)),
        _ => Err(ApiError::BadRequest("Enter both an email address and a password.".into())),
    }
}

/// 28000 from start_session means unknown email or wrong password (the database does not say which).
fn wrong_password(e: ApiError) -> ApiError {
    match e {
        ApiError::Unauthorized(..) => ApiError::Unauthorized("bad_credentials", "Wrong email or password.".into()),
        other => other,
    }
}

pub async fn sign_in(State(g): State<Arc<Gateway>>, body: Bytes) -> Result<Response, ApiError> {
    let (email, password) = credentials(&body)?;
    let mut conn = g.db.conn().await?;
    let tx = as_anon(&mut conn).await?;
    let row = tx
        .query_one("SELECT auth.start_session($1, $2)", &[&email, &password])
        .await
        .map_err(|e| wrong_password(e.into()))?;
    tx.commit().await?;
    signed_in(&g, &row.get::<_, Value>(0))
}

pub async fn sign_up(State(g): State<Arc<Gateway>>, body: Bytes) -> Result<Response, ApiError> {
    let (email, password) = credentials(&body)?;
    let mut conn = g.db.conn().await?;
    let tx = as_anon(&mut conn).await?;
    // sign_up answers an already registered email like a new one (no account enumeration); the
    // sign-in right after then only succeeds with that account's own password.
    tx.query_one("SELECT auth.sign_up($1, $2)", &[&email, &password]).await?;
    let row =
        tx.query_one("SELECT auth.start_session($1, $2)", &[&email, &password]).await.map_err(|e| match e.into() {
            ApiError::Unauthorized(..) => ApiError::Unauthorized(
                "bad_credentials",
                "Could not create that account. If the email already has one, sign in with its password.".into(),
            ),
            other => other,
        })?;
    tx.commit().await?;
    signed_in(&g, &row.get::<_, Value>(0))
}

/// Trade the refresh cookie for a new access token and a new refresh token.
async fn rotate(g: &Gateway, headers: &HeaderMap) -> Result<Value, ApiError> {
    let Some(refresh) = cookie(headers, REFRESH) else {
        return Err(ApiError::Unauthorized("no_session", "You are not signed in.".into()));
    };
    let mut conn = g.db.conn().await?;
    let tx = as_anon(&mut conn).await?;
    let row = tx.query_one("SELECT auth.refresh_session($1)", &[&refresh]).await?;
    tx.commit().await?;
    Ok(row.get(0))
}

pub async fn refresh(State(g): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    match rotate(&g, &headers).await {
        Ok(tokens) => signed_in(&g, &tokens).unwrap_or_else(|e| cleared(&g, e.into_response())),
        // A refused refresh token is dead for good: forget both cookies.
        Err(e @ ApiError::Unauthorized(..)) => cleared(&g, e.into_response()),
        Err(e) => e.into_response(),
    }
}

/// Revoke the database session (its access tokens, refresh tokens and live streams end) and
/// forget the cookies. With an expired access cookie the refresh token buys one to sign out with.
pub async fn sign_out(State(g): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let result = async {
        let access = match cookie(&headers, ACCESS) {
            Some(a) => a,
            None => rotate(&g, &headers).await?["access_token"].as_str().unwrap_or_default().to_string(),
        };
        let mut conn = g.db.conn().await?;
        let tx = as_user(&mut conn, &access).await?;
        tx.query_one("SELECT auth.sign_out()", &[]).await?;
        tx.commit().await?;
        Ok::<(), ApiError>(())
    }
    .await;
    match result {
        // Already signed out (expired, revoked, no cookies): the outcome the person asked for.
        Ok(()) | Err(ApiError::Unauthorized(..)) => {
            cleared(&g, json_response(StatusCode::OK, &json!({"signed_out": true})))
        }
        Err(e) => e.into_response(),
    }
}
