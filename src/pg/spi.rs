//! Read-only queries, and statements whose plans are kept per backend.
//!
//! Read-only queries. pgrx's `Spi::get_one*` helpers run their query as an update, which makes
//! the transaction take a transaction id: a write on the primary (one per call) and an ERROR on a
//! hot standby ("cannot assign TransactionIds during recovery"). Lookups go through here instead.
use crate::error::{self, Code};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult};
use pgrx::{FromDatum, IntoDatum, PgOid};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// The first column of the first row of `sql` (None for no row or NULL), read-only.
pub fn select_one<T: FromDatum + IntoDatum>(sql: &str, args: &[DatumWithOid]) -> Option<T> {
    Spi::connect(|c| {
        c.select(sql, Some(1), args).and_then(|t| if t.is_empty() { Ok(None) } else { t.first().get_one::<T>() })
    })
    .unwrap_or_else(|e| error::raise(Code::ERRCODE_INTERNAL_ERROR, format!("{e}: {sql}")))
}

/// Parameter types of kept statements.
pub mod types {
    use pgrx::pg_sys::BuiltinOid;
    use pgrx::PgOid;
    pub const UUID: PgOid = PgOid::BuiltIn(BuiltinOid::UUIDOID);
    pub const INT8: PgOid = PgOid::BuiltIn(BuiltinOid::INT8OID);
    pub const TEXT: PgOid = PgOid::BuiltIn(BuiltinOid::TEXTOID);
}

/// A constant statement run on every call of a hot function or trigger: planned once per backend
/// and kept, so its parse and plan are not paid per call (Postgres replans a kept plan by itself
/// when what it reads changes, and checks the role it was planned for).
pub struct KeptStatement {
    pub sql: &'static str,
    pub types: &'static [PgOid],
    /// Planned as a mutating statement (INSERT/UPDATE, or a SELECT that must see the latest snapshot).
    pub writes: bool,
}

thread_local! {
    /// Shared handles: a statement's trigger may run another kept statement (or the same one)
    /// while the first is still executing, so nothing stays borrowed across a run.
    static KEPT: RefCell<HashMap<&'static str, Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

impl KeptStatement {
    /// Runs `run` with this statement's kept plan, planning it first if this backend has not.
    pub fn run<'conn, R>(
        &self,
        c: &mut SpiClient<'conn>,
        run: impl FnOnce(&mut SpiClient<'conn>, &OwnedPreparedStatement) -> SpiResult<R>,
    ) -> SpiResult<R> {
        let plan = match KEPT.with(|k| k.borrow().get(self.sql).cloned()) {
            Some(plan) => plan,
            None => {
                let prepared =
                    if self.writes { c.prepare_mut(self.sql, self.types)? } else { c.prepare(self.sql, self.types)? };
                let plan = Rc::new(prepared.keep());
                KEPT.with(|k| k.borrow_mut().insert(self.sql, plan.clone()));
                plan
            }
        };
        run(c, &plan)
    }
}
