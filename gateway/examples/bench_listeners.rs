//! Load generator for scripts/bench part 6: holds many realtime subscribers open.
//!
//!   bench_listeners relay <addr> <tokens-file>    one SSE subscription per token (through the relay)
//!   bench_listeners listen <dsn> <channels-file>  one database connection per channel, LISTENing
//!   bench_listeners latency <addr> <dsn> <tokens-file> <probes>
//!                                                  one SSE subscription per token, then <probes>
//!                                                  single-row inserts, one at a time, each for one
//!                                                  subscribed user: commit-to-SSE latency
//!
//! `relay`/`listen` print "ready N" once every subscriber is connected, then "events N" (SSE
//! events, or notifications, received so far) every second until killed. `latency` prints
//! "latency_ms p50 P p99 P max P probes N" and exits.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// What one SSE subscription has received: complete events carrying data, and a wake-up for
/// whoever waits for the next one.
#[derive(Default)]
struct Stream {
    events: AtomicU64,
    arrived: Notify,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args[1].as_str();
    let file = if mode == "latency" { &args[4] } else { &args[3] };
    let lines: Vec<String> =
        std::fs::read_to_string(file).unwrap().lines().map(str::to_string).filter(|l| !l.is_empty()).collect();
    let total = Arc::new(AtomicU64::new(0));
    let streams: Vec<Arc<Stream>> = lines.iter().map(|_| Arc::new(Stream::default())).collect();
    let mut handles = Vec::new();
    for (line, stream) in lines.iter().zip(&streams) {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        handles.push(ready_rx);
        let (target, line, total, stream) = (args[2].clone(), line.clone(), total.clone(), stream.clone());
        if mode == "listen" {
            tokio::spawn(listen(target, line, total, ready_tx));
        } else {
            tokio::spawn(subscribe(target, line, total, stream, ready_tx));
        }
    }
    for h in handles {
        let _ = h.await;
    }
    if mode == "latency" {
        let probes: usize = args[5].parse().expect("probes");
        latency(&args[3], &lines, &streams, probes).await;
        return;
    }
    println!("ready {}", lines.len());
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("events {}", total.load(Ordering::Relaxed));
    }
}

/// One SSE subscription through the relay; counts complete events that carry `data:`.
async fn subscribe(
    target: String,
    token: String,
    total: Arc<AtomicU64>,
    stream: Arc<Stream>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut s = tokio::net::TcpStream::connect(&target).await.expect("relay");
    let req = format!("GET /events HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {token}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 8192];
    let mut pending: Vec<u8> = Vec::new();
    let mut ready = Some(ready);
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if let Some(r) = ready.take() {
            let _ = r.send(());
        }
        pending.extend_from_slice(&buf[..n]);
        // An SSE event ends with a blank line; keep the unfinished tail for the next read.
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = pending.drain(..end + 2).collect();
            if block.windows(5).any(|w| w == b"data:") {
                total.fetch_add(1, Ordering::Relaxed);
                stream.events.fetch_add(1, Ordering::Release);
                stream.arrived.notify_waiters();
            }
        }
    }
}

/// One database connection LISTENing on one channel (the naive shape).
async fn listen(dsn: String, channel: String, total: Arc<AtomicU64>, ready: tokio::sync::oneshot::Sender<()>) {
    let (client, mut conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(async move {
        while let Some(Ok(_)) = futures_util::future::poll_fn(|cx| conn.poll_message(cx)).await {
            total.fetch_add(1, Ordering::Relaxed);
        }
    });
    client.batch_execute(&format!("LISTEN \"{channel}\"")).await.expect("listen");
    let _ = ready.send(());
    std::future::pending::<()>().await;
    drop(client);
}

/// Serial probes: for a subscribed user, insert one row as that user and time from sending
/// COMMIT to the event arriving on that user's stream (nothing else writes meanwhile).
async fn latency(dsn: &str, tokens: &[String], streams: &[Arc<Stream>], probes: usize) {
    let (client, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    let insert = "INSERT INTO health_metrics (kind, value, unit, recorded_at, source) \
                  VALUES ('heart_rate', 72, '/min', clock_timestamp(), 'probe')";
    let mut samples = Vec::with_capacity(probes);
    for k in 0..probes {
        let user = (k * 7919) % tokens.len();
        let stream = &streams[user];
        let before = stream.events.load(Ordering::Acquire);
        client.batch_execute("BEGIN").await.unwrap();
        client.query_one("SELECT auth.authenticate($1) IS NOT NULL", &[&tokens[user]]).await.unwrap();
        client.batch_execute(&format!("SET LOCAL ROLE authenticated; {insert}")).await.unwrap();
        let t0 = Instant::now();
        client.batch_execute("COMMIT").await.unwrap();
        loop {
            let arrived = stream.arrived.notified();
            if stream.events.load(Ordering::Acquire) > before {
                break;
            }
            if tokio::time::timeout(Duration::from_secs(5), arrived).await.is_err() {
                panic!("probe {k}: no event within 5 s for subscriber {user}");
            }
        }
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    println!("latency_ms p50 {:.2} p99 {:.2} max {:.2} probes {}", at(0.50), at(0.99), at(1.0), samples.len());
}
