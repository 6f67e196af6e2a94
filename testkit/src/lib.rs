//! Shared by the client integration tests of the workspace (the extension's and the gateway's): a
//! connection to the throwaway cluster that `scripts/integration` starts, tokens signed like a
//! real identity provider would, LISTEN connections that collect notifications, and the real
//! wearable exports the tests read.
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};

pub const HS_SECRET: &[u8] = b"integration-test HS256 secret of 32+ bytes";

pub fn dsn() -> String {
    std::env::var("HEALTH_RLS_TEST_DSN")
        .expect("HEALTH_RLS_TEST_DSN is not set: run these tests through scripts/integration (it starts the cluster)")
}

pub async fn connect() -> Client {
    let (client, conn) = tokio_postgres::connect(&dsn(), NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A connection to database `db` of the test cluster as `user`.
pub async fn connect_to(db: &str, user: &str) -> Client {
    let dsn =
        dsn().replace("dbname=postgres", &format!("dbname={db}")).replace("user=postgres", &format!("user={user}"));
    let (client, conn) = tokio_postgres::connect(&dsn, NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A fresh database `db` for a test that commits (tests run concurrently, each in its own):
/// the extension, the Supabase roles, the HS256 key "it1" and `app_role`, a login role that owns
/// nothing and can only become `authenticated` or `anon`. Returns a superuser connection to it.
pub async fn own_database(db: &str, app_role: &str) -> Client {
    use base64::Engine;
    let admin = connect().await;
    // Roles are cluster-wide: one set-up at a time.
    admin.batch_execute("SELECT pg_advisory_lock(20261204)").await.expect("lock");
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await.expect("drop database");
    admin.batch_execute(&format!("CREATE DATABASE {db}")).await.expect("create database");
    let client = connect_to(db, "postgres").await;
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(HS_SECRET);
    client
        .batch_execute(&format!(
            "CREATE EXTENSION health_rls;
             SELECT auth.create_roles();
             DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{app_role}') THEN CREATE ROLE {app_role} LOGIN NOINHERIT; END IF;
             END $$;
             GRANT authenticated, anon TO {app_role};
             SELECT auth.add_key('{{\"kty\":\"oct\",\"kid\":\"it1\",\"alg\":\"HS256\",\"k\":\"{k}\"}}');"
        ))
        .await
        .expect("set up the database");
    admin.batch_execute("SELECT pg_advisory_unlock(20261204)").await.expect("unlock");
    client
}

/// A connection whose notifications arrive on the returned receiver.
pub async fn connect_listening() -> (Client, mpsc::UnboundedReceiver<(String, String)>) {
    let (client, mut conn) = tokio_postgres::connect(&dsn(), NoTls).await.expect("connect");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(msg) = futures_util::future::poll_fn(|cx| conn.poll_message(cx)).await {
            match msg {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = tx.send((n.channel().to_string(), n.payload().to_string()));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    (client, rx)
}

/// The repository's root (this crate lives in `testkit/`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit/ has a parent").to_path_buf()
}

/// A licensed real export, part of the repository (`tests/data/realdata/apple_health/REL`):
/// always there, so a missing one fails the test instead of skipping it.
pub fn licensed_export(rel: &str) -> std::path::PathBuf {
    let p = repo_root().join("tests/data/realdata/apple_health").join(rel);
    assert!(p.is_file(), "{} is missing: it is part of the repository (tests/data/realdata)", p.display());
    p
}

/// A real export the repository may not carry (no stated licence, or GPL):
/// `$HEALTH_RLS_REALDATA/apple_health/REL`, the folder being `../shared/realdata` by default and
/// taken relative to the repository root. When it is not there, one `skipped:` line naming the
/// test goes to stderr (past the harness's capture, so it shows without --nocapture) and the
/// answer is `None`: the test leaves that part out, or returns early and passes.
pub fn unlicensed_export(rel: &str) -> Option<std::path::PathBuf> {
    use std::io::Write;
    let dir = std::env::var_os("HEALTH_RLS_REALDATA").filter(|d| !d.is_empty()).unwrap_or("../shared/realdata".into());
    let p = repo_root().join(dir).join("apple_health").join(rel);
    if p.is_file() {
        return Some(p);
    }
    let test = std::thread::current().name().unwrap_or("this test").to_string();
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test} needs {} (set HEALTH_RLS_REALDATA to a folder that has it)",
        p.display()
    );
    None
}

/// Idempotent set-up shared by every test (serialised: tests run concurrently): extension, Supabase roles, the HS256 key "it1".
pub async fn prepare(admin: &Client) {
    use base64::Engine;
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(HS_SECRET);
    // The lock is taken and released in transactions of their own: released inside the set-up's
    // transaction, it would let the next test in before the extension is committed.
    admin.batch_execute("SELECT pg_advisory_lock(20261124)").await.expect("lock");
    admin
        .batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS health_rls;
             SELECT auth.create_roles();
             DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM auth.keys WHERE kid = 'it1') THEN
                 PERFORM auth.add_key('{{\"kty\":\"oct\",\"kid\":\"it1\",\"alg\":\"HS256\",\"k\":\"{k}\"}}');
               END IF;
             END $$;"
        ))
        .await
        .expect("prepare");
    admin.batch_execute("SELECT pg_advisory_unlock(20261124)").await.expect("unlock");
}

