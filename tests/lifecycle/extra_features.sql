-- Health metrics in the source database of the lifecycle suite (run as superuser): a DBA-added
-- kind, the standard table, and one ingest as alice with a stored and a rejected sample.
INSERT INTO health.metric_kinds (code, display, unit, min_value, max_value)
VALUES ('waist_circumference', 'Waist circumference', 'cm', 30, 300);
INSERT INTO health.unit_aliases (alias, platform, unit) VALUES ('inches', 'any', '[in_i]');
SELECT health.create_metric_table('public.health_metrics');
BEGIN;
SET LOCAL ROLE authenticated;
SELECT auth.authenticate('eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiIxMTExMTExMS0xMTExLTQxMTEtODExMS0xMTExMTExMTExMTEiLCJyb2xlIjoiYXV0aGVudGljYXRlZCIsImF1ZCI6ImF1dGhlbnRpY2F0ZWQiLCJlbWFpbCI6ImFsaWNlQGV4YW1wbGUuY29tIiwiZXhwIjo0MTAyNDQ0ODAwfQ.Da4Wn161a_DDXT_4tILZcy9O0UlLe9w2s6Y8dLYbbJM');
SELECT count(*) FROM health.ingest('health_metrics', '[
  {"kind": "waist_circumference", "value": 32, "unit": "[in_i]", "recorded_at": "2026-11-24T08:00:00Z"},
  {"kind": "heart_rate", "value": 500, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z"}]');
COMMIT;
