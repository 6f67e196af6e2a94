-- health.summary reads hourly rollups (health_rls.summary_hours) kept from the change feed at
-- read time: the numbers stay those of the GROUP BY a user would write after every kind of
-- change, only the hours of inserted and deleted rows are recomputed, everything after an update,
-- and nothing is trusted when the feed may have missed a write.
begin;
\i fixtures/setup.sql
set local timezone = 'UTC';
select health.create_metric_table('public.health_metrics');
-- differs(kind, bucket, from, until, tz): buckets where health.summary and the plain GROUP BY over
-- the table (as the current role, through RLS) disagree; averages and sums to 1e-9 relative.
create function pg_temp.differs(k text, b text, f timestamptz, u timestamptz, z text) returns bigint
language sql as $$
  with s as (select * from health.summary(k, b, f, u, z)),
       g as (select date_trunc(b, recorded_at, z) as bucket_start, count(*) as n, min(value) as mn,
                    avg(value) as av, max(value) as mx, sum(value) as sm
               from public.health_metrics
              where kind = k and (f is null or recorded_at >= f) and (u is null or recorded_at < u)
              group by 1)
  select count(*) from s full join g using (bucket_start)
   where s.n is distinct from g.n or s.min is distinct from g.mn or s.max is distinct from g.mx
      or s.avg is null or g.av is null or abs(s.avg - g.av) > 1e-9 * abs(g.av)
      or abs(s.sum - g.sm) > 1e-9 * greatest(abs(g.sm), 1)
$$;
grant execute on function pg_temp.differs(text, text, timestamptz, timestamptz, text) to public;
-- What the rollups hold for alice, read as the superuser.
create function pg_temp.rollups(out hours bigint, out samples numeric, out current boolean)
language sql security definer as $$
  select (select count(*) from health_rls.summary_hours h where h.user_id = '11111111-1111-4111-8111-111111111111' and h.kind = 'heart_rate'),
         (select sum(n) from health_rls.summary_hours h where h.user_id = '11111111-1111-4111-8111-111111111111' and h.kind = 'heart_rate'),
         (select s.through_seq = k.last_seq from health_rls.summary_state s
            join health_rls.change_counters k using (user_id)
           where s.user_id = '11111111-1111-4111-8111-111111111111' and s.kind = 'heart_rate')
$$;
grant execute on function pg_temp.rollups() to public;
-- realtime_triggers('disable' | 'enable'): the table's realtime triggers, all at once.
create function pg_temp.realtime_triggers(verb text) returns void language plpgsql as $$
declare t record;
begin
  for t in select tgname from pg_trigger
            where tgrelid = 'public.health_metrics'::regclass and tgfoid = 'health_rls.realtime_notify()'::regprocedure loop
    execute format('alter table public.health_metrics %s trigger %I', verb, t.tgname);
  end loop;
end $$;
set local role api_user;
set local role authenticated;
select auth.authenticate(:'alice') = :'alice_id' as alice;
-- Five days of 5-minute heart rate (1,440 samples) and a few of bob's, which alice never sees.
insert into health_metrics (kind, value, unit, recorded_at)
select 'heart_rate', 50 + (i * 7) % 90, '/min', timestamptz '2026-03-27 00:00Z' + i * interval '5 minutes'
  from generate_series(0, 1439) i;
select auth.authenticate(:'bob') = :'bob_id' as bob;
insert into health_metrics (kind, value, unit, recorded_at)
select 'heart_rate', 200, '/min', timestamptz '2026-03-28 00:00Z' + i * interval '1 hour' from generate_series(0, 9) i;
select pg_temp.differs('heart_rate', 'day', null, null, 'Europe/Berlin') as bob_differs;
select auth.authenticate(:'alice') = :'alice_id' as alice;
-- The first summary builds the rollups: one row per UTC hour, every sample, current.
select pg_temp.differs('heart_rate', 'day', null, null, 'Europe/Berlin') as differs;
select * from pg_temp.rollups();
select n, max from health.summary('heart_rate', 'day', '2026-03-28', '2026-03-29');
-- Inserts: only the hours of the new rows are recomputed. An untouched hour is altered by hand
-- first; it stays altered (proof that it was not recomputed), while the summary stays right for
-- the hours that were.
reset role;
update health_rls.summary_hours set max = 299 where hour = '2026-03-27 05:00Z';
set local role authenticated;
insert into health_metrics (kind, value, unit, recorded_at) values
  ('heart_rate', 250, '/min', '2026-03-28 10:02Z'),      -- an hour that has samples
  ('heart_rate', 45, '/min', '2026-04-02 08:00Z'),       -- a new hour, a new day
  ('steps', 100, '{steps}', '2026-03-28 10:03Z');        -- another kind: not heart rate's business
