//! Two attacks, tried as an attacker would: on real connections, as an application role that owns
//! nothing, with committed transactions (what pg_regress's `begin; … rollback;` cannot show).
//!
//! 1. A token whose session is gone (erased account, session row deleted by hand) is refused
//!    with 28000 for everything it could be used for: `auth.uid()`, a read, an insert, `ingest`.
//! 2. A grantee who rolls back its read still leaves the access log entry the owner sees.
//!
//! Runs in a database of its own.
mod common;

use common::*;
use serde_json::Value;
use tokio_postgres::Client;

/// A database of its own with the standard table and four accounts.
async fn set_up(name: &str) -> Client {
    let db = own_database(name, "attacks_app").await;
    db.batch_execute(
        "SELECT health.create_metric_table('public.health_metrics');
         SELECT auth.sign_up('ada@example.com', 'ada password 1'), auth.sign_up('bob@example.com', 'bob password 1'),
                auth.sign_up('cy@example.com', 'cy password 12'), auth.sign_up('dee@example.com', 'dee password 1');",
    )
    .await
    .unwrap();
    db
}

/// A signed-in user's access token, as the app gets it.
async fn sign_in(app: &Client, email: &str, password: &str) -> String {
    let s: Value = app.query_one("SELECT auth.start_session($1, $2)", &[&email, &password]).await.unwrap().get(0);
    s["access_token"].as_str().unwrap().to_string()
}

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code().map(|c| c.code().to_string()).unwrap_or_else(|| e.to_string())
}

/// What each use of a token does, each in its own committed-or-failed transaction as the app
/// role through `authenticated`: "ok" or the SQLSTATE that stopped it.
async fn uses_of(app: &Client, token: &str) -> Vec<(&'static str, String)> {
    let uses: [(&str, &str); 4] = [
        ("auth.uid()", "SELECT auth.uid()"),
        ("read", "SELECT count(*) FROM health_metrics"),
        (
            "insert",
            "INSERT INTO health_metrics (kind, value, unit, recorded_at) VALUES ('heart_rate', 61, '/min', now())",
        ),
        (
            "ingest",
            "SELECT count(*) FROM health.ingest('health_metrics', \
             '[{\"kind\":\"heart_rate\",\"value\":62,\"unit\":\"/min\",\"recorded_at\":\"2026-12-01T08:00:00Z\"}]')",
        ),
    ];
    let mut out = Vec::new();
    for (name, sql) in uses {
        app.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
        let r = match app.query("SELECT auth.authenticate($1)", &[&token]).await {
            Err(e) => sqlstate(&e),
            Ok(_) => match app.query(sql, &[]).await {
                Err(e) => sqlstate(&e),
                Ok(_) => "ok".into(),
            },
        };
        app.batch_execute(if r == "ok" { "COMMIT" } else { "ROLLBACK" }).await.unwrap();
        out.push((name, r));
    }
    out
}

