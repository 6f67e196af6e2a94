//! The relay's source without NOTIFY: the committed change feed (`health_rls.changes`) read by
//! logical replication (docs/realtime.md, "NOTIFY or logical replication").
//!
//! A publication on `health_rls.changes` (inserts only) and a logical replication slot with the
//! `pgoutput` plugin; the gateway reads the slot with its SQL function
//! `pg_logical_slot_get_binary_changes` every few milliseconds (tokio-postgres does not speak the
//! streaming replication protocol). Changes arrive in commit order, after commit, and the writers
//! take no lock for them: a realtime table no longer pays NOTIFY's database-wide commit lock
//! (`health_rls.notify = off`).
//!
//! The slot is only the wake-up: what a subscriber is sent is still checked against its own
//! change feed (seqs without gaps; a gap is filled from `changes_since`), so a slot recreated
//! after it was lost, or a gateway restarted, loses nothing a subscriber can see. While the gateway
//! is down the slot keeps WAL from being removed: `max_slot_wal_keep_size` bounds that, and a
//! gateway taken out of service should have its slot dropped (`pg_drop_replication_slot`).
use crate::relay::Relay;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Weak;
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

/// Where and how to read the change feed by logical replication.
#[derive(Clone, Debug)]
pub struct ReplicationSource {
    /// A role with REPLICATION (or a superuser) in the database of the change feed.
    pub dsn: String,
    /// This gateway's own slot (one per gateway: a slot has one reader).
    pub slot: String,
    pub publication: String,
}

impl ReplicationSource {
    pub fn new(dsn: &str) -> ReplicationSource {
        ReplicationSource {
            dsn: dsn.to_string(),
            slot: "health_rls_gateway".into(),
            publication: "health_rls_changes".into(),
        }
    }
}

/// One decoded pgoutput message of interest.
#[derive(Debug, PartialEq)]
pub enum Message {
    /// A relation's id, schema, name and column names.
    Relation { id: u32, schema: String, name: String, columns: Vec<String> },
    /// A new row of relation `id`: each column's text, or None (NULL or unchanged TOAST).
    Insert { id: u32, values: Vec<Option<String>> },
    /// Anything else (begin, commit, origin, type, update, delete, truncate, message).
    Other,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn cstr(&mut self) -> Option<String> {
        let end = self.buf.iter().position(|&b| b == 0)?;
        let s = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf = &self.buf[end + 1..];
        Some(s)
    }
}

/// Decodes one pgoutput (protocol version 1) message; None when it is cut short or malformed.
pub fn decode(data: &[u8]) -> Option<Message> {
    let mut r = Reader { buf: data };
    match r.u8()? {
        b'R' => {
            let id = r.u32()?;
            let schema = r.cstr()?;
            let name = r.cstr()?;
            let _replica_identity = r.u8()?;
            let n = r.u16()?;
            let mut columns = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let _flags = r.u8()?;
                columns.push(r.cstr()?);
                let _type = r.u32()?;
                let _typmod = r.u32()?;
            }
            Some(Message::Relation { id, schema, name, columns })
        }
        b'I' => {
            let id = r.u32()?;
            if r.u8()? != b'N' {
                return None;
            }
            let n = r.u16()?;
            let mut values = Vec::with_capacity(n as usize);
            for _ in 0..n {
                match r.u8()? {
                    b't' => {
                        let len = r.u32()? as usize;
                        values.push(Some(String::from_utf8_lossy(r.take(len)?).into_owned()));
                    }
                    b'n' | b'u' => values.push(None),
                    _ => return None,
                }
            }
            Some(Message::Insert { id, values })
        }
        _ => Some(Message::Other),
    }
}

/// A change feed row: its user, seq, table, operation and keys.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedRow {
    pub user_id: String,
    pub seq: i64,
    pub tbl: String,
    pub op: String,
    pub keys: Value,
}

/// Turns a run of messages into change feed rows, remembering relations as they are announced.
#[derive(Default)]
pub struct Decoder {
    /// Relation id → the column positions of user_id, seq, tbl, op and keys, and of n (absent
    /// before 0.3.0), for the change feed.
    feed: HashMap<u32, ([usize; 5], Option<usize>)>,
}

