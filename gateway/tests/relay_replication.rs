//! The relay fed by logical replication of the change feed instead of NOTIFY, over real HTTP:
//! with `health_rls.notify = off` the writers send no notification at all (a LISTEN on the user's
//! channel hears nothing), and the subscriber still gets each of its own changes, in seq order,
//! after its stream opens; another user hears none of them; a relay started later replays what
//! was written while it was down. Needs `wal_level = logical` (scripts/integration sets it).
mod common;

use common::*;
use health_rls_gateway::{relay, replication};
use serde_json::Value;
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(800);

async fn serve(relay: std::sync::Arc<relay::Relay>) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = relay::router(relay);
    (addr, tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }))
}

async fn insert(w: &tokio_postgres::Client, token: &str, n: i32) -> Vec<i64> {
    w.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    w.query_one("SELECT auth.authenticate($1)", &[&token]).await.unwrap();
    let ids = w
        .query("INSERT INTO rr_samples (value) SELECT g FROM generate_series(1, $1::int) g RETURNING id", &[&n])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, i64>(0))
        .collect();
    w.batch_execute("COMMIT").await.unwrap();
    ids
}

/// (seq_from, seq_to, row ids) of the change events.
fn changes(events: &[SseEvent]) -> Vec<(i64, i64, Vec<i64>)> {
    events
        .iter()
        .filter(|e| e.event == "change")
        .map(|e| {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            (
                v["seq_from"].as_i64().unwrap(),
                v["seq_to"].as_i64().unwrap(),
                v["rows"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_their_owner_from_logical_replication_without_any_notify() {
    let admin = realtime_samples_table("rr_samples").await;
    let slot = format!("rr_{}", uuid::Uuid::new_v4().simple());
    let (user, other) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let (token, other_token) = (token_for(&user), token_for(&other));
    let w = connect().await;
    w.batch_execute("SET health_rls.notify = off").await.unwrap();

    // A LISTEN on the user's channel: with NOTIFY off it must hear nothing.
    let (listener, mut conn) = tokio_postgres::connect(&dsn(), tokio_postgres::NoTls).await.unwrap();
    let (heard_tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(m)) = futures_util::future::poll_fn(|cx| conn.poll_message(cx)).await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = heard_tx.send(n.payload().to_string());
            }
        }
    });
    let channel: String = admin.query_one("SELECT health_rls.channel_for($1)", &[&user]).await.unwrap().get(0);
    listener.batch_execute(&format!("LISTEN \"{channel}\"")).await.unwrap();

    let mut source = replication::ReplicationSource::new(&dsn());
    source.slot = slot.clone();
    source.publication = "rr_changes".into();
    let relay = relay::Relay::replicating(&dsn(), source.clone()).await.unwrap();
    let (addr, server) = serve(relay.clone()).await;
    // The slot exists once the relay's reader has prepared it.
    for _ in 0..100 {
        let n: i64 = admin
            .query_one("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", &[&slot])
            .await
            .unwrap()
            .get(0);
        if n == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, s) = sse_open(addr, &token, None).await;
    assert_eq!(status, 200);
    let mut s = s.unwrap();
    let (_, o) = sse_open(addr, &other_token, None).await;
    let mut o = o.unwrap();

    let mut written = insert(&w, &token, 1).await;
    written.extend(insert(&w, &token, 3).await);
    let (events, _) = sse_read(&mut s, QUIET).await;
    assert_eq!(events[0].event, "ready");
    let live = changes(&events);
    assert_eq!(live.iter().flat_map(|c| c.2.clone()).collect::<Vec<_>>(), written, "every row, in order");
    let mut next = 1;
    for (from, to, _) in &live {
        assert_eq!(*from, next, "seqs continue each other: {live:?}");
        next = to + 1;
    }
    assert!(
        events.iter().filter(|e| e.event == "change").all(|e| !e.data.contains("\"replay\"")),
        "live, not replayed"
    );
    let (others, _) = sse_read(&mut o, Duration::from_millis(200)).await;
    assert!(changes(&others).is_empty(), "the other user hears nothing: {others:?}");
    assert!(heard.try_recv().is_err(), "no NOTIFY was sent");

    // The relay goes away (its slot is released); rows written meanwhile are replayed by the
    // next one, which then goes on live from the same slot.
    drop((s, o));
    server.abort();
    drop(relay);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let while_down = insert(&w, &token, 2).await;
    let relay_b = relay::Relay::replicating(&dsn(), source).await.unwrap();
    let (addr_b, server_b) = serve(relay_b.clone()).await;
    let (_, s) = sse_open(addr_b, &token, Some(next - 1)).await;
    let mut s = s.unwrap();
    let (events, _) = sse_read(&mut s, QUIET).await;
    assert_eq!(changes(&events).iter().flat_map(|c| c.2.clone()).collect::<Vec<_>>(), while_down);
    let after = insert(&w, &token, 1).await;
    let (events, _) = sse_read(&mut s, QUIET).await;
    assert_eq!(changes(&events).iter().flat_map(|c| c.2.clone()).collect::<Vec<_>>(), after);
    assert!(heard.try_recv().is_err(), "still no NOTIFY");

    drop(s);
    server_b.abort();
    drop(relay_b);
    tokio::time::sleep(Duration::from_millis(300)).await;
    admin.query_one("SELECT pg_drop_replication_slot($1)", &[&slot]).await.unwrap();
    admin.batch_execute("DROP PUBLICATION rr_changes").await.unwrap();
}