pub fn token_for(sub: &uuid::Uuid) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("it1".into());
    let claims =
        serde_json::json!({"sub": sub.to_string(), "role": "authenticated", "aud": "authenticated", "exp": now + 3600});
    encode(&header, &claims, &EncodingKey::from_secret(HS_SECRET)).unwrap()
}

/// The caller's channel, asked the way an app or relay would: authenticate, then my_channel().
pub async fn channel_of(client: &Client, token: &str) -> String {
    client.batch_execute("BEGIN").await.unwrap();
    client.query_one("SELECT auth.authenticate($1)", &[&token]).await.unwrap();
    let ch: String = client.query_one("SELECT auth.my_channel()", &[]).await.unwrap().get(0);
    client.batch_execute("COMMIT").await.unwrap();
    ch
}

/// Collect notifications until `quiet` passes without one (or `max` in total).
pub async fn drain(
    rx: &mut mpsc::UnboundedReceiver<(String, String)>,
    quiet: Duration,
    max: Duration,
) -> Vec<(String, String)> {
    let start = std::time::Instant::now();
    let mut out = Vec::new();
    while start.elapsed() < max {
        match tokio::time::timeout(quiet, rx.recv()).await {
            Ok(Some(n)) => out.push(n),
            _ => break,
        }
    }
    out
}

/// A fresh samples table `table` (id, user_id = auth.uid(), kind, value, recorded_at) with the
/// generator's owner RLS for every command and realtime in keys mode; returns the admin client.
pub async fn realtime_samples_table(table: &str) -> Client {
    let admin = connect().await;
    prepare(&admin).await;
    admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table};
             CREATE TABLE {table} (id bigint generated always as identity primary key,
                 user_id uuid not null default auth.uid(), kind text not null default 'heart_rate', value float8,
                 recorded_at timestamptz not null default now());
             SELECT count(*) FROM health_rls.enable_owner_rls('{table}', commands => '{{all}}');
             SELECT count(*) FROM health_rls.enable_realtime('{table}');"
        ))
        .await
        .expect("create the realtime samples table");
    admin
}

/// `sql` with `params` as the token's user (role `authenticated`, identity from
/// `auth.authenticate`), in a transaction of its own: what an app's one statement is. Its rows.
pub async fn query_as(
    client: &Client,
    token: &str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Vec<tokio_postgres::Row> {
    client.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    client.query_one("SELECT auth.authenticate($1)", &[&token]).await.unwrap();
    let rows = client.query(sql, params).await.unwrap();
    client.batch_execute("COMMIT").await.unwrap();
    rows
}
