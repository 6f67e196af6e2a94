//! Validation of one sample against its kind: unit → canonical unit, then the range check.
//! Plain Rust; the catalog rows come from `health.metric_kinds` (see `catalog.rs`).
use super::units::{self, ConvertError, Unit};
use pgrx::PgSqlErrorCode as Code;

/// What `health.metric_kinds` says about one kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KindRule {
    pub unit: Unit,
    /// Inclusive bounds in the canonical unit; None = unbounded on that side.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// g/mol, for kinds measured as a concentration (blood_glucose).
    pub molar_mass: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Invalid {
    UnknownKind(String),
    UnknownUnit {
        kind: String,
        unit: String,
    },
    /// The unit exists but cannot express this kind (kg for heart_rate).
    WrongUnit {
        kind: String,
        error: ConvertError,
    },
    /// NaN or ±Infinity.
    NotFinite {
        kind: String,
        unit: String,
    },
    OutOfRange {
        kind: String,
        value: f64,
        unit: String,
        canonical_value: f64,
        rule: KindRule,
    },
}

impl Invalid {
    /// SQLSTATE of docs/sql-reference.md: unknown kind/unit 22023, out of range 22003.
    pub fn code(&self) -> Code {
        match self {
            Invalid::OutOfRange { .. } | Invalid::NotFinite { .. } => Code::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            _ => Code::ERRCODE_INVALID_PARAMETER_VALUE,
        }
    }
}

fn bound(b: Option<f64>) -> String {
    b.map_or_else(|| "unbounded".to_string(), |v| v.to_string())
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::UnknownKind(k) => write!(f, "unknown metric kind \"{k}\" (see health.metric_kinds)"),
            Invalid::UnknownUnit { kind, unit } => {
                write!(
                    f,
                    "{kind}: unknown unit \"{unit}\" (expected a UCUM code such as /min, %, Cel, [degF], kg, mmol/L)"
                )
            }
            Invalid::WrongUnit { kind, error } => write!(f, "{kind}: {error}"),
            Invalid::NotFinite { kind, unit } => write!(f, "{kind}: value is not a finite number ({unit})"),
            Invalid::OutOfRange { kind, value, unit, canonical_value, rule } => {
                write!(f, "{kind} value {value} {unit}")?;
                if unit != rule.unit.code() {
                    write!(f, " (= {canonical_value} {})", rule.unit.code())?;
                }
                write!(
                    f,
                    " is outside the accepted range {} to {} {}",
                    bound(rule.min),
                    bound(rule.max),
                    rule.unit.code()
                )
            }
        }
    }
}

#[cfg(test)]
/// `value` in `unit` expressed in the kind's canonical unit, range-checked.
pub fn normalize(kind: &str, rule: &KindRule, value: f64, unit: &str) -> Result<f64, Invalid> {
    let from =
        Unit::parse(unit).ok_or_else(|| Invalid::UnknownUnit { kind: kind.to_string(), unit: unit.to_string() })?;
    normalize_unit(kind, rule, value, from)
}