select pg_temp.differs('heart_rate', 'day', '2026-03-28', null, 'Europe/Berlin') as differs_after_insert;
select * from pg_temp.rollups();
select max from health.summary('heart_rate', 'day', '2026-03-27', '2026-03-28');
-- A delete: only the hours of the deleted rows (their tombstones name kind and recorded_at) are
-- recomputed; the hand-made 299 stays.
delete from health_metrics where recorded_at >= '2026-03-30 00:00Z' and recorded_at < '2026-03-30 02:00Z';
select pg_temp.differs('heart_rate', 'day', '2026-03-28', null, 'Europe/Berlin') as differs_after_delete;
select * from pg_temp.rollups();
select max from health.summary('heart_rate', 'day', '2026-03-27', '2026-03-28');
-- An update rebuilds everything (the feed names the row's new hour, not the one it left): the
-- hand-made 299 is gone.
update health_metrics set value = 41 where recorded_at = '2026-03-29 12:00Z' and kind = 'heart_rate';
select pg_temp.differs('heart_rate', 'day', null, null, 'Europe/Berlin') as differs_after_update;
select max from health.summary('heart_rate', 'day', '2026-03-27', '2026-03-28');
select * from pg_temp.rollups();
-- Ranges that do not start or end on the hour: the partial hours come from the samples.
select pg_temp.differs('heart_rate', 'hour', '2026-03-28 10:01Z', '2026-03-28 13:43Z', 'UTC') as differs_partial_hours;
select pg_temp.differs('heart_rate', 'day', '2026-03-27 10:17Z', '2026-03-30 08:43Z', 'America/New_York') as differs_partial_days;
select pg_temp.differs('heart_rate', 'hour', '2026-03-28 10:01Z', '2026-03-28 10:59Z', 'UTC') as differs_inside_one_hour;
-- A zone whose offset is not whole hours: UTC hours straddle its days, so the samples are read.
select pg_temp.differs('heart_rate', 'day', null, null, 'Asia/Kolkata') as differs_kolkata;
select pg_temp.differs('heart_rate', 'week', null, null, 'Australia/Adelaide') as differs_adelaide;
-- A read-only transaction cannot bring the rollups up to date: it reads the samples instead.
insert into health_metrics (kind, value, unit, recorded_at) values ('heart_rate', 222, '/min', '2026-03-31 09:01Z');
savepoint read_only;
set local transaction_read_only = on;
select pg_temp.differs('heart_rate', 'day', null, null, 'UTC') as differs_read_only;
select current from pg_temp.rollups();
rollback to savepoint read_only;
select pg_temp.differs('heart_rate', 'day', null, null, 'UTC') as differs_read_write;
select current from pg_temp.rollups();
-- Writes the feed does not see: with the realtime triggers disabled the rollups are not used;
-- enabled again, the triggers' catalog rows changed, so the rollups are rebuilt.
reset role;
select pg_temp.realtime_triggers('disable');
set local role authenticated;
insert into health_metrics (kind, value, unit, recorded_at) values ('heart_rate', 33, '/min', '2026-03-28 10:31Z');
select pg_temp.differs('heart_rate', 'day', null, null, 'UTC') as differs_feed_off;
reset role;
select pg_temp.realtime_triggers('enable');
set local role authenticated;
select pg_temp.differs('heart_rate', 'day', null, null, 'UTC') as differs_feed_on_again;
select min from health.summary('heart_rate', 'day', '2026-03-28', '2026-03-29');
-- Rollups hold all of a user's rows: a restrictive policy that hides some of the caller's own
-- rows from it means the samples are read, through that policy.
reset role;
create policy no_peaks on public.health_metrics as restrictive for select to authenticated using (value < 200);
set local role authenticated;
select pg_temp.differs('heart_rate', 'day', null, null, 'UTC') as differs_restrictive;
select max(max) as highest_seen from health.summary('heart_rate', 'day');
reset role;
drop policy no_peaks on public.health_metrics;
set local role authenticated;
select max(max) as highest_seen from health.summary('heart_rate', 'day');
-- TRUNCATE logs nothing in the feed but gives the table a new file: nothing stale is read.
reset role;
truncate public.health_metrics;
set local role authenticated;
select count(*) as buckets_after_truncate from health.summary('heart_rate', 'day');
select * from pg_temp.rollups();
-- Nobody but health.summary reads or writes the rollups.
select pg_temp.try($$select count(*) from health_rls.summary_hours$$) as read_rollups;
select pg_temp.try($$delete from health_rls.summary_state$$) as write_state;
rollback;
