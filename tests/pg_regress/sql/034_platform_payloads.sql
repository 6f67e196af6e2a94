-- health.ingest with payloads as HealthKit and Health Connect send them (docs/ingest.md):
-- platform names and units, Apple's date form, intervals, sync versions, deletions, blood-pressure
-- pairs, sleep categories, and malformed elements — as the API role, under RLS.
begin;
\i fixtures/setup.sql
set local timezone = 'UTC';
select health.create_metric_table('public.health_metrics');
set local role api_user;
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;

-- Names and units as the platforms write them, converted to the kind's canonical unit.
\set batch '[{"kind": "HKQuantityTypeIdentifierHeartRate", "value": 61, "unit": "count/min", "start": "2021-11-30 07:47:59 +0200", "end": "2021-11-30 07:47:59 +0200", "source": "Apple Watch"}, {"kind": "HKQuantityTypeIdentifierHeartRate", "value": 1.2, "unit": "count/s", "start": "2015-09-09 04:57:34 +0100"}, {"kind": "HKQuantityTypeIdentifierOxygenSaturation", "value": 0.97, "unit": "%", "start": "2021-11-30 07:50:00 +0200"}, {"kind": "HKQuantityTypeIdentifierActiveEnergyBurned", "value": 250, "unit": "Cal", "start": "2021-11-30 07:00:00 +0200", "end": "2021-11-30 08:00:00 +0200"}, {"kind": "HKQuantityTypeIdentifierBasalEnergyBurned", "value": 418.4, "unit": "kJ", "start": "2021-11-30 07:00:00 +0200", "end": "2021-11-30 08:00:00 +0200"}, {"kind": "HKQuantityTypeIdentifierHeight", "value": 6, "unit": "ft", "start": "2021-11-30 09:00:00 +0200"}, {"kind": "HKQuantityTypeIdentifierBodyMass", "value": 154, "unit": "lb", "start": "2021-11-30 09:00:00 +0200"}, {"kind": "HKQuantityTypeIdentifierBloodGlucose", "value": 100, "unit": "mg/dL", "start": "2021-11-30 09:10:00 +0200"}, {"kind": "HKQuantityTypeIdentifierBloodGlucose", "value": 5.5, "unit": "mmol<180.15588000005408>/L", "start": "2021-11-30 09:20:00 +0200"}, {"kind": "HKQuantityTypeIdentifierStepCount", "value": 611, "unit": "count", "start": "2021-11-30 07:00:00 +0200", "end": "2021-11-30 07:10:00 +0200", "source": "Jonathan’s iPhone"}, {"kind": "HKQuantityTypeIdentifierBodyFatPercentage", "value": 0.242, "unit": "%", "start": "2021-01-08 08:00:00 +0100"}, {"kind": "HKQuantityTypeIdentifierVO2Max", "value": 42.39, "unit": "mL/min·kg", "start": "2021-03-11 10:00:00 +0100"}, {"kind": "HKCategoryTypeIdentifierSleepAnalysis", "value": "HKCategoryValueSleepAnalysisAsleep", "start": "2021-01-01 00:00:00 +0200", "end": "2021-01-01 07:30:00 +0200"}, {"kind": "HeartRateRecord", "value": 64, "unit": "beatsPerMinute", "recorded_at": "2026-11-24T08:00:00Z"}, {"kind": "WeightRecord", "value": 70.5, "unit": "kilograms", "recorded_at": "2026-11-24T08:00:00Z", "tz_offset": -300}, {"kind": "heart_rate", "value": 70, "unit": "bpm", "recorded_at": "2026-11-24T08:01:00Z"}]'
select ord, status, error from health.ingest('health_metrics', :'batch') order by ord;
select kind, value, unit, recorded_at, ended_at, tz_offset, source, source = E'Apple\u00a0Watch' as nbsp_kept
  from health_metrics order by recorded_at, kind;

-- Sync versions: a higher version replaces the stored sample (updated), the same or a lower one
-- is a duplicate; the replaced sample keeps its id.
select status, id as synced_id from health.ingest('health_metrics',
  '[{"kind": "HKQuantityTypeIdentifierStepCount", "value": 100, "unit": "count", "start": "2026-11-24 08:00:00 +0100", "end": "2026-11-24 08:05:00 +0100", "source": "phone", "sync_id": "S-1", "sync_version": 1}]') \gset
select :'status' as first_version;
select status, id = :synced_id as same_row from health.ingest('health_metrics',
  '[{"kind": "HKQuantityTypeIdentifierStepCount", "value": 100, "unit": "count", "start": "2026-11-24 08:00:00 +0100", "end": "2026-11-24 08:05:00 +0100", "source": "phone", "sync_id": "S-1", "sync_version": 1}]');
select status, id = :synced_id as same_row from health.ingest('health_metrics',
  '[{"kind": "HKQuantityTypeIdentifierStepCount", "value": 140, "unit": "count", "start": "2026-11-24 08:00:00 +0100", "end": "2026-11-24 08:06:00 +0100", "source": "phone", "sync_id": "S-1", "sync_version": 2}]');
select status, id = :synced_id as same_row from health.ingest('health_metrics',
  '[{"kind": "HKQuantityTypeIdentifierStepCount", "value": 90, "unit": "count", "start": "2026-11-24 08:00:00 +0100", "end": "2026-11-24 08:05:00 +0100", "source": "phone", "sync_id": "S-1", "sync_version": 1}]');
