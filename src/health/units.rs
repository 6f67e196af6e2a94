//! The UCUM units health samples arrive in, and conversion between them (docs/sql-reference.md, "health").
//!
//! Only the case-sensitive UCUM codes below are accepted: a unit the table does not know is
//! refused rather than guessed, because a misread unit silently corrupts a health record
//! (98.6 read as Cel, an SpO2 fraction 0.97 read as %).
//!
//! Every unit is a linear map onto its dimension's base unit: `base = (value + offset) * factor`.
//! Temperature is the only dimension with an offset (Cel and [degF] onto kelvin).
//! Mass concentration (mg/dL) and substance concentration (mmol/L) are different dimensions:
//! crossing them needs the molar mass of the substance, which the caller passes (the metric
//! catalog stores it per kind: glucose 180.16 g/mol). Guessing "glucose" for any mg/dL would
//! convert cholesterol wrongly, so without a molar mass the conversion is refused.

/// Molar mass of glucose (C6H12O6), g/mol: the factor between mg/dL and mmol/L (1 mmol/L = 18.016 mg/dL).
pub const GLUCOSE_MOLAR_MASS: f64 = 180.16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// events per time (`/min`): heart and respiratory rate
    Frequency,
    /// dimensionless ratio (`%`, `1`)
    Fraction,
    Temperature,
    Mass,
    Length,
    Energy,
    Pressure,
    /// mass per volume (`mg/dL`)
    MassConcentration,
    /// amount of substance per volume (`mmol/L`)
    SubstanceConcentration,
    Time,
    /// counted steps. UCUM reads `{steps}` as the unity 1 with an annotation; we keep it apart
    /// from `1`/`%` so that a step count can never be "converted" into a percentage.
    Steps,
    /// mass per area (`kg/m2`): body mass index
    AreaDensity,
    /// counted flights of stairs (`{flights}`), kept apart from steps for the same reason
    Flights,
    /// oxygen uptake per body mass (`mL/min/kg`): VO2 max
    OxygenUptake,
}

impl Dimension {
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Frequency => "frequency",
            Dimension::Fraction => "fraction",
            Dimension::Temperature => "temperature",
            Dimension::Mass => "mass",
            Dimension::Length => "length",
            Dimension::Energy => "energy",
            Dimension::Pressure => "pressure",
            Dimension::MassConcentration => "mass concentration",
            Dimension::SubstanceConcentration => "substance concentration",
            Dimension::Time => "time",
            Dimension::Steps => "step count",
            Dimension::AreaDensity => "mass per area",
            Dimension::Flights => "flight count",
            Dimension::OxygenUptake => "oxygen uptake per mass",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    PerMinute,
    Percent,
    One,
    Celsius,
    Fahrenheit,
    Kilogram,
    Gram,
    Pound,
    Centimetre,
    Metre,
    Kilometre,
    Inch,
    Mile,
    Kilocalorie,
    Kilojoule,
    MillimetreMercury,
    MilligramPerDecilitre,
    MillimolePerLitre,
    Hour,
    Minute,
    Second,
    Millisecond,
    Steps,
    KilogramPerSquareMetre,
    PerSecond,
    Ounce,
    Stone,
    Foot,
    SmallCalorie,
    Flights,
    MillilitrePerMinutePerKilogram,
}

/// Every unit, for listing and for tests.
#[cfg(test)]
pub const ALL_UNITS: [Unit; 31] = [
    Unit::PerMinute,
    Unit::Percent,
    Unit::One,
    Unit::Celsius,
    Unit::Fahrenheit,
    Unit::Kilogram,
    Unit::Gram,
    Unit::Pound,
    Unit::Centimetre,
    Unit::Metre,
    Unit::Kilometre,
    Unit::Inch,
    Unit::Mile,
    Unit::Kilocalorie,
    Unit::Kilojoule,
    Unit::MillimetreMercury,
    Unit::MilligramPerDecilitre,
    Unit::MillimolePerLitre,
    Unit::Hour,
    Unit::Minute,
    Unit::Second,
    Unit::Millisecond,
    Unit::Steps,
    Unit::KilogramPerSquareMetre,
    Unit::PerSecond,
    Unit::Ounce,
    Unit::Stone,
    Unit::Foot,
    Unit::SmallCalorie,
    Unit::Flights,
    Unit::MillilitrePerMinutePerKilogram,
];

