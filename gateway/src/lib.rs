//! health-rls-gateway: the app gateway in front of a PostgreSQL with health_rls (docs/dashboard.md).
//!
//! - `relay`: one database connection LISTENs for every subscribed user; each subscriber gets its
//!   own user's events as Server-Sent Events (`/events`), with catch-up from the change feed.
//! - `gateway`: the HTTP router: `/events`, the dashboard page and its `/api`.
//! - `api`, `session`: the dashboard's API and its cookie sessions; `db`: pooled request
//!   connections that run every request as `anon` or `authenticated`.
pub mod api;
pub mod db;
pub mod gateway;
pub mod relay;
pub mod session;
