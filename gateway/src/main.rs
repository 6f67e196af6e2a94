//! `health-rls-gateway`: the realtime relay and app gateway as a program (docs/dashboard.md).
//!
//!   health-rls-gateway --database-url '<libpq dsn>' --listen 127.0.0.1:8787 [--table public.health_metrics] [--secure-cookies]
//!                      [--publishable-key sb_publishable_…] [--cors-origin https://app.example]...
//!   health-rls-gateway '<libpq dsn>' 127.0.0.1:8787                  # the same, positionally
//!   open http://127.0.0.1:8787/                                        # the dashboard
//!   curl -N -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8787/events
//!
//!   health-rls-gateway … --realtime-source replication [--replication-url '<dsn>'] [--replication-slot name]
//!                                                                    # realtime from logical replication, not NOTIFY
//!
//! Each flag also from the environment: DATABASE_URL, HEALTH_RLS_LISTEN, HEALTH_RLS_PUBLISHABLE_KEY,
//! HEALTH_RLS_REALTIME_SOURCE, HEALTH_RLS_REPLICATION_URL.
//! With a publishable key the gateway also serves `/auth/v1` for supabase-js (docs/supabase-js.md). The DSN's role must be
//! able to SET ROLE to `anon` and `authenticated` (every page request runs as one of them);
//! `--secure-cookies` when browsers reach the gateway over TLS (a proxy in front).
use health_rls_gateway::{gateway, relay, replication, supabase};

const USAGE: &str = "usage: health-rls-gateway --database-url <dsn> [--listen addr] [--table T] [--secure-cookies] \
                     [--publishable-key K] [--cors-origin O]... [--realtime-source notify|replication] \
                     [--replication-url <dsn>] [--replication-slot name]";

#[tokio::main]
async fn main() {
    let mut positional = Vec::new();
    let (mut dsn, mut addr) = (std::env::var("DATABASE_URL").ok(), std::env::var("HEALTH_RLS_LISTEN").ok());
    let (mut table, mut secure) = ("public.health_metrics".to_string(), false);
    let mut publishable_key = std::env::var("HEALTH_RLS_PUBLISHABLE_KEY").ok().filter(|k| !k.is_empty());
    let mut cors_origins = Vec::new();
    let mut source = std::env::var("HEALTH_RLS_REALTIME_SOURCE").unwrap_or_else(|_| "notify".into());
    let mut replication_url = std::env::var("HEALTH_RLS_REPLICATION_URL").ok().filter(|u| !u.is_empty());
    let mut slot = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--database-url" => dsn = Some(args.next().expect(USAGE)),
            "--listen" => addr = Some(args.next().expect(USAGE)),
            "--table" => table = args.next().expect("--table needs a table name"),
            "--secure-cookies" => secure = true,
            "--publishable-key" => publishable_key = Some(args.next().expect(USAGE)),
            "--cors-origin" => cors_origins.push(args.next().expect(USAGE)),
            "--realtime-source" => source = args.next().expect(USAGE),
            "--replication-url" => replication_url = Some(args.next().expect(USAGE)),
            "--replication-slot" => slot = Some(args.next().expect(USAGE)),
            "--help" | "-h" => {
                println!("{USAGE}");
                return;
            }
            _ => positional.push(a),
        }
    }
    let mut positional = positional.into_iter();
    let dsn = positional.next().or(dsn).expect(USAGE);
    let addr = positional.next().or(addr).unwrap_or_else(|| "127.0.0.1:8787".into());
    let relay = match source.as_str() {
        "notify" => relay::Relay::connect(&dsn).await,
        "replication" => {
            let mut from = replication::ReplicationSource::new(replication_url.as_deref().unwrap_or(&dsn));
            if let Some(slot) = slot {
                from.slot = slot;
            }
            relay::Relay::replicating(&dsn, from).await
        }
        other => panic!("--realtime-source is notify or replication, not {other:?}"),
    }
    .expect("connect to the database");
    let api = publishable_key.map(|publishable_key| supabase::ApiConfig { publishable_key, cors_origins });
    let gateway = gateway::Gateway::with_api(relay, &dsn, &table, secure, api);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!("health-rls-gateway listening on http://{addr}/events; dashboard on http://{addr}/");
    axum::serve(listener, gateway::router(gateway)).await.expect("serve");
}
