//! health_rls: a secure-by-default backend for personal health data.
//!
//! This file only wires the modules together; each concern lives in its own module
//! (docs/architecture.md). The pgrx glue stays thin, the logic sits in plain Rust.
//!
//! Dependency direction: `pg` (plumbing) and `error` depend on nothing of ours; `auth` only on
//! them; `registry` (the tables we manage) on `pg`; `policy` and `realtime` on `auth`, `pg` and
//! `registry` but never on each other or on a metric table;
//! `health` composes all of them.
#![deny(unsafe_op_in_unsafe_fn)]
use pgrx::prelude::*;

mod audit;
mod auth;
mod error;
mod health;
mod pg;
mod policy;
mod realtime;
mod registry;

::pgrx::pg_module_magic!(name, version);

// Schemas and objects every other piece of SQL depends on. `bootstrap` is the first
// hand-written SQL the extension runs; pgrx's generated functions follow it.
extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    pg::init();
    auth::init();
    realtime::init();
    health::init();
    // Drop placeholders an application role may have SET under our prefix before the library
    // was loaded, and refuse new ones: only the settings defined above exist.
    // SAFETY: called once while loading the library, after our settings are defined.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"health_rls".as_ptr()) };
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}

extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);