impl Unit {
    /// Parse an exact (case-sensitive) UCUM code.
    pub fn parse(code: &str) -> Option<Unit> {
        Some(match code {
            "/min" => Unit::PerMinute,
            "%" => Unit::Percent,
            "1" => Unit::One,
            "Cel" => Unit::Celsius,
            "[degF]" => Unit::Fahrenheit,
            "kg" => Unit::Kilogram,
            "g" => Unit::Gram,
            "[lb_av]" => Unit::Pound,
            "cm" => Unit::Centimetre,
            "m" => Unit::Metre,
            "km" => Unit::Kilometre,
            "[in_i]" => Unit::Inch,
            "[mi_i]" => Unit::Mile,
            "kcal" => Unit::Kilocalorie,
            "kJ" => Unit::Kilojoule,
            "mm[Hg]" => Unit::MillimetreMercury,
            "mg/dL" => Unit::MilligramPerDecilitre,
            "mmol/L" => Unit::MillimolePerLitre,
            "h" => Unit::Hour,
            "min" => Unit::Minute,
            "s" => Unit::Second,
            "ms" => Unit::Millisecond,
            "{steps}" => Unit::Steps,
            "kg/m2" => Unit::KilogramPerSquareMetre,
            "/s" => Unit::PerSecond,
            "[oz_av]" => Unit::Ounce,
            "[stone_av]" => Unit::Stone,
            "[ft_i]" => Unit::Foot,
            "cal" => Unit::SmallCalorie,
            "{flights}" => Unit::Flights,
            "mL/min/kg" => Unit::MillilitrePerMinutePerKilogram,
            _ => return None,
        })
    }

