//! Per-user realtime channels (DESIGN.md §5).
//!
//! Postgres lets any role LISTEN on any channel name, so the name itself is the capability:
//! `hrls_` + HMAC-SHA256(per-database secret, user id), which nobody can compute without the
//! secret. The trigger groups a statement's rows by owner and sends each owner one payload (or
//! a few, split under NOTIFY's 8000-byte limit) at commit.
mod payload;
mod transition;

use crate::error::{self, Code};
use crate::policy::{qualified, quote_ident, relation_oid, require_uuid_owner, run_all};
use hmac::{Hmac, Mac};
use pgrx::prelude::*;
use pgrx::PgRelation;
use sha2::Sha256;
use std::cell::RefCell;
use std::ffi::CString;

extension_sql_file!(
    "../sql/realtime.sql",
    name = "realtime",
    requires = ["bootstrap", _realtime_send, _random_secret, channel_for, realtime_notify]
);

pub use payload::{pack_payloads, PAYLOAD_LIMIT};

pub const CHANNEL_PREFIX: &str = "hrls_";

/// The channel of `user_id`: prefix + 160 bits of HMAC-SHA256 in hex (45 characters, under
/// the 63-byte identifier limit).
pub fn channel_name(secret: &[u8], user_id: &uuid::Uuid) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"health_rls channel v1:");
    mac.update(user_id.as_bytes());
    let tag = mac.finalize().into_bytes();
    let hex: String = tag[..20].iter().map(|b| format!("{b:02x}")).collect();
    format!("{CHANNEL_PREFIX}{hex}")
}

// commands/async.h, not in pgrx's bindings: queue a notification for delivery at commit.
unsafe extern "C-unwind" {
    fn Async_Notify(channel: *const std::ffi::c_char, payload: *const std::ffi::c_char);
}

thread_local! {
    static SECRET: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    static CHANNELS: RefCell<std::collections::HashMap<uuid::Uuid, String>> = RefCell::new(Default::default());
}

/// The channel of `user_id` under this database's secret. Remembered per backend (a writer
/// announces to the same few users again and again), bounded so a bulk load cannot grow it.
fn channel_of(user_id: &uuid::Uuid) -> String {
    const REMEMBERED: usize = 4096;
    if let Some(c) = CHANNELS.with(|m| m.borrow().get(user_id).cloned()) {
        return c;
    }
    let c = channel_name(&secret(), user_id);
    CHANNELS.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= REMEMBERED {
            m.clear();
        }
        m.insert(*user_id, c.clone());
    });
    c
}

/// The per-database secret (oldest row wins, so a restored dump keeps its channel names),
/// read once per backend.
fn secret() -> Vec<u8> {
    if let Some(s) = SECRET.with(|s| s.borrow().clone()) {
        return s;
    }
    let s = Spi::get_one::<Vec<u8>>(
        "SELECT secret FROM health_rls.realtime_secret ORDER BY created_at, secret LIMIT 1",
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| error::raise(Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "health_rls.realtime_secret is empty"));
    SECRET.with(|c| *c.borrow_mut() = Some(s.clone()));
    s
}

fn to_uuid(u: pgrx::Uuid) -> uuid::Uuid {
    uuid::Uuid::from_bytes(*u.as_bytes())
}

/// 32 random bytes from the OS, for the channel secret.
#[pg_extern(volatile)]
fn _random_secret() -> Vec<u8> {
    let mut b = vec![0u8; 32];
    getrandom::getrandom(&mut b).unwrap_or_else(|_| error::raise(Code::ERRCODE_INTERNAL_ERROR, "no OS randomness"));
    b
}

/// The channel of any user; for the extension owner (and roles it grants), never for apps.
#[pg_extern(stable, security_definer)]
fn channel_for(user_id: pgrx::Uuid) -> String {
    channel_of(&to_uuid(user_id))
}

/// Queue one owner's rows of a statement on the owner's channel (delivered at commit): one
/// notification, or several parts when the rows do not fit in one. Returns the parts sent.
pub fn send(owner: &uuid::Uuid, table: &str, op: &str, id_key: &str, items: &[String]) -> usize {
    let channel = CString::new(channel_of(owner)).expect("hex has no NUL");
    let payloads = pack_payloads(table, op, items, id_key, PAYLOAD_LIMIT);
    for p in &payloads {
        let p = CString::new(p.as_str()).unwrap_or_else(|_| error::bad_argument("payload contains NUL"));
        // The guard turns an ERROR raised inside (queue full, payload too long) into a Rust
        // panic that pgrx re-raises as that ERROR.
        unsafe { pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| Async_Notify(channel.as_ptr(), p.as_ptr())) };
    }
    payloads.len()
}

