//! FHIR R4 (4.0.1) export of stored samples: each sample becomes an `Observation`; a set of them
//! a `collection` `Bundle`, or one Observation per line (NDJSON) for exports too big to build as
//! one document. Pure: the SQL functions read the rows and the catalog and hand them in here.
//!
//! What the export says, and why:
//! - `subject` is `Patient/<user id>`, and the Patient resource is NOT included. This extension
//!   holds no demographics (name, birth date), so a Patient entry would carry nothing but the id
//!   the reference already names; the receiving system maps the user id to its own patient.
//!   A reference that does not resolve inside a `collection` Bundle is valid FHIR, and the same
//!   Observations stand alone line by line in NDJSON (FHIR Bulk Data does the same).
//! - `code`: the kind's LOINC code when the catalog has one, else a coding in our own code system
//!   [`METRIC_KIND_SYSTEM`] with the kind's catalog code; `text` is always the catalog's display.
//!   A LOINC coding's `display` must be LOINC's own name for the code (validators check it), not
//!   ours: we carry LOINC's long common name for the codes the catalog seeds and leave `display`
//!   out (it is optional) for a LOINC code a DBA added, rather than invent one.
//! - `category` from the observation-category code system, per kind (see [`category`]).
//! - `effectiveDateTime` for a point sample, `effectivePeriod` for an interval; instants in the
//!   offset the device was in (see [`fhir_instant`]).
//! - `valueQuantity` in the kind's canonical UCUM unit, the value as stored: the trigger has
//!   already converted it, and re-converting here could only add rounding.
//! - `device: {"display": source}`: R4's `Observation.device` is a Reference(Device | DeviceMetric),
//!   not a string, and a Reference with only `display` is valid (ref-1 constrains `reference` only).
//! - A blood-pressure pair (two rows sharing a `correlation_id`) becomes one panel Observation,
//!   as FHIR's vital-signs blood-pressure profile requires (see [`observations`]).
//! - ids are name-based UUIDs of the user and the sample id (see [`observation_id`]): the same
//!   export twice gives the same ids, so a receiver updates instead of duplicating.
//
// Nothing outside the tests calls this until the SQL export functions are wired to it.

use super::units::Unit;
use chrono::{DateTime, Datelike, FixedOffset, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use uuid::Uuid;

pub const LOINC: &str = "http://loinc.org";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
/// Our own code system: the codes are `health.metric_kinds.code`. Used for kinds LOINC has no
/// code for (`walking_heart_rate_average`, `vo2_max`, `basal_energy`, the sleep stages, a DBA's
/// own kinds). An identifier, not necessarily resolvable; never change it, receivers key on it.
pub const METRIC_KIND_SYSTEM: &str = "https://github.com/health-rls/health_rls/fhir/CodeSystem/metric-kind";

/// Namespace of the name-based ids (RFC 9562 §5.8, SHA-256 as in its Appendix B.2). Never
/// change it: every id an export ever produced is derived from it.
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x78f8_5387_294c_466e_afa7_e989_5d83_cb39);

const SYSTOLIC: &str = "blood_pressure_systolic";
const DIASTOLIC: &str = "blood_pressure_diastolic";
/// The vital-signs blood-pressure profile's panel and component codes (LOINC's names).
const BP_PANEL: (&str, &str) = ("85354-9", "Blood pressure panel with all children optional");
const BP_SYSTOLIC: (&str, &str) = ("8480-6", "Systolic blood pressure");
const BP_DIASTOLIC: (&str, &str) = ("8462-4", "Diastolic blood pressure");

/// One stored row of a metric table (docs/ingest.md), value in the kind's canonical unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub id: i64,
    pub kind: String,
    pub value: f64,
    pub unit: String,
    /// Microseconds since 1970-01-01 00:00 UTC.
    pub recorded_at_us: i64,
    /// End of an interval sample (steps, sleep), same clock.
    pub ended_at_us: Option<i64>,
    /// Minutes east of UTC the device was in.
    pub tz_offset_min: Option<i32>,
    pub source: Option<String>,
    /// Shared by the two rows of one blood-pressure measurement.
    pub correlation_id: Option<Uuid>,
}

/// A kind of the catalog (`health.metric_kinds`).
#[derive(Clone, Debug, PartialEq)]
pub struct Kind {
    pub code: String,
    pub display: String,
    pub loinc: Option<String>,
}

/// Why a sample cannot be exported. Stored rows pass the table's checks, so each of these means
/// a row changed behind the trigger's back or a caller that passed an incomplete catalog; the
/// export refuses rather than silently leave a measurement out of someone's health record.
#[derive(Clone, Debug, PartialEq)]
pub enum ExportError {
    /// NaN or ±infinity: JSON has no such number.
    NotFinite {
        sample: i64,
        value: f64,
    },
    UnknownKind {
        sample: i64,
        kind: String,
    },
    /// Not one of the UCUM codes `units.rs` knows, so we cannot vouch for it as UCUM.
    UnknownUnit {
        sample: i64,
        unit: String,
    },
    /// FHIR's dateTime has four-digit years (0001–9999); Postgres goes further.
    YearOutOfRange {
        sample: i64,
        field: &'static str,
    },
    EndBeforeStart {
        sample: i64,
    },
}

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportError::NotFinite { sample, value } => {
                write!(f, "sample {sample}: value {value} is not a finite number, which FHIR JSON cannot carry")
            }
            ExportError::UnknownKind { sample, kind } => {
                write!(f, "sample {sample}: kind \"{kind}\" is not in the catalog passed to the FHIR export")
            }
            ExportError::UnknownUnit { sample, unit } => {
                write!(f, "sample {sample}: unit \"{unit}\" is not a UCUM code this extension knows")
            }
            ExportError::YearOutOfRange { sample, field } => {
                write!(f, "sample {sample}: {field} lies outside the years 0001-9999 a FHIR dateTime can express")
            }
            ExportError::EndBeforeStart { sample } => {
                write!(
                    f,
                    "sample {sample}: ended_at is before recorded_at (a FHIR Period must not end before it starts)"
                )
            }
        }
    }
}