    /// The UCUM code.
    pub fn code(self) -> &'static str {
        match self {
            Unit::PerMinute => "/min",
            Unit::Percent => "%",
            Unit::One => "1",
            Unit::Celsius => "Cel",
            Unit::Fahrenheit => "[degF]",
            Unit::Kilogram => "kg",
            Unit::Gram => "g",
            Unit::Pound => "[lb_av]",
            Unit::Centimetre => "cm",
            Unit::Metre => "m",
            Unit::Kilometre => "km",
            Unit::Inch => "[in_i]",
            Unit::Mile => "[mi_i]",
            Unit::Kilocalorie => "kcal",
            Unit::Kilojoule => "kJ",
            Unit::MillimetreMercury => "mm[Hg]",
            Unit::MilligramPerDecilitre => "mg/dL",
            Unit::MillimolePerLitre => "mmol/L",
            Unit::Hour => "h",
            Unit::Minute => "min",
            Unit::Second => "s",
            Unit::Millisecond => "ms",
            Unit::Steps => "{steps}",
            Unit::KilogramPerSquareMetre => "kg/m2",
            Unit::PerSecond => "/s",
            Unit::Ounce => "[oz_av]",
            Unit::Stone => "[stone_av]",
            Unit::Foot => "[ft_i]",
            Unit::SmallCalorie => "cal",
            Unit::Flights => "{flights}",
            Unit::MillilitrePerMinutePerKilogram => "mL/min/kg",
        }
    }

    pub fn dimension(self) -> Dimension {
        self.scale().0
    }

    /// (dimension, factor, offset): `base = (value + offset) * factor`. Bases: 1/min, 1 (ratio),
    /// K, kg, m, kJ, mm[Hg], g/L, mol/L, s, steps, kg/m2, flights, mL/min/kg. Exact definitions:
    /// [lb_av] = 0.45359237 kg, [oz_av] = 1/16 [lb_av], [stone_av] = 14 [lb_av], [in_i] = 2.54 cm,
    /// [ft_i] = 12 [in_i], [mi_i] = 1609.344 m, cal = 4.184 J and kcal = 4.184 kJ (UCUM's cal is the
    /// thermochemical calorie), [degF] → K = (F + 459.67) × 5/9.
    fn scale(self) -> (Dimension, f64, f64) {
        use Dimension as D;
        match self {
            Unit::PerMinute => (D::Frequency, 1.0, 0.0),
            Unit::Percent => (D::Fraction, 0.01, 0.0),
            Unit::One => (D::Fraction, 1.0, 0.0),
            Unit::Celsius => (D::Temperature, 1.0, 273.15),
            Unit::Fahrenheit => (D::Temperature, 5.0 / 9.0, 459.67),
            Unit::Kilogram => (D::Mass, 1.0, 0.0),
            Unit::Gram => (D::Mass, 0.001, 0.0),
            Unit::Pound => (D::Mass, 0.453_592_37, 0.0),
            Unit::Centimetre => (D::Length, 0.01, 0.0),
            Unit::Metre => (D::Length, 1.0, 0.0),
            Unit::Kilometre => (D::Length, 1000.0, 0.0),
            Unit::Inch => (D::Length, 0.0254, 0.0),
            Unit::Mile => (D::Length, 1609.344, 0.0),
            Unit::Kilocalorie => (D::Energy, 4.184, 0.0),
            Unit::Kilojoule => (D::Energy, 1.0, 0.0),
            Unit::MillimetreMercury => (D::Pressure, 1.0, 0.0),
            Unit::MilligramPerDecilitre => (D::MassConcentration, 0.01, 0.0),
            Unit::MillimolePerLitre => (D::SubstanceConcentration, 0.001, 0.0),
            Unit::Hour => (D::Time, 3600.0, 0.0),
            Unit::Minute => (D::Time, 60.0, 0.0),
            Unit::Second => (D::Time, 1.0, 0.0),
            Unit::Millisecond => (D::Time, 0.001, 0.0),
            Unit::Steps => (D::Steps, 1.0, 0.0),
            Unit::KilogramPerSquareMetre => (D::AreaDensity, 1.0, 0.0),
            Unit::PerSecond => (D::Frequency, 60.0, 0.0),
            Unit::Ounce => (D::Mass, 0.028_349_523_125, 0.0),
            Unit::Stone => (D::Mass, 6.350_293_18, 0.0),
            Unit::Foot => (D::Length, 0.3048, 0.0),
            Unit::SmallCalorie => (D::Energy, 0.004_184, 0.0),
            Unit::Flights => (D::Flights, 1.0, 0.0),
            Unit::MillilitrePerMinutePerKilogram => (D::OxygenUptake, 1.0, 0.0),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ConvertError {
    UnknownUnit(String),
    /// The two units measure different things (kg → cm).
    Incompatible {
        from: Unit,
        to: Unit,
    },
    /// mg/dL ↔ mmol/L without the substance's molar mass.
    NeedsMolarMass {
        from: Unit,
        to: Unit,
    },
    /// A molar mass that is not a positive finite number.
    BadMolarMass(f64),
}

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvertError::UnknownUnit(u) => {
                write!(f, "unknown unit \"{u}\" (expected a UCUM code such as /min, %, Cel, [degF], kg, mmol/L)")
            }
            ConvertError::Incompatible { from, to } => write!(
                f,
                "cannot convert {} ({}) to {} ({})",
                from.code(),
                from.dimension().name(),
                to.code(),
                to.dimension().name()
            ),
            ConvertError::NeedsMolarMass { from, to } => write!(
                f,
                "converting {} to {} needs the molar mass of the substance (glucose: {GLUCOSE_MOLAR_MASS} g/mol)",
                from.code(),
                to.code()
            ),
            ConvertError::BadMolarMass(m) => write!(f, "molar mass must be a positive number of g/mol, not {m}"),
        }
    }
}

