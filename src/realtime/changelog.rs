//! The durable per-user change feed (docs/realtime.md, "Change feed"): every change the realtime
//! trigger announces is also written, in the same transaction, to `health_rls.changes` with a
//! per-user `seq`.
//!
//! Why a counter row and not a sequence: sequence values are taken before commit, so two
//! concurrent writers for one user can commit in the other order, and a client that already saw
//! seq 8 would later get seq 7. `health_rls.change_counters` has one row per user; taking the
//! next seqs is an UPDATE of that row, whose lock is held until commit. A second writer for the
//! same user waits there, and gets higher seqs only after the first committed: seqs increase in
//! commit order, and an aborted transaction takes its seqs back with it (no gaps). Writers of
//! different users never wait for each other.
//!
//! One row per statement and owner, not per changed row: a statement's `n` rows take seqs
//! `seq … seq + n - 1` and the row's `keys` is the array of their keys (the object itself when
//! n = 1). A batch of 100 samples writes one change row instead of 100 (bench part 4); readers
//! (`changes_since`, the export, the gateway's replication decoder) give one change per seq.
use crate::error::{self, Code};
use crate::pg::spi::types::{INT8, TEXT, UUID};
use crate::pg::spi::KeptStatement;
use pgrx::prelude::*;

const LOG_CHANGES: &str = "WITH c AS ( \
       INSERT INTO health_rls.change_counters AS k (user_id, last_seq) VALUES ($1, $2) \
       ON CONFLICT (user_id) DO UPDATE SET last_seq = k.last_seq OPERATOR(pg_catalog.+) $2 \
       RETURNING k.last_seq) \
     INSERT INTO health_rls.changes (user_id, seq, tbl, op, keys, n) \
     SELECT $1, c.last_seq OPERATOR(pg_catalog.-) $2 OPERATOR(pg_catalog.+) 1, $3, $4, $5::pg_catalog.jsonb, $2::pg_catalog.int4 \
       FROM c RETURNING seq OPERATOR(pg_catalog.+) n OPERATOR(pg_catalog.-) 1";

static LOG: KeptStatement = KeptStatement { sql: LOG_CHANGES, types: &[UUID, INT8, TEXT, TEXT, TEXT], writes: true };

/// What one `health_rls.changes` row holds for a statement's rows of one owner: the row's keys
/// (one row), or the array of them in statement order (several; `n` says how many).
pub fn keys_of(items: &[String]) -> String {
    match items {
        [one] => one.clone(),
        many => format!("[{}]", many.join(",")),
    }
}

/// Log `items` (the JSON keys of each row) as `owner`'s changes; returns the seq of the first.
pub fn log(owner: &uuid::Uuid, table: &str, op: &str, items: &[String]) -> i64 {
    let n = items.len() as i64;
    let last = Spi::connect_mut(|c| {
        LOG.run(c, |c, plan| {
            c.update(
                plan,
                None,
                &[crate::pg::uuid::to_pg(*owner).into(), n.into(), table.into(), op.into(), keys_of(items).into()],
            )
            .and_then(|t| t.first().get_one::<i64>())
        })
    })
    .unwrap_or_else(|e| error::spi_failed("realtime change log", e))
    .unwrap_or_else(|| error::raise(Code::ERRCODE_INTERNAL_ERROR, "realtime change log: no seq returned"));
    last - n + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_is_its_keys_several_are_an_array() {
        assert_eq!(keys_of(&[r#"{"id":1}"#.to_string()]), r#"{"id":1}"#);
        let two = keys_of(&[r#"{"id":1}"#.to_string(), r#"{"id":2}"#.to_string()]);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&two).unwrap(), serde_json::json!([{"id": 1}, {"id": 2}]));
    }
}
