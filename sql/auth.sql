-- Identity tables (docs/sql-reference.md, "auth"). Only the extension owner and superusers may touch them:
-- no grants to PUBLIC, and the functions that need them are SECURITY DEFINER.

CREATE TABLE auth.keys (
    kid         text PRIMARY KEY,
    kty         text NOT NULL CHECK (kty IN ('oct', 'RSA', 'EC', 'OKP')),
    alg         text NOT NULL,
    jwk         jsonb NOT NULL,          -- as given, private members included
    public_jwk  jsonb NOT NULL,          -- publishable half (empty for oct)
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at  timestamptz,
    -- standby (published, not signing yet), current (signs new tokens), previous (verifies only),
    -- revoked (neither). Exactly one current key signs.
    status      text NOT NULL CHECK (status IN ('standby', 'current', 'previous', 'revoked'))
);
CREATE UNIQUE INDEX keys_one_current ON auth.keys ((true)) WHERE status = 'current';
REVOKE ALL ON auth.keys FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('auth.keys', '');

CREATE TABLE auth.users (
    id                 uuid PRIMARY KEY,
    email              text NOT NULL,
    encrypted_password text NOT NULL,    -- argon2id PHC string
    role               text NOT NULL DEFAULT 'authenticated',
    created_at         timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at    timestamptz
);
CREATE UNIQUE INDEX users_email_lower_key ON auth.users (lower(email));
REVOKE ALL ON auth.users FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('auth.users', '');

CREATE TABLE auth.sessions (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    refreshed_at timestamptz                 -- last refresh_session (NULL: never); idle timeout counts from it
);
CREATE INDEX sessions_user_id_idx ON auth.sessions (user_id);
REVOKE ALL ON auth.sessions FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('auth.sessions', '');

-- Refresh tokens: only their SHA-256 is stored. Single use: a used token has used_at; each use
-- issues a child (parent_id), so a session's tokens form a chain.
CREATE TABLE auth.refresh_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES auth.sessions (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    parent_id   bigint REFERENCES auth.refresh_tokens (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_session_id_idx ON auth.refresh_tokens (session_id);
REVOKE ALL ON auth.refresh_tokens FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('auth.refresh_tokens', '');
SELECT pg_catalog.pg_extension_config_dump('auth.refresh_tokens_id_seq', '');

CREATE FUNCTION auth.create_roles() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION auth.create_roles() FROM PUBLIC;

-- Which of the given sessions are live: found, not revoked, and their account exists (the rule
-- auth.authenticate applies). What a realtime gateway asks every half second for the streams it
-- holds, so its login role needs no right on auth.sessions. A session id is known only to the
-- holder of a token that carries it; the answer says nothing else about the session.
CREATE FUNCTION auth.live_sessions(session_ids uuid[]) RETURNS SETOF uuid
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.id FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id
     WHERE s.id = ANY (session_ids) AND s.revoked_at IS NULL
$$;
