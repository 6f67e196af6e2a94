//! Managing `auth.keys`: add, revoke, rotate, and the published JWKS (docs/sql-reference.md,
//! "Keys"). Statuses follow Supabase's signing keys: `standby` (published, not signing yet),
//! `current` (signs every new token; exactly one), `previous` (still verifies), `revoked`
//! (neither). Private members stay in `auth.keys.jwk`, which no application role can read; what is
//! published is `public_jwk`, made by `keys::describe_jwk` without them.
use super::keys::{self, alg_name};
use super::signing::{self, SigningKey};
use crate::error::{self, Code};
use crate::pg::spi::select_one;
use pgrx::prelude::*;
use pgrx::JsonB;

const STATUSES: [&str; 3] = ["standby", "current", "previous"];

/// The status a new key gets: as asked, or `current` for a key that can sign and `previous`
/// (verification only) for a public key of another issuer.
pub fn initial_status(asked: Option<&str>, can_sign: bool) -> Result<&'static str, String> {
    match asked {
        None => Ok(if can_sign { "current" } else { "previous" }),
        Some("revoked") => Err("a new key cannot be revoked (use auth.revoke_key)".into()),
        Some("current" | "standby") if !can_sign => Err(
            "a key that cannot sign here (no private members, or an algorithm we only verify) can only be 'previous' (verification only)"
                .into(),
        ),
        Some(s) => STATUSES
            .iter()
            .find(|x| **x == s)
            .copied()
            .ok_or_else(|| format!("status must be standby, current or previous, not {s:?}")),
    }
}

/// The key that signs new tokens (the `current` one).
pub fn current_signing_key() -> SigningKey {
    let row = Spi::connect(|c| {
        c.select("SELECT kid, alg, jwk FROM auth.keys WHERE status OPERATOR(pg_catalog.=) 'current'", Some(1), &[])
            .and_then(|t| t.first().get_three::<String, String, JsonB>())
    });
    let Ok((Some(kid), Some(alg), Some(JsonB(jwk)))) = row else {
        error::raise(
            Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "no signing key: add a key with private members with auth.add_key (status current), or auth.rotate_key()",
        )
    };
    let alg = alg
        .parse()
        .unwrap_or_else(|_| error::raise(Code::ERRCODE_DATA_CORRUPTED, format!("key \"{kid}\": unknown alg")));
    SigningKey::from_jwk(&kid, alg, &jwk).unwrap_or_else(|e| {
        error::raise(Code::ERRCODE_DATA_CORRUPTED, format!("signing key \"{kid}\" is unusable: {e}"))
    })
}

fn run(sql: &str, args: &[pgrx::datum::DatumWithOid]) -> usize {
    // No row limit: a limited DML statement would skip the AFTER STATEMENT trigger on auth.keys.
    Spi::connect_mut(|c| c.update(sql, None, args).map(|t| t.len()))
        .unwrap_or_else(|e| error::spi_failed("auth.keys", e))
}

#[pg_schema]
mod auth {
    use super::*;

