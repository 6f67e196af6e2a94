-- auth.sign_up / sign_in / sign_out as the API's roles; argon2id; sessions; key privileges.
begin;
\i fixtures/setup.sql
set local role anon;
-- sign_out needs an identity.
select pg_temp.try($$select auth.sign_out()$$);
select auth.sign_up('Carol@Example.com', 'correct horse battery') as carol_id \gset
-- The same email again (any case): a random id comes back, nothing is created, nothing leaks.
select auth.sign_up('carol@example.com', 'another password') <> :'carol_id' as different_id;
select auth.sign_in('carol@example.com', 'correct horse battery') as carol_token \gset
reset role;
select count(*) as carol_accounts, min(encrypted_password) like '$argon2id$v=19$m=19456,t=2,p=1$%' as argon2id_phc
  from auth.users where lower(email) = 'carol@example.com';
select count(*) as sessions from auth.sessions where user_id = :'carol_id';

-- The token from sign_in is an ordinary verified identity.
set local role authenticated;
select auth.authenticate(:'carol_token') = :'carol_id' as carol_authenticated;
select auth.email(), auth.role(), auth.jwt() ->> 'aud' as aud, auth.jwt() ? 'session_id' as has_session;

-- Unknown email and wrong password: the same SQLSTATE and the same message.
select pg_temp.try($$select auth.sign_in('nobody@example.com', 'correct horse battery')$$) as unknown_email,
       pg_temp.try($$select auth.sign_in('carol@example.com', 'wrong horse battery')$$) as wrong_password;

-- Bad arguments: 22023.
select pg_temp.try($$select auth.sign_up('not-an-email', 'correct horse battery')$$);
select pg_temp.try($$select auth.sign_up('dave@example.com', 'short')$$);
select pg_temp.try($$select auth.sign_in(null, 'x')$$);

-- sign_out revokes the session: the same token is refused afterwards (28000).
select auth.authenticate(:'carol_token') is not null as ok;
select auth.sign_out();
select pg_temp.try(format('select auth.authenticate(%L)', :'carol_token')) as after_sign_out;

-- Key material and accounts are out of reach of application roles.
select current_user as app_role;
select pg_temp.try($$select * from auth.users$$);
select pg_temp.try($$select * from auth.sessions$$);
select pg_temp.try($$select * from auth.keys$$);
select pg_temp.try($$select auth.add_key('{"kty":"oct","kid":"evil","alg":"HS256","k":"aGVhbHRoX3JscyByZWdyZXNzaW9uIHNlY3JldCwgMzIrIGJ5dGVzIGxvbmchIQ"}')$$);
select pg_temp.try($$select auth.revoke_key('k1')$$);
reset role;

-- Without an HMAC key there is nothing to sign with: 55000.
select auth.revoke_key('k1');
select pg_temp.try($$select auth.sign_in('carol@example.com', 'correct horse battery')$$);
rollback;
