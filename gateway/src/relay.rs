//! The server side of realtime, shaped for scale and for phones that go offline
//! (docs/realtime.md).
//!
//! On PostgreSQL 15 every NOTIFY commit signals every listening backend, so one database
//! connection per app user collapses throughput. The relay holds ONE listening connection,
//! LISTENs on the channel of each user it serves (once, however many subscribers that user
//! has) and fans events out over Server-Sent Events. Identity is the database's: a subscriber's
//! bearer token goes through `auth.authenticate`, and `auth.my_channel()` names its channel.
//!
//! Nothing is lost: every event carries the seq of the per-user change feed as its SSE `id:`.
//! A subscriber that reconnects with `Last-Event-ID` first gets what it missed from
//! `health_rls.changes_since`, then live events; a live event that does not continue the last
//! seq sent (a notification lost while the relay was reconnecting to a restarted database) is
//! filled in from the feed first; duplicates are dropped. A subscriber too slow for its buffer is
//! sent `event: resync` naming the seq to resume after, and its stream ends (EventSource
//! reconnects with Last-Event-ID and catches up). A stream ends at its token's `exp` and within
//! half a second of its session's revocation.
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio_postgres::{AsyncMessage, Client, NoTls};

/// What the listener hands each user's subscribers.
#[derive(Clone, Debug)]
pub(crate) enum Msg {
    /// A notification payload from the database.
    Change(String),
    /// Notifications may have been lost (the relay reconnected): read the feed.
    CatchUp,
    /// Replicating: a change of `owner`, who shares with this user (as this user's shares said a
    /// moment ago). Sent only with the rows the database, asked as this user, says it may see.
    Shared { owner: String, payload: String },
}

/// Replicating: whom each user streaming `/events` receives shares from (its own
/// `health.shares()`, re-read every `SHARES_EVERY`), so that an owner's change from the feed
/// also goes to them. Only a list of whom to ask: each such change is checked as the grantee
/// (`health.shared_keys`) before it is sent, so a revoked share is never heard from again.
#[derive(Default)]
struct Grantors {
    grantees: HashMap<String, Grantee>,
    /// owner → users with a stream who receive a share from it.
    by_owner: HashMap<String, HashSet<String>>,
}

struct Grantee {
    streams: usize,
    /// The token of its streams that expires last (what the relay asks the database with).
    token: String,
    exp: i64,
    owners: HashSet<String>,
}

impl Grantors {
    /// A stream of `user` opened with `token`.
    fn hold(&mut self, user: &str, token: &str, exp: i64) {
        let g = self.grantees.entry(user.to_string()).or_insert_with(|| Grantee {
            streams: 0,
            token: token.to_string(),
            exp,
            owners: HashSet::new(),
        });
        g.streams += 1;
        if exp > g.exp {
            (g.token, g.exp) = (token.to_string(), exp);
        }
    }

    /// A stream of `user` ended; its last takes the user out of every owner's list.
    fn release(&mut self, user: &str) {
        let last = self.grantees.get_mut(user).is_some_and(|g| {
            g.streams -= 1;
            g.streams == 0
        });
        if last {
            self.set_owners(user, HashSet::new());
            self.grantees.remove(user);
        }
    }

    /// What `user`'s shares say now (ignored when its streams ended meanwhile).
    fn set_owners(&mut self, user: &str, owners: HashSet<String>) {
        let Some(g) = self.grantees.get_mut(user) else { return };
        for gone in g.owners.difference(&owners) {
            if let Some(users) = self.by_owner.get_mut(gone) {
                users.remove(user);
                if users.is_empty() {
                    self.by_owner.remove(gone);
                }
            }
        }
        for new in owners.difference(&g.owners) {
            self.by_owner.entry(new.clone()).or_default().insert(user.to_string());
        }
        g.owners = owners;
    }

    /// Users to ask about `owner`'s change.
    fn of_owner(&self, owner: &str) -> Vec<String> {
        self.by_owner.get(owner).map(|u| u.iter().cloned().collect()).unwrap_or_default()
    }

