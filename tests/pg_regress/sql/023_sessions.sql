-- Sessions that last: start_session / refresh_session (GoTrue-shaped), key statuses, rotation,
-- asymmetric signing and the JWKS, as the API role. Reuse detection commits a revocation from a
-- background worker, which a rolled-back scenario cannot show: tests/sessions.rs covers it with
-- committed transactions.
begin;
\i fixtures/setup.sql
set local timezone = 'UTC';
select auth.sign_up('ada@example.com', 'analytical engine') is not null as signed_up;
-- The fixture's oct key k1 is current; an EC P-256 key with private members added as standby
-- is published but does not sign yet; rotate_key makes it current and k1 previous.
select kid, kty, status from auth.keys order by created_at;
select auth.add_key('{"kty": "EC", "crv": "P-256", "kid": "ec1", "x": "5GjEncDHvyoDp3tj4REdGyFWpEwsIvaxzpR6zxq_MmE", "y": "N8t0S0mWGzdV8jnx-0plHHHbVzXEvcr1T-X0BQ2SZ34", "d": "HSw7Sllod4aVpLPC0eDx4tPEtaaXiHlqW0w9Lh8OHSw"}', 'standby') as standby_kid;
select pg_temp.try($$select auth.add_key('{"kty": "OKP", "crv": "Ed25519", "kid": "ed-bad", "x": "5GjEncDHvyoDp3tj4REdGyFWpEwsIvaxzpR6zxq_MmE", "d": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}')$$) as mismatched_halves;
select pg_temp.try($$select auth.add_key('{"kty": "EC", "crv": "P-256", "kid": "pub-only", "x": "5GjEncDHvyoDp3tj4REdGyFWpEwsIvaxzpR6zxq_MmE", "y": "N8t0S0mWGzdV8jnx-0plHHHbVzXEvcr1T-X0BQ2SZ34"}', 'current')$$) as public_key_cannot_be_current;
select auth.rotate_key() as now_current;
select kid, status from auth.keys order by created_at;

-- As the API role: start a session; the response has GoTrue's shape; the access token is ES256.
set local role api_user;
select auth.start_session('ada@example.com', 'analytical engine') as s \gset
select jsonb_object_keys(:'s'::jsonb) as member order by 1;
select (:'s'::jsonb)->>'token_type' as token_type, ((:'s'::jsonb)->>'expires_in')::int as expires_in,
       length((:'s'::jsonb)->>'refresh_token') >= 43 as refresh_token_has_256_bits,
       (select convert_from(decode(rpad(h, (length(h) + 3) / 4 * 4, '='), 'base64'), 'utf8')::jsonb->>'alg'
          from translate(split_part((:'s'::jsonb)->>'access_token', '.', 1), '-_', '+/') h) as alg;
select pg_temp.try($$select auth.start_session('ada@example.com', 'wrong password')$$) as wrong_password,
       pg_temp.try($$select auth.start_session('nobody@example.com', 'wrong password')$$) as unknown_email;
set local role authenticated;
select auth.authenticate((:'s'::jsonb)->>'access_token') = ((:'s'::jsonb)->'user'->>'id')::uuid as access_token_works;
reset role;
set local role api_user;
-- A refresh returns a new pair; the old refresh token is now used up.
select auth.refresh_session((:'s'::jsonb)->>'refresh_token') as r \gset
select (:'r'::jsonb)->>'refresh_token' <> (:'s'::jsonb)->>'refresh_token' as rotated,
       (:'r'::jsonb)->'user' = (:'s'::jsonb)->'user' as same_user;
-- Only hashes are stored: no refresh token text in the table (checked as superuser).
reset role;
select count(*) filter (where token_hash = sha256(convert_to((:'r'::jsonb)->>'refresh_token', 'utf8'))) as stored_as_hash,
       count(*) filter (where encode(token_hash, 'escape') like '%' || ((:'r'::jsonb)->>'refresh_token') || '%') as stored_as_text
  from auth.refresh_tokens;
set local role api_user;
select pg_temp.try($$select auth.refresh_session('not-a-refresh-token')$$) as unknown_token,
       pg_temp.try($$select auth.refresh_session('')$$) as empty_token;

