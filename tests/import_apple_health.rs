//! The Apple Health importer (tools/import-apple-health) against the real extension, with real
//! exports, as a low-privilege login role that is a member of `authenticated` (never a superuser:
//! RLS applies). The licensed exports are in the repository (tests/data/realdata) and always
//! imported; the others are read from $HEALTH_RLS_REALDATA (default ../shared/realdata) where found
//! (common::unlicensed_export).
mod common;

use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

const EMAIL: &str = "importer@example.com";
const PASSWORD: &str = "apple health import";

fn importer() -> String {
    std::env::var("HEALTH_RLS_IMPORTER")
        .expect("HEALTH_RLS_IMPORTER is not set: scripts/integration builds the importer example and sets it")
}

/// The app role's DSN: the cluster of HEALTH_RLS_TEST_DSN, as `importer_app`.
fn app_dsn() -> String {
    dsn().replace("user=postgres", "user=importer_app")
}

async fn set_up() -> tokio_postgres::Client {
    let admin = connect().await;
    prepare(&admin).await;
    admin
        .batch_execute(&format!(
            "SELECT pg_advisory_lock(20261125);
             DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'importer_app') THEN
                 CREATE ROLE importer_app LOGIN NOINHERIT;
               END IF;
             END $$;
             GRANT authenticated TO importer_app;
             DROP TABLE IF EXISTS apple_import;
             SELECT health.create_metric_table('public.apple_import');
             DELETE FROM auth.users WHERE email = '{EMAIL}';
             SELECT auth.sign_up('{EMAIL}', '{PASSWORD}');
             SELECT pg_advisory_unlock(20261125);"
        ))
        .await
        .expect("set-up");
    admin
}

struct Run {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
    summary: Option<Value>,
}

fn import(file: &PathBuf) -> Run {
    let summary = std::env::temp_dir().join(format!(
        "import-{}-{}.json",
        std::process::id(),
        file.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&summary);
    let out = Command::new(importer())
        .args([
            "--dsn",
            &app_dsn(),
            "--table",
            "apple_import",
            "--batch",
            "1000",
            "--email",
            EMAIL,
            "--password",
            PASSWORD,
        ])
        .arg("--json-summary")
        .arg(&summary)
        .arg(file)
        .output()
        .expect("run the importer");
    let summary = std::fs::read(&summary).ok().map(|b| serde_json::from_slice(&b).expect("summary is JSON"));
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        summary,
    }
}

