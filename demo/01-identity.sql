-- Identity: a verified JWT becomes auth.uid() for one transaction
CREATE EXTENSION health_rls;
SELECT auth.create_roles();
CREATE ROLE api LOGIN NOINHERIT;
GRANT authenticated TO api;
SELECT auth.add_key('{"kty":"oct","kid":"k1","alg":"HS256","k":"aGVhbHRoX3JscyByZWdyZXNzaW9uIHNlY3JldCwgMzIrIGJ5dGVzIGxvbmchIQ"}');
BEGIN;
SET LOCAL ROLE authenticated;
SELECT auth.uid() AS before_authenticate;
SELECT auth.authenticate('eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiIxMTExMTExMS0xMTExLTQxMTEtODExMS0xMTExMTExMTExMTEiLCJyb2xlIjoiYXV0aGVudGljYXRlZCIsImF1ZCI6ImF1dGhlbnRpY2F0ZWQiLCJlbWFpbCI6ImFsaWNlQGV4YW1wbGUuY29tIiwiZXhwIjo0MTAyNDQ0ODAwfQ.Da4Wn161a_DDXT_4tILZcy9O0UlLe9w2s6Y8dLYbbJM');
SELECT auth.uid(), auth.email(), auth.role();
COMMIT;
SELECT auth.uid() AS after_commit;
