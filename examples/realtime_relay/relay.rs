//! The server side of realtime, shaped for scale (docs/realtime.md).
//!
//! On PostgreSQL 15 every NOTIFY commit signals every listening backend, so one database
//! connection per app user collapses throughput. The relay holds ONE listening connection,
//! LISTENs on the channel of each user it serves (once, however many subscribers that user
//! has) and fans events out over Server-Sent Events. Identity is the database's: a subscriber's
//! bearer token goes through `auth.authenticate`, and `auth.my_channel()` names its channel.
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::stream::Stream;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, Client, NoTls};

/// One user's channel: how many subscribers hold it, and where its events go.
struct Channel {
    subscribers: usize,
    events: broadcast::Sender<String>,
}

pub struct Relay {
    /// Verifies tokens (one transaction at a time: BEGIN/authenticate/my_channel/COMMIT).
    verifier: tokio::sync::Mutex<Client>,
    /// The single LISTEN connection.
    listener: Client,
    channels: Mutex<HashMap<String, Channel>>,
    pub forwarded: AtomicU64,
}

impl Relay {
    pub async fn connect(dsn: &str) -> Result<Arc<Relay>, tokio_postgres::Error> {
        let (verifier, vconn) = tokio_postgres::connect(dsn, NoTls).await?;
        tokio::spawn(async move {
            let _ = vconn.await;
        });
        let (listener, mut lconn) = tokio_postgres::connect(dsn, NoTls).await?;
        let relay = Arc::new(Relay {
            verifier: tokio::sync::Mutex::new(verifier),
            listener,
            channels: Mutex::new(HashMap::new()),
            forwarded: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&relay);
        tokio::spawn(async move {
            while let Some(msg) = futures_util::future::poll_fn(|cx| lconn.poll_message(cx)).await {
                let Ok(AsyncMessage::Notification(n)) = msg else { continue };
                let Some(relay) = weak.upgrade() else { break };
                let sender = relay.channels.lock().unwrap().get(n.channel()).map(|c| c.events.clone());
                if let Some(sender) = sender {
                    if sender.send(n.payload().to_string()).is_ok() {
                        relay.forwarded.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        Ok(relay)
    }

    /// The channel of the token's user, or None when the database refuses the token.
    pub async fn channel_for_token(&self, token: &str) -> Option<String> {
        let client = self.verifier.lock().await;
        let result = async {
            client.batch_execute("BEGIN").await?;
            client.query_one("SELECT auth.authenticate($1)", &[&token]).await?;
            let row = client.query_one("SELECT auth.my_channel()", &[]).await?;
            client.batch_execute("COMMIT").await?;
            Ok::<Option<String>, tokio_postgres::Error>(row.get(0))
        }
        .await;
        match result {
            Ok(ch) => ch,
            Err(_) => {
                let _ = client.batch_execute("ROLLBACK").await;
                None
            }
        }
    }

    async fn subscribe(self: &Arc<Self>, channel: &str) -> Result<broadcast::Receiver<String>, tokio_postgres::Error> {
        let (rx, first) = {
            let mut channels = self.channels.lock().unwrap();
            let entry = channels
                .entry(channel.to_string())
                .or_insert_with(|| Channel { subscribers: 0, events: broadcast::channel(4096).0 });
            entry.subscribers += 1;
            (entry.events.subscribe(), entry.subscribers == 1)
        };
        if first {
            self.listener.batch_execute(&format!("LISTEN {}", quote_ident(channel))).await?;
        }
        Ok(rx)
    }

    async fn unsubscribe(self: Arc<Self>, channel: String) {
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
        if last {
            let _ = self.listener.batch_execute(&format!("UNLISTEN {}", quote_ident(&channel))).await;
        }
    }

    /// Users with at least one subscriber (= channels LISTENed on).
    pub fn listening(&self) -> usize {
        self.channels.lock().unwrap().len()
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Unsubscribes when the SSE stream is dropped (the client went away).
struct Subscription {
    relay: Arc<Relay>,
    channel: String,
    rx: broadcast::Receiver<String>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let relay = self.relay.clone();
        let channel = std::mem::take(&mut self.channel);
        tokio::spawn(relay.unsubscribe(channel));
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

async fn events(State(relay): State<Arc<Relay>>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return (StatusCode::UNAUTHORIZED, "missing bearer token\n").into_response();
    };
    let Some(channel) = relay.channel_for_token(token).await else {
        return (StatusCode::UNAUTHORIZED, "invalid or expired token\n").into_response();
    };
    let rx = match relay.subscribe(&channel).await {
        Ok(rx) => rx,
        Err(_) => return (StatusCode::SERVICE_UNAVAILABLE, "cannot listen\n").into_response(),
    };
    let sub = Subscription { relay: relay.clone(), channel, rx };
    Sse::new(event_stream(sub)).keep_alive(KeepAlive::default()).into_response()
}

fn event_stream(sub: Subscription) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(sub, |mut sub| async move {
        match sub.rx.recv().await {
            Ok(payload) => Some((Ok(Event::default().event("change").data(payload)), sub)),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                let note = format!("{{\"lagged\":{n}}}");
                Some((Ok(Event::default().event("lagged").data(note)), sub))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
}

async fn healthz(State(relay): State<Arc<Relay>>) -> String {
    format!("ok users={} forwarded={}\n", relay.listening(), relay.forwarded.load(Ordering::Relaxed))
}

pub fn router(relay: Arc<Relay>) -> Router {
    Router::new().route("/events", get(events)).route("/healthz", get(healthz)).with_state(relay)
}
