-- Accounts: sign-up, sign-in, and two users who each see only their own rows
SET client_min_messages = warning;
CREATE TABLE public.journal (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL DEFAULT auth.uid(),
    note text NOT NULL
);
SELECT health_rls.enable_owner_rls('public.journal') AS statement;
SET ROLE anon;
SELECT auth.sign_up('ada@example.com', 'analytical engine') AS ada_id \gset
SELECT auth.sign_up('grace@example.com', 'compiler pioneer') AS grace_id \gset
-- The app keeps its token; here a session setting holds it so the transcript does not print it.
SELECT set_config('demo.ada_token', auth.sign_in('ada@example.com', 'analytical engine'), false) IS NOT NULL AS ada_signed_in;
SELECT set_config('demo.grace_token', auth.sign_in('grace@example.com', 'compiler pioneer'), false) IS NOT NULL AS grace_signed_in;
RESET ROLE;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT auth.authenticate(current_setting('demo.ada_token')) AS ada;
INSERT INTO journal (note) VALUES ('resting heart rate looks good');
COMMIT;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT auth.authenticate(current_setting('demo.grace_token')) AS grace;
INSERT INTO journal (note) VALUES ('slept 7 hours');
SELECT user_id = :'grace_id' AS mine, note FROM journal;
COMMIT;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT auth.authenticate(current_setting('demo.ada_token')) AS ada;
SELECT user_id = :'ada_id' AS mine, note FROM journal;
SELECT auth.sign_out();
COMMIT;
-- After sign-out the same token is refused:
\set ON_ERROR_STOP 0
SELECT auth.authenticate(current_setting('demo.ada_token'));