impl Decoder {
    /// The changes one message carries: none, or one per seq of a feed row (a statement's row of
    /// several, `n` > 1, holds the array of their keys).
    pub fn rows(&mut self, data: &[u8]) -> Vec<FeedRow> {
        match decode(data) {
            Some(Message::Relation { id, schema, name, columns }) => {
                let pos = |c: &str| columns.iter().position(|x| x == c);
                if schema == "health_rls" && name == "changes" {
                    if let (Some(u), Some(s), Some(t), Some(o), Some(k)) =
                        (pos("user_id"), pos("seq"), pos("tbl"), pos("op"), pos("keys"))
                    {
                        self.feed.insert(id, ([u, s, t, o, k], pos("n")));
                    }
                } else {
                    self.feed.remove(&id);
                }
                Vec::new()
            }
            Some(Message::Insert { id, values }) => {
                let Some(&([u, s, t, o, k], n)) = self.feed.get(&id) else { return Vec::new() };
                let text = |i: usize| values.get(i).cloned().flatten();
                let (Some(user_id), Some(seq), Some(tbl), Some(op), Some(keys)) =
                    (text(u), text(s).and_then(|v| v.parse::<i64>().ok()), text(t), text(o), text(k))
                else {
                    return Vec::new();
                };
                let n = n.and_then(text).and_then(|v| v.parse::<i64>().ok()).unwrap_or(1);
                let keys: Value = serde_json::from_str(&keys).unwrap_or(Value::Null);
                let each = match keys {
                    Value::Array(items) if n > 1 => items,
                    one => vec![one],
                };
                each.into_iter()
                    .zip(0..)
                    .map_while(|(keys, i)| {
                        let seq = seq.checked_add(i)?;
                        Some(FeedRow { user_id: user_id.clone(), seq, tbl: tbl.clone(), op: op.clone(), keys })
                    })
                    .collect()
            }
            Some(Message::Other) | None => Vec::new(),
        }
    }
}

/// Feed rows grouped as NOTIFY payloads are (one user, one table and operation, consecutive
/// seqs): (user id, the payload the relay's subscribers read).
pub fn payloads(rows: &[FeedRow]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let first = &rows[i];
        let mut j = i + 1;
        while j < rows.len()
            && rows[j].user_id == first.user_id
            && rows[j].tbl == first.tbl
            && rows[j].op == first.op
            && rows[j].seq == rows[j - 1].seq + 1
        {
            j += 1;
        }
        let payload = json!({
            "table": first.tbl, "op": first.op, "part": 1, "parts": 1,
            "seq_from": first.seq, "seq_to": rows[j - 1].seq,
            "rows": rows[i..j].iter().map(|r| r.keys.clone()).collect::<Vec<_>>(),
        });
        out.push((first.user_id.clone(), payload.to_string()));
        i = j;
    }
    out
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Creates the publication and the slot when they are missing.
async fn prepare(client: &tokio_postgres::Client, source: &ReplicationSource) -> Result<(), tokio_postgres::Error> {
    let published =
        client.query_opt("SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1", &[&source.publication]).await?;
    if published.is_none() {
        client
            .batch_execute(&format!(
                "CREATE PUBLICATION {} FOR TABLE health_rls.changes WITH (publish = 'insert')",
                quote_ident(&source.publication)
            ))
            .await?;
    }
    let slot =
        client.query_opt("SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1", &[&source.slot]).await?;
    if slot.is_none() {
        client
            .query_one("SELECT pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')", &[&source.slot])
            .await?;
    }
    Ok(())
}

/// How often, while changes flow, a running-transactions record is written to the WAL.
///
/// Every call of `pg_logical_slot_get_binary_changes` decodes the WAL again from the slot's
/// restart point, and that point moves only at a running-transactions record, which Postgres writes
/// by itself every 15 seconds. Under a steady write load each call would decode up to 15 s of WAL
/// (measured: commit → event p50 348 ms at 500 inserts/s); with a record every 100 ms it decodes
/// about 100 ms of it.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);

/// How this connection writes a running-transactions record: `pg_log_standby_snapshot()`
/// (PostgreSQL 16 and later, where the role may execute it), or else by creating and dropping a
/// temporary logical slot of its own (what a REPLICATION role may do on every version: creating a
/// logical slot writes one).
enum SnapshotWriter {
    Function,
    TemporarySlot(String),
}

