-- The durable per-user change feed: every announced change is logged with a per-user seq,
-- readable by its owner only, deletes as tombstones, paged, pruned by retention with a
-- "resync needed" (55000) for a cursor older than what is kept.
begin;
\i fixtures/setup.sql
set local timezone = 'UTC';
select health.create_metric_table('public.health_metrics');
set local role api_user;
set local role authenticated;
select pg_temp.try($$select * from health_rls.changes_since(0)$$) as unauthenticated;
select auth.authenticate(:'alice') is not null as alice;
select count(*) as written from health.ingest('health_metrics', '[
  {"kind": "heart_rate", "value": 61, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z", "sync_id": "a", "sync_version": 1},
  {"kind": "heart_rate", "value": 62, "unit": "/min", "recorded_at": "2026-11-24T08:01:00Z"}]');
select count(*) as written from health.ingest('health_metrics', '[{"kind": "heart_rate", "value": 65, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z", "sync_id": "a", "sync_version": 2}]');
select count(*) as written from health.ingest('health_metrics', '[{"deleted": true, "sync_id": "a"}]');
-- One change per announced row, seqs 1.. without gaps, deletes carry the same keys (tombstones).
select seq, tbl, op, keys - 'id' as keys from health_rls.changes_since(0) order by seq;
select seq from health_rls.changes_since(2, 1) as page;
-- bob: his own feed starts at 1 and never shows alice's changes (function and table alike).
select auth.authenticate(:'bob') is not null as bob;
select count(*) as bob_sees_in_feed from health_rls.changes_since(0);
select count(*) as bob_sees_in_table from health_rls.changes;
select count(*) as written from health.ingest('health_metrics', '[{"kind": "steps", "value": 10, "unit": "{steps}", "recorded_at": "2026-11-24T08:00:00Z"}]');
select seq, op from health_rls.changes_since(0);
-- One statement's rows of one user are one row of the table (n of them, their keys as an array),
-- and changes_since still gives one change per seq, from any cursor, a page at a time.
insert into health_metrics (kind, value, unit, recorded_at) values
  ('steps', 11, '{steps}', '2026-11-24T09:00:00Z'), ('steps', 12, '{steps}', '2026-11-24T09:01:00Z'),
  ('steps', 13, '{steps}', '2026-11-24T09:02:00Z');
select seq, n, jsonb_typeof(keys) as keys from health_rls.changes order by seq;
select seq, keys->>'recorded_at' as recorded_at from health_rls.changes_since(2) order by seq;
select seq from health_rls.changes_since(1, 2) as page;
select seq from health_rls.changes_since(3, 2) as next_page;
select seq from health_rls.changes_since(4) as nothing_after_the_last;
-- Bad arguments.
select pg_temp.try($$select * from health_rls.changes_since(-1)$$) as negative_cursor,
       pg_temp.try($$select * from health_rls.changes_since(0, 0)$$) as empty_page;
-- Retention (as superuser): changes older than health_rls.changes_retention go; a cursor behind
-- them is told to resync, one at or after them goes on.
reset role;
select pg_temp.try($$select health_rls.prune_changes()$$) is not null as owner_may_prune;
update health_rls.changes set at = now() - interval '8 days' where seq <= 2 and user_id = :'alice_id';
select health_rls.prune_changes() as pruned;
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;
select pg_temp.try($$select * from health_rls.changes_since(1)$$) as behind_retention;
select seq, op from health_rls.changes_since(2) order by seq;
select pg_temp.try($$select health_rls.prune_changes()$$) as app_role_prunes;
-- The feed names the table as it is called now: after a rename of the table, and of its schema.
reset role;
create schema wearables;
grant usage on schema wearables to authenticated;
alter table health_metrics set schema wearables;
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;
insert into wearables.health_metrics (kind, value, unit, recorded_at) values ('steps', 1, '{steps}', '2026-11-25T09:00:00Z');
reset role;
alter table wearables.health_metrics rename to samples;
set local role authenticated;
insert into wearables.samples (kind, value, unit, recorded_at) values ('steps', 2, '{steps}', '2026-11-25T09:01:00Z');
reset role;
alter schema wearables rename to devices;
set local role authenticated;
insert into devices.samples (kind, value, unit, recorded_at) values ('steps', 3, '{steps}', '2026-11-25T09:02:00Z');
select tbl, keys->>'recorded_at' as recorded_at from health_rls.changes_since(2) where tbl <> 'public.health_metrics' order by seq;
rollback;
