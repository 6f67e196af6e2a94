//! `health_rls.realtime_notify`: the AFTER … FOR EACH STATEMENT trigger (with transition tables)
//! that `enable_realtime` creates. Each affected owner hears one notification (or a few parts,
//! split under NOTIFY's size limit) per statement, at commit.
use super::changelog;
use super::channel::channel_of;
use super::payload::{pack_payloads, pack_shared_payloads, PAYLOAD_LIMIT};
use super::transition;
use crate::pg::notify::notify;
use crate::pg::relation::qualified_name_sql;
use crate::pg::uuid::from_pg;
use pgrx::prelude::*;

/// Who else hears an owner's rows: (grantee, the rows it may see). Registered by the module that
/// knows about sharing (realtime knows no share, as it knows no metric table).
pub type Fanout = fn(&uuid::Uuid, &[String]) -> Vec<(uuid::Uuid, Vec<String>)>;

pub static FANOUT: std::sync::OnceLock<Fanout> = std::sync::OnceLock::new();

/// Queue one owner's rows of a statement on the owner's channel (delivered at commit): one
/// notification, or several parts when the rows do not fit in one. Returns the parts sent.
pub fn send(
    owner: &uuid::Uuid,
    table: &str,
    op: &str,
    id_key: &str,
    items: &[String],
    first_seq: Option<i64>,
) -> usize {
    let channel = channel_of(owner);
    let payloads = pack_payloads(table, op, items, id_key, first_seq, PAYLOAD_LIMIT);
    for p in &payloads {
        notify(&channel, p);
    }
    payloads.len()
}

/// Announce rows by hand (superuser only: a maintenance job that changed rows with triggers
/// disabled). The trigger itself does not go through SQL.
#[pg_extern(volatile, security_definer)]
fn _realtime_send(owner: Option<pgrx::Uuid>, tbl: &str, op: &str, id_key: &str, items: Vec<Option<String>>) -> i32 {
    let Some(owner) = owner else { return 0 };
    let items: Vec<String> = items.into_iter().flatten().collect();
    send(&from_pg(owner), tbl, op, id_key, &items, None) as i32
}

/// Arguments: owner column, payload mode ('keys' | 'row'), key columns (the first names the row).
/// SECURITY DEFINER (sql/realtime.sql): a backend's first channel needs the secret.
#[pg_trigger]
fn realtime_notify<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<pgrx::heap_tuple::PgHeapTuple<'a, pgrx::AllocatedByPostgres>>, pgrx::heap_tuple::PgHeapTupleError> {
    let td = trigger.trigger_data();
    let op = match td.tg_event & pg_sys::TRIGGER_EVENT_OPMASK {
        pg_sys::TRIGGER_EVENT_INSERT => "INSERT",
        pg_sys::TRIGGER_EVENT_UPDATE => "UPDATE",
        pg_sys::TRIGGER_EVENT_DELETE => "DELETE",
        _ => return Ok(None),
    };
    // SAFETY: pgrx hands us the TriggerData of a firing trigger; its relation is open and locked.
    let relid = unsafe { (*td.tg_relation).rd_id };
    let table = qualified_name_sql(relid);
    // SAFETY: `td` is the TriggerData of this firing statement-level trigger (see above).
    let (rows, id_key) = unsafe { transition::statement_rows(td, &table) };
    // health_rls.notify = off: the change feed only (a gateway reads it by logical replication).
    let notifying = super::settings::NOTIFY.get();
    for (owner, items) in &rows.groups {
        let owner = uuid::Uuid::from_bytes(*owner);
        // Logged first (same transaction), so the notification can name the seqs it carries.
        let first_seq = changelog::log(&owner, &table, op, items);
        if !notifying {
            continue;
        }
        send(&owner, &table, op, &id_key, items, Some(first_seq));
        // Users the owner shares these rows with hear them too (keys only, on their channel).
        if let Some(fanout) = FANOUT.get() {
            for (grantee, shared) in fanout(&owner, items) {
                let channel = channel_of(&grantee);
                for p in pack_shared_payloads(&table, op, &shared, &id_key, &owner, PAYLOAD_LIMIT) {
                    notify(&channel, &p);
                }
            }
        }
    }
    Ok(None)
}
