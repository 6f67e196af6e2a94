-- Standard data out and the owner's rights: a FHIR R4 blood-pressure panel, a copy, an erasure
-- A blood-pressure measurement as HealthKit sends it (one correlation, two samples stored) ...
SELECT auth.sign_up('lovelace@example.com', 'difference engine') IS NOT NULL AS signed_up;
SELECT set_config('demo.lovelace', auth.start_session('lovelace@example.com', 'difference engine')->>'access_token', false) IS NOT NULL AS signed_in;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT auth.authenticate(current_setting('demo.lovelace')) IS NOT NULL AS lovelace;
SELECT ord, status FROM health.ingest('health_metrics', '[
  {"correlation": "HKCorrelationTypeIdentifierBloodPressure", "start": "2026-11-24 08:00:00 +0100",
   "systolic": {"value": 128, "unit": "mmHg"}, "diastolic": {"value": 84, "unit": "mmHg"}, "source": "cuff"},
  {"kind": "HKQuantityTypeIdentifierHeartRate", "value": 64, "unit": "count/min", "start": "2026-11-24 08:00:30 +0100", "source": "cuff"}]');
-- ... comes out as ONE FHIR Observation: panel 85354-9 with the systolic and diastolic components.
SELECT jsonb_pretty((e->'resource') - 'id'::text) AS blood_pressure_observation
  FROM jsonb_array_elements(health.fhir_observations()->'entry') e
 WHERE e->'resource'->'code'->'coding'->0->>'code' = '85354-9';
-- Everything the database holds about her (GDPR Art. 20), in one document.
SELECT jsonb_object_keys(health.export_my_data()) AS export_member;
COMMIT;
-- Erasure (GDPR Art. 17): she confirms with her email; every table is cleaned, others untouched.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT auth.authenticate(current_setting('demo.lovelace')) IS NOT NULL AS lovelace;
SELECT jsonb_pretty(health.erase_my_data('lovelace@example.com')->'deleted') AS deleted;
COMMIT;
SELECT count(*) AS lovelace_accounts_left FROM auth.users WHERE email = 'lovelace@example.com';
SELECT count(DISTINCT user_id) AS other_users_with_samples FROM health_metrics;