fn total(summary: &Value, column: &str) -> u64 {
    summary["types"]
        .as_object()
        .unwrap()
        .values()
        .filter(|t| t["supported"] == true)
        .map(|t| t[column].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_exports_import_with_every_record_accounted_for() {
    let admin = set_up().await;
    let mut inserted_rows = 0;
    // hkimport (licensed, in the repository) always; the two exports without a stated licence where found.
    let files = [
        Some(licensed_export("hkimport_ashtom_export.xml")),
        unlicensed_export("k0rventen_grafana_test_export.xml"),
        unlicensed_export("bwassim_export_sampled.xml"),
    ];
    for file in files.into_iter().flatten() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let run = import(&file);
        println!("== {name}\n{}", run.stdout);
        assert!(run.status.success(), "{name}: importer failed: {}", run.stderr);
        assert!(!run.stderr.contains("token") || !run.stderr.contains("eyJ"), "no token in the output");
        let s = run.summary.expect("a summary");
        assert_eq!(s["complete"], true, "{name}: every batch went in");
        assert_eq!(
            s["invariant_ok"], true,
            "{name}: inserted + updated + deleted + duplicate + rejected + part-of-correlation = records"
        );
        for (ty, c) in s["types"].as_object().unwrap() {
            if c["supported"] == true {
                let accounted: u64 = ["inserted", "updated", "deleted", "duplicate", "rejected", "part_of_correlation"]
                    .iter()
                    .map(|k| c[*k].as_u64().unwrap())
                    .sum();
                assert_eq!(accounted, c["records"].as_u64().unwrap(), "{name}: {ty} has a record not accounted for");
            }
        }
        assert!(total(&s, "records") > 0, "{name}: supported records were sent");
        // Rejections only for values outside the physiological ranges (junk entered by hand).
        for r in s["reasons"].as_array().unwrap() {
            let reason = r["reason"].as_str().unwrap();
            println!("   rejected {:>5} × {}: {reason}", r["count"], r["type"].as_str().unwrap());
            assert!(
                reason.contains("is outside the accepted range"),
                "{name}: rejected for something else than an implausible value: {reason}"
            );
        }
        inserted_rows += total(&s, "inserted");
    }

    // The table holds exactly the inserted samples, all the importer's user's.
    let stored: i64 = admin
        .query_one(
            "SELECT count(*) FROM apple_import a JOIN auth.users u ON u.id = a.user_id WHERE u.email = $1",
            &[&EMAIL],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored as u64, inserted_rows, "one row per inserted sample");
    let others: i64 = admin
        .query_one(
            "SELECT count(*) FROM apple_import a JOIN auth.users u ON u.id = a.user_id WHERE u.email <> $1",
            &[&EMAIL],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(others, 0);

    // A re-import inserts nothing new: every record is a duplicate or an already-kept reject.
    let again = import(&licensed_export("hkimport_ashtom_export.xml"));
    assert!(again.status.success(), "{}", again.stderr);
    let s = again.summary.unwrap();
    assert_eq!((total(&s, "inserted"), total(&s, "updated")), (0, 0), "a re-import adds nothing");
    let after: i64 = admin.query_one("SELECT count(*) FROM apple_import", &[]).await.unwrap().get(0);
    assert_eq!(after, stored, "no new rows");

    // Another user reads none of them through RLS.
    let other = connect().await;
    other.batch_execute("BEGIN; SET LOCAL ROLE authenticated").await.unwrap();
    other.query_one("SELECT auth.authenticate($1)", &[&token_for(&uuid::Uuid::new_v4())]).await.unwrap();
    let visible: i64 = other.query_one("SELECT count(*) FROM apple_import", &[]).await.unwrap().get(0);
    assert_eq!(visible, 0, "another user sees none of the imported samples");
    other.batch_execute("COMMIT").await.unwrap();
}

/// Apple's Withings bug (rdar://21431305: metadata written as attributes with spaces in their names)
/// put into a licensed export: always run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_export_is_a_clear_error_not_a_crash() {
    let text = std::fs::read_to_string(licensed_export("small_fixtures/tdda_export6s3sample.xml")).unwrap();
    let line = text.lines().position(|l| l.trim_start().starts_with("<Record ")).unwrap() + 1;
    let broken = text.replacen(" value=\"329\"/>", " value=\"329\" Health Mate App Version=\"2.6.2\"/>", 1);
    assert_ne!(broken, text);
    let dir = std::env::temp_dir().join(format!("import-malformed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("export.xml");
    std::fs::write(&file, broken).unwrap();
    let run = import(&file);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(run.status.code(), Some(2), "exit 2 for a file that is not XML: {}", run.stderr);
    assert!(
        run.stderr.contains("not well-formed XML") && run.stderr.contains(&format!(":{line}:")),
        "names the line ({line}): {}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "no panic: {}", run.stderr);
    assert!(run.summary.is_none(), "nothing was imported");
}

/// The real export with that bug (GPL: read where found).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_legacy_export_is_a_clear_error_not_a_crash() {
    let Some(file) = unlicensed_export("legacy_ios8/ericwolter_Exportieren_de_DE_2015_MALFORMED.xml") else { return };
    let run = import(&file);
    assert_eq!(run.status.code(), Some(2), "exit 2 for a file that is not XML: {}", run.stderr);
    assert!(run.stderr.contains("not well-formed XML") && run.stderr.contains(":5:"), "names the line: {}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "no panic: {}", run.stderr);
    assert!(run.summary.is_none(), "nothing was imported");
}
