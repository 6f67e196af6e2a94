-- The registry of managed tables (health_rls.managed_tables): what made a table ours is recorded
-- by oid, so a comment, a rename, a schema with a quoted name and a move to another schema
-- change nothing about export, sharing or erasure (as the API role). A dropped table leaves no
-- entry; a table owner records only its own tables.
-- The set-up is committed: a grantee read commits its access log entry in a transaction of its
-- own, which must see the extension's tables.
begin;
\i fixtures/setup.sql
commit;
begin;
set local timezone = 'UTC';
create schema "Vitals ""App""";
grant usage on schema "Vitals ""App""" to authenticated;
select health.create_metric_table('"Vitals ""App""".readings') as readings;
create table public.journal (id bigint generated always as identity primary key, user_id uuid not null default auth.uid(), body text);
select count(*) from health_rls.enable_owner_rls('public.journal', commands => '{all}');
select count(*) from health_rls.enable_realtime('public.journal', payload => 'row');
-- The DBA's view: one row per table, the extension's own tables included.
select relid, metric_table, owner_column, owner_roles, realtime_column, realtime_payload
  from health_rls.managed_tables order by relid::text;
select auth.sign_up('ada@example.com', 'analytical engine') as ada_id \gset
select auth.sign_up('grace@example.com', 'compiler pioneer') as grace_id \gset
select auth.start_session('ada@example.com', 'analytical engine')->>'access_token' as ada \gset
select auth.start_session('grace@example.com', 'compiler pioneer')->>'access_token' as grace \gset
set local role api_user;
set local role authenticated;
select auth.authenticate(:'ada') = :'ada_id' as ada;
select count(*) as written from health.ingest('"Vitals ""App""".readings', '[
  {"kind": "heart_rate", "value": 61, "unit": "/min", "recorded_at": "2026-11-23T08:00:00Z"},
  {"kind": "heart_rate", "value": 62, "unit": "/min", "recorded_at": "2026-11-24T08:00:00Z"}]');
insert into public.journal (body) values ('dear diary');
select health.share(:'grace_id', '{heart_rate}') is not null as shared;
-- What each way out sees before anything is renamed (fhir entries, grantee rows).
select jsonb_array_length(health.fhir_observations()->'entry') as fhir_entries;
select auth.authenticate(:'grace') = :'grace_id' as grace;
select count(*) as grace_reads from health.shared_samples(:'ada_id');
reset role;
-- A DBA documents, renames and moves the tables: nothing about them changes for the registry.
comment on table "Vitals ""App""".readings is 'Vitals from the watch app';
alter table "Vitals ""App""".readings rename to "Watch Readings";
create schema archive;
grant usage on schema archive to authenticated;
alter table "Vitals ""App"""."Watch Readings" set schema archive;
comment on table public.journal is 'notes';
alter table public.journal rename to diary;
select relid, metric_table, owner_column from health_rls.managed_tables where not metric_table or relid::text like 'archive.%' order by relid::text;
set local role authenticated;
select auth.authenticate(:'ada') = :'ada_id' as ada;
select jsonb_array_length(health.fhir_observations()->'entry') as fhir_entries_after_comment_rename_move;
select jsonb_array_length(health.export_my_data()->'samples'->'entry') as export_entries;
select auth.authenticate(:'grace') = :'grace_id' as grace;
select count(*) as grace_reads_after from health.shared_samples(:'ada_id');
-- Erasure finds the moved metric table and the renamed owner table.
select auth.authenticate(:'ada') = :'ada_id' as ada;
select health.erase_my_data('ada@example.com') is not null as erased;
reset role;
select (select count(*) from archive."Watch Readings" where user_id = :'ada_id') as readings_left,
       (select count(*) from public.diary where user_id = :'ada_id') as diary_left;
-- The application roles see no entry (they own no table) and cannot write one.
set local role authenticated;
select count(*) as entries_seen_by_authenticated from health_rls.managed_tables;
select pg_temp.try($$insert into health_rls.managed_tables (relid, metric_table) values ('public.diary', true)$$) as forge_entry;
with edited as (update health_rls.managed_tables set owner_column = 'id' returning 1)
select count(*) as entries_edited_by_authenticated from edited;
reset role;
-- A table owner who is not a superuser records its own table, and only its own.
create role table_owner;
create table public.owned (id bigint primary key, user_id uuid not null);
alter table public.owned owner to table_owner;
grant usage, create on schema public to table_owner;
set local role table_owner;
select count(*) from health_rls.enable_owner_rls('public.owned');
select relid, owner_column from health_rls.managed_tables;
select pg_temp.try($$insert into health_rls.managed_tables (relid, metric_table) values ('public.diary', true)$$) as other_owners_table;
reset role;
-- The audit reads the registry: what it records and someone removed by hand is reported, with
-- the call that puts it back (the recorded commands and roles).
create table public.notes (id bigint primary key, user_id uuid not null);
select count(*) from health_rls.enable_owner_rls('public.notes', commands => '{select,delete}');
select count(*) from health_rls.enable_realtime('public.notes');
select owner_commands, owner_roles from health_rls.managed_tables where relid = 'public.notes'::regclass;
select lint, level, object, remedy from health_rls.audit() where lint like 'managed%';
drop trigger health_rls_realtime_insert on public.notes;
drop trigger health_rls_realtime_update on public.notes;
drop trigger health_rls_realtime_delete on public.notes;
alter table public.diary disable row level security;
alter table public.notes rename column user_id to writer_id;
select lint, level, object, detail, remedy from health_rls.audit() where lint like 'managed%' order by lint, object;
-- Off again, and dropped: the entries go.
select count(*) from health_rls.disable_owner_rls('public.owned');
select count(*) as owned_entries from health_rls.managed_tables where relid = 'public.owned'::regclass;
select count(*) from health_rls.disable_realtime('public.diary');
select realtime_column from health_rls.managed_tables where relid = 'public.diary'::regclass;
drop table archive."Watch Readings";
select count(*) as entries_of_dropped_tables from health_rls.managed_tables m
 where not exists (select 1 from pg_class c where c.oid = m.relid);
rollback;
-- Clean up what the committed set-up created.
drop extension health_rls;
drop role api_user;
drop role anon, authenticated, service_role;
