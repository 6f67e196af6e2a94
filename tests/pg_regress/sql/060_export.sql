-- Standard data out and the owner's rights: FHIR R4 Observations, export_my_data and
-- erase_my_data, as the API role. (The Bundles' validity against FHIR R4 is checked by an
-- independent validator in tests/fhir_export.rs.)
begin;
\i fixtures/setup.sql
set local timezone = 'UTC';
select health.create_metric_table('public.health_metrics');
-- ada has an account (so her export has one, and erasing deletes it); bob is the fixture's.
select auth.sign_up('ada@example.com', 'analytical engine') as ada_id \gset
select auth.start_session('ada@example.com', 'analytical engine')->>'access_token' as ada \gset
set local role api_user;
set local role authenticated;
select pg_temp.try($$select health.fhir_observations()$$) as unauthenticated;
select auth.authenticate(:'ada') = :'ada_id' as ada;
-- An empty export is a valid empty collection (FHIR JSON has no empty arrays: no entry at all).
select health.fhir_observations() - 'timestamp' as empty_bundle;
select count(*) as written from health.ingest('health_metrics', '[
  {"kind": "HKQuantityTypeIdentifierHeartRate", "value": 61, "unit": "count/min", "start": "2021-11-30 07:47:59 +0200", "source": "Apple Watch"},
  {"kind": "HKQuantityTypeIdentifierStepCount", "value": 611, "unit": "count", "start": "2021-11-30 07:00:00 +0200", "end": "2021-11-30 07:10:00 +0200"},
  {"correlation": "HKCorrelationTypeIdentifierBloodPressure", "start": "2021-11-30 08:00:00 +0200", "systolic": {"value": 120, "unit": "mmHg"}, "diastolic": {"value": 80, "unit": "mmHg"}},
  {"kind": "HKQuantityTypeIdentifierVO2Max", "value": 42.39, "unit": "mL/min·kg", "start": "2021-03-11 10:00:00 +0100"},
  {"kind": "heart_rate", "value": 400, "unit": "/min", "recorded_at": "2021-11-30T09:00:00Z"}]') where status <> 'rejected';
select health.fhir_observations() as b \gset
select (:'b'::jsonb)->>'resourceType' as resource, (:'b'::jsonb)->>'type' as type, jsonb_array_length((:'b'::jsonb)->'entry') as entries;
-- One Observation per sample; the blood-pressure pair is ONE panel 85354-9 with two components.
select e->'resource'->'code'->'coding'->0->>'code' as code, e->'resource'->'code'->>'text' as text,
       e->'resource'->'category'->0->'coding'->0->>'code' as category,
       e->'resource'->'valueQuantity'->>'value' as value, e->'resource'->'valueQuantity'->>'code' as ucum,
       coalesce(e->'resource'->>'effectiveDateTime', (e->'resource'->'effectivePeriod')::text) as effective,
       (select string_agg(c->'code'->'coding'->0->>'code' || '=' || (c->'valueQuantity'->>'value'), ', ') from jsonb_array_elements(e->'resource'->'component') c) as components,
       e->'resource'->'device'->>'display' as device
  from jsonb_array_elements((:'b'::jsonb)->'entry') e order by effective;
select distinct (e->'resource'->'subject'->>'reference') = 'Patient/' || :'ada_id' as subject_is_ada
  from jsonb_array_elements((:'b'::jsonb)->'entry') e;
-- A kind without a LOINC code is coded in the extension's own code system, still valid FHIR.
select e->'resource'->'code'->'coding'->0->>'system' as vo2_max_system
  from jsonb_array_elements((:'b'::jsonb)->'entry') e where e->'resource'->'code'->>'text' = 'VO2 max';
-- Filters, the NDJSON form, and bad arguments.
select jsonb_array_length(health.fhir_observations(kinds => '{heart_rate}')->'entry') as heart_rate_only,
       jsonb_array_length(health.fhir_observations('2021-11-30T05:30:00Z', '2021-11-30T05:50:00Z')->'entry') as in_window,
       (select count(*) from health.fhir_observations_ndjson()) as ndjson_rows;
select pg_temp.try($$select health.fhir_observations('2026-01-02', '2026-01-01')$$) as from_after_until;

-- export_my_data: everything about ada, never a password hash; nothing of bob's.
select jsonb_object_keys(health.export_my_data()) as member order by 1;
select health.export_my_data()->'account'->>'email' as account_email,
       health.export_my_data()::text like '%argon2%' as has_password_hash,
       jsonb_array_length(health.export_my_data()->'rejected_samples') as rejected_samples,
       jsonb_array_length(health.export_my_data()->'samples'->'entry') as observations;

-- bob's data, to check erasure leaves it alone.
select auth.authenticate(:'bob') is not null as bob;
select count(*) as bobs_rows from health.ingest('health_metrics', '[{"kind": "heart_rate", "value": 70, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z"}, {"kind": "heart_rate", "value": 500, "unit": "/min", "recorded_at": "2026-11-24T08:01:00Z"}]');
select auth.authenticate(:'ada') = :'ada_id' as ada;
-- Erasure needs the account's email as confirmation; a wrong one deletes nothing.
select pg_temp.try($$select health.erase_my_data('someone@example.com')$$) as wrong_confirmation;
select pg_temp.try($$select health.erase_my_data(null)$$) as no_confirmation;
select count(*) as ada_rows_still_there from health_metrics;
select e->'deleted' as deleted, e->>'erased_user' = :'ada_id' as erased_ada
  from health.erase_my_data('Ada@Example.com') e;
reset role;
-- As superuser, across every table of the extension and the metric table: nothing of ada's.
select (select count(*) from health_metrics where user_id = :'ada_id') as samples,
       (select count(*) from health.rejected_samples where user_id = :'ada_id') as rejected,
       (select count(*) from auth.users where id = :'ada_id' or lower(email) = 'ada@example.com') as accounts,
       (select count(*) from auth.sessions where user_id = :'ada_id') as sessions,
       (select count(*) from auth.refresh_tokens t join auth.sessions s on s.id = t.session_id where s.user_id = :'ada_id') as refresh_tokens,
       (select count(*) from health_rls.changes where user_id = :'ada_id') as changes,
       (select count(*) from health_rls.change_counters where user_id = :'ada_id') as change_counters;
select (select count(*) from health_metrics where user_id = :'bob_id') as bobs_samples,
       (select count(*) from health.rejected_samples where user_id = :'bob_id') as bobs_rejected;
rollback;
