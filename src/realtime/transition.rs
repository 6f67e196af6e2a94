//! The body of `health_rls.realtime_notify`: read a statement's transition tables straight from
//! their tuplestores, group the rows by owner, and hand each owner's rows to `send`.
//!
//! Why not SQL: the first version was a PL/pgSQL trigger that built and planned a GROUP BY query
//! per statement and called a SQL function per owner; that halved single-row insert throughput
//! at 8 clients. Reading the tuplestores costs microseconds per statement: no SPI, no planner.
use crate::error::{self, Code};
use pgrx::pg_sys;
use pgrx::PgMemoryContexts;
use std::collections::HashMap;
use std::ffi::CStr;
use std::fmt::Write;

/// One column the trigger reads, resolved against the table's current descriptor.
struct Column {
    name: String,
    attnum: i32,
    base_type: pg_sys::Oid,
    kind: ValueKind,
    /// The type's output function, for the kinds written from their text form.
    output: Option<Box<pg_sys::FmgrInfo>>,
}

/// How a value is written as JSON, by base type (the choices `to_jsonb` makes).
#[derive(Clone, Copy, PartialEq)]
enum ValueKind {
    Int,
    Number,
    Bool,
    DateTime,
    Json,
    Uuid,
    Text,
}

/// # Safety
/// `rel` must be an open relation.
unsafe fn find_column(rel: pg_sys::Relation, table: &str, name: &str) -> Column {
    // SAFETY: `rel` is the trigger's open relation; its descriptor and attribute names are valid for the call, and the type lookups take any valid type oid.
    unsafe {
        // pgrx finds the attributes where each major keeps them (18 moved them behind compact_attrs).
        let desc = pgrx::PgTupleDesc::from_pg_unchecked((*rel).rd_att);
        let Some(att) = desc.iter().find(|a| !a.attisdropped && a.name() == name) else {
            error::raise(
                Code::ERRCODE_UNDEFINED_COLUMN,
                format!("realtime trigger on table {table}: column \"{name}\" does not exist (call health_rls.enable_realtime again)"),
            )
        };
        let base_type = pg_sys::getBaseType(att.atttypid);
        let kind = match base_type {
            pg_sys::INT2OID | pg_sys::INT4OID | pg_sys::INT8OID => ValueKind::Int,
            pg_sys::FLOAT4OID | pg_sys::FLOAT8OID | pg_sys::NUMERICOID => ValueKind::Number,
            pg_sys::BOOLOID => ValueKind::Bool,
            pg_sys::DATEOID | pg_sys::TIMEOID | pg_sys::TIMETZOID | pg_sys::TIMESTAMPOID | pg_sys::TIMESTAMPTZOID => {
                ValueKind::DateTime
            }
            pg_sys::JSONOID | pg_sys::JSONBOID => ValueKind::Json,
            pg_sys::UUIDOID => ValueKind::Uuid,
            _ => ValueKind::Text,
        };
        let output = matches!(kind, ValueKind::Number | ValueKind::Json | ValueKind::Text).then(|| {
            let mut func = pg_sys::InvalidOid;
            let mut varlena = false;
            pg_sys::getTypeOutputInfo(att.atttypid, &mut func, &mut varlena);
            let mut output: Box<pg_sys::FmgrInfo> = Box::new(std::mem::zeroed());
            pg_sys::fmgr_info(func, output.as_mut());
            output
        });
        Column { name: name.to_string(), attnum: i32::from(att.attnum), base_type, kind, output }
    }
}

/// # Safety
/// `datum` must be a non-NULL uuid datum.
unsafe fn uuid_at(datum: pg_sys::Datum) -> [u8; 16] {
    // SAFETY: `datum` points at a non-NULL uuid value, which is 16 bytes passed by reference.
    unsafe {
        let mut b = [0u8; 16];
        b.copy_from_slice(std::slice::from_raw_parts(datum.cast_mut_ptr::<u8>(), 16));
        b
    }
}

/// Append the value of `col` in `slot` as JSON to `out`.
/// # Safety
/// `slot` must hold a row of the relation `col` was resolved against.
unsafe fn push_value(out: &mut String, col: &mut Column, slot: *mut pg_sys::TupleTableSlot) {
    // SAFETY: `slot` holds a row of the table `col` was resolved against; a non-NULL value is a valid datum of the column's type, and the output/JSON functions return NUL-terminated palloc'd strings.
    unsafe {
        let (value, isnull) = attr(slot, col.attnum);
        if isnull {
            out.push_str("null");
            return;
        }
        match col.kind {
            ValueKind::Int => {
                let n = match col.base_type {
                    pg_sys::INT2OID => i64::from(value.value() as i16),
                    pg_sys::INT4OID => i64::from(value.value() as i32),
                    _ => value.value() as i64,
                };
                let _ = write!(out, "{n}");
            }
            ValueKind::Bool => out.push_str(if value.value() != 0 { "true" } else { "false" }),
            ValueKind::Uuid => {
                out.push('"');
                out.push_str(
                    uuid::Uuid::from_bytes(uuid_at(value)).hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()),
                );
                out.push('"');
            }
            ValueKind::DateTime => {
                let s = pg_sys::JsonEncodeDateTime(std::ptr::null_mut(), value, col.base_type, std::ptr::null());
                push_json_str(out, &CStr::from_ptr(s).to_string_lossy());
            }
            ValueKind::Number | ValueKind::Json | ValueKind::Text => {
                let output = col.output.as_mut().expect("resolved for this kind");
                let s = pg_sys::OutputFunctionCall(output.as_mut(), value);
                let text = CStr::from_ptr(s).to_string_lossy();
                match col.kind {
                    ValueKind::Json => out.push_str(&text),
                    // NaN and ±Infinity are not JSON numbers: strings, as to_jsonb writes them.
                    ValueKind::Number if text.parse::<f64>().is_ok_and(f64::is_finite) => out.push_str(&text),
                    _ => push_json_str(out, &text),
                }
            }
        }
    }
}