    /// (user, token) of the users whose shares are to be re-read now: at most `max` of those
    /// whose token is still valid, the next ones after `after` in user order (round robin).
    fn to_refresh(&self, now: i64, after: &str, max: usize) -> Vec<(String, String)> {
        let mut valid: Vec<(&String, &Grantee)> = self.grantees.iter().filter(|(_, g)| g.exp > now).collect();
        valid.sort_by(|a, b| a.0.cmp(b.0));
        let start = valid.iter().position(|(u, _)| u.as_str() > after).unwrap_or(0);
        valid
            .iter()
            .cycle()
            .skip(start)
            .take(max.min(valid.len()))
            .map(|(u, g)| ((*u).clone(), g.token.clone()))
            .collect()
    }
}

/// How often the relay re-reads shares of users streaming `/events` (replicating), and of how
/// many at most each time (one transaction on the query connection each): a share given while a
/// grantee's stream is open is heard within 2 s with up to 100 streaming users, within
/// users / 50 s with more (a stream opened after the share hears it at once).
const SHARES_EVERY: Duration = Duration::from_secs(2);
const SHARES_PER_ROUND: usize = 100;

/// One user's channel: how many subscribers hold it, and where its events go.
struct Channel {
    subscribers: usize,
    events: broadcast::Sender<Msg>,
}

pub struct Relay {
    dsn: String,
    /// Where new changes are heard of: NOTIFY (None) or logical replication of the change feed.
    replication: Option<crate::replication::ReplicationSource>,
    /// Verifies tokens and reads the change feed (one transaction at a time).
    queries: tokio::sync::Mutex<Option<Client>>,
    /// The single LISTEN connection (None while reconnecting).
    listener: tokio::sync::Mutex<Option<Client>>,
    channels: Mutex<HashMap<String, Channel>>,
    /// Replicating: who receives shares from whom (`Grantors`).
    grantors: Mutex<Grantors>,
    /// Sessions of live streams, and those the database says are revoked.
    sessions: Mutex<HashMap<String, usize>>,
    revoked: watch::Sender<HashSet<String>>,
    /// Events a subscriber may fall behind before it is told to resync.
    buffer: usize,
    pub forwarded: AtomicU64,
    pub reconnects: AtomicU64,
}

/// What a verified token gives a subscription.
pub(crate) struct Grant {
    pub channel: String,
    pub exp: i64,
    pub session: Option<String>,
    pub uid: String,
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

async fn open(
    dsn: &str,
) -> Result<
    (Client, tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>),
    tokio_postgres::Error,
> {
    tokio_postgres::connect(dsn, NoTls).await
}

impl Relay {
    /// A relay whose subscribers may fall 128 events behind: the ring is per user with a
    /// subscriber (~7 KB), and a subscriber further behind catches up from the change feed.
    pub async fn connect(dsn: &str) -> Result<Arc<Relay>, tokio_postgres::Error> {
        Self::with_buffer(dsn, 128).await
    }

    /// A relay whose subscribers may fall `buffer` events behind before they must resync.
    pub async fn with_buffer(dsn: &str, buffer: usize) -> Result<Arc<Relay>, tokio_postgres::Error> {
        Self::with_source(dsn, buffer, None).await
    }

    /// A relay that hears of new changes by logical replication of the change feed (`source`)
    /// instead of NOTIFY; subscribers are served exactly as with NOTIFY.
    pub async fn replicating(
        dsn: &str,
        source: crate::replication::ReplicationSource,
    ) -> Result<Arc<Relay>, tokio_postgres::Error> {
        Self::with_source(dsn, 128, Some(source)).await
    }

