-- Realtime delivery as a client sees it: this psql session LISTENs on alice's channel and
-- prints every notification it receives. Notifications are delivered at commit, so this
-- scenario commits its set-up and removes it at the end. psql prints lines such as
--   Asynchronous notification "hrls_…" with payload "…" received from server process with PID 123.
-- They are written to a file and shown with the random channel name and the PID masked.
begin;
\i fixtures/setup.sql
create table pulses (id bigint generated always as identity primary key, user_id uuid not null default auth.uid(),
                     kind text, value float8, recorded_at timestamptz not null);
select count(*) from health_rls.enable_owner_rls('pulses', commands => '{all}');
-- Announce what the standard metric table announces: the id, the kind and the time.
select count(*) from health_rls.enable_realtime('pulses', key_columns => '{id,kind,recorded_at}');
commit;
begin;
select auth.authenticate(:'alice') is not null as alice;
select auth.my_channel() as alice_channel \gset
select auth.authenticate(:'bob') is not null as bob;
select auth.my_channel() as bob_channel \gset
commit;
\getenv outdir PG_ABS_BUILDDIR
\set heard :outdir '/051_heard.txt'
\setenv HEARD :heard
\setenv ALICE_CHANNEL :alice_channel
\setenv BOB_CHANNEL :bob_channel
listen :"alice_channel";
\o :heard
\qecho -- alice inserts two rows in one statement: ONE notification with both ids, kind and recorded_at, no value
begin;
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;
insert into pulses (kind, value, recorded_at) values ('heart_rate', 61, '2026-01-01 10:00:00+00'), ('steps', 500, '2026-01-01 10:01:00+00');
commit;
\qecho -- bob inserts: alice hears nothing
begin;
set local role authenticated;
select auth.authenticate(:'bob') is not null as bob;
insert into pulses (kind, value, recorded_at) values ('heart_rate', 90, '2026-01-01 11:00:00+00');
commit;
\qecho -- a rolled-back insert by alice: nothing
begin;
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;
insert into pulses (kind, value, recorded_at) values ('heart_rate', 99, '2026-01-01 12:00:00+00');
rollback;
\qecho -- alice updates and deletes her rows: one notification each
begin;
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;
update pulses set value = 62;
delete from pulses where kind = 'steps';
commit;
\qecho -- a row of bob moves to alice (done by the superuser): alice hears the UPDATE as the new owner
update pulses set user_id = :'alice_id' where value = 90;
\qecho -- payload row: the rows as JSON
select count(*) from health_rls.enable_realtime('pulses', payload => 'row', key_columns => '{id,kind,recorded_at}');
begin;
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;
insert into pulses (kind, value, recorded_at) values ('body_weight', 70.5, '2026-01-02 08:00:00+00');
commit;
\qecho -- a row of alice moves to bob: alice (the old owner) hears the old row only
update pulses set user_id = :'bob_id' where kind = 'body_weight';
\qecho -- the superuser deletes every row: alice hears her two rows, the row of bob is told to bob only
delete from pulses;
\o
unlisten *;
\! sed -E -e "s/$ALICE_CHANNEL/<alice's channel>/g" -e "s/$BOB_CHANNEL/<bob's channel>/g" -e 's/PID [0-9]+/PID <pid>/' "$HEARD"
-- A 5,000-row statement is split into several notifications, each under 8000 bytes, ids complete.
-- (Counted from the notifications psql receives: parts, biggest payload, ids.)
listen :"alice_channel";
\o :heard
begin;
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;
insert into pulses (kind, value, recorded_at) select 'heart_rate', 60 + g % 40, '2026-01-03'::timestamptz + g * interval '1 s' from generate_series(1, 5000) g;
commit;
\o
unlisten *;
\! grep -o 'with payload ".*" received' "$HEARD" | sed -E 's/^with payload "(.*)" received$/\1/' | python3 -c 'import sys, json; raw = sys.stdin.read().splitlines(); ps = [json.loads(l) for l in raw]; ids = [r["id"] for p in ps for r in p["rows"]]; print("parts:", len(ps), "| numbered 1..n:", [p["part"] for p in ps] == list(range(1, len(ps) + 1)) and all(p["parts"] == len(ps) for p in ps), "| ids:", len(ids), "distinct:", len(set(ids)), "| largest payload < 8000 bytes:", max(len(l.encode()) for l in raw) < 8000)'
select count(*) as rows_written from pulses;
-- Clean up what this scenario committed.
drop table pulses;
drop extension health_rls;
drop role api_user;
drop role anon, authenticated, service_role;
