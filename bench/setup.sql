-- Bench set-up: extension, roles, key k1, 1,000 users with HS256 tokens (signed with pgcrypto).
\set ON_ERROR_STOP on
CREATE EXTENSION health_rls;
CREATE EXTENSION pgcrypto;
SELECT auth.create_roles();
SELECT auth.add_key('{"kty":"oct","kid":"k1","alg":"HS256","k":"aGVhbHRoX3JscyByZWdyZXNzaW9uIHNlY3JldCwgMzIrIGJ5dGVzIGxvbmchIQ"}');
CREATE FUNCTION b64url(b bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT translate(encode(b, 'base64'), E'+/=\n', '-_') $$;
CREATE FUNCTION hs256(payload text) RETURNS text LANGUAGE sql AS $$
  SELECT h || '.' || p || '.' || b64url(hmac(convert_to(h || '.' || p, 'utf8'),
                                             convert_to('health_rls regression secret, 32+ bytes long!!', 'utf8'), 'sha256'))
    FROM (SELECT b64url(convert_to('{"alg":"HS256","typ":"JWT","kid":"k1"}', 'utf8')) AS h,
                 b64url(convert_to(payload, 'utf8')) AS p) s $$;
CREATE TABLE bench_users AS
SELECT u, gen_random_uuid() AS user_id FROM generate_series(1, 1000) u;
ALTER TABLE bench_users ADD PRIMARY KEY (u);
ALTER TABLE bench_users ADD COLUMN token text;
UPDATE bench_users SET token = hs256(format('{"sub":"%s","role":"authenticated","aud":"authenticated","exp":4102444800}', user_id));
GRANT SELECT ON bench_users TO authenticated;
