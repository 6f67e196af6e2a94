//! Realtime relay: one database connection LISTENs for every subscribed user; subscribers get
//! their own user's events as Server-Sent Events.
//!
//!   cargo run --example realtime_relay -- '<libpq dsn>' 127.0.0.1:8787
//!   curl -N -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8787/events
mod relay;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dsn = args.next().or_else(|| std::env::var("DATABASE_URL").ok()).expect("usage: realtime_relay <dsn> [addr]");
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8787".into());
    let relay = relay::Relay::connect(&dsn).await.expect("connect to the database");
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!("realtime relay listening on http://{addr}/events");
    axum::serve(listener, relay::router(relay)).await.expect("serve");
}
