//! Running a statement with the caller's rights from inside a SECURITY DEFINER function (and,
//! the other way round, one with the extension owner's rights from a function that has the caller's).
//!
//! Export and erasure run as the extension owner (a superuser) because they read and delete in
//! `auth`. A table owned by a role that is not a superuser may carry that role's code — triggers,
//! rules, policies calling its functions — which must never run with the extension owner's
//! rights. Statements on such a table run as the caller instead (the role the session had before
//! the SECURITY DEFINER switch), under its row level security, in a security-restricted operation
//! (as VACUUM and REFRESH MATERIALIZED VIEW do for a table's owner): nothing the table's owner
//! wrote gains more rights than the caller already has.
use pgrx::pg_sys;

/// Run `f` as the session's outer role (the caller of the SECURITY DEFINER function we are in).
pub fn as_caller<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: a plain read of the backend's outer (session) role.
    run_as(unsafe { pg_sys::GetOuterUserId() }, f)
}

/// Run `f` as the extension's owner, from a function that runs with the caller's rights: for a
/// fixed statement on the extension's own tables that the caller may not touch (`health.ingest`
/// taking the caller's change-feed lock). Nothing `f` runs may call code that others can change.
pub fn as_extension_owner<R>(f: impl FnOnce() -> R) -> R {
    let owner = crate::pg::spi::select_one::<pg_sys::Oid>(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'health_rls'",
        &[],
    )
    .unwrap_or_else(|| {
        crate::error::raise(crate::error::Code::ERRCODE_INTERNAL_ERROR, "health_rls: the extension has no owner")
    });
    run_as(owner, f)
}

/// Run `f` as `user`, in a security-restricted operation, then switch back.
fn run_as<R>(user: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    let mut current = pg_sys::InvalidOid;
    let mut context: std::ffi::c_int = 0;
    // SAFETY: a plain read of the backend's current user and security context.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut current, &mut context) };
    let restricted =
        context | (pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION) as std::ffi::c_int;
    // SAFETY: switching the current user for the statements of `f`. On an ERROR inside `f` the
    // (sub)transaction abort restores the user and context saved at its start, as it does for
    // SECURITY DEFINER functions themselves; on return we restore them here.
    unsafe { pg_sys::SetUserIdAndSecContext(user, restricted) };
    let result = f();
    // SAFETY: restores exactly what was read above.
    unsafe { pg_sys::SetUserIdAndSecContext(current, context) };
    result
}