    async fn with_source(
        dsn: &str,
        buffer: usize,
        replication: Option<crate::replication::ReplicationSource>,
    ) -> Result<Arc<Relay>, tokio_postgres::Error> {
        let relay = Arc::new(Relay {
            dsn: dsn.to_string(),
            replication: replication.clone(),
            queries: tokio::sync::Mutex::new(None),
            listener: tokio::sync::Mutex::new(None),
            channels: Mutex::new(HashMap::new()),
            grantors: Mutex::new(Grantors::default()),
            sessions: Mutex::new(HashMap::new()),
            revoked: watch::channel(HashSet::new()).0,
            buffer,
            forwarded: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
        });
        drop(relay.query_client().await?);
        match replication {
            None => {
                let ended = relay.connect_listener().await?;
                tokio::spawn(supervise_listener(Arc::downgrade(&relay), ended));
            }
            Some(source) => {
                tokio::spawn(crate::replication::run(Arc::downgrade(&relay), source));
                tokio::spawn(watch_shares(Arc::downgrade(&relay)));
            }
        }
        let weak = Arc::downgrade(&relay);
        tokio::spawn(async move { watch_sessions(weak).await });
        Ok(relay)
    }

    /// The query connection, reconnected when the database went away.
    pub(crate) async fn query_client(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, tokio_postgres::Error> {
        let mut guard = self.queries.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            let (client, conn) = open(&self.dsn).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            *guard = Some(client);
        }
        Ok(guard)
    }

    /// Connect the LISTEN connection, LISTEN on every channel in use, forward notifications, and
    /// tell every subscriber to read the feed (notifications committed while no connection was
    /// listening are only there). The receiver fires when the connection ends.
    async fn connect_listener(self: &Arc<Self>) -> Result<tokio::sync::oneshot::Receiver<()>, tokio_postgres::Error> {
        let (client, mut conn) = open(&self.dsn).await?;
        let weak = Arc::downgrade(self);
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            while let Some(msg) = futures_util::future::poll_fn(|cx| conn.poll_message(cx)).await {
                let n = match msg {
                    Ok(AsyncMessage::Notification(n)) => n,
                    Ok(_) => continue,
                    Err(_) => break,
                };
                let Some(relay) = weak.upgrade() else { return };
                let sender = relay.channels.lock().unwrap().get(n.channel()).map(|c| c.events.clone());
                if let Some(sender) = sender {
                    if sender.send(Msg::Change(n.payload().to_string())).is_ok() {
                        relay.forwarded.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let _ = ended_tx.send(());
        });
        let channels: Vec<String> = self.channels.lock().unwrap().keys().cloned().collect();
        for ch in &channels {
            client.batch_execute(&format!("LISTEN {}", quote_ident(ch))).await?;
        }
        *self.listener.lock().await = Some(client);
        let senders: Vec<broadcast::Sender<Msg>> =
            self.channels.lock().unwrap().values().map(|c| c.events.clone()).collect();
        for s in senders {
            let _ = s.send(Msg::CatchUp);
        }
        Ok(ended_rx)
    }

    /// `sql` with `params` as the token's user, in a transaction of its own on the query
    /// connection: `begin` (BEGIN, or BEGIN with a SET LOCAL ROLE of ours), `auth.authenticate`,
    /// the statement, COMMIT — or ROLLBACK after any error. None when there is no connection.
    async fn query_as(
        &self,
        token: &str,
        begin: &'static str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Option<Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>> {
        let guard = self.query_client().await.ok()?;
        let client = guard.as_ref()?;
        let result = async {
            client.batch_execute(begin).await?;
            client.query_one("SELECT auth.authenticate($1)", &[&token]).await?;
            let rows = client.query(sql, params).await?;
            client.batch_execute("COMMIT").await?;
            Ok(rows)
        }
        .await;
        if result.is_err() {
            let _ = client.batch_execute("ROLLBACK").await;
        }
        Some(result)
    }

    /// What the token grants, or None when the database refuses it.
    pub(crate) async fn grant(&self, token: &str) -> Option<Grant> {
        // The session is watched only when it is one of ours, live now (an external issuer's
        // token may carry a session_id of its own: nothing to watch).
        let rows = self
            .query_as(
                token,
                "BEGIN",
                "SELECT auth.my_channel(), (auth.jwt()->>'exp')::float8::int8, \
                        (SELECT l::text FROM auth.live_sessions(ARRAY[s.id]) l), auth.uid()::text \
                   FROM (SELECT CASE WHEN auth.jwt()->>'session_id' ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' \
                                     THEN (auth.jwt()->>'session_id')::uuid END AS id) s",
                &[],
            )
            .await?
            .ok()?;
        let row = rows.first()?;
        Some(Grant {
            channel: row.get::<_, Option<String>>(0)?,
            exp: row.get(1),
            session: row.get(2),
            uid: row.get::<_, Option<String>>(3)?,
        })
    }

    /// Up to 1000 of the token's user's changes after `after`, as the user (RLS and the
    /// function's own checks apply). Err(Some(text)) carries a "resync needed" refusal.
    pub(crate) async fn changes_since(
        &self,
        token: &str,
        after: i64,
    ) -> Result<Vec<(i64, String, String, Value)>, Option<String>> {
        let result = self
            .query_as(token, "BEGIN", "SELECT seq, tbl, op, keys FROM health_rls.changes_since($1, 1000)", &[&after])
            .await
            .ok_or(None)?;
        match result {
            Ok(rows) => Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect()),
            Err(e) => {
                let resync = e.code().is_some_and(|c| c.code() == "55000");
                Err(resync.then(|| e.as_db_error().map(|d| d.message().to_string()).unwrap_or_default()))
            }
        }
    }

