//! Sharing by email (docs/sharing.md, "Sharing by email"): an owner invites an address to a share
//! with the terms of `health.share`; the person who signs in with that address sees the
//! invitation and accepts it (which makes the share) or declines it; the owner can revoke it,
//! before or after (then the share ends too).
//!
//! What an inviter learns about the address: nothing. `health.invite` answers the same for an
//! address with an account, one without (its owner may sign up later and accept) and one that
//! will never exist; no error depends on it. What others learn: nothing either. Accepting or
//! declining an invitation that is not pending for the caller's own address fails with one error,
//! whether the id is unknown, addressed to someone else, already answered, revoked or expired.
//!
//! The caller's address is its account's (`auth.users.email`), or for an identity from another
//! issuer without an account here, its token's `email` claim. It is only as trustworthy as
//! sign-up's check of the address: `auth.sign_up` does not send a confirmation email, so a
//! deployment that lets anyone sign up with any address should confirm addresses before it
//! offers this.
use super::sharing::{caller, check_terms, insert_share};
use crate::auth::identity;
use crate::error::{self, Code};
use crate::pg::spi::select_one;
use crate::pg::uuid::{from_pg, to_pg};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;

extension_sql_file!("../../sql/invitations.sql", name = "invitations", requires = ["sharing"]);

/// How long an invitation can be accepted.
const VALID_DAYS: i32 = 30;

/// An address as compared: trimmed, lower case; None unless it looks like one address
/// (`local@domain`, at most 254 characters, no spaces or control characters).
pub fn normalise_email(email: &str) -> Option<String> {
    let e = email.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    let plausible = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    plausible.then_some(e)
}

/// The caller's own address (see the module comment), lower case.
fn my_email(me: uuid::Uuid) -> Option<String> {
    select_one::<String>("SELECT email FROM auth.users WHERE id OPERATOR(pg_catalog.=) $1", &[to_pg(me).into()])
        .or_else(|| identity::current().claim_str("email"))
        .and_then(|e| normalise_email(&e))
}

/// What accepting or declining says about any invitation that is not pending for the caller.
fn not_yours(what: &str) -> ! {
    error::raise(
        Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("{what}: no pending invitation with that id for your email address"),
    )
}

/// The pending invitation `id` for the caller's address, locked: (owner, kinds, from, until,
/// expires_at). Fails with `not_yours` otherwise.
#[allow(clippy::type_complexity)]
fn pending_for_me(
    what: &str,
    me: uuid::Uuid,
    id: pgrx::Uuid,
) -> (
    uuid::Uuid,
    Vec<String>,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
    Option<TimestampWithTimeZone>,
) {
    let Some(email) = my_email(me) else { not_yours(what) };
    let found = Spi::connect_mut(|c| {
        let rows = c.update(
            "SELECT owner_id, kinds, data_from, data_until, expires_at FROM health.invitations \
              WHERE id OPERATOR(pg_catalog.=) $1 AND email OPERATOR(pg_catalog.=) $2 \
                AND owner_id OPERATOR(pg_catalog.<>) $3 \
                AND accepted_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL \
                AND valid_until OPERATOR(pg_catalog.>) pg_catalog.now() \
                AND (expires_at IS NULL OR expires_at OPERATOR(pg_catalog.>) pg_catalog.now()) \
              FOR UPDATE",
            Some(1),
            &[id.into(), email.into(), to_pg(me).into()],
        )?;
        if rows.is_empty() {
            return Ok(None);
        }
        let r = rows.first();
        Ok::<_, pgrx::spi::Error>(Some((
            r.get::<pgrx::Uuid>(1)?,
            r.get::<Vec<String>>(2)?,
            r.get::<TimestampWithTimeZone>(3)?,
            r.get::<TimestampWithTimeZone>(4)?,
            r.get::<TimestampWithTimeZone>(5)?,
        )))
    })
    .unwrap_or_else(|e| error::spi_failed(what, e));
    match found {
        Some((Some(owner), Some(kinds), from, until, expires)) => (from_pg(owner), kinds, from, until, expires),
        _ => not_yours(what),
    }
}

#[pg_schema]
mod health {
    use super::*;

