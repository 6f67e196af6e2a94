-- health_rls.enable_owner_rls: two users through "authenticated", FORCEd RLS, idempotence,
-- injection-proof identifiers, dry run, errors, and the plan it leads to.
begin;
\i fixtures/setup.sql
create role table_owner nologin;
grant create, usage on schema public to table_owner;
set local role table_owner;
create table notes (
    id bigint generated always as identity primary key,
    user_id uuid not null default auth.uid(),
    body text
);
select * from health_rls.enable_owner_rls('notes', commands => '{select,insert,update,delete}');
select policyname, cmd, roles, qual, with_check from pg_policies where tablename = 'notes' order by policyname;
select relrowsecurity, relforcerowsecurity from pg_class where relname = 'notes';
select indexdef from pg_indexes where tablename = 'notes' order by 1;
reset role;

-- No identity yet (nobody authenticated in this transaction): sees nothing, inserts nothing.
set local role authenticated;
select auth.uid() is null as anonymous, count(*) as sees from notes;
select pg_temp.try($$insert into notes (body) values ('anonymous')$$);
select pg_temp.try(format('insert into notes (user_id, body) values (%L, ''claims to be alice'')', :'alice_id'));
reset role;
set local role anon;
select pg_temp.try($$select count(*) from notes$$);
reset role;

-- Two users write through the authenticated role.
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;
insert into notes (body) values ('alice 1'), ('alice 2');
select auth.authenticate(:'bob') is not null as bob;
insert into notes (body) values ('bob 1');
select body from notes order by id;
select auth.authenticate(:'alice') is not null as alice;
select body from notes order by id;
-- Alice cannot write a row owned by bob ...
select pg_temp.try(format('insert into notes (user_id, body) values (%L, ''forged'')', :'bob_id'));
-- ... nor move her row to bob, nor touch bob's rows.
select pg_temp.try(format('update notes set user_id = %L where body = ''alice 1''', :'bob_id'));
update notes set body = 'hijacked' where body = 'bob 1';
delete from notes where body = 'bob 1';
reset role;
select body from notes order by id;

-- The table owner is not a superuser and is held by RLS too (FORCE): no identity, no rows.
set local role table_owner;
select count(*) as owner_sees from notes;
reset role;

-- A second call leaves exactly the same policies.
create temp table before as select policyname, cmd, roles, qual, with_check from pg_policies where tablename = 'notes';
set local role table_owner;
select count(*) as statements from health_rls.enable_owner_rls('notes', commands => '{select,insert,update,delete}');
reset role;
select count(*) as differences from (
    (select policyname, cmd, roles, qual, with_check from pg_policies where tablename = 'notes' except select * from before)
    union all
    (select * from before except select policyname, cmd, roles, qual, with_check from pg_policies where tablename = 'notes')
) d;
select count(*) as owner_indexes from pg_indexes where tablename = 'notes' and indexdef like '%(user_id)%';

-- A table named with quotes, semicolons and spaces.
create table "a""; drop table notes; --" (user_id uuid, v int);
select * from health_rls.enable_owner_rls('"a""; drop table notes; --"');
select count(*) as notes_still_there from notes;
select policyname from pg_policies where tablename = 'a"; drop table notes; --' order by 1;

-- Dry run changes nothing.
create table dry (user_id uuid);
select * from health_rls.enable_owner_rls('dry', dry_run => true);
select count(p.polname) as policies, bool_or(relrowsecurity) as rls
  from pg_class c left join pg_policy p on p.polrelid = c.oid where c.relname = 'dry';

-- Errors name the object.
create table wrong_type (user_id text, owner uuid);
select pg_temp.try($$select health_rls.enable_owner_rls('wrong_type')$$);
select pg_temp.try($$select health_rls.enable_owner_rls('wrong_type', 'missing')$$);
select pg_temp.try($$select health_rls.enable_owner_rls('wrong_type', 'owner', '{select,truncate}')$$);
select pg_temp.try($$select health_rls.enable_owner_rls('wrong_type', 'owner', roles => '{nobody_here}')$$);
select pg_temp.try($$select health_rls.enable_owner_rls('wrong_type', 'owner', roles => '{public}')$$);
select pg_temp.try($$select health_rls.enable_owner_rls('no_such_table')$$);

-- disable_owner_rls removes exactly the generator's policies.
select * from health_rls.disable_owner_rls('dry');
rollback;

-- The plan: auth.uid() once (InitPlan) and an index scan, over 100k rows.
begin;
\i fixtures/setup.sql
\i fixtures/plan.sql
create table samples (id bigint generated always as identity primary key, user_id uuid not null, v int);
insert into samples (user_id, v)
  select ('00000000-0000-4000-8000-' || lpad((g % 1000)::text, 12, '0'))::uuid, g from generate_series(1, 100000) g;
insert into samples (user_id, v) select :'alice_id', g from generate_series(1, 100) g;
select count(*) from health_rls.enable_owner_rls('samples');
analyze samples;
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;
select * from pg_temp.plan('costs off', 'select * from samples');
select count(*) from samples;
rollback;
