//! NOTIFY from Rust, through the SQL-callable `pg_notify(channel, payload)` so Postgres checks
//! the channel name and payload size exactly as it does for SQL callers. Delivered at commit.
use pgrx::prelude::*;
use pgrx::IntoDatum;

/// Queue `payload` on `channel` for delivery when the transaction commits. Errors raised by
/// Postgres (payload too long, queue full) propagate as ordinary ERRORs.
pub fn notify(channel: &str, payload: &str) {
    // SAFETY: pg_notify is a plain fmgr function taking two non-NULL text arguments; both datums
    // are freshly made text values in the current memory context. It returns void (no result).
    unsafe {
        pgrx::direct_function_call_as_datum(pg_sys::pg_notify, &[channel.into_datum(), payload.into_datum()]);
    }
}
