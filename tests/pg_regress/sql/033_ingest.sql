-- health.ingest: a wearable batch in, one outcome per sample out, as the API role under RLS.
-- Valid, converted, out of range, unknown kind and unit, duplicates (in the batch and already
-- stored), another user's id, malformed elements: none is lost, a re-sent batch adds nothing.
begin;
\i fixtures/setup.sql
set local timezone = 'UTC';
select health.create_metric_table('public.health_metrics');
-- Counts INSERT statements on the table, to show the batch goes in as one statement.
create table insert_statements (n int);
create function count_insert_statement() returns trigger language plpgsql as $fn$
begin
    insert into insert_statements select count(*) from new_rows;
    return null;
end $fn$;
create trigger count_inserts after insert on health_metrics referencing new table as new_rows
    for each statement execute function count_insert_statement();
grant select, insert, delete on insert_statements to authenticated;

set local role api_user;
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;
-- One sample stored before the sync.
insert into health_metrics (kind, value, unit, recorded_at, source)
values ('body_weight', 72.4, 'kg', '2026-11-24T07:00:00Z', 'scale');
select id as stored_before from health_metrics \gset
delete from insert_statements;
\set batch '[{"kind": "heart_rate", "value": 72, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z", "source": "watch"}, {"kind": "heart_rate", "value": 400, "unit": "/min", "recorded_at": "2026-11-24T08:01:00Z", "source": "watch"}, {"kind": "pulse", "value": 72, "unit": "/min", "recorded_at": "2026-11-24T08:02:00Z"}, {"kind": "heart_rate", "value": 72, "unit": "beats", "recorded_at": "2026-11-24T08:03:00Z"}, {"kind": "heart_rate", "value": 73, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z", "source": "watch"}, {"kind": "heart_rate", "value": 70, "unit": "/min", "recorded_at": "2026-11-24T08:04:00Z", "user_id": "22222222-2222-4222-8222-222222222222"}, "not a sample", {"kind": "steps", "unit": "{steps}", "recorded_at": "2026-11-24T08:05:00Z"}, {"kind": "steps", "value": 300, "unit": "{steps}", "recorded_at": "24/11/2026 08:05"}, {"kind": "body_temperature", "value": 98.6, "unit": "[degF]", "recorded_at": "2026-11-24T09:05:00+01:00", "source": "thermometer"}, {"kind": "blood_glucose", "value": 100, "unit": "mg/dL", "recorded_at": "2026-11-24T08:06:00Z"}, {"kind": "oxygen_saturation", "value": 0.97, "unit": "1", "recorded_at": "2026-11-24T08:07:00Z", "source": "watch", "user_id": "11111111-1111-4111-8111-111111111111"}, {"kind": "body_weight", "value": 72.4, "unit": "kg", "recorded_at": "2026-11-24T07:00:00Z", "source": "scale"}, {"kind": "steps", "value": 1200, "unit": "{steps}", "recorded_at": "2026-11-24T08:10:00Z"}, {"kind": "steps", "value": 1200, "unit": "{steps}", "recorded_at": "2026-11-24T08:10:00Z"}]'
create temp table first_run as select * from health.ingest('health_metrics', :'batch');
select ord, status, id is not null as has_id, status = 'duplicate' and id = :stored_before as dup_of_stored_before, error
  from first_run order by ord;
-- One row per element, none lost: every element is in the table or in rejected_samples.
select jsonb_array_length(:'batch') as sent, count(*) as reported,
       count(*) filter (where status = 'inserted') as inserted,
       count(*) filter (where status = 'duplicate') as duplicate,
       count(*) filter (where status = 'rejected') as rejected
  from first_run;
-- The valid rows went in as ONE insert statement (plus the sample stored before).
select n as rows_in_statement from insert_statements;
select kind, value, unit, recorded_at, source from health_metrics order by recorded_at, kind;
-- Duplicates report the id of the row that holds their key.
select f.ord, f.status, f.id = m.id as id_of_stored_row
  from first_run f join health_metrics m on m.id = f.id where f.status = 'duplicate' order by f.ord;
-- Rejected samples are kept as sent, with the reason and SQLSTATE, readable by their owner.
select r.ord, r.sqlstate, r.reason, r.sample = e.value as sample_as_sent, r.target_table, f.id = r.id as id_reported
  from health.rejected_samples r
  join jsonb_array_elements(:'batch') with ordinality as e(value, ord) on e.ord = r.ord
  join first_run f on f.ord = r.ord
 order by r.ord;

-- The same batch again (a sync retried after a timeout): nothing new anywhere.
delete from insert_statements;
create temp table second_run as select * from health.ingest('health_metrics', :'batch');
select s.ord, s.status, s.id is not distinct from f.id as same_id
  from second_run s join first_run f using (ord) order by ord;
select (select count(*) from health_metrics) as metric_rows,
       (select count(*) from health.rejected_samples) as rejected_rows,
       (select coalesce(sum(n), 0) from insert_statements) as rows_inserted;