    /// Offer a share of the caller's samples (the terms of health.share) to whoever signs in with
    /// `email`. Returns the invitation's id; the same whether or not the address has an account.
    #[pg_extern(volatile, security_definer)]
    fn invite(
        email: Option<String>,
        kinds: Option<Vec<String>>,
        data_from: default!(Option<TimestampWithTimeZone>, "NULL"),
        data_until: default!(Option<TimestampWithTimeZone>, "NULL"),
        expires_at: default!(Option<TimestampWithTimeZone>, "NULL"),
    ) -> pgrx::Uuid {
        let owner = caller("health.invite");
        let bad = |m: &str| -> ! { error::bad_argument(format!("health.invite: {m}")) };
        let email = email
            .as_deref()
            .and_then(normalise_email)
            .unwrap_or_else(|| bad("email must be one email address, such as grace@example.com"));
        if my_email(owner).as_deref() == Some(email.as_str()) {
            bad("you cannot share with yourself");
        }
        let kinds = check_terms("health.invite", kinds, data_from, data_until, expires_at);
        let id = uuid::Uuid::new_v4();
        Spi::connect_mut(|c| {
            c.update(
                "INSERT INTO health.invitations (id, owner_id, email, kinds, data_from, data_until, expires_at, valid_until) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, pg_catalog.now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(days => $8))",
                None,
                &[
                    to_pg(id).into(),
                    to_pg(owner).into(),
                    email.into(),
                    kinds.into(),
                    data_from.into(),
                    data_until.into(),
                    expires_at.into(),
                    VALID_DAYS.into(),
                ],
            )
            .map(|_| ())
        })
        .unwrap_or_else(|e| error::spi_failed("health.invite", e));
        to_pg(id)
    }

    /// The invitations the caller sent, and those addressed to the caller's email: for a sent one
    /// `email` is the address invited, for a received one the inviter's. `status`: pending,
    /// accepted, declined, revoked or expired.
    #[allow(clippy::type_complexity)]
    #[pg_extern(stable, security_definer)]
    fn invitations() -> TableIterator<
        'static,
        (
            name!(id, pgrx::Uuid),
            name!(direction, String),
            name!(email, Option<String>),
            name!(kinds, Vec<String>),
            name!(data_from, Option<TimestampWithTimeZone>),
            name!(data_until, Option<TimestampWithTimeZone>),
            name!(expires_at, Option<TimestampWithTimeZone>),
            name!(created_at, TimestampWithTimeZone),
            name!(valid_until, TimestampWithTimeZone),
            name!(status, String),
            name!(share_id, Option<pgrx::Uuid>),
        ),
    > {
        let me = caller("health.invitations");
        let email = my_email(me);
        let rows: Vec<_> = Spi::connect(|c| {
            c.select(
                "SELECT i.id, CASE WHEN i.owner_id OPERATOR(pg_catalog.=) $1 THEN 'sent' ELSE 'received' END, \
                        CASE WHEN i.owner_id OPERATOR(pg_catalog.=) $1 THEN i.email ELSE u.email END, \
                        i.kinds, i.data_from, i.data_until, i.expires_at, i.created_at, i.valid_until, \
                        CASE WHEN i.revoked_at IS NOT NULL THEN 'revoked' WHEN i.accepted_at IS NOT NULL THEN 'accepted' \
                             WHEN i.declined_at IS NOT NULL THEN 'declined' \
                             WHEN i.valid_until OPERATOR(pg_catalog.<=) pg_catalog.now() \
                               OR i.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN 'expired' \
                             ELSE 'pending' END, \
                        i.share_id \
                   FROM health.invitations i LEFT JOIN auth.users u ON u.id OPERATOR(pg_catalog.=) i.owner_id \
                  WHERE i.owner_id OPERATOR(pg_catalog.=) $1 OR i.email OPERATOR(pg_catalog.=) $2 \
                  ORDER BY i.created_at DESC, i.id",
                None,
                &[to_pg(me).into(), email.into()],
            )
            .unwrap_or_else(|e| error::spi_failed("health.invitations", e))
            .filter_map(|r| {
                Some((
                    r.get::<pgrx::Uuid>(1).ok().flatten()?,
                    r.get::<String>(2).ok().flatten()?,
                    r.get::<String>(3).ok().flatten(),
                    r.get::<Vec<String>>(4).ok().flatten()?,
                    r.get::<TimestampWithTimeZone>(5).ok().flatten(),
                    r.get::<TimestampWithTimeZone>(6).ok().flatten(),
                    r.get::<TimestampWithTimeZone>(7).ok().flatten(),
                    r.get::<TimestampWithTimeZone>(8).ok().flatten()?,
                    r.get::<TimestampWithTimeZone>(9).ok().flatten()?,
                    r.get::<String>(10).ok().flatten()?,
                    r.get::<pgrx::Uuid>(11).ok().flatten(),
                ))
            })
            .collect()
        });
        TableIterator::new(rows)
    }

