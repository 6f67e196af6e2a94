-- Health metrics: a wearable batch goes in, a report per sample comes back
SET client_min_messages = warning;
SET timezone = 'UTC';
-- The catalog: canonical UCUM unit and plausible range per kind.
SELECT code, unit, min_value, max_value, loinc FROM health.metric_kinds
 WHERE code IN ('heart_rate', 'body_temperature', 'blood_glucose', 'oxygen_saturation', 'blood_pressure_systolic')
 ORDER BY code;
SELECT health.convert(98.6, '[degF]', 'Cel') AS celsius, health.normalize('blood_glucose', 100, 'mg/dL') AS glucose_mmol_l;
-- One call makes the standard table: validation trigger, duplicate key, owner RLS, realtime.
SELECT health.create_metric_table('public.health_metrics');
SET ROLE anon;
SELECT set_config('demo.ada_token', auth.sign_in('ada@example.com', 'analytical engine'), false) IS NOT NULL AS ada_signed_in;
RESET ROLE;
-- The phone syncs what the watch recorded this morning, as sent: Fahrenheit, mg/dL, a HealthKit
-- SpO2 fraction, a sensor glitch, a typo, a sample from someone else's account, a broken element,
-- and the first sample twice.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT auth.authenticate(current_setting('demo.ada_token')) IS NOT NULL AS ada;
SELECT * FROM health.ingest('health_metrics', $$[
  {"kind": "heart_rate",        "value": 64,   "unit": "/min",    "recorded_at": "2026-11-24T07:00:00Z", "source": "watch"},
  {"kind": "heart_rate",        "value": 71,   "unit": "/min",    "recorded_at": "2026-11-24T07:05:00Z", "source": "watch"},
  {"kind": "body_temperature",  "value": 98.6, "unit": "[degF]",  "recorded_at": "2026-11-24T07:06:00Z", "source": "thermometer"},
  {"kind": "blood_glucose",     "value": 100,  "unit": "mg/dL",   "recorded_at": "2026-11-24T07:10:00Z", "source": "meter"},
  {"kind": "oxygen_saturation", "value": 0.97, "unit": "1",       "recorded_at": "2026-11-24T07:11:00Z", "source": "watch"},
  {"kind": "steps",             "value": 2400, "unit": "{steps}", "recorded_at": "2026-11-24T08:00:00Z", "source": "phone"},
  {"kind": "heart_rate",        "value": 412,  "unit": "/min",    "recorded_at": "2026-11-24T07:15:00Z", "source": "watch"},
  {"kind": "heart_rate",        "value": 70,   "unit": "beats",   "recorded_at": "2026-11-24T07:20:00Z", "source": "watch"},
  {"kind": "heart_rate",        "value": 66,   "unit": "/min",    "recorded_at": "2026-11-24T07:25:00Z", "user_id": "22222222-2222-4222-8222-222222222222"},
  {"kind": "steps",             "value": "lots", "unit": "{steps}", "recorded_at": "2026-11-24T09:00:00Z"},
  {"kind": "heart_rate",        "value": 64,   "unit": "/min",    "recorded_at": "2026-11-24T07:00:00Z", "source": "watch"}
]$$);
-- Stored in canonical units; nothing the device sent is lost.
SELECT kind, value, unit, recorded_at, source FROM health_metrics ORDER BY recorded_at;
SELECT ord, sqlstate, reason FROM health.rejected_samples ORDER BY ord;
COMMIT;
-- The retry after a network timeout sends the same batch again: every sample is a duplicate.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT auth.authenticate(current_setting('demo.ada_token')) IS NOT NULL AS ada;
SELECT status, count(*) FROM health.ingest('health_metrics', $$[
  {"kind": "heart_rate", "value": 64, "unit": "/min", "recorded_at": "2026-11-24T07:00:00Z", "source": "watch"},
  {"kind": "heart_rate", "value": 71, "unit": "/min", "recorded_at": "2026-11-24T07:05:00Z", "source": "watch"}
]$$) GROUP BY status;
-- Plain INSERTs are validated by the same trigger.
INSERT INTO health_metrics (kind, value, unit, recorded_at) VALUES ('body_weight', 154, '[lb_av]', '2026-11-24T07:30:00Z')
RETURNING kind, value, unit;
COMMIT;
