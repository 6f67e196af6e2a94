//! health-rls-gateway: the app gateway in front of a PostgreSQL with health_rls (docs/dashboard.md).
//!
//! - `relay`: one database connection LISTENs for every subscribed user (or `replication` reads
//!   the change feed by logical replication); each subscriber gets its own user's events as
//!   Server-Sent Events (`/events`), with catch-up from the change feed.
//! - `gateway`: the HTTP router: `/events`, the dashboard page and its `/api`.
//! - `api`, `session`: the dashboard's API and its cookie sessions; `db`: pooled request
//!   connections that run every request as `anon` or `authenticated`.
//! - `supabase`, `auth_v1`, `rest_v1` (+ `rest_grammar`), `realtime_v1` (+ `phoenix`): the
//!   Supabase-compatible APIs supabase-js calls (docs/supabase-js.md), behind the publishable key
//!   and CORS.
pub mod api;
pub mod auth_v1;
pub mod db;
pub mod gateway;
pub mod phoenix;
pub mod realtime_v1;
pub mod relay;
pub mod replication;
pub mod rest_grammar;
pub mod rest_v1;
pub mod session;
pub mod supabase;