pub fn parse_unit(code: &str) -> Result<Unit, ConvertError> {
    Unit::parse(code).ok_or_else(|| ConvertError::UnknownUnit(code.to_string()))
}

/// Convert `value` from one unit to another. `molar_mass` (g/mol) is only used, and only
/// required, between mass and substance concentration.
pub fn convert(value: f64, from: Unit, to: Unit, molar_mass: Option<f64>) -> Result<f64, ConvertError> {
    if from == to {
        return Ok(value); // untouched: no rounding noise for values already in the right unit
    }
    let (from_dim, from_factor, from_offset) = from.scale();
    let (to_dim, to_factor, to_offset) = to.scale();
    let mut base = (value + from_offset) * from_factor;
    if from_dim != to_dim {
        use Dimension::{MassConcentration as Mass, SubstanceConcentration as Substance};
        let molar = match (from_dim, to_dim) {
            (Mass, Substance) | (Substance, Mass) => molar_mass.ok_or(ConvertError::NeedsMolarMass { from, to })?,
            _ => return Err(ConvertError::Incompatible { from, to }),
        };
        if !(molar.is_finite() && molar > 0.0) {
            return Err(ConvertError::BadMolarMass(molar));
        }
        // g/L ÷ g/mol = mol/L, and back.
        base = if from_dim == Mass { base / molar } else { base * molar };
    }
    let scaled = base / to_factor;
    let result = scaled - to_offset;
    // Noise is relative to the largest term of the computation, not to the result: 32 [degF]
    // passes through 273.15 K and comes back as 5.7e-14 Cel, which is 0 at that precision.
    Ok(tidy_at(result, scaled.abs().max(result.abs())))
}

/// Round to 12 significant digits: removes binary floating-point noise from a conversion
/// (98.6 [degF] → 37, not 36.99999999999999) while staying far below any instrument's
/// precision. Non-finite values and zero pass through.
#[cfg(test)]
pub fn tidy(x: f64) -> f64 {
    tidy_at(x, x.abs())
}

