//! Shared by the client integration tests: a connection to the throwaway cluster that
//! `scripts/integration` starts, tokens signed like a real identity provider would, and
//! LISTEN connections that collect notifications.
#![allow(dead_code)]
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

/// A licensed real export, part of the repository (`tests/data/realdata/apple_health/REL`):
/// always there, so a missing one fails the test instead of skipping it.
pub fn licensed_export(rel: &str) -> std::path::PathBuf {
    let p =
        std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/realdata/apple_health")).join(rel);
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
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir).join("apple_health").join(rel);
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

/// One Server-Sent Event as a client sees it.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<i64>,
    pub data: String,
}

/// Open an SSE stream (HTTP/1.0, so the body is the plain event text), optionally resuming with
/// `Last-Event-ID`. Returns the status and, for 200, the stream.
pub async fn sse_open(
    addr: std::net::SocketAddr,
    token: &str,
    last_event_id: Option<i64>,
) -> (u16, Option<tokio::net::TcpStream>) {
    sse_open_with(addr, token, last_event_id, None).await
}

/// `sse_open` with a given TCP receive buffer (a small one makes a client that does not read
/// actually slow: the relay cannot hand its events to the kernel).
pub async fn sse_open_with(
    addr: std::net::SocketAddr,
    token: &str,
    last_event_id: Option<i64>,
    recv_buffer: Option<u32>,
) -> (u16, Option<tokio::net::TcpStream>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let mut s = socket.connect(addr).await.unwrap();
    let resume = last_event_id.map(|id| format!("Last-Event-ID: {id}\r\n")).unwrap_or_default();
    let req = format!(
        "GET /events HTTP/1.0\r\nHost: relay\r\nAuthorization: Bearer {token}\r\n{resume}Accept: text/event-stream\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let status: u16 =
        String::from_utf8_lossy(&head).split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, (status == 200).then_some(s))
}

/// Read events until `quiet` passes without bytes (or the stream ends): (events, ended).
pub async fn sse_read(s: &mut tokio::net::TcpStream, quiet: Duration) -> (Vec<SseEvent>, bool) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let mut ended = false;
    loop {
        match tokio::time::timeout(quiet, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                ended = true;
                break;
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&buf).replace("\r\n", "\n");
    let events = text
        .split("\n\n")
        .filter_map(|block| {
            let mut e = SseEvent { event: "message".into(), id: None, data: String::new() };
            let mut any = false;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    e.event = v.trim().to_string();
                    any = true;
                } else if let Some(v) = line.strip_prefix("id:") {
                    e.id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    e.data.push_str(v.trim_start());
                    any = true;
                }
            }
            any.then_some(e)
        })
        .collect();
    (events, ended)
}