-- bob sees none of alice's samples, rejected or stored; his own batch is his.
select auth.authenticate(:'bob') is not null as bob;
select count(*) as bob_sees_metrics from health_metrics;
select count(*) as bob_sees_rejected from health.rejected_samples;
select ord, status, id is not null as has_id, error from health.ingest('health_metrics', '[{"kind": "heart_rate", "value": 72, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z", "source": "watch"}, {"kind": "heart_rate", "value": 9, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z"}]') order by ord;
select user_id = :'bob_id' as owned_by_bob, kind, value from health_metrics;
select user_id = :'bob_id' as owned_by_bob, ord, reason from health.rejected_samples;
-- bob cannot slip rows into alice's rejected samples either.
select pg_temp.try(format($$insert into health.rejected_samples (user_id, target_table, ord, sample, reason, sqlstate) values (%L, 'x', 1, '{}', 'r', '22023')$$, :'alice_id'));
select pg_temp.try($$update health.rejected_samples set reason = 'edited'$$);
reset role;
select count(*) filter (where user_id = :'alice_id') as alice_rejected, count(*) filter (where user_id = :'bob_id') as bob_rejected
  from health.rejected_samples;
set local role authenticated;

-- Whole-call errors: no identity (28000), samples not an array (22023); an empty batch is empty.
select pg_temp.try($$select * from health.ingest('health_metrics', '{"kind": "heart_rate"}')$$);
select count(*) as empty_batch from health.ingest('health_metrics', '[]');
rollback;
begin;
\i fixtures/setup.sql
select health.create_metric_table('public.health_metrics');
set local role authenticated;
select pg_temp.try($$select * from health.ingest('health_metrics', '[]')$$);
rollback;

-- A day of samples in one call: 1,440 heart rates and 24 hourly step counts.
begin;
\i fixtures/setup.sql
set local timezone = 'UTC';
select health.create_metric_table('public.health_metrics');
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;
with day as (
    select jsonb_agg(jsonb_build_object('kind', 'heart_rate', 'value', 55 + (m % 60), 'unit', '/min',
                     'recorded_at', to_char((timestamptz '2026-11-24 00:00+00' + m * interval '1 minute') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                     'source', 'watch')) as samples
      from generate_series(0, 1439) m
), steps as (
    select jsonb_agg(jsonb_build_object('kind', 'steps', 'value', 100 * h, 'unit', '{steps}',
                     'recorded_at', to_char((timestamptz '2026-11-24 00:00+00' + h * interval '1 hour') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))) as samples
      from generate_series(0, 23) h
)
select status, count(*) from day, steps, health.ingest('health_metrics', day.samples || steps.samples) group by status;
select kind, count(*), min(recorded_at), max(recorded_at) from health_metrics group by kind order by kind;
-- Batches of new samples go in without ON CONFLICT when nothing stored lies in their time range
-- (the day above was one); every other batch takes the general path, with the same outcomes.
-- The same day again: all duplicate, nothing stored twice.
with day as (
    select jsonb_agg(jsonb_build_object('kind', 'heart_rate', 'value', 55 + (m % 60), 'unit', '/min',
                     'recorded_at', to_char((timestamptz '2026-11-24 00:00+00' + m * interval '1 minute') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                     'source', 'watch')) as samples
      from generate_series(0, 1439) m
)
select status, count(*) from day, health.ingest('health_metrics', day.samples) group by status;
-- 40 new samples between stored ones, one of them a stored sample: 39 inserted, 1 duplicate.
select status, count(*) from health.ingest('health_metrics', (
    select jsonb_agg(jsonb_build_object('kind', 'heart_rate', 'value', 70, 'unit', '/min', 'source', 'watch',
                     'recorded_at', to_char((timestamptz '2026-11-24 10:00:30+00' + m * interval '1 minute' - case when m = 0 then interval '30 seconds' else interval '0' end) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))
      from generate_series(0, 39) m)) group by status order by status;
-- 40 synced samples (Health Connect ids), then the same again: inserted, then duplicate.
create temp table synced as
select jsonb_agg(jsonb_build_object('kind', 'steps', 'value', 10 * m, 'unit', '{steps}', 'source', 'phone',
                 'sync_id', 'hc-' || m, 'sync_version', 1,
                 'recorded_at', to_char((timestamptz '2026-11-26 00:00+00' + m * interval '1 minute') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))) as samples
  from generate_series(0, 39) m;
select status, count(*) from synced, health.ingest('health_metrics', synced.samples) group by status;
select status, count(*) from synced, health.ingest('health_metrics', synced.samples) group by status;
-- A table without realtime (no change-feed lock to order writers by): the general path.
reset role;
select count(*) as triggers_dropped from health_rls.disable_realtime('health_metrics');
set local role authenticated;
create temp table later as
select jsonb_agg(jsonb_build_object('kind', 'heart_rate', 'value', 60, 'unit', '/min', 'source', 'watch',
                 'recorded_at', to_char((timestamptz '2026-11-27 00:00+00' + m * interval '1 minute') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))) as samples
  from generate_series(0, 39) m;
select status, count(*) from later, health.ingest('health_metrics', later.samples) group by status;
select status, count(*) from later, health.ingest('health_metrics', later.samples) group by status;
rollback;