    /// Accept an invitation addressed to the caller's email: the share it offers is made, from
    /// its inviter to the caller. Returns the share's id.
    #[pg_extern(volatile, security_definer)]
    fn accept_invitation(invitation: Option<pgrx::Uuid>) -> pgrx::Uuid {
        let what = "health.accept_invitation";
        let me = caller(what);
        let Some(id) = invitation else { not_yours(what) };
        let (owner, kinds, from, until, expires) = pending_for_me(what, me, id);
        let share = insert_share(owner, me, kinds.into_iter().map(Some).collect(), from, until, expires);
        Spi::connect_mut(|c| {
            c.update(
                "UPDATE health.invitations SET accepted_at = pg_catalog.clock_timestamp(), share_id = $2 \
                  WHERE id OPERATOR(pg_catalog.=) $1",
                None,
                &[id.into(), to_pg(share).into()],
            )
            .map(|_| ())
        })
        .unwrap_or_else(|e| error::spi_failed(what, e));
        to_pg(share)
    }

    /// Decline an invitation addressed to the caller's email.
    #[pg_extern(volatile, security_definer)]
    fn decline_invitation(invitation: Option<pgrx::Uuid>) {
        let what = "health.decline_invitation";
        let me = caller(what);
        let Some(id) = invitation else { not_yours(what) };
        pending_for_me(what, me, id);
        Spi::connect_mut(|c| {
            c.update(
                "UPDATE health.invitations SET declined_at = pg_catalog.clock_timestamp() WHERE id OPERATOR(pg_catalog.=) $1",
                None,
                &[id.into()],
            )
            .map(|_| ())
        })
        .unwrap_or_else(|e| error::spi_failed(what, e));
    }

    /// Withdraw an invitation the caller sent, pending or accepted: an accepted one's share ends
    /// at once, as with health.revoke_share.
    #[pg_extern(volatile, security_definer)]
    fn revoke_invitation(invitation: Option<pgrx::Uuid>) {
        let what = "health.revoke_invitation";
        let owner = caller(what);
        let id = invitation.unwrap_or_else(|| error::bad_argument(format!("{what}: invitation must not be NULL")));
        let n = Spi::connect_mut(|c| {
            c.update(
                "WITH i AS (UPDATE health.invitations SET revoked_at = pg_catalog.clock_timestamp() \
                             WHERE id OPERATOR(pg_catalog.=) $1 AND owner_id OPERATOR(pg_catalog.=) $2 \
                               AND revoked_at IS NULL AND declined_at IS NULL RETURNING share_id), \
                      s AS (UPDATE health.shares SET revoked_at = pg_catalog.clock_timestamp() \
                             WHERE id OPERATOR(pg_catalog.=) (SELECT share_id FROM i) AND revoked_at IS NULL RETURNING id) \
                 SELECT 1 FROM i",
                None,
                &[id.into(), to_pg(owner).into()],
            )
            .map(|t| t.len())
        })
        .unwrap_or_else(|e| error::spi_failed(what, e));
        if n == 0 {
            error::raise(
                Code::ERRCODE_UNDEFINED_OBJECT,
                format!("{what}: no invitation of yours with that id that is pending or accepted"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_trimmed_and_in_lower_case() {
        assert_eq!(normalise_email("  Grace@Example.COM ").as_deref(), Some("grace@example.com"));
        assert_eq!(normalise_email("a@b").as_deref(), Some("a@b"));
        for bad in
            ["", "grace", "@example.com", "grace@", "a@b@c", "gr ace@example.com", "a@.com", "a@com.", "a\u{0}@b"]
        {
            assert_eq!(normalise_email(bad), None, "{bad:?}");
        }
        assert_eq!(normalise_email(&format!("{}@example.com", "a".repeat(250))), None);
    }
}