impl std::error::Error for ExportError {}

/// Observation categories (http://terminology.hl7.org/CodeSystem/observation-category, R4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    VitalSigns,
    Activity,
    Laboratory,
    Exam,
}

impl Category {
    pub fn code(self) -> &'static str {
        match self {
            Category::VitalSigns => "vital-signs",
            Category::Activity => "activity",
            Category::Laboratory => "laboratory",
            Category::Exam => "exam",
        }
    }

    /// The code system's own display for the code.
    pub fn display(self) -> &'static str {
        match self {
            Category::VitalSigns => "Vital Signs",
            Category::Activity => "Activity",
            Category::Laboratory => "Laboratory",
            Category::Exam => "Exam",
        }
    }
}

/// The category of a seeded kind, by the code system's definitions:
/// - vital-signs, "the body's basic functions such as blood pressure, heart rate, respiratory
///   rate, height, weight, body mass index, ... pulse oximetry, temperature": those kinds, plus
///   the resting and walking-average heart rates, which are heart rates measured at a given time.
/// - activity, "any bodily activity that enhances or maintains physical fitness ... not under
///   direct supervision ... (e.g., laps swum, steps, sleep data)": steps, distance, energy,
///   flights and every sleep kind.
/// - laboratory, results "based on analysis of specimens": glucose is a blood analyte, measured
///   in a drop of blood or interstitial fluid (and LOINC files 15074-8 under chemistry).
/// - exam, "physical exam findings ... use of simple instruments ... performed directly on the
///   patient's body": HRV (a pulse sensor), VO2 max (estimated from pulse and movement) and body
///   fat (an impedance scale) are measurements of the body that are neither on the vital-signs
///   list nor a specimen, nor a record of activity done.
///
/// A DBA's own kind gets none (`category` is optional): a wrong guess would file the
/// measurement under the wrong heading in the receiving record.
pub fn category(kind: &str) -> Option<Category> {
    Some(match kind {
        "heart_rate"
        | "resting_heart_rate"
        | "walking_heart_rate_average"
        | "respiratory_rate"
        | "oxygen_saturation"
        | "body_temperature"
        | "body_weight"
        | "body_height"
        | "body_mass_index"
        | SYSTOLIC
        | DIASTOLIC => Category::VitalSigns,
        "steps" | "distance" | "active_energy" | "basal_energy" | "flights_climbed" | "sleep_duration"
        | "sleep_in_bed" | "sleep_asleep" | "sleep_awake" | "sleep_core" | "sleep_deep" | "sleep_rem" => {
            Category::Activity
        }
        "blood_glucose" => Category::Laboratory,
        "heart_rate_variability_sdnn" | "vo2_max" | "body_fat_percentage" => Category::Exam,
        _ => return None,
    })
}

/// LOINC's long common name of the LOINC codes the catalog seeds (Coding.display must be the
/// code system's display, and validators compare it). `None` for any other code.
pub fn loinc_display(code: &str) -> Option<&'static str> {
    Some(match code {
        "8867-4" => "Heart rate",
        "40443-4" => "Heart rate --resting",
        "80404-7" => "R-R interval.standard deviation (Heart rate variability)",
        "55423-8" => "Number of steps in unspecified time Pedometer",
        "55430-3" => "Walking distance unspecified time Pedometer",
        "41981-2" => "Calories burned",
        "2708-6" => "Oxygen saturation in Arterial blood",
        "9279-1" => "Respiratory rate",
        "8310-5" => "Body temperature",
        "29463-7" => "Body weight",
        "8302-2" => "Body height",
        "39156-5" => "Body mass index (BMI) [Ratio]",
        "8480-6" => BP_SYSTOLIC.1,
        "8462-4" => BP_DIASTOLIC.1,
        "85354-9" => BP_PANEL.1,
        "15074-8" => "Glucose [Moles/volume] in Blood",
        "93832-4" => "Sleep duration",
        "41982-0" => "Percentage of body fat Measured",
        "100304-5" => "Flights climbed [#] Reporting Period",
        _ => return None,
    })
}

/// Quantity.unit, the human-readable twin of the UCUM code. A rate per minute reads as beats
/// or breaths, as in the FHIR vital-signs examples.
fn unit_text(unit: Unit, kind: &str) -> &'static str {
    match unit {
        Unit::PerMinute => match kind {
            "heart_rate" | "resting_heart_rate" | "walking_heart_rate_average" => "beats/minute",
            "respiratory_rate" => "breaths/minute",
            _ => "/min",
        },
        Unit::Percent => "%",
        Unit::One => "1",
        Unit::Celsius => "°C",
        Unit::Fahrenheit => "°F",
        Unit::Kilogram => "kg",
        Unit::Gram => "g",
        Unit::Pound => "lb",
        Unit::Centimetre => "cm",
        Unit::Metre => "m",
        Unit::Kilometre => "km",
        Unit::Inch => "in",
        Unit::Mile => "mi",
        Unit::Kilocalorie => "kcal",
        Unit::Kilojoule => "kJ",
        Unit::MillimetreMercury => "mmHg",
        Unit::MilligramPerDecilitre => "mg/dL",
        Unit::MillimolePerLitre => "mmol/L",
        Unit::Hour => "h",
        Unit::Minute => "min",
        Unit::Second => "s",
        Unit::Millisecond => "ms",
        Unit::Steps => "steps",
        Unit::KilogramPerSquareMetre => "kg/m2",
        Unit::PerSecond => "/s",
        Unit::Ounce => "oz",
        Unit::Stone => "st",
        Unit::Foot => "ft",
        Unit::SmallCalorie => "cal",
        Unit::Flights => "flights",
        Unit::MillilitrePerMinutePerKilogram => "mL/min/kg",
    }
}

