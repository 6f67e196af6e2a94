//! Email/password accounts and sessions: `auth.sign_up`, `auth.sign_in`, `auth.sign_out`.
//!
//! These run as the extension owner (SECURITY DEFINER, no SET clause: a function-level SET
//! would undo the transaction-local identity) and schema-qualify every name they use.
use crate::auth::{gucs, identity, passwords};
use crate::error::{self, Code};
use crate::pg::uuid::to_pg;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
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

/// Sign `claims` with an HMAC key (`alg` one of HS256/384/512).
pub fn sign_claims(claims: &serde_json::Value, kid: &str, alg: &str, secret: &[u8]) -> Result<String, String> {
    let alg: Algorithm = alg.parse().map_err(|_| format!("unsupported signing algorithm {alg}"))?;
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    encode(&header, claims, &EncodingKey::from_secret(secret)).map_err(|e| e.to_string())
}

fn required<'a>(value: Option<&'a str>, what: &str) -> &'a str {
    value.unwrap_or_else(|| error::bad_argument(format!("{what} must not be NULL")))
}

fn now_epoch() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The newest active HMAC key: (kid, alg, secret bytes).
fn signing_key() -> (String, String, Vec<u8>) {
    use base64::Engine;
    let row = Spi::get_three::<String, String, String>(
        "SELECT kid, alg, jwk OPERATOR(pg_catalog.->>) 'k' FROM auth.keys \
          WHERE kty OPERATOR(pg_catalog.=) 'oct' AND revoked_at IS NULL ORDER BY created_at DESC, kid LIMIT 1",
    );
    match row {
        Ok((Some(kid), Some(alg), Some(k))) => {
            let secret =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(k.trim_end_matches('=')).unwrap_or_else(|_| {
                    error::raise(Code::ERRCODE_DATA_CORRUPTED, format!("signing key \"{kid}\" is not base64url"))
                });
            (kid, alg, secret)
        }
        _ => error::raise(
            Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "no signing key: add an HS256/HS384/HS512 (oct) key with auth.add_key",
        ),
    }
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
        .unwrap_or_else(|e| error::raise(Code::ERRCODE_INTERNAL_ERROR, format!("auth.sign_up: {e}")));
        to_pg(id)
    }

    /// Verify email and password and return a signed access token for a new session.
    #[pg_extern(volatile, security_definer)]
    fn sign_in(email: Option<&str>, password: Option<&str>) -> String {
        let email = required(email, "email").trim();
        let password = required(password, "password");
        let found = Spi::get_three_with_args::<pgrx::Uuid, String, String>(
            "SELECT id, email, encrypted_password FROM auth.users \
              WHERE pg_catalog.lower(email) OPERATOR(pg_catalog.=) pg_catalog.lower($1)",
            &[email.into()],
        )
        .ok();
        let (user, stored_email, phc) = match found {
            Some((Some(id), Some(e), Some(p))) => (Some(id), e, Some(p)),
            _ => (None, String::new(), None),
        };
        if !passwords::verify_password(password, phc.as_deref()) {
            error::not_authorized(SIGN_IN_FAILED);
        }
        let user = uuid::Uuid::from_bytes(*user.expect("verified implies found").as_bytes());
        let (kid, alg, secret) = signing_key();
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
        .unwrap_or_else(|e| error::raise(Code::ERRCODE_INTERNAL_ERROR, format!("auth.sign_in: {e}")));
        let audience = gucs::non_empty(&gucs::JWT_AUDIENCE).unwrap_or_else(|| "authenticated".into());
        let issuer = gucs::non_empty(&gucs::JWT_ISSUER);
        let claims = access_claims(
            &user,
            &stored_email,
            &session,
            &audience,
            issuer.as_deref(),
            now_epoch(),
            gucs::JWT_TTL.get() as i64,
        );
        sign_claims(&claims, &kid, &alg, &secret).unwrap_or_else(|e| error::raise(Code::ERRCODE_INTERNAL_ERROR, e))
    }

    /// Revoke the current identity's session: its tokens are refused from now on.
    #[pg_extern(volatile, security_definer)]
    fn sign_out() {
        let current = identity::current();
        let (Some(sub), Some(session)) = (current.sub, current.claim_str("session_id")) else {
            error::not_authorized("sign_out needs an identity with a session (call auth.authenticate first)");
        };
        let session = uuid::Uuid::parse_str(&session)
            .unwrap_or_else(|_| error::not_authorized("the current token's session_id is not one of ours"));
        Spi::connect_mut(|c| {
            c.update(
                "UPDATE auth.sessions SET revoked_at = pg_catalog.now() \
                  WHERE id OPERATOR(pg_catalog.=) $1 AND user_id OPERATOR(pg_catalog.=) $2 AND revoked_at IS NULL",
                None,
                &[to_pg(session).into(), to_pg(sub).into()],
            )
            .map(|_| ())
        })
        .unwrap_or_else(|e| error::raise(Code::ERRCODE_INTERNAL_ERROR, format!("auth.sign_out: {e}")));
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
        let token = sign_claims(&claims, "s1", "HS256", secret).unwrap();
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
