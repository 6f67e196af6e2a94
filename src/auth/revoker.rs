//! Revoking a session in a transaction of its own.
//!
//! Refresh-token reuse detection must revoke the whole session AND refuse the request with
//! `28000` — but raising an error rolls back the caller's transaction, revocation included, and
//! Postgres has no autonomous transactions. So the revocation is committed by a short-lived
//! background worker (`pg::own_transaction`) before the caller raises; the worker gives up after
//! 5 s of lock waiting (the caller may itself hold a lock on the session row), so nothing can hang.
use crate::pg::own_transaction::try_commit_now;

/// The session and its refresh tokens, revoked in one statement (`$1`: `{"session": uuid}`).
const REVOKE_SESSION: &str = "WITH s AS (UPDATE auth.sessions SET revoked_at = pg_catalog.now() \
       WHERE id OPERATOR(pg_catalog.=) ($1 OPERATOR(pg_catalog.->>) 'session')::pg_catalog.uuid AND revoked_at IS NULL RETURNING 1), \
     t AS (UPDATE auth.refresh_tokens SET revoked_at = pg_catalog.now() \
       WHERE session_id OPERATOR(pg_catalog.=) ($1 OPERATOR(pg_catalog.->>) 'session')::pg_catalog.uuid AND revoked_at IS NULL RETURNING 1) \
     SELECT (SELECT pg_catalog.count(*) FROM s) OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM t)";

/// Revoke `session` (and its refresh tokens) in a committed transaction of its own. Returns
/// whether that transaction committed (a session already revoked stays revoked: also true).
pub fn revoke_session_now(session: uuid::Uuid) -> bool {
    try_commit_now(REVOKE_SESSION, serde_json::json!({ "session": session.to_string() })).is_ok()
}
