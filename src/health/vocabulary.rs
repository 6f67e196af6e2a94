//! The platforms' own words for kinds and units (docs/ingest.md): a HealthKit identifier or a
//! Health Connect record type names a kind, and each platform spells units its own way. Which
//! spelling means what is data (`health.metric_kinds`, `health.unit_aliases`); this module holds
//! the rules that are not data: which platform a name comes from, and HealthKit's sleep
//! categories.

/// Where a kind's name came from; it decides how the sample's unit is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Platform {
    /// A catalog code (`heart_rate`): UCUM units, plus aliases for any platform.
    Catalog,
    /// A HealthKit identifier (`HKQuantityTypeIdentifierHeartRate`): HealthKit's unit strings
    /// first (where `%` is a 0–1 fraction), then UCUM.
    HealthKit,
    /// A Health Connect record type (`BloodPressureRecord.systolic`): Health Connect's unit
    /// names first, then UCUM.
    HealthConnect,
}

impl Platform {
    /// The `platform` value of `health.unit_aliases` rows that apply first.
    pub fn alias_scope(self) -> &'static str {
        match self {
            Platform::Catalog => "any",
            Platform::HealthKit => "healthkit",
            Platform::HealthConnect => "health_connect",
        }
    }
}

/// HealthKit's sleep category type: its samples carry a category value instead of a number.
pub const HK_SLEEP_ANALYSIS: &str = "HKCategoryTypeIdentifierSleepAnalysis";

/// The catalog kind of a HealthKit sleep category value, given as the export writes it
/// (`HKCategoryValueSleepAnalysisAsleepCore`) or as the raw `HKCategoryValueSleepAnalysis`
/// number an app reads from the API (0 in bed, 1 asleep, 2 awake, 3 core, 4 deep, 5 REM).
pub fn sleep_stage_kind(value: &serde_json::Value) -> Option<&'static str> {
    let from_number = |n: i64| match n {
        0 => Some("sleep_in_bed"),
        1 => Some("sleep_asleep"),
        2 => Some("sleep_awake"),
        3 => Some("sleep_core"),
        4 => Some("sleep_deep"),
        5 => Some("sleep_rem"),
        _ => None,
    };
    match value {
        serde_json::Value::Number(n) => n.as_i64().and_then(from_number),
        serde_json::Value::String(s) => match s.strip_prefix("HKCategoryValueSleepAnalysis").unwrap_or(s) {
            "InBed" => Some("sleep_in_bed"),
            // iOS ≤ 15 wrote "Asleep"; iOS 16 renamed it "AsleepUnspecified".
            "Asleep" | "AsleepUnspecified" => Some("sleep_asleep"),
            "Awake" => Some("sleep_awake"),
            "AsleepCore" => Some("sleep_core"),
            "AsleepDeep" => Some("sleep_deep"),
            "AsleepREM" => Some("sleep_rem"),
            other => other.parse::<i64>().ok().and_then(from_number),
        },
        _ => None,
    }
}

/// A Health Connect name with its field (`BloodPressureRecord.systolic`) and the record alone.
pub fn health_connect_record(name: &str) -> Option<&str> {
    name.split_once('.').map(|(record, _field)| record).filter(|r| r.ends_with("Record"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sleep_categories_of_every_ios_generation() {
        assert_eq!(sleep_stage_kind(&json!("HKCategoryValueSleepAnalysisAsleep")), Some("sleep_asleep"));
        assert_eq!(sleep_stage_kind(&json!("HKCategoryValueSleepAnalysisAsleepUnspecified")), Some("sleep_asleep"));
        assert_eq!(sleep_stage_kind(&json!("HKCategoryValueSleepAnalysisInBed")), Some("sleep_in_bed"));
        assert_eq!(sleep_stage_kind(&json!("HKCategoryValueSleepAnalysisAwake")), Some("sleep_awake"));
        assert_eq!(sleep_stage_kind(&json!("HKCategoryValueSleepAnalysisAsleepCore")), Some("sleep_core"));
        assert_eq!(sleep_stage_kind(&json!("HKCategoryValueSleepAnalysisAsleepDeep")), Some("sleep_deep"));
        assert_eq!(sleep_stage_kind(&json!("HKCategoryValueSleepAnalysisAsleepREM")), Some("sleep_rem"));
        assert_eq!(sleep_stage_kind(&json!(4)), Some("sleep_deep"));
        assert_eq!(sleep_stage_kind(&json!("1")), Some("sleep_asleep"), "legacy exports write value=\"1\"");
        assert_eq!(sleep_stage_kind(&json!("HKCategoryValueSleepAnalysisDreaming")), None);
        assert_eq!(sleep_stage_kind(&json!(9)), None);
        assert_eq!(sleep_stage_kind(&json!(null)), None);
    }

    #[test]
    fn health_connect_fields() {
        assert_eq!(health_connect_record("BloodPressureRecord.systolic"), Some("BloodPressureRecord"));
        assert_eq!(health_connect_record("HeartRateRecord"), None);
        assert_eq!(health_connect_record("a.b"), None);
    }
}
