//! Postgres plumbing shared by every feature module: identifier quoting and the qualified name
//! of a relation, the relcache-invalidated per-backend cache, planner support that makes a call an
//! initplan, NOTIFY, uuid conversions, running generated statements and committing a statement in
//! a transaction of its own. Nothing here knows about identity, policies, realtime or
//! health data; those modules build on it (docs/architecture.md).
pub mod as_caller;
pub mod cache;
pub mod initplan;
pub mod jsonb;
pub mod notify;
pub mod own_transaction;
pub mod relation;
pub mod spi;
pub mod sql;
pub mod uuid;

pub fn init() {
    cache::init();
    relation::init();
}