/// `s` as a JSON string (RFC 8259 escapes), without an intermediate allocation.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// # Safety
/// `slot` must be a valid slot whose descriptor has a column `attnum`.
unsafe fn attr(slot: *mut pg_sys::TupleTableSlot, attnum: i32) -> (pg_sys::Datum, bool) {
    // SAFETY: `slot` is a valid slot of the table's descriptor and `attnum` a user column of it (1-based), so after slot_getsomeattrs the arrays hold at least `attnum` entries.
    unsafe {
        if i32::from((*slot).tts_nvalid) < attnum {
            pg_sys::slot_getsomeattrs_int(slot, attnum);
        }
        let i = (attnum - 1) as usize;
        (*(*slot).tts_values.add(i), *(*slot).tts_isnull.add(i))
    }
}

/// Call `f` for every row of a transition table, through a read pointer of our own (other
/// triggers of the statement read the same tuplestore), in a memory context reset per row.
/// # Safety
/// `store` must be a live transition tuplestore whose rows have descriptor `desc`.
unsafe fn for_each_row(
    store: *mut pg_sys::Tuplestorestate,
    desc: pg_sys::TupleDesc,
    mut f: impl FnMut(*mut pg_sys::TupleTableSlot),
) {
    // SAFETY: `store` is a transition tuplestore of the firing statement and `desc` its table's descriptor; our own read pointer leaves the other triggers' positions alone, and the slot is dropped before return.
    unsafe {
        let slot = pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsMinimalTuple);
        let reader = pg_sys::tuplestore_alloc_read_pointer(store, pg_sys::EXEC_FLAG_REWIND as i32);
        pg_sys::tuplestore_select_read_pointer(store, reader);
        pg_sys::tuplestore_rescan(store);
        // Owned context: deleted when `per_row` drops (do not delete it by hand).
        let mut per_row = PgMemoryContexts::new("health_rls realtime row");
        loop {
            // gettupleslot may switch the active pointer's position only: select ours every time,
            // as nodeNamedtuplestorescan.c does.
            pg_sys::tuplestore_select_read_pointer(store, reader);
            if !pg_sys::tuplestore_gettupleslot(store, true, false, slot) {
                break;
            }
            per_row.switch_to(|_| f(slot));
            per_row.reset();
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
    }
}

/// Rows of one statement, grouped by owner in first-seen order.
#[derive(Default)]
pub struct ByOwner {
    index: HashMap<[u8; 16], usize>,
    pub groups: Vec<([u8; 16], Vec<String>)>,
}

impl ByOwner {
    pub fn push(&mut self, owner: [u8; 16], item: String) {
        let i = *self.index.entry(owner).or_insert_with(|| {
            self.groups.push((owner, Vec::new()));
            self.groups.len() - 1
        });
        self.groups[i].1.push(item);
    }
}

/// What a realtime trigger was created with: owner column, payload mode, key columns (the first
/// names the row).
struct Args {
    owner: String,
    row_mode: bool,
    keys: Vec<String>,
}

/// # Safety
/// `trigger` must be the Trigger of a firing trigger (its tgargs valid).
unsafe fn trigger_args(trigger: &pg_sys::Trigger, table: &str) -> Args {
    // SAFETY: `tgargs` holds `tgnargs` NUL-terminated strings (pg_trigger.tgargs).
    unsafe {
        let args: Vec<String> = (0..trigger.tgnargs as usize)
            .map(|i| CStr::from_ptr(*trigger.tgargs.add(i)).to_string_lossy().into_owned())
            .collect();
        if args.len() < 3 || !matches!(args[1].as_str(), "keys" | "row") {
            error::bad_argument(format!(
                "realtime trigger on table {table} has malformed arguments (call health_rls.enable_realtime again)"
            ));
        }
        Args { owner: args[0].clone(), row_mode: args[1] == "row", keys: args[2..].to_vec() }
    }
}