    /// The last seq of the token's user (where a new stream without Last-Event-ID starts).
    pub(crate) async fn last_seq(&self, token: &str) -> Option<i64> {
        let rows = self
            .query_as(
                token,
                "BEGIN; SET LOCAL ROLE authenticated",
                "SELECT coalesce((SELECT seq + n - 1 FROM health_rls.changes ORDER BY seq DESC LIMIT 1), 0)::int8",
                &[],
            )
            .await?
            .ok()?;
        Some(rows.first()?.get(0))
    }

    /// What a grant's subscriptions are filed under: its NOTIFY channel, or (replicating) its user.
    pub(crate) fn key_of(&self, grant: &Grant) -> String {
        if self.replication.is_some() {
            grant.uid.clone()
        } else {
            grant.channel.clone()
        }
    }

    /// A change of the user (replicating): to that user's subscribers, if any, and to the
    /// streams of users it shares with (each checks the rows as its user before sending them).
    pub(crate) fn dispatch(&self, user: &str, payload: String) {
        let grantees = self.grantors.lock().unwrap().of_owner(user);
        let channels = self.channels.lock().unwrap();
        for grantee in grantees {
            if let Some(c) = channels.get(&grantee) {
                let _ = c.events.send(Msg::Shared { owner: user.to_string(), payload: payload.clone() });
            }
        }
        if let Some(c) = channels.get(user) {
            if c.events.send(Msg::Change(payload)).is_ok() {
                self.forwarded.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The users who share with the token's user now (its own `health.shares()`: received and
    /// active), or None when the database cannot be asked.
    async fn owners_sharing_with(&self, token: &str) -> Option<HashSet<String>> {
        let rows = self
            .query_as(
                token,
                "BEGIN",
                "SELECT DISTINCT s->>'owner_id' FROM health.shares() s \
                  WHERE s->>'direction' = 'received' AND (s->>'active')::boolean",
                &[],
            )
            .await?
            .ok()?;
        Some(rows.iter().filter_map(|r| r.get::<_, Option<String>>(0)).collect())
    }

    /// Of `rows` (the keys of `owner`'s change), those the token's user may see now under its
    /// shares (`health.shared_keys`, asked as that user); None when the database cannot be asked.
    async fn shared_keys(&self, token: &str, owner: &str, rows: &Value) -> Option<Vec<Value>> {
        let found = self
            .query_as(token, "BEGIN", "SELECT health.shared_keys($1::text::uuid, $2::jsonb)", &[&owner, rows])
            .await?
            .ok()?;
        match found.first()?.get::<_, Value>(0) {
            Value::Array(visible) => Some(visible),
            _ => None,
        }
    }

    /// Replicating: a stream of `user` opened; its shares are read before it starts.
    async fn hold_grantee(&self, user: &str, token: &str, exp: i64) {
        self.grantors.lock().unwrap().hold(user, token, exp);
        if let Some(owners) = self.owners_sharing_with(token).await {
            self.grantors.lock().unwrap().set_owners(user, owners);
        }
    }

    /// Every subscriber reads its feed (changes may have gone unheard).
    pub(crate) fn catch_up_all(&self) {
        let senders: Vec<broadcast::Sender<Msg>> =
            self.channels.lock().unwrap().values().map(|c| c.events.clone()).collect();
        for s in senders {
            let _ = s.send(Msg::CatchUp);
        }
    }

    pub(crate) async fn subscribe(
        self: &Arc<Self>,
        channel: &str,
    ) -> Result<broadcast::Receiver<Msg>, tokio_postgres::Error> {
        let (rx, first) = {
            let mut channels = self.channels.lock().unwrap();
            let entry = channels
                .entry(channel.to_string())
                .or_insert_with(|| Channel { subscribers: 0, events: broadcast::channel(self.buffer).0 });
            entry.subscribers += 1;
            (entry.events.subscribe(), entry.subscribers == 1)
        };
        if first && self.replication.is_none() {
            if let Some(l) = self.listener.lock().await.as_ref() {
                l.batch_execute(&format!("LISTEN {}", quote_ident(channel))).await?;
            }
            // (While reconnecting, the new connection LISTENs on every channel in the map.)
        }
        Ok(rx)
    }

    /// A stream of `session` ended (the count `hold_session` took).
    pub(crate) fn release_session(&self, session: Option<String>) {
        if let Some(s) = session {
            let mut sessions = self.sessions.lock().unwrap();
            if let Some(n) = sessions.get_mut(&s) {
                *n -= 1;
                if *n == 0 {
                    sessions.remove(&s);
                }
            }
        }
    }

    pub(crate) async fn unsubscribe(self: Arc<Self>, channel: String, session: Option<String>) {
        self.release_session(session);
        let last = {
            let mut channels = self.channels.lock().unwrap();
            match channels.get_mut(&channel) {
                Some(c) if c.subscribers > 1 => {
                    c.subscribers -= 1;
                    false
                }
                Some(_) => {
                    channels.remove(&channel);
                    true
                }
                None => false,
            }
        };
        if last && self.replication.is_none() {
            if let Some(l) = self.listener.lock().await.as_ref() {
                let _ = l.batch_execute(&format!("UNLISTEN {}", quote_ident(&channel))).await;
            }
        }
    }

    /// Count a live stream of `session`, so the watcher checks it (released by `unsubscribe`).
    pub(crate) fn hold_session(&self, session: &str) {
        *self.sessions.lock().unwrap().entry(session.to_string()).or_default() += 1;
    }

    /// Sessions of live streams that the database no longer finds live (updated every half second).
    pub(crate) fn revoked_sessions(&self) -> watch::Receiver<HashSet<String>> {
        self.revoked.subscribe()
    }

    /// Users with at least one subscriber (= channels LISTENed on).
    pub fn listening(&self) -> usize {
        self.channels.lock().unwrap().len()
    }
}

/// Reconnect the LISTEN connection whenever it ends (a database restart), for as long as the
/// relay lives.
async fn supervise_listener(relay: std::sync::Weak<Relay>, mut ended: tokio::sync::oneshot::Receiver<()>) {
    loop {
        let _ = (&mut ended).await;
        loop {
            let Some(r) = relay.upgrade() else { return };
            *r.listener.lock().await = None;
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Ok(next) = r.connect_listener().await {
                r.reconnects.fetch_add(1, Ordering::Relaxed);
                ended = next;
                break;
            }
        }
    }
}

/// Replicating: re-read the shares of users streaming `/events`, `SHARES_PER_ROUND` every
/// `SHARES_EVERY`, in turn.
async fn watch_shares(relay: std::sync::Weak<Relay>) {
    let mut after = String::new();
    loop {
        tokio::time::sleep(SHARES_EVERY).await;
        let Some(relay) = relay.upgrade() else { return };
        let users = relay.grantors.lock().unwrap().to_refresh(now(), &after, SHARES_PER_ROUND);
        for (user, token) in users {
            if let Some(owners) = relay.owners_sharing_with(&token).await {
                relay.grantors.lock().unwrap().set_owners(&user, owners);
            }
            after = user;
        }
    }
}

/// Every half second: which sessions of live streams are no longer live. A session counts as
/// live only if its row is found, not revoked, and its account exists: a row that is gone
/// (erasure, deletion, pruning) ends the stream like a revocation.
async fn watch_sessions(relay: std::sync::Weak<Relay>) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(relay) = relay.upgrade() else { return };
        let ids: Vec<String> = relay.sessions.lock().unwrap().keys().cloned().collect();
        if ids.is_empty() {
            continue;
        }
        let revoked = async {
            let guard = relay.query_client().await.ok()?;
            // auth.live_sessions: the gateway's login role needs no right on auth.sessions.
            let rows = guard
                .as_ref()?
                .query("SELECT l::text FROM auth.live_sessions($1::text[]::uuid[]) l", &[&ids])
                .await
                .ok()?;
            let live: HashSet<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
            Some(ids.into_iter().filter(|id| !live.contains(id)).collect::<HashSet<String>>())
        }
        .await;
        if let Some(revoked) = revoked {
            relay.revoked.send_if_modified(|current| {
                let changed = *current != revoked;
                *current = revoked;
                changed
            });
        }
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// One subscriber's stream; unsubscribes when dropped (the client went away).
struct Subscription {
    relay: Arc<Relay>,
    channel: String,
    token: String,
    exp: i64,
    session: Option<String>,
    rx: broadcast::Receiver<Msg>,
    revoked: watch::Receiver<HashSet<String>>,
    /// Replicating: the user, held in the relay's `Grantors` while the stream lives.
    grantee: Option<String>,
    /// The last seq sent to this subscriber.
    sent: i64,
    pending: VecDeque<Event>,
    done: bool,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(user) = &self.grantee {
            self.relay.grantors.lock().unwrap().release(user);
        }
        let relay = self.relay.clone();
        let channel = std::mem::take(&mut self.channel);
        tokio::spawn(relay.unsubscribe(channel, self.session.take()));
    }
}

impl Subscription {
    /// Queue everything of the feed after `sent`, as change events (one per run of rows of one
    /// table and operation).
    async fn catch_up(&mut self) {
        loop {
            match self.relay.changes_since(&self.token, self.sent).await {
                Ok(rows) if rows.is_empty() => return,
                Ok(rows) => {
                    let full = rows.len() == 1000;
                    let mut run: Vec<(i64, String, String, Value)> = Vec::new();
                    for row in rows {
                        if run.last().is_some_and(|r| r.1 != row.1 || r.2 != row.2) {
                            self.queue_run(std::mem::take(&mut run));
                        }
                        run.push(row);
                    }
                    self.queue_run(run);
                    if !full {
                        return;
                    }
                }
                Err(Some(message)) => {
                    let data = json!({"reason": message, "after_seq": self.sent}).to_string();
                    self.pending.push_back(Event::default().event("resync").data(data));
                    self.done = true;
                    return;
                }
                Err(None) => return, // database away: the next CatchUp retries
            }
        }
    }

    fn queue_run(&mut self, run: Vec<(i64, String, String, Value)>) {
        let (Some(first), Some(last)) = (run.first(), run.last()) else { return };
        let payload = json!({
            "table": first.1, "op": first.2, "part": 1, "parts": 1, "seq_from": first.0, "seq_to": last.0,
            "rows": run.iter().map(|r| r.3.clone()).collect::<Vec<_>>(), "replay": true,
        });
        self.sent = last.0;
        self.pending.push_back(Event::default().event("change").id(last.0.to_string()).data(payload.to_string()));
    }

    /// A live notification: sent as is when it continues the last seq, dropped when already
    /// sent, preceded by the feed when seqs are missing in between.
    async fn live(&mut self, payload: String) {
        let v: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
        let (Some(from), Some(to)) = (v["seq_from"].as_i64(), v["seq_to"].as_i64()) else {
            self.pending.push_back(Event::default().event("change").data(payload)); // no seq (hand-sent)
            return;
        };
        if to <= self.sent {
            return; // already sent (from the feed)
        }
        if from > self.sent + 1 {
            self.catch_up().await; // missed notifications: fill from the feed
            if to <= self.sent || self.done {
                return;
            }
        }
        self.sent = to;
        self.pending.push_back(Event::default().event("change").id(to.to_string()).data(payload));
    }

    /// Another user's change that may be shared with this one: sent as NOTIFY sends a grantee's
    /// (`shared_by`, keys only, no seq: not part of this user's feed) with only the rows the
    /// database, asked as this user, says it may see now; nothing when none.
    async fn shared(&mut self, owner: String, payload: String) {
        let v: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
        let Some(rows) = self.relay.shared_keys(&self.token, &owner, &v["rows"]).await else { return };
        if rows.is_empty() {
            return;
        }
        let data = json!({"table": v["table"], "op": v["op"], "part": 1, "parts": 1, "shared_by": owner, "rows": rows});
        self.pending.push_back(Event::default().event("change").data(data.to_string()));
    }

    fn end(&mut self, reason: &str) {
        self.pending.push_back(Event::default().event("end").data(json!({"reason": reason}).to_string()));
        self.done = true;
    }

    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            if self.done {
                return None;
            }
            let until_exp = Duration::from_secs(u64::try_from(self.exp - now()).unwrap_or(0));
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Ok(Msg::Change(payload)) => self.live(payload).await,
                    Ok(Msg::Shared { owner, payload }) => self.shared(owner, payload).await,
                    Ok(Msg::CatchUp) => self.catch_up().await,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let data = json!({"reason": "too slow: events were dropped", "after_seq": self.sent}).to_string();
                        self.pending.push_back(Event::default().event("resync").data(data));
                        self.done = true;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = tokio::time::sleep(until_exp) => self.end("token expired"),
                changed = self.revoked.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    let revoked = self.session.as_ref().is_some_and(|s| self.revoked.borrow().contains(s));
                    if revoked {
                        self.end("session revoked");
                    }
                }
            }
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

async fn events(State(relay): State<Arc<Relay>>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return (StatusCode::UNAUTHORIZED, "missing bearer token\n").into_response();
    };
    stream(&relay, token, last_event_id(&headers)).await
}

/// The `Last-Event-ID` a reconnecting EventSource sends (the last seq it saw).
pub fn last_event_id(headers: &HeaderMap) -> Option<i64> {
    headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok())
}

