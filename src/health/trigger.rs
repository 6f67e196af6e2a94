//! The row trigger `health.normalize_sample([kind_col, value_col, unit_col])`: rewrites a
//! sample's value and unit into the kind's canonical unit and range-checks it, BEFORE INSERT OR
//! UPDATE, on the standard table or on any table a DBA attaches it to.
//!
//! It runs once per written row, so it works on the raw tuple: no SPI, no per-row catalog
//! query (the catalog is cached, see `catalog.rs`), and when the unit is already canonical
//! (what `health.ingest` sends) the row is returned as it came, without a copy. Where the
//! three columns are in the table's rows is worked out once per trigger and cached until the
//! table changes (relcache invalidation).
use super::catalog;
use super::rules::{self, Invalid};
use super::vocabulary::Platform;
use crate::error;
use crate::pg::cache::{self, RelCache};
use pgrx::prelude::*;
use pgrx::{heap_getattr_raw, FromDatum, IntoDatum, PgTupleDesc};
use std::ffi::CStr;
use std::num::NonZeroUsize;

const DEFAULT_COLUMNS: [&str; 3] = ["kind", "value", "unit"];

fn trigger_args(trigger: &pg_sys::Trigger) -> [&str; 3] {
    let mut names = DEFAULT_COLUMNS;
    let n = usize::try_from(trigger.tgnargs).unwrap_or(0);
    if n == 0 {
        return names;
    }
    if n != 3 {
        error::bad_argument(format!(
            "health.normalize_sample takes no argument or three (kind, value and unit column names), not {n}"
        ));
    }
    // SAFETY: pg_trigger.tgargs holds tgnargs NUL-terminated strings for the trigger's lifetime.
    let args = unsafe { std::slice::from_raw_parts(trigger.tgargs, n) };
    for (slot, arg) in names.iter_mut().zip(args) {
        // SAFETY: each argument is a NUL-terminated string (see above).
        *slot = unsafe { CStr::from_ptr(*arg) }
            .to_str()
            .unwrap_or_else(|_| error::bad_argument("health.normalize_sample: column name is not UTF-8"));
    }
    names
}

/// (attribute number, base type oid) of a column, by exact name.
fn column(tupdesc: &PgTupleDesc, name: &str, table: &str) -> (NonZeroUsize, pg_sys::Oid) {
    for att in tupdesc.iter() {
        if !att.attisdropped && att.name() == name {
            let typ = match att.atttypid {
                t @ (pg_sys::TEXTOID
                | pg_sys::VARCHAROID
                | pg_sys::FLOAT8OID
                | pg_sys::FLOAT4OID
                | pg_sys::NUMERICOID
                | pg_sys::INT2OID
                | pg_sys::INT4OID
                | pg_sys::INT8OID) => t,
                // A domain: its base type decides.
                // SAFETY: getBaseType takes any type oid (a column's type always exists).
                other => unsafe { pg_sys::getBaseType(other) },
            };
            return (NonZeroUsize::new(att.attnum as usize).expect("user column"), typ);
        }
    }
    error::raise(
        error::Code::ERRCODE_UNDEFINED_COLUMN,
        format!("health.normalize_sample: table {table} has no column \"{name}\""),
    )
}

fn wrong_type(table: &str, name: &str, wanted: &str) -> ! {
    error::raise(
        error::Code::ERRCODE_DATATYPE_MISMATCH,
        format!("health.normalize_sample: column \"{name}\" of {table} must be {wanted}"),
    )
}

/// # Safety
/// `datum` must be a non-NULL value of type `typ`.
unsafe fn read_value(datum: pg_sys::Datum, typ: pg_sys::Oid) -> Option<f64> {
    // SAFETY: the caller guarantees `datum` is a non-NULL value of `typ`; each arm reads it as that type.
    unsafe {
        match typ {
            pg_sys::FLOAT8OID => f64::from_datum(datum, false),
            pg_sys::FLOAT4OID => f32::from_datum(datum, false).map(f64::from),
            pg_sys::NUMERICOID => pgrx::direct_function_call::<f64>(pg_sys::numeric_float8, &[Some(datum)]),
            pg_sys::INT2OID => i16::from_datum(datum, false).map(f64::from),
            pg_sys::INT4OID => i32::from_datum(datum, false).map(f64::from),
            pg_sys::INT8OID => i64::from_datum(datum, false).map(|v| v as f64),
            _ => None,
        }
    }
}

