//! Read-only queries. pgrx's `Spi::get_one*` helpers run their query as an update, which makes
//! the transaction take a transaction id: a write on the primary (one per call) and an ERROR on a
//! hot standby ("cannot assign TransactionIds during recovery"). Lookups go through here instead.
use crate::error::{self, Code};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{FromDatum, IntoDatum};

/// The first column of the first row of `sql` (None for no row or NULL), read-only.
pub fn select_one<T: FromDatum + IntoDatum>(sql: &str, args: &[DatumWithOid]) -> Option<T> {
    Spi::connect(|c| {
        c.select(sql, Some(1), args).and_then(|t| if t.is_empty() { Ok(None) } else { t.first().get_one::<T>() })
    })
    .unwrap_or_else(|e| error::raise(Code::ERRCODE_INTERNAL_ERROR, format!("{e}: {sql}")))
}
