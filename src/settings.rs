//! The superuser-only settings of DESIGN.md §2. All are PGC_SUSET: an application role can
//! read them but never loosen them.
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

pub static JWT_AUDIENCE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"authenticated"));
pub static JWT_ISSUER: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c""));
pub static JWT_LEEWAY: GucSetting<i32> = GucSetting::<i32>::new(30);
pub static JWT_TTL: GucSetting<i32> = GucSetting::<i32>::new(3600);
pub static TRUST_REQUEST_CLAIMS: GucSetting<bool> = GucSetting::<bool>::new(false);

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
}

/// A string setting as Rust text; `None` when unset or empty (empty means "not checked").
pub fn non_empty(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .and_then(|s| s.into_string().ok())
        .filter(|s| !s.is_empty())
}
