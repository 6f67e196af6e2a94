//! One statement of ours committed in a transaction of its own, before the caller goes on.
//!
//! An audit record written in the caller's transaction is not an audit record: the caller can
//! roll it back and keep what it read; and a revocation decided by a call that then fails must
//! survive that failure. Postgres has no autonomous transactions, so a short-lived
//! dynamic background worker connects to the same database, runs the statement, commits, writes
//! the statement's result into a dynamic shared memory segment the caller created, and exits;
//! the caller waits for it and reads the result. A statement that did not commit leaves no
//! result, and the caller raises instead of going on (the read it records is never returned).
//!
//! Only our own SQL runs here (`&'static str`), with one `jsonb` argument (`$1`): a client's
//! text reaches the statement as a bound value, never as SQL. The worker runs as the bootstrap
//! superuser and gives up after 5 s of lock waiting, so nothing can hang.
use crate::error::{self, Code};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::{FromDatum, IntoDatum};
use std::sync::atomic::{fence, Ordering};

/// The segment's fixed head; the job's JSON (`{"sql": …, "arg": …}`) follows it.
#[repr(C)]
struct Head {
    /// 1 once the worker's transaction committed and `value` is set.
    done: u32,
    _pad: u32,
    /// The statement's result: the first column of its first row, as bigint.
    value: i64,
    /// Length of the JSON that follows the head.
    len: u64,
}

const HEAD: usize = std::mem::size_of::<Head>();

#[derive(serde::Serialize, serde::Deserialize)]
struct Job {
    sql: String,
    arg: serde_json::Value,
}

/// Why a statement was not committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCommitted {
    /// No background worker could be started (`max_worker_processes`).
    NoWorkerSlot,
    /// The worker ran but its transaction did not commit (an error: see the server log).
    Failed,
}

/// Run `sql` (ours; `$1` is `arg` as jsonb; returns one bigint) in a committed transaction of its
/// own. Returns the bigint once it is committed; raises 53000 when no worker can be started and
/// 55000 when the statement did not commit. `what` names the record in those messages.
pub fn commit_now(what: &str, sql: &'static str, arg: serde_json::Value) -> i64 {
    match try_commit_now(sql, arg) {
        Ok(value) => value,
        Err(NotCommitted::NoWorkerSlot) => error::raise(
            Code::ERRCODE_INSUFFICIENT_RESOURCES,
            format!("{what} could not be committed: no background worker slot is free (max_worker_processes); nothing was returned"),
        ),
        Err(NotCommitted::Failed) => error::raise(
            Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("{what} could not be committed (see the server log); nothing was returned"),
        ),
    }
}

/// `commit_now` for callers that go on either way (and say so themselves).
pub fn try_commit_now(sql: &'static str, arg: serde_json::Value) -> Result<i64, NotCommitted> {
    let job = serde_json::to_vec(&Job { sql: sql.to_string(), arg }).expect("a JSON value serialises");
    // SAFETY: dsm_create returns a mapped segment of the requested size (it raises an ERROR
    // rather than returning NULL without DSM_CREATE_NULL_IF_MAXSEGMENTS); we write the head and
    // the job inside that size. The segment belongs to the current resource owner, so an ERROR
    // below detaches it; on the normal path we detach it ourselves.
    let segment = unsafe { pg_sys::dsm_create(HEAD + job.len(), 0) };
    // SAFETY: see above; the address is valid for HEAD + job.len() bytes and suitably aligned
    // for Head (segments are page-aligned).
    let (head, handle) = unsafe {
        let base = pg_sys::dsm_segment_address(segment) as *mut u8;
        let head = base as *mut Head;
        head.write(Head { done: 0, _pad: 0, value: 0, len: job.len() as u64 });
        std::ptr::copy_nonoverlapping(job.as_ptr(), base.add(HEAD), job.len());
        (head, pg_sys::dsm_segment_handle(segment))
    };
    // SAFETY: MyDatabaseId and MyProcPid are set for every backend before any SQL runs.
    let (database, pid) = unsafe { (pg_sys::MyDatabaseId, pg_sys::MyProcPid) };
    let started = BackgroundWorkerBuilder::new("health_rls own transaction")
        .set_library("health_rls")
        .set_function("health_rls_own_transaction_worker")
        .set_argument(database.into_datum())
        .set_extra(&handle.to_string())
        .enable_spi_access()
        .set_restart_time(None)
        .set_notify_pid(pid)
        .load_dynamic();
    let ran = match started {
        Ok(worker) => worker.wait_for_shutdown().is_ok(),
        Err(_) => {
            // SAFETY: the segment is still attached (created above) and not used after this.
            unsafe { pg_sys::dsm_detach(segment) };
            return Err(NotCommitted::NoWorkerSlot);
        }
    };
    fence(Ordering::Acquire);
    // SAFETY: the worker has exited (or we stopped waiting); the head lives in our mapping
    // until the detach below, and volatile reads see what the other process wrote.
    let (done, value) = unsafe {
        (std::ptr::addr_of!((*head).done).read_volatile(), std::ptr::addr_of!((*head).value).read_volatile())
    };
    // SAFETY: attached above, detached once; `head` is not used after this.
    unsafe { pg_sys::dsm_detach(segment) };
    if ran && done == 1 {
        Ok(value)
    } else {
        Err(NotCommitted::Failed)
    }
}

/// The worker's entry point (named in `commit_now`): argument = database oid, extra = the
/// segment's handle.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn health_rls_own_transaction_worker(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    // SAFETY: the datum is the oid `commit_now` passed by value.
    let database = unsafe { pg_sys::Oid::from_datum(arg, false) };
    let Some(database) = database else { return };
    let Ok(handle) = BackgroundWorker::get_extra().trim_end_matches('\0').parse::<u32>() else { return };
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(database), None);
    // SAFETY: dsm_attach returns NULL when the segment no longer exists (the caller gave up);
    // pinning the mapping keeps it attached outside any resource owner until our detach.
    let segment = unsafe { pg_sys::dsm_attach(handle as pg_sys::dsm_handle) };
    if segment.is_null() {
        return;
    }
    // SAFETY: attached above; the caller wrote a Head followed by `len` bytes of JSON.
    let (head, job) = unsafe {
        pg_sys::dsm_pin_mapping(segment);
        let base = pg_sys::dsm_segment_address(segment) as *mut u8;
        let head = base as *mut Head;
        let len = std::ptr::addr_of!((*head).len).read_volatile() as usize;
        (head, std::slice::from_raw_parts(base.add(HEAD), len).to_vec())
    };
    let Ok(job) = serde_json::from_slice::<Job>(&job) else {
        // SAFETY: attached above, detached once.
        unsafe { pg_sys::dsm_detach(segment) };
        return;
    };
    let value = BackgroundWorker::transaction(|| {
        Spi::run("SET LOCAL lock_timeout = '5s'").ok();
        match Spi::get_one_with_args::<i64>(&job.sql, &[pgrx::JsonB(job.arg).into()]) {
            Ok(Some(value)) => value,
            // An ERROR aborts the transaction and ends this process: nothing is committed.
            _ => pgrx::error!("health_rls own transaction: the statement returned no bigint"),
        }
    });
    // The transaction has committed (an ERROR inside it ends this process before here).
    // SAFETY: the head is in our pinned mapping; the caller reads it after we exit.
    unsafe {
        std::ptr::addr_of_mut!((*head).value).write_volatile(value);
        fence(Ordering::Release);
        std::ptr::addr_of_mut!((*head).done).write_volatile(1);
    }
    // SAFETY: attached above, detached once.
    unsafe { pg_sys::dsm_detach(segment) };
}