/// A name-based UUID: SHA-256 of namespace and name, cut to 128 bits with version 8 and the
/// RFC variant set (RFC 9562 Appendix B.2). Not v5 (SHA-1): the uuid crate builds without it here,
/// and v8 is the RFC's own form for name-based ids from another hash.
fn name_based(name: &[&[u8]]) -> Uuid {
    let mut hash = Sha256::new().chain_update(ID_NAMESPACE.as_bytes());
    for part in name {
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The Observation id (and `urn:uuid:` fullUrl) of a sample. The user's id is part of the name
/// so that ids are unique beyond this database, as a `urn:uuid` must be: sample 1 of every
/// deployment would otherwise share one. Row ids are unique per metric table, so a single export
/// must not mix two tables (their rows could share an id).
pub fn observation_id(subject: &Uuid, sample_id: i64) -> Uuid {
    name_based(&[b"sample\0", subject.as_bytes(), &sample_id.to_be_bytes()])
}

/// The id of a blood-pressure panel: the pair's correlation id is what makes it one measurement.
pub fn panel_id(subject: &Uuid, correlation_id: &Uuid) -> Uuid {
    name_based(&[b"bp-panel\0", subject.as_bytes(), correlation_id.as_bytes()])
}

/// A FHIR dateTime/instant for `us` (µs since the epoch): in the device's offset when it is
/// known (`2021-11-30T07:47:59+02:00`), else UTC (`…Z`). Seconds always, the fraction only when
/// non-zero (3 or 6 digits). FHIR's grammar allows offsets up to ±14:00 only, the range of real
/// zones; a stored offset beyond it (the column admits ±18 h) is rendered in UTC, which is the
/// same instant. `None` outside years 0001–9999.
pub fn fhir_instant(us: i64, offset_min: Option<i32>) -> Option<String> {
    let utc: DateTime<Utc> = DateTime::from_timestamp_micros(us)?;
    let offset = offset_min.filter(|m| m.abs() <= 14 * 60).and_then(|m| FixedOffset::east_opt(m * 60));
    let text = match offset {
        Some(offset) => {
            let local = utc.with_timezone(&offset);
            if !(1..=9999).contains(&local.year()) {
                return None;
            }
            local.to_rfc3339_opts(SecondsFormat::AutoSi, false)
        }
        None => {
            if !(1..=9999).contains(&utc.year()) {
                return None;
            }
            utc.to_rfc3339_opts(SecondsFormat::AutoSi, true)
        }
    };
    Some(text)
}

/// A JSON number for a measured value: integral values without a fraction (611 steps, not
/// 611.0: a stored double carries no precision to show), others in serde_json's shortest form.
fn number(sample: i64, value: f64) -> Result<Value, ExportError> {
    if !value.is_finite() {
        return Err(ExportError::NotFinite { sample, value });
    }
    // 2^53: every integer up to it is exact in a double.
    if value.fract() == 0.0 && value.abs() <= 9_007_199_254_740_992.0 {
        return Ok(Value::from(value as i64));
    }
    Ok(Value::from(value))
}

fn quantity(sample: &Sample) -> Result<Value, ExportError> {
    let unit = Unit::parse(&sample.unit)
        .ok_or_else(|| ExportError::UnknownUnit { sample: sample.id, unit: sample.unit.clone() })?;
    Ok(json!({
        "value": number(sample.id, sample.value)?,
        "unit": unit_text(unit, &sample.kind),
        "system": UCUM,
        "code": unit.code(),
    }))
}

fn coding(system: &str, code: &str, display: Option<&str>) -> Value {
    let mut coding = Map::new();
    coding.insert("system".into(), system.into());
    coding.insert("code".into(), code.into());
    if let Some(display) = display {
        coding.insert("display".into(), display.into());
    }
    Value::Object(coding)
}

/// Observation.code of a kind: LOINC when the catalog has a code, else ours; text always.
fn kind_code(kind: &Kind) -> Value {
    let coding = match &kind.loinc {
        Some(loinc) => coding(LOINC, loinc, loinc_display(loinc)),
        None => coding(METRIC_KIND_SYSTEM, &kind.code, Some(&kind.display)),
    };
    json!({ "coding": [coding], "text": kind.display })
}

fn kind_of<'a>(sample: &Sample, kinds: &'a HashMap<String, Kind>) -> Result<&'a Kind, ExportError> {
    kinds.get(&sample.kind).ok_or_else(|| ExportError::UnknownKind { sample: sample.id, kind: sample.kind.clone() })
}

/// Observation.effective[x]: an interval of zero length is an instant (HealthKit writes start =
/// end for point samples such as heart rate).
fn effective(sample: &Sample) -> Result<(&'static str, Value), ExportError> {
    let at = |us: i64, field: &'static str| {
        fhir_instant(us, sample.tz_offset_min).ok_or(ExportError::YearOutOfRange { sample: sample.id, field })
    };
    let start = at(sample.recorded_at_us, "recorded_at")?;
    match sample.ended_at_us {
        Some(end) if end != sample.recorded_at_us => {
            if end < sample.recorded_at_us {
                return Err(ExportError::EndBeforeStart { sample: sample.id });
            }
            Ok(("effectivePeriod", json!({ "start": start, "end": at(end, "ended_at")? })))
        }
        _ => Ok(("effectiveDateTime", Value::String(start))),
    }
}

/// The members every Observation of ours has, in one place so the panel cannot drift from the
/// plain form.
fn observation_base(
    id: Uuid,
    subject: &Uuid,
    category: Option<Category>,
    code: Value,
    timed: &Sample,
) -> Result<Map<String, Value>, ExportError> {
    let mut obs = Map::new();
    obs.insert("resourceType".into(), "Observation".into());
    obs.insert("id".into(), id.to_string().into());
    // final: a device reading as stored; a later correction arrives as a new sync version and
    // replaces the row, so the export never holds a preliminary value.
    obs.insert("status".into(), "final".into());
    if let Some(category) = category {
        obs.insert(
            "category".into(),
            json!([{ "coding": [coding(OBSERVATION_CATEGORY, category.code(), Some(category.display()))] }]),
        );
    }
    obs.insert("code".into(), code);
    obs.insert("subject".into(), json!({ "reference": format!("Patient/{subject}") }));
    let (effective_name, effective) = effective(timed)?;
    obs.insert(effective_name.into(), effective);
    Ok(obs)
}