    /// Add a key; returns its kid. `status` NULL: `current` for a key that can sign (the former
    /// current key becomes `previous`), `previous` for a public key of another issuer.
    #[pg_extern(volatile)]
    fn add_key(jwk: Option<JsonB>, status: default!(Option<&str>, "NULL")) -> String {
        let bad = |e: String| -> ! { error::bad_argument(format!("auth.add_key: {e}")) };
        let jwk = jwk.unwrap_or_else(|| bad("jwk must not be NULL".into()));
        let parsed = keys::describe_jwk(&jwk.0).unwrap_or_else(|e| bad(e));
        // ES384 keys verify, but only ES256, EdDSA, RS*/PS* and HS* sign here.
        let can_sign = signing::has_private_part(&jwk.0) && signing::signs(parsed.alg);
        if can_sign {
            SigningKey::from_jwk(&parsed.kid, parsed.alg, &jwk.0).unwrap_or_else(|e| bad(e));
        }
        let status = initial_status(status, can_sign).unwrap_or_else(|e| bad(e));
        let taken = select_one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM auth.keys WHERE kid OPERATOR(pg_catalog.=) $1)",
            &[parsed.kid.as_str().into()],
        )
        .unwrap_or(false);
        if taken {
            bad(format!("a key with kid \"{}\" already exists (revoke_key keeps revoked kids reserved)", parsed.kid));
        }
        if status == "current" {
            run("UPDATE auth.keys SET status = 'previous' WHERE status OPERATOR(pg_catalog.=) 'current'", &[]);
        }
        let mut stored = jwk.0.clone();
        stored["kid"] = parsed.kid.clone().into();
        stored["alg"] = alg_name(parsed.alg).into();
        run(
            "INSERT INTO auth.keys (kid, kty, alg, jwk, public_jwk, status) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                parsed.kid.clone().into(),
                parsed.kty.into(),
                alg_name(parsed.alg).into(),
                JsonB(stored).into(),
                JsonB(parsed.public).into(),
                status.into(),
            ],
        );
        parsed.kid
    }

    /// Stop accepting tokens signed with `kid` (and stop signing with it).
    #[pg_extern(volatile)]
    fn revoke_key(kid: &str) {
        let revoked = run(
            "UPDATE auth.keys SET revoked_at = pg_catalog.now(), status = 'revoked' \
              WHERE kid OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.<>) 'revoked' RETURNING kid",
            &[kid.into()],
        );
        if revoked == 0 {
            error::raise(Code::ERRCODE_UNDEFINED_OBJECT, format!("auth.revoke_key: no active key with kid \"{kid}\""));
        }
    }

    /// The newest standby key becomes current, the current one previous (it still verifies the
    /// tokens it signed). Returns the new current kid.
    #[pg_extern(volatile)]
    fn rotate_key() -> String {
        let next = select_one::<String>(
            "SELECT kid FROM auth.keys WHERE status OPERATOR(pg_catalog.=) 'standby' ORDER BY created_at DESC, kid LIMIT 1",
            &[],
        )
        .unwrap_or_else(|| {
            error::raise(
                Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "auth.rotate_key: no standby key (add one with auth.add_key(jwk, 'standby') and publish it first)",
            )
        });
        run("UPDATE auth.keys SET status = 'previous' WHERE status OPERATOR(pg_catalog.=) 'current'", &[]);
        run("UPDATE auth.keys SET status = 'current' WHERE kid OPERATOR(pg_catalog.=) $1", &[next.as_str().into()]);
        next
    }

    /// The public half of every non-revoked asymmetric key, as a JWKS: what other services (an
    /// API gateway, PostgREST, the relay) verify our tokens with. Never an oct key, never a
    /// private member.
    #[pg_extern(stable, security_definer)]
    fn jwks() -> JsonB {
        JsonB(
            select_one::<JsonB>(
                "SELECT pg_catalog.jsonb_build_object('keys', coalesce(pg_catalog.jsonb_agg( \
                        public_jwk OPERATOR(pg_catalog.||) '{\"use\": \"sig\"}'::pg_catalog.jsonb ORDER BY created_at, kid), '[]')) \
                   FROM auth.keys WHERE kty OPERATOR(pg_catalog.<>) 'oct' AND status OPERATOR(pg_catalog.<>) 'revoked'",
                &[],
            )
            .map(|j| j.0)
            .unwrap_or_else(|| serde_json::json!({"keys": []})),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_of_new_keys() {
        assert_eq!(initial_status(None, true), Ok("current"));
        assert_eq!(initial_status(None, false), Ok("previous"));
        assert_eq!(initial_status(Some("standby"), true), Ok("standby"));
        assert!(initial_status(Some("standby"), false).is_err(), "a standby key must be able to sign once rotated in");
        assert!(initial_status(Some("current"), false).unwrap_err().contains("cannot sign"));
        assert!(initial_status(Some("revoked"), true).is_err());
        assert!(initial_status(Some("active"), true).unwrap_err().contains("standby, current or previous"));
    }
}
