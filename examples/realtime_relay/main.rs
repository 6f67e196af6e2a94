//! Realtime relay and app gateway: one database connection LISTENs for every subscribed user;
//! subscribers get their own user's events as Server-Sent Events, and a browser gets the
//! dashboard page (docs/dashboard.md) with the same stream behind an HttpOnly cookie.
//!
//!   cargo run --example realtime_relay -- '<libpq dsn>' 127.0.0.1:8787 [--table public.health_metrics] [--secure-cookies]
//!   open http://127.0.0.1:8787/                                        # the dashboard
//!   curl -N -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8787/events
//!
//! The DSN's role must be able to SET ROLE to `anon` and `authenticated` (every page request runs
//! as one of them); `--secure-cookies` when browsers reach the gateway over TLS (a proxy in front).
mod api;
mod db;
mod gateway;
mod relay;
mod session;

#[tokio::main]
async fn main() {
    let mut positional = Vec::new();
    let (mut table, mut secure) = ("public.health_metrics".to_string(), false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--table" => table = args.next().expect("--table needs a table name"),
            "--secure-cookies" => secure = true,
            _ => positional.push(a),
        }
    }
    let mut positional = positional.into_iter();
    let dsn = positional
        .next()
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .expect("usage: realtime_relay <dsn> [addr] [--table T] [--secure-cookies]");
    let addr = positional.next().unwrap_or_else(|| "127.0.0.1:8787".into());
    let relay = relay::Relay::connect(&dsn).await.expect("connect to the database");
    let gateway = gateway::Gateway::new(relay, &dsn, &table, secure);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!("realtime relay listening on http://{addr}/events; dashboard on http://{addr}/");
    axum::serve(listener, gateway::router(gateway)).await.expect("serve");
}
