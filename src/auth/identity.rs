//! Where the verified identity lives during a transaction.
//!
//! `auth.authenticate` stores the verified claims in the hidden, superuser-only setting
//! `health_rls.identity` (see `gucs.rs`) with SET LOCAL semantics. That one choice gives every
//! property we need from Postgres itself: no application role can set it (PGC_SUSET), it ends
//! with the transaction (commit, abort) and with a rolled-back savepoint, and parallel workers
//! receive it with the rest of the GUC state, so `auth.uid()` is right inside a parallel scan.
//!
//! `auth.uid()` is called per row, so the parsed claims are cached per backend, keyed by the
//! exact bytes of the setting (compared in full on every call, never by pointer): a different
//! identity can never be served from the cache.
use super::gucs;
use super::verify::canonical_uuid;
use pgrx::pg_sys;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::ffi::CString;
use uuid::Uuid;

/// Parsed claims.
#[derive(Clone, Default)]
pub struct Identity {
    pub sub: Option<Uuid>,
    pub claims: Option<Map<String, Value>>,
}

impl Identity {
    fn from_claims_text(text: &[u8]) -> Identity {
        let claims: Option<Map<String, Value>> = serde_json::from_slice(text).ok();
        let sub = claims.as_ref().and_then(|c| c.get("sub")).and_then(Value::as_str).and_then(canonical_uuid);
        Identity { sub, claims }
    }
    pub fn claim_str(&self, name: &str) -> Option<String> {
        self.claims.as_ref()?.get(name)?.as_str().map(str::to_string)
    }
}

/// The last claims text parsed, and what it parsed to.
#[derive(Default)]
struct Parsed {
    source: Vec<u8>,
    identity: Identity,
}

thread_local! {
    static OWN: RefCell<Parsed> = RefCell::new(Parsed::default());
    static TRUSTED: RefCell<Parsed> = RefCell::new(Parsed::default());
}

fn with_parsed<R>(
    cell: &'static std::thread::LocalKey<RefCell<Parsed>>,
    text: &[u8],
    f: impl FnOnce(&Identity) -> R,
) -> R {
    cell.with(|c| {
        let mut c = c.borrow_mut();
        if c.source != text {
            c.source = text.to_vec();
            c.identity = Identity::from_claims_text(text);
        }
        f(&c.identity)
    })
}

fn uuid_text(bytes: &[u8]) -> Option<Uuid> {
    std::str::from_utf8(bytes).ok().and_then(canonical_uuid)
}

/// The current identity: the one `auth.authenticate` made in this transaction, else (only
/// when `health_rls.trust_request_claims` is on) the claims a trusted API put in
/// `request.jwt.claims` / `request.jwt.claim.sub`.
pub fn current() -> Identity {
    if let Some(own) = gucs::with_identity_text(|t| t.map(|t| with_parsed(&OWN, t, Identity::clone))) {
        return own;
    }
    if !gucs::TRUST_REQUEST_CLAIMS.get() {
        return Identity::default();
    }
    let mut identity = gucs::with_setting_text(gucs::REQUEST_CLAIMS_NAME, |t| {
        t.map(|t| with_parsed(&TRUSTED, t, Identity::clone)).unwrap_or_default()
    });
    if let Some(sub) = gucs::with_setting_text(gucs::REQUEST_SUB_NAME, |t| t.map(uuid_text)) {
        identity.sub = sub;
    }
    identity
}

/// Just the current `sub`: what `auth.uid()` needs, per row, without copying the claims.
pub fn current_sub() -> Option<Uuid> {
    if let Some(own) = gucs::with_identity_text(|t| t.map(|t| with_parsed(&OWN, t, |i| i.sub))) {
        return own;
    }
    if !gucs::TRUST_REQUEST_CLAIMS.get() {
        return None;
    }
    if let Some(sub) = gucs::with_setting_text(gucs::REQUEST_SUB_NAME, |t| t.map(uuid_text)) {
        return sub;
    }
    gucs::with_setting_text(gucs::REQUEST_CLAIMS_NAME, |t| t.and_then(|t| with_parsed(&TRUSTED, t, |i| i.sub)))
}

/// Make `claims` the identity until the end of the current transaction, and mirror them into
/// `request.jwt.claims` (also transaction-local) so SQL written for PostgREST keeps working.
///
/// `sub` and `claims` are what `claims_json` parses to (the verifier already parsed it): they
/// become the parsed value for exactly these bytes, so the first `auth.uid()` does not parse again.
pub fn set_for_transaction(claims_json: &str, sub: Uuid, claims: &Map<String, Value>) {
    // JSON text never contains a raw NUL (it would be escaped as \u0000).
    let text = CString::new(claims_json)
        .unwrap_or_else(|_| crate::error::not_authorized("token rejected: malformed token (NUL in claims)"));
    gucs::set_identity(&text);
    gucs::set_local(gucs::REQUEST_CLAIMS_NAME, &text, pg_sys::GucContext::PGC_USERSET);
    OWN.with(|c| {
        let mut c = c.borrow_mut();
        if c.source != claims_json.as_bytes() {
            c.source = claims_json.as_bytes().to_vec();
            c.identity = Identity { sub: Some(sub), claims: Some(claims.clone()) };
        }
    });
}