/// The SSE stream of the token's user, resuming after `last_event_id` when given. Shared by the
/// bearer endpoint above and the web gateway (which takes the token from an HttpOnly cookie).
pub async fn stream(relay: &Arc<Relay>, token: &str, last_event_id: Option<i64>) -> Response {
    let Some(grant) = relay.grant(token).await else {
        return (StatusCode::UNAUTHORIZED, "invalid or expired token\n").into_response();
    };
    // LISTEN first, then decide where the stream starts: nothing committed in between is lost.
    let key = relay.key_of(&grant);
    let rx = match relay.subscribe(&key).await {
        Ok(rx) => rx,
        Err(_) => return (StatusCode::SERVICE_UNAVAILABLE, "cannot listen\n").into_response(),
    };
    if let Some(s) = &grant.session {
        *relay.sessions.lock().unwrap().entry(s.clone()).or_default() += 1;
    }
    let grantee = relay.replication.is_some().then(|| grant.uid.clone());
    if let Some(user) = &grantee {
        relay.hold_grantee(user, token, grant.exp).await;
    }
    let mut sub = Subscription {
        relay: relay.clone(),
        channel: key,
        token: token.to_string(),
        exp: grant.exp,
        session: grant.session,
        rx,
        revoked: relay.revoked.subscribe(),
        grantee,
        sent: 0,
        pending: VecDeque::new(),
        done: false,
    };
    match last_event_id {
        Some(seq) => {
            sub.sent = seq;
            sub.catch_up().await;
        }
        None => {
            sub.sent = relay.last_seq(token).await.unwrap_or(0);
            let ready = json!({"after_seq": sub.sent}).to_string();
            sub.pending.push_back(Event::default().event("ready").id(sub.sent.to_string()).data(ready));
        }
    }
    let stream = futures_util::stream::unfold(sub, |mut sub| async move {
        sub.next_event().await.map(|e| (Ok::<Event, Infallible>(e), sub))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

async fn healthz(State(relay): State<Arc<Relay>>) -> String {
    format!(
        "ok users={} forwarded={} reconnects={}\n",
        relay.listening(),
        relay.forwarded.load(Ordering::Relaxed),
        relay.reconnects.load(Ordering::Relaxed)
    )
}

pub fn router(relay: Arc<Relay>) -> Router {
    Router::new().route("/events", get(events)).route("/healthz", get(healthz)).with_state(relay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> HashSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_owners_change_goes_to_the_streaming_users_it_shares_with_and_no_one_else() {
        let mut g = Grantors::default();
        g.hold("ann", "t1", 100);
        g.hold("bob", "t2", 100);
        g.set_owners("ann", set(&["olga", "otto"]));
        g.set_owners("bob", set(&["olga"]));
        let mut of_olga = g.of_owner("olga");
        of_olga.sort();
        assert_eq!(of_olga, ["ann", "bob"]);
        assert_eq!(g.of_owner("otto"), ["ann"]);
        assert!(g.of_owner("zoe").is_empty());
        // Olga stopped sharing with Ann.
        g.set_owners("ann", set(&["otto"]));
        assert_eq!(g.of_owner("olga"), ["bob"]);
        // Bob's last stream ended: nobody is asked about Olga, and late answers are ignored.
        g.release("bob");
        assert!(g.of_owner("olga").is_empty() && !g.by_owner.contains_key("olga"));
        g.set_owners("bob", set(&["olga"]));
        assert!(g.of_owner("olga").is_empty(), "a stream that ended is not brought back");
    }

    #[test]
    fn a_user_stays_until_its_last_stream_ends_and_is_asked_with_its_latest_token() {
        let mut g = Grantors::default();
        g.hold("ann", "early", 100);
        g.hold("ann", "late", 200);
        g.hold("ann", "middle", 150);
        g.set_owners("ann", set(&["olga"]));
        assert_eq!(g.to_refresh(50, "", 10), [("ann".to_string(), "late".to_string())]);
        assert!(g.to_refresh(200, "", 10).is_empty(), "an expired token is not used");
        g.release("ann");
        g.release("ann");
        assert_eq!(g.of_owner("olga"), ["ann"], "one stream is still open");
        g.release("ann");
        assert!(g.of_owner("olga").is_empty() && g.grantees.is_empty());
    }

    #[test]
    fn shares_are_re_read_a_few_users_at_a_time_in_turn() {
        let mut g = Grantors::default();
        for u in ["a", "b", "c", "d", "e"] {
            g.hold(u, u, 100);
        }
        let users = |r: Vec<(String, String)>| r.into_iter().map(|(u, _)| u).collect::<Vec<_>>();
        assert_eq!(users(g.to_refresh(0, "", 2)), ["a", "b"]);
        assert_eq!(users(g.to_refresh(0, "b", 2)), ["c", "d"]);
        assert_eq!(users(g.to_refresh(0, "d", 2)), ["e", "a"], "round robin");
        assert_eq!(users(g.to_refresh(0, "e", 9)), ["a", "b", "c", "d", "e"], "each at most once");
        g.release("c");
        assert_eq!(users(g.to_refresh(0, "b", 2)), ["d", "e"], "a user who left is skipped");
    }
}
