//! The backend's parsed verification keys, read from `auth.keys` on first use and dropped when
//! the table changes (a statement trigger on it sends a relcache invalidation).
use super::keys::{self, KeySet};
use crate::error::{self, Code};
use crate::pg::cache::{self, RelCache};
use crate::pg::spi::select_one;
use pgrx::prelude::*;
use std::rc::Rc;

thread_local! {
    static KEYS: RelCache<(), KeySet> = const { RelCache::new() };
    /// Counts the loads of this backend: anything derived from the keys (verified tokens) is
    /// valid only for the generation it was made under.
    static GENERATION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The generation of the keys `current()` returns (changes whenever they are reloaded).
pub fn generation() -> u64 {
    GENERATION.with(|g| g.get())
}

pub fn init() {
    cache::on_invalidation(|relid| KEYS.with(|k| k.forget(relid)));
}

fn keys_table_oid() -> pg_sys::Oid {
    select_one::<pg_sys::Oid>("SELECT 'auth.keys'::pg_catalog.regclass::pg_catalog.oid", &[])
        .unwrap_or_else(|| error::raise(Code::ERRCODE_UNDEFINED_TABLE, "auth.keys is missing"))
}

fn load() -> (Vec<pg_sys::Oid>, KeySet) {
    let oid = keys_table_oid();
    let parsed = Spi::connect(|client| {
        let rows = client
            .select(
                "SELECT jwk FROM auth.keys WHERE status OPERATOR(pg_catalog.<>) 'revoked' ORDER BY created_at DESC, kid",
                None,
                &[],
            )
            .unwrap_or_else(|_| error::raise(Code::ERRCODE_INSUFFICIENT_PRIVILEGE, "cannot read auth.keys"));
        let mut parsed = Vec::new();
        for row in rows {
            if let Ok(Some(pgrx::JsonB(jwk))) = row.get::<pgrx::JsonB>(1) {
                // add_key validated every row; a row edited by hand into nonsense is skipped,
                // not allowed to break every other key.
                if let Ok(k) = keys::parse_jwk(&jwk) {
                    parsed.push(k);
                }
            }
        }
        parsed
    });
    GENERATION.with(|g| g.set(g.get() + 1));
    (vec![oid], KeySet::from_keys(parsed))
}

/// The active keys (loaded on first use in this backend, and after every change).
pub fn current() -> Rc<KeySet> {
    KEYS.with(|k| k.get((), load))
}

/// Drop every backend's parsed keys (run by the trigger on auth.keys).
pub fn invalidate_everywhere() {
    cache::invalidate(keys_table_oid());
}
