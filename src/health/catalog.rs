//! `health.metric_kinds`, cached per backend.
//!
//! Validation runs once per inserted row, so it must not query the catalog each time. The whole
//! (small) table is loaded on first use and dropped when it changes: a statement trigger on the
//! table (`health.metric_kinds_changed`) sends a relcache invalidation for it, which Postgres
//! delivers to this backend at the next command and to every other backend at commit, and which
//! is undone correctly on rollback.
use super::rules::KindRule;
use super::units::Unit;
use crate::error;
use crate::pg::cache::{self, RelCache};
use pgrx::prelude::*;
use std::collections::HashMap;
use std::rc::Rc;

pub struct Catalog {
    kinds: HashMap<String, KindRule>,
}

impl Catalog {
    #[cfg(test)]
    pub fn from_rules(kinds: HashMap<String, KindRule>) -> Catalog {
        Catalog { kinds }
    }
    pub fn rule(&self, kind: &str) -> Option<&KindRule> {
        self.kinds.get(kind)
    }
}

thread_local! {
    static CATALOG: RelCache<(), Catalog> = const { RelCache::new() };
}

pub fn init() {
    cache::on_invalidation(|relid| CATALOG.with(|c| c.forget(relid)));
}

fn load() -> (pg_sys::Oid, Catalog) {
    Spi::connect(|client| {
        let oid = client
            .select("SELECT 'health.metric_kinds'::pg_catalog.regclass::pg_catalog.oid", None, &[])
            .and_then(|t| t.first().get_one::<pg_sys::Oid>())
            .ok()
            .flatten()
            .unwrap_or_else(|| error::raise(error::Code::ERRCODE_UNDEFINED_TABLE, "health.metric_kinds is missing"));
        let rows = client
            .select("SELECT code, unit, min_value, max_value, molar_mass FROM health.metric_kinds", None, &[])
            .unwrap_or_else(|e| {
                error::raise(
                    error::Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
                    format!("cannot read health.metric_kinds: {e}"),
                )
            });
        let mut kinds = HashMap::new();
        for row in rows {
            let code: Option<String> = row.get(1).ok().flatten();
            let unit: Option<String> = row.get(2).ok().flatten();
            let (Some(code), Some(unit)) = (code, unit) else {
                continue;
            };
            // The table's CHECK admits only known units; a row edited past it is skipped, so the
            // kind reads as unknown instead of breaking every other kind.
            let Some(unit) = Unit::parse(&unit) else { continue };
            let rule = KindRule {
                unit,
                min: row.get(3).ok().flatten(),
                max: row.get(4).ok().flatten(),
                molar_mass: row.get(5).ok().flatten(),
            };
            kinds.insert(code, rule);
        }
        (oid, Catalog { kinds })
    })
}

/// The current catalog (loaded on first use in this backend, and after every change).
pub fn current() -> Rc<Catalog> {
    CATALOG.with(|c| c.get((), load))
}
