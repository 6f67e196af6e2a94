//! Tests over real Apple Health exports (see `tests/data/realdata/README.md` for where they come
//! from, and `../shared/realdata/README.md`, where present, for what is odd in them). The exports
//! whose licence lets the repository carry them are in `tests/data/realdata/` and always read; the
//! others (no stated licence, or GPL) are read from `$HEALTH_RLS_REALDATA`, and a test that needs one
//! it cannot find says so and passes.
use crate::element::{Classifier, CorrelationKeys, BLOOD_PRESSURE, DIASTOLIC, SYSTOLIC};
use crate::pipeline::{apply_answers, scan_correlations, Batch, Batcher};
use crate::xml::{line_col, Item, Parser, Record};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::io::BufReader;
use std::path::{Path, PathBuf};

// A licensed export is always read from the repository (a missing one fails); an unlicensed one
// from $HEALTH_RLS_REALDATA, or the test says it skipped (the workspace's test kit).
use health_rls_testkit::{licensed_export as licensed, unlicensed_export as unlicensed};

fn reader(p: &Path) -> BufReader<std::fs::File> {
    BufReader::new(std::fs::File::open(p).unwrap())
}

/// The healthkit identifiers of the seeded `health.metric_kinds` (sql/health_catalog.sql).
fn catalog() -> HashSet<String> {
    [
        "HKQuantityTypeIdentifierHeartRate",
        "HKQuantityTypeIdentifierRestingHeartRate",
        "HKQuantityTypeIdentifierHeartRateVariabilitySDNN",
        "HKQuantityTypeIdentifierStepCount",
        "HKQuantityTypeIdentifierDistanceWalkingRunning",
        "HKQuantityTypeIdentifierActiveEnergyBurned",
        "HKQuantityTypeIdentifierOxygenSaturation",
        "HKQuantityTypeIdentifierRespiratoryRate",
        "HKQuantityTypeIdentifierBodyTemperature",
        "HKQuantityTypeIdentifierBodyMass",
        "HKQuantityTypeIdentifierHeight",
        "HKQuantityTypeIdentifierBodyMassIndex",
        SYSTOLIC,
        DIASTOLIC,
        "HKQuantityTypeIdentifierBloodGlucose",
        "HKCategoryTypeIdentifierSleepAnalysis",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn all_items(input: impl std::io::BufRead) -> Vec<Item> {
    let mut p = Parser::new(input);
    let mut out = Vec::new();
    while let Some(i) = p.next_item().unwrap() {
        out.push(i);
    }
    out
}

#[derive(Debug, Default)]
struct Census {
    top: BTreeMap<String, u64>,
    nested: BTreeMap<String, u64>,
    correlations: BTreeMap<String, u64>,
}

fn census(items: &[Item]) -> Census {
    let mut c = Census::default();
    for i in items {
        match i {
            Item::Record(r) => *c.top.entry(r.kind.clone()).or_default() += 1,
            Item::Correlation(k) => {
                *c.correlations.entry(k.kind.clone()).or_default() += 1;
                for r in &k.children {
                    *c.nested.entry(r.kind.clone()).or_default() += 1;
                }
            }
        }
    }
    c
}

fn expected(table: &[(&str, u64, u64)]) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let top = table.iter().filter(|t| t.1 > 0).map(|t| (t.0.to_string(), t.1)).collect();
    let nested = table.iter().filter(|t| t.2 > 0).map(|t| (t.0.to_string(), t.2)).collect();
    (top, nested)
}

/// Pass 1 + pass 2 with the seeded catalog; every sent element answered `inserted`.
/// Returns the report and every batch that would have been sent.
fn import(input: impl Fn() -> Box<dyn std::io::BufRead>, batch: usize) -> (crate::report::Report, Vec<Batch>) {
    let keys = scan_correlations(input(), |_, _| {}).unwrap();
    let supported = catalog();
    let mut b = Batcher::new(input(), Classifier { supported: &supported, correlations: &keys }, batch);
    let mut batches = Vec::new();
    while let Some(batch) = b.next_batch().unwrap() {
        let answers: Vec<_> = (1..=batch.len() as i32).map(|o| (o, "inserted".to_string(), None)).collect();
        b.apply(&batch, &answers);
        batches.push(batch);
    }
    (b.report, batches)
}

fn import_file(p: &Path, batch: usize) -> (crate::report::Report, Vec<Batch>) {
    let p = p.to_path_buf();
    import(move || Box::new(reader(&p)), batch)
}

fn elements(batches: &[Batch]) -> Vec<&Value> {
    batches.iter().flat_map(|b| b.elements.iter()).collect()
}

#[test]
fn hkimport_counts_match_the_readme() {
    let p = licensed("hkimport_ashtom_export.xml");
    let got = census(&all_items(reader(&p)));
    let (top, nested) = expected(&[
        ("HKQuantityTypeIdentifierStepCount", 3980, 0),
        ("HKQuantityTypeIdentifierDistanceWalkingRunning", 3556, 0),
        ("HKQuantityTypeIdentifierHeartRate", 2177, 0),
        ("HKQuantityTypeIdentifierActiveEnergyBurned", 411, 0),
        ("HKQuantityTypeIdentifierFlightsClimbed", 191, 0),
        ("HKCategoryTypeIdentifierSleepAnalysis", 121, 0),
        ("HKQuantityTypeIdentifierDietaryCarbohydrates", 52, 34),
        ("HKQuantityTypeIdentifierDietaryEnergyConsumed", 51, 34),
        ("HKQuantityTypeIdentifierDietaryFatTotal", 51, 34),
        ("HKQuantityTypeIdentifierDietaryProtein", 51, 34),
        ("HKQuantityTypeIdentifierBodyMass", 40, 0),
        ("HKQuantityTypeIdentifierBloodGlucose", 35, 0),
        ("HKQuantityTypeIdentifierDietaryCalcium", 18, 1),
        ("HKQuantityTypeIdentifierDietaryCholesterol", 18, 1),
        ("HKQuantityTypeIdentifierDietaryFatMonounsaturated", 18, 1),
        ("HKQuantityTypeIdentifierDietaryFatPolyunsaturated", 18, 1),
        ("HKQuantityTypeIdentifierDietaryFatSaturated", 18, 1),
        ("HKQuantityTypeIdentifierDietaryFiber", 18, 1),
        ("HKQuantityTypeIdentifierDietaryIron", 18, 1),
        ("HKQuantityTypeIdentifierDietaryPotassium", 18, 1),
        ("HKQuantityTypeIdentifierDietarySodium", 18, 1),
        ("HKQuantityTypeIdentifierDietarySugar", 18, 1),
        ("HKQuantityTypeIdentifierDietaryVitaminC", 18, 1),
        ("HKCategoryTypeIdentifierMindfulSession", 4, 0),
        ("HKQuantityTypeIdentifierBasalEnergyBurned", 2, 0),
        ("HKQuantityTypeIdentifierDistanceCycling", 2, 0),
        ("HKQuantityTypeIdentifierNikeFuel", 2, 0),
        ("HKQuantityTypeIdentifierDietaryCopper", 1, 1),
        ("HKQuantityTypeIdentifierDietaryFolate", 1, 1),
        ("HKQuantityTypeIdentifierDietaryMagnesium", 1, 1),
        ("HKQuantityTypeIdentifierDietaryManganese", 1, 1),
        ("HKQuantityTypeIdentifierDietaryNiacin", 1, 1),
        ("HKQuantityTypeIdentifierDietaryPhosphorus", 1, 1),
        ("HKQuantityTypeIdentifierDietaryRiboflavin", 1, 1),
        ("HKQuantityTypeIdentifierDietarySelenium", 1, 1),
        ("HKQuantityTypeIdentifierDietaryThiamin", 1, 1),
        ("HKQuantityTypeIdentifierDietaryVitaminA", 1, 1),
        ("HKQuantityTypeIdentifierDietaryVitaminB12", 1, 1),
        ("HKQuantityTypeIdentifierDietaryVitaminB6", 1, 1),
        ("HKQuantityTypeIdentifierDietaryVitaminE", 1, 1),
        ("HKQuantityTypeIdentifierDietaryVitaminK", 1, 1),
        ("HKQuantityTypeIdentifierDietaryZinc", 1, 1),
    ]);
    assert_eq!(got.top, top);
    assert_eq!(got.nested, nested);
    assert_eq!(got.top.values().sum::<u64>(), 10939);
    assert_eq!(got.nested.values().sum::<u64>(), 162);
    assert_eq!(got.correlations, BTreeMap::from([("HKCorrelationTypeIdentifierFood".to_string(), 34)]));
}

#[test]
fn k0rventen_counts_match_the_readme() {
    let Some(p) = unlicensed("k0rventen_grafana_test_export.xml") else { return };
    let got = census(&all_items(reader(&p)));
    let (top, nested) = expected(&[
        ("HKCategoryTypeIdentifierAppleStandHour", 400, 0),
        ("HKCategoryTypeIdentifierSleepAnalysis", 400, 0),
        ("HKQuantityTypeIdentifierActiveEnergyBurned", 400, 0),
        ("HKQuantityTypeIdentifierAppleExerciseTime", 400, 0),
        ("HKQuantityTypeIdentifierAppleStandTime", 400, 0),
        ("HKQuantityTypeIdentifierBasalEnergyBurned", 400, 0),
        ("HKQuantityTypeIdentifierDistanceCycling", 400, 0),
        ("HKQuantityTypeIdentifierDistanceWalkingRunning", 400, 0),
        ("HKQuantityTypeIdentifierFlightsClimbed", 400, 0),
        ("HKQuantityTypeIdentifierHeadphoneAudioExposure", 400, 0),
        ("HKQuantityTypeIdentifierHeartRate", 400, 0),
        ("HKQuantityTypeIdentifierHeartRateVariabilitySDNN", 400, 0),
        ("HKQuantityTypeIdentifierRespiratoryRate", 400, 0),
        ("HKQuantityTypeIdentifierStepCount", 400, 0),
        ("HKQuantityTypeIdentifierWalkingAsymmetryPercentage", 400, 0),
        ("HKQuantityTypeIdentifierWalkingDoubleSupportPercentage", 400, 0),
        ("HKQuantityTypeIdentifierWalkingSpeed", 400, 0),
        ("HKQuantityTypeIdentifierWalkingStepLength", 400, 0),
        ("HKQuantityTypeIdentifierRestingHeartRate", 293, 0),
        ("HKCategoryTypeIdentifierLowHeartRateEvent", 236, 0),
        ("HKQuantityTypeIdentifierWalkingHeartRateAverage", 235, 0),
        ("HKQuantityTypeIdentifierVO2Max", 38, 0),
        ("HKQuantityTypeIdentifierSixMinuteWalkTestDistance", 20, 0),
        ("HKQuantityTypeIdentifierAppleWalkingSteadiness", 8, 0),
        ("HKDataTypeSleepDurationGoal", 3, 0),
        ("HKQuantityTypeIdentifierHeight", 3, 0),
        ("HKCategoryTypeIdentifierHeadphoneAudioExposureEvent", 1, 0),
        ("HKCategoryTypeIdentifierHighHeartRateEvent", 1, 0),
    ]);
    assert_eq!(got.top, top);
    assert_eq!(got.nested, nested);
    assert_eq!(got.top.values().sum::<u64>(), 8038);
    assert!(got.correlations.is_empty());
}

#[test]
fn bwassim_counts_match_the_readme() {
    let Some(p) = unlicensed("bwassim_export_sampled.xml") else { return };
    let got = census(&all_items(reader(&p)));
    let (top, nested) = expected(&[
        ("HKCategoryTypeIdentifierSleepAnalysis", 400, 0),
        ("HKQuantityTypeIdentifierDistanceWalkingRunning", 400, 0),
        ("HKQuantityTypeIdentifierFlightsClimbed", 400, 0),
        ("HKQuantityTypeIdentifierHeadphoneAudioExposure", 400, 0),
        ("HKQuantityTypeIdentifierHeartRate", 400, 0),
        ("HKQuantityTypeIdentifierStepCount", 400, 0),
        ("HKQuantityTypeIdentifierWalkingAsymmetryPercentage", 400, 0),
        ("HKQuantityTypeIdentifierWalkingDoubleSupportPercentage", 400, 0),
        ("HKQuantityTypeIdentifierWalkingSpeed", 400, 0),
        ("HKQuantityTypeIdentifierWalkingStepLength", 400, 0),
        ("HKQuantityTypeIdentifierActiveEnergyBurned", 93, 0),
        ("HKQuantityTypeIdentifierBasalEnergyBurned", 93, 0),
        ("HKQuantityTypeIdentifierBodyFatPercentage", 13, 0),
        ("HKQuantityTypeIdentifierBodyMassIndex", 13, 0),
        ("HKDataTypeSleepDurationGoal", 1, 0),
        ("HKQuantityTypeIdentifierBodyMass", 1, 0),
    ]);
    assert_eq!(got.top, top);
    assert_eq!(got.nested, nested);
    assert_eq!(got.top.values().sum::<u64>(), 4214);
}

#[test]
fn small_fixtures_and_legacy_counts_match_the_readme() {
    // The two licensed fixtures always; the GPL legacy export where it is found.
    // (file, [(record type, top-level records, records inside correlations)])
    type Case<'a> = (Option<PathBuf>, &'a [(&'a str, u64, u64)]);
    let cases: [Case; 3] = [
        (
            unlicensed("legacy_ios8/ericwolter_export_en_DE_2015.xml"),
            &[
                ("HKQuantityTypeIdentifierActiveEnergyBurned", 1171, 0),
                ("HKQuantityTypeIdentifierDistanceWalkingRunning", 534, 0),
                ("HKQuantityTypeIdentifierStepCount", 534, 0),
                ("HKQuantityTypeIdentifierFlightsClimbed", 494, 0),
                ("HKCategoryTypeIdentifierSleepAnalysis", 92, 0),
                ("HKQuantityTypeIdentifierHeartRate", 89, 0),
                ("HKQuantityTypeIdentifierBodyFatPercentage", 76, 0),
                ("HKQuantityTypeIdentifierBodyMass", 76, 0),
                ("HKQuantityTypeIdentifierHeight", 1, 0),
            ],
        ),
        (
            Some(licensed("small_fixtures/opendroid_hk_sampleexport-2.xml")),
            &[
                ("HKQuantityTypeIdentifierBodyMass", 7, 0),
                ("HKQuantityTypeIdentifierWalkingStepLength", 4, 0),
                ("HKQuantityTypeIdentifierStepCount", 3, 0),
                ("HKQuantityTypeIdentifierWalkingDoubleSupportPercentage", 3, 0),
                ("HKQuantityTypeIdentifierWalkingHeartRateAverage", 3, 0),
                ("HKQuantityTypeIdentifierBodyFatPercentage", 2, 0),
                ("HKQuantityTypeIdentifierBodyMassIndex", 2, 0),
                ("HKQuantityTypeIdentifierDistanceWalkingRunning", 2, 0),
                ("HKQuantityTypeIdentifierLeanBodyMass", 2, 0),
                ("HKQuantityTypeIdentifierWalkingAsymmetryPercentage", 2, 0),
                ("HKQuantityTypeIdentifierWalkingSpeed", 2, 0),
                ("HKCategoryTypeIdentifierAppleStandHour", 1, 0),
                ("HKQuantityTypeIdentifierEnvironmentalAudioExposure", 1, 0),
                ("HKQuantityTypeIdentifierHeight", 1, 0),
                ("HKQuantityTypeIdentifierVO2Max", 1, 0),
                ("c", 1, 0),
            ],
        ),
        (
            Some(licensed("small_fixtures/tdda_export6s3sample.xml")),
            &[("HKQuantityTypeIdentifierStepCount", 10, 0), ("HKQuantityTypeIdentifierDistanceWalkingRunning", 5, 0)],
        ),
    ];
    for (p, table) in cases {
        let Some(p) = p else { continue };
        let file = p.display();
        let got = census(&all_items(reader(&p)));
        let (top, nested) = expected(table);
        assert_eq!(got.top, top, "{file}");
        assert_eq!(got.nested, nested, "{file}");
    }
}

/// Every real file: the invariant holds, nothing is sent twice, only supported types are sent.
/// The licensed files always; the others where they are found.
#[test]
fn every_real_file_balances() {
    let supported = catalog();
    let files = [
        Some(licensed("hkimport_ashtom_export.xml")),
        unlicensed("k0rventen_grafana_test_export.xml"),
        unlicensed("bwassim_export_sampled.xml"),
        unlicensed("legacy_ios8/ericwolter_export_en_DE_2015.xml"),
        Some(licensed("small_fixtures/ahcd_freddiefujiwara_bp_correlation.xml")),
        Some(licensed("small_fixtures/opendroid_hk_sampleexport-2.xml")),
        Some(licensed("small_fixtures/tdda_export6s3sample.xml")),
    ];
    for p in files.into_iter().flatten() {
        let file = p.display();
        let (report, batches) = import_file(&p, 1000);
        assert!(report.unbalanced().is_empty(), "{file}: {:?}", report.unbalanced());
        assert!(batches.iter().all(|b| b.len() <= 1000 && b.len() == b.kinds.len()));
        let t = report.totals();
        assert_eq!(t.inserted, report.sent, "{file}");
        assert_eq!(t.inserted + t.part_of_correlation + t.unsupported, t.records, "{file}");
        for e in elements(&batches) {
            let kind = e.get("kind").or_else(|| e.get("correlation")).and_then(Value::as_str).unwrap();
            assert!(supported.contains(kind) || kind == BLOOD_PRESSURE, "{file}: sent {e}");
            assert!(e.get("start").is_some() && e.get("end").is_some(), "{file}: {e}");
        }
        for (kind, c) in &report.types {
            assert_eq!(c.supported(), supported.contains(kind) || kind == BLOOD_PRESSURE, "{file}: {kind}");
        }
        let text = report.render();
        assert!(text.contains("supported types: OK"), "{file}: {text}");
    }
}

/// Batch size does not change what is sent.
#[test]
fn batch_size_does_not_matter() {
    let p = licensed("small_fixtures/opendroid_hk_sampleexport-2.xml");
    let (_, one) = import_file(&p, 1);
    let (_, many) = import_file(&p, 1000);
    assert!(one.iter().all(|b| b.len() == 1));
    assert_eq!(elements(&one), elements(&many));
    assert_eq!(many.len(), 1);
}

#[test]
fn hkimport_element_shapes_and_report() {
    let p = licensed("hkimport_ashtom_export.xml");
    let (report, batches) = import_file(&p, 1000);
    let all = elements(&batches);
    // Sent: StepCount 3980 + Distance 3556 + HR 2177 + Active 411 + Sleep 121 + BodyMass 40 + Glucose 35.
    assert_eq!(all.len(), 3980 + 3556 + 2177 + 411 + 121 + 40 + 35);
    assert_eq!(report.sent as usize, all.len());
    assert_eq!(report.batches as usize, all.len().div_ceil(1000));
    let sleep: Vec<_> = all.iter().filter(|e| e["kind"] == json!("HKCategoryTypeIdentifierSleepAnalysis")).collect();
    assert!(sleep.iter().all(|e| e.get("unit").is_none() && e["value"].is_string()));
    assert_eq!(sleep.iter().filter(|e| e["value"] == json!("HKCategoryValueSleepAnalysisAsleep")).count(), 107);
    let glucose: Vec<_> = all.iter().filter(|e| e["kind"] == json!("HKQuantityTypeIdentifierBloodGlucose")).collect();
    assert!(glucose.iter().all(|e| e["unit"] == json!("mg/dL")));
    assert!(glucose.iter().any(|e| e["value"] == json!(666)));
    // The curly apostrophe survives.
    assert!(all.iter().any(|e| e["source"] == json!("Jonathan\u{2019}s iPhone")));
    // Dates as in the file.
    assert!(all
        .iter()
        .all(|e| e["start"].as_str().unwrap().len() == 25 && e["start"].as_str().unwrap().ends_with("+0200")));
    let dietary = &report.types["HKQuantityTypeIdentifierDietaryProtein"];
    assert_eq!((dietary.records, dietary.unsupported), (51, 51));
    assert_eq!(report.types["HKCorrelationTypeIdentifierFood"].unsupported, 34);
    assert_eq!(report.nested.values().sum::<u64>(), 162);
}

/// Apple repeats every Food child at top level; only the top-level copy is counted, once.
#[test]
fn hkimport_food_children_are_not_counted_twice() {
    let p = licensed("hkimport_ashtom_export.xml");
    let items = all_items(reader(&p));
    let top: HashSet<_> = items
        .iter()
        .filter_map(|i| if let Item::Record(r) = i { Some(crate::element::key_of(r)) } else { None })
        .collect();
    let children: Vec<&Record> = items
        .iter()
        .filter_map(|i| if let Item::Correlation(c) = i { Some(&c.children) } else { None })
        .flatten()
        .collect();
    assert_eq!(children.len(), 162);
    assert!(children.iter().all(|r| top.contains(&crate::element::key_of(r))), "every child is repeated at top level");

    // Even if the database supported every dietary type, each sample would go out once.
    let mut supported = catalog();
    supported.extend(children.iter().map(|r| r.kind.clone()));
    let keys = scan_correlations(reader(&p), |_, _| {}).unwrap();
    assert_eq!(keys.count(), 0, "Food correlations are not sent, so their children are not remembered");
    let mut b = Batcher::new(reader(&p), Classifier { supported: &supported, correlations: &keys }, 5000);
    let mut sent: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(batch) = b.next_batch().unwrap() {
        for k in &batch.kinds {
            *sent.entry(k.clone()).or_default() += 1;
        }
    }
    assert_eq!(sent["HKQuantityTypeIdentifierDietaryCarbohydrates"], 52);
    assert_eq!(sent["HKQuantityTypeIdentifierDietaryZinc"], 1);
    assert!(!sent.contains_key("HKCorrelationTypeIdentifierFood"));
    assert_eq!(b.report.types["HKQuantityTypeIdentifierDietaryCarbohydrates"].records, 52);
    assert_eq!(b.report.nested["HKQuantityTypeIdentifierDietaryCarbohydrates"], 34);
}

#[test]
fn ahcd_blood_pressure_is_one_element() {
    let p = licensed("small_fixtures/ahcd_freddiefujiwara_bp_correlation.xml");
    let (report, batches) = import_file(&p, 1000);
    let all = elements(&batches);
    let corr: Vec<_> = all.iter().filter(|e| e.get("correlation").is_some()).collect();
    assert_eq!(corr.len(), 1);
    assert_eq!(
        **corr[0],
        json!({"correlation": BLOOD_PRESSURE, "start": "2020-08-02 19:12:21 +0900", "end": "2020-08-02 19:12:21 +0900",
               "source": "ShinzoAdvisor", "systolic": {"value": 125, "unit": "mmHg"},
               "diastolic": {"value": 74, "unit": "mmHg"}})
    );
    // The six partnerless systolic records stay plain records; this fixture has no top-level repeat.
    let systolic: Vec<_> = all.iter().filter(|e| e["kind"] == json!(SYSTOLIC)).collect();
    assert_eq!(systolic.len(), 6);
    assert!(systolic.iter().all(|e| e["unit"] == json!("mmHg") && e["value"].is_number()));
    let s = &report.types[SYSTOLIC];
    assert_eq!((s.records, s.part_of_correlation, s.inserted), (6, 0, 6));
    assert_eq!(report.types[BLOOD_PRESSURE].records, 1);
    assert!(!report.types.contains_key(DIASTOLIC), "the diastolic exists only inside the correlation");
    assert_eq!(report.nested[DIASTOLIC], 1);
    assert_eq!(all.len(), 1 + 6 + 2 + 1); // correlation, systolic, BMI, heart rate
    let bmi: Vec<_> = all.iter().filter(|e| e["kind"] == json!("HKQuantityTypeIdentifierBodyMassIndex")).collect();
    assert!(bmi.iter().all(|e| e["tz"] == json!("Asia/Tokyo") && e["unit"] == json!("count")));
}

/// The ahcd fixture as Apple's DTD says it should be: the correlation's children repeated at top
/// level. The repeats are recognised and not sent.
#[test]
fn ahcd_with_top_level_repeats() {
    let p = licensed("small_fixtures/ahcd_freddiefujiwara_bp_correlation.xml");
    let text = std::fs::read_to_string(&p).unwrap();
    let children: String = text
        .lines()
        .skip_while(|l| !l.contains("<Correlation "))
        .filter(|l| l.trim_start().starts_with("<Record "))
        .map(|l| format!("{}\n", l.trim_start()))
        .collect();
    assert_eq!(children.lines().count(), 2);
    let repeated = text.replace("</HealthData>", &format!("{children}</HealthData>"));
    let bytes = repeated.into_bytes();
    let (report, batches) = import(move || Box::new(std::io::Cursor::new(bytes.clone())), 4);
    let all = elements(&batches);
    assert_eq!(all.iter().filter(|e| e.get("correlation").is_some()).count(), 1);
    assert_eq!(all.iter().filter(|e| e["kind"] == json!(SYSTOLIC)).count(), 6);
    assert_eq!(all.iter().filter(|e| e["kind"] == json!(DIASTOLIC)).count(), 0);
    let s = &report.types[SYSTOLIC];
    assert_eq!((s.records, s.part_of_correlation, s.inserted), (7, 1, 6));
    let d = &report.types[DIASTOLIC];
    assert_eq!((d.records, d.part_of_correlation, d.inserted), (1, 1, 0));
    assert!(report.unbalanced().is_empty());
    assert!(report.render().contains("1 part of a correlation"));
}

#[test]
fn legacy_export() {
    let Some(p) = unlicensed("legacy_ios8/ericwolter_export_en_DE_2015.xml") else { return };
    let (report, batches) = import_file(&p, 1000);
    let all = elements(&batches);
    let hr: Vec<_> = all.iter().filter(|e| e["kind"] == json!("HKQuantityTypeIdentifierHeartRate")).collect();
    assert_eq!(hr.len(), 89);
    assert_eq!(
        **hr[0],
        json!({"kind": "HKQuantityTypeIdentifierHeartRate", "value": 1.11667, "unit": "count/s",
               "start": "2015-05-31 16:19:00 +0100", "end": "2015-06-01 16:19:00 +0100", "source": "Sleep Cycle"})
    );
    // Every date rewritten to the modern form, every record has its `source=`.
    for e in &all {
        for k in ["start", "end"] {
            let d = e[k].as_str().unwrap();
            assert_eq!(d.len(), 25, "{e}");
            assert_eq!((&d[4..5], &d[10..11], &d[19..20]), ("-", " ", " "), "{e}");
        }
        assert!(e["source"].is_string(), "{e}");
    }
    // Legacy sleep: unit="" is left out, the value is the number 1.
    let sleep: Vec<_> = all.iter().filter(|e| e["kind"] == json!("HKCategoryTypeIdentifierSleepAnalysis")).collect();
    assert_eq!(sleep.len(), 92);
    assert!(sleep.iter().all(|e| e.get("unit").is_none() && e["value"] == json!(1)));
    assert_eq!(report.types["HKQuantityTypeIdentifierFlightsClimbed"].unsupported, 494);
}

#[test]
fn legacy_malformed_file_is_an_error_with_line_and_column() {
    let Some(p) = unlicensed("legacy_ios8/ericwolter_Exportieren_de_DE_2015_MALFORMED.xml") else { return };
    let err = scan_correlations(reader(&p), |_, _| {}).unwrap_err();
    let (line, col) = line_col(reader(&p), err.offset).unwrap();
    assert_eq!(line, 5, "{err:?}");
    // `<Record … endDate="20150718103801+0200" Health Mate…`: the error is at `Mate`, where an `=`
    // should be: column 190 (expat says "line 5, column 189", counting from 0).
    let text = std::fs::read_to_string(&p).unwrap();
    let line5 = text.lines().nth(4).unwrap();
    let at = line5.find(" Health Mate").unwrap() + " Health ".len();
    assert_eq!(&line5[at..at + 4], "Mate");
    assert_eq!(col as usize, at + 1, "{err:?}");
    assert_eq!(col, 190);
    assert!(err.message.contains("<Record>") && err.message.contains('='), "{}", err.message);
    let f = crate::xml_failure(&p, &err, "nothing was imported");
    assert_eq!(f.code, 2);
    assert!(f.message.contains(&format!("{}:5:{col}: not well-formed XML", p.display())), "{}", f.message);
    // Pass 2 stops the same way (no panic) before sending anything.
    let (keys, supported) = (CorrelationKeys::default(), catalog());
    let mut b = Batcher::new(reader(&p), Classifier { supported: &supported, correlations: &keys }, 1);
    let mut sent = 0;
    let err2 = loop {
        match b.next_batch() {
            Ok(Some(_)) => sent += 1,
            Ok(None) => panic!("no error"),
            Err(e) => break e,
        }
    };
    assert_eq!(err2, err);
    assert!(sent <= 1, "the first record (line 4) may come before the error");
}

#[test]
fn junk_type_and_unusual_source_names() {
    let p = licensed("small_fixtures/opendroid_hk_sampleexport-2.xml");
    let (report, batches) = import_file(&p, 1000);
    let all = elements(&batches);
    let c = &report.types["c"];
    assert_eq!((c.records, c.unsupported), (1, 1));
    let sources: HashSet<&str> = all.iter().filter_map(|e| e["source"].as_str()).collect();
    assert!(sources.contains("\u{1F51C}"), "{sources:?}"); // 🔜 on BodyMass
    assert!(sources.contains("DonorOne's Apple Watch"), "{sources:?}");
    // The emoji-named records are of unsupported types here; their JSON is built the same way.
    let items = all_items(reader(&p));
    let emoji = items
        .iter()
        .find_map(|i| match i {
            Item::Record(r) if r.source.as_deref() == Some("🕛🕐🕑🕒") && r.kind != "c" => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(crate::element::record_element(emoji)["source"], json!("🕛🕐🕑🕒"));
    let curly = items
        .iter()
        .find_map(|i| match i {
            Item::Record(r) if r.kind == "HKQuantityTypeIdentifierVO2Max" => Some(r),
            _ => None,
        })
        .unwrap();
    let e = crate::element::record_element(curly);
    // Curly apostrophe and a NO-BREAK SPACE, both real.
    assert_eq!(e["source"], json!("DonorTwo\u{2019}s Apple\u{a0}Watch"));
    assert_eq!(e["unit"], json!("mL/min\u{b7}kg"));
    // Imperial units go out as written.
    let mass: Vec<_> = all.iter().filter(|e| e["kind"] == json!("HKQuantityTypeIdentifierBodyMass")).collect();
    assert_eq!(mass.len(), 7);
    assert!(mass.iter().all(|e| e["unit"] == json!("lb")));
    assert!(all.iter().any(|e| e["unit"] == json!("ft")));
    assert!(all.iter().any(|e| e["unit"] == json!("mi")));
    // Sync metadata of the VO2Max record.
    assert_eq!(e["sync_id"], json!("68D6DC96-9417-41EB-A21F-BAF09376E047"));
    assert_eq!(e["sync_version"], json!(1));
}

/// What the README says about sources and units that only synthetic input shows.
#[test]
fn nbsp_emoji_and_escaped_glucose_unit_survive_into_json() {
    let xml = "<HealthData>\n<Record type=\"HKQuantityTypeIdentifierBloodGlucose\" sourceName=\"Apple\u{a0}Watch \u{1F51C}\" \
               unit=\"mmol&lt;180.1558800000541&gt;/L\" startDate=\"2021-01-22 19:21:01 -0800\" \
               endDate=\"2021-01-22 19:21:01 -0800\" value=\"5.4\"/>\n</HealthData>";
    let bytes = xml.as_bytes().to_vec();
    let (_, batches) = import(move || Box::new(std::io::Cursor::new(bytes.clone())), 10);
    let e = elements(&batches)[0].clone();
    assert_eq!(
        e,
        json!({"kind": "HKQuantityTypeIdentifierBloodGlucose", "value": 5.4, "unit": "mmol<180.1558800000541>/L",
               "start": "2021-01-22 19:21:01 -0800", "end": "2021-01-22 19:21:01 -0800", "source": "Apple\u{a0}Watch 🔜"})
    );
    let text = serde_json::to_string(&e).unwrap();
    assert!(text.contains("Apple\u{a0}Watch 🔜") && text.contains("mmol<180.1558800000541>/L"), "{text}");
}

#[test]
fn k0rventen_sync_metadata_and_kilojoules() {
    let Some(p) = unlicensed("k0rventen_grafana_test_export.xml") else { return };
    let (report, batches) = import_file(&p, 1000);
    let all = elements(&batches);
    let energy: Vec<_> =
        all.iter().filter(|e| e["kind"] == json!("HKQuantityTypeIdentifierActiveEnergyBurned")).collect();
    assert_eq!(energy.len(), 400);
    assert!(energy.iter().all(|e| e["unit"] == json!("kJ")));
    let sleep: HashSet<&str> = all
        .iter()
        .filter(|e| e["kind"] == json!("HKCategoryTypeIdentifierSleepAnalysis"))
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        sleep,
        HashSet::from(["HKCategoryValueSleepAnalysisInBed", "HKCategoryValueSleepAnalysisAsleepUnspecified"])
    );
    assert!(all.iter().any(|e| e["tz"] == json!("Europe/Paris")));
    assert!(all
        .iter()
        .any(|e| e["kind"] == json!("HKQuantityTypeIdentifierHeartRate") && e["value"] == json!(47.8478)));
    // The report must know every supported type in the file.
    for k in ["HKQuantityTypeIdentifierRespiratoryRate", "HKQuantityTypeIdentifierRestingHeartRate"] {
        assert_eq!(report.types[k].inserted, report.types[k].records, "{k}");
    }
    // Sleep, active energy, distance, heart rate, HRV, respiratory rate, steps (400 each),
    // resting heart rate 293, height 3.
    let supported: u64 = report.types.values().filter(|c| c.supported()).map(|c| c.records).sum();
    assert_eq!(supported, 400 * 7 + 293 + 3);
    assert_eq!(all.len() as u64, supported);
}

#[test]
fn answers_are_mapped_by_ord() {
    let batch =
        Batch { kinds: vec!["A".into(), "B".into(), "A".into()], elements: vec![json!({}), json!({}), json!({})] };
    let mut r = crate::report::Report::default();
    for k in &batch.kinds {
        r.item(k, &crate::element::Disposition::Send(json!({})));
    }
    // Out of order, one ord twice, one unknown ord, ord 2 missing.
    let answers = vec![
        (3, "rejected".to_string(), Some("bad".to_string())),
        (1, "duplicate".to_string(), None),
        (1, "inserted".to_string(), None),
        (9, "inserted".to_string(), None),
    ];
    apply_answers(&mut r, &batch, &answers);
    assert_eq!(r.types["A"].duplicate, 1);
    assert_eq!(r.types["A"].rejected, 1);
    assert_eq!(r.types["A"].inserted, 0);
    assert_eq!(r.types["B"].other["(no answer)"], 1);
    assert_eq!(r.unbalanced().len(), 1);
    assert_eq!((r.batches, r.sent), (1, 3));
}