/// `device: {"display": source}`; nothing for no source or a blank one (FHIR strings must have
/// content).
fn add_device(obs: &mut Map<String, Value>, source: Option<&str>) {
    if let Some(source) = source.filter(|s| !s.trim().is_empty()) {
        obs.insert("device".into(), json!({ "display": source }));
    }
}

fn plain_observation(subject: &Uuid, sample: &Sample, kinds: &HashMap<String, Kind>) -> Result<Value, ExportError> {
    let kind = kind_of(sample, kinds)?;
    let id = observation_id(subject, sample.id);
    let mut obs = observation_base(id, subject, category(&kind.code), kind_code(kind), sample)?;
    obs.insert("valueQuantity".into(), quantity(sample)?);
    add_device(&mut obs, sample.source.as_deref());
    Ok(Value::Object(obs))
}

/// One blood-pressure measurement as the vital-signs BP profile wants it: code 85354-9, no value
/// of its own, components 8480-6 and 8462-4 in mm[Hg]. Time and device are the systolic row's
/// (ingest stores both halves with the same ones).
fn panel_observation(
    subject: &Uuid,
    correlation_id: &Uuid,
    systolic: &Sample,
    diastolic: &Sample,
    kinds: &HashMap<String, Kind>,
) -> Result<Value, ExportError> {
    let component = |sample: &Sample, (code, display): (&str, &str)| -> Result<Value, ExportError> {
        let kind = kind_of(sample, kinds)?;
        Ok(json!({
            "code": { "coding": [coding(LOINC, code, Some(display))], "text": kind.display },
            "valueQuantity": quantity(sample)?,
        }))
    };
    let components = vec![component(systolic, BP_SYSTOLIC)?, component(diastolic, BP_DIASTOLIC)?];
    let code = json!({ "coding": [coding(LOINC, BP_PANEL.0, Some(BP_PANEL.1))], "text": "Blood pressure" });
    let id = panel_id(subject, correlation_id);
    let mut obs = observation_base(id, subject, Some(Category::VitalSigns), code, systolic)?;
    obs.insert("component".into(), Value::Array(components));
    add_device(&mut obs, systolic.source.as_deref().or(diastolic.source.as_deref()));
    Ok(Value::Object(obs))
}

/// The blood-pressure pairs among `samples`: correlation id → (systolic index, diastolic index).
/// Only a correlation id with exactly one systolic and one diastolic row is a pair; anything
/// else (a lone half, a duplicated half) is exported row by row, so nothing is merged by guess.
fn bp_pairs(samples: &[Sample]) -> HashMap<Uuid, (usize, usize)> {
    let mut halves: HashMap<Uuid, (Vec<usize>, Vec<usize>)> = HashMap::new();
    for (i, sample) in samples.iter().enumerate() {
        let Some(correlation) = sample.correlation_id else { continue };
        match sample.kind.as_str() {
            SYSTOLIC => halves.entry(correlation).or_default().0.push(i),
            DIASTOLIC => halves.entry(correlation).or_default().1.push(i),
            _ => {}
        }
    }
    halves
        .into_iter()
        .filter_map(|(correlation, (sys, dia))| match (sys.as_slice(), dia.as_slice()) {
            ([s], [d]) => Some((correlation, (*s, *d))),
            _ => None,
        })
        .collect()
}

/// The Observations of `samples`, in their order; a blood-pressure pair becomes one panel at the
/// position of its first row. A pair is only joined when both rows are in the same call: an
/// export in chunks must not cut between the rows of one correlation id (they share
/// `recorded_at`, so chunks cut between different `recorded_at` values keep pairs whole).
pub fn observations(
    subject: &Uuid,
    samples: &[Sample],
    kinds: &HashMap<String, Kind>,
) -> Result<Vec<Value>, ExportError> {
    let pairs = bp_pairs(samples);
    let mut out = Vec::with_capacity(samples.len());
    for (i, sample) in samples.iter().enumerate() {
        let pair = sample.correlation_id.and_then(|c| pairs.get(&c).map(|p| (c, *p)));
        match pair {
            Some((correlation, (s, d))) => {
                if i == s.min(d) {
                    out.push(panel_observation(subject, &correlation, &samples[s], &samples[d], kinds)?);
                }
            }
            None => out.push(plain_observation(subject, sample, kinds)?),
        }
    }
    Ok(out)
}

/// A `collection` Bundle of the Observations, stamped now.
pub fn bundle(subject: &Uuid, samples: &[Sample], kinds: &HashMap<String, Kind>) -> Result<Value, ExportError> {
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    bundle_at(subject, samples, kinds, now_us)
}

/// [`bundle`] with the timestamp given (µs since the epoch), for reproducible output.
/// `collection`: a set of resources with no further meaning (not a `document`, which would need
/// a Composition, nor a `transaction` a server should execute). An empty export has no `entry`
/// at all: FHIR JSON forbids empty arrays (every element needs a value or children, ele-1).
pub fn bundle_at(
    subject: &Uuid,
    samples: &[Sample],
    kinds: &HashMap<String, Kind>,
    timestamp_us: i64,
) -> Result<Value, ExportError> {
    let entries: Vec<Value> = observations(subject, samples, kinds)?
        .into_iter()
        .map(|resource| {
            let full_url = format!("urn:uuid:{}", resource["id"].as_str().unwrap_or_default());
            json!({ "fullUrl": full_url, "resource": resource })
        })
        .collect();
    let mut bundle = Map::new();
    bundle.insert("resourceType".into(), "Bundle".into());
    bundle.insert("type".into(), "collection".into());
    // An instant: always UTC here, the export's own moment has no device offset.
    let timestamp = fhir_instant(timestamp_us, None).unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
    bundle.insert("timestamp".into(), timestamp.into());
    if !entries.is_empty() {
        bundle.insert("entry".into(), Value::Array(entries));
    }
    Ok(Value::Object(bundle))
}

