//! Tokens this backend has already verified, so a token re-presented on every request pays its
//! signature (120–240 µs for RSA/ECDSA) once.
//!
//! Exact by construction: keyed by the whole token text; an entry is used only under the key
//! generation it was verified with (any change to `auth.keys` — a revocation, a rotation — reloads
//! the keys and empties the cache); the time and audience/issuer checks run again on every use,
//! so a cached token stops at its `exp`. Whether a token's session and account still exist is
//! not cached at all: `authenticate` asks the database on every call.
use super::keyring;
use super::verify::{self, TokenError, VerifiedToken, VerifyConfig};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Bounded: a backend serving many users keeps at most this many verified tokens.
const CAPACITY: usize = 1024;

#[derive(Default)]
struct Cache {
    generation: u64,
    verified: HashMap<String, Rc<VerifiedToken>>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

fn now_epoch() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `verify::verify_token` against the current keys, remembered per backend.
/// Shared, not copied: a hit hands out the cached entry (its claims are not cloned per request).
pub fn verify(token: &str, config: &VerifyConfig) -> Result<Rc<VerifiedToken>, TokenError> {
    let keys = keyring::current();
    let generation = keyring::generation();
    let cached = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.generation != generation {
            c.verified.clear();
            c.generation = generation;
        }
        c.verified.get(token).cloned()
    });
    if let Some(v) = cached {
        verify::check_claims(&v.claims, config, now_epoch())?;
        return Ok(v);
    }
    let v = Rc::new(verify::verify_token(token, &keys, config)?);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.verified.len() >= CAPACITY {
            c.verified.clear();
        }
        c.verified.insert(token.to_string(), v.clone());
    });
    Ok(v)
}
