-- Realtime channels as capabilities; enable_realtime/disable_realtime.
begin;
\i fixtures/setup.sql
create table pulses (id bigint generated always as identity primary key, user_id uuid not null default auth.uid(),
                     kind text, value float8, recorded_at timestamptz default now());
select count(*) from health_rls.enable_owner_rls('pulses', commands => '{all}');
select * from health_rls.enable_realtime('pulses');
select tgname from pg_trigger where tgrelid = 'pulses'::regclass order by 1;
-- Idempotent: a second call leaves the same three triggers.
select count(*) from health_rls.enable_realtime('pulses');
select tgname from pg_trigger where tgrelid = 'pulses'::regclass order by 1;

set local role authenticated;
select auth.my_channel() is null as nobody_no_channel;
select auth.authenticate(:'alice') is not null as alice;
select auth.my_channel() as alice_channel \gset
select length(:'alice_channel') as len, :'alice_channel' like 'hrls\_%' as prefixed,
       position(replace(:'alice_id', '-', '') in :'alice_channel') = 0 as not_the_plain_id;
select auth.authenticate(:'bob') is not null as bob;
select auth.my_channel() <> :'alice_channel' as bob_has_another_channel;
-- An application role can neither compute someone else's channel nor read the secret,
-- nor send notifications in the trigger's name.
select pg_temp.try(format('select health_rls.channel_for(%L)', :'alice_id'));
select pg_temp.try($$select * from health_rls.realtime_secret$$);
select pg_temp.try(format($$select health_rls._realtime_send(%L, 'x', 'INSERT', 'id', '{}')$$, :'alice_id'));
-- Writes through the trigger work for the app role (the trigger runs as the extension owner).
insert into pulses (kind, value) values ('heart_rate', 61), ('heart_rate', 62);
update pulses set value = 63 where value = 62;
delete from pulses where value = 61;
select count(*) from pulses;
reset role;
-- One 32-byte secret, made at CREATE EXTENSION and dumped with the data (pg_dump keeps channels).
select count(*) as secrets, min(length(secret)) as bytes,
       (select 'health_rls.realtime_secret'::regclass = any(extconfig) from pg_extension where extname = 'health_rls') as dumped
  from health_rls.realtime_secret;
-- The superuser (extension owner) can map a user to a channel; it matches my_channel().
select health_rls.channel_for(:'alice_id') = :'alice_channel' as channel_for_matches;

-- Errors and the RLS warning.
create table no_rls (id int primary key, user_id uuid);
select count(*) from health_rls.enable_realtime('no_rls');
create table no_key (user_id uuid);
-- The SQLSTATEs: 42703 unknown owner column, 22023 bad argument, 42P01 unknown table.
select pg_temp.try($$select health_rls.enable_realtime('no_key')$$);
select pg_temp.try($$select health_rls.enable_realtime('pulses', 'missing')$$);
select pg_temp.try($$select health_rls.enable_realtime('pulses', 'kind')$$);
select pg_temp.try($$select health_rls.enable_realtime('pulses', payload => 'everything')$$);
select pg_temp.try($$select health_rls.enable_realtime('no_such_table')$$);
-- key_columns: each must exist (42703), at least one (22023); a table without primary key or id
-- column can name its rows this way.
select pg_temp.try($$select health_rls.enable_realtime('pulses', key_columns => '{id,nope}')$$);
select pg_temp.try($$select health_rls.enable_realtime('pulses', key_columns => '{}')$$);
select * from health_rls.enable_realtime('no_key', key_columns => '{user_id}');
-- Named key columns are what the triggers carry, in order.
select * from health_rls.enable_realtime('pulses', key_columns => '{id,kind,recorded_at}');
-- The audit lists realtime on a table without RLS.
select lint, object from health_rls.audit() where lint = 'realtime_without_rls';
select * from health_rls.disable_realtime('pulses');
select count(*) as triggers_left from pg_trigger where tgrelid = 'pulses'::regclass and not tgisinternal;
-- Idempotent: disabling again does nothing.
select count(*) as dropped_again from health_rls.disable_realtime('pulses');
-- The trigger function is not for application roles (creating triggers with it needs EXECUTE).
select has_function_privilege('authenticated', 'health_rls.realtime_notify()', 'execute') as app_can_use_trigger_fn,
       has_function_privilege('authenticated', 'auth.my_channel()', 'execute') as app_can_ask_own_channel;
rollback;
