//! Sessions that last (docs/sql-reference.md, "Sessions"): `auth.start_session` and
//! `auth.refresh_session`, GoTrue-shaped token responses, single-use refresh tokens.
//!
//! A refresh token is 256 random bits, shown once and stored only as its SHA-256. Each use marks
//! it used and issues a child; presenting a used token again outside
//! `health_rls.refresh_reuse_interval` means a copy is in someone else's hands (or the client is
//! broken): the whole session is revoked (OAuth 2.0 Security BCP §4.14, what GoTrue does).
use super::accounts::{access_token, check_credentials, new_session};
use super::{gucs, revoker};
use crate::error::{self, Code};
use crate::pg::uuid::{from_pg, to_pg};
use pgrx::prelude::*;
use pgrx::JsonB;
use sha2::{Digest, Sha256};

/// What a refresh request gets, decided from the stored facts (pure, unit-tested below).
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Refuse(&'static str),
    /// Refuse, and revoke the session first (reuse detected).
    RefuseAndRevoke(&'static str),
    Rotate,
}

/// The stored facts about a presented refresh token, in seconds since the epoch.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    pub now: f64,
    pub session_revoked: bool,
    pub token_revoked: bool,
    pub session_started: f64,
    /// Last refresh (or the start): the idle timeout counts from it.
    pub last_active: f64,
    pub used_at: Option<f64>,
}

/// Settings in seconds: lifetime, idle timeout (0 = off), reuse grace interval (a reuse this
/// long after the first use or later revokes; with 0, every reuse does).
pub fn verdict(f: Facts, lifetime: f64, idle: f64, grace: f64) -> Verdict {
    if f.session_revoked {
        return Verdict::Refuse("refresh token rejected: revoked session");
    }
    if f.token_revoked {
        return Verdict::Refuse("refresh token rejected: revoked");
    }
    if f.now > f.session_started + lifetime {
        return Verdict::Refuse("refresh token rejected: session expired (health_rls.session_lifetime)");
    }
    if idle > 0.0 && f.now > f.last_active + idle {
        return Verdict::Refuse("refresh token rejected: session idle too long (health_rls.session_idle_timeout)");
    }
    match f.used_at {
        Some(used) if f.now - used >= grace => {
            Verdict::RefuseAndRevoke("refresh token rejected: already used, the session is revoked (reuse detection)")
        }
        _ => Verdict::Rotate,
    }
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A new refresh token of `session` (child of `parent`); returns its text, never stored.
fn issue_refresh_token(session: uuid::Uuid, parent: Option<i64>) -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).unwrap_or_else(|_| error::raise(Code::ERRCODE_INTERNAL_ERROR, "no OS randomness"));
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    Spi::connect_mut(|c| {
        c.update(
            "INSERT INTO auth.refresh_tokens (session_id, token_hash, parent_id) VALUES ($1, $2, $3)",
            None,
            &[to_pg(session).into(), hash(&token).into(), parent.into()],
        )
        .map(|_| ())
    })
    .unwrap_or_else(|e| error::spi_failed("storing a refresh token", e));
    token
}

/// GoTrue's token response (what supabase-js and other clients parse).
fn token_response(user: uuid::Uuid, email: &str, session: uuid::Uuid, refresh_token: String) -> JsonB {
    let (access, iat, ttl) = access_token(&user, email, &session);
    JsonB(serde_json::json!({
        "access_token": access,
        "token_type": "bearer",
        "expires_in": ttl,
        "expires_at": iat + ttl,
        "refresh_token": refresh_token,
        "user": {"id": user.to_string(), "email": email},
    }))
}

fn refused(message: &str) -> ! {
    error::not_authorized(message)
}

#[pg_schema]
mod auth {
    use super::*;

    /// Sign in and start a session: an access token and a refresh token (GoTrue's shape).
    /// Failures exactly as auth.sign_in (28000, one message for unknown email and wrong password).
    #[pg_extern(volatile, security_definer)]
    fn start_session(email: Option<&str>, password: Option<&str>) -> JsonB {
        let (user, stored_email) = check_credentials(email, password);
        let session = new_session(user);
        let refresh = issue_refresh_token(session, None);
        token_response(user, &stored_email, session, refresh)
    }

