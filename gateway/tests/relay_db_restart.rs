//! The relay heals after `pg_ctl restart` of the database under it: it reconnects, LISTENs again
//! and reads the change feed, so a subscriber that stayed connected to the relay gets every change
//! committed after the restart, each once, in order. (Its own test binary: it restarts the
//! cluster every other test uses.)
mod common;

use health_rls_gateway::relay;

use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

fn restart_database() {
    let dir = std::env::var("CLUSTER_DIR").expect("CLUSTER_DIR (scripts/integration's cluster)");
    let bindir = std::env::var("PG_BINDIR").expect("PG_BINDIR (scripts/integration)");
    let pg_ctl = format!("{bindir}/pg_ctl");
    let data = format!("{dir}/data");
    let mut cmd = if unsafe_is_root() {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--", &pg_ctl]);
        c
    } else {
        std::process::Command::new(&pg_ctl)
    };
    // The new postmaster must not inherit our pipes (we would wait for their EOF forever): its
    // output goes to the cluster's log, ours to nowhere.
    let log = format!("{dir}/server.log");
    let status = cmd
        .args(["-D", &data, "-l", &log, "restart", "-m", "fast", "-w"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("pg_ctl");
    assert!(status.success(), "pg_ctl restart failed (see {log})");
}

fn unsafe_is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_database_restart_the_relay_reconnects_and_misses_nothing() {
    let _admin = realtime_samples_table("rr_samples").await;
    let user = uuid::Uuid::new_v4();
    let token = token_for(&user);
    let relay = relay::Relay::connect(&dsn()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = relay::router(relay.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (status, s) = sse_open(addr, &token, None).await;
    assert_eq!(status, 200);
    let mut s = s.unwrap();
    sse_read(&mut s, Duration::from_millis(300)).await;

    restart_database();
    // Writes start as soon as the database accepts them, racing the relay's reconnection.
    let start = Instant::now();
    let w = loop {
        if let Ok((c, conn)) = tokio_postgres::connect(&dsn(), tokio_postgres::NoTls).await {
            tokio::spawn(async move {
                let _ = conn.await;
            });
            break c;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the database came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut written = Vec::new();
    for _ in 0..5 {
        w.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
        w.query_one("SELECT auth.authenticate($1)", &[&token]).await.unwrap();
        written.push(
            w.query_one("INSERT INTO rr_samples (value) VALUES (1) RETURNING id", &[]).await.unwrap().get::<_, i64>(0),
        );
        w.batch_execute("COMMIT").await.unwrap();
    }
    let (events, ended) = sse_read(&mut s, Duration::from_millis(2000)).await;
    assert!(!ended, "the subscriber's stream survived the restart");
    let mut next = 1;
    let mut heard = Vec::new();
    for e in events.iter().filter(|e| e.event == "change") {
        let v: Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(v["seq_from"].as_i64().unwrap(), next, "no gap, no duplicate: {events:?}");
        next = v["seq_to"].as_i64().unwrap() + 1;
        heard.extend(v["rows"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()));
    }
    assert_eq!(heard, written, "every change after the restart, once, in order");
    assert!(relay.reconnects.load(std::sync::atomic::Ordering::Relaxed) >= 1, "the relay reconnected");
}
