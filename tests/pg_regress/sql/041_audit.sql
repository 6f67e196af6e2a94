-- health_rls.audit(): one example of every lint, and silence for a generator-made table.
begin;
\i fixtures/setup.sql
create schema lint;
-- owner column, RLS off (also: unindexed, nullable)
create table lint.no_rls (id int, user_id uuid);
-- RLS on, no policy, not forced
create table lint.no_policy (user_id uuid not null);
create index on lint.no_policy (user_id);
alter table lint.no_policy enable row level security;
-- policy but RLS off
create table lint.policy_off (owner_id uuid not null primary key);
create policy p on lint.policy_off to authenticated using ((select auth.uid()) = owner_id);
-- per-row auth.uid(), always-true, TO public, two permissive policies for one role+command
create table lint.bad_policies (user_id uuid not null primary key, v int);
alter table lint.bad_policies enable row level security;
alter table lint.bad_policies force row level security;
create policy per_row on lint.bad_policies for select to authenticated using (auth.uid() = user_id);
create policy everyone on lint.bad_policies for select to authenticated using (true);
create policy to_public on lint.bad_policies for insert with check ((select auth.uid()) = user_id);
create policy jwt_per_row on lint.bad_policies for update to authenticated
    using ((current_setting('request.jwt.claims', true)::jsonb ->> 'sub')::uuid = user_id);

select lint, level, object from health_rls.audit() where object like 'lint.%' order by object, lint;
-- Each finding comes with SQL a DBA can paste.
select lint, remedy from health_rls.audit() where object like 'lint.%' order by object, lint;

-- Remedies work: applying the first one clears its finding.
select health_rls.enable_owner_rls('lint.no_rls'::regclass, 'user_id');
select count(*) as left_for_no_rls from health_rls.audit() where object = 'lint.no_rls' and lint = 'owner_column_rls_disabled';

-- A table set up by the generator reports nothing.
create schema clean;
create table clean.samples (id bigint primary key, user_id uuid not null default auth.uid(), v int);
select count(*) from health_rls.enable_owner_rls('clean.samples', commands => '{select,insert,update,delete}');
select count(*) as findings_for_generated_table from health_rls.audit() where object like 'clean.%';
rollback;
