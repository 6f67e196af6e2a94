//! Email/password accounts and sessions: `auth.sign_up`, `auth.sign_in`, `auth.sign_out`.
//!
//! These run as the extension owner (SECURITY DEFINER, no SET clause: a function-level SET
//! would undo the transaction-local identity) and schema-qualify every name they use.
use crate::auth::{gucs, identity, key_admin, passwords};
use crate::error::{self, Code};
use crate::pg::uuid::{from_pg, to_pg};

use pgrx::prelude::*;

/// The one message for every failed sign-in: unknown email and wrong password look the same.
pub const SIGN_IN_FAILED: &str = "invalid email or password";

/// The claims of an access token made by `auth.sign_in`.
pub fn access_claims(
    user_id: &uuid::Uuid,
    email: &str,
    session_id: &uuid::Uuid,
    audience: &str,
    issuer: Option<&str>,
    now: i64,
    ttl: i64,
) -> serde_json::Value {
    let mut c = serde_json::json!({
        "sub": user_id.to_string(),
        "role": "authenticated",
        "email": email,
        "aud": audience,
        "iat": now,
        "exp": now + ttl,
        "session_id": session_id.to_string(),
    });
    if let Some(iss) = issuer {
        c["iss"] = iss.into();
    }
    c
}

fn required<'a>(value: Option<&'a str>, what: &str) -> &'a str {
    value.unwrap_or_else(|| error::bad_argument(format!("{what} must not be NULL")))
}

fn now_epoch() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Check email and password: the account's (id, stored email), or 28000 with the one message
/// for every failure, after the same argon2 work whether the email exists or not.
pub fn check_credentials(email: Option<&str>, password: Option<&str>) -> (uuid::Uuid, String) {
    let email = required(email, "email").trim();
    let password = required(password, "password");
    let found = Spi::connect(|c| {
        c.select(
            "SELECT id, email, encrypted_password FROM auth.users \
              WHERE pg_catalog.lower(email) OPERATOR(pg_catalog.=) pg_catalog.lower($1)",
            Some(1),
            &[email.into()],
        )
        .and_then(|t| t.first().get_three::<pgrx::Uuid, String, String>())
    })
    .ok();
    let (user, stored_email, phc) = match found {
        Some((Some(id), Some(e), Some(p))) => (Some(id), e, Some(p)),
        _ => (None, String::new(), None),
    };
    if !passwords::verify_password(password, phc.as_deref()) {
        error::not_authorized(SIGN_IN_FAILED);
    }
    (from_pg(user.expect("verified implies found")), stored_email)
}

/// A new session for `user` (and its last sign-in time).
pub fn new_session(user: uuid::Uuid) -> uuid::Uuid {
    let session = uuid::Uuid::new_v4();
    Spi::connect_mut(|c| {
        c.update(
            "INSERT INTO auth.sessions (id, user_id) VALUES ($1, $2)",
            None,
            &[to_pg(session).into(), to_pg(user).into()],
        )?;
        c.update(
            "UPDATE auth.users SET last_sign_in_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
            None,
            &[to_pg(user).into()],
        )
        .map(|_| ())
    })
    .unwrap_or_else(|e| error::spi_failed("new session", e));
    session
}

/// A signed access token for `session`, with the current key: (token, iat, ttl).
pub fn access_token(user: &uuid::Uuid, email: &str, session: &uuid::Uuid) -> (String, i64, i64) {
    let audience = gucs::non_empty(&gucs::JWT_AUDIENCE).unwrap_or_else(|| "authenticated".into());
    let issuer = gucs::non_empty(&gucs::JWT_ISSUER);
    let (now, ttl) = (now_epoch(), gucs::JWT_TTL.get() as i64);
    let claims = access_claims(user, email, session, &audience, issuer.as_deref(), now, ttl);
    let token = key_admin::current_signing_key()
        .sign(&claims)
        .unwrap_or_else(|e| error::raise(Code::ERRCODE_INTERNAL_ERROR, e));
    (token, now, ttl)
}

/// Which sessions of a user `revoke_sessions` ends.
pub enum Sessions {
    /// This one (`sign_out`).
    This(uuid::Uuid),
    /// Every one but this (`sign_out_others`).
    AllBut(uuid::Uuid),
    /// Every one (`sign_out_everywhere`).
    All,
}

/// Revoke sessions (and their refresh tokens) of `user`.
pub fn revoke_sessions(user: uuid::Uuid, which: Sessions) {
    // $2: the session named, $3: whether it is the one to end (true) or the one to keep (false).
    let (session, this_one) = match which {
        Sessions::This(s) => (Some(to_pg(s)), true),
        Sessions::AllBut(s) => (Some(to_pg(s)), false),
        Sessions::All => (None, true),
    };
    Spi::connect_mut(|c| {
        let filter = "user_id OPERATOR(pg_catalog.=) $1 \
             AND ($2::pg_catalog.uuid IS NULL OR (id OPERATOR(pg_catalog.=) $2) OPERATOR(pg_catalog.=) $3)";
        let args = || [to_pg(user).into(), session.into(), this_one.into()];
        c.update(
            &format!(
                "UPDATE auth.refresh_tokens SET revoked_at = pg_catalog.now() WHERE revoked_at IS NULL \
                   AND session_id IN (SELECT id FROM auth.sessions WHERE {filter})"
            ),
            None,
            &args(),
        )?;
        c.update(
            &format!("UPDATE auth.sessions SET revoked_at = pg_catalog.now() WHERE revoked_at IS NULL AND {filter}"),
            None,
            &args(),
        )
        .map(|_| ())
    })
    .unwrap_or_else(|e| error::spi_failed("revoking sessions", e));
}

