//! The change feed under concurrency: 8 writers for one user and 8 for eight others, 20,000
//! changes in all. Every listener must receive its user's seqs strictly increasing and without a
//! gap (notifications arrive in commit order, so a seq taken before commit — a plain sequence —
//! would arrive out of order and fail this), and what it heard must equal changes_since(0).
mod common;

use common::*;
use std::collections::HashMap;
use std::time::Duration;

const PER_WRITER: usize = 1250;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seqs_arrive_in_commit_order_without_gaps_under_concurrent_writers() {
    let _admin = realtime_samples_table("feed_samples").await;
    let target = uuid::Uuid::new_v4();
    let others: Vec<uuid::Uuid> = (0..8).map(|_| uuid::Uuid::new_v4()).collect();
    let mut users = vec![target];
    users.extend(&others);

    let mut listeners = HashMap::new();
    for u in &users {
        let (client, rx) = connect_listening().await;
        let ch = channel_of(&client, &token_for(u)).await;
        client.batch_execute(&format!("LISTEN \"{ch}\"")).await.unwrap();
        listeners.insert(*u, (client, rx));
    }

    // 8 writers for the target user, one writer for each other user: 16 concurrent connections.
    let mut writers = Vec::new();
    let writer_users: Vec<uuid::Uuid> = std::iter::repeat_n(target, 8).chain(others.iter().copied()).collect();
    for (w, u) in writer_users.into_iter().enumerate() {
        writers.push(tokio::spawn(async move {
            let c = connect().await;
            let token = token_for(&u);
            let mut written = 0usize;
            let mut i = 0usize;
            while written < PER_WRITER {
                let rows = (1 + (i * 7 + w) % 3).min(PER_WRITER - written); // 1–3 rows per statement
                let sql = format!(
                    "BEGIN; SET LOCAL ROLE authenticated; SELECT auth.authenticate('{token}') IS NULL; \
                     INSERT INTO feed_samples (value) SELECT g FROM generate_series(1, {rows}) g; COMMIT;"
                );
                c.simple_query(&sql).await.unwrap();
                written += rows;
                i += 1;
            }
            (u, written)
        }));
    }
    let mut expected: HashMap<uuid::Uuid, usize> = HashMap::new();
    for w in writers {
        let (u, n) = w.await.unwrap();
        *expected.entry(u).or_default() += n;
    }
    assert_eq!(expected.values().sum::<usize>(), 20_000);

    for u in &users {
        let (client, mut rx) = listeners.remove(u).unwrap();
        let got = drain(&mut rx, Duration::from_millis(1500), Duration::from_secs(60)).await;
        // Seqs in arrival order: each notification continues exactly where the previous ended.
        let mut next = 1i64;
        let mut heard: Vec<(i64, i64)> = Vec::new(); // (seq, id)
        for (_, payload) in &got {
            let v: serde_json::Value = serde_json::from_str(payload).unwrap();
            let (from, to) = (v["seq_from"].as_i64().unwrap(), v["seq_to"].as_i64().unwrap());
            assert_eq!(from, next, "user {u}: seq {from} arrived after {} (out of commit order or a gap)", next - 1);
            let rows = v["rows"].as_array().unwrap();
            assert_eq!(to - from + 1, rows.len() as i64, "one seq per row");
            for (k, r) in rows.iter().enumerate() {
                heard.push((from + k as i64, r["id"].as_i64().unwrap()));
            }
            next = to + 1;
        }
        assert_eq!(heard.len(), expected[u], "user {u}: every change heard once");

        // The feed itself says the same, in the same order.
        client.batch_execute("BEGIN").await.unwrap();
        client.query_one("SELECT auth.authenticate($1)", &[&token_for(u)]).await.unwrap();
        let logged: Vec<(i64, i64)> = client
            .query("SELECT seq, (keys->>'id')::int8 FROM health_rls.changes_since(0, 100000)", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        client.batch_execute("COMMIT").await.unwrap();
        assert_eq!(logged, heard, "user {u}: changes_since(0) equals what the listener heard");
    }
}