/// Announce rows by hand (superuser only: a maintenance job that changed rows with triggers
/// disabled). The trigger itself does not go through SQL.
#[pg_extern(volatile, security_definer)]
fn _realtime_send(owner: Option<pgrx::Uuid>, tbl: &str, op: &str, id_key: &str, items: Vec<Option<String>>) -> i32 {
    let Some(owner) = owner else { return 0 };
    let items: Vec<String> = items.into_iter().flatten().collect();
    send(&to_uuid(owner), tbl, op, id_key, &items) as i32
}

/// AFTER INSERT/UPDATE/DELETE … FOR EACH STATEMENT trigger with transition tables, created by
/// `enable_realtime`: each affected owner hears one notification (or a few parts) per statement.
/// Arguments: owner column, payload mode ('keys' | 'row'), key columns (the first names the row).
/// SECURITY DEFINER (sql/realtime.sql): a backend's first channel needs the secret.
#[pg_trigger]
fn realtime_notify<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<pgrx::heap_tuple::PgHeapTuple<'a, pgrx::AllocatedByPostgres>>, pgrx::heap_tuple::PgHeapTupleError> {
    let td = trigger.trigger_data();
    let table = unsafe { table_label(td.tg_relation) };
    let op = match td.tg_event & pg_sys::TRIGGER_EVENT_OPMASK {
        pg_sys::TRIGGER_EVENT_INSERT => "INSERT",
        pg_sys::TRIGGER_EVENT_UPDATE => "UPDATE",
        pg_sys::TRIGGER_EVENT_DELETE => "DELETE",
        _ => return Ok(None),
    };
    let (rows, id_key) = unsafe { transition::statement_rows(td, &table) };
    for (owner, items) in &rows.groups {
        send(&uuid::Uuid::from_bytes(*owner), &table, op, &id_key, items);
    }
    Ok(None)
}

/// `schema.table`, each part quoted only when it needs it (as format('%I.%I') writes it).
unsafe fn table_label(rel: pg_sys::Relation) -> String {
    let nsp = pg_sys::get_namespace_name((*(*rel).rd_rel).relnamespace);
    let name = (*(*rel).rd_rel).relname.data.as_ptr();
    let q = |p: *const std::ffi::c_char| std::ffi::CStr::from_ptr(pg_sys::quote_identifier(p)).to_string_lossy().into_owned();
    format!("{}.{}", q(nsp), q(name))
}

#[pg_schema]
mod auth {
    use super::*;

    /// The realtime channel of the current user; NULL when nobody is authenticated.
    #[pg_extern(stable, parallel_safe, security_definer)]
    fn my_channel() -> Option<String> {
        crate::auth::identity::current_sub().map(|u| channel_of(&u))
    }
}

pub const TRIGGER_PREFIX: &str = "health_rls_realtime_";

struct RealtimeTable {
    qualified: String,
    owner_type: Option<String>,
    id_column: Option<String>,
    has_kind: bool,
    has_recorded_at: bool,
    rls: bool,
    existing: Vec<String>,
}

