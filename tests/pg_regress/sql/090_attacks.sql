-- The attack suite: each case is named, and states the SQLSTATE or the empty result it expects.
-- Statements run through pg_temp.try ("SQLSTATE: message"); a case is defended when the result
-- is the expected value or starts with the expected SQLSTATE.
-- Tokens are crafted here with an HMAC-SHA256 in SQL, so any header/payload can be signed with k1.
begin;
\i fixtures/setup.sql
\i fixtures/vectors.sql
-- HMAC-SHA256 (RFC 2104) from core sha256(): no pgcrypto (the PostgreSQL 16 and 18 builds tested lack it).
create function pg_temp.hmac(msg bytea, key bytea, alg text) returns bytea language sql as $$
  with k as (select case when length(key) > 64 then sha256(key) else key end as k),
       b as (select k || decode(repeat('00', 64 - length(k)), 'hex') as b from k),
       pads as (select string_agg(set_byte('\x00'::bytea, 0, get_byte(b, i) # 54), ''::bytea order by i) as ipad,
                       string_agg(set_byte('\x00'::bytea, 0, get_byte(b, i) # 92), ''::bytea order by i) as opad
                  from b, generate_series(0, 63) i)
  select sha256(opad || sha256(ipad || msg)) from pads where alg = 'sha256' $$;
create function pg_temp.b64url(b bytea) returns text language sql as
  $$ select translate(encode(b, 'base64'), E'+/=\n', '-_') $$;
create function pg_temp.sign(header text, payload text) returns text language sql as $$
  select pg_temp.b64url(convert_to(header, 'utf8')) || '.' || pg_temp.b64url(convert_to(payload, 'utf8')) || '.' ||
         pg_temp.b64url(pg_temp.hmac(convert_to(pg_temp.b64url(convert_to(header, 'utf8')) || '.' || pg_temp.b64url(convert_to(payload, 'utf8')), 'utf8'),
                             decode('aGVhbHRoX3JscyByZWdyZXNzaW9uIHNlY3JldCwgMzIrIGJ5dGVzIGxvbmchIQ==', 'base64'), 'sha256')) $$;
create table victims (id bigint generated always as identity primary key, user_id uuid not null default auth.uid(), secret text);
select count(*) > 0 as generated from health_rls.enable_owner_rls('victims', commands => '{all}');
insert into victims (user_id, secret) values (:'alice_id', 'alice diagnosis'), (:'bob_id', 'bob diagnosis');
create table unforced (id int primary key, user_id uuid not null);
create index on unforced (user_id);
alter table unforced enable row level security;
create policy own on unforced to authenticated using ((select auth.uid()) = user_id);
insert into unforced values (1, :'alice_id'), (2, :'bob_id');
create role plain_owner nologin;
alter table unforced owner to plain_owner;
-- A definer-rights view and function owned by the (non-superuser) table owner.
create role table_owner nologin;
alter table victims owner to table_owner;
create view victims_view as select * from victims;
alter view victims_view owner to table_owner;
grant select on victims_view to authenticated;
create function victims_count() returns bigint language sql security definer as $$ select count(*) from public.victims $$;
alter function victims_count() owner to table_owner;
set local health_rls.jwt_issuer = '';
-- The crafting works: a well-formed token made here verifies.
select auth.authenticate(pg_temp.sign('{"alg":"HS256","kid":"k1"}', format('{"sub":"%s","aud":"authenticated","exp":4102444800}', :'alice_id'))) = :'alice_id' as crafted_token_verifies;
select set_config('health_rls.identity', '', true) is not null as reset_identity;

create temp table attack (name text primary key, expected text, got text);
grant all on attack to public;
set local role api_user;

-- Token attacks (expected 28000).
insert into attack values
 ('token: alg none', '28000', pg_temp.try(format('select auth.authenticate(%L)', :'alg_none'))),
 ('token: HS256 signed with the RSA public key', '28000', pg_temp.try(format('select auth.authenticate(%L)', :'confusion'))),
 ('token: stripped signature', '28000', pg_temp.try(format('select auth.authenticate(%L)', :'stripped'))),
 ('token: signed by another key under a real kid', '28000', pg_temp.try(format('select auth.authenticate(%L)', :'wrong_key'))),
 ('token: tampered payload', '28000', pg_temp.try(format('select auth.authenticate(%L)', :'tampered'))),
 ('token: tampered header', '28000', pg_temp.try(format('select auth.authenticate(%L)', :'header_tampered'))),
 ('token: ES256 token against an ES384 key', '28000', pg_temp.try(format('select auth.authenticate(%L)', :'es_curve_mismatch'))),
 ('token: expired', '28000', pg_temp.try(format('select auth.authenticate(%L)', :'expired'))),
 ('token: nbf in the future', '28000', pg_temp.try(format('select auth.authenticate(%L)', :'not_yet'))),
 ('token: wrong audience', '28000', pg_temp.try(format('select auth.authenticate(%L)', :'wrong_aud'))),
 ('token: unknown kid', '28000', pg_temp.try(format('select auth.authenticate(%L)', :'unknown_kid'))),
 ('token: sub is not a UUID', '28000', pg_temp.try(format('select auth.authenticate(%L)', :'not_uuid'))),
 ('token: oversized (20 KB)', '28000', pg_temp.try(format('select auth.authenticate(%L)', repeat('a', 20000)))),
 ('token: empty', '28000', pg_temp.try('select auth.authenticate('''')')),
 ('token: NULL', '28000', pg_temp.try('select auth.authenticate(NULL)')),
 ('token: four segments', '28000', pg_temp.try('select auth.authenticate(''a.b.c.d'')')),
 ('token: duplicate sub member', '28000', pg_temp.try(format('select auth.authenticate(%L)',
     pg_temp.sign('{"alg":"HS256","kid":"k1"}', format('{"sub":"%s","sub":"%s","aud":"authenticated","exp":4102444800}', :'bob_id', :'alice_id'))))),
 ('token: duplicate alg in header', '28000', pg_temp.try(format('select auth.authenticate(%L)',
     pg_temp.sign('{"alg":"HS256","alg":"none","kid":"k1"}', format('{"sub":"%s","aud":"authenticated","exp":4102444800}', :'alice_id'))))),
 ('token: no exp', '28000', pg_temp.try(format('select auth.authenticate(%L)',
     pg_temp.sign('{"alg":"HS256","kid":"k1"}', format('{"sub":"%s","aud":"authenticated"}', :'alice_id'))))),
 ('token: exp as a string', '28000', pg_temp.try(format('select auth.authenticate(%L)',
     pg_temp.sign('{"alg":"HS256","kid":"k1"}', format('{"sub":"%s","aud":"authenticated","exp":"4102444800"}', :'alice_id'))))),
 ('token: HS512 header on an HS256 key', '28000', pg_temp.try(format('select auth.authenticate(%L)',
     pg_temp.sign('{"alg":"HS512","kid":"k1"}', format('{"sub":"%s","aud":"authenticated","exp":4102444800}', :'alice_id')))));

-- Identity attacks.
insert into attack values
 ('identity: SET health_rls.identity', '42501', pg_temp.try(format('set local health_rls.identity = %L', format('{"sub":"%s"}', :'bob_id')))),
 ('identity: set_config(health_rls.identity)', '42501', pg_temp.try(format('select set_config(''health_rls.identity'', %L, true)', format('{"sub":"%s"}', :'bob_id')))),
 ('identity: turn on trust_request_claims', '42501', pg_temp.try('set local health_rls.trust_request_claims = on')),
 ('identity: loosen jwt_audience', '42501', pg_temp.try('set local health_rls.jwt_audience = ''''')),
 ('internal: health_rls._realtime_send', '42501', pg_temp.try(format('select health_rls._realtime_send(%L, ''x'', ''INSERT'', ''id'', ''{}'')', :'bob_id'))),
 ('internal: health_rls.channel_for', '42501', pg_temp.try(format('select health_rls.channel_for(%L)', :'bob_id'))),
 ('internal: health_rls._invalidate_key_cache', '42501', pg_temp.try('select health_rls._invalidate_key_cache()')),
 ('internal: health_rls._random_secret', '42501', pg_temp.try('select health_rls._random_secret()')),
 ('internal: auth.add_key', '42501', pg_temp.try('select auth.add_key(''{"kty":"oct","alg":"HS256","k":"aGVhbHRoX3JscyByZWdyZXNzaW9uIHNlY3JldCwgMzIrIGJ5dGVzIGxvbmchIQ"}'')')),
 ('internal: auth.revoke_key', '42501', pg_temp.try('select auth.revoke_key(''k1'')')),
 ('read: auth.keys', '42501', pg_temp.try('select * from auth.keys')),
 ('read: auth.users', '42501', pg_temp.try('select * from auth.users')),
 ('read: auth.sessions', '42501', pg_temp.try('select * from auth.sessions')),
 ('read: the channel secret', '42501', pg_temp.try('select * from health_rls.realtime_secret'));

-- Spoofed request claims (trust mode off) make nobody.
select set_config('request.jwt.claims', format('{"sub":"%s","role":"service_role"}', :'bob_id'), true) is not null as spoof_claims;
select set_config('request.jwt.claim.sub', :'bob_id', true) is not null as spoof_sub;
select set_config('request.jwt.claim.role', 'service_role', true) is not null as spoof_role;
insert into attack values
 ('identity: spoofed request.jwt.claims/claim.sub ignored', 'nobody', coalesce(auth.uid()::text, 'nobody')),
 ('identity: spoofed role claim ignored', 'no role', coalesce(auth.role(), 'no role'));

-- RLS attacks, as alice (42501 for writes refused by policy, counts for reads/updates).
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;
insert into attack values
 ('rls: read bob''s row', '0', (select count(*)::text from victims where user_id = :'bob_id')),
 ('rls: insert a row owned by bob', '42501', pg_temp.try(format('insert into victims (user_id, secret) values (%L, ''planted'')', :'bob_id'))),
 ('rls: give my row to bob', '42501', pg_temp.try(format('update victims set user_id = %L', :'bob_id'))),
 ('rls: my own rows', '1', (select count(*)::text from victims)),
 ('rls: definer-rights view owned by the table owner leaks nothing', '0', (select count(*)::text from victims_view)),
 ('rls: security definer function owned by the table owner leaks nothing', '0', (select victims_count()::text));
with u as (update victims set secret = 'overwritten' where user_id = :'bob_id' returning 1)
insert into attack select 'rls: update bob''s row', '0', count(*)::text from u;
with d as (delete from victims where user_id = :'bob_id' returning 1)
insert into attack select 'rls: delete bob''s row', '0', count(*)::text from d;
-- COPY as the app role goes through RLS too: only alice's row comes out (query and table form).
\copy (select secret from victims order by id) to stdout
\copy victims (secret) to stdout
reset role;
set local role table_owner;
insert into attack select 'rls: table owner (FORCE, no identity) sees nothing', '0', count(*)::text from victims;
reset role;
-- Without FORCE the (non-superuser) owner bypasses RLS — the audit says so.
set local role plain_owner;
insert into attack select 'rls: owner of an unforced table bypasses RLS (audited)', '2', count(*)::text from unforced;
reset role;
insert into attack select 'rls: audit flags the unforced table', 'rls_not_forced', string_agg(lint, ',') from health_rls.audit() where object = 'public.unforced';

-- search_path hijack: an attacker schema with its own keys table and uid() first on the path.
create schema evil;
create table evil.keys (kid text, kty text, alg text, jwk jsonb, public_jwk jsonb, created_at timestamptz, revoked_at timestamptz);
insert into evil.keys values ('k1', 'oct', 'HS256', '{"kty":"oct","kid":"k1","alg":"HS256","k":"ZXZpbCBrZXkgZXZpbCBrZXkgZXZpbCBrZXkgZXZpbCBrZXkh"}', '{}', now(), null);
create function evil.uid() returns uuid language sql as $$ select '22222222-2222-4222-8222-222222222222'::uuid $$;
grant usage on schema evil to public;
grant select on evil.keys to public;
set local search_path = evil, auth, public;
set local role api_user;
insert into attack values
 ('search_path: token signed with the attacker''s key', '28000', pg_temp.try(format('select auth.authenticate(%L)',
     translate(pg_temp.b64url(convert_to('{"alg":"HS256","kid":"k1"}', 'utf8')) || '.' || pg_temp.b64url(convert_to(format('{"sub":"%s","aud":"authenticated","exp":4102444800}', :'bob_id'), 'utf8')) || '.' ||
       pg_temp.b64url(pg_temp.hmac(convert_to(pg_temp.b64url(convert_to('{"alg":"HS256","kid":"k1"}', 'utf8')) || '.' || pg_temp.b64url(convert_to(format('{"sub":"%s","aud":"authenticated","exp":4102444800}', :'bob_id'), 'utf8')), 'utf8'),
                           convert_to('evil key evil key evil key evil key!', 'utf8'), 'sha256')), '', ''))));
set local role authenticated;
select auth.authenticate(:'alice') is not null as alice;
insert into attack values
 ('search_path: policies still call auth.uid(), not evil.uid()', '1', (select count(*)::text from public.victims));
reset role;
reset search_path;

-- Generator attacks: identifiers are data, never SQL.
create table "x""; drop table victims; --" (user_id uuid);
insert into attack values
 ('generator: injection-shaped table name', 'ok', (select case when count(*) = 6 then 'ok' end from health_rls.enable_owner_rls('"x""; drop table victims; --"'))),
 ('generator: injection-shaped owner column', '42703', pg_temp.try('select health_rls.enable_owner_rls(''victims'', ''user_id"; drop table victims; --'')')),
 ('generator: victims table survived', '2', (select count(*)::text from victims));

select name, expected, got, case when got = expected or got like expected || ': %' then 'defended' else 'NOT DEFENDED' end as verdict
  from attack order by name;
select count(*) as cases, count(*) filter (where got = expected or got like expected || ': %') as defended from attack;
rollback;

-- Identity never outlives its transaction (also when pooled: tests/pooling.rs).
begin;
\i fixtures/setup.sql
commit;
begin; select auth.authenticate(:'alice') is not null as ok; commit;
select auth.uid() is null as "identity: gone after COMMIT";
begin; select auth.authenticate(:'alice') is not null as ok; rollback;
select auth.uid() is null as "identity: gone after ROLLBACK";
begin; savepoint a; select auth.authenticate(:'alice') is not null as ok; rollback to savepoint a;
select auth.uid() is null as "identity: gone after savepoint rollback"; rollback;
drop extension health_rls; drop role api_user; drop role anon, authenticated, service_role;
