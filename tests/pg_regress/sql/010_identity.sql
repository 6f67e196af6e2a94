-- auth.uid()/jwt()/role()/email() and auth.authenticate as a low-privilege API role.
begin;
\i fixtures/setup.sql
set local role api_user;
set local role authenticated;
-- Nobody authenticated yet.
select auth.uid() is null as no_uid, auth.jwt() is null as no_jwt;
select auth.authenticate(:'alice') = :'alice_id'::uuid as authenticated_alice;
select auth.uid(), auth.role(), auth.email(), auth.jwt() ->> 'aud' as aud;
-- PostgREST-style SQL keeps working.
select current_setting('request.jwt.claims')::jsonb ->> 'sub' as request_sub;
-- Switching to bob replaces the identity.
select auth.authenticate(:'bob') = auth.uid() as bob_now;
-- The key material is out of reach of application roles.
select pg_temp.try($$select kid from auth.keys$$);
rollback;

-- Identity ends with the transaction: COMMIT ...
begin;
\i fixtures/setup.sql
commit;
begin;
set local role api_user;
select auth.authenticate(:'alice') is not null as ok;
commit;
select auth.uid() is null as gone_after_commit;
-- ... and ROLLBACK ...
begin;
select auth.authenticate(:'alice') is not null as ok;
rollback;
select auth.uid() is null as gone_after_rollback;
-- ... and a rolled-back savepoint.
begin;
savepoint s1;
select auth.authenticate(:'alice') is not null as ok;
rollback to savepoint s1;
select auth.uid() is null as gone_after_savepoint_rollback;
rollback;

-- Spoofing: with trust mode off, request.jwt.claims set by any client is ignored.
begin;
set local role api_user;
select set_config('request.jwt.claims', '{"sub":"22222222-2222-4222-8222-222222222222","role":"authenticated"}', true) is not null as spoofed;
select set_config('request.jwt.claim.sub', '22222222-2222-4222-8222-222222222222', true) is not null as spoofed_sub;
select auth.uid() is null as spoof_ignored;
-- The hidden identity setting cannot be set by an application role.
select pg_temp.try($$set local health_rls.identity = '{"sub":"22222222-2222-4222-8222-222222222222"}'$$);
select auth.uid() is null as still_nobody;
rollback;

-- Trust mode (superuser setting) reads what a trusted API sets.
begin;
set local health_rls.trust_request_claims = on;
select set_config('request.jwt.claims', '{"sub":"22222222-2222-4222-8222-222222222222","role":"authenticated","email":"bob@example.com"}', true) is not null as api_sets;
set local role api_user;
select auth.uid(), auth.email();
-- ... and an application role cannot change the setting.
select pg_temp.try($$set local health_rls.trust_request_claims = off$$);
rollback;

-- Rejected tokens: SQLSTATE 28000, the reason named, the token never echoed.
begin;
set local role api_user;
select pg_temp.try(format('select auth.authenticate(%L)', :'expired')) as expired;
reset role;
select pg_temp.try(format('select auth.authenticate(%L)', :'not_yet')) as not_yet;
select pg_temp.try(format('select auth.authenticate(%L)', :'wrong_aud')) as wrong_aud;
select pg_temp.try(format('select auth.authenticate(%L)', :'not_uuid')) as not_uuid;
select pg_temp.try(format('select auth.authenticate(%L)', :'unknown_kid')) as unknown_kid;
select pg_temp.try($$select auth.authenticate('not.a.token')$$) as malformed;
select pg_temp.try($$select auth.authenticate(null)$$) as null_token;
rollback;
-- Clean up what the committed set-up created.
drop extension health_rls;
drop role api_user;
drop role anon, authenticated, service_role;
