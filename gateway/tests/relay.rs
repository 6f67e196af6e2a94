//! The realtime relay with real parts: one LISTEN connection, 200 SSE subscribers for 50 users,
//! each receiving exactly its own user's events; bad tokens get 401 and no stream.
mod common;

use health_rls_gateway::relay;

use common::*;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Read `data:` payloads of `change` events until `quiet` passes without new bytes.
async fn read_events(s: &mut TcpStream, quiet: Duration) -> Vec<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    while let Ok(Ok(n)) = tokio::time::timeout(quiet, s.read(&mut chunk)).await {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    // Chunked transfer encoding wraps the SSE text; payload lines start with "data: {".
    String::from_utf8_lossy(&buf)
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|l| l.starts_with('{') && l.contains("\"op\""))
        .map(str::to_string)
        .collect()
}

async fn insert_rows(w: &tokio_postgres::Client, token: &str, n: i32) -> Vec<i64> {
    query_as(
        w,
        token,
        "INSERT INTO rl_samples (kind, value) SELECT 'heart_rate', 60 + g FROM generate_series(1, $1::int) g RETURNING id",
        &[&n],
    )
    .await
    .iter()
    .map(|r| r.get(0))
    .collect()
}

async fn insert_throughput(w: &tokio_postgres::Client, tokens: &[String], transactions: usize) -> f64 {
    let start = Instant::now();
    for i in 0..transactions {
        insert_rows(w, &tokens[i % tokens.len()], 1).await;
    }
    transactions as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_subscribers_for_fifty_users_get_exactly_their_own_events() {
    let _admin = realtime_samples_table("rl_samples").await;

    let relay = relay::Relay::connect(&dsn()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = relay::router(relay.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Bad tokens: 401, no stream.
    assert_eq!(sse_open(addr, "not.a.token", None).await.0, 401);
    let expired = {
        use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("it1".into());
        let c =
            serde_json::json!({"sub": uuid::Uuid::new_v4().to_string(), "aud": "authenticated", "exp": 1_600_000_000});
        encode(&h, &c, &EncodingKey::from_secret(HS_SECRET)).unwrap()
    };
    assert_eq!(sse_open(addr, &expired, None).await.0, 401);

    let users: Vec<uuid::Uuid> = (0..50).map(|_| uuid::Uuid::new_v4()).collect();
    let tokens: Vec<String> = users.iter().map(token_for).collect();
    let w = connect().await;
    let before = insert_throughput(&w, &tokens, 300).await;

    let mut subscribers = Vec::new();
    for i in 0..200 {
        let user = i % 50;
        let (status, stream) = sse_open(addr, &tokens[user], None).await;
        assert_eq!(status, 200);
        subscribers.push((user, stream.unwrap()));
    }
    let listening = relay.listening();
    assert_eq!(listening, 50, "one LISTEN per user, however many subscribers");

    let after = insert_throughput(&w, &tokens, 300).await;
    // Drain what the throughput run produced, then the checked writes.
    let mut inserted: HashMap<usize, BTreeSet<i64>> = HashMap::new();
    for (u, t) in tokens.iter().enumerate() {
        inserted.insert(u, insert_rows(&w, t, 3).await.into_iter().collect());
    }
    let checked_ids: BTreeSet<i64> = inserted.values().flatten().copied().collect();

    let mut futures = Vec::new();
    for (user, mut stream) in subscribers {
        futures.push(tokio::spawn(async move { (user, read_events(&mut stream, Duration::from_millis(1500)).await) }));
    }
    for f in futures {
        let (user, payloads) = f.await.unwrap();
        let mut heard: BTreeSet<i64> = BTreeSet::new();
        for p in &payloads {
            let v: serde_json::Value = serde_json::from_str(p).unwrap();
            for r in v["rows"].as_array().unwrap() {
                heard.insert(r["id"].as_i64().unwrap());
            }
        }
        let mine: BTreeSet<i64> = heard.intersection(&checked_ids).copied().collect();
        assert_eq!(mine, inserted[&user], "user {user}: exactly its own checked rows");
        // Throughput-run rows this subscriber heard must be its user's too: 6 per user (300 / 50).
        assert_eq!(heard.len() - mine.len(), 6, "user {user}: its own 6 throughput rows, nobody else's");
    }
    println!(
        "relay: {listening} users, 200 subscribers, {} events forwarded; insert throughput {before:.0} tx/s without subscribers, {after:.0} tx/s with (ratio {:.2})",
        relay.forwarded.load(std::sync::atomic::Ordering::Relaxed),
        after / before
    );
}
