//! `health.metric_kinds`, cached per backend.
//!
//! Validation runs once per inserted row, so it must not query the catalog each time. The whole
//! (small) table is loaded on first use and dropped when it changes: a statement trigger on the
//! table (`health.metric_kinds_changed`) sends a relcache invalidation for it, which Postgres
//! delivers to this backend at the next command and to every other backend at commit, and which
//! is undone correctly on rollback.
use super::rules::KindRule;
use super::units::Unit;
use super::vocabulary::{self, Platform};
use crate::error;
use crate::pg::cache::{self, RelCache};
use pgrx::prelude::*;
use std::collections::HashMap;
use std::rc::Rc;

/// The kinds and the platforms' names for kinds and units.
pub struct Catalog {
    kinds: HashMap<String, KindRule>,
    /// HealthKit identifier → kind code.
    healthkit: HashMap<String, String>,
    /// Health Connect record type (or `Record.field`) → kind code.
    health_connect: HashMap<String, String>,
    /// (alias, platform scope) → unit; `None` means "the kind's own canonical unit" (HealthKit's
    /// `count` is steps for StepCount and kg/m2 for BodyMassIndex).
    aliases: HashMap<(String, String), Option<Unit>>,
}

impl Catalog {
    #[cfg(test)]
    pub fn from_rules(kinds: HashMap<String, KindRule>) -> Catalog {
        Catalog { kinds, healthkit: HashMap::new(), health_connect: HashMap::new(), aliases: HashMap::new() }
    }
    #[cfg(test)]
    pub fn with_names(
        mut self,
        healthkit: &[(&str, &str)],
        health_connect: &[(&str, &str)],
        aliases: &[(&str, &str, Option<&str>)],
    ) -> Catalog {
        self.healthkit.extend(healthkit.iter().map(|(a, k)| (a.to_string(), k.to_string())));
        self.health_connect.extend(health_connect.iter().map(|(a, k)| (a.to_string(), k.to_string())));
        self.aliases.extend(
            aliases.iter().map(|(a, p, u)| ((a.to_string(), p.to_string()), u.map(|u| Unit::parse(u).expect("unit")))),
        );
        self
    }
    pub fn rule(&self, kind: &str) -> Option<&KindRule> {
        self.kinds.get(kind)
    }

    /// The catalog kind `name` stands for, and the platform whose name it is.
    pub fn resolve_kind<'a>(&'a self, name: &'a str) -> Option<(&'a str, Platform)> {
        if let Some((code, _)) = self.kinds.get_key_value(name) {
            return Some((code, Platform::Catalog));
        }
        if let Some(code) = self.healthkit.get(name) {
            return Some((code, Platform::HealthKit));
        }
        if let Some(code) = self.health_connect.get(name) {
            return Some((code, Platform::HealthConnect));
        }
        // `HeartRateRecord.beatsPerMinute`: the record names the kind when it has only one.
        let record = vocabulary::health_connect_record(name)?;
        self.health_connect.get(record).map(|code| (code.as_str(), Platform::HealthConnect))
    }

    /// The unit `text` means for a kind named on `platform` with canonical unit `canonical`:
    /// the platform's own spelling first (HealthKit's `%` is a fraction), then UCUM, then the
    /// aliases any platform uses. None: not a unit we know.
    pub fn resolve_unit(&self, text: &str, platform: Platform, canonical: Unit) -> Option<Unit> {
        let alias =
            |scope: &str| self.aliases.get(&(text.to_string(), scope.to_string())).map(|u| u.unwrap_or(canonical));
        if platform != Platform::Catalog {
            if let Some(u) = alias(platform.alias_scope()) {
                return Some(u);
            }
        }
        Unit::parse(text).or_else(|| alias("any"))
    }
}

thread_local! {
    static CATALOG: RelCache<(), Catalog> = const { RelCache::new() };
}

pub fn init() {
    cache::on_invalidation(|relid| CATALOG.with(|c| c.forget(relid)));
}

fn oid_of(client: &pgrx::spi::SpiClient, table: &str) -> pg_sys::Oid {
    client
        .select(&format!("SELECT '{table}'::pg_catalog.regclass::pg_catalog.oid"), None, &[])
        .and_then(|t| t.first().get_one::<pg_sys::Oid>())
        .ok()
        .flatten()
        .unwrap_or_else(|| error::raise(error::Code::ERRCODE_UNDEFINED_TABLE, format!("{table} is missing")))
}

fn load() -> (Vec<pg_sys::Oid>, Catalog) {
    Spi::connect(|client| {
        let relids = vec![oid_of(client, "health.metric_kinds"), oid_of(client, "health.unit_aliases")];
        let unreadable = |e: pgrx::spi::Error| -> ! {
            error::raise(error::Code::ERRCODE_INSUFFICIENT_PRIVILEGE, format!("cannot read the metric catalog: {e}"))
        };
        let rows = client
            .select(
                "SELECT code, unit, min_value, max_value, molar_mass, healthkit, health_connect FROM health.metric_kinds",
                None,
                &[],
            )
            .unwrap_or_else(|e| unreadable(e));
        let mut catalog = Catalog {
            kinds: HashMap::new(),
            healthkit: HashMap::new(),
            health_connect: HashMap::new(),
            aliases: HashMap::new(),
        };
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
            if let Some(hk) = row.get::<String>(6).ok().flatten() {
                catalog.healthkit.entry(hk).or_insert_with(|| code.clone());
            }
            if let Some(hc) = row.get::<String>(7).ok().flatten() {
                catalog.health_connect.entry(hc).or_insert_with(|| code.clone());
            }
            catalog.kinds.insert(code, rule);
        }
        let aliases = client
            .select("SELECT alias, platform, unit FROM health.unit_aliases", None, &[])
            .unwrap_or_else(|e| unreadable(e));
        for row in aliases {
            let (Some(alias), Some(platform)) =
                (row.get::<String>(1).ok().flatten(), row.get::<String>(2).ok().flatten())
            else {
                continue;
            };
            let unit = match row.get::<String>(3).ok().flatten() {
                None => None,
                Some(u) => match Unit::parse(&u) {
                    Some(u) => Some(u),
                    None => continue, // past the CHECK: skipped like a bad kind
                },
            };
            catalog.aliases.insert((alias, platform), unit);
        }
        (relids, catalog)
    })
}

/// The current catalog (loaded on first use in this backend, and after every change).
pub fn current() -> Rc<Catalog> {
    CATALOG.with(|c| c.get((), load))
}
