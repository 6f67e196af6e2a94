//! Load generator for scripts/bench part 6: holds many realtime subscribers open.
//!
//!   bench_listeners relay <addr> <tokens-file>    one SSE subscription per token (through the relay)
//!   bench_listeners listen <dsn> <channels-file>  one database connection per channel, LISTENing
//!
//! Prints "ready N" once every subscriber is connected, then keeps reading until killed.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, target, file) = (args[1].as_str(), args[2].clone(), &args[3]);
    let lines: Vec<String> =
        std::fs::read_to_string(file).unwrap().lines().map(str::to_string).filter(|l| !l.is_empty()).collect();
    let received = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for line in &lines {
        let received = received.clone();
        let (target, line) = (target.clone(), line.clone());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        handles.push(ready_rx);
        match mode {
            "relay" => {
                tokio::spawn(async move {
                    let mut s = tokio::net::TcpStream::connect(&target).await.expect("relay");
                    let req = format!("GET /events HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {line}\r\n\r\n");
                    s.write_all(req.as_bytes()).await.unwrap();
                    let mut buf = [0u8; 8192];
                    let mut ready = Some(ready_tx);
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            _ => {
                tokio::spawn(async move {
                    let (client, mut conn) =
                        tokio_postgres::connect(&target, tokio_postgres::NoTls).await.expect("connect");
                    let counter = received.clone();
                    tokio::spawn(async move {
                        while let Some(Ok(_)) = futures_util::future::poll_fn(|cx| conn.poll_message(cx)).await {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                    client.batch_execute(&format!("LISTEN \"{line}\"")).await.expect("listen");
                    let _ = ready_tx.send(());
                    std::future::pending::<()>().await;
                    drop(client);
                });
            }
        }
    }
    for h in handles {
        let _ = h.await;
    }
    println!("ready {}", lines.len());
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
}