pub fn normalize_unit(kind: &str, rule: &KindRule, value: f64, from: Unit) -> Result<f64, Invalid> {
    if !value.is_finite() {
        return Err(Invalid::NotFinite { kind: kind.to_string(), unit: from.code().to_string() });
    }
    let canonical = units::convert(value, from, rule.unit, rule.molar_mass)
        .map_err(|error| Invalid::WrongUnit { kind: kind.to_string(), error })?;
    let below = rule.min.is_some_and(|m| canonical < m);
    let above = rule.max.is_some_and(|m| canonical > m);
    if below || above || !canonical.is_finite() {
        return Err(Invalid::OutOfRange {
            kind: kind.to_string(),
            value,
            unit: from.code().to_string(),
            canonical_value: canonical,
            rule: *rule,
        });
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::units::GLUCOSE_MOLAR_MASS;

    fn rule(unit: &str, min: f64, max: f64) -> KindRule {
        KindRule { unit: Unit::parse(unit).unwrap(), min: Some(min), max: Some(max), molar_mass: None }
    }

    #[test]
    fn canonical_value_passes_untouched() {
        let hr = rule("/min", 20.0, 300.0);
        assert_eq!(normalize("heart_rate", &hr, 72.5, "/min"), Ok(72.5));
        assert_eq!(normalize("heart_rate", &hr, 20.0, "/min"), Ok(20.0), "bounds are inclusive");
        assert_eq!(normalize("heart_rate", &hr, 300.0, "/min"), Ok(300.0));
    }

    #[test]
    fn converts_then_checks_range() {
        let temp = rule("Cel", 10.0, 50.0);
        assert_eq!(normalize("body_temperature", &temp, 98.6, "[degF]"), Ok(37.0));
        // A Fahrenheit reading sent as Celsius is refused, not stored as a 98.6 °C fever.
        let err = normalize("body_temperature", &temp, 98.6, "Cel").unwrap_err();
        assert_eq!(err.code(), Code::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE);
        assert_eq!(err.to_string(), "body_temperature value 98.6 Cel is outside the accepted range 10 to 50 Cel");
        let err = normalize("body_temperature", &temp, 150.0, "[degF]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "body_temperature value 150 [degF] (= 65.555555556 Cel) is outside the accepted range 10 to 50 Cel"
        );
    }

    #[test]
    fn spo2_fraction_decided_by_unit() {
        let spo2 = rule("%", 20.0, 100.0);
        assert_eq!(normalize("oxygen_saturation", &spo2, 0.97, "1"), Ok(97.0));
        assert_eq!(normalize("oxygen_saturation", &spo2, 97.0, "%"), Ok(97.0));
        // The HealthKit fraction sent with "%" would be 0.97 %: refused, not stored.
        assert!(matches!(normalize("oxygen_saturation", &spo2, 0.97, "%"), Err(Invalid::OutOfRange { .. })));
        // And a percentage sent as a fraction is 9700 %.
        assert!(matches!(normalize("oxygen_saturation", &spo2, 97.0, "1"), Err(Invalid::OutOfRange { .. })));
    }

    #[test]
    fn glucose_uses_the_kinds_molar_mass() {
        let glucose = KindRule { molar_mass: Some(GLUCOSE_MOLAR_MASS), ..rule("mmol/L", 0.1, 150.0) };
        let v = normalize("blood_glucose", &glucose, 100.0, "mg/dL").unwrap();
        assert!((v - 5.5506).abs() < 1e-4);
        // Without a molar mass in the catalog the cross-dimension unit is refused (22023).
        let no_mass = rule("mmol/L", 0.1, 150.0);
        let err = normalize("cholesterol", &no_mass, 100.0, "mg/dL").unwrap_err();
        assert_eq!(err.code(), Code::ERRCODE_INVALID_PARAMETER_VALUE);
    }

    #[test]
    fn unknown_and_wrong_units_are_22023() {
        let hr = rule("/min", 20.0, 300.0);
        let err = normalize("heart_rate", &hr, 72.0, "bpm").unwrap_err();
        assert_eq!(err.code(), Code::ERRCODE_INVALID_PARAMETER_VALUE);
        assert!(err.to_string().contains("unknown unit \"bpm\""), "{err}");
        let err = normalize("heart_rate", &hr, 72.0, "kg").unwrap_err();
        assert_eq!(err.code(), Code::ERRCODE_INVALID_PARAMETER_VALUE);
        assert_eq!(err.to_string(), "heart_rate: cannot convert kg (mass) to /min (frequency)");
    }

    #[test]
    fn non_finite_values_refused() {
        let hr = rule("/min", 20.0, 300.0);
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                normalize("heart_rate", &hr, v, "/min").unwrap_err().code(),
                Code::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE
            );
        }
        // Huge finite values that overflow on conversion are out of range too.
        let dist = rule("m", 0.0, 1.0e6);
        assert!(normalize("distance", &dist, f64::MAX, "[mi_i]").is_err());
    }

    #[test]
    fn open_bounds() {
        let r = KindRule { unit: Unit::Kilogram, min: None, max: Some(10.0), molar_mass: None };
        assert_eq!(normalize("x", &r, -5.0, "kg"), Ok(-5.0));
        let err = normalize("x", &r, 11.0, "kg").unwrap_err();
        assert_eq!(err.to_string(), "x value 11 kg is outside the accepted range unbounded to 10 kg");
    }
}
