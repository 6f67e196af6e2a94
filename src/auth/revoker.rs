//! Revoking a session in a transaction of its own.
//!
//! Refresh-token reuse detection must revoke the whole session AND refuse the request with
//! `28000` — but raising an error rolls back the caller's transaction, revocation included, and
//! Postgres has no autonomous transactions. So a short-lived dynamic background worker connects
//! to the same database, revokes the session and its refresh tokens, commits, and exits; the
//! caller waits for it and then raises. The worker gives up after 5 s of lock waiting (the caller
//! may itself hold a lock on the session row), so nothing can hang.
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::{FromDatum, IntoDatum};

/// Revoke `session` (and its refresh tokens) in a committed transaction of its own. Returns
/// whether the revocation is visible to the caller afterwards.
pub fn revoke_session_now(session: uuid::Uuid) -> bool {
    // SAFETY: MyDatabaseId and MyProcPid are set for every backend before any SQL runs.
    let (database, pid) = unsafe { (pg_sys::MyDatabaseId, pg_sys::MyProcPid) };
    let started = BackgroundWorkerBuilder::new("health_rls session revoker")
        .set_library("health_rls")
        .set_function("health_rls_revoke_session_worker")
        .set_argument(database.into_datum())
        .set_extra(&session.to_string())
        .enable_spi_access()
        .set_restart_time(None)
        .set_notify_pid(pid)
        .load_dynamic();
    match started {
        Ok(worker) => {
            if worker.wait_for_shutdown().is_err() {
                return false;
            }
        }
        Err(_) => return false, // no free worker slot (max_worker_processes)
    }
    // A non-read-only SPI statement takes a new snapshot (READ COMMITTED), which sees the
    // worker's commit; a read-only one would reuse the caller's and miss it.
    Spi::connect_mut(|c| {
        c.update(
            "SELECT revoked_at IS NOT NULL FROM auth.sessions WHERE id OPERATOR(pg_catalog.=) $1",
            Some(1),
            &[crate::pg::uuid::to_pg(session).into()],
        )
        .and_then(|t| t.first().get_one::<bool>())
    })
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// The worker's entry point (named in `revoke_session_now`): argument = database oid, extra =
/// the session id.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn health_rls_revoke_session_worker(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    // SAFETY: the datum is the oid `revoke_session_now` passed by value.
    let database = unsafe { pg_sys::Oid::from_datum(arg, false) };
    BackgroundWorker::connect_worker_to_spi_by_oid(database, None);
    let session = BackgroundWorker::get_extra().to_string();
    BackgroundWorker::transaction(|| {
        Spi::run("SET LOCAL lock_timeout = '5s'").ok();
        for sql in [
            "UPDATE auth.sessions SET revoked_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid AND revoked_at IS NULL",
            "UPDATE auth.refresh_tokens SET revoked_at = pg_catalog.now() \
              WHERE session_id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid AND revoked_at IS NULL",
        ] {
            Spi::run_with_args(sql, &[session.as_str().into()]).ok();
        }
    });
}
