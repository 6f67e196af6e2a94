//! Realtime with real connections: each user LISTENs on its own channel, an attacker LISTENs on
//! every channel name it can derive from the victims' plain ids, both users write.
mod common;

use common::*;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::time::Duration;

fn ids_in(payloads: &[(String, String)], op: &str) -> Vec<i64> {
    payloads
        .iter()
        .filter_map(|(_, p)| serde_json::from_str::<serde_json::Value>(p).ok())
        .filter(|v| v["op"] == op)
        .flat_map(|v| v["rows"].as_array().cloned().unwrap_or_default())
        .map(|r| r["id"].as_i64().expect("every row carries its id"))
        .collect()
}

fn guesses(uid: &uuid::Uuid) -> Vec<String> {
    let plain = uid.to_string();
    let simple = uid.simple().to_string();
    let sha = hex(&Sha256::digest(uid.as_bytes()));
    let sha_text = hex(&Sha256::digest(plain.as_bytes()));
    let mut mac = Hmac::<Sha256>::new_from_slice(b"").unwrap();
    mac.update(b"health_rls channel v1:");
    mac.update(uid.as_bytes());
    let empty_key = hex(&mac.finalize().into_bytes());
    vec![
        plain.clone(),
        simple.clone(),
        format!("hrls_{simple}"),
        format!("hrls_{plain}"),
        format!("hrls_{}", &sha[..40]),
        format!("hrls_{}", &sha_text[..40]),
        format!("hrls_{}", &empty_key[..40]),
        format!("user:{plain}"),
        format!("realtime:{plain}"),
    ]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_hears_exactly_its_own_events() {
    let _admin = realtime_samples_table("rt_samples").await;

    let alice = uuid::Uuid::new_v4();
    let bob = uuid::Uuid::new_v4();
    let (alice_l, mut alice_rx) = connect_listening().await;
    let (bob_l, mut bob_rx) = connect_listening().await;
    // The attacker is a user too (mallory): it listens on its own channel, so its connection
    // demonstrably receives, and on every name it can derive from the victims' plain ids.
    let mallory = uuid::Uuid::new_v4();
    let (attacker, mut attacker_rx) = connect_listening().await;
    let alice_ch = channel_of(&alice_l, &token_for(&alice)).await;
    let bob_ch = channel_of(&bob_l, &token_for(&bob)).await;
    let mallory_ch = channel_of(&attacker, &token_for(&mallory)).await;
    assert_ne!(alice_ch, bob_ch);
    attacker.batch_execute(&format!("LISTEN \"{mallory_ch}\"")).await.unwrap();
    alice_l.batch_execute(&format!("LISTEN \"{alice_ch}\"")).await.unwrap();
    bob_l.batch_execute(&format!("LISTEN \"{bob_ch}\"")).await.unwrap();
    for g in guesses(&alice).into_iter().chain(guesses(&bob)) {
        assert_ne!(g, alice_ch);
        assert_ne!(g, bob_ch);
        attacker.batch_execute(&format!("LISTEN \"{g}\"")).await.unwrap();
    }

    // Writers: the API's shape — one transaction per request, role authenticated, a verified token.
    let w = connect().await;
    let write = |token: String, sql: &'static str| {
        let w = &w;
        async move {
            w.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
            w.query_one("SELECT auth.authenticate($1)", &[&token]).await.unwrap();
            let ids: Vec<i64> = w.query(sql, &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
            w.batch_execute("COMMIT").await.unwrap();
            ids
        }
    };
    let (ta, tb) = (token_for(&alice), token_for(&bob));
    let mut alice_inserted = Vec::new();
    for _ in 0..3 {
        alice_inserted.extend(
            write(ta.clone(), "INSERT INTO rt_samples (kind, value) VALUES ('heart_rate', 70) RETURNING id").await,
        );
    }
    let mut bob_inserted = Vec::new();
    for _ in 0..2 {
        bob_inserted
            .extend(write(tb.clone(), "INSERT INTO rt_samples (kind, value) VALUES ('steps', 100) RETURNING id").await);
    }
    let alice_updated = write(ta.clone(), "UPDATE rt_samples SET value = 71 RETURNING id").await;
    let bob_updated = write(tb.clone(), "UPDATE rt_samples SET value = 101 RETURNING id").await;
    let alice_deleted =
        write(ta.clone(), "DELETE FROM rt_samples WHERE id = (SELECT min(id) FROM rt_samples) RETURNING id").await;
    assert_eq!((alice_updated.len(), bob_updated.len(), alice_deleted.len()), (3, 2, 1), "RLS scoped every write");

    // A rolled-back insert is never announced.
    w.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    w.query_one("SELECT auth.authenticate($1)", &[&ta]).await.unwrap();
    w.execute("INSERT INTO rt_samples (kind, value) VALUES ('heart_rate', 99)", &[]).await.unwrap();
    w.batch_execute("ROLLBACK").await.unwrap();

    // A 5,000-row batch arrives complete, split under the 8000-byte limit.
    let batch = write(
        tb.clone(),
        "INSERT INTO rt_samples (kind, value, recorded_at)
         SELECT 'heart_rate', 60 + g % 40, now() - g * interval '1 second' FROM generate_series(1, 5000) g RETURNING id",
    )
    .await;

    let mallory_inserted =
        write(token_for(&mallory), "INSERT INTO rt_samples (kind, value) VALUES ('steps', 1) RETURNING id").await;

    let quiet = Duration::from_millis(1500);
    let got_alice = drain(&mut alice_rx, quiet, Duration::from_secs(20)).await;
    let got_bob = drain(&mut bob_rx, quiet, Duration::from_secs(20)).await;
    let got_attacker = drain(&mut attacker_rx, Duration::from_millis(500), Duration::from_secs(5)).await;

    assert_eq!(got_attacker.len(), 1, "the attacker hears its own write and nothing else: {got_attacker:?}");
    assert_eq!(got_attacker[0].0, mallory_ch);
    assert_eq!(ids_in(&got_attacker, "INSERT"), mallory_inserted);
    assert!(got_alice.iter().all(|(c, _)| *c == alice_ch));
    assert!(got_bob.iter().all(|(c, _)| *c == bob_ch));
    for (_, p) in got_alice.iter().chain(&got_bob) {
        assert!(p.len() < 8000, "payload of {} bytes", p.len());
        assert!(!p.contains("\"value\""), "keys payloads carry no health values");
    }

    // Alice: 3 single-row inserts, 1 update statement, 1 delete = 5 notifications.
    assert_eq!(got_alice.len(), 5, "alice: {got_alice:?}");
    assert_eq!(ids_in(&got_alice, "INSERT"), alice_inserted);
    assert_eq!(
        ids_in(&got_alice, "UPDATE").into_iter().collect::<BTreeSet<_>>(),
        alice_updated.iter().copied().collect()
    );
    assert_eq!(ids_in(&got_alice, "DELETE"), alice_deleted);

    // Bob: 2 inserts, 1 update, and the batch split into parts whose ids add up exactly.
    let batch_ids: BTreeSet<i64> = batch.iter().copied().collect();
    let bob_insert_ids = ids_in(&got_bob, "INSERT");
    assert_eq!(bob_insert_ids.len(), 2 + 5000, "no id lost or repeated");
    let heard: BTreeSet<i64> = bob_insert_ids.iter().copied().collect();
    assert!(batch_ids.is_subset(&heard));
    assert!(bob_inserted.iter().all(|i| heard.contains(i)));
    let batch_parts = got_bob.len() - 3;
    assert!(batch_parts > 1, "a 5,000-row batch needs several notifications");
    assert_eq!(ids_in(&got_bob, "UPDATE").len(), 2);
}

/// Create `table` with `columns`, owner RLS and realtime (`payload`), then insert a row for one
/// user, move it to another, delete it; returns what each of the two owners heard.
async fn owner_change(
    table: &str,
    columns: &str,
    insert: &str,
    payload: &str,
) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let admin = connect().await;
    prepare(&admin).await;
    admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table};
             CREATE TABLE {table} (id bigint generated always as identity primary key, user_id uuid not null, {columns});
             SELECT count(*) FROM health_rls.enable_owner_rls('{table}', commands => '{{all}}');
             SELECT count(*) FROM health_rls.enable_realtime('{table}', payload => '{payload}');"
        ))
        .await
        .unwrap();
    let (old_owner, new_owner) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let (l_old, mut rx_old) = connect_listening().await;
    let (l_new, mut rx_new) = connect_listening().await;
    let ch_old = channel_of(&l_old, &token_for(&old_owner)).await;
    let ch_new = channel_of(&l_new, &token_for(&new_owner)).await;
    l_old.batch_execute(&format!("LISTEN \"{ch_old}\"")).await.unwrap();
    l_new.batch_execute(&format!("LISTEN \"{ch_new}\"")).await.unwrap();
    admin
        .execute(&format!("INSERT INTO {table} (user_id, {insert}) VALUES ($1, 'first')"), &[&old_owner])
        .await
        .unwrap();
    admin.execute(&format!("UPDATE {table} SET user_id = $1, {insert} = 'moved'"), &[&new_owner]).await.unwrap();
    admin.execute(&format!("DELETE FROM {table}"), &[]).await.unwrap();
    (
        drain(&mut rx_old, Duration::from_millis(800), Duration::from_secs(10)).await,
        drain(&mut rx_new, Duration::from_millis(800), Duration::from_secs(10)).await,
    )
}

