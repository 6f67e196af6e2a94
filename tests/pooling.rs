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