fn write_value(v: f64, typ: pg_sys::Oid, kind: &str) -> pg_sys::Datum {
    let integral = |lo: f64, hi: f64| {
        let r = v.round();
        if !(lo..=hi).contains(&r) {
            error::raise(
                error::Code::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
                format!("{kind}: converted value {v} does not fit the integer value column"),
            );
        }
        r
    };
    let datum = match typ {
        pg_sys::FLOAT8OID => v.into_datum(),
        pg_sys::FLOAT4OID => (v as f32).into_datum(),
        // SAFETY: float8_numeric takes one non-NULL float8 datum.
        pg_sys::NUMERICOID => unsafe { pgrx::direct_function_call_as_datum(pg_sys::float8_numeric, &[v.into_datum()]) },
        pg_sys::INT2OID => (integral(i16::MIN.into(), i16::MAX.into()) as i16).into_datum(),
        pg_sys::INT4OID => (integral(i32::MIN.into(), i32::MAX.into()) as i32).into_datum(),
        _ => (integral(i64::MIN as f64, i64::MAX as f64) as i64).into_datum(),
    };
    datum.expect("a number is never NULL")
}

fn raise(invalid: Invalid) -> ! {
    error::raise(invalid.code(), invalid.to_string())
}

/// Where one trigger finds kind, value and unit in its table's rows.
#[derive(Clone, Copy)]
struct Layout {
    kind: NonZeroUsize,
    value: NonZeroUsize,
    value_type: pg_sys::Oid,
    unit: NonZeroUsize,
}

thread_local! {
    /// By trigger oid (a trigger names its columns in its arguments), tagged with its table.
    static LAYOUTS: RelCache<pg_sys::Oid, Layout> = const { RelCache::new() };
}

pub fn init() {
    cache::on_invalidation(|relid| LAYOUTS.with(|l| l.forget(relid)));
}

fn layout(td: &pg_sys::TriggerData, tupdesc: &PgTupleDesc) -> Layout {
    // SAFETY: a firing trigger's TriggerData points at its Trigger and its open relation.
    let (trigger, relation) = unsafe { (&*td.tg_trigger, &*td.tg_relation) };
    *LAYOUTS.with(|l| l.get(trigger.tgoid, || (vec![relation.rd_id], read_layout(trigger, relation, tupdesc))))
}

fn read_layout(trigger: &pg_sys::Trigger, relation: &pg_sys::RelationData, tupdesc: &PgTupleDesc) -> Layout {
    // SAFETY: rd_rel is the relation's valid pg_class row; relname is a NUL-terminated NameData.
    let table = unsafe { CStr::from_ptr((*relation.rd_rel).relname.data.as_ptr()) }.to_string_lossy().into_owned();
    let [kind_col, value_col, unit_col] = trigger_args(trigger);
    let (kind, kind_typ) = column(tupdesc, kind_col, &table);
    let (value, value_type) = column(tupdesc, value_col, &table);
    let (unit, unit_typ) = column(tupdesc, unit_col, &table);
    if !matches!(kind_typ, pg_sys::TEXTOID | pg_sys::VARCHAROID) {
        wrong_type(&table, kind_col, "text");
    }
    if !matches!(unit_typ, pg_sys::TEXTOID | pg_sys::VARCHAROID) {
        wrong_type(&table, unit_col, "text");
    }
    if !matches!(
        value_type,
        pg_sys::FLOAT8OID
            | pg_sys::FLOAT4OID
            | pg_sys::NUMERICOID
            | pg_sys::INT2OID
            | pg_sys::INT4OID
            | pg_sys::INT8OID
    ) {
        wrong_type(&table, value_col, "double precision, real, numeric or an integer type");
    }
    Layout { kind, value, value_type, unit }
}