/// One NDJSON line (no trailing newline): compact JSON, in which serde_json escapes every control
/// character inside strings, so a line never breaks. For FHIR Bulk Data style exports.
#[cfg(test)]
pub fn ndjson_line(resource: &Value) -> String {
    resource.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: Uuid = Uuid::from_u128(0x5f0e_7c3a_1d2b_4e6f_8a9b_0c1d_2e3f_4a5b);
    /// 2021-11-30T05:47:59Z (`date -d 2021-11-30T05:47:59Z +%s` = 1638251279)
    const T0: i64 = 1_638_251_279_000_000;

    /// A kind as the extension seeds it: its canonical unit and plausible range.
    struct Seeded {
        kind: Kind,
        unit: String,
        min: f64,
        max: f64,
    }

    /// An everyday value of each seeded kind in its canonical unit, for the validator's samples.
    fn typical(kind: &str) -> Option<f64> {
        Some(match kind {
            "heart_rate" => 72.0,
            "resting_heart_rate" => 58.0,
            "walking_heart_rate_average" => 96.0,
            "heart_rate_variability_sdnn" => 48.3,
            "steps" => 611.0,
            "distance" => 452.7,
            "active_energy" => 23.4,
            "basal_energy" => 61.2,
            "oxygen_saturation" => 97.0,
            "respiratory_rate" => 14.0,
            "body_temperature" => 36.6,
            "body_weight" => 71.35,
            "body_height" => 178.0,
            "body_mass_index" => 22.5,
            SYSTOLIC => 118.0,
            DIASTOLIC => 76.0,
            "blood_glucose" => 5.4,
            "sleep_duration" => 7.25,
            "vo2_max" => 42.1,
            "body_fat_percentage" => 18.2,
            "flights_climbed" => 3.0,
            "sleep_in_bed" => 7.9,
            "sleep_asleep" => 7.1,
            "sleep_awake" => 0.4,
            "sleep_core" => 3.9,
            "sleep_deep" => 1.25,
            "sleep_rem" => 1.7,
            _ => return None,
        })
    }

    /// The kinds the extension seeds, read from the SQL that seeds them, so that a kind added
    /// there without a category or a LOINC display here fails these tests.
    fn seeded() -> Vec<Seeded> {
        let mut kinds = Vec::new();
        for sql in [include_str!("../../sql/health_catalog.sql"), include_str!("../../sql/vocabulary.sql")] {
            let insert = &sql[sql.find("INSERT INTO health.metric_kinds").expect("metric_kinds insert")..];
            let values = &insert[insert.find("VALUES").expect("VALUES") + "VALUES".len()..];
            // A small reader of `('a', 'b', 1, NULL, ...), ...;`: quoted strings ('' escapes a quote),
            // bare words, `--` comments.
            let (mut depth, mut in_str) = (0, false);
            let (mut field, mut fields) = (String::new(), Vec::<String>::new());
            let mut chars = values.chars().peekable();
            while let Some(c) = chars.next() {
                if in_str {
                    match c {
                        '\'' if chars.peek() == Some(&'\'') => {
                            field.push('\'');
                            chars.next();
                        }
                        '\'' => in_str = false,
                        _ => field.push(c),
                    }
                    continue;
                }
                match c {
                    '\'' => in_str = true,
                    '-' if chars.peek() == Some(&'-') => {
                        for c in chars.by_ref() {
                            if c == '\n' {
                                break;
                            }
                        }
                    }
                    '(' => {
                        depth += 1;
                        fields.clear();
                        field.clear();
                    }
                    ',' if depth == 1 => fields.push(std::mem::take(&mut field).trim().to_string()),
                    ')' => {
                        depth -= 1;
                        fields.push(std::mem::take(&mut field).trim().to_string());
                        // (code, display, unit, min, max, molar_mass, loinc, ...)
                        let loinc = Some(fields[6].clone()).filter(|l| l != "NULL");
                        let kind = Kind { code: fields[0].clone(), display: fields[1].clone(), loinc };
                        let bound = |f: &str| f.parse::<f64>().expect("seeded kinds have both bounds");
                        let (min, max) = (bound(&fields[3]), bound(&fields[4]));
                        kinds.push(Seeded { kind, unit: fields[2].clone(), min, max });
                    }
                    ';' if depth == 0 => break,
                    c if depth == 1 => field.push(c),
                    _ => {}
                }
            }
        }
        kinds
    }

    fn catalog() -> HashMap<String, Kind> {
        seeded().into_iter().map(|s| (s.kind.code.clone(), s.kind)).collect()
    }

    fn sample(id: i64, kind: &str, value: f64, unit: &str) -> Sample {
        Sample {
            id,
            kind: kind.into(),
            value,
            unit: unit.into(),
            recorded_at_us: T0,
            ended_at_us: None,
            tz_offset_min: Some(120),
            source: Some("Jonathan’s Apple Watch".into()),
            correlation_id: None,
        }
    }

    fn one(s: Sample) -> Value {
        let mut all = observations(&USER, &[s], &catalog()).unwrap();
        assert_eq!(all.len(), 1);
        all.pop().unwrap()
    }

    #[test]
    fn seeded_catalog_is_covered() {
        let kinds = seeded();
        assert_eq!(kinds.len(), 27, "16 kinds of 0.1.0 + 11 of 0.2.0");
        for Seeded { kind, unit, min, max } in &kinds {
            assert!(category(&kind.code).is_some(), "{} has no category", kind.code);
            let value = typical(&kind.code).unwrap_or_else(|| panic!("{} has no typical value", kind.code));
            assert!((*min..=*max).contains(&value), "{}: {value}", kind.code);
            assert!(Unit::parse(unit).is_some(), "{}: {unit}", kind.code);
            if let Some(loinc) = &kind.loinc {
                assert!(loinc_display(loinc).is_some(), "{} ({loinc}) has no LOINC display", kind.code);
            }
        }
        let without: Vec<&str> =
            kinds.iter().filter(|s| s.kind.loinc.is_none()).map(|s| s.kind.code.as_str()).collect();
        assert_eq!(
            without,
            [
                "walking_heart_rate_average",
                "vo2_max",
                "basal_energy",
                "sleep_in_bed",
                "sleep_asleep",
                "sleep_awake",
                "sleep_core",
                "sleep_deep",
                "sleep_rem"
            ]
        );
    }

    #[test]
    fn categories() {
        use Category::*;
        for (kind, want) in [
            ("heart_rate", VitalSigns),
            ("resting_heart_rate", VitalSigns),
            ("walking_heart_rate_average", VitalSigns),
            ("respiratory_rate", VitalSigns),
            ("oxygen_saturation", VitalSigns),
            ("body_temperature", VitalSigns),
            ("body_weight", VitalSigns),
            ("body_height", VitalSigns),
            ("body_mass_index", VitalSigns),
            ("blood_pressure_systolic", VitalSigns),
            ("blood_pressure_diastolic", VitalSigns),
            ("steps", Activity),
            ("distance", Activity),
            ("active_energy", Activity),
            ("basal_energy", Activity),
            ("flights_climbed", Activity),
            ("sleep_duration", Activity),
            ("sleep_rem", Activity),
            ("blood_glucose", Laboratory),
            ("heart_rate_variability_sdnn", Exam),
            ("vo2_max", Exam),
            ("body_fat_percentage", Exam),
        ] {
            assert_eq!(category(kind), Some(want), "{kind}");
        }
        assert_eq!(category("my_own_kind"), None);
    }

    #[test]
    fn heart_rate_point_sample() {
        let obs = one(sample(4711, "heart_rate", 72.0, "/min"));
        let id = observation_id(&USER, 4711).to_string();
        assert_eq!(
            obs,
            json!({
                "resourceType": "Observation",
                "id": id,
                "status": "final",
                "category": [{ "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                    "display": "Vital Signs"
                }] }],
                "code": {
                    "coding": [{ "system": "http://loinc.org", "code": "8867-4", "display": "Heart rate" }],
                    "text": "Heart rate"
                },
                "subject": { "reference": "Patient/5f0e7c3a-1d2b-4e6f-8a9b-0c1d2e3f4a5b" },
                "effectiveDateTime": "2021-11-30T07:47:59+02:00",
                "valueQuantity": {
                    "value": 72,
                    "unit": "beats/minute",
                    "system": "http://unitsofmeasure.org",
                    "code": "/min"
                },
                "device": { "display": "Jonathan’s Apple Watch" }
            })
        );
        // The number is written as 72, not 72.0.
        let line = ndjson_line(&obs);
        assert!(line.contains(r#""value":72"#) && !line.contains("72.0"), "{line}");
    }

    #[test]
    fn steps_interval_is_a_period() {
        let mut s = sample(1, "steps", 611.0, "{steps}");
        s.ended_at_us = Some(T0 + 421_000_000); // 07:55:00
        let obs = one(s);
        assert_eq!(
            obs["effectivePeriod"],
            json!({ "start": "2021-11-30T07:47:59+02:00", "end": "2021-11-30T07:55:00+02:00" })
        );
        assert!(obs.get("effectiveDateTime").is_none());
        assert_eq!(obs["category"][0]["coding"][0]["code"], "activity");
        assert_eq!(
            obs["code"]["coding"][0],
            json!({ "system": LOINC, "code": "55423-8", "display": "Number of steps in unspecified time Pedometer" })
        );
        assert_eq!(obs["code"]["text"], "Step count");
        assert_eq!(obs["valueQuantity"], json!({ "value": 611, "unit": "steps", "system": UCUM, "code": "{steps}" }));
    }

    #[test]
    fn zero_length_interval_is_an_instant() {
        let mut s = sample(1, "heart_rate", 61.0, "/min");
        s.ended_at_us = Some(T0);
        let obs = one(s);
        assert_eq!(obs["effectiveDateTime"], "2021-11-30T07:47:59+02:00");
        assert!(obs.get("effectivePeriod").is_none());
    }

    fn bp_pair(correlation: Uuid, systolic_id: i64) -> [Sample; 2] {
        let mut sys = sample(systolic_id, SYSTOLIC, 120.0, "mm[Hg]");
        let mut dia = sample(systolic_id + 1, DIASTOLIC, 80.0, "mm[Hg]");
        sys.correlation_id = Some(correlation);
        dia.correlation_id = Some(correlation);
        sys.source = Some("cuff".into());
        dia.source = Some("cuff".into());
        [sys, dia]
    }

    #[test]
    fn blood_pressure_pair_is_one_panel() {
        let correlation = Uuid::from_u128(0xabc);
        // diastolic first: the panel still comes out once, where the pair starts.
        let [sys, dia] = bp_pair(correlation, 10);
        let hr = sample(9, "heart_rate", 64.0, "/min");
        let all = observations(&USER, &[hr, dia, sys], &catalog()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0]["code"]["coding"][0]["code"], "8867-4");
        let panel = &all[1];
        assert_eq!(panel["id"], panel_id(&USER, &correlation).to_string());
        assert_eq!(
            panel["code"],
            json!({
                "coding": [{ "system": LOINC, "code": "85354-9", "display": "Blood pressure panel with all children optional" }],
                "text": "Blood pressure"
            })
        );
        assert_eq!(panel["category"][0]["coding"][0]["code"], "vital-signs");
        assert!(panel.get("valueQuantity").is_none(), "a panel has no value of its own");
        assert_eq!(
            panel["component"],
            json!([
                {
                    "code": { "coding": [{ "system": LOINC, "code": "8480-6", "display": "Systolic blood pressure" }], "text": "Systolic blood pressure" },
                    "valueQuantity": { "value": 120, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]" }
                },
                {
                    "code": { "coding": [{ "system": LOINC, "code": "8462-4", "display": "Diastolic blood pressure" }], "text": "Diastolic blood pressure" },
                    "valueQuantity": { "value": 80, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]" }
                }
            ])
        );
        assert_eq!(panel["effectiveDateTime"], "2021-11-30T07:47:59+02:00");
        assert_eq!(panel["device"], json!({ "display": "cuff" }));
    }

    #[test]
    fn lone_or_ambiguous_halves_stay_plain() {
        let mut lone = sample(1, SYSTOLIC, 131.0, "mm[Hg]");
        lone.correlation_id = Some(Uuid::from_u128(1));
        let obs = one(lone);
        assert_eq!(obs["id"], observation_id(&USER, 1).to_string());
        assert_eq!(
            obs["code"]["coding"][0],
            json!({ "system": LOINC, "code": "8480-6", "display": "Systolic blood pressure" })
        );
        assert_eq!(obs["valueQuantity"]["value"], 131);
        assert!(obs.get("component").is_none());
        // No correlation id at all: plain too.
        assert!(one(sample(2, DIASTOLIC, 80.0, "mm[Hg]")).get("component").is_none());
        // Two systolic rows on one correlation id: not a pair, nothing merged.
        let c = Uuid::from_u128(2);
        let [s1, d] = bp_pair(c, 10);
        let mut s2 = s1.clone();
        s2.id = 12;
        let all = observations(&USER, &[s1, d, s2], &catalog()).unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(|o| o.get("component").is_none()));
    }

    #[test]
    fn kind_without_loinc_uses_our_code_system() {
        let mut s = sample(5, "sleep_deep", 1.25, "h");
        s.ended_at_us = Some(T0 + 4_500_000_000);
        let obs = one(s);
        assert_eq!(
            obs["code"],
            json!({
                "coding": [{
                    "system": "https://github.com/health-rls/health_rls/fhir/CodeSystem/metric-kind",
                    "code": "sleep_deep",
                    "display": "Sleep: deep sleep"
                }],
                "text": "Sleep: deep sleep"
            })
        );
        assert_eq!(obs["valueQuantity"], json!({ "value": 1.25, "unit": "h", "system": UCUM, "code": "h" }));
        assert_eq!(obs["category"][0]["coding"][0]["code"], "activity");
    }

    #[test]
    fn dba_kind_gets_no_category_and_loinc_without_invented_display() {
        let mut kinds = catalog();
        kinds.insert(
            "waist".into(),
            Kind { code: "waist".into(), display: "Waist".into(), loinc: Some("8280-0".into()) },
        );
        let obs = observations(&USER, &[sample(1, "waist", 80.5, "cm")], &kinds).unwrap().pop().unwrap();
        assert!(obs.get("category").is_none());
        assert_eq!(obs["code"], json!({ "coding": [{ "system": LOINC, "code": "8280-0" }], "text": "Waist" }));
    }

    #[test]
    fn time_zones() {
        assert_eq!(fhir_instant(T0, Some(120)).unwrap(), "2021-11-30T07:47:59+02:00");
        assert_eq!(fhir_instant(T0, Some(-300)).unwrap(), "2021-11-30T00:47:59-05:00");
        assert_eq!(fhir_instant(T0, None).unwrap(), "2021-11-30T05:47:59Z");
        // A known offset of zero is said as such; only an unknown one is Z.
        assert_eq!(fhir_instant(T0, Some(0)).unwrap(), "2021-11-30T05:47:59+00:00");
        assert_eq!(fhir_instant(T0, Some(330)).unwrap(), "2021-11-30T11:17:59+05:30");
        assert_eq!(fhir_instant(T0, Some(840)).unwrap(), "2021-11-30T19:47:59+14:00");
        // Beyond FHIR's ±14:00: the same instant in UTC.
        assert_eq!(fhir_instant(T0, Some(900)).unwrap(), "2021-11-30T05:47:59Z");
        assert_eq!(fhir_instant(T0, Some(-1080)).unwrap(), "2021-11-30T05:47:59Z");
        // Fractions only when there are any.
        assert_eq!(fhir_instant(T0 + 500_000, None).unwrap(), "2021-11-30T05:47:59.500Z");
        assert_eq!(fhir_instant(T0 + 123_456, Some(60)).unwrap(), "2021-11-30T06:47:59.123456+01:00");
        assert_eq!(fhir_instant(-1_000_000, None).unwrap(), "1969-12-31T23:59:59Z");
        // Years FHIR cannot write.
        assert_eq!(fhir_instant(253_402_300_800_000_000, None), None, "10000-01-01");
        assert_eq!(
            fhir_instant(253_402_300_799_000_000, Some(60)),
            None,
            "9999-12-31T23:59:59Z is year 10000 at +01:00"
        );
        assert_eq!(fhir_instant(-62_135_596_801_000_000, None), None, "year 0");

        let mut s = sample(1, "heart_rate", 60.0, "/min");
        s.tz_offset_min = Some(-300);
        assert_eq!(one(s.clone())["effectiveDateTime"], "2021-11-30T00:47:59-05:00");
        s.tz_offset_min = None;
        assert_eq!(one(s)["effectiveDateTime"], "2021-11-30T05:47:59Z");
    }

    #[test]
    fn empty_input_is_an_empty_collection() {
        let b = bundle_at(&USER, &[], &catalog(), T0).unwrap();
        assert_eq!(b, json!({ "resourceType": "Bundle", "type": "collection", "timestamp": "2021-11-30T05:47:59Z" }));
        assert!(observations(&USER, &[], &catalog()).unwrap().is_empty());
    }

    #[test]
    fn bundle_entries_have_urn_uuid_full_urls() {
        let [sys, dia] = bp_pair(Uuid::from_u128(7), 20);
        let b = bundle_at(&USER, &[sample(1, "heart_rate", 70.0, "/min"), sys, dia], &catalog(), T0 + 1_000).unwrap();
        assert_eq!(b["type"], "collection");
        assert_eq!(b["timestamp"], "2021-11-30T05:47:59.001Z");
        let entries = b["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        for entry in entries {
            assert_eq!(entry["fullUrl"], format!("urn:uuid:{}", entry["resource"]["id"].as_str().unwrap()));
        }
        assert_eq!(entries[0]["fullUrl"], format!("urn:uuid:{}", observation_id(&USER, 1)));
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let a = observation_id(&USER, 1);
        assert_eq!(a, observation_id(&USER, 1));
        assert_eq!(a.get_version_num(), 8);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(a, observation_id(&USER, 2));
        assert_ne!(a, observation_id(&Uuid::from_u128(1), 1), "another user's sample 1");
        assert_ne!(panel_id(&USER, &Uuid::from_u128(1)), panel_id(&Uuid::from_u128(2), &Uuid::from_u128(1)));
        // Pinned: a change here would re-identify every Observation a receiver already holds.
        // Computed independently: Python's hashlib.sha256(namespace + b"sample\0" + user +
        // (1).to_bytes(8, "big")), first 16 bytes, version nibble 8, variant bits 10.
        assert_eq!(a.to_string(), "c99b37e7-caf2-8b4f-b341-43a7a47b28cf");
        // Whole exports repeat exactly (apart from the timestamp, which is given here).
        let s = [sample(1, "heart_rate", 70.0, "/min"), sample(2, "steps", 10.0, "{steps}")];
        assert_eq!(bundle_at(&USER, &s, &catalog(), T0).unwrap(), bundle_at(&USER, &s, &catalog(), T0).unwrap());
    }

    #[test]
    fn values_and_refusals() {
        assert_eq!(one(sample(1, "body_temperature", 36.6, "Cel"))["valueQuantity"]["value"], json!(36.6));
        assert_eq!(one(sample(1, "body_temperature", 36.6, "Cel"))["valueQuantity"]["unit"], "°C");
        assert_eq!(one(sample(1, "blood_glucose", 5.5, "mmol/L"))["category"][0]["coding"][0]["code"], "laboratory");
        assert_eq!(one(sample(1, "distance", -0.0, "m"))["valueQuantity"]["value"], json!(0));
        let refuse = |s: Sample| observations(&USER, &[s], &catalog()).unwrap_err();
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = refuse(sample(3, "heart_rate", bad, "/min"));
            assert!(
                matches!(e, ExportError::NotFinite { sample: 3, value } if value.to_bits() == bad.to_bits()),
                "{e:?}"
            );
            assert!(e.to_string().starts_with("sample 3: value "), "{e}");
        }
        assert_eq!(
            refuse(sample(4, "nope", 1.0, "/min")).to_string(),
            "sample 4: kind \"nope\" is not in the catalog passed to the FHIR export"
        );
        assert_eq!(
            refuse(sample(5, "heart_rate", 60.0, "bpm")).to_string(),
            "sample 5: unit \"bpm\" is not a UCUM code this extension knows"
        );
        let mut backwards = sample(6, "steps", 1.0, "{steps}");
        backwards.ended_at_us = Some(T0 - 1);
        assert_eq!(refuse(backwards), ExportError::EndBeforeStart { sample: 6 });
        let mut far = sample(7, "steps", 1.0, "{steps}");
        far.recorded_at_us = 253_402_300_800_000_000;
        assert_eq!(
            refuse(far).to_string(),
            "sample 7: recorded_at lies outside the years 0001-9999 a FHIR dateTime can express"
        );
        // One bad row refuses the whole call: a partial export would silently lose it.
        let rows = [sample(1, "heart_rate", 60.0, "/min"), sample(2, "heart_rate", f64::NAN, "/min")];
        assert!(observations(&USER, &rows, &catalog()).is_err());
        assert!(bundle_at(&USER, &rows, &catalog(), T0).is_err());
    }

    #[test]
    fn ndjson_lines_never_break() {
        let mut s = sample(1, "heart_rate", 60.0, "/min");
        s.source = Some("line one\nline two\r\u{2028}".into());
        let line = ndjson_line(&one(s));
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["device"]["display"], "line one\nline two\r\u{2028}");
        // Blank sources are left out (a FHIR string must have content).
        let mut blank = sample(2, "heart_rate", 60.0, "/min");
        blank.source = Some("  ".into());
        assert!(one(blank).get("device").is_none());
    }

    /// With FHIR_SAMPLES_DIR set, writes representative exports for tests/fhir/validate.py.
    #[test]
    fn write_samples_for_the_validator() {
        let Ok(dir) = std::env::var("FHIR_SAMPLES_DIR") else { return };
        let dir = std::path::Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap();
        let kinds = catalog();
        // One sample of every seeded kind, in its canonical unit; intervals for the cumulative
        // kinds; a BP pair, a lone systolic; three offsets.
        let mut samples = Vec::new();
        for (i, Seeded { kind, unit, .. }) in seeded().into_iter().enumerate() {
            let mut s = sample(100 + i as i64, &kind.code, typical(&kind.code).unwrap(), &unit);
            s.recorded_at_us = T0 + i as i64 * 60_000_000;
            s.tz_offset_min = [Some(120), Some(-300), None][i % 3];
            if matches!(category(&kind.code), Some(Category::Activity)) {
                s.ended_at_us = Some(s.recorded_at_us + 1_800_000_000);
            }
            samples.push(s);
        }
        let pair = bp_pair(Uuid::from_u128(0xb10d), 500);
        let mut lone = sample(502, SYSTOLIC, 141.0, "mm[Hg]");
        lone.correlation_id = Some(Uuid::from_u128(0x10e));
        lone.source = None;
        let write = |name: &str, v: &Value| {
            std::fs::write(dir.join(name), serde_json::to_string_pretty(v).unwrap()).unwrap();
        };
        write("empty.json", &bundle_at(&USER, &[], &kinds, T0).unwrap());
        write("bp-panel.json", &bundle_at(&USER, &pair, &kinds, T0).unwrap());
        let mut all = samples.clone();
        all.extend(pair.iter().cloned());
        all.push(lone);
        write("all-kinds.json", &bundle_at(&USER, &all, &kinds, T0 + 123_000).unwrap());
        let lines: Vec<String> = observations(&USER, &all, &kinds).unwrap().iter().map(ndjson_line).collect();
        std::fs::write(dir.join("observations.ndjson"), lines.join("\n") + "\n").unwrap();
    }
}
