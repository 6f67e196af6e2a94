-- Export and erasure run as the extension owner, a superuser. A table owned by a role that is not
-- a superuser may carry that role's code (a trigger here); it must never run with the extension
-- owner's rights: statements on such tables run with the caller's rights, under its policies.
begin;
\i fixtures/setup.sql
set local timezone = 'UTC';
create role mallory;
grant usage, create on schema public to mallory;
create table public.witness (who name, superuser boolean);
grant insert, select on public.witness to public;
set local role mallory;
create table public.mallory_notes (id bigint generated always as identity primary key, user_id uuid not null default auth.uid(), body text);
select count(*) from health_rls.enable_owner_rls('public.mallory_notes', commands => '{all}');
create function public.on_delete() returns trigger language plpgsql as $$
begin
  insert into public.witness values (current_user, (select rolsuper from pg_roles where rolname = current_user));
  return null;
end $$;
create trigger on_delete after delete on public.mallory_notes for each statement execute function public.on_delete();
reset role;
-- A view registered by hand as a metric table is never read as one (its functions would run as
-- whoever reads it).
create function public.on_delete_probe() returns text language sql as $$ insert into public.witness values (current_user, (select rolsuper from pg_roles where rolname = current_user)) returning 'x' $$;
set local role mallory;
create view public.mallory_view as select 1::bigint as id, 'heart_rate'::text as kind, 60::float8 as value, '/min'::text as unit,
  now() as recorded_at, null::timestamptz as ended_at, null::int as tz_offset, public.on_delete_probe() as source, null::uuid as correlation_id, auth.uid() as user_id;
insert into health_rls.managed_tables (relid, metric_table) values ('public.mallory_view', true);
reset role;
select auth.sign_up('ada@example.com', 'analytical engine') as ada_id \gset
select auth.start_session('ada@example.com', 'analytical engine')->>'access_token' as ada \gset
set local role api_user;
set local role authenticated;
select auth.authenticate(:'ada') = :'ada_id' as ada;
insert into public.mallory_notes (body) values ('mine');
-- Export reads no view; erasure deletes Ada's row with Ada's rights: the trigger runs as her role.
select coalesce(jsonb_array_length(health.fhir_observations()->'entry'), 0) as fhir_entries;
select health.erase_my_data('ada@example.com')->'deleted'->'public.mallory_notes' as mallory_notes_deleted;
reset role;
select who, superuser from public.witness;
select rolsuper as mallory_is_superuser from pg_roles where rolname = 'mallory';
select count(*) as ada_rows_left from public.mallory_notes;
-- Without a DELETE policy for the user, erasure stops (42501) rather than leave rows silently.
select auth.sign_up('bob@example.com', 'bob password 1') as bob_id \gset
select auth.start_session('bob@example.com', 'bob password 1')->>'access_token' as bob \gset
set local role mallory;
select count(*) from health_rls.enable_owner_rls('public.mallory_notes', commands => '{select,insert}');
reset role;
set local role authenticated;
select auth.authenticate(:'bob') = :'bob_id' as bob;
insert into public.mallory_notes (body) values ('bob''s');
select pg_temp.try($$select health.erase_my_data('bob@example.com')$$) as erase_without_delete_policy;
rollback;