/// Round `x` to 12 significant digits of `reference` (a magnitude ≥ |x|).
fn tidy_at(x: f64, reference: f64) -> f64 {
    if !x.is_finite() || !reference.is_finite() || reference == 0.0 {
        return x;
    }
    let magnitude = reference.log10().floor() as i32;
    let digits = 11 - magnitude;
    if !(-300..=300).contains(&digits) {
        return x;
    }
    // Dividing by a power of ten that is exactly representable keeps the result the closest
    // double to the rounded decimal.
    if digits >= 0 {
        let m = 10f64.powi(digits);
        (x * m).round() / m
    } else {
        let m = 10f64.powi(-digits);
        (x / m).round() * m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(v: f64, from: &str, to: &str) -> f64 {
        convert(v, parse_unit(from).unwrap(), parse_unit(to).unwrap(), None).unwrap()
    }

    #[test]
    fn every_code_round_trips() {
        for u in ALL_UNITS {
            assert_eq!(Unit::parse(u.code()), Some(u), "{}", u.code());
        }
    }

    #[test]
    fn codes_are_case_sensitive_and_exact() {
        for bad in ["cel", "CEL", "degF", "KG", "bpm", "mmHg", "mg/dl", "MMOL/L", " kg", "kg ", ""] {
            assert_eq!(Unit::parse(bad), None, "{bad:?}");
        }
        assert!(matches!(parse_unit("bpm"), Err(ConvertError::UnknownUnit(u)) if u == "bpm"));
    }

    #[test]
    fn temperature_offsets() {
        assert_eq!(conv(98.6, "[degF]", "Cel"), 37.0);
        assert_eq!(conv(32.0, "[degF]", "Cel"), 0.0);
        assert_eq!(conv(212.0, "[degF]", "Cel"), 100.0);
        assert_eq!(conv(-40.0, "[degF]", "Cel"), -40.0);
        assert_eq!(conv(37.0, "Cel", "[degF]"), 98.6);
        assert_eq!(conv(0.0, "Cel", "[degF]"), 32.0);
        // A difference of 1 degF is 5/9 Cel, but an absolute 1 degF is -17.2 Cel.
        assert_eq!(conv(1.0, "[degF]", "Cel"), -17.222222222);
    }

    #[test]
    fn glucose_via_molar_mass() {
        let mg = parse_unit("mg/dL").unwrap();
        let mmol = parse_unit("mmol/L").unwrap();
        let to_mmol = convert(100.0, mg, mmol, Some(GLUCOSE_MOLAR_MASS)).unwrap();
        assert!((to_mmol - 5.5506).abs() < 1e-4, "{to_mmol}");
        assert_eq!(convert(5.5, mmol, mg, Some(GLUCOSE_MOLAR_MASS)).unwrap(), 99.088);
        assert_eq!(convert(1.0, mmol, mg, Some(GLUCOSE_MOLAR_MASS)).unwrap(), 18.016);
        // And back again.
        let back = convert(to_mmol, mmol, mg, Some(GLUCOSE_MOLAR_MASS)).unwrap();
        assert!((back - 100.0).abs() < 1e-9);
    }

    #[test]
    fn concentration_refuses_without_molar_mass() {
        let mg = parse_unit("mg/dL").unwrap();
        let mmol = parse_unit("mmol/L").unwrap();
        assert_eq!(convert(100.0, mg, mmol, None), Err(ConvertError::NeedsMolarMass { from: mg, to: mmol }));
        assert_eq!(convert(100.0, mg, mmol, Some(0.0)), Err(ConvertError::BadMolarMass(0.0)));
        assert!(matches!(convert(100.0, mg, mmol, Some(f64::NAN)), Err(ConvertError::BadMolarMass(_))));
        // A molar mass is ignored where it is not needed.
        assert_eq!(convert(1.0, Unit::Kilogram, Unit::Gram, Some(180.16)).unwrap(), 1000.0);
    }

    #[test]
    fn mass() {
        assert_eq!(conv(1.0, "[lb_av]", "kg"), 0.45359237);
        assert_eq!(conv(154.0, "[lb_av]", "kg"), 69.85322498);
        assert_eq!(conv(70.0, "kg", "[lb_av]"), 154.323583529);
        assert_eq!(conv(70500.0, "g", "kg"), 70.5);
        assert_eq!(conv(1.0, "kg", "g"), 1000.0);
    }

    #[test]
    fn length() {
        assert_eq!(conv(70.0, "[in_i]", "cm"), 177.8);
        assert_eq!(conv(1.0, "[in_i]", "cm"), 2.54);
        assert_eq!(conv(177.8, "cm", "[in_i]"), 70.0);
        assert_eq!(conv(1.82, "m", "cm"), 182.0);
        assert_eq!(conv(1.0, "[mi_i]", "km"), 1.609344);
        assert_eq!(conv(26.2, "[mi_i]", "m"), 42164.8128);
        assert_eq!(conv(42.195, "km", "m"), 42195.0);
        assert_eq!(conv(1.609344, "km", "[mi_i]"), 1.0);
    }

    #[test]
    fn energy() {
        assert_eq!(conv(1.0, "kcal", "kJ"), 4.184);
        assert_eq!(conv(418.4, "kJ", "kcal"), 100.0);
        assert_eq!(conv(2000.0, "kJ", "kcal"), 478.011472275);
    }

    #[test]
    fn platform_units() {
        assert_eq!(conv(1.2, "/s", "/min"), 72.0);
        assert_eq!(conv(1.116_666_666_666_7, "/s", "/min"), 67.0);
        assert_eq!(conv(16.0, "[oz_av]", "[lb_av]"), 1.0);
        assert_eq!(conv(11.0, "[stone_av]", "kg"), 69.85322498);
        assert_eq!(conv(6.0, "[ft_i]", "cm"), 182.88);
        assert_eq!(conv(1.0, "[ft_i]", "[in_i]"), 12.0);
        assert_eq!(conv(1000.0, "cal", "kcal"), 1.0);
        assert_eq!(conv(250.0, "kcal", "kJ"), 1046.0);
        assert!(convert(1.0, Unit::Flights, Unit::Steps, None).is_err(), "flights are not steps");
        assert!(convert(45.0, Unit::MillilitrePerMinutePerKilogram, Unit::PerMinute, None).is_err());
    }

    #[test]
    fn time() {
        assert_eq!(conv(1.5, "h", "min"), 90.0);
        assert_eq!(conv(450.0, "min", "h"), 7.5);
        assert_eq!(conv(27000.0, "s", "h"), 7.5);
        assert_eq!(conv(0.045, "s", "ms"), 45.0);
        assert_eq!(conv(45.0, "ms", "s"), 0.045);
        assert_eq!(conv(1.0, "h", "s"), 3600.0);
    }

    #[test]
    fn fraction_and_percent() {
        assert_eq!(conv(0.97, "1", "%"), 97.0);
        assert_eq!(conv(97.0, "%", "1"), 0.97);
    }

    #[test]
    fn incompatible_units_refused() {
        for (a, b) in [
            ("kg", "cm"),
            ("Cel", "kg"),
            ("/min", "min"), // a rate is not a duration
            ("{steps}", "1"),
            ("{steps}", "%"),
            ("mm[Hg]", "kg/m2"),
            ("kcal", "h"),
            ("mg/dL", "kg"),
            ("mmol/L", "%"),
        ] {
            let (a, b) = (parse_unit(a).unwrap(), parse_unit(b).unwrap());
            assert_eq!(
                convert(1.0, a, b, Some(GLUCOSE_MOLAR_MASS)),
                Err(ConvertError::Incompatible { from: a, to: b })
            );
        }
        let msg = convert(1.0, Unit::Kilogram, Unit::Centimetre, None).unwrap_err().to_string();
        assert_eq!(msg, "cannot convert kg (mass) to cm (length)");
    }

    #[test]
    fn same_unit_is_identity_even_for_odd_values() {
        assert_eq!(conv(0.1 + 0.2, "kg", "kg"), 0.1 + 0.2);
        assert!(convert(f64::NAN, Unit::Kilogram, Unit::Kilogram, None).unwrap().is_nan());
    }

    #[test]
    fn tidy_rounds_to_twelve_digits() {
        assert_eq!(tidy(36.99999999999999), 37.0);
        assert_eq!(tidy(0.30000000000000004), 0.3);
        assert_eq!(tidy(1.0e-9 + 1.0e-25), 1.0e-9);
        assert_eq!(tidy(123456789012345.0), 123456789012000.0);
        assert_eq!(tidy(-17.222_222_222_222_22), -17.2222222222);
        assert_eq!(tidy(0.0), 0.0);
        assert!(tidy(f64::INFINITY).is_infinite());
    }
}

/// Property tests: the unit parser and converter never panic, and conversions round-trip.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsing_any_text_never_panics(code in ".{0,40}") {
            let _ = Unit::parse(&code);
            let _ = parse_unit(&code);
        }

        #[test]
        fn converting_any_value_never_panics(v in proptest::num::f64::ANY, a in 0usize..ALL_UNITS.len(), b in 0usize..ALL_UNITS.len(),
                                             mm in proptest::option::of(proptest::num::f64::ANY)) {
            let _ = convert(v, ALL_UNITS[a], ALL_UNITS[b], mm);
        }

        #[test]
        fn compatible_conversions_round_trip(v in -1.0e6f64..1.0e6, a in 0usize..ALL_UNITS.len(), b in 0usize..ALL_UNITS.len()) {
            if let Ok(there) = convert(v, ALL_UNITS[a], ALL_UNITS[b], Some(180.16)) {
                let back = convert(there, ALL_UNITS[b], ALL_UNITS[a], Some(180.16)).expect("the way back exists");
                prop_assert!((back - v).abs() <= 1e-6 * v.abs().max(1.0), "{v} -> {there} -> {back}");
            }
        }
    }
}
