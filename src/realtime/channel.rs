//! Channel names as capabilities (docs/realtime.md).
//!
//! Postgres lets any role LISTEN on any channel name, so the name itself is the capability:
//! `hrls_` + HMAC-SHA256(per-database secret, user id), which nobody can compute without the
//! secret (`health_rls.realtime_secret`, readable by no application role).
use crate::error::{self, Code};
use crate::pg::spi::select_one;
use crate::pg::uuid::from_pg;
use hmac::{Hmac, Mac};
use pgrx::prelude::*;
use sha2::Sha256;
use std::cell::RefCell;
use std::collections::HashMap;

pub const CHANNEL_PREFIX: &str = "hrls_";

/// The channel of `user_id`: prefix + 160 bits of HMAC-SHA256 in hex (45 characters, under
/// the 63-byte identifier limit).
pub fn channel_name(secret: &[u8], user_id: &uuid::Uuid) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"health_rls channel v1:");
    mac.update(user_id.as_bytes());
    let tag = mac.finalize().into_bytes();
    let hex: String = tag[..20].iter().map(|b| format!("{b:02x}")).collect();
    format!("{CHANNEL_PREFIX}{hex}")
}

thread_local! {
    static SECRET: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    static CHANNELS: RefCell<HashMap<uuid::Uuid, String>> = RefCell::new(HashMap::new());
}

/// The channel of `user_id` under this database's secret. Remembered per backend (a writer
/// announces to the same few users again and again), bounded so a bulk load cannot grow it.
pub fn channel_of(user_id: &uuid::Uuid) -> String {
    const REMEMBERED: usize = 4096;
    if let Some(c) = CHANNELS.with(|m| m.borrow().get(user_id).cloned()) {
        return c;
    }
    let c = channel_name(&secret(), user_id);
    CHANNELS.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= REMEMBERED {
            m.clear();
        }
        m.insert(*user_id, c.clone());
    });
    c
}

/// The per-database secret (oldest row wins, so a restored dump keeps its channel names),
/// read once per backend: it never changes while the database lives.
fn secret() -> Vec<u8> {
    if let Some(s) = SECRET.with(|s| s.borrow().clone()) {
        return s;
    }
    let s =
        select_one::<Vec<u8>>("SELECT secret FROM health_rls.realtime_secret ORDER BY created_at, secret LIMIT 1", &[])
            .unwrap_or_else(|| {
                error::raise(Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "health_rls.realtime_secret is empty")
            });
    SECRET.with(|c| *c.borrow_mut() = Some(s.clone()));
    s
}

/// 32 random bytes from the OS, for the channel secret.
#[pg_extern(volatile)]
fn _random_secret() -> Vec<u8> {
    let mut b = vec![0u8; 32];
    getrandom::getrandom(&mut b).unwrap_or_else(|_| error::raise(Code::ERRCODE_INTERNAL_ERROR, "no OS randomness"));
    b
}

/// The channel of any user; for the extension owner (and roles it grants), never for apps.
#[pg_extern(stable, security_definer)]
fn channel_for(user_id: pgrx::Uuid) -> String {
    channel_of(&from_pg(user_id))
}

#[pg_schema]
mod auth {
    use super::*;

    /// The realtime channel of the current user; NULL when nobody is authenticated.
    #[pg_extern(stable, parallel_safe, security_definer)]
    fn my_channel() -> Option<String> {
        crate::auth::identity::current_sub().map(|u| channel_of(&u))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn channels_are_keyed_and_fit_notify() {
        let u = uuid::Uuid::parse_str("11111111-1111-4111-8111-111111111111").unwrap();
        let a = channel_name(b"secret-a", &u);
        assert_eq!(a, channel_name(b"secret-a", &u), "stable");
        assert_ne!(a, channel_name(b"secret-b", &u), "keyed by the secret");
        assert!(a.starts_with(CHANNEL_PREFIX) && a.len() <= 63);
        assert!(!a.contains("1111"), "not derived from the plain id");
    }
}
