//! Every setting of the `auth` module in one place: the superuser-only settings of the SQL
//! reference (docs/sql-reference.md, "Settings") and the hidden identity setting.
//!
//! All are PGC_SUSET: an application role can read the public ones but never loosen them, and
//! cannot set the identity at all.
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use std::ffi::{CStr, CString};

pub static JWT_AUDIENCE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"authenticated"));
pub static JWT_ISSUER: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c""));
pub static JWT_LEEWAY: GucSetting<i32> = GucSetting::<i32>::new(30);
pub static JWT_TTL: GucSetting<i32> = GucSetting::<i32>::new(3600);
pub static TRUST_REQUEST_CLAIMS: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static REFRESH_REUSE_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(10);
pub static SESSION_IDLE_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(0);
pub static SESSION_LIFETIME: GucSetting<i32> = GucSetting::<i32>::new(30 * 24 * 3600);

/// The verified claims of the current transaction (see `identity.rs`). Hidden, superuser-only,
/// set only by `auth.authenticate` with SET LOCAL semantics.
pub const IDENTITY_NAME: &CStr = c"health_rls.identity";
static IDENTITY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// The PostgREST claims setting `authenticate` mirrors, and trust mode reads.
pub const REQUEST_CLAIMS_NAME: &CStr = c"request.jwt.claims";
pub const REQUEST_SUB_NAME: &CStr = c"request.jwt.claim.sub";

pub fn init() {
    GucRegistry::define_string_guc(
        c"health_rls.jwt_audience",
        c"Required aud claim of tokens passed to auth.authenticate ('' = not checked).",
        c"",
        &JWT_AUDIENCE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"health_rls.jwt_issuer",
        c"Required iss claim of tokens passed to auth.authenticate ('' = not checked).",
        c"",
        &JWT_ISSUER,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"health_rls.jwt_leeway",
        c"Clock skew in seconds allowed when checking exp and nbf.",
        c"",
        &JWT_LEEWAY,
        0,
        3600,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"health_rls.jwt_ttl",
        c"Lifetime in seconds of the access tokens made by auth.sign_in.",
        c"",
        &JWT_TTL,
        60,
        30 * 24 * 3600,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"health_rls.trust_request_claims",
        c"Let auth.uid() also read request.jwt.claims / request.jwt.claim.sub set by a trusted API.",
        c"Off by default: any SQL client can set those, so only auth.authenticate makes an identity.",
        &TRUST_REQUEST_CLAIMS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"health_rls.refresh_reuse_interval",
        c"Seconds during which an already-used refresh token is still honoured (a client's concurrent retry).",
        c"Outside it, presenting a used refresh token revokes the whole session (reuse detection).",
        &REFRESH_REUSE_INTERVAL,
        0,
        3600,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"health_rls.session_idle_timeout",
        c"A session not refreshed within this many seconds is dead (automatic logoff); 0 = off.",
        c"",
        &SESSION_IDLE_TIMEOUT,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"health_rls.session_lifetime",
        c"No session lives longer than this many seconds, however often it is refreshed.",
        c"",
        &SESSION_LIFETIME,
        60,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_string_guc(
        IDENTITY_NAME,
        c"Claims verified by auth.authenticate for the current transaction (internal).",
        c"Set only by auth.authenticate, always transaction-local.",
        &IDENTITY,
        GucContext::Suset,
        GucFlags::NO_SHOW_ALL | GucFlags::SUPERUSER_ONLY | GucFlags::DISALLOW_IN_FILE | GucFlags::DISALLOW_IN_AUTO_FILE,
    );
}

/// A string setting as Rust text; `None` when unset or empty (empty means "not checked").
pub fn non_empty(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting.get().and_then(|s| s.into_string().ok()).filter(|s| !s.is_empty())
}

/// Call `f` with the identity setting's bytes (None when unset or empty), borrowed only for the
/// call: the GUC machinery owns the string and may free it at the next assignment, so nothing
/// of it may outlive `f`, and `f` must not set configuration.
pub fn with_identity_text<R>(f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    // SAFETY: the GUC's backing variable is a `char *` Postgres keeps valid until the setting is
    // next assigned; we read it once and `f` (which assigns nothing) is done before any assignment.
    let bytes = unsafe {
        let raw = *IDENTITY.as_ptr();
        (!raw.is_null()).then(|| CStr::from_ptr(raw).to_bytes())
    };
    f(bytes.filter(|b| !b.is_empty()))
}

/// Call `f` with the text of any setting by name (None when unset, unknown or empty), with the
/// same borrowing rule as `with_identity_text`.
pub fn with_setting_text<R>(name: &CStr, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    // SAFETY: GetConfigOption with missing_ok returns NULL or a pointer into the setting's
    // storage, valid until the setting is next assigned, which `f` does not do.
    let bytes = unsafe {
        let raw = pg_sys::GetConfigOption(name.as_ptr(), true, false);
        (!raw.is_null()).then(|| CStr::from_ptr(raw).to_bytes())
    };
    f(bytes.filter(|b| !b.is_empty()))
}

/// Assign `value` to setting `name` for the rest of the transaction (SET LOCAL semantics: undone
/// at commit, abort and savepoint rollback) in `context`.
pub fn set_local(name: &CStr, value: &CStr, context: pg_sys::GucContext::Type) {
    // SAFETY: both strings are NUL-terminated and live across the call; set_config_option copies
    // them. elevel ERROR: a refusal raises, it never returns silently.
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

/// Make `claims` the identity for the rest of the transaction.
pub fn set_identity(claims: &CStr) {
    set_local(IDENTITY_NAME, claims, pg_sys::GucContext::PGC_SUSET);
}
