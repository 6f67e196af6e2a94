//! FHIR R4 export validated by an independent implementation: a real Apple Health export is
//! imported (as an app role, through health.ingest: hkimport, in the repository, always; the
//! unlicensed bwassim export too where $HEALTH_RLS_REALDATA has it), exported with health.fhir_observations and
//! health.fhir_observations_ndjson, and every Bundle/Observation is checked with the
//! `fhir.resources` R4 models (tests/fhir/validate.py), which must also reject the broken fixtures.
mod common;

use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

const EMAIL: &str = "fhir@example.com";
const PASSWORD: &str = "fhir export password";

fn validator() -> (String, PathBuf) {
    let python = std::env::var("FHIR_PYTHON")
        .expect("FHIR_PYTHON is not set: run through scripts/integration (scripts/setup installs it)");
    (python, PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fhir/validate.py")))
}

fn validate(args: &[&str]) -> (bool, String) {
    let (python, script) = validator();
    let out = Command::new(python).arg(script).args(args).output().expect("run the validator");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_of_a_real_import_validate_against_fhir_r4() {
    let admin = connect().await;
    prepare(&admin).await;
    admin
        .batch_execute(&format!(
            "SELECT pg_advisory_lock(20261126);
             DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fhir_app') THEN CREATE ROLE fhir_app LOGIN NOINHERIT; END IF;
             END $$;
             GRANT authenticated TO fhir_app;
             DROP TABLE IF EXISTS fhir_import;
             SELECT health.create_metric_table('public.fhir_import');
             DELETE FROM auth.users WHERE email IN ('{EMAIL}', 'empty-fhir@example.com');
             SELECT auth.sign_up('{EMAIL}', '{PASSWORD}');
             SELECT auth.sign_up('empty-fhir@example.com', '{PASSWORD}');
             SELECT pg_advisory_unlock(20261126);"
        ))
        .await
        .unwrap();

    // Real exports through the importer, plus a blood-pressure pair.
    let exports =
        [Some(licensed_export("hkimport_ashtom_export.xml")), unlicensed_export("bwassim_export_sampled.xml")];
    let dsn = dsn().replace("user=postgres", "user=fhir_app");
    for export in exports.into_iter().flatten() {
        let run =
            Command::new(std::env::var("HEALTH_RLS_IMPORTER").expect("HEALTH_RLS_IMPORTER (scripts/integration)"))
                .args(["--dsn", &dsn, "--table", "fhir_import", "--email", EMAIL, "--password", PASSWORD])
                .arg(&export)
                .output()
                .expect("importer");
        assert!(run.status.success(), "{}: {}", export.display(), String::from_utf8_lossy(&run.stderr));
    }

    let app = connect().await;
    let token_of = |email: &str| {
        let email = email.to_string();
        let app = &app;
        async move {
            let s: Value =
                app.query_one("SELECT auth.start_session($1, $2)", &[&email, &PASSWORD]).await.unwrap().get(0);
            s["access_token"].as_str().unwrap().to_string()
        }
    };
    let token = token_of(EMAIL).await;
    app.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    app.query_one("SELECT auth.authenticate($1)", &[&token]).await.unwrap();
    app.query(
        "SELECT * FROM health.ingest('fhir_import', '[{\"correlation\": \"HKCorrelationTypeIdentifierBloodPressure\", \
          \"start\": \"2021-02-01 08:00:00 +0100\", \"systolic\": {\"value\": 128, \"unit\": \"mmHg\"}, \
          \"diastolic\": {\"value\": 84, \"unit\": \"mmHg\"}, \"source\": \"cuff\"}]')",
        &[],
    )
    .await
    .unwrap();
    let bundle: Value = app.query_one("SELECT health.fhir_observations()", &[]).await.unwrap().get(0);
    let ndjson: Vec<Value> = app
        .query("SELECT * FROM health.fhir_observations_ndjson()", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    app.batch_execute("COMMIT").await.unwrap();
    let stored: i64 = admin.query_one("SELECT count(*) FROM fhir_import", &[]).await.unwrap().get(0);
    let entries = bundle["entry"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(entries as i64, stored - 1, "one Observation per sample, the pair's two rows as one panel");
    assert_eq!(ndjson.len(), entries, "the NDJSON form carries the same Observations");
    assert!(
        bundle["entry"].as_array().unwrap().iter().any(|e| e["resource"]["code"]["coding"][0]["code"] == "85354-9"),
        "the blood-pressure panel is there"
    );

    let other = token_of("empty-fhir@example.com").await;
    app.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    app.query_one("SELECT auth.authenticate($1)", &[&other]).await.unwrap();
    let empty: Value = app.query_one("SELECT health.fhir_observations()", &[]).await.unwrap().get(0);
    app.batch_execute("COMMIT").await.unwrap();
    assert!(empty.get("entry").is_none(), "another user's export is empty: {empty}");

    let dir = std::env::temp_dir().join(format!("fhir-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("real-import.json"), bundle.to_string()).unwrap();
    std::fs::write(dir.join("empty.json"), empty.to_string()).unwrap();
    std::fs::write(dir.join("real-import.ndjson"), ndjson.iter().map(Value::to_string).collect::<Vec<_>>().join("\n"))
        .unwrap();
    let (ok, report) = validate(&[dir.to_str().unwrap()]);
    println!("{report}");
    assert!(ok && report.contains("3 passed, 0 failed"), "the FHIR R4 validator refused our export:\n{report}");
    // The validator is not a rubber stamp: every broken fixture is refused.
    let invalid = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fhir/invalid");
    let (ok, report) = validate(&["--expect-invalid", invalid]);
    assert!(ok, "the validator accepted a broken fixture:\n{report}");
    let _ = std::fs::remove_dir_all(&dir);
}