fn all(outcome: &str) -> Vec<(&'static str, String)> {
    ["auth.uid()", "read", "insert", "ingest"].into_iter().map(|n| (n, outcome.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_its_session_or_account_is_refused() {
    let db = set_up("attacks_token_test").await;
    let app = connect_to("attacks_token_test", "attacks_app").await;

    // ---- erasure: the erased user's token must not outlive the account -------------------------
    let ada = sign_in(&app, "ada@example.com", "ada password 1").await;
    assert_eq!(uses_of(&app, &ada).await, all("ok"), "the token works while the account exists");
    app.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    app.query("SELECT auth.authenticate($1)", &[&ada]).await.unwrap();
    app.query("SELECT health.erase_my_data('ada@example.com')", &[]).await.unwrap();
    app.batch_execute("COMMIT").await.unwrap();
    // The same connection verified this token before (its backend cached it): still refused.
    assert_eq!(uses_of(&app, &ada).await, all("28000"), "an erased user's token is refused for everything");
    let fresh = connect_to("attacks_token_test", "attacks_app").await;
    assert_eq!(uses_of(&fresh, &ada).await, all("28000"), "... on a new connection too");
    let left: i64 = db
        .query_one("SELECT count(*) FROM health_metrics m WHERE NOT EXISTS (SELECT 1 FROM auth.users u WHERE u.id = m.user_id)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "nothing was written under the erased account");

    // ---- a session row deleted by hand (a DBA, retention) ------------------------------------
    let bob = sign_in(&app, "bob@example.com", "bob password 1").await;
    let other_bob_session = sign_in(&app, "bob@example.com", "bob password 1").await;
    assert_eq!(uses_of(&app, &bob).await, all("ok"));
    db.batch_execute(
        "DELETE FROM auth.sessions WHERE id = (SELECT s.id FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id \
          WHERE u.email = 'bob@example.com' ORDER BY s.created_at LIMIT 1)",
    )
    .await
    .unwrap();
    assert_eq!(uses_of(&app, &bob).await, all("28000"), "a missing session row means revoked");
    assert_eq!(uses_of(&app, &other_bob_session).await, all("ok"), "bob's other session is untouched");
    app.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    let err = app.query("SELECT auth.authenticate($1)", &[&bob]).await.unwrap_err();
    let text = err.as_db_error().unwrap().message().to_string();
    app.batch_execute("ROLLBACK").await.unwrap();
    assert!(text.contains("revoked session"), "{text}");
    assert!(!text.contains(&bob) && !text.contains(bob.split('.').nth(1).unwrap()), "the token is never echoed");

    // ---- a session that names another user (a forged session_id in our key's token) ---------
    let cy_session: String = db
        .query_one(
            "SELECT s.id::text FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id WHERE u.email = 'bob@example.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let cy_id: uuid::Uuid =
        db.query_one("SELECT id FROM auth.users WHERE email = 'cy@example.com'", &[]).await.unwrap().get(0);
    let forged = {
        use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("it1".into());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let claims = serde_json::json!({"sub": cy_id.to_string(), "role": "authenticated", "aud": "authenticated",
                                        "exp": now + 600, "session_id": cy_session});
        encode(&h, &claims, &EncodingKey::from_secret(HS_SECRET)).unwrap()
    };
    assert_eq!(uses_of(&app, &forged).await, all("28000"), "a session of another user is not cy's session");
    // Tokens of our key without a session (an API's own service tokens) keep working.
    assert_eq!(uses_of(&app, &token_for(&cy_id)).await, all("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grantee_who_rolls_back_still_leaves_the_log_entry() {
    let db = set_up("attacks_log_test").await;
    let app = connect_to("attacks_log_test", "attacks_app").await;
    let owner = sign_in(&app, "ada@example.com", "ada password 1").await;
    let carer = sign_in(&app, "bob@example.com", "bob password 1").await;
    let carer_id: uuid::Uuid =
        db.query_one("SELECT id FROM auth.users WHERE email = 'bob@example.com'", &[]).await.unwrap().get(0);
    let owner_id: uuid::Uuid =
        db.query_one("SELECT id FROM auth.users WHERE email = 'ada@example.com'", &[]).await.unwrap().get(0);

    app.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    app.query("SELECT auth.authenticate($1)", &[&owner]).await.unwrap();
    app.batch_execute(
        "SELECT count(*) FROM health.ingest('health_metrics', '[
            {\"kind\":\"heart_rate\",\"value\":60,\"unit\":\"/min\",\"recorded_at\":\"2026-12-01T08:00:00Z\"},
            {\"kind\":\"heart_rate\",\"value\":61,\"unit\":\"/min\",\"recorded_at\":\"2026-12-01T08:01:00Z\"},
            {\"kind\":\"heart_rate\",\"value\":62,\"unit\":\"/min\",\"recorded_at\":\"2026-12-01T08:02:00Z\"}]')",
    )
    .await
    .unwrap();
    app.query("SELECT health.share($1, '{heart_rate}')", &[&carer_id]).await.unwrap();
    app.batch_execute("COMMIT").await.unwrap();

    // The snoop: read everything, then roll back.
    app.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    app.query("SELECT auth.authenticate($1)", &[&carer]).await.unwrap();
    let read = app.query("SELECT value FROM health.shared_samples($1)", &[&owner_id]).await.unwrap();
    assert_eq!(read.len(), 3, "the grantee did read the owner's rows");
    app.batch_execute("ROLLBACK").await.unwrap();

    // The owner, in a transaction of its own, sees who read what.
    app.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    app.query("SELECT auth.authenticate($1)", &[&owner]).await.unwrap();
    let log = app.query("SELECT grantee_email, kinds, row_count FROM health.my_access_log()", &[]).await.unwrap();
    app.batch_execute("COMMIT").await.unwrap();
    assert_eq!(log.len(), 1, "the rolled-back read is in the owner's access log");
    assert_eq!(log[0].get::<_, Option<String>>(0).as_deref(), Some("bob@example.com"));
    assert_eq!(log[0].get::<_, Vec<String>>(1), vec!["heart_rate".to_string()]);
    assert_eq!(log[0].get::<_, i32>(2), 3);

    // A read that raises after the rows were read (here: the statement is cancelled by its own
    // error) leaves the entry too: the entry is committed before any row is returned.
    app.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    app.query("SELECT auth.authenticate($1)", &[&carer]).await.unwrap();
    let err =
        app.query("SELECT 1 / (count(*) - 3)::int FROM health.shared_samples($1)", &[&owner_id]).await.unwrap_err();
    assert_eq!(sqlstate(&err), "22012");
    app.batch_execute("ROLLBACK").await.unwrap();
    let entries: i64 = db
        .query_one(
            "SELECT count(*) FROM health.access_log WHERE owner_id = $1 AND grantee_id = $2",
            &[&owner_id, &carer_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(entries, 2, "both reads are logged, neither could be rolled back");
    // And the grantee cannot remove them.
    app.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    app.query("SELECT auth.authenticate($1)", &[&carer]).await.unwrap();
    let err = app.query("DELETE FROM health.access_log", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    app.batch_execute("ROLLBACK").await.unwrap();
}
