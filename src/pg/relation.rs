//! A relation named by a `regclass` argument: its qualified name and the checks every generator
//! makes of it. Names come from the syscache, not from SQL, so they are exactly Postgres's own.
use super::cache::{self, RelCache};
use super::sql::QualifiedName;
use crate::error::{self, Code};
use pgrx::prelude::*;
use pgrx::PgRelation;
use std::ffi::CStr;
use std::rc::Rc;

/// The oid of a regclass argument, with pgrx's relation reference released: ALTER TABLE
/// refuses a relation this session still holds open.
pub fn oid_of(rel: PgRelation) -> pg_sys::Oid {
    let oid = rel.oid();
    drop(rel);
    oid
}

/// `schema.table` of `relid`, quoted where needed (as `format('%I.%I')` writes it).
pub fn qualified_name(relid: pg_sys::Oid) -> QualifiedName {
    // SAFETY: the lsyscache lookups take any oid and return NULL for one that does not exist;
    // the returned strings are palloc'd copies we only read before the next allocation.
    let (schema, name) = unsafe {
        let name = pg_sys::get_rel_name(relid);
        if name.is_null() {
            error::raise(Code::ERRCODE_UNDEFINED_TABLE, format!("relation with oid {} does not exist", relid.to_u32()));
        }
        let schema = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(relid));
        if schema.is_null() {
            error::raise(
                Code::ERRCODE_INVALID_SCHEMA_NAME,
                format!("schema of relation {} does not exist", relid.to_u32()),
            );
        }
        (CStr::from_ptr(schema).to_string_lossy().into_owned(), CStr::from_ptr(name).to_string_lossy().into_owned())
    };
    QualifiedName::quote(&schema, &name)
}

thread_local! {
    static NAMES: RelCache<pg_sys::Oid, String> = const { RelCache::new() };
}

/// `qualified_name(relid)` as SQL text, kept per backend: the realtime trigger names its table in
/// every change it writes, and three syscache look-ups and the quoting cost ~4 µs a statement.
/// Forgotten at a relcache invalidation of the table (RENAME, SET SCHEMA) and at any change to a
/// schema (ALTER SCHEMA … RENAME sends none for the tables in it).
pub fn qualified_name_sql(relid: pg_sys::Oid) -> Rc<String> {
    NAMES.with(|names| names.get(relid, || (vec![relid], qualified_name(relid).as_sql().to_string())))
}

pub fn init() {
    cache::on_invalidation(|relid| NAMES.with(|n| n.forget(relid)));
    // SAFETY: runs once, from _PG_init; the callback is a static function that lives as long as
    // the library (which is never unloaded).
    unsafe {
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::NAMESPACEOID as std::ffi::c_int,
            Some(on_schema_change),
            pg_sys::Datum::from(0),
        )
    };
}

#[pg_guard]
extern "C-unwind" fn on_schema_change(_arg: pg_sys::Datum, _cache: std::ffi::c_int, _hash: u32) {
    NAMES.with(|n| n.forget(pg_sys::InvalidOid));
}

/// The owner column must exist (42703) and be a uuid (22023): auth.uid() is compared with it.
/// `owner_type` is the column's `format_type`, None when the table has no such column.
pub fn require_uuid_owner(owner_type: Option<&str>, owner_column: &str, table: &QualifiedName) {
    match owner_type {
        None => error::raise(
            Code::ERRCODE_UNDEFINED_COLUMN,
            format!("column \"{owner_column}\" of table {table} does not exist"),
        ),
        Some("uuid") => {}
        Some(other) => error::bad_argument(format!(
            "owner column \"{owner_column}\" of table {table} is {other}, not uuid (auth.uid() is a uuid)"
        )),
    }
}

/// A relation returned to SQL as `regclass` (pgrx returns `PgRelation` only as an argument).
pub struct Regclass(pub pg_sys::Oid);
pgrx::impl_sql_translatable!(Regclass, "regclass");
// SAFETY: a regclass datum is the oid itself, passed by value: nothing to allocate or free.
unsafe impl pgrx::callconv::BoxRet for Regclass {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut pgrx::callconv::FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        // SAFETY: `fcinfo` is the call's own function-call info, as box_into's contract requires.
        unsafe { fcinfo.return_raw_datum(pg_sys::Datum::from(self.0)) }
    }
}