fn realtime_table(tbl: pg_sys::Oid, owner_column: &str) -> RealtimeTable {
    Spi::connect(|c| {
        let t = c
            .select(
                "SELECT n.nspname::text, c.relname::text, c.relrowsecurity, \
                   (SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a \
                     WHERE a.attrelid = c.oid AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped), \
                   coalesce((SELECT a.attname::text FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a \
                              ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                             WHERE i.indrelid = c.oid AND i.indisprimary AND i.indnatts = 1), \
                            (SELECT 'id' FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'id' AND NOT a.attisdropped)), \
                   EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'kind' AND NOT a.attisdropped), \
                   EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'recorded_at' AND NOT a.attisdropped), \
                   ARRAY(SELECT t.tgname::text FROM pg_catalog.pg_trigger t \
                          WHERE t.tgrelid = c.oid AND t.tgname LIKE 'health\\_rls\\_realtime\\_%' ORDER BY 1) \
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
                None,
                &[tbl.into(), owner_column.into()],
            )
            .unwrap_or_else(|e| error::raise(Code::ERRCODE_INTERNAL_ERROR, format!("catalog lookup failed: {e}")));
        let r = t.first();
        let schema: String = r.get(1).ok().flatten().unwrap_or_default();
        let name: String = r.get(2).ok().flatten().unwrap_or_default();
        RealtimeTable {
            qualified: qualified(&schema, &name),
            rls: r.get(3).ok().flatten().unwrap_or(false),
            owner_type: r.get(4).ok().flatten(),
            id_column: r.get(5).ok().flatten(),
            has_kind: r.get(6).ok().flatten().unwrap_or(false),
            has_recorded_at: r.get(7).ok().flatten().unwrap_or(false),
            existing: r.get::<Vec<String>>(8).ok().flatten().unwrap_or_default(),
        }
    })
}

/// The statements that (re)create the three realtime triggers of a table.
pub fn realtime_trigger_sql(
    table: &str,
    owner_column: &str,
    payload: &str,
    key_columns: &[String],
    existing: &[String],
) -> Vec<String> {
    let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut args = vec![lit(owner_column), lit(payload)];
    args.extend(key_columns.iter().map(|k| lit(k)));
    let args = args.join(", ");
    let mut out = realtime_drop_sql(table, existing);
    for (event, referencing) in [
        ("INSERT", "NEW TABLE AS new_rows"),
        ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("DELETE", "OLD TABLE AS old_rows"),
    ] {
        out.push(format!(
            "CREATE TRIGGER {} AFTER {event} ON {table} REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION health_rls.realtime_notify({args})",
            quote_ident(&format!("{TRIGGER_PREFIX}{}", event.to_lowercase()))
        ));
    }
    out
}

pub fn realtime_drop_sql(table: &str, existing: &[String]) -> Vec<String> {
    existing.iter().map(|t| format!("DROP TRIGGER {} ON {table}", quote_ident(t))).collect()
}

/// Notify each affected user, once per statement, on its own channel.
#[pg_extern(volatile)]
fn enable_realtime(
    tbl: PgRelation,
    owner_column: default!(&str, "'user_id'"),
    payload: default!(&str, "'keys'"),
) -> SetOfIterator<'static, String> {
    let t = realtime_table(relation_oid(tbl), owner_column);
    require_uuid_owner(t.owner_type.as_deref(), owner_column, &t.qualified);
    if payload != "keys" && payload != "row" {
        error::bad_argument(format!("payload must be 'keys' or 'row', not '{payload}'"));
    }
    let id = t.id_column.clone().unwrap_or_else(|| {
        error::bad_argument(format!("table {} needs a single-column primary key or an id column to name its rows", t.qualified))
    });
    let mut keys = vec![id];
    if t.has_kind {
        keys.push("kind".into());
    }
    if t.has_recorded_at {
        keys.push("recorded_at".into());
    }
    if !t.rls {
        pgrx::warning!(
            "table {} has row level security off: anyone told about a row can read every row (see health_rls.enable_owner_rls)",
            t.qualified
        );
    }
    let statements = realtime_trigger_sql(&t.qualified, owner_column, payload, &keys, &t.existing);
    run_all(&statements);
    SetOfIterator::new(statements)
}

#[pg_extern(volatile)]
fn disable_realtime(tbl: PgRelation) -> SetOfIterator<'static, String> {
    let t = realtime_table(relation_oid(tbl), "");
    let statements = realtime_drop_sql(&t.qualified, &t.existing);
    run_all(&statements);
    SetOfIterator::new(statements)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn channels_are_keyed_and_fit_notify() {
        let u = uuid::Uuid::parse_str("11111111-1111-4111-8111-111111111111").unwrap();
        let a = channel_name(b"secret-a", &u);
        assert_eq!(a, channel_name(b"secret-a", &u), "stable");
        assert_ne!(a, channel_name(b"secret-b", &u), "keyed by the secret");
        assert!(a.starts_with(CHANNEL_PREFIX) && a.len() <= 63);
        assert!(!a.contains("1111"), "not derived from the plain id");
    }
}