/// The statement's rows grouped by owner, and the name of the id key, for `realtime_notify`.
/// # Safety
/// `td` must be the TriggerData of a firing statement-level trigger.
pub unsafe fn statement_rows(td: &pg_sys::TriggerData, table: &str) -> (ByOwner, String) {
    // SAFETY: `td` is the TriggerData of a firing AFTER … FOR EACH STATEMENT trigger: its relation, trigger and transition tables (checked for NULL below) are valid for the call.
    unsafe {
        let rel = td.tg_relation;
        let desc = (*rel).rd_att;
        let args = trigger_args(&*td.tg_trigger, table);
        let owner = find_column(rel, table, &args.owner);
        if owner.kind != ValueKind::Uuid {
            error::bad_argument(format!(
                "realtime trigger on table {table}: owner column \"{}\" is not uuid",
                owner.name
            ));
        }
        let mut keys: Vec<Column> = args.keys.iter().map(|k| find_column(rel, table, k)).collect();
        let id_key = keys[0].name.clone();
        // row mode: row_to_json(record), the composite of the whole row.
        let mut row_json: Option<Box<pg_sys::FmgrInfo>> = args.row_mode.then(|| {
            let mut f: Box<pg_sys::FmgrInfo> = Box::new(std::mem::zeroed());
            pg_sys::fmgr_info(pg_sys::Oid::from(pg_sys::F_ROW_TO_JSON_RECORD), f.as_mut());
            f
        });

        let mut item_of = |slot: *mut pg_sys::TupleTableSlot, keys: &mut Vec<Column>| -> String {
            let mut out = String::with_capacity(96);
            match row_json.as_mut() {
                Some(f) => {
                    let datum = pg_sys::ExecFetchSlotHeapTupleDatum(slot);
                    let json = pg_sys::FunctionCall1Coll(f.as_mut(), pg_sys::InvalidOid, datum);
                    out.push_str(&CStr::from_ptr(pg_sys::text_to_cstring(json.cast_mut_ptr())).to_string_lossy());
                }
                None => {
                    out.push('{');
                    for (i, k) in keys.iter_mut().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        push_json_str(&mut out, &k.name);
                        out.push(':');
                        push_value(&mut out, k, slot);
                    }
                    out.push('}');
                }
            }
            out
        };
        let owner_of = |slot: *mut pg_sys::TupleTableSlot, owner: &Column| -> Option<[u8; 16]> {
            let (v, isnull) = attr(slot, owner.attnum);
            (!isnull).then(|| uuid_at(v))
        };

        let mut rows = ByOwner::default();
        let missing = || {
            error::raise(
                Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("health_rls.realtime_notify on table {table} needs an AFTER … FOR EACH STATEMENT trigger with transition tables (use health_rls.enable_realtime)"),
            )
        };
        let event = td.tg_event & pg_sys::TRIGGER_EVENT_OPMASK;
        match event {
            pg_sys::TRIGGER_EVENT_INSERT | pg_sys::TRIGGER_EVENT_DELETE => {
                let store = if event == pg_sys::TRIGGER_EVENT_INSERT { td.tg_newtable } else { td.tg_oldtable };
                if store.is_null() {
                    missing();
                }
                for_each_row(store, desc, |slot| {
                    if let Some(o) = owner_of(slot, &owner) {
                        rows.push(o, item_of(slot, &mut keys));
                    }
                });
            }
            pg_sys::TRIGGER_EVENT_UPDATE => {
                if td.tg_newtable.is_null() || td.tg_oldtable.is_null() {
                    missing();
                }
                // Owners of the new rows hear the new rows; an old owner whose row moved to someone
                // else hears the old row (its id) and nothing of the new owner's data.
                let mut new_owner_of_id: HashMap<String, Option<[u8; 16]>> = HashMap::new();
                for_each_row(td.tg_newtable, desc, |slot| {
                    let o = owner_of(slot, &owner);
                    let mut id = String::new();
                    push_value(&mut id, &mut keys[0], slot);
                    new_owner_of_id.insert(id, o);
                    if let Some(o) = o {
                        rows.push(o, item_of(slot, &mut keys));
                    }
                });
                for_each_row(td.tg_oldtable, desc, |slot| {
                    let Some(o) = owner_of(slot, &owner) else { return };
                    let mut id = String::new();
                    push_value(&mut id, &mut keys[0], slot);
                    if new_owner_of_id.get(&id) != Some(&Some(o)) {
                        rows.push(o, item_of(slot, &mut keys));
                    }
                });
            }
            _ => {} // TRUNCATE has no rows to name.
        }
        (rows, id_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_match_serde() {
        for s in ["heart_rate", "a\"b\\c", "line\nbreak\ttab\r", "\u{1}\u{8}\u{c}\u{1f}", "ünïcode ❤"] {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(out, serde_json::Value::from(s).to_string());
        }
    }

    #[test]
    fn rows_group_by_owner_in_first_seen_order() {
        let mut g = ByOwner::default();
        g.push([2; 16], "a".into());
        g.push([1; 16], "b".into());
        g.push([2; 16], "c".into());
        assert_eq!(g.groups, vec![([2; 16], vec!["a".to_string(), "c".to_string()]), ([1; 16], vec!["b".to_string()])]);
    }
}
