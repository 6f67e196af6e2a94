-- Identity tables (docs/sql-reference.md, "auth"). Only the extension owner and superusers may touch them:
-- no grants to PUBLIC, and the functions that need them are SECURITY DEFINER.

CREATE TABLE auth.keys (
    kid         text PRIMARY KEY,
    kty         text NOT NULL CHECK (kty IN ('oct', 'RSA', 'EC', 'OKP')),
    alg         text NOT NULL,
    jwk         jsonb NOT NULL,          -- as given, private members included
    public_jwk  jsonb NOT NULL,          -- publishable half (empty for oct)
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at  timestamptz
);
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
    revoked_at  timestamptz
);
CREATE INDEX sessions_user_id_idx ON auth.sessions (user_id);
REVOKE ALL ON auth.sessions FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('auth.sessions', '');

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
