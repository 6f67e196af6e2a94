//! Realtime under load: 10,000 events across 50 users with 50 listeners (one per user):
//! none lost, none delivered to the wrong user.
mod common;

use common::*;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_fifty_users_none_lost_none_misdelivered() {
    let admin = realtime_samples_table("load_samples").await;
    let users: Vec<uuid::Uuid> = (0..50).map(|_| uuid::Uuid::new_v4()).collect();
    let mut listeners = Vec::new();
    for u in &users {
        let (client, rx) = connect_listening().await;
        let ch = channel_of(&client, &token_for(u)).await;
        client.batch_execute(&format!("LISTEN \"{ch}\"")).await.unwrap();
        listeners.push((client, rx, ch));
    }

    // 4 writers, each one statement (one event) per transaction, users interleaved.
    let per_user = 200usize;
    let mut writers = Vec::new();
    for w in 0..4usize {
        let users = users.clone();
        let tokens: Vec<String> = users.iter().map(token_for).collect();
        writers.push(tokio::spawn(async move {
            let c = connect().await;
            let mut written: HashMap<usize, Vec<i64>> = HashMap::new();
            for i in 0..(per_user * users.len() / 4) {
                let u = (i * 4 + w) % users.len();
                // One round trip per transaction (simple protocol; the token is a base64url literal).
                let sql = format!(
                    "BEGIN; SET LOCAL ROLE authenticated; SELECT auth.authenticate('{}') IS NULL; \
                     INSERT INTO load_samples (value) VALUES (1) RETURNING id; COMMIT;",
                    tokens[u]
                );
                let id: i64 = c
                    .simple_query(&sql)
                    .await
                    .unwrap()
                    .iter()
                    .filter_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
                        _ => None,
                    })
                    .next()
                    .expect("the inserted id");
                written.entry(u).or_default().push(id);
            }
            written
        }));
    }
    let mut expected: HashMap<usize, BTreeSet<i64>> = HashMap::new();
    for w in writers {
        for (u, ids) in w.await.unwrap() {
            expected.entry(u).or_default().extend(ids);
        }
    }
    // What the writers were told they wrote is what the table holds, per owner: the reference the
    // listeners are compared with is the database, not the test's own bookkeeping.
    let stored: HashMap<uuid::Uuid, BTreeSet<i64>> = admin
        .query("SELECT user_id, array_agg(id) FROM load_samples GROUP BY user_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, uuid::Uuid>(0), r.get::<_, Vec<i64>>(1).into_iter().collect()))
        .collect();
    assert_eq!(stored.len(), users.len(), "every user wrote");
    for (u, ids) in &expected {
        assert_eq!(
            stored.get(&users[*u]),
            Some(ids),
            "user {u}: the table holds exactly the rows written as that user"
        );
    }

    let mut total = 0;
    for (u, (_client, mut rx, ch)) in listeners.into_iter().enumerate() {
        let got = drain(&mut rx, Duration::from_millis(1000), Duration::from_secs(60)).await;
        assert!(got.iter().all(|(c, _)| *c == ch), "user {u} received on a foreign channel");
        let ids: Vec<i64> = got
            .iter()
            .flat_map(|(_, p)| {
                serde_json::from_str::<serde_json::Value>(p).unwrap()["rows"].as_array().unwrap().clone()
            })
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids.len(), per_user, "user {u}: one event per write, none lost or repeated");
        assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected[&u], "user {u}: exactly its own rows");
        total += got.len();
    }
    assert_eq!(total, 10_000);
}
