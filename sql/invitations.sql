-- Invitations to share (docs/sharing.md, "Sharing by email"): an owner offers a share to an email
-- address; whoever signs in with that address may accept it, which makes the share. Written and
-- read only through health.invite, health.invitations, health.accept_invitation,
-- health.decline_invitation and health.revoke_invitation (SECURITY DEFINER): no grants.
CREATE TABLE health.invitations (
    id          uuid PRIMARY KEY,
    owner_id    uuid NOT NULL,
    email       text NOT NULL CHECK (email = lower(email)),   -- the invitee's address, lower case
    kinds       text[] NOT NULL CHECK (cardinality(kinds) > 0),
    data_from   timestamptz,
    data_until  timestamptz,
    expires_at  timestamptz,                                  -- of the share it becomes
    created_at  timestamptz NOT NULL DEFAULT now(),
    valid_until timestamptz NOT NULL,                         -- it can be accepted until then
    accepted_at timestamptz,
    declined_at timestamptz,
    revoked_at  timestamptz,
    share_id    uuid,                                         -- the share it became
    CHECK (data_from <= data_until),
    CHECK ((accepted_at IS NULL) = (share_id IS NULL))
);
CREATE INDEX invitations_owner_id_idx ON health.invitations (owner_id);
CREATE INDEX invitations_email_idx ON health.invitations (email);
REVOKE ALL ON health.invitations FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('health.invitations', '');