fn ops(v: &[(String, String)]) -> Vec<String> {
    v.iter()
        .map(|(_, p)| serde_json::from_str::<serde_json::Value>(p).unwrap()["op"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_change_is_told_to_old_and_new_owner() {
    let (got_old, got_new) = owner_change("rt_moves", "note text", "note", "row").await;
    assert_eq!(ops(&got_old), ["INSERT", "UPDATE"], "the old owner hears its row leave, nothing after");
    assert!(!got_old[1].1.contains("moved"), "the old owner gets the old row, not the new owner's data");
    assert_eq!(ops(&got_new), ["UPDATE", "DELETE"], "the new owner hears the move and the delete");
    assert!(got_new[0].1.contains("moved"), "row payloads carry the row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_change_on_the_standard_shape_is_told_to_both_owners() {
    // The standard table shape (id/user_id/kind/recorded_at) in keys mode.
    let (got_old, got_new) = owner_change(
        "rt_moves_std",
        "kind text not null, recorded_at timestamptz not null default now()",
        "kind",
        "keys",
    )
    .await;
    assert_eq!(ops(&got_old), ["INSERT", "UPDATE"]);
    assert_eq!(ops(&got_new), ["UPDATE", "DELETE"]);
}

/// One `health.ingest` batch as `token`'s user; returns (status, id) per element.
async fn ingest(
    client: &tokio_postgres::Client,
    token: &str,
    table: &str,
    batch: serde_json::Value,
) -> Vec<(String, i64)> {
    query_as(
        client,
        token,
        &format!("SELECT status, id FROM health.ingest('{table}', $1::jsonb) ORDER BY ord"),
        &[&batch],
    )
    .await
    .iter()
    .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_updated_and_deleted_by_ingest_are_announced_to_their_owner_only() {
    let admin = connect().await;
    prepare(&admin).await;
    admin
        .batch_execute("DROP TABLE IF EXISTS rt_ingest; SELECT health.create_metric_table('public.rt_ingest')")
        .await
        .unwrap();
    let (owner, other) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let (listener, mut rx) = connect_listening().await;
    let ch = channel_of(&listener, &token_for(&owner)).await;
    listener.batch_execute(&format!("LISTEN \"{ch}\"")).await.unwrap();
    let (other_listener, mut other_rx) = connect_listening().await;
    let other_ch = channel_of(&other_listener, &token_for(&other)).await;
    other_listener.batch_execute(&format!("LISTEN \"{other_ch}\"")).await.unwrap();

    let w = connect().await;
    let t = token_for(&owner);
    let sample = |v: i64, version: i64| {
        serde_json::json!([{"kind": "HKQuantityTypeIdentifierHeartRate", "value": v, "unit": "count/min",
            "start": "2021-11-30 07:47:59 +0200", "source": "watch", "sync_id": "hr-1", "sync_version": version}])
    };
    let inserted = ingest(&w, &t, "rt_ingest", sample(61, 1)).await;
    let updated = ingest(&w, &t, "rt_ingest", sample(62, 2)).await;
    let deleted = ingest(&w, &t, "rt_ingest", serde_json::json!([{"deleted": true, "sync_id": "hr-1"}])).await;
    assert_eq!(
        [&inserted[0].0, &updated[0].0, &deleted[0].0],
        ["inserted", "updated", "deleted"],
        "{inserted:?} {updated:?} {deleted:?}"
    );
    let id = inserted[0].1;
    assert_eq!((updated[0].1, deleted[0].1), (id, id), "the same row throughout");

    let got = drain(&mut rx, Duration::from_millis(1000), Duration::from_secs(10)).await;
    assert_eq!(ops(&got), ["INSERT", "UPDATE", "DELETE"], "one announcement per change: {got:?}");
    for op in ["INSERT", "UPDATE", "DELETE"] {
        assert_eq!(ids_in(&got, op), vec![id], "{op} names the row");
    }
    assert!(got.iter().all(|(_, p)| !p.contains("\"value\"")), "keys only: no values on the bus");
    let heard_by_other = drain(&mut other_rx, Duration::from_millis(300), Duration::from_secs(2)).await;
    assert!(heard_by_other.is_empty(), "another user hears nothing: {heard_by_other:?}");
}

/// An owner and a grantee with sessions (signed up afresh), a standard table `table`, and a
/// connection listening on the grantee's channel.
struct SharingPair {
    owner_token: String,
    owner_id: String,
    grantee_id: String,
    _listener: tokio_postgres::Client,
    rx: tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
}

async fn sharing_pair(table: &str, tag: &str) -> SharingPair {
    let admin = connect().await;
    prepare(&admin).await;
    let (owner, grantee) = (format!("owner-{tag}@example.com"), format!("grantee-{tag}@example.com"));
    admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; SELECT health.create_metric_table('public.{table}');
             DELETE FROM auth.users WHERE email IN ('{owner}', '{grantee}');
             SELECT auth.sign_up('{owner}', 'owner password');
             SELECT auth.sign_up('{grantee}', 'grantee password');"
        ))
        .await
        .unwrap();
    let session = |email: String, password: &'static str| {
        let admin = &admin;
        async move {
            let s: serde_json::Value =
                admin.query_one("SELECT auth.start_session($1, $2)", &[&email, &password]).await.unwrap().get(0);
            (s["access_token"].as_str().unwrap().to_string(), s["user"]["id"].as_str().unwrap().to_string())
        }
    };
    let (owner_token, owner_id) = session(owner, "owner password").await;
    let (grantee_token, grantee_id) = session(grantee, "grantee password").await;
    let (listener, rx) = connect_listening().await;
    let ch = channel_of(&listener, &grantee_token).await;
    listener.batch_execute(&format!("LISTEN \"{ch}\"")).await.unwrap();
    SharingPair { owner_token, owner_id, grantee_id, _listener: listener, rx }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grantees_hear_shared_samples_until_the_share_is_revoked() {
    let SharingPair { owner_token, owner_id, grantee_id, _listener, mut rx } = sharing_pair("rt_shared", "rt").await;

    let w = connect().await;
    w.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    w.query_one("SELECT auth.authenticate($1)", &[&owner_token]).await.unwrap();
    let share_id: uuid::Uuid =
        w.query_one("SELECT health.share($1::text::uuid, '{heart_rate}')", &[&grantee_id]).await.unwrap().get(0);
    w.batch_execute("COMMIT").await.unwrap();
    let batch = serde_json::json!([
        {"kind": "heart_rate", "value": 61, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z"},
        {"kind": "steps", "value": 100, "unit": "{steps}", "recorded_at": "2026-11-24T08:00:00Z"}]);
    let written = ingest(&w, &owner_token, "rt_shared", batch).await;
    let got = drain(&mut rx, Duration::from_millis(800), Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "one event: the shared kind only: {got:?}");
    let v: serde_json::Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(v["shared_by"], owner_id.as_str(), "says whose data it is");
    assert_eq!(ids_in(&got, "INSERT"), vec![written[0].1], "the heart rate, not the steps");
    assert!(v.get("seq_from").is_none(), "not part of the grantee's own feed");
    assert!(!got[0].1.contains("\"value\""), "keys only");

    // Revoked: the next write is not told to the grantee.
    w.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    w.query_one("SELECT auth.authenticate($1)", &[&owner_token]).await.unwrap();
    w.execute("SELECT health.revoke_share($1)", &[&share_id]).await.unwrap();
    w.batch_execute("COMMIT").await.unwrap();
    ingest(
        &w,
        &owner_token,
        "rt_shared",
        serde_json::json!([{"kind": "heart_rate", "value": 62, "unit": "/min", "recorded_at": "2026-11-24T09:00:00Z"}]),
    )
    .await;
    let after = drain(&mut rx, Duration::from_millis(800), Duration::from_secs(3)).await;
    assert!(after.is_empty(), "revocation stops the events at once: {after:?}");
}

/// A share given on another connection reaches a writer whose connection already wrote for that
/// owner before there was any share: the grantee hears its next write (nothing a backend read
/// about the owner's shares earlier may hold it back). Revoking and sharing again, likewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_given_elsewhere_reaches_a_writer_that_knew_the_owner_shared_nothing() {
    let SharingPair { owner_token, grantee_id, _listener, mut rx, .. } = sharing_pair("rt_shared_late", "late").await;
    let heart_rate = |minute: u32| {
        serde_json::json!([{"kind": "heart_rate", "value": 60, "unit": "/min",
                            "recorded_at": format!("2026-11-24T08:{minute:02}:00Z")}])
    };
    // The writer's connection writes while the owner shares nothing.
    let w = connect().await;
    ingest(&w, &owner_token, "rt_shared_late", heart_rate(0)).await;
    ingest(&w, &owner_token, "rt_shared_late", heart_rate(1)).await;
    let before = drain(&mut rx, Duration::from_millis(500), Duration::from_secs(2)).await;
    assert!(before.is_empty(), "nothing shared yet: {before:?}");

    // Another connection (the owner's phone) shares; the writer's next write is heard.
    let phone = connect().await;
    let share = |sql: &'static str| {
        let (phone, owner_token, grantee_id) = (&phone, owner_token.clone(), grantee_id.clone());
        async move {
            phone.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
            phone.query_one("SELECT auth.authenticate($1)", &[&owner_token]).await.unwrap();
            let row = phone.query_one(sql, &[&grantee_id]).await.unwrap();
            phone.batch_execute("COMMIT").await.unwrap();
            row
        }
    };
    share("SELECT health.share($1::text::uuid, '{heart_rate}')").await;
    let written = ingest(&w, &owner_token, "rt_shared_late", heart_rate(2)).await;
    let got = drain(&mut rx, Duration::from_millis(800), Duration::from_secs(5)).await;
    assert_eq!(ids_in(&got, "INSERT"), vec![written[0].1], "the first write after the share is heard: {got:?}");

    // Revoked elsewhere: silence; shared again elsewhere: heard again.
    share(
        "SELECT count(health.revoke_share((s.share ->> 'id')::uuid)) FROM health.shares() s \
          WHERE s.share ->> 'grantee_id' = $1::text AND (s.share ->> 'active')::boolean",
    )
    .await;
    ingest(&w, &owner_token, "rt_shared_late", heart_rate(3)).await;
    let after_revoke = drain(&mut rx, Duration::from_millis(800), Duration::from_secs(3)).await;
    assert!(after_revoke.is_empty(), "revoked: {after_revoke:?}");
    share("SELECT health.share($1::text::uuid, '{heart_rate}')").await;
    let again = ingest(&w, &owner_token, "rt_shared_late", heart_rate(4)).await;
    let got = drain(&mut rx, Duration::from_millis(800), Duration::from_secs(5)).await;
    assert_eq!(ids_in(&got, "INSERT"), vec![again[0].1], "shared again: heard again: {got:?}");
}
