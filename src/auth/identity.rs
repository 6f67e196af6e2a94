//! Where the verified identity lives during a transaction.
//!
//! `auth.authenticate` stores the verified claims in the hidden, superuser-only setting
//! `health_rls.identity` with SET LOCAL semantics. That one choice gives every property we
//! need from Postgres itself: no application role can set it (PGC_SUSET), it ends with the
//! transaction (commit, abort) and with a rolled-back savepoint, and parallel workers receive
//! it with the rest of the GUC state, so `auth.uid()` is right inside a parallel scan.
//! `auth.uid()` parses the claims once per distinct value, not once per row.
use crate::settings;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::ffi::{CStr, CString};
use uuid::Uuid;

pub const IDENTITY_GUC: &CStr = c"health_rls.identity";
static IDENTITY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

pub fn init() {
    GucRegistry::define_string_guc(
        IDENTITY_GUC,
        c"Claims verified by auth.authenticate for the current transaction (internal).",
        c"Set only by auth.authenticate, always transaction-local.",
        &IDENTITY,
        GucContext::Suset,
        GucFlags::NO_SHOW_ALL
            | GucFlags::SUPERUSER_ONLY
            | GucFlags::DISALLOW_IN_FILE
            | GucFlags::DISALLOW_IN_AUTO_FILE,
    );
}

/// Parsed claims, cached by the exact text they came from.
#[derive(Clone, Default)]
pub struct Identity {
    pub sub: Option<Uuid>,
    pub claims: Option<Map<String, Value>>,
}

impl Identity {
    fn from_claims_text(text: &[u8]) -> Identity {
        let claims: Option<Map<String, Value>> = serde_json::from_slice(text).ok();
        let sub = claims
            .as_ref()
            .and_then(|c| c.get("sub"))
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
        Identity { sub, claims }
    }
    pub fn claim_str(&self, name: &str) -> Option<String> {
        self.claims
            .as_ref()?
            .get(name)?
            .as_str()
            .map(str::to_string)
    }
}

#[derive(Default)]
struct Cached {
    source: Vec<u8>,
    identity: Identity,
}

thread_local! {
    static OWN: RefCell<Cached> = RefCell::new(Cached::default());
    static TRUSTED: RefCell<Cached> = RefCell::new(Cached::default());
}

fn with_cached<R>(cell: &'static std::thread::LocalKey<RefCell<Cached>>, text: &[u8], f: impl FnOnce(&Identity) -> R) -> R {
    cell.with(|c| {
        let mut c = c.borrow_mut();
        if c.source != text {
            c.source = text.to_vec();
            c.identity = Identity::from_claims_text(text);
        }
        f(&c.identity)
    })
}

fn cached(cell: &'static std::thread::LocalKey<RefCell<Cached>>, text: &[u8]) -> Identity {
    with_cached(cell, text, Identity::clone)
}

fn own_claims_text() -> Option<&'static [u8]> {
    // SAFETY: the GUC machinery owns this string and keeps it alive until the next
    // assignment; we copy before any call that could assign.
    let raw = unsafe { *IDENTITY.as_ptr() };
    if raw.is_null() {
        return None;
    }
    let bytes = unsafe { CStr::from_ptr(raw) }.to_bytes();
    (!bytes.is_empty()).then_some(bytes)
}

fn setting_text(name: &CStr) -> Option<&'static [u8]> {
    let raw = unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) };
    if raw.is_null() {
        return None;
    }
    let bytes = unsafe { CStr::from_ptr(raw) }.to_bytes();
    (!bytes.is_empty()).then_some(bytes)
}

/// The current identity: the one `auth.authenticate` made in this transaction, else (only
/// when `health_rls.trust_request_claims` is on) the claims a trusted API put in
/// `request.jwt.claims` / `request.jwt.claim.sub`.
pub fn current() -> Identity {
    if let Some(text) = own_claims_text() {
        return cached(&OWN, text);
    }
    if !settings::TRUST_REQUEST_CLAIMS.get() {
        return Identity::default();
    }
    let mut identity = setting_text(c"request.jwt.claims")
        .map(|t| cached(&TRUSTED, t))
        .unwrap_or_default();
    if let Some(sub) = setting_text(c"request.jwt.claim.sub") {
        if let Ok(s) = std::str::from_utf8(sub) {
            identity.sub = Uuid::parse_str(s).ok();
        }
    }
    identity
}

/// Just the current `sub`: what `auth.uid()` needs, per row, without copying the claims.
pub fn current_sub() -> Option<Uuid> {
    if let Some(text) = own_claims_text() {
        return with_cached(&OWN, text, |i| i.sub);
    }
    if !settings::TRUST_REQUEST_CLAIMS.get() {
        return None;
    }
    if let Some(sub) = setting_text(c"request.jwt.claim.sub") {
        return std::str::from_utf8(sub).ok().and_then(|s| Uuid::parse_str(s).ok());
    }
    setting_text(c"request.jwt.claims").and_then(|t| with_cached(&TRUSTED, t, |i| i.sub))
}

/// Make `claims` the identity until the end of the current transaction, and mirror them into
/// `request.jwt.claims` (also transaction-local) so SQL written for PostgREST keeps working.
pub fn set_for_transaction(claims_json: &str) {
    // JSON text never contains a raw NUL (it would be escaped as \u0000).
    let text = CString::new(claims_json).unwrap_or_else(|_| crate::error::not_authorized("token rejected: malformed token (NUL in claims)"));
    set_local(IDENTITY_GUC, &text, pg_sys::GucContext::PGC_SUSET);
    set_local(
        c"request.jwt.claims",
        &text,
        pg_sys::GucContext::PGC_USERSET,
    );
}

fn set_local(name: &CStr, value: &CStr, context: pg_sys::GucContext::Type) {
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            context,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            pg_sys::PGERROR as i32,
            false,
        );
    }
}
