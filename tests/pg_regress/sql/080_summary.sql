-- Trends: health.summary buckets a user's samples of one kind by local hour, day, ISO week or
-- month of an IANA zone, in the kind's canonical unit, and reads only what a plain query as the
-- user reads; health.shared_summary gives a grantee the same through a share, logged.
-- The set-up is committed: a grantee read commits its access log entry in a transaction of its
-- own, which must see the extension's tables.
begin;
\i fixtures/setup.sql
commit;
begin;
set local timezone = 'UTC';
select health.create_metric_table('public.health_metrics');
select auth.sign_up('ada@example.com', 'analytical engine') as ada_id \gset
select auth.sign_up('grace@example.com', 'compiler pioneer') as grace_id \gset
select auth.sign_up('eve@example.com', 'eavesdropper 1') as eve_id \gset
select auth.start_session('ada@example.com', 'analytical engine')->>'access_token' as ada \gset
select auth.start_session('grace@example.com', 'compiler pioneer')->>'access_token' as grace \gset
select auth.start_session('eve@example.com', 'eavesdropper 1')->>'access_token' as eve \gset
set local role api_user;
set local role authenticated;
select pg_temp.try($$select count(*) from health.summary('heart_rate')$$) as unauthenticated;
select auth.authenticate(:'ada') = :'ada_id' as ada;
-- Europe/Berlin changes to summer time on 2026-03-29 (a 23-hour day) and back on 2026-10-25 (25
-- hours); each of those days gets a sample just after its local midnight and one just before the
-- next, and the days around them one sample each.
select count(*) as written from health.ingest('health_metrics', '[
  {"kind": "heart_rate", "value": 60, "unit": "/min", "recorded_at": "2026-03-28T23:30:00+01:00"},
  {"kind": "heart_rate", "value": 70, "unit": "/min", "recorded_at": "2026-03-29T00:30:00+01:00"},
  {"kind": "heart_rate", "value": 80, "unit": "/min", "recorded_at": "2026-03-29T23:30:00+02:00"},
  {"kind": "heart_rate", "value": 90, "unit": "/min", "recorded_at": "2026-03-30T00:30:00+02:00"},
  {"kind": "heart_rate", "value": 61, "unit": "/min", "recorded_at": "2026-10-25T00:30:00+02:00"},
  {"kind": "heart_rate", "value": 63, "unit": "/min", "recorded_at": "2026-10-25T23:30:00+01:00"},
  {"kind": "HKQuantityTypeIdentifierHeartRate", "value": 1.25, "unit": "count/s", "recorded_at": "2026-10-26T00:30:00+01:00"},
  {"kind": "steps", "value": 500, "unit": "{steps}", "recorded_at": "2026-01-31T23:30:00Z", "ended_at": "2026-01-31T23:40:00Z"},
  {"kind": "steps", "value": 700, "unit": "{steps}", "recorded_at": "2026-02-01T00:30:00Z", "ended_at": "2026-02-01T00:40:00Z"},
  {"kind": "steps", "value": 300, "unit": "{steps}", "recorded_at": "2026-02-01T08:00:00Z", "ended_at": "2026-02-01T08:10:00Z"},
  {"kind": "body_temperature", "value": 98.6, "unit": "[degF]", "recorded_at": "2026-02-01T08:00:00Z"}]')
 where status = 'inserted';
-- Local days: each change day holds its two samples; it is 23 hours long in spring, 25 in autumn.
select bucket_start, n, min, avg, max, sum,
       ((bucket_start at time zone 'Europe/Berlin') + interval '1 day') at time zone 'Europe/Berlin' - bucket_start as length
  from health.summary('heart_rate', 'day', tz => 'Europe/Berlin');
-- The same numbers as the GROUP BY a user would write over the table (through RLS).
select count(*) as differing_buckets from (
  (select bucket_start, n, min, avg, max, sum from health.summary('heart_rate', 'day', tz => 'Europe/Berlin')
   except
   select date_trunc('day', recorded_at, 'Europe/Berlin'), count(*), min(value), avg(value), max(value), sum(value)
     from health_metrics where kind = 'heart_rate' group by 1)
  union all
  (select date_trunc('day', recorded_at, 'Europe/Berlin'), count(*), min(value), avg(value), max(value), sum(value)
     from health_metrics where kind = 'heart_rate' group by 1
   except
   select bucket_start, n, min, avg, max, sum from health.summary('heart_rate', 'day', tz => 'Europe/Berlin'))) d;
