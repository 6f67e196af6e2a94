//! Health metrics: schema `health` (docs/sql-reference.md, "health"). Catalog of kinds, UCUM units, the
//! normalising trigger, the standard table and batch ingest. The pgrx glue is here; the logic
//! lives in the plain-Rust modules below.
mod catalog;
mod export;
mod fhir;
mod ingest;
mod invitations;
mod plan;
mod rollup;
mod rules;
mod sample;
mod share_window;
mod sharing;
mod summary;
mod table;
mod timestamp;
mod trigger;
mod units;
mod vocabulary;

use pgrx::prelude::*;

pub fn init() {
    catalog::init();
    trigger::init();
    crate::realtime::set_fanout(sharing::fanout);
}

// 0.2.0's kinds and the platforms' unit spellings.
extension_sql_file!("../../sql/vocabulary.sql", name = "vocabulary", requires = ["health_catalog"]);

// The catalog, domains and rejected_samples. Needs the Rust functions it names in CHECKs,
// triggers and COMMENTs, so it runs after them.
extension_sql_file!(
    "../../sql/health_catalog.sql",
    name = "health_catalog",
    requires = [
        "bootstrap",
        "auth_tables",
        "registry",
        auth::auth::uid,
        health::is_unit,
        health::metric_kinds_changed,
        health::normalize_sample,
        health::ingest,
        health::create_metric_table,
        health::normalize,
        enable_owner_rls
    ]
);

#[pg_schema]
mod health {
    use super::*;
    use crate::error;
    use crate::health::rules::Invalid;
    use crate::health::units::{self, Unit};
    use crate::pg::relation::{oid_of, Regclass};
    use pgrx::PgRelation;

    fn unit_or_raise(code: &str) -> Unit {
        units::parse_unit(code).unwrap_or_else(|e| error::bad_argument(e.to_string()))
    }

    fn convert_or_raise(value: f64, from_unit: &str, to_unit: &str, molar_mass: Option<f64>) -> f64 {
        units::convert(value, unit_or_raise(from_unit), unit_or_raise(to_unit), molar_mass)
            .unwrap_or_else(|e| error::bad_argument(e.to_string()))
    }

    /// `value` converted between two UCUM units (22023 for unknown or incompatible units).
    #[pg_extern(immutable, strict, parallel_safe)]
    fn convert(value: f64, from_unit: &str, to_unit: &str) -> f64 {
        convert_or_raise(value, from_unit, to_unit, None)
    }

    /// Same, across mass and substance concentration (mg/dL ↔ mmol/L) with the substance's
    /// molar mass in g/mol (glucose 180.16).
    #[pg_extern(immutable, strict, parallel_safe, name = "convert")]
    fn convert_with_molar_mass(value: f64, from_unit: &str, to_unit: &str, molar_mass: f64) -> f64 {
        convert_or_raise(value, from_unit, to_unit, Some(molar_mass))
    }

    /// Is `unit` a UCUM code this extension knows? (CHECK of health.metric_kinds.unit.)
    #[pg_extern(immutable, strict, parallel_safe)]
    fn is_unit(unit: &str) -> bool {
        Unit::parse(unit).is_some()
    }

    /// `value` in `unit` expressed in the canonical unit of `kind`, range-checked:
    /// 22023 unknown kind or unit, 22003 outside the kind's range.
    #[pg_extern(stable, strict, parallel_safe)]
    fn normalize(kind: &str, value: f64, unit: &str) -> f64 {
        let catalog = crate::health::catalog::current();
        let (code, platform) = catalog
            .resolve_kind(kind)
            .unwrap_or_else(|| error::bad_argument(Invalid::UnknownKind(kind.to_string()).to_string()));
        let rule = catalog.rule(code).expect("resolved kinds are in the catalog");
        let from = catalog.resolve_unit(unit, platform, rule.unit).unwrap_or_else(|| {
            let e = Invalid::UnknownUnit { kind: code.to_string(), unit: unit.to_string() };
            error::raise(e.code(), e.to_string())
        });
        crate::health::rules::normalize_unit(code, rule, value, from)
            .unwrap_or_else(|e| error::raise(e.code(), e.to_string()))
    }

    /// BEFORE INSERT OR UPDATE row trigger: value and unit → the kind's canonical unit, range
    /// checked. Arguments (optional): the kind, value and unit column names.
    #[pg_trigger]
    fn normalize_sample<'a>(
        trigger: &'a PgTrigger<'a>,
    ) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgHeapTupleError> {
        let td = trigger.trigger_data();
        // SAFETY: pgrx passes the TriggerData of this firing row trigger; normalize_row checks the event.
        let tuple = unsafe { crate::health::trigger::normalize_row(td) };
        // SAFETY: the trigger's relation is open for the call.
        let tupdesc = unsafe { pgrx::PgTupleDesc::from_pg_unchecked((*td.tg_relation).rd_att) };
        // SAFETY: `tuple` is a valid heap tuple of that descriptor (the trigger's row or its copy).
        Ok(Some(unsafe { PgHeapTuple::from_heap_tuple(tupdesc, tuple) }))
    }

    /// AFTER STATEMENT trigger on health.metric_kinds: every backend drops its cached catalog
    /// (a relcache invalidation of the table: this backend at the next command, the others at
    /// commit, undone on rollback).
    #[pg_trigger]
    fn metric_kinds_changed<'a>(
        trigger: &'a PgTrigger<'a>,
    ) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgHeapTupleError> {
        if let Ok(relid) = trigger.relid() {
            crate::pg::cache::invalidate(relid);
        }
        Ok(None)
    }

    /// The standard sample table with validation, duplicate key, index, owner RLS and realtime.
    #[pg_extern(volatile)]
    fn create_metric_table(name: &str) -> Regclass {
        Regclass(crate::health::table::create_metric_table(name))
    }

    /// Adds 0.2.0's columns to a standard table made by an earlier version (ALTER EXTENSION
    /// UPDATE runs it; superuser only).
    #[pg_extern(volatile)]
    fn _upgrade_metric_table(tbl: PgRelation) {
        crate::health::table::upgrade_metric_table(oid_of(tbl));
    }

    /// Batch write: one row per element of `samples`, status inserted / updated / deleted /
    /// duplicate / rejected.
    #[pg_extern(volatile)]
    fn ingest(
        tbl: PgRelation,
        samples: crate::pg::jsonb::JsonbArg,
    ) -> TableIterator<
        'static,
        (name!(ord, i32), name!(status, String), name!(id, Option<i64>), name!(error, Option<String>)),
    > {
        let outcomes = crate::health::ingest::ingest(oid_of(tbl), &samples.0);
        TableIterator::new(outcomes.into_iter().map(|o| (o.ord, o.status.as_str().to_string(), o.id, o.error)))
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn catalog_cache_follows_metric_kinds() {
        assert_eq!(Spi::get_one::<f64>("SELECT health.normalize('heart_rate', 72, '/min')").unwrap(), Some(72.0));
        Spi::run("INSERT INTO health.metric_kinds (code, display, unit, min_value, max_value) VALUES ('mood', 'Mood', '1', 0, 1)").unwrap();
        assert_eq!(Spi::get_one::<f64>("SELECT health.normalize('mood', 50, '%')").unwrap(), Some(0.5));
        Spi::run("UPDATE health.metric_kinds SET max_value = 0.4 WHERE code = 'mood'").unwrap();
        let refused = crate::error::testing::outcome("SELECT health.normalize('mood', 50, '%')");
        assert!(refused.starts_with("22003: "), "the narrowed range must apply at once: {refused}");
    }
}
