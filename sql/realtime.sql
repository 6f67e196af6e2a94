-- Realtime (docs/realtime.md): the channel secret and the statement-level trigger function.

-- No application role may read the secret: it is what makes channel names unguessable.
-- Dumped with the data so restored databases keep their channel names; the oldest row wins,
-- so the row a restore's CREATE EXTENSION adds first is ignored.
CREATE TABLE health_rls.realtime_secret (
    secret     bytea NOT NULL CHECK (length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON health_rls.realtime_secret FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('health_rls.realtime_secret', '');
INSERT INTO health_rls.realtime_secret (secret) VALUES (health_rls._random_secret());
REVOKE ALL ON FUNCTION health_rls._random_secret() FROM PUBLIC;
REVOKE ALL ON FUNCTION health_rls.channel_for(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION health_rls._realtime_send(uuid, text, text, text, text[]) FROM PUBLIC;

-- The change feed (src/realtime/changelog.rs): one counter row per user, whose lock orders a
-- user's concurrent writers by commit, and the changes themselves, readable by their owner.
-- Only the realtime trigger writes them (as the extension owner), so op and n carry no CHECK
-- constraints: Postgres parses and plans a table's CHECK expressions again for every statement
-- that inserts into it, ~5 µs each on every realtime write (bench part 12).
CREATE TABLE health_rls.change_counters (
    user_id        uuid PRIMARY KEY,
    last_seq       bigint NOT NULL DEFAULT 0,
    pruned_through bigint NOT NULL DEFAULT 0   -- changes up to this seq were removed by retention
);
REVOKE ALL ON health_rls.change_counters FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('health_rls.change_counters', '');
CREATE TABLE health_rls.changes (
    user_id uuid NOT NULL,
    seq     bigint NOT NULL,
    tbl     text NOT NULL,
    op      text NOT NULL,           -- INSERT, UPDATE or DELETE
    keys    jsonb NOT NULL,          -- what the notification carried for the row (a tombstone for DELETE);
                                     -- for n > 1, the array of the n rows' keys
    at      timestamptz NOT NULL DEFAULT now(),
    n       integer NOT NULL DEFAULT 1,  -- the statement's rows of this user (> 0): seqs seq … seq + n - 1
    PRIMARY KEY (user_id, seq)
);
CREATE INDEX changes_at_idx ON health_rls.changes (at);
REVOKE ALL ON health_rls.changes FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('health_rls.changes', '');
-- Its owner policy is made in finalize.sql, once auth.uid() exists.
REVOKE ALL ON FUNCTION health_rls.prune_changes() FROM PUBLIC;

-- The trigger function (Rust, src/realtime/transition.rs) reads transition tables only; it runs
-- as the extension owner so that a backend's first channel can read the secret. It runs no SQL
-- built from its arguments (they name columns, looked up in the table's descriptor), so it needs
-- no search_path of its own. Table owners who are not superusers need EXECUTE to create it.
ALTER FUNCTION health_rls.realtime_notify() SECURITY DEFINER;
REVOKE ALL ON FUNCTION health_rls.realtime_notify() FROM PUBLIC;
