//! `/realtime/v1/websocket`: Supabase Realtime's `postgres_changes` for supabase-js
//! (docs/supabase-js.md), served from the relay.
//!
//! What a socket hears is decided by the database, never by the client's filter: a joined
//! channel follows the change feed of the user its `access_token` authenticates (the relay's
//! one LISTEN connection wakes it; gaps are filled from `health_rls.changes_since`), and each
//! change's `record` is read through RLS as that user, in a transaction of its own, when the
//! event is sent. A filter naming another user's id can only narrow the user's own changes to
//! nothing. `old_record` carries the row's keys (what the feed keeps) and its owner column.
//! A channel closes with a `system` error when its token expires, when the token no longer
//! authenticates, or within half a second of its session being signed out or revoked.
use crate::gateway::Gateway;
use crate::phoenix::{self, Binding, Change, Frame};
use crate::relay::{now, Grant, Msg, Relay};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// The realtime service: the relay plus what it has learned of the tables changes name.
pub struct Realtime {
    relay: Arc<Relay>,
    tables: Mutex<HashMap<String, Arc<TableInfo>>>,
}

/// A table's shape, from the catalog (identifiers only; quoted by PostgreSQL's `quote_ident`).
struct TableInfo {
    /// `schema.table`, quoted, for SQL text.
    rel: String,
    /// `[{name, type}]` as realtime-js reads them (type = the type's name, e.g. `int8`).
    columns: Value,
    /// Primary key columns (names as stored), and every column name.
    primary_key: Vec<String>,
    names: HashSet<String>,
    /// The owner column of the registry (`health_rls.managed_tables.realtime_column`).
    owner_column: Option<String>,
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

impl Realtime {
    pub fn new(relay: Arc<Relay>) -> Arc<Realtime> {
        Arc::new(Realtime { relay, tables: Mutex::new(HashMap::new()) })
    }