select value, ended_at, sync_version from health_metrics where id = :synced_id;

-- Blood-pressure pairs: one element, two rows sharing a correlation id; half a pair is refused
-- and nothing of it stored.
select ord, status, error from health.ingest('health_metrics', '[
  {"correlation": "HKCorrelationTypeIdentifierBloodPressure", "start": "2021-11-30 08:00:00 +0200", "systolic": {"value": 120, "unit": "mmHg"}, "diastolic": {"value": 80, "unit": "mmHg"}, "source": "cuff", "sync_id": "BP-1", "sync_version": 1},
  {"kind": "BloodPressureRecord", "systolic": 118, "diastolic": 79, "unit": "millimetersOfMercury", "recorded_at": "2026-11-24T08:30:00Z"},
  {"correlation": "HKCorrelationTypeIdentifierBloodPressure", "start": "2021-11-30 09:00:00 +0200", "systolic": {"value": 130, "unit": "mmHg"}},
  {"kind": "BloodPressureRecord", "systolic": 118, "diastolic": 900, "unit": "millimetersOfMercury", "recorded_at": "2026-11-24T09:30:00Z"}]') order by ord;
select kind, value, source, sync_id, count(*) over (partition by correlation_id) as rows_in_pair
  from health_metrics where kind like 'blood_pressure%' order by recorded_at, kind;

-- Deletions: by sync id (a pair's two rows together) and by id; an unknown key is refused,
-- nothing else touched.
select count(*) as rows_before from health_metrics \gset
select ord, status, error from health.ingest('health_metrics', format('[
  {"deleted": true, "sync_id": "BP-1"},
  {"deleted": true, "id": %s},
  {"deleted": true, "sync_id": "never-synced"}]', :synced_id)::jsonb) order by ord;
select :rows_before - count(*) as rows_deleted, count(*) filter (where kind like 'blood_pressure%') as pressure_rows_left
  from health_metrics;

-- Bob cannot delete alice's sample: his deletion finds nothing of his, and her row stays.
select id as alices_row from health_metrics where kind = 'vo2_max' \gset
select auth.authenticate(:'bob') is not null as bob;
select status, regexp_replace(error, 'id \d+', 'id <alice''s row>') as error
  from health.ingest('health_metrics', format('[{"deleted": true, "id": %s}]', :alices_row)::jsonb);
select auth.authenticate(:'alice') is not null as alice;
select count(*) as alices_row_still_there from health_metrics where id = :alices_row;

-- Malformed elements: one rejected row each, with the reason, kept in health.rejected_samples;
-- the batch goes on (the valid last element is stored).
select ord, status, error from health.ingest('health_metrics', jsonb_build_array(
  '{"kind": "HKQuantityTypeIdentifierHeartRate", "value": "seventy", "unit": "count/min", "start": "2021-11-30 07:47:59 +0200"}'::jsonb,
  '{"kind": "HKQuantityTypeIdentifierHeartRate", "value": 70, "start": "2021-11-30 07:47:59 +0200"}'::jsonb,
  '{"kind": "HKQuantityTypeIdentifierDietaryFiber", "value": 3, "unit": "g", "start": "2021-11-30 07:47:59 +0200"}'::jsonb,
  '{"kind": "HKQuantityTypeIdentifierStepCount", "value": 10, "unit": "count", "start": "2021-11-30 08:00:00 +0200", "end": "2021-11-30 07:00:00 +0200"}'::jsonb,
  '{"kind": "HKQuantityTypeIdentifierHeartRate", "value": 70, "unit": "furlongs", "start": "2021-11-30 07:47:59 +0200"}'::jsonb,
  '{"kind": "HKQuantityTypeIdentifierBloodGlucose", "value": 3000, "unit": "mg/dL", "start": "2021-11-30 07:47:59 +0200"}'::jsonb,
  jsonb_build_object('kind', 'heart_rate', 'value', 70, 'unit', '/min', 'recorded_at', '2026-11-24T10:00:00Z', 'source', repeat('x', 10 * 1024 * 1024)),
  '{"kind": "HKQuantityTypeIdentifierHeartRate", "value": 66, "unit": "count/min", "start": "2021-12-01 07:47:59 +0200"}'::jsonb)) order by ord;
select count(*) as kept_in_rejected_samples from health.rejected_samples where target_table = 'public.health_metrics';

-- A DBA adds a spelling (as superuser); it applies at once, in this transaction.
reset role;
insert into health.unit_aliases (alias, platform, unit) values ('beats per minute', 'any', '/min');
set local role authenticated;
select status, error from health.ingest('health_metrics', '[{"kind": "heart_rate", "value": 58, "unit": "beats per minute", "recorded_at": "2026-11-24T11:00:00Z"}]');
-- and health.normalize speaks the platforms' words too.
select health.normalize('HKQuantityTypeIdentifierOxygenSaturation', 0.97, '%') as hk_spo2,
       health.normalize('oxygen_saturation', 97, '%') as our_spo2,
       health.normalize('HKQuantityTypeIdentifierBodyMass', 11, 'st') as eleven_stone_kg;
rollback;
