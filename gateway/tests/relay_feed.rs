//! The relay that loses nothing, over real HTTP: Last-Event-ID replay after a disconnect and
//! after a relay restart (no gap, no duplicate), deletes as tombstones to their owner only, a
//! too-slow subscriber told to resync and catching up, and streams that end at sign-out and at
//! the token's exp.
mod common;

use health_rls_gateway::relay;

use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const QUIET: Duration = Duration::from_millis(800);

async fn serve(relay: std::sync::Arc<relay::Relay>) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = relay::router(relay);
    (addr, tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }))
}

async fn write(w: &tokio_postgres::Client, token: &str, sql: &str) -> Vec<i64> {
    w.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    w.query_one("SELECT auth.authenticate($1)", &[&token]).await.unwrap();
    let ids = w.query(sql, &[]).await.unwrap().iter().map(|r| r.get::<_, i64>(0)).collect();
    w.batch_execute("COMMIT").await.unwrap();
    ids
}

async fn insert(w: &tokio_postgres::Client, token: &str) -> i64 {
    write(w, token, "INSERT INTO rf_samples (value) VALUES (1) RETURNING id").await[0]
}

/// (seq_from, seq_to, op, row ids) of the change events.
fn changes(events: &[SseEvent]) -> Vec<(i64, i64, String, Vec<i64>)> {
    events
        .iter()
        .filter(|e| e.event == "change")
        .map(|e| {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(e.id, v["seq_to"].as_i64(), "the SSE id is the last seq of the event");
            (
                v["seq_from"].as_i64().unwrap(),
                v["seq_to"].as_i64().unwrap(),
                v["op"].as_str().unwrap().to_string(),
                v["rows"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect(),
            )
        })
        .collect()
}

/// The seqs continue each other from `after`: no gap, no duplicate. Returns the last.
fn contiguous(after: i64, events: &[(i64, i64, String, Vec<i64>)]) -> i64 {
    let mut next = after + 1;
    for (from, to, _, _) in events {
        assert_eq!(*from, next, "seq {from} after {}: {events:?}", next - 1);
        next = to + 1;
    }
    next - 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_after_a_disconnect_and_after_a_relay_restart_loses_nothing() {
    let _admin = realtime_samples_table("rf_samples").await;
    let (user, other) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let (token, other_token) = (token_for(&user), token_for(&other));
    let w = connect().await;
    let relay_a = relay::Relay::connect(&dsn()).await.unwrap();
    let (addr, server) = serve(relay_a.clone()).await;

    let (status, s1) = sse_open(addr, &token, None).await;
    assert_eq!(status, 200);
    let mut s1 = s1.unwrap();
    let (_, mut o1) = sse_open(addr, &other_token, None).await;
    let mut o1 = o1.take().unwrap();
    let mut written = vec![insert(&w, &token).await, insert(&w, &token).await, insert(&w, &token).await];
    let (events, _) = sse_read(&mut s1, QUIET).await;
    assert_eq!(events[0].event, "ready", "a new stream says where it starts");
    let live = changes(&events);
    let mut last = contiguous(0, &live);
    assert_eq!(live.iter().flat_map(|c| c.3.clone()).collect::<Vec<_>>(), written);

    // Disconnected while the user's other device keeps writing.
    drop(s1);
    let offline: Vec<i64> = vec![insert(&w, &token).await, insert(&w, &token).await];
    let deleted = write(&w, &token, &format!("DELETE FROM rf_samples WHERE id = {} RETURNING id", written[0])).await;
    let (_, s2) = sse_open(addr, &token, Some(last)).await;
    let mut s2 = s2.unwrap();
    let (events, _) = sse_read(&mut s2, QUIET).await;
    let replayed = changes(&events);
    last = contiguous(last, &replayed);
    assert!(events.iter().filter(|e| e.event == "change").all(|e| e.data.contains("\"replay\":true")));
    let ops: Vec<(String, Vec<i64>)> = replayed.iter().map(|c| (c.2.clone(), c.3.clone())).collect();
    assert_eq!(
        ops,
        vec![("INSERT".to_string(), offline.clone()), ("DELETE".to_string(), deleted.clone())],
        "missed inserts, then the tombstone"
    );
    written.extend(&offline);

    // Live again after the replay, without duplicates.
    let more = insert(&w, &token).await;
    let (events, _) = sse_read(&mut s2, QUIET).await;
    let live = changes(&events);
    last = contiguous(last, &live);
    assert_eq!(live.iter().flat_map(|c| c.3.clone()).collect::<Vec<_>>(), vec![more]);

    // The relay itself restarts; writes go on meanwhile; the app resumes where it was.
    drop(s2);
    server.abort();
    drop(relay_a);
    let while_down = vec![insert(&w, &token).await, insert(&w, &token).await];
    let relay_b = relay::Relay::connect(&dsn()).await.unwrap();
    let (addr_b, _server_b) = serve(relay_b).await;
    let (_, s3) = sse_open(addr_b, &token, Some(last)).await;
    let (events, _) = sse_read(&mut s3.unwrap(), QUIET).await;
    let replayed = changes(&events);
    contiguous(last, &replayed);
    assert_eq!(replayed.iter().flat_map(|c| c.3.clone()).collect::<Vec<_>>(), while_down);

    // The other user heard nothing of this, live or as a tombstone.
    let (heard, _) = sse_read(&mut o1, Duration::from_millis(200)).await;
    assert!(changes(&heard).is_empty(), "another user's stream: {heard:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_slow_subscriber_is_told_to_resync_and_then_catches_up() {
    // Row payloads of 2 KB rows: a few megabytes of events, more than any socket buffer holds.
    let admin = realtime_samples_table("rf_slow").await;
    admin
        .batch_execute(
            "ALTER TABLE rf_slow ADD COLUMN note text;
             SELECT count(*) FROM health_rls.enable_realtime('rf_slow', payload => 'row');",
        )
        .await
        .unwrap();
    let user = uuid::Uuid::new_v4();
    let token = token_for(&user);
    let relay = relay::Relay::with_buffer(&dsn(), 8).await.unwrap();
    let (addr, _server) = serve(relay).await;
    let (_, s) = sse_open_with(addr, &token, None, Some(4096)).await;
    let mut s = s.unwrap();
    // Reads nothing while 300 statements of 20 rows are written: far more than its 4 KB socket
    // buffer and the relay's 8 buffered events hold.
    let w = connect().await;
    let mut written = Vec::new();
    for _ in 0..300 {
        let sql =
            "INSERT INTO rf_slow (value, note) SELECT g, repeat('x', 2000) FROM generate_series(1, 20) g RETURNING id";
        written.extend(write(&w, &token, sql).await);
    }
    let (events, ended) = sse_read(&mut s, QUIET).await;
    let resync = events.iter().find(|e| e.event == "resync").expect("told to resync, never silently skipped");
    assert!(ended, "the stream ends after the resync event");
    let after: i64 = serde_json::from_str::<Value>(&resync.data).unwrap()["after_seq"].as_i64().unwrap();
    let before = changes(&events);
    let last = contiguous(0, &before);
    assert_eq!(after, last, "resync names the last seq the subscriber got");
    let (_, s2) = sse_open(addr, &token, Some(after)).await;
    let (events, _) = sse_read(&mut s2.unwrap(), QUIET).await;
    let rest = changes(&events);
    contiguous(after, &rest);
    let all: Vec<i64> = before.iter().chain(&rest).flat_map(|c| c.3.clone()).collect();
    assert_eq!(all, written, "every change exactly once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_at_sign_out_and_at_the_tokens_exp() {
    let admin = connect().await;
    prepare(&admin).await;
    admin
        .batch_execute(
            "DELETE FROM auth.users WHERE email = 'stream@example.com';
             SELECT auth.sign_up('stream@example.com', 'stream password')",
        )
        .await
        .unwrap();
    let relay = relay::Relay::connect(&dsn()).await.unwrap();
    let (addr, _server) = serve(relay).await;
    let session: Value = admin
        .query_one("SELECT auth.start_session('stream@example.com', 'stream password')", &[])
        .await
        .unwrap()
        .get(0);
    let access = session["access_token"].as_str().unwrap().to_string();
    let (status, s) = sse_open(addr, &access, None).await;
    assert_eq!(status, 200);
    let mut s = s.unwrap();
    sse_read(&mut s, Duration::from_millis(300)).await;
    let c = connect().await;
    c.batch_execute("BEGIN").await.unwrap();
    c.query_one("SELECT auth.authenticate($1)", &[&access]).await.unwrap();
    c.batch_execute("SELECT auth.sign_out(); COMMIT").await.unwrap();
    let signed_out = Instant::now();
    let (events, ended) = sse_read(&mut s, Duration::from_secs(3)).await;
    assert!(
        ended && signed_out.elapsed() < Duration::from_millis(1500),
        "ended {:?} after sign-out",
        signed_out.elapsed()
    );
    assert!(events.iter().any(|e| e.event == "end" && e.data.contains("session revoked")), "{events:?}");

    // A session whose row is gone (deleted by hand, erased with its account) ends the stream too:
    // a session counts as live only while it is found.
    let second: Value = admin
        .query_one("SELECT auth.start_session('stream@example.com', 'stream password')", &[])
        .await
        .unwrap()
        .get(0);
    let access = second["access_token"].as_str().unwrap().to_string();
    let (status, s) = sse_open(addr, &access, None).await;
    assert_eq!(status, 200);
    let mut s = s.unwrap();
    sse_read(&mut s, Duration::from_millis(300)).await;
    admin
        .batch_execute(
            "DELETE FROM auth.sessions WHERE revoked_at IS NULL \
               AND user_id = (SELECT id FROM auth.users WHERE email = 'stream@example.com')",
        )
        .await
        .unwrap();
    let deleted = Instant::now();
    let (events, ended) = sse_read(&mut s, Duration::from_secs(3)).await;
    assert!(
        ended && deleted.elapsed() < Duration::from_millis(1500),
        "ended {:?} after the deletion",
        deleted.elapsed()
    );
    assert!(events.iter().any(|e| e.event == "end" && e.data.contains("session revoked")), "{events:?}");

    // A token that expires in 2 s: the stream ends then (not at the database's leeway).
    let short = {
        use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("it1".into());
        let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 2;
        let claims = serde_json::json!({"sub": uuid::Uuid::new_v4().to_string(), "aud": "authenticated", "exp": exp});
        encode(&h, &claims, &EncodingKey::from_secret(HS_SECRET)).unwrap()
    };
    let (_, s) = sse_open(addr, &short, None).await;
    let opened = Instant::now();
    let (events, ended) = sse_read(&mut s.unwrap(), Duration::from_secs(5)).await;
    assert!(ended && opened.elapsed() < Duration::from_millis(3500), "ended after {:?}", opened.elapsed());
    assert!(events.iter().any(|e| e.event == "end" && e.data.contains("token expired")), "{events:?}");
}