    /// A new access token and a new refresh token for a refresh token, which is used up.
    #[pg_extern(volatile, security_definer)]
    fn refresh_session(refresh_token: Option<&str>) -> JsonB {
        let token = refresh_token.map(str::trim).filter(|t| !t.is_empty() && t.len() <= 256);
        let Some(token) = token else { refused("refresh token rejected: empty or malformed") };
        let row = Spi::connect(|c| {
            c.select(
                "SELECT rt.id, rt.session_id, s.user_id, u.email, s.revoked_at IS NOT NULL, rt.revoked_at IS NOT NULL, \
                        pg_catalog.date_part('epoch', pg_catalog.now()), pg_catalog.date_part('epoch', s.created_at), \
                        pg_catalog.date_part('epoch', coalesce(s.refreshed_at, s.created_at)), pg_catalog.date_part('epoch', rt.used_at) \
                   FROM auth.refresh_tokens rt \
                   JOIN auth.sessions s ON s.id OPERATOR(pg_catalog.=) rt.session_id \
                   JOIN auth.users u ON u.id OPERATOR(pg_catalog.=) s.user_id \
                  WHERE rt.token_hash OPERATOR(pg_catalog.=) $1",
                Some(1),
                &[hash(token).into()],
            )
            .map(|t| {
                t.into_iter().next().map(|r| {
                    let f = |i| r.get::<f64>(i).ok().flatten();
                    (
                        r.get::<i64>(1).ok().flatten(),
                        r.get::<pgrx::Uuid>(2).ok().flatten(),
                        r.get::<pgrx::Uuid>(3).ok().flatten(),
                        r.get::<String>(4).ok().flatten(),
                        Facts {
                            session_revoked: r.get::<bool>(5).ok().flatten().unwrap_or(true),
                            token_revoked: r.get::<bool>(6).ok().flatten().unwrap_or(true),
                            now: f(7).unwrap_or(0.0),
                            session_started: f(8).unwrap_or(0.0),
                            last_active: f(9).unwrap_or(0.0),
                            used_at: f(10),
                        },
                    )
                })
            })
        })
        .unwrap_or_else(|e| error::spi_failed("auth.refresh_session", e));
        let Some((Some(id), Some(session), Some(user), Some(email), facts)) = row else {
            refused("refresh token rejected: unknown")
        };
        let (session, user) = (from_pg(session), from_pg(user));
        let seconds = |g: &pgrx::guc::GucSetting<i32>| f64::from(g.get());
        match verdict(
            facts,
            seconds(&gucs::SESSION_LIFETIME),
            seconds(&gucs::SESSION_IDLE_TIMEOUT),
            seconds(&gucs::REFRESH_REUSE_INTERVAL),
        ) {
            Verdict::Refuse(why) => refused(why),
            Verdict::RefuseAndRevoke(why) => {
                if !revoker::revoke_session_now(session) {
                    pgrx::warning!("auth.refresh_session: could not revoke the session of a reused refresh token");
                }
                refused(why)
            }
            Verdict::Rotate => {
                // Mark it used; 0 rows means a concurrent request used it first (after our read):
                // judged again as a reuse happening now.
                let marked = Spi::connect_mut(|c| {
                    c.update(
                        "UPDATE auth.refresh_tokens SET used_at = pg_catalog.now() \
                          WHERE id OPERATOR(pg_catalog.=) $1 AND used_at IS NULL RETURNING id",
                        None,
                        &[id.into()],
                    )
                    .map(|t| t.len())
                })
                .unwrap_or_else(|e| error::spi_failed("auth.refresh_session", e));
                if marked == 0 && facts.used_at.is_none() {
                    let concurrent = Facts { used_at: Some(facts.now), ..facts };
                    if let Verdict::RefuseAndRevoke(why) =
                        verdict(concurrent, f64::MAX, 0.0, seconds(&gucs::REFRESH_REUSE_INTERVAL))
                    {
                        revoker::revoke_session_now(session);
                        refused(why);
                    }
                }
                Spi::connect_mut(|c| {
                    c.update(
                        "UPDATE auth.sessions SET refreshed_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
                        None,
                        &[to_pg(session).into()],
                    )
                    .map(|_| ())
                })
                .unwrap_or_else(|e| error::spi_failed("auth.refresh_session", e));
                let child = issue_refresh_token(session, Some(id));
                token_response(user, &email, session, child)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: f64 = 86_400.0;
    fn fresh(now: f64) -> Facts {
        Facts {
            now,
            session_revoked: false,
            token_revoked: false,
            session_started: now - 60.0,
            last_active: now - 60.0,
            used_at: None,
        }
    }

    #[test]
    fn an_unused_token_of_a_live_session_rotates() {
        assert_eq!(verdict(fresh(1e9), 30.0 * DAY, 0.0, 10.0), Verdict::Rotate);
    }

    #[test]
    fn reuse_inside_the_grace_interval_rotates_outside_it_revokes() {
        let mut f = fresh(1e9);
        f.used_at = Some(1e9 - 3.0);
        assert_eq!(verdict(f, 30.0 * DAY, 0.0, 10.0), Verdict::Rotate, "a concurrent retry");
        f.used_at = Some(1e9 - 11.0);
        assert!(matches!(verdict(f, 30.0 * DAY, 0.0, 10.0), Verdict::RefuseAndRevoke(m) if m.contains("reuse")));
        f.used_at = Some(1e9 - 1.0);
        assert!(matches!(verdict(f, 30.0 * DAY, 0.0, 0.0), Verdict::RefuseAndRevoke(_)), "grace 0: any reuse revokes");
    }

    #[test]
    fn revoked_expired_and_idle_sessions_are_refused() {
        let mut f = fresh(1e9);
        f.session_revoked = true;
        assert!(matches!(verdict(f, 30.0 * DAY, 0.0, 10.0), Verdict::Refuse(m) if m.contains("revoked session")));
        let mut f = fresh(1e9);
        f.token_revoked = true;
        assert!(matches!(verdict(f, 30.0 * DAY, 0.0, 10.0), Verdict::Refuse(_)));
        let mut f = fresh(1e9);
        f.session_started = 1e9 - 31.0 * DAY;
        assert!(matches!(verdict(f, 30.0 * DAY, 0.0, 10.0), Verdict::Refuse(m) if m.contains("session_lifetime")));
        let mut f = fresh(1e9);
        f.last_active = 1e9 - 3600.0;
        assert_eq!(verdict(f, 30.0 * DAY, 0.0, 10.0), Verdict::Rotate, "idle timeout off");
        assert!(matches!(verdict(f, 30.0 * DAY, 1800.0, 10.0), Verdict::Refuse(m) if m.contains("idle")));
        // A revoked session wins over reuse: no second revocation, just a refusal.
        let mut f = fresh(1e9);
        f.session_revoked = true;
        f.used_at = Some(1e9 - 100.0);
        assert!(matches!(verdict(f, 30.0 * DAY, 0.0, 10.0), Verdict::Refuse(_)));
    }

    #[test]
    fn tokens_are_stored_as_sha256() {
        assert_eq!(hash("abc").len(), 32);
        assert_ne!(hash("abc"), hash("abd"));
    }
}
