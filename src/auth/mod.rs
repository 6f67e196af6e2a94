//! Identity: schema `auth` (docs/sql-reference.md, "auth").
mod accounts;
pub mod gucs;
pub mod identity;
mod key_admin;
mod keyring;
mod keys;
mod passwords;
mod revoker;
mod sessions;
mod signing;
mod token_cache;
mod verify;

use crate::error;
use crate::pg::spi::{types, KeptStatement};
use crate::pg::uuid::to_pg;
use pgrx::prelude::*;
use verify::{TokenError, VerifyConfig};

extension_sql_file!("../../sql/auth.sql", name = "auth_tables", requires = ["bootstrap"]);

pub fn init() {
    gucs::init();
    keyring::init();
}

pub fn verify_config() -> VerifyConfig {
    VerifyConfig {
        audience: gucs::non_empty(&gucs::JWT_AUDIENCE),
        issuer: gucs::non_empty(&gucs::JWT_ISSUER),
        leeway_seconds: gucs::JWT_LEEWAY.get().max(0) as u64,
    }
}

/// Run by every `authenticate` of a token we issued: a kept plan, so a request pays the index
/// lookup, not a parse and plan (bench part 1). The rule is "accepted only if found and live":
/// a session row that is missing (erased, deleted by hand or by retention), revoked, or of
/// another user, or an account that no longer exists, all answer false.
static SESSION_LIVE: KeptStatement = KeptStatement {
    sql: "SELECT EXISTS (SELECT 1 FROM auth.sessions s JOIN auth.users u ON u.id OPERATOR(pg_catalog.=) s.user_id \
           WHERE s.id OPERATOR(pg_catalog.=) $1 AND s.user_id OPERATOR(pg_catalog.=) $2 AND s.revoked_at IS NULL)",
    types: &[types::UUID, types::UUID],
    writes: false,
};

/// Whether the token's `session_id` names a live session of `sub`. A `session_id` that is not a
/// UUID names no session of ours: false.
fn session_is_live(session_id: Option<&str>, sub: uuid::Uuid) -> bool {
    let Some(id) = session_id.and_then(|s| uuid::Uuid::parse_str(s).ok()) else {
        return false;
    };
    Spi::connect_mut(|c| {
        SESSION_LIVE.run(c, |c, plan| {
            let rows = c.select(plan, Some(1), &[to_pg(id).into(), to_pg(sub).into()])?;
            Ok(rows.into_iter().next().and_then(|r| r.get::<bool>(1).ok().flatten()).unwrap_or(false))
        })
    })
    .unwrap_or_else(|e| error::spi_failed(SESSION_LIVE.sql, e))
}

#[pg_schema]
mod auth {
    use super::*;
    use crate::auth::identity;
    use pgrx::JsonB;

    /// The current user's id (`sub`), NULL when nobody is authenticated.
    #[pg_extern(stable, parallel_safe)]
    fn uid() -> Option<pgrx::Uuid> {
        identity::current_sub().map(to_pg)
    }

    /// All claims of the current identity, NULL when there is none.
    #[pg_extern(stable, parallel_safe)]
    fn jwt() -> Option<JsonB> {
        identity::current().claims.map(|c| JsonB(serde_json::Value::Object(c)))
    }

    #[pg_extern(stable, parallel_safe)]
    fn role() -> Option<String> {
        identity::current().claim_str("role")
    }

    #[pg_extern(stable, parallel_safe)]
    fn email() -> Option<String> {
        identity::current().claim_str("email")
    }

    /// Verify a compact JWS and make its claims the identity for the rest of the transaction.
    #[pg_extern(volatile, security_definer)]
    fn authenticate(token: Option<&str>) -> pgrx::Uuid {
        let token = token.unwrap_or_else(|| error::not_authorized(TokenError::Empty.to_string()));
        let verified =
            token_cache::verify(token, &verify_config()).unwrap_or_else(|e| error::not_authorized(e.to_string()));
        if verified.needs_session() && !session_is_live(verified.session_id(), verified.sub) {
            error::not_authorized(TokenError::RevokedSession.to_string());
        }
        identity::set_for_transaction(&verified.payload_json, verified.sub, &verified.claims);
        to_pg(verified.sub)
    }
}

/// Planner support of `auth.uid()`, `auth.jwt()`, `auth.role()` and `auth.email()`: a call in a
/// query that reads relations is evaluated once per execution, not once per row
/// (`pg::initplan`). Takes and returns `internal`, so it cannot be called from SQL.
#[pg_extern(immutable, parallel_safe)]
fn _once_per_execution(request: pgrx::Internal) -> pgrx::Internal {
    let Some(datum) = request.unwrap() else {
        return pgrx::Internal::from(Some(pgrx::pg_sys::Datum::from(0usize)));
    };
    let node = datum.cast_mut_ptr::<pgrx::pg_sys::Node>();
    // SAFETY: Postgres calls a support function with a pointer to a live request node; we only
    // act on SupportRequestSimplify (checked by tag) and answer "no change" (a NULL pointer,
    // not an SQL NULL: the caller errors on that) to every other request.
    let answer = unsafe {
        if (*node).type_ == pgrx::pg_sys::NodeTag::T_SupportRequestSimplify {
            crate::pg::initplan::once_per_execution(node.cast())
        } else {
            std::ptr::null_mut()
        }
    };
    pgrx::Internal::from(Some(pgrx::pg_sys::Datum::from(answer)))
}

/// Drop every backend's parsed keys (run by the trigger on auth.keys).
#[pg_extern(volatile)]
fn _invalidate_key_cache() {
    keyring::invalidate_everywhere();
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn uid_is_null_without_identity() {
        assert_eq!(Spi::get_one::<bool>("SELECT auth.uid() IS NULL").unwrap(), Some(true));
    }

    #[pg_test]
    fn key_cache_follows_auth_keys() {
        // An HS256 token for k1 (exp 2100-01-01), verified, then refused once k1 is revoked.
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiIxMTExMTExMS0xMTExLTQxMTEtODExMS0xMTExMTExMTExMTEiLCJyb2xlIjoiYXV0aGVudGljYXRlZCIsImF1ZCI6ImF1dGhlbnRpY2F0ZWQiLCJlbWFpbCI6ImFsaWNlQGV4YW1wbGUuY29tIiwiZXhwIjo0MTAyNDQ0ODAwfQ.Da4Wn161a_DDXT_4tILZcy9O0UlLe9w2s6Y8dLYbbJM";
        Spi::run(r#"SELECT auth.add_key('{"kty":"oct","kid":"k1","alg":"HS256","k":"aGVhbHRoX3JscyByZWdyZXNzaW9uIHNlY3JldCwgMzIrIGJ5dGVzIGxvbmchIQ"}')"#).unwrap();
        let sub = Spi::get_one_with_args::<pgrx::Uuid>("SELECT auth.authenticate($1)", &[token.into()]).unwrap();
        assert_eq!(sub.map(|u| u.to_string()), Some("11111111-1111-4111-8111-111111111111".into()));
        Spi::run("SELECT auth.revoke_key('k1')").unwrap();
        let after = crate::error::testing::outcome(&format!("SELECT auth.authenticate('{token}')"));
        assert_eq!(
            after, "28000: token rejected: unknown key (no key in auth.keys matches its kid and algorithm)",
            "a revoked key must not verify"
        );
    }
}
