-- Sessions that last: refresh tokens, reuse detection, an ES256 signing key and the JWKS
-- A new key is published as standby first (other services fetch the JWKS), then rotated in:
-- new tokens are signed ES256, tokens of the previous HS256 key still verify.
SELECT auth.add_key('{"kty": "EC", "crv": "P-256", "kid": "ec1", "x": "5GjEncDHvyoDp3tj4REdGyFWpEwsIvaxzpR6zxq_MmE", "y": "N8t0S0mWGzdV8jnx-0plHHHbVzXEvcr1T-X0BQ2SZ34", "d": "HSw7Sllod4aVpLPC0eDx4tPEtaaXiHlqW0w9Lh8OHSw"}', 'standby') AS standby_key;
SELECT auth.rotate_key() AS now_signing;
SELECT kid, kty, alg, status FROM auth.keys ORDER BY created_at;
-- What any service may fetch: public halves only.
SELECT jsonb_pretty(auth.jwks()) AS jwks;
SELECT auth.sign_up('hopper@example.com', 'cobol compiler') IS NOT NULL AS signed_up;
-- A session: GoTrue's token response (kept in a session setting, tokens shortened when shown).
SELECT set_config('demo.s', auth.start_session('hopper@example.com', 'cobol compiler')::text, false) IS NOT NULL AS started;
SELECT jsonb_pretty(current_setting('demo.s')::jsonb
       || jsonb_build_object('access_token', left(current_setting('demo.s')::jsonb->>'access_token', 20) || '…',
                             'refresh_token', left(current_setting('demo.s')::jsonb->>'refresh_token', 6) || '…')) AS response;
-- Weeks later the app refreshes instead of asking for the password: a new pair, the old refresh token used up.
SELECT set_config('demo.r', auth.refresh_session(current_setting('demo.s')::jsonb->>'refresh_token')::text, false) IS NOT NULL AS refreshed;
SELECT current_setting('demo.r')::jsonb->>'refresh_token' <> current_setting('demo.s')::jsonb->>'refresh_token' AS rotated;
-- Someone replays the used refresh token (outside the 10 s grace for a client's concurrent
-- retry; set to 0 here to show it at once): refused, and the whole session is revoked ...
SET health_rls.refresh_reuse_interval = 0;
\set ON_ERROR_STOP 0
SELECT auth.refresh_session(current_setting('demo.s')::jsonb->>'refresh_token');
-- ... so the legitimate holder's newer refresh token stops working too.
SELECT auth.refresh_session(current_setting('demo.r')::jsonb->>'refresh_token');
\set ON_ERROR_STOP 1
RESET health_rls.refresh_reuse_interval;
SELECT count(*) FILTER (WHERE revoked_at IS NOT NULL) AS revoked_sessions FROM auth.sessions
 WHERE user_id = (current_setting('demo.s')::jsonb->'user'->>'id')::uuid;