-- In UTC the same samples fall into other days; a platform identifier names the same kind; the
-- 1.25/s sample is summarised in the canonical /min (75).
select bucket_start, n, avg from health.summary('HKQuantityTypeIdentifierHeartRate', 'day', '2026-10-24', '2026-10-27');
-- Hours, ISO weeks (from Monday) and months of local time.
select bucket_start, n from health.summary('heart_rate', 'hour', '2026-03-28T22:00:00Z', '2026-03-29T03:00:00Z', 'Europe/Berlin');
select bucket_start, n, extract(isodow from bucket_start at time zone 'Europe/Berlin') as weekday
  from health.summary('heart_rate', 'week', tz => 'Europe/Berlin');
-- A month boundary: 23:30 UTC on 31 January is January in UTC and in New York; 00:30 UTC on
-- 1 February is February in UTC, still January in New York. Steps are summed.
select bucket_start, n, sum from health.summary('steps', 'month');
select bucket_start, n, sum from health.summary('steps', 'month', tz => 'America/New_York');
select bucket_start, n, sum from health.summary('steps', 'day', tz => 'America/New_York');
-- Canonical unit: 98.6 °F is 37 Cel.
select round(avg::numeric, 6) as body_temperature_cel from health.summary('body_temperature');
-- [from, until): until is exclusive.
select count(*) as buckets, sum(n) as samples from health.summary('heart_rate', 'day', '2026-03-29T00:30:00+01:00', '2026-03-30T00:30:00+02:00', 'Europe/Berlin');
-- Bad arguments: 22023, and a message that says which.
select pg_temp.try($$select count(*) from health.summary('pulse')$$) as unknown_kind,
       pg_temp.try($$select count(*) from health.summary(NULL)$$) as null_kind,
       pg_temp.try($$select count(*) from health.summary('heart_rate', 'year')$$) as unknown_bucket,
       pg_temp.try($$select count(*) from health.summary('heart_rate', 'day', tz => 'Mars/Olympus_Mons')$$) as unknown_zone,
       pg_temp.try($$select count(*) from health.summary('heart_rate', 'day', tz => '../../../etc/passwd')$$) as path_zone,
       pg_temp.try($$select count(*) from health.summary('heart_rate', 'day', '2026-02-01', '2026-01-01')$$) as from_after_until;

-- Another user sees only their own: Grace has one sample, none of Ada's.
select auth.authenticate(:'grace') = :'grace_id' as grace;
select count(*) as written from health.ingest('health_metrics', '[
  {"kind": "heart_rate", "value": 100, "unit": "/min", "recorded_at": "2026-03-29T12:00:00Z"}]');
select bucket_start, n, avg from health.summary('heart_rate');
-- Without a share, Ada's summary is refused (42501), and Eve's too.
select pg_temp.try(format('select count(*) from health.shared_summary(%L, %L)', :'ada_id', 'heart_rate')) as without_share;

-- Ada shares heart rate recorded 2026-03-29 00:00 to 2026-03-30 00:00 UTC with Grace.
select auth.authenticate(:'ada') = :'ada_id' as ada;
select health.share(:'grace_id', '{heart_rate}', '2026-03-29T00:00:00Z', '2026-03-30T00:00:00Z') as share_id \gset
select auth.authenticate(:'grace') = :'grace_id' as grace;
-- Inside the window: the two samples recorded on 29 March (UTC), in Berlin's local days; the
-- samples outside it are not summarised.
select bucket_start, n, min, avg, max from health.shared_summary(:'ada_id', 'heart_rate', 'day', tz => 'Europe/Berlin');
-- Steps are not shared: no bucket, and no log entry for reading nothing.
select count(*) as steps_buckets from health.shared_summary(:'ada_id', 'steps', 'month');
-- Eve has no share.
select auth.authenticate(:'eve') = :'eve_id' as eve;
select pg_temp.try(format('select count(*) from health.shared_summary(%L, %L)', :'ada_id', 'heart_rate')) as eve_reads_ada;
-- Ada's log shows Grace's one read: the kind and how many samples it summarised.
select auth.authenticate(:'ada') = :'ada_id' as ada;
select grantee_email, kinds, row_count from health.my_access_log();
-- After revocation the grantee's summary is refused at once.
select health.revoke_share(:'share_id');
select auth.authenticate(:'grace') = :'grace_id' as grace;
select pg_temp.try(format('select count(*) from health.shared_summary(%L, %L)', :'ada_id', 'heart_rate')) as after_revocation;
rollback;
-- Clean up what the committed set-up created (and the access log entry committed on its own).
drop extension health_rls;
drop role api_user;
drop role anon, authenticated, service_role;
