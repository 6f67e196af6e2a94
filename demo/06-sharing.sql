-- Sharing with consent: Ada shares this week's heart rate with Grace, and sees that she looked
SELECT set_config('demo.ada_id', (SELECT id::text FROM auth.users WHERE email = 'ada@example.com'), false) IS NOT NULL AS ada_known,
       set_config('demo.grace_id', (SELECT id::text FROM auth.users WHERE email = 'grace@example.com'), false) IS NOT NULL AS grace_known;
SELECT set_config('demo.ada', auth.start_session('ada@example.com', 'analytical engine')->>'access_token', false) IS NOT NULL AS ada_signed_in,
       set_config('demo.grace', auth.start_session('grace@example.com', 'compiler pioneer')->>'access_token', false) IS NOT NULL AS grace_signed_in;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT auth.authenticate(current_setting('demo.ada')) IS NOT NULL AS ada;
SELECT count(*) AS written FROM health.ingest('health_metrics', jsonb_build_array(
  jsonb_build_object('kind', 'heart_rate', 'value', 66, 'unit', '/min', 'recorded_at', now() - interval '2 days'),
  jsonb_build_object('kind', 'heart_rate', 'value', 71, 'unit', '/min', 'recorded_at', now() - interval '1 day'),
  jsonb_build_object('kind', 'body_weight', 'value', 61.5, 'unit', 'kg', 'recorded_at', now() - interval '1 day'),
  jsonb_build_object('kind', 'heart_rate', 'value', 58, 'unit', '/min', 'recorded_at', now() - interval '20 days')));
-- Heart rate only, recorded this week, until the end of the month.
SELECT set_config('demo.share', health.share(current_setting('demo.grace_id')::uuid,
       '{heart_rate}', date_trunc('week', now()), NULL, date_trunc('month', now()) + interval '1 month')::text, false) IS NOT NULL AS shared;
COMMIT;
-- Grace reads exactly that: no weight, nothing older than the week.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT auth.authenticate(current_setting('demo.grace')) IS NOT NULL AS grace;
SELECT kind, value, unit FROM health.shared_samples(current_setting('demo.ada_id')::uuid);
-- The metric table itself still shows her nothing of Ada's.
SELECT count(*) AS direct_read_of_adas_rows FROM health_metrics WHERE user_id = current_setting('demo.ada_id')::uuid;
COMMIT;
-- Ada sees who read what, and revokes.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT auth.authenticate(current_setting('demo.ada')) IS NOT NULL AS ada;
SELECT grantee_email, kinds, row_count FROM health.my_access_log();
SELECT health.revoke_share(current_setting('demo.share')::uuid);
COMMIT;
-- Grace reads nothing any more.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT auth.authenticate(current_setting('demo.grace')) IS NOT NULL AS grace;
\set ON_ERROR_STOP 0
SELECT count(*) FROM health.shared_samples(current_setting('demo.ada_id')::uuid);
\set ON_ERROR_STOP 1
ROLLBACK;
