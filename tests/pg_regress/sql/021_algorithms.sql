-- Every JWS algorithm, verified against tokens made by an independent implementation (PyJWT,
-- tests/vectors/make_vectors.py), and the classic attacks refused with 28000.
begin;
\i fixtures/setup.sql
\i fixtures/vectors.sql
set local role api_user;
select alg, auth.authenticate(token) = '33333333-3333-4333-8333-333333333333' as accepted
  from (values ('HS256', :'good_hs256'), ('HS384', :'good_hs384'), ('HS512', :'good_hs512'),
               ('RS256', :'good_rs256'), ('RS384', :'good_rs384'), ('RS512', :'good_rs512'),
               ('PS256', :'good_ps256'), ('PS384', :'good_ps384'), ('PS512', :'good_ps512'),
               ('ES256', :'good_es256'), ('ES384', :'good_es384'), ('EdDSA', :'good_eddsa')) v(alg, token);
reset role;
select kty, alg, jsonb_object_keys(public_jwk) as public_member from auth.keys where kid = 'v-rs256' order by 3;
rollback;

begin;
\i fixtures/setup.sql
\i fixtures/vectors.sql
set local role api_user;
select pg_temp.try(format('select auth.authenticate(%L)', :'confusion')) as confusion;
select pg_temp.try(format('select auth.authenticate(%L)', :'alg_none')) as alg_none;
select pg_temp.try(format('select auth.authenticate(%L)', :'wrong_key')) as wrong_key;
select pg_temp.try(format('select auth.authenticate(%L)', :'es_curve_mismatch')) as es_curve_mismatch;
select pg_temp.try(format('select auth.authenticate(%L)', :'tampered')) as tampered;
select pg_temp.try(format('select auth.authenticate(%L)', :'stripped')) as stripped;
select pg_temp.try(format('select auth.authenticate(%L)', :'header_tampered')) as header_tampered;
reset role;
-- Keys that do not fit their algorithm are refused at add_key (22023).
select pg_temp.try($$select auth.add_key('{"kty":"oct","kid":"short","alg":"HS256","k":"c2hvcnQ"}')$$);
select pg_temp.try($$select auth.add_key('{"kty":"oct","kid":"rs-oct","alg":"RS256","k":"aGVhbHRoX3JscyByZWdyZXNzaW9uIHNlY3JldCwgMzIrIGJ5dGVzIGxvbmchIQ"}')$$);
select pg_temp.try($$select auth.add_key('{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","alg":"ES384"}')$$);
select pg_temp.try($$select auth.add_key('"not an object"')$$);
select pg_temp.try($$select auth.add_key('{"kty":"oct","kid":"k1","alg":"HS256","k":"aGVhbHRoX3JscyByZWdyZXNzaW9uIHNlY3JldCwgMzIrIGJ5dGVzIGxvbmchIQ"}')$$);
rollback;
