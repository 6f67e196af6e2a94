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
    query_as(w, token, "INSERT INTO rr_samples (value) SELECT g FROM generate_series(1, $1::int) g RETURNING id", &[&n])
        .await
        .iter()
        .map(|r| r.get::<_, i64>(0))
        .collect()
}

/// Until the relay's reader has made its slot (it prepares it in the background).
async fn wait_for_slot(admin: &tokio_postgres::Client, slot: &str) {
    for _ in 0..100 {
        let n: i64 = admin
            .query_one("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", &[&slot])
            .await
            .unwrap()
            .get(0);
        if n == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    wait_for_slot(&admin, &slot).await;
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

/// A signed-up user's access token and id (`health.share` needs an account to share with).
async fn account(admin: &tokio_postgres::Client, email: &str) -> (String, String) {
    admin.execute("DELETE FROM auth.users WHERE email = $1", &[&email]).await.unwrap();
    admin.query_one("SELECT auth.sign_up($1, 'a password of some length')", &[&email]).await.unwrap();
    let s: Value =
        admin.query_one("SELECT auth.start_session($1, 'a password of some length')", &[&email]).await.unwrap().get(0);
    (s["access_token"].as_str().unwrap().to_string(), s["user"]["id"].as_str().unwrap().to_string())
}

/// Ids of a heart-rate and a steps sample the owner ingests, in that order.
async fn ingest_heart_rate_and_steps(w: &tokio_postgres::Client, token: &str, minute: u32) -> (i64, i64) {
    let batch = serde_json::json!([
        {"kind": "heart_rate", "value": 61, "unit": "/min", "recorded_at": format!("2026-11-24T08:{minute:02}:00Z")},
        {"kind": "steps", "value": 100, "unit": "{steps}", "recorded_at": format!("2026-11-24T08:{minute:02}:00Z")}]);
    let ids: Vec<i64> =
        query_as(w, token, "SELECT id FROM health.ingest('public.rr_shared', $1::jsonb) ORDER BY ord", &[&batch])
            .await
            .iter()
            .map(|r| r.get(0))
            .collect();
    (ids[0], ids[1])
}

/// The shared change events of a stream: (shared_by, row ids).
fn shared(events: &[SseEvent]) -> Vec<(String, Vec<i64>)> {
    events
        .iter()
        .filter(|e| e.event == "change")
        .map(|e| {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            assert!(e.id.is_none() && v.get("seq_from").is_none(), "not part of the grantee's own feed: {e:?}");
            assert!(!e.data.contains("\"value\""), "keys only: {e:?}");
            let rows = v["rows"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
            (v["shared_by"].as_str().unwrap_or("").to_string(), rows)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grantees_hear_shared_changes_from_logical_replication_while_the_share_is_active() {
    let admin = connect().await;
    prepare(&admin).await;
    admin
        .batch_execute("DROP TABLE IF EXISTS rr_shared; SELECT health.create_metric_table('public.rr_shared')")
        .await
        .unwrap();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (owner_token, owner_id) = account(&admin, &format!("owner-{tag}@example.com")).await;
    let (grantee_token, grantee_id) = account(&admin, &format!("grantee-{tag}@example.com")).await;
    let (stranger_token, _) = account(&admin, &format!("stranger-{tag}@example.com")).await;
    let w = connect().await;
    w.batch_execute("SET health_rls.notify = off").await.unwrap();
    let share = "SELECT health.share($1::text::uuid, '{heart_rate}')";
    query_as(&w, &owner_token, share, &[&grantee_id]).await;

    let slot = format!("rr_{tag}");
    let mut source = replication::ReplicationSource::new(&dsn());
    source.slot = slot.clone();
    source.publication = "rr_shared_changes".into();
    let relay = relay::Relay::replicating(&dsn(), source).await.unwrap();
    let (addr, server) = serve(relay.clone()).await;
    wait_for_slot(&admin, &slot).await;
    let (_, g) = sse_open(addr, &grantee_token, None).await;
    let mut g = g.unwrap();
    let (_, s) = sse_open(addr, &stranger_token, None).await;
    let mut s = s.unwrap();

    // The share was given before the stream opened: the shared kind is heard, the other not.
    let (heart_rate, _steps) = ingest_heart_rate_and_steps(&w, &owner_token, 0).await;
    let (events, _) = sse_read(&mut g, QUIET).await;
    assert_eq!(shared(&events), [(owner_id.clone(), vec![heart_rate])], "the heart rate only: {events:?}");
    let (others, _) = sse_read(&mut s, Duration::from_millis(200)).await;
    assert!(shared(&others).is_empty(), "someone without a share hears nothing: {others:?}");

    // Revoked: the next change is not heard (each is checked as the grantee when it arrives).
    query_as(&w, &owner_token, "SELECT health.revoke_share(id) FROM health.shares WHERE revoked_at IS NULL", &[]).await;
    ingest_heart_rate_and_steps(&w, &owner_token, 1).await;
    let (events, _) = sse_read(&mut g, QUIET).await;
    assert!(shared(&events).is_empty(), "revocation stops the events at once: {events:?}");

    // Shared again while the stream is open: heard after the relay's next look at the shares.
    query_as(&w, &owner_token, share, &[&grantee_id]).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (heart_rate, _) = ingest_heart_rate_and_steps(&w, &owner_token, 2).await;
    let (events, _) = sse_read(&mut g, QUIET).await;
    assert_eq!(shared(&events), [(owner_id.clone(), vec![heart_rate])], "a share given during the stream: {events:?}");

    drop((g, s));
    server.abort();
    drop(relay);
    tokio::time::sleep(Duration::from_millis(300)).await;
    admin.query_one("SELECT pg_drop_replication_slot($1)", &[&slot]).await.unwrap();
    admin.batch_execute("DROP PUBLICATION rr_shared_changes").await.unwrap();
}
