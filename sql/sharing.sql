-- Sharing with consent (docs/sharing.md): an owner lets a grantee read chosen kinds of samples
-- in a time window until an expiry; every grantee read is logged for the owner. Both tables are
-- written only by health.share / revoke_share / shared_samples (SECURITY DEFINER).
CREATE TABLE health.shares (
    id          uuid PRIMARY KEY,
    owner_id    uuid NOT NULL,
    grantee_id  uuid NOT NULL CHECK (grantee_id <> owner_id),
    kinds       text[] NOT NULL CHECK (cardinality(kinds) > 0),
    data_from   timestamptz,
    data_until  timestamptz,
    expires_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CHECK (data_from <= data_until)
);
CREATE INDEX shares_owner_id_idx ON health.shares (owner_id);
CREATE INDEX shares_grantee_id_idx ON health.shares (grantee_id);
REVOKE ALL ON health.shares FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('health.shares', '');

CREATE TABLE health.access_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    owner_id    uuid NOT NULL,
    grantee_id  uuid NOT NULL,
    share_ids   uuid[] NOT NULL,
    kinds       text[] NOT NULL,
    row_count   integer NOT NULL
);
CREATE INDEX access_log_owner_id_at_idx ON health.access_log (owner_id, at DESC);
REVOKE ALL ON health.access_log FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('health.access_log', '');
SELECT pg_catalog.pg_extension_config_dump('health.access_log_id_seq', '');

-- Readable through RLS too: an owner sees the shares they gave, a grantee those they received
-- (and the access log of their own data), nobody anything else; nobody writes them directly.
ALTER TABLE health.shares ENABLE ROW LEVEL SECURITY;
ALTER TABLE health.shares FORCE ROW LEVEL SECURITY;
CREATE POLICY shares_owner_or_grantee ON health.shares FOR SELECT TO authenticated
    USING ((SELECT auth.uid()) = owner_id OR (SELECT auth.uid()) = grantee_id);
GRANT SELECT ON health.shares TO authenticated;
ALTER TABLE health.access_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE health.access_log FORCE ROW LEVEL SECURITY;
CREATE POLICY access_log_owner ON health.access_log FOR SELECT TO authenticated
    USING ((SELECT auth.uid()) = owner_id);
GRANT SELECT ON health.access_log TO authenticated;
