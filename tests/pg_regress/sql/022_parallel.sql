-- A policy written exactly as in Supabase's docs, auth.uid() unwrapped, works unchanged —
-- also when the planner runs it in parallel workers: the identity reaches every worker, both
-- as the initplan's result the leader passes on (the planner support) and, with the support
-- switched off, through the GUC state each worker receives when it calls auth.uid() per row.
begin;
\i fixtures/setup.sql
create table todos (id bigint generated always as identity primary key, user_id uuid not null, task text);
insert into todos (user_id, task)
select case g % 3 when 0 then :'alice_id'::uuid when 1 then :'bob_id'::uuid
                 else '00000000-0000-4000-8000-000000000000'::uuid end,
       'task ' || g
  from generate_series(1, 300000) g;
analyze todos;
alter table todos enable row level security;
create policy "Individuals can view their own todos." on todos for select to authenticated
    using (auth.uid() = user_id);
grant select on todos to authenticated;
-- What the plan of a query did: workers launched, InitPlans, per-row calls (fixtures/plan.sql).
\i fixtures/plan.sql

set local parallel_setup_cost = 0;
set local parallel_tuple_cost = 0;
set local min_parallel_table_scan_size = 0;
set local max_parallel_workers_per_gather = 2;
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;
select count(*) as alice_rows, count(*) filter (where user_id <> :'alice_id') as others from todos;
select auth.authenticate(:'bob') is not null as bob;
select count(*) as bob_rows, count(*) filter (where user_id <> :'bob_id') as others from todos;
-- The workers really ran; the identity was evaluated once.
select * from pg_temp.plan_facts('analyze, costs off, timing off, summary off', 'select count(*) from todos');
-- Per-row calls inside the workers (planner support off for this part).
reset role;
update pg_proc set prosupport = 0 where oid = 'auth.uid()'::regprocedure;
set local role authenticated;
select * from pg_temp.plan_facts('analyze, costs off, timing off, summary off', 'select count(*) from todos');
select count(*) as bob_rows, count(*) filter (where user_id <> :'bob_id') as others from todos;
select auth.authenticate(:'alice') is not null as alice;
select count(*) as alice_rows, count(*) filter (where user_id <> :'alice_id') as others from todos;
rollback;