impl SnapshotWriter {
    async fn for_connection(
        client: &tokio_postgres::Client,
        source: &ReplicationSource,
    ) -> Result<SnapshotWriter, tokio_postgres::Error> {
        let function: bool = client
            .query_one(
                "SELECT coalesce(pg_catalog.has_function_privilege(\
                   pg_catalog.to_regprocedure('pg_catalog.pg_log_standby_snapshot()'), 'EXECUTE'), false)",
                &[],
            )
            .await?
            .get(0);
        Ok(if function {
            SnapshotWriter::Function
        } else {
            SnapshotWriter::TemporarySlot(format!("{}_snapshot", source.slot))
        })
    }

    async fn write(&self, client: &tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
        match self {
            SnapshotWriter::Function => {
                client.query_one("SELECT pg_catalog.pg_log_standby_snapshot()", &[]).await?;
            }
            SnapshotWriter::TemporarySlot(name) => {
                client
                    .query_one("SELECT pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput', true)", &[name])
                    .await?;
                client.query_one("SELECT pg_catalog.pg_drop_replication_slot($1)", &[name]).await?;
            }
        }
        Ok(())
    }
}

/// Reads the slot for as long as the relay lives: reconnects (and re-creates a lost slot) after
/// an error, and tells every subscriber to read its feed then (changes may have been missed).
pub(crate) async fn run(relay: Weak<Relay>, source: ReplicationSource) {
    let mut told = false;
    loop {
        if relay.strong_count() == 0 {
            return;
        }
        match poll(&relay, &source).await {
            Ok(()) => return, // the relay is gone
            Err(e) => {
                if !told {
                    eprintln!("gateway: reading the change feed by logical replication failed: {e}; retrying");
                    told = true;
                }
                if let Some(r) = relay.upgrade() {
                    r.reconnects.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

async fn poll(relay: &Weak<Relay>, source: &ReplicationSource) -> Result<(), tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(&source.dsn, NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    prepare(&client, source).await?;
    let read = client
        .prepare(
            "SELECT data FROM pg_catalog.pg_logical_slot_get_binary_changes($1, NULL, 10000, \
             'proto_version', '1', 'publication_names', $2)",
        )
        .await?;
    let snapshot = SnapshotWriter::for_connection(&client, source).await?;
    // Subscribers may have missed changes while no one read the slot: they read their feed.
    match relay.upgrade() {
        Some(r) => r.catch_up_all(),
        None => return Ok(()),
    }
    let mut decoder = Decoder::default();
    let mut last_snapshot = Instant::now();
    loop {
        let rows = client.query(&read, &[&source.slot, &source.publication]).await?;
        let Some(r) = relay.upgrade() else { return Ok(()) };
        if rows.is_empty() {
            drop(r);
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        if last_snapshot.elapsed() >= SNAPSHOT_EVERY {
            snapshot.write(&client).await?;
            last_snapshot = Instant::now();
        }
        let feed: Vec<FeedRow> = rows.iter().flat_map(|row| decoder.rows(row.get::<_, &[u8]>(0))).collect();
        for (user, payload) in payloads(&feed) {
            r.dispatch(&user, payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn relation(id: u32, schema: &str, name: &str, cols: &[&str]) -> Vec<u8> {
        let mut m = vec![b'R'];
        m.extend(id.to_be_bytes());
        for s in [schema, name] {
            m.extend(s.as_bytes());
            m.push(0);
        }
        m.push(b'd');
        m.extend((cols.len() as u16).to_be_bytes());
        for c in cols {
            m.push(0);
            m.extend(c.as_bytes());
            m.push(0);
            m.extend(25u32.to_be_bytes());
            m.extend((-1i32).to_be_bytes());
        }
        m
    }

    fn insert(id: u32, values: &[Option<&str>]) -> Vec<u8> {
        let mut m = vec![b'I'];
        m.extend(id.to_be_bytes());
        m.push(b'N');
        m.extend((values.len() as u16).to_be_bytes());
        for v in values {
            match v {
                Some(t) => {
                    m.push(b't');
                    m.extend((t.len() as u32).to_be_bytes());
                    m.extend(t.as_bytes());
                }
                None => m.push(b'n'),
            }
        }
        m
    }

    const COLS: &[&str] = &["user_id", "seq", "tbl", "op", "keys", "at"];

    fn row(user: &str, seq: &str, op: &str, id: i64) -> Vec<u8> {
        let keys = format!("{{\"id\": {id}}}");
        insert(
            16400,
            &[Some(user), Some(seq), Some("public.health_metrics"), Some(op), Some(&keys), Some("2026-12-04")],
        )
    }

    #[test]
    fn feed_rows_from_pgoutput_messages() {
        let mut d = Decoder::default();
        assert_eq!(d.rows(&row("u1", "1", "INSERT", 7)), vec![], "an insert before its relation is unknown");
        assert_eq!(d.rows(&relation(16400, "health_rls", "changes", COLS)), vec![]);
        assert_eq!(d.rows(b"B\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x02\0\0\0\x03"), vec![]);
        let r = d.rows(&row("u1", "1", "INSERT", 7)).remove(0);
        assert_eq!((r.user_id.as_str(), r.seq, r.op.as_str(), r.keys.clone()), ("u1", 1, "INSERT", json!({"id": 7})));
        // Another table's relation under the same id replaces it: its inserts are not the feed's.
        d.rows(&relation(16400, "public", "other", COLS));
        assert_eq!(d.rows(&row("u1", "2", "INSERT", 8)), vec![]);
        assert_eq!(decode(&row("u1", "2", "INSERT", 8)[..9]), None, "cut short");
    }

    #[test]
    fn a_statements_row_of_several_gives_one_change_per_seq() {
        let mut d = Decoder::default();
        let cols = &["user_id", "seq", "tbl", "op", "keys", "at", "n"];
        d.rows(&relation(16401, "health_rls", "changes", cols));
        let keys = r#"[{"id": 7}, {"id": 8}, {"id": 9}]"#;
        let rows = d.rows(&insert(
            16401,
            &[
                Some("u1"),
                Some("5"),
                Some("public.health_metrics"),
                Some("INSERT"),
                Some(keys),
                Some("2026-12-05"),
                Some("3"),
            ],
        ));
        let got: Vec<(i64, Value)> = rows.iter().map(|r| (r.seq, r.keys.clone())).collect();
        assert_eq!(got, vec![(5, json!({"id": 7})), (6, json!({"id": 8})), (7, json!({"id": 9}))]);
        // One row (n = 1) is its keys, even when they are an array (a table's key could be one).
        let one = d.rows(&insert(
            16401,
            &[Some("u1"), Some("8"), Some("public.t"), Some("DELETE"), Some("[1, 2]"), Some("2026-12-05"), Some("1")],
        ));
        assert_eq!(one.iter().map(|r| (r.seq, r.keys.clone())).collect::<Vec<_>>(), vec![(8, json!([1, 2]))]);
    }

    #[test]
    fn runs_of_one_user_table_and_op_become_one_payload() {
        let r = |u: &str, seq: i64, op: &str| FeedRow {
            user_id: u.into(),
            seq,
            tbl: "public.m".into(),
            op: op.into(),
            keys: json!({"id": seq}),
        };
        let p = payloads(&[r("a", 1, "INSERT"), r("a", 2, "INSERT"), r("b", 1, "INSERT"), r("a", 3, "DELETE")]);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].0, "a");
        let v: Value = serde_json::from_str(&p[0].1).unwrap();
        assert_eq!((v["seq_from"].as_i64(), v["seq_to"].as_i64()), (Some(1), Some(2)));
        assert_eq!(v["rows"], json!([{"id": 1}, {"id": 2}]));
        assert_eq!(serde_json::from_str::<Value>(&p[2].1).unwrap()["op"], "DELETE");
    }

    proptest! {
        #[test]
        fn no_message_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut d = Decoder::default();
            d.rows(&relation(1, "health_rls", "changes", COLS));
            let _ = d.rows(&data);
            let mut tagged = vec![b'I'];
            tagged.extend(&data);
            let _ = d.rows(&tagged);
        }
    }
}