    /// The shape of `schema.table` (as the change feed names it), read once.
    async fn table_info(&self, tbl: &str) -> Option<Arc<TableInfo>> {
        if let Some(t) = self.tables.lock().unwrap().get(tbl) {
            return Some(t.clone());
        }
        let (schema, table) = tbl.split_once('.')?;
        let guard = self.relay.query_client().await.ok()?;
        let row = guard
            .as_ref()?
            .query_opt(
                "SELECT format('%I.%I', n.nspname, c.relname),
                        (SELECT coalesce(json_agg(json_build_object('name', a.attname, 'type', t.typname) ORDER BY a.attnum), '[]')
                           FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                          WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
                        (SELECT coalesce(array_agg(a.attname::text ORDER BY k.i), '{}')
                           FROM pg_index x CROSS JOIN unnest(x.indkey) WITH ORDINALITY AS k(attnum, i)
                           JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                          WHERE x.indrelid = c.oid AND x.indisprimary),
                        health_rls.realtime_column(c.oid::regclass)::text
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = $1 AND c.relname = $2",
                &[&schema, &table],
            )
            .await
            .ok()??;
        let columns: Value = row.get(1);
        let names = columns
            .as_array()
            .map(|cs| cs.iter().filter_map(|c| c["name"].as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let info =
            Arc::new(TableInfo { rel: row.get(0), columns, primary_key: row.get(2), names, owner_column: row.get(3) });
        self.tables.lock().unwrap().insert(tbl.to_string(), info.clone());
        Some(info)
    }

    /// The rows `keys` name, read as the token's user through RLS (None: not visible, or gone).
    /// Err(Some(reason)) when the token no longer authenticates; Err(None) when the database
    /// could not answer (the caller retries from the feed).
    async fn records(
        &self,
        token: &str,
        info: &TableInfo,
        keys: &[Value],
    ) -> Result<Vec<Option<Value>>, Option<String>> {
        let Some(first) = keys.first().and_then(Value::as_object) else { return Ok(vec![None; keys.len()]) };
        // Join on the primary key when the keys carry it, else on every key column the table has.
        let (cols, op): (Vec<&String>, &str) =
            if !info.primary_key.is_empty() && info.primary_key.iter().all(|c| first.contains_key(c)) {
                (info.primary_key.iter().collect(), "=")
            } else {
                (first.keys().filter(|k| info.names.contains(*k)).collect(), "IS NOT DISTINCT FROM")
            };
        if cols.is_empty() || info.names.contains("ordinality") {
            return Ok(vec![None; keys.len()]);
        }
        let on = cols.iter().map(|c| format!("t.{q} {op} k.{q}", q = quote_ident(c))).collect::<Vec<_>>().join(" AND ");
        let sql = format!(
            "SELECT k.ordinality, to_jsonb(t) FROM ROWS FROM (jsonb_populate_recordset(NULL::{rel}, $1)) \
             WITH ORDINALITY AS k JOIN {rel} t ON {on}",
            rel = info.rel
        );
        let guard = self.relay.query_client().await.map_err(|_| None)?;
        let client = guard.as_ref().ok_or(None)?;
        let keys_json = Value::Array(keys.to_vec());
        let result = async {
            client.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await?;
            client.query_one("SELECT auth.authenticate($1)", &[&token]).await?;
            let rows = client.query(&sql, &[&keys_json]).await?;
            client.batch_execute("COMMIT").await?;
            Ok::<_, tokio_postgres::Error>(rows)
        }
        .await;
        match result {
            Ok(rows) => {
                let mut out = vec![None; keys.len()];
                for r in rows {
                    let i: i64 = r.get(0);
                    if let Some(slot) = usize::try_from(i - 1).ok().and_then(|i| out.get_mut(i)) {
                        *slot = Some(r.get::<_, Value>(1));
                    }
                }
                Ok(out)
            }
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                let refused = e.code().is_some_and(|c| c.code().starts_with("28"));
                Err(refused.then(|| "the access token no longer authenticates".to_string()))
            }
        }
    }
}

/// `GET /realtime/v1/websocket?apikey=…&vsn=2.0.0` (the publishable key is checked before this).
pub async fn websocket(State(g): State<Arc<Gateway>>, ws: WebSocketUpgrade) -> Response {
    let rt = g.realtime.clone();
    // Small buffers: an idle socket should cost kilobytes (frames from realtime-js are small).
    ws.read_buffer_size(4096).write_buffer_size(0).max_message_size(1 << 20).on_upgrade(move |socket| serve(rt, socket))
}

/// What the socket tells a joined channel's follower.
enum Control {
    Token(String),
}

async fn serve(rt: Arc<Realtime>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<String>(64);
    // Joined topics; a follower for those with postgres_changes bindings (dropping it ends it).
    let mut topics: HashMap<String, Option<mpsc::Sender<Control>>> = HashMap::new();
    let mut next_id = 0u64;
    loop {
        let outgoing = tokio::select! {
            incoming = stream.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(frame) = phoenix::decode(text.as_str()) else { continue };
                handle(&rt, frame, &mut topics, &out_tx, &mut next_id).await
            }
            Some(out) = out_rx.recv() => vec![out],
        };
        for text in outgoing {
            if sink.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
    }
}

/// One frame from the client; returns the frames to send back at once.
async fn handle(
    rt: &Arc<Realtime>,
    frame: Frame,
    topics: &mut HashMap<String, Option<mpsc::Sender<Control>>>,
    out: &mpsc::Sender<String>,
    next_id: &mut u64,
) -> Vec<String> {
    match (frame.topic.as_str(), frame.event.as_str()) {
        ("phoenix", "heartbeat") => vec![phoenix::reply_ok(&frame, json!({}))],
        (_, "phx_join") => join(rt, frame, topics, out, next_id).await,
        (_, "phx_leave") => {
            topics.remove(&frame.topic);
            vec![phoenix::reply_ok(&frame, json!({}))]
        }
        (_, "access_token") => {
            if let (Some(Some(ctl)), Some(token)) =
                (topics.get(&frame.topic), frame.payload.get("access_token").and_then(Value::as_str))
            {
                let _ = ctl.send(Control::Token(token.to_string())).await;
            }
            Vec::new()
        }
        // broadcast and presence are accepted and stay silent (docs/supabase-js.md).
        _ => Vec::new(),
    }
}

/// Whether `token` looks like a user's JWT (not absent, not the publishable key).
fn user_token(payload: &Value) -> Option<&str> {
    payload.get("access_token").and_then(Value::as_str).filter(|t| t.split('.').count() == 3)
}

async fn join(
    rt: &Arc<Realtime>,
    frame: Frame,
    topics: &mut HashMap<String, Option<mpsc::Sender<Control>>>,
    out: &mpsc::Sender<String>,
    next_id: &mut u64,
) -> Vec<String> {
    topics.remove(&frame.topic); // a rejoin replaces the channel
    let bindings = match phoenix::bindings(&frame.payload, next_id) {
        Ok(b) => b,
        Err(why) => return vec![phoenix::reply_error(&frame, &why)],
    };
    let echo: Vec<Value> = bindings.iter().map(Binding::echo).collect();
    if bindings.is_empty() {
        topics.insert(frame.topic.clone(), None);
        return vec![phoenix::reply_ok(&frame, json!({"postgres_changes": echo}))];
    }
    let Some(token) = user_token(&frame.payload) else {
        return vec![phoenix::reply_error(&frame, "postgres_changes needs a signed-in user's access_token")];
    };
    let Some(grant) = rt.relay.grant(token).await else {
        return vec![phoenix::reply_error(&frame, "Invalid token: it is expired, revoked or not ours")];
    };
    // LISTEN first, then read where the feed is: nothing committed in between is lost.
    let key = rt.relay.key_of(&grant);
    let Ok(rx) = rt.relay.subscribe(&key).await else {
        return vec![phoenix::reply_error(&frame, "realtime is unavailable: the database cannot be reached")];
    };
    if let Some(s) = &grant.session {
        rt.relay.hold_session(s);
    }
    let sent = rt.relay.last_seq(token).await.unwrap_or(0);
    let (ctl_tx, ctl_rx) = mpsc::channel(4);
    let follower = Follower {
        rt: rt.clone(),
        key,
        token: token.to_string(),
        grant,
        rx,
        revoked: rt.relay.revoked_sessions(),
        sent,
        bindings,
        join_ref: frame.join_ref.clone(),
        topic: frame.topic.clone(),
        out: out.clone(),
    };
    tokio::spawn(follower.run(ctl_rx));
    topics.insert(frame.topic.clone(), Some(ctl_tx));
    vec![
        phoenix::reply_ok(&frame, json!({"postgres_changes": echo})),
        phoenix::system(frame.join_ref.as_deref(), &frame.topic, "postgres_changes", "ok", "Subscribed to PostgreSQL"),
    ]
}

/// A joined channel: follows its user's change feed and sends what its bindings hear.
struct Follower {
    rt: Arc<Realtime>,
    /// What the relay files this channel's user under.
    key: String,
    token: String,
    grant: Grant,
    rx: broadcast::Receiver<Msg>,
    revoked: watch::Receiver<HashSet<String>>,
    /// The last seq of the feed this channel has handled.
    sent: i64,
    bindings: Vec<Binding>,
    join_ref: Option<String>,
    topic: String,
    out: mpsc::Sender<String>,
}

/// Why a channel stops: the socket left (None) or the server closes it with a reason.
type Stop = Option<String>;

impl Follower {
    async fn run(mut self, mut ctl: mpsc::Receiver<Control>) {
        let stop: Stop = loop {
            let until_exp = Duration::from_secs(u64::try_from(self.grant.exp - now()).unwrap_or(0));
            let step = tokio::select! {
                msg = self.rx.recv() => match msg {
                    Ok(Msg::Change(payload)) => self.live(&payload).await,
                    Ok(Msg::CatchUp) | Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up().await,
                    // postgres_changes are the subscriber's own rows (RLS): shares are not among them.
                    Ok(Msg::Shared { .. }) => Ok(()),
                    Err(broadcast::error::RecvError::Closed) => Err(None),
                },
                c = ctl.recv() => match c {
                    Some(Control::Token(t)) => self.refresh(t).await,
                    None => Err(None),
                },
                _ = tokio::time::sleep(until_exp) => Err(Some("Token has expired".to_string())),
                changed = self.revoked.changed() => match changed {
                    Err(_) => Err(None),
                    Ok(()) if self.grant.session.as_ref().is_some_and(|s| self.revoked.borrow().contains(s)) =>
                        Err(Some("the session was signed out or revoked".to_string())),
                    Ok(()) => Ok(()),
                },
            };
            if let Err(stop) = step {
                break stop;
            }
        };
        if let Some(reason) = stop {
            let _ =
                self.out.send(phoenix::system(self.join_ref.as_deref(), &self.topic, "system", "error", &reason)).await;
            let _ = self.out.send(phoenix::close(self.join_ref.as_deref(), &self.topic)).await;
        }
        let key = std::mem::take(&mut self.key);
        self.rt.relay.clone().unsubscribe(key, self.grant.session.take()).await;
    }

    /// The client's refreshed token: it must authenticate the same user.
    async fn refresh(&mut self, token: String) -> Result<(), Stop> {
        if token == self.token {
            return Ok(());
        }
        let Some(grant) = self.rt.relay.grant(&token).await else {
            return Err(Some("Invalid token: it is expired, revoked or not ours".into()));
        };
        if grant.channel != self.grant.channel {
            return Err(Some("the new access token is another user's".into()));
        }
        if let Some(s) = &grant.session {
            self.rt.relay.hold_session(s);
        }
        let old = std::mem::replace(&mut self.grant, grant);
        // Release the old session's count (the channel stays LISTENed: same user).
        self.rt.relay.release_session(old.session);
        self.token = token;
        Ok(())
    }

    /// A live notification: handled when it continues the feed, preceded by the feed when seqs
    /// are missing, dropped when already handled.
    async fn live(&mut self, payload: &str) -> Result<(), Stop> {
        let v: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
        let (Some(from), Some(to)) = (v["seq_from"].as_i64(), v["seq_to"].as_i64()) else { return Ok(()) };
        if to <= self.sent {
            return Ok(());
        }
        if from > self.sent + 1 {
            return self.catch_up().await;
        }
        let (Some(tbl), Some(op), Some(rows)) = (v["table"].as_str(), v["op"].as_str(), v["rows"].as_array()) else {
            return Ok(());
        };
        if self.deliver(tbl, op, rows, None).await? {
            self.sent = to;
        }
        Ok(())
    }

    /// Everything of the feed after `sent`, in runs of one table and operation.
    async fn catch_up(&mut self) -> Result<(), Stop> {
        loop {
            let rows = match self.rt.relay.changes_since(&self.token, self.sent).await {
                Ok(rows) => rows,
                Err(Some(resync)) => return Err(Some(resync)),
                Err(None) => return Ok(()), // the database is away: the next CatchUp retries
            };
            let full = rows.len() == 1000;
            let mut i = 0;
            while i < rows.len() {
                let (tbl, op) = (&rows[i].1, &rows[i].2);
                let run_end = rows[i..].iter().position(|r| &r.1 != tbl || &r.2 != op).map_or(rows.len(), |n| i + n);
                let keys: Vec<Value> = rows[i..run_end].iter().map(|r| r.3.clone()).collect();
                if !self.deliver(tbl, op, &keys, None).await? {
                    return Ok(());
                }
                self.sent = rows[run_end - 1].0;
                i = run_end;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Sends the changes of one statement to the bindings that hear them. Ok(false): the rows
    /// could not be read now (the feed is read again later).
    async fn deliver(&mut self, tbl: &str, op: &str, keys: &[Value], at: Option<&str>) -> Result<bool, Stop> {
        let Some((schema, table)) = tbl.split_once('.') else { return Ok(true) };
        if !self.bindings.iter().any(|b| b.hears(schema, table, op)) {
            return Ok(true);
        }
        let Some(info) = self.rt.table_info(tbl).await else { return Ok(false) };
        let records = if op == "DELETE" {
            vec![None; keys.len()]
        } else {
            match self.rt.records(&self.token, &info, keys).await {
                Ok(r) => r,
                Err(None) => return Ok(false),
                Err(stop) => return Err(stop),
            }
        };
        let commit_timestamp = at.map_or_else(|| chrono::Utc::now().to_rfc3339(), str::to_string);
        for (key, record) in keys.iter().zip(&records) {
            let mut old = key.as_object().cloned().unwrap_or_default();
            if let Some(owner) = &info.owner_column {
                old.insert(owner.clone(), json!(self.grant.uid));
            }
            let old = Value::Object(old);
            let gone = op != "DELETE" && record.is_none();
            let shown = match (op, record) {
                ("DELETE", _) => None,
                (_, Some(r)) => Some(r.clone()),
                (_, None) => Some(old.clone()), // no longer visible: its keys, with an error
            };
            let target: &Map<String, Value> = shown.as_ref().unwrap_or(&old).as_object().unwrap_or(&EMPTY);
            let ids: Vec<u64> = self
                .bindings
                .iter()
                .filter(|b| b.hears(schema, table, op) && b.filter.as_ref().is_none_or(|f| f.matches(target)))
                .map(|b| b.id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let change = Change {
                schema,
                table,
                op,
                commit_timestamp: &commit_timestamp,
                columns: &info.columns,
                record: shown.as_ref(),
                old_record: (op != "INSERT").then_some(&old),
                errors: gone.then(|| vec!["the row was changed or deleted before it could be read".to_string()]),
            };
            let text = phoenix::change_event(self.join_ref.as_deref(), &self.topic, &ids, &change);
            if self.out.send(text).await.is_err() {
                return Err(None); // the socket is gone
            }
        }
        Ok(true)
    }
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
