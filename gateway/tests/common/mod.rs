//! Shared by the gateway's integration tests: the workspace's test kit (cluster, tokens, LISTEN)
//! and Server-Sent Events as a client sees them.
#![allow(dead_code)]
pub use health_rls_testkit::*;
use std::time::Duration;

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