/// The current identity's user and session, for the sign-out functions (28000 without them).
fn current_session(what: &str) -> (uuid::Uuid, uuid::Uuid) {
    let current = identity::current();
    let (Some(sub), Some(session)) = (current.sub, current.claim_str("session_id")) else {
        error::not_authorized(format!("{what} needs an identity with a session (call auth.authenticate first)"));
    };
    let session = uuid::Uuid::parse_str(&session)
        .unwrap_or_else(|_| error::not_authorized("the current token's session_id is not one of ours"));
    (sub, session)
}

#[pg_schema]
mod auth {
    use super::*;

    /// Create an email/password account; returns its id. For an email that is already
    /// registered it returns a fresh random id and creates nothing, after the same hashing
    /// work, so sign-up does not reveal which emails have accounts.
    #[pg_extern(volatile, security_definer)]
    fn sign_up(email: Option<&str>, password: Option<&str>) -> pgrx::Uuid {
        let email = required(email, "email").trim();
        let password = required(password, "password");
        passwords::check_email(email).unwrap_or_else(|e| error::bad_argument(e));
        passwords::check_password_rules(password).unwrap_or_else(|e| error::bad_argument(e));
        let phc = passwords::hash_password(password).unwrap_or_else(|e| error::raise(Code::ERRCODE_INTERNAL_ERROR, e));
        let id = uuid::Uuid::new_v4();
        // No row limit on this INSERT (Spi::get_one would impose one): run it plainly.
        Spi::connect_mut(|c| {
            c.update(
                "INSERT INTO auth.users (id, email, encrypted_password) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                None,
                &[to_pg(id).into(), email.into(), phc.as_str().into()],
            )
            .map(|_| ())
        })
        .unwrap_or_else(|e| error::spi_failed("auth.sign_up", e));
        to_pg(id)
    }

    /// Verify email and password and return a signed access token for a new session.
    #[pg_extern(volatile, security_definer)]
    fn sign_in(email: Option<&str>, password: Option<&str>) -> String {
        let (user, stored_email) = check_credentials(email, password);
        let session = new_session(user);
        access_token(&user, &stored_email, &session).0
    }

    /// Revoke the current identity's session: its tokens are refused from now on.
    #[pg_extern(volatile, security_definer)]
    fn sign_out() {
        let (sub, session) = current_session("sign_out");
        revoke_sessions(sub, Sessions::This(session));
    }

    /// Revoke every other session of the current user ("sign out on my other devices"); the
    /// current one goes on.
    #[pg_extern(volatile, security_definer)]
    fn sign_out_others() {
        let (sub, session) = current_session("sign_out_others");
        revoke_sessions(sub, Sessions::AllBut(session));
    }

    /// Revoke every session of the current user, refresh tokens included.
    #[pg_extern(volatile, security_definer)]
    fn sign_out_everywhere() {
        let Some(sub) = identity::current().sub else {
            error::not_authorized("sign_out_everywhere needs an identity (call auth.authenticate first)");
        };
        revoke_sessions(sub, Sessions::All);
    }
}
#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn tokens_from_sign_in_verify_with_the_same_key() {
        use crate::auth::keys::{parse_jwk, KeySet};
        use crate::auth::verify::{verify_token, VerifyConfig};
        use base64::Engine;
        let secret = b"0123456789abcdef0123456789abcdef";
        let jwk = serde_json::json!({"kty":"oct","kid":"s1","alg":"HS256",
            "k": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)});
        let keys = KeySet::from_keys(vec![parse_jwk(&jwk).unwrap()]);
        let (user, session) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let claims = access_claims(
            &user,
            "a@example.com",
            &session,
            "authenticated",
            Some("https://id.example"),
            now_epoch(),
            600,
        );
        let described = crate::auth::keys::describe_jwk(&jwk).unwrap();
        let token =
            crate::auth::signing::SigningKey::from_jwk("s1", described.alg, &jwk).unwrap().sign(&claims).unwrap();
        let cfg = VerifyConfig {
            audience: Some("authenticated".into()),
            issuer: Some("https://id.example".into()),
            leeway_seconds: 0,
        };
        let v = verify_token(&token, &keys, &cfg).unwrap();
        assert_eq!(v.sub, user);
        assert_eq!(v.session_id(), Some(session.to_string().as_str()));
        assert_eq!(v.claims["email"], "a@example.com");
    }
}
