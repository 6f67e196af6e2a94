//! The gateway's database side: a few pooled connections, transactions that run AS the user
//! (the database verifies the token and RLS filters the rows), and database errors turned into
//! answers a person can read.
//!
//! The gateway never filters rows by user id itself: every read for the page runs inside
//! `SET LOCAL ROLE authenticated; SELECT auth.authenticate($token)`, so a bug in the gateway
//! cannot show one user another's data. Sign-up, sign-in and refresh run as `anon`, the role an
//! API uses before it knows who is calling.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, IsolationLevel, NoTls, Transaction};

/// At most `size` connections; idle ones are kept for the next request.
pub struct Db {
    dsn: String,
    idle: Mutex<Vec<Client>>,
    permits: Semaphore,
}

/// A connection lent to one request; back to the pool when dropped (unless it broke).
pub struct Conn<'a> {
    db: &'a Db,
    client: Option<Client>,
    _permit: SemaphorePermit<'a>,
}

impl Deref for Conn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("connection present until drop")
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("connection present until drop")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.client.take().filter(|c| !c.is_closed()) {
            self.db.idle.lock().unwrap().push(c);
        }
    }
}

impl Db {
    pub fn new(dsn: &str, size: usize) -> Db {
        Db { dsn: dsn.to_string(), idle: Mutex::new(Vec::new()), permits: Semaphore::new(size) }
    }

    pub async fn conn(&self) -> Result<Conn<'_>, ApiError> {
        let permit = self.permits.acquire().await.map_err(|_| ApiError::Unavailable)?;
        let idle = self.idle.lock().unwrap().pop().filter(|c| !c.is_closed());
        let client = match idle {
            Some(c) => c,
            None => {
                let (client, conn) = tokio_postgres::connect(&self.dsn, NoTls).await.map_err(|e| {
                    eprintln!("gateway: cannot connect to the database: {e}");
                    ApiError::Unavailable
                })?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                client
            }
        };
        Ok(Conn { db: self, client: Some(client), _permit: permit })
    }
}

/// A transaction in which the database knows the caller from `token` (refused with 28000 when
/// the token is expired, forged or its session revoked). Repeatable read: a page's snapshot and
/// the change-feed position it reports come from the same moment.
pub async fn as_user<'a>(client: &'a mut Client, token: &str) -> Result<Transaction<'a>, ApiError> {
    as_user_in(client, token, IsolationLevel::RepeatableRead).await
}

/// `as_user` in a read committed transaction: for `health.summary`, which keeps its hourly
/// rollups up to date only there (in repeatable read it reads the samples whenever they are behind).
pub async fn as_user_read_committed<'a>(client: &'a mut Client, token: &str) -> Result<Transaction<'a>, ApiError> {
    as_user_in(client, token, IsolationLevel::ReadCommitted).await
}

async fn as_user_in<'a>(
    client: &'a mut Client,
    token: &str,
    isolation: IsolationLevel,
) -> Result<Transaction<'a>, ApiError> {
    let tx = client.build_transaction().isolation_level(isolation).start().await?;
    tx.batch_execute("SET LOCAL ROLE authenticated").await?;
    tx.query_one("SELECT auth.authenticate($1)", &[&token]).await?;
    Ok(tx)
}

/// A transaction as the anonymous role (sign-up, sign-in, refresh: nobody is known yet).
pub async fn as_anon(client: &mut Client) -> Result<Transaction<'_>, ApiError> {
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL ROLE anon").await?;
    Ok(tx)
}

/// What went wrong, as the page shows it: a status, a stable code for the script, and words.
#[derive(Debug)]
pub enum ApiError {
    /// No usable session: the page offers to sign in again.
    Unauthorized(&'static str, String),
    BadRequest(String),
    Forbidden(String),
    NotFound(String),
    Unavailable,
    Internal,
}

impl ApiError {
    pub fn session_expired() -> ApiError {
        ApiError::Unauthorized("session_expired", "Your session has expired or was ended. Please sign in again.".into())
    }
}

/// The database's own message, without the function name it starts with ("health.share: …").
fn readable(e: &tokio_postgres::error::DbError) -> String {
    let m = e.message();
    match m.split_once(": ") {
        Some((head, rest)) if head.contains('.') && !head.contains(' ') => rest.to_string(),
        _ => m.to_string(),
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> ApiError {
        let Some(db) = e.as_db_error() else {
            eprintln!("gateway: database connection problem: {e}");
            return ApiError::Unavailable;
        };
        match db.code().code() {
            "28000" => ApiError::session_expired(),
            "42501" => ApiError::Forbidden(readable(db)),
            "42704" => ApiError::NotFound(readable(db)),
            c if c.starts_with("22") || c.starts_with("23") => ApiError::BadRequest(readable(db)),
            _ => {
                eprintln!("gateway: database error {}: {}", db.code().code(), db.message());
                ApiError::Internal
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::Unauthorized(code, m) => (StatusCode::UNAUTHORIZED, code, m),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The database cannot be reached right now. Try again in a moment.".into(),
            ),
            ApiError::Internal => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Something went wrong on the server.".into())
            }
        };
        json_response(status, &json!({"error": message, "code": code}))
    }
}

/// A JSON body with its content type (axum's Json needs a feature the tests do not build).
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}