-- Expired and idle sessions (the clock moved by editing the session, as superuser).
reset role;
update auth.sessions set created_at = now() - interval '31 days' where id = (select session_id from auth.refresh_tokens where token_hash = sha256(convert_to((:'r'::jsonb)->>'refresh_token', 'utf8')));
set local role api_user;
select pg_temp.try(format('select auth.refresh_session(%L)', (:'r'::jsonb)->>'refresh_token')) as after_lifetime;
reset role;
update auth.sessions set created_at = now(), refreshed_at = now() - interval '2 hours' where id = (select session_id from auth.refresh_tokens where token_hash = sha256(convert_to((:'r'::jsonb)->>'refresh_token', 'utf8')));
set local health_rls.session_idle_timeout = 3600;
set local role api_user;
select pg_temp.try(format('select auth.refresh_session(%L)', (:'r'::jsonb)->>'refresh_token')) as after_idle_timeout;
reset role;
reset health_rls.session_idle_timeout;
set local role api_user;

-- sign_out_others ends every session of the user but the current one (refresh tokens included).
select auth.start_session('ada@example.com', 'analytical engine') as phone \gset
select auth.start_session('ada@example.com', 'analytical engine') as laptop \gset
set local role authenticated;
select auth.authenticate((:'laptop'::jsonb)->>'access_token') is not null as ada_on_the_laptop;
select auth.sign_out_others();
select pg_temp.try(format('select auth.authenticate(%L)', (:'phone'::jsonb)->>'access_token')) as phone_access,
       pg_temp.try(format('select auth.refresh_session(%L)', (:'phone'::jsonb)->>'refresh_token')) as phone_refresh;
select pg_temp.try(format('select auth.authenticate(%L)', (:'laptop'::jsonb)->>'access_token')) as laptop_access,
       pg_temp.try(format('select auth.refresh_session(%L) is not null', (:'laptop'::jsonb)->>'refresh_token')) as laptop_refresh;
-- A token without a session of ours (here: the fixture's, signed with k1, no session_id).
select auth.authenticate(:'alice') is not null as alice;
select pg_temp.try('select auth.sign_out_others()') as without_a_session_of_ours;
set local role api_user;

-- sign_out_everywhere ends every session of the user, refresh tokens included.
select auth.start_session('ada@example.com', 'analytical engine') as s2 \gset
set local role authenticated;
select auth.authenticate((:'s2'::jsonb)->>'access_token') is not null as ada;
select auth.sign_out_everywhere();
select pg_temp.try(format('select auth.refresh_session(%L)', (:'s2'::jsonb)->>'refresh_token')) as after_sign_out_everywhere;
select pg_temp.try(format('select auth.authenticate(%L)', (:'s2'::jsonb)->>'access_token')) as access_after_sign_out_everywhere;

-- The JWKS: public halves of asymmetric keys only, readable by the API roles.
reset role;
set local role anon;
select jsonb_array_length(auth.jwks()->'keys') as published_keys,
       (select bool_and(k ? 'x' and k->>'use' = 'sig' and not (k ?| array['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'])) from jsonb_array_elements(auth.jwks()->'keys') k) as public_only,
       (select count(*) from jsonb_array_elements(auth.jwks()->'keys') k where k->>'kty' = 'oct') as oct_keys;
-- No application role reads private key material, nor manages keys.
select pg_temp.try($$select jwk from auth.keys$$) as keys_table;
select pg_temp.try($$select auth.rotate_key()$$) as rotate;
select pg_temp.try($$select auth.add_key('{"kty":"oct","alg":"HS256","k":"aGVhbHRoX3JscyByZWdyZXNzaW9uIHNlY3JldCwgMzIrIGJ5dGVzIGxvbmchIQ"}')$$) as add;
reset role;

-- Tokens signed by a previous key still verify; by a revoked key they do not.
set local role authenticated;
select auth.authenticate(:'alice') is not null as k1_token_while_previous;
reset role;
select auth.revoke_key('k1');
set local role authenticated;
select pg_temp.try(format('select auth.authenticate(%L)', :'alice')) as k1_token_after_revocation;
rollback;
