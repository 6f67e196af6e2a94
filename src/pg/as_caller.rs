//! Running a statement with the caller's rights from inside a SECURITY DEFINER function.
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
    let mut definer = pg_sys::InvalidOid;
    let mut context: std::ffi::c_int = 0;
    // SAFETY: plain reads of the backend's current user and security context.
    let caller = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut definer, &mut context);
        pg_sys::GetOuterUserId()
    };
    let restricted =
        context | (pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION) as std::ffi::c_int;
    // SAFETY: switching the current user for the statements of `f`. On an ERROR inside `f` the
    // (sub)transaction abort restores the user and context saved at its start, as it does for
    // SECURITY DEFINER functions themselves; on return we restore them here.
    unsafe { pg_sys::SetUserIdAndSecContext(caller, restricted) };
    let result = f();
    // SAFETY: restores exactly what was read above.
    unsafe { pg_sys::SetUserIdAndSecContext(definer, context) };
    result
}
