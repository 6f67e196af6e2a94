//! Behind pgbouncer in transaction mode, server connections are shared by every client; the
//! identity made by auth.authenticate must end with each transaction, so no user ever sees
//! another's rows and an unauthenticated transaction sees nothing.
mod common;

use common::*;
use std::collections::HashMap;
use tokio_postgres::{NoTls, SimpleQueryMessage};

fn pooler_dsn() -> String {
    std::env::var("HEALTH_RLS_TEST_POOLER_DSN")
        .expect("HEALTH_RLS_TEST_POOLER_DSN is not set: run through scripts/integration (it starts pgbouncer)")
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Rows of the last statement of a simple-query batch (simple protocol: pgbouncer-safe).
fn last_rows(msgs: Vec<SimpleQueryMessage>) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for m in msgs {
        match m {
            SimpleQueryMessage::Row(r) => out.push(r.get(0).map(str::to_string)),
            SimpleQueryMessage::CommandComplete(_) => {}
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_interleaved_on_pooled_connections_never_see_each_other() {
    let admin = connect().await;
    prepare(&admin).await;
    let users: Vec<uuid::Uuid> = (0..8).map(|_| uuid::Uuid::new_v4()).collect();
    admin
        .batch_execute(
            "DROP TABLE IF EXISTS pool_rows;
             CREATE TABLE pool_rows (id bigint generated always as identity primary key, user_id uuid not null, v int);
             SELECT count(*) FROM health_rls.enable_owner_rls('pool_rows');",
        )
        .await
        .unwrap();
    let mut expected: HashMap<uuid::Uuid, usize> = HashMap::new();
    for (i, u) in users.iter().enumerate() {
        let n = 3 + i; // distinct counts: a wrong identity shows up as a wrong count too
        admin
            .execute(
                "INSERT INTO pool_rows (user_id, v) SELECT $1, g FROM generate_series(1, $2::int) g",
                &[u, &(n as i32)],
            )
            .await
            .unwrap();
        expected.insert(*u, n);
    }

    let mut tasks = Vec::new();
    for client_no in 0..8usize {
        let users = users.clone();
        let expected = expected.clone();
        tasks.push(tokio::spawn(async move {
            let (c, conn) = tokio_postgres::connect(&pooler_dsn(), NoTls).await.expect("connect through pgbouncer");
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let mut checked = 0usize;
            for tx in 0..1000usize {
                if (tx + client_no) % 10 == 0 {
                    // No authenticate: right after other users' transactions on the same server
                    // connection, this one must be nobody and see nothing.
                    let rows = last_rows(
                        c.simple_query("BEGIN; SET LOCAL ROLE authenticated; SELECT coalesce(auth.uid()::text, 'nobody') || ':' || (SELECT count(*) FROM pool_rows); COMMIT;")
                            .await
                            .unwrap(),
                    );
                    assert_eq!(rows, vec![Some("nobody:0".to_string())], "client {client_no} tx {tx}");
                    continue;
                }
                let user = users[(tx * 7 + client_no) % users.len()];
                let sql = format!(
                    "BEGIN; SET LOCAL ROLE authenticated; SELECT auth.authenticate({}) IS NOT NULL; \
                     SELECT user_id::text FROM pool_rows; COMMIT;",
                    literal(&token_for(&user))
                );
                let rows = last_rows(c.simple_query(&sql).await.unwrap());
                // First row is the authenticate result, the rest are the visible rows.
                assert_eq!(rows[0].as_deref(), Some("t"));
                let seen = &rows[1..];
                assert_eq!(seen.len(), expected[&user], "client {client_no} tx {tx}: wrong number of rows");
                assert!(
                    seen.iter().all(|r| r.as_deref() == Some(user.to_string().as_str())),
                    "client {client_no} tx {tx}: another user's row was returned"
                );
                checked += 1;
            }
            checked
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("client task");
    }
    assert_eq!(total, 8 * 900, "every authenticated transaction was checked");

    // The pool really was shared: 8 clients over at most 2 server connections.
    let servers: i64 = admin
        .query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = '' AND backend_type = 'client backend' AND client_port IS NOT NULL AND pid <> pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(servers <= 4, "expected pgbouncer to multiplex onto few server connections, saw {servers}");
}

/// Trust mode as PostgREST uses it behind a pool: each transaction sets `request.jwt.claims`
/// with set_config(..., true); a policy written unwrapped (`auth.uid() = user_id`, evaluated
/// once per execution by the planner support). The identity follows the claims exactly: a
/// change mid-transaction, a rolled-back savepoint, the next transaction on the same server
/// connection (claims gone: nobody).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_claims_on_pooled_connections_follow_every_change() {
    let admin = connect().await;
    prepare(&admin).await;
    let users: Vec<uuid::Uuid> = (0..6).map(|_| uuid::Uuid::new_v4()).collect();
    admin
        .batch_execute(
            "DROP TABLE IF EXISTS pool_trust;
             CREATE TABLE pool_trust (user_id uuid not null, v int);
             ALTER TABLE pool_trust ENABLE ROW LEVEL SECURITY;
             CREATE POLICY unwrapped ON pool_trust TO authenticated USING (auth.uid() = user_id);
             GRANT SELECT ON pool_trust TO authenticated;",
        )
        .await
        .unwrap();
    let mut count: HashMap<uuid::Uuid, usize> = HashMap::new();
    for (i, u) in users.iter().enumerate() {
        let n = 2 + i;
        admin
            .execute("INSERT INTO pool_trust SELECT $1, g FROM generate_series(1, $2::int) g", &[u, &(n as i32)])
            .await
            .unwrap();
        count.insert(*u, n);
    }
    // Who the transaction is, how many rows it sees, and how many of those are someone else's.
    const WHO: &str = "SELECT coalesce(auth.uid()::text, 'nobody') || ':' || count(*) || ':' \
                       || count(*) FILTER (WHERE user_id IS DISTINCT FROM auth.uid()) FROM pool_trust;";
    let claims = |u: &uuid::Uuid| {
        format!(
            "SELECT set_config('request.jwt.claims', {}, true) IS NOT NULL;",
            literal(&format!(r#"{{"sub":"{u}","role":"authenticated"}}"#))
        )
    };
    let mut tasks = Vec::new();
    for client_no in 0..6usize {
        let (users, count) = (users.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            let (c, conn) = tokio_postgres::connect(&pooler_dsn(), NoTls).await.expect("connect through pgbouncer");
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let begin = "BEGIN; SET LOCAL health_rls.trust_request_claims = on; SET LOCAL ROLE authenticated;";
            for tx in 0..400usize {
                if (tx + client_no) % 8 == 0 {
                    let rows = last_rows(c.simple_query(&format!("{begin} {WHO} COMMIT;")).await.unwrap());
                    assert_eq!(rows, vec![Some("nobody:0:0".to_string())], "client {client_no} tx {tx}");
                    continue;
                }
                let a = users[(tx * 5 + client_no) % users.len()];
                let b = users[(tx * 5 + client_no + 1) % users.len()];
                let sql = format!(
                    "{begin} {} {WHO} {} {WHO} SAVEPOINT s; {} {WHO} ROLLBACK TO SAVEPOINT s; {WHO} COMMIT;",
                    claims(&a),
                    claims(&b),
                    claims(&a)
                );
                let seen = |u: &uuid::Uuid| Some(format!("{u}:{}:0", count[u]));
                let t = Some("t".to_string());
                let expected = vec![t.clone(), seen(&a), t.clone(), seen(&b), t, seen(&a), seen(&b)];
                assert_eq!(last_rows(c.simple_query(&sql).await.unwrap()), expected, "client {client_no} tx {tx}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
}
