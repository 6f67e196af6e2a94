-- A policy written without `(select ...)`: `auth.uid() = owner` is still evaluated once per
-- execution (an initplan, src/pg/initplan.rs), and every execution sees the identity of that
-- moment: after a new authenticate, a rolled-back savepoint, a claims change in trust mode, and
-- through a cached generic plan.
begin;
\i fixtures/setup.sql
create table per_row (owner uuid not null, note text not null);
insert into per_row select :'alice_id', 'alice ' || g from generate_series(1, 3) g;
insert into per_row select :'bob_id', 'bob ' || g from generate_series(1, 2) g;
alter table per_row enable row level security;
create policy unwrapped on per_row to authenticated using (auth.uid() = owner);
grant select on per_row to authenticated;
-- How a plan evaluates the identity functions: InitPlans, and whether any filter still calls one
-- per row (fixtures/plan.sql: the same facts on every major).
\i fixtures/plan.sql
-- A generic plan, cached and reused by every EXECUTE below.
set local plan_cache_mode = force_generic_plan;
prepare mine as select count(*) as n, min(note) as first from per_row;
set local role authenticated;
-- The plan: one evaluation (InitPlan), a filter comparing with its result.
select initplans, calls_per_row from pg_temp.plan_facts('costs off', 'select * from per_row');
-- Nobody: nothing.
execute mine;
select auth.authenticate(:'alice') = :'alice_id'::uuid as alice;
execute mine;
-- A new identity in the same transaction: the cached plan reads bob's rows.
select auth.authenticate(:'bob') = :'bob_id'::uuid as bob;
execute mine;
select count(*) as direct_bob from per_row;
-- A savepoint that switches to alice and rolls back: bob again.
savepoint s1;
select auth.authenticate(:'alice') = :'alice_id'::uuid as alice_in_savepoint;
execute mine;
rollback to savepoint s1;
execute mine;
select auth.uid() = :'bob_id'::uuid as bob_after_rollback;
-- Without the planner support (pg_proc.prosupport) the same policy calls per row: the
-- check above can fail.
reset role;
update pg_proc set prosupport = 0 where oid = 'auth.uid()'::regprocedure;
set local role authenticated;
select initplans, calls_per_row from pg_temp.plan_facts('costs off', 'select * from per_row');
reset role;
alter function auth.uid() support health_rls._once_per_execution;
set local role authenticated;
-- Per row of a query: the same identity for every row.
select count(distinct auth.uid()) as one_identity, count(*) as rows from generate_series(1, 50);
-- auth.jwt(), auth.email() and auth.role() too.
select initplans, calls_per_row from pg_temp.plan_facts('costs off', $$select note from per_row where auth.jwt() ->> 'email' = 'bob@example.com' and auth.role() = 'authenticated'$$);
select count(*) as bob_by_email from per_row where auth.email() = 'bob@example.com';
-- PL/pgSQL caches its plans too: identities switched inside a loop are each seen.
reset role;
create function pg_temp.counts_as(tokens text[]) returns text language plpgsql as $$
declare t text; acc text := ''; n bigint;
begin
    foreach t in array tokens loop
        perform auth.authenticate(t);
        select count(*) into n from per_row;
        acc := acc || n || ' ';
    end loop;
    return acc;
end $$;
grant execute on function pg_temp.counts_as(text[]) to authenticated;
set local role authenticated;
select pg_temp.counts_as(array[:'alice', :'bob', :'alice', :'bob']) as alice_bob_alice_bob;
rollback;

-- Trust mode: the claims a trusted API sets with set_config, changed mid-transaction, in a
-- rolled-back savepoint, and by request.jwt.claim.sub.
begin;
\i fixtures/setup.sql
create table per_row (owner uuid not null, note text not null);
insert into per_row select :'alice_id', 'alice ' || g from generate_series(1, 3) g;
insert into per_row select :'bob_id', 'bob ' || g from generate_series(1, 2) g;
alter table per_row enable row level security;
create policy unwrapped on per_row to authenticated using (auth.uid() = owner);
grant select on per_row to authenticated;
set local health_rls.trust_request_claims = on;
set local plan_cache_mode = force_generic_plan;
prepare trusted as select count(*) as n from per_row;
set local role authenticated;
select set_config('request.jwt.claims', format('{"sub":"%s","role":"authenticated"}', :'alice_id'), true) is not null as api_sets_alice;
execute trusted;
select set_config('request.jwt.claims', format('{"sub":"%s","role":"authenticated"}', :'bob_id'), true) is not null as api_sets_bob;
execute trusted;
savepoint s1;
select set_config('request.jwt.claims', format('{"sub":"%s","role":"authenticated"}', :'alice_id'), true) is not null as alice_in_savepoint;
execute trusted;
rollback to savepoint s1;
execute trusted;
-- request.jwt.claim.sub wins over the claims' sub (PostgREST's older setting).
select set_config('request.jwt.claim.sub', :'alice_id', true) is not null as sub_alice;
execute trusted;
select set_config('request.jwt.claim.sub', '', true) is not null as sub_cleared;
execute trusted;
-- Claims that are not JSON, or name no canonical uuid: nobody.
select set_config('request.jwt.claims', 'not json', true) is not null as garbage;
execute trusted;
rollback;