/// The tuple to store: the one given, or a copy with value and unit rewritten.
///
/// # Safety
/// `td` must be the TriggerData of a firing row-level INSERT or UPDATE trigger.
pub unsafe fn normalize_row(td: &pg_sys::TriggerData) -> pg_sys::HeapTuple {
    let event = td.tg_event;
    let row_level = event & pg_sys::TRIGGER_EVENT_ROW != 0;
    let before = event & pg_sys::TRIGGER_EVENT_TIMINGMASK == pg_sys::TRIGGER_EVENT_BEFORE;
    let op = event & pg_sys::TRIGGER_EVENT_OPMASK;
    let tuple = match op {
        pg_sys::TRIGGER_EVENT_INSERT if row_level && before => td.tg_trigtuple,
        pg_sys::TRIGGER_EVENT_UPDATE if row_level && before => td.tg_newtuple,
        _ => error::raise(
            error::Code::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            "health.normalize_sample must run BEFORE INSERT OR UPDATE ... FOR EACH ROW",
        ),
    };
    // SAFETY: the firing trigger's relation is open; its descriptor outlives this call.
    let tupdesc = unsafe { PgTupleDesc::from_pg_unchecked((*td.tg_relation).rd_att) };
    let Layout { kind: kind_att, value: value_att, value_type: value_typ, unit: unit_att, .. } = layout(td, &tupdesc);

    // SAFETY: `tuple` is the trigger's row of this descriptor and `att` one of its columns.
    let get = |att: NonZeroUsize| unsafe { heap_getattr_raw(tuple, att, tupdesc.as_ptr()) };
    // A NULL kind or value is left to the table's NOT NULL constraints (or its own rules).
    let (Some(kind_d), Some(value_d)) = (get(kind_att), get(value_att)) else {
        return tuple;
    };
    // SAFETY: the layout checked the kind and unit columns are text (or varchar), value numeric.
    let kind = unsafe { <&str>::from_datum(kind_d, false) }.unwrap_or("");
    // SAFETY: as above; `value_typ` is the value column's base type.
    let value = unsafe { read_value(value_d, value_typ) }.unwrap_or(f64::NAN);
    let Some(unit_d) = get(unit_att) else {
        error::bad_argument(format!("{kind}: unit is required (the unit decides how the value is read)"));
    };
    // SAFETY: the unit column is text (checked by the layout).
    let unit_text = unsafe { <&str>::from_datum(unit_d, false) }.unwrap_or("");

    let catalog = catalog::current();
    let rule = catalog.rule(kind).unwrap_or_else(|| raise(Invalid::UnknownKind(kind.to_string())));
    // UCUM, or an alias any platform uses (`bpm`); a table row's kind is always a catalog code.
    let unit = catalog
        .resolve_unit(unit_text, Platform::Catalog, rule.unit)
        .unwrap_or_else(|| raise(Invalid::UnknownUnit { kind: kind.to_string(), unit: unit_text.to_string() }));
    let canonical = rules::normalize_unit(kind, rule, value, unit).unwrap_or_else(|e| raise(e));
    if unit == rule.unit && canonical == value && unit_text == rule.unit.code() {
        return tuple; // already canonical: store the row as it came
    }
    let mut columns = [value_att.get() as i32, unit_att.get() as i32];
    let mut values = [write_value(canonical, value_typ, kind), rule.unit.code().into_datum().expect("text")];
    let mut nulls = [false, false];
    // SAFETY: replaces two columns of the trigger's row with datums of their own types; the
    // copy is palloc'd in the trigger's memory context, which is what Postgres stores.
    unsafe {
        pg_sys::heap_modify_tuple_by_cols(
            tuple,
            tupdesc.as_ptr(),
            2,
            columns.as_mut_ptr(),
            values.as_mut_ptr(),
            nulls.as_mut_ptr(),
        )
    }
}
