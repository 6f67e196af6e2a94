-- A gateway whose login role can only SET ROLE (api_user: NOINHERIT, member of anon and
-- authenticated) asks which sessions of its streams are still live, and which column a table's
-- realtime announces to, without any right on auth.sessions or the registry.
begin;
\i fixtures/setup.sql
select auth.sign_up('ada@example.com', 'analytical engine') as ada_id \gset
select auth.sign_up('bob@example.com', 'difference engine') as bob_id \gset
select auth.start_session('ada@example.com', 'analytical engine') is not null as phone;
select auth.start_session('ada@example.com', 'analytical engine') is not null as laptop;
select auth.start_session('bob@example.com', 'difference engine') is not null as bobs;
select (array_agg(id order by created_at))[1] as phone, (array_agg(id order by created_at))[2] as laptop
  from auth.sessions where user_id = :'ada_id' \gset
select id as bob_session from auth.sessions where user_id = :'bob_id' \gset
select health.create_metric_table('public.health_metrics') is not null as created;
create table public.plain (id int);
set local role api_user;
-- Every session given is live; an unknown id is not.
select count(*) as live from auth.live_sessions(array[:'phone', :'laptop', :'bob_session', gen_random_uuid()]::uuid[]);
select health_rls.realtime_column('public.health_metrics') as metrics_owner_column,
       health_rls.realtime_column('public.plain') is null as plain_not_registered;
savepoint s;
select count(*) from auth.sessions;
rollback to savepoint s;
reset role;
-- Revoked, deleted, and of a deleted account: none of them live.
update auth.sessions set revoked_at = now() where id = :'phone';
delete from auth.sessions where id = :'laptop';
delete from auth.users where id = :'bob_id';
set local role api_user;
select count(*) as live from auth.live_sessions(array[:'phone', :'laptop', :'bob_session']::uuid[]);
select count(*) as live_of_null from auth.live_sessions(null);
reset role;
select auth.start_session('ada@example.com', 'analytical engine') is not null as tablet;
select id as tablet from auth.sessions where user_id = :'ada_id' and revoked_at is null \gset
set local role api_user;
select l = :'tablet' as the_tablet_is_live from auth.live_sessions(array[:'tablet', :'phone']::uuid[]) l;
rollback;
