-- health_rls 0.2.0 -> 0.3.0, run by ALTER EXTENSION health_rls UPDATE.
-- Every schema change of 0.3.0 lands here; tests/lifecycle/upgrade.sh checks that a 0.2.0 (and a
-- 0.1.0, through 0.2.0) database updated with this script has exactly the schema of a fresh 0.3.0
-- install.
\echo Use "ALTER EXTENSION health_rls UPDATE" to load this file. \quit

-- Sign out on every other device: every session of the current user but the current one.
CREATE FUNCTION auth."sign_out_others"() RETURNS void
STRICT VOLATILE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'sign_out_others_wrapper';

-- The registry of managed tables: the statements of sql/registry.sql ------------------------------
CREATE TABLE health_rls.managed_tables (
    relid            regclass PRIMARY KEY,
    metric_table     boolean NOT NULL DEFAULT false,  -- made by health.create_metric_table
    owner_column     name,                            -- owner-only RLS on this column (NULL: none)
    owner_roles      name[],                          -- the roles its owner policies are for
    owner_commands   text[],                          -- the commands they cover (select, insert, update, delete)
    realtime_column  name,                            -- realtime announces to this column's user (NULL: off)
    realtime_payload text CHECK (realtime_payload IN ('keys', 'row')),
    registered_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((owner_column IS NULL) = (owner_roles IS NULL) AND (owner_column IS NULL) = (owner_commands IS NULL)),
    CHECK ((realtime_column IS NULL) = (realtime_payload IS NULL))
);
-- Dumped with the database, except the rows of the extension's own tables (CREATE EXTENSION
-- writes those again on restore).
SELECT pg_catalog.pg_extension_config_dump('health_rls.managed_tables',
    $$WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) relid AND d.deptype OPERATOR(pg_catalog.=) 'e')$$);

-- The functions that write it run as their caller (a DBA, or a table owner making its own table
-- owner-only): anyone may record and read entries of the tables they own, nobody others'.
-- Superusers (and the SECURITY DEFINER readers running as the extension owner) see every entry.
ALTER TABLE health_rls.managed_tables ENABLE ROW LEVEL SECURITY;
CREATE POLICY managed_tables_of_their_owner ON health_rls.managed_tables FOR ALL TO PUBLIC
    USING (pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) relid), 'USAGE'))
    WITH CHECK (pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) relid), 'USAGE'));
REVOKE ALL ON health_rls.managed_tables FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON health_rls.managed_tables TO PUBLIC;

-- A dropped table leaves no entry behind (its oid could one day name another table).
CREATE FUNCTION health_rls._forget_dropped_tables() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    DELETE FROM health_rls.managed_tables
     WHERE relid::pg_catalog.oid IN (SELECT o.objid FROM pg_catalog.pg_event_trigger_dropped_objects() o
                                      WHERE o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass);
END $$;
REVOKE ALL ON FUNCTION health_rls._forget_dropped_tables() FROM PUBLIC;
CREATE EVENT TRIGGER health_rls_forget_dropped_tables ON sql_drop
    EXECUTE FUNCTION health_rls._forget_dropped_tables();

-- Filled from what 0.2.0 left: the last time the extension infers what it manages. Metric tables
-- by the comment create_metric_table gave them, owner-only RLS by the generator's policies (the
-- owner column from the policy's expression, the roles from the policy), realtime by its
-- triggers (the owner column and payload are the trigger's first two arguments).
INSERT INTO health_rls.managed_tables (relid, metric_table)
SELECT c.oid::pg_catalog.regclass, true
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_description d ON d.objoid OPERATOR(pg_catalog.=) c.oid
   AND d.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objsubid OPERATOR(pg_catalog.=) 0
 WHERE c.relkind OPERATOR(pg_catalog.=) 'r'
   AND d.description OPERATOR(pg_catalog.~~) 'Health samples (health.create_metric_table)%';

INSERT INTO health_rls.managed_tables AS m (relid, owner_column, owner_roles, owner_commands)
SELECT DISTINCT ON (p.polrelid) p.polrelid::pg_catalog.regclass, a.attname,
       ARRAY(SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) ANY (p.polroles) ORDER BY r.rolname),
       ARRAY(SELECT c FROM pg_catalog.unnest('{select,insert,update,delete}'::pg_catalog.text[]) WITH ORDINALITY AS k(c, n)
              WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_policy q WHERE q.polrelid OPERATOR(pg_catalog.=) p.polrelid
                               AND q.polname OPERATOR(pg_catalog.=) ('health_rls_owner_' OPERATOR(pg_catalog.||) c))
              ORDER BY n)
  FROM pg_catalog.pg_policy p
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) p.polrelid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
   AND pg_catalog.quote_ident(a.attname) OPERATOR(pg_catalog.=)
       pg_catalog.substring(pg_catalog.pg_get_expr(coalesce(p.polqual, p.polwithcheck), p.polrelid), '\) = (.+)\)$')
 WHERE p.polname OPERATOR(pg_catalog.~~) 'health\_rls\_owner\_%'
 ORDER BY p.polrelid, p.polname
ON CONFLICT (relid) DO UPDATE SET owner_column = EXCLUDED.owner_column, owner_roles = EXCLUDED.owner_roles,
                                  owner_commands = EXCLUDED.owner_commands;

INSERT INTO health_rls.managed_tables AS m (relid, realtime_column, realtime_payload)
SELECT DISTINCT ON (t.tgrelid) t.tgrelid::pg_catalog.regclass,
       pg_catalog.split_part(pg_catalog.encode(t.tgargs, 'escape'), '\000', 1),
       pg_catalog.split_part(pg_catalog.encode(t.tgargs, 'escape'), '\000', 2)
  FROM pg_catalog.pg_trigger t
  JOIN pg_catalog.pg_proc f ON f.oid OPERATOR(pg_catalog.=) t.tgfoid
 WHERE t.tgname OPERATOR(pg_catalog.~~) 'health\_rls\_realtime\_%' AND f.proname OPERATOR(pg_catalog.=) 'realtime_notify'
 ORDER BY t.tgrelid, t.tgname
ON CONFLICT (relid) DO UPDATE SET realtime_column = EXCLUDED.realtime_column, realtime_payload = EXCLUDED.realtime_payload;

-- health_rls.audit() reads the registry too (managed_owner_rls_missing, managed_realtime_missing): the
-- function of sql/audit.sql.
CREATE OR REPLACE FUNCTION health_rls.audit()
RETURNS TABLE (lint text, level text, object text, detail text, remedy text)
LANGUAGE sql STABLE SET search_path = pg_catalog AS $audit$
WITH tables AS (
    SELECT c.oid, c.relname, n.nspname, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
           format('%I.%I', n.nspname, c.relname) AS ident
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'auth', 'health_rls')
       AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
),
owner_cols AS (
    SELECT t.oid, t.ident, a.attname, a.attnum, a.attnotnull
      FROM tables t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE (a.atttypid = 'uuid'::regtype AND a.attname IN ('user_id', 'owner_id'))
        OR EXISTS (SELECT 1 FROM pg_constraint k
                    WHERE k.conrelid = t.oid AND k.contype = 'f' AND k.conkey = ARRAY[a.attnum]
                      AND k.confrelid = to_regclass('auth.users'))
),
policies AS (
    SELECT t.oid, t.ident, t.rls, p.polname, p.polpermissive,
           CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                         WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS cmd,
           CASE WHEN p.polroles = '{0}' THEN ARRAY['public']
                ELSE ARRAY(SELECT rolname::text FROM pg_roles WHERE oid = ANY (p.polroles) ORDER BY 1) END AS roles,
           pg_get_expr(p.polqual, p.polrelid) AS qual,
           pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
      FROM tables t JOIN pg_policy p ON p.polrelid = t.oid
),
per_row_calls AS (
    -- A call not wrapped in a sub-select is evaluated once per row instead of once (InitPlan).
    SELECT pol.*, regexp_replace(coalesce(pol.qual, '') || ' ' || coalesce(pol.with_check, ''),
                  'SELECT (auth\.(uid|jwt|role|email)\(\)|current_setting\()', '', 'g') AS unwrapped
      FROM policies pol
)
SELECT 'owner_column_rls_disabled', 'ERROR', o.ident,
       format('table has owner column %I but row level security is off: every role with table privileges reads every row', o.attname),
       format('SELECT health_rls.enable_owner_rls(%L::regclass, %L);', o.ident, o.attname)
  FROM owner_cols o JOIN tables t ON t.oid = o.oid WHERE NOT t.rls
UNION ALL
SELECT 'rls_enabled_no_policy', 'INFO', t.ident,
       'row level security is on but the table has no policy: nobody but superusers (and the owner, unless FORCEd) sees any row',
       format('SELECT health_rls.enable_owner_rls(%L::regclass);', t.ident)
  FROM tables t WHERE t.rls AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = t.oid)
UNION ALL
SELECT DISTINCT 'policy_exists_rls_disabled', 'ERROR', p.ident,
       'the table has policies but row level security is off: the policies are ignored',
       format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY; ALTER TABLE %s FORCE ROW LEVEL SECURITY;', p.ident, p.ident)
  FROM policies p WHERE NOT p.rls
UNION ALL
SELECT 'auth_rls_initplan', 'WARN', format('%s policy %I', r.ident, r.polname),
       'auth.uid()/auth.jwt()/current_setting() is called per row; wrap it in a sub-select so it runs once',
       CASE WHEN r.unwrapped ~ 'current_setting\(' THEN
            format('-- replace current_setting(''request.jwt…'') with (select auth.uid()) / (select auth.jwt()): ALTER POLICY %I ON %s USING (…);', r.polname, r.ident)
       ELSE format('ALTER POLICY %I ON %s%s%s;', r.polname, r.ident,
              CASE WHEN r.qual IS NOT NULL THEN ' USING (' || regexp_replace(r.qual, '(auth\.(uid|jwt|role|email)\(\))', '(select \1)', 'g') || ')' ELSE '' END,
              CASE WHEN r.with_check IS NOT NULL THEN ' WITH CHECK (' || regexp_replace(r.with_check, '(auth\.(uid|jwt|role|email)\(\))', '(select \1)', 'g') || ')' ELSE '' END) END
  FROM per_row_calls r WHERE r.unwrapped ~ '(auth\.(uid|jwt|role|email)\(\)|current_setting\()'
UNION ALL
SELECT 'multiple_permissive_policies', 'WARN', format('%s role %s %s', m.ident, m.role, m.cmd),
       format('%s permissive policies (%s) apply to the same role and command: each is evaluated for every row and any one of them grants access',
              count(*), string_agg(quote_ident(m.polname), ', ' ORDER BY m.polname)),
       format('-- merge into one policy: DROP POLICY … ON %s; then CREATE POLICY … USING (a OR b);', m.ident)
  FROM (SELECT p.ident, p.polname, r AS role, c AS cmd
          FROM policies p, unnest(p.roles) r,
               unnest(CASE WHEN p.cmd = 'ALL' THEN ARRAY['SELECT','INSERT','UPDATE','DELETE'] ELSE ARRAY[p.cmd] END) c
         WHERE p.polpermissive) m
 GROUP BY m.ident, m.role, m.cmd HAVING count(*) > 1
UNION ALL
SELECT 'policy_always_true', 'ERROR', format('%s policy %I', p.ident, p.polname),
       'the policy''s condition is always true: it grants every row to its roles',
       format('DROP POLICY %I ON %s; SELECT health_rls.enable_owner_rls(%L::regclass);', p.polname, p.ident, p.ident)
  FROM policies p WHERE p.qual = 'true' OR p.with_check = 'true'
UNION ALL
SELECT 'policy_to_public', 'WARN', format('%s policy %I', p.ident, p.polname),
       'the policy applies TO public, i.e. to every role including anon',
       format('ALTER POLICY %I ON %s TO authenticated;', p.polname, p.ident)
  FROM policies p WHERE p.roles = ARRAY['public']
UNION ALL
SELECT DISTINCT 'realtime_without_rls', 'ERROR', t.ident,
       'realtime notifications are on but row level security is off: clients told about a row can read every row',
       format('SELECT health_rls.enable_owner_rls(%L::regclass);', t.ident)
  FROM tables t JOIN pg_trigger g ON g.tgrelid = t.oid JOIN pg_proc f ON f.oid = g.tgfoid
 WHERE f.proname = 'realtime_notify' AND f.pronamespace = 'health_rls'::regnamespace AND NOT t.rls
UNION ALL
SELECT 'rls_not_forced', 'WARN', t.ident,
       'row level security is not FORCEd: the table owner (often the API''s role) bypasses every policy',
       format('ALTER TABLE %s FORCE ROW LEVEL SECURITY;', t.ident)
  FROM tables t WHERE t.rls AND NOT t.forced
UNION ALL
SELECT 'owner_column_unindexed', 'WARN', format('%s.%I', o.ident, o.attname),
       'no index leads with the owner column: every owner-filtered query scans the table',
       format('CREATE INDEX ON %s (%I);', o.ident, o.attname)
  FROM owner_cols o
 WHERE NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = o.oid AND i.indkey[0] = o.attnum)
UNION ALL
SELECT 'owner_column_nullable', 'WARN', format('%s.%I', o.ident, o.attname),
       'the owner column accepts NULL: such rows belong to nobody and no owner policy ever shows them',
       format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL;', o.ident, o.attname)
  FROM owner_cols o WHERE NOT o.attnotnull
UNION ALL
-- What the registry of managed tables says the extension set up, and is no longer there.
SELECT 'managed_owner_rls_missing', 'ERROR', m.relid::text,
       format('health_rls.managed_tables records owner-only RLS on column %I, but %s', m.owner_column,
              CASE WHEN a.attnum IS NULL THEN 'that column no longer exists (renamed or dropped)'
                   WHEN NOT c.relrowsecurity THEN 'row level security is off'
                   ELSE 'the generator''s policies are gone' END),
       CASE WHEN a.attnum IS NULL
            THEN format('SELECT health_rls.enable_owner_rls(%L::regclass, ''<owner column>'', %L, %L);', m.relid::text, m.owner_commands, m.owner_roles)
            ELSE format('SELECT health_rls.enable_owner_rls(%L::regclass, %L, %L, %L);', m.relid::text, m.owner_column, m.owner_commands, m.owner_roles) END
  FROM health_rls.managed_tables m JOIN pg_class c ON c.oid = m.relid
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = m.owner_column AND a.attnum > 0 AND NOT a.attisdropped
 WHERE m.owner_column IS NOT NULL
   AND (a.attnum IS NULL OR NOT c.relrowsecurity
        OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname LIKE 'health\_rls\_owner\_%'))
UNION ALL
SELECT 'managed_realtime_missing', 'WARN', m.relid::text,
       'health_rls.managed_tables records realtime, but the table has no realtime trigger: its users hear nothing of it',
       format('SELECT health_rls.enable_realtime(%L::regclass, %L, %L);', m.relid::text, m.realtime_column, m.realtime_payload)
  FROM health_rls.managed_tables m JOIN pg_class c ON c.oid = m.relid
 WHERE m.realtime_column IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM pg_trigger g JOIN pg_proc f ON f.oid = g.tgfoid
                    WHERE g.tgrelid = c.oid AND f.proname = 'realtime_notify' AND f.pronamespace = 'health_rls'::regnamespace)
ORDER BY 1, 3
$audit$;

-- What a gateway whose login role can only SET ROLE reads: live sessions, realtime owner columns.
-- Which of the given sessions are live: found, not revoked, and their account exists (the rule
-- auth.authenticate applies). What a realtime gateway asks every half second for the streams it
-- holds, so its login role needs no right on auth.sessions. A session id is known only to the
-- holder of a token that carries it; the answer says nothing else about the session.
CREATE FUNCTION auth.live_sessions(session_ids uuid[]) RETURNS SETOF uuid
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.id FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id
     WHERE s.id = ANY (session_ids) AND s.revoked_at IS NULL
$$;

-- The column whose user realtime announces a table's changes to (NULL: not registered, or
-- realtime off). A gateway reads it to give deletes their owner; what is announced where is no
-- secret (the table's realtime triggers show it to anyone who can read the catalog).
CREATE FUNCTION health_rls.realtime_column(tbl regclass) RETURNS name
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT m.realtime_column FROM health_rls.managed_tables m WHERE m.relid = tbl
$$;

-- Trends: the caller's samples of one kind in local-time buckets (src/health/summary.rs), and a
-- grantee's summary of an owner's shared samples, logged like shared_samples.
CREATE FUNCTION health."summary"(
	"kind" TEXT,
	"bucket" TEXT DEFAULT 'day',
	"from" timestamp with time zone DEFAULT NULL,
	"until" timestamp with time zone DEFAULT NULL,
	"tz" TEXT DEFAULT 'UTC'
) RETURNS TABLE (
	"bucket_start" timestamp with time zone,
	"n" bigint,
	"min" double precision,
	"avg" double precision,
	"max" double precision,
	"sum" double precision
)
VOLATILE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'summary_wrapper';

-- The hourly rollups health.summary reads and keeps (src/health/rollup.rs): sql/summary.sql.
CREATE TABLE health_rls.summary_hours (
    user_id uuid NOT NULL,
    relid   oid NOT NULL,
    kind    text NOT NULL,
    hour    timestamptz NOT NULL,
    n       bigint NOT NULL CHECK (n > 0),
    min     double precision NOT NULL,
    max     double precision NOT NULL,
    sum     double precision NOT NULL,
    PRIMARY KEY (user_id, relid, kind, hour)
);
REVOKE ALL ON health_rls.summary_hours FROM PUBLIC;
CREATE TABLE health_rls.summary_state (
    user_id     uuid NOT NULL,
    relid       oid NOT NULL,
    kind        text NOT NULL,
    through_seq bigint NOT NULL,   -- every change of the user's feed up to this seq is in the rollups
    feed        text NOT NULL,     -- the table's name, file and realtime triggers they were built against
    built_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, relid, kind)
);
REVOKE ALL ON health_rls.summary_state FROM PUBLIC;


CREATE FUNCTION health."shared_summary"(
	"owner" uuid,
	"kind" TEXT,
	"bucket" TEXT DEFAULT 'day',
	"from" timestamp with time zone DEFAULT NULL,
	"until" timestamp with time zone DEFAULT NULL,
	"tz" TEXT DEFAULT 'UTC'
) RETURNS TABLE (
	"bucket_start" timestamp with time zone,
	"n" bigint,
	"min" double precision,
	"avg" double precision,
	"max" double precision,
	"sum" double precision
)
VOLATILE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'shared_summary_wrapper';

-- Of an owner's changed rows, those the caller may see under its shares: what a gateway reading
-- the change feed by logical replication asks as the grantee before it hands a grantee a change.
CREATE FUNCTION health."shared_keys"(
	"owner" uuid,
	"keys" jsonb
) RETURNS jsonb
VOLATILE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'shared_keys_wrapper';

-- How a page shows each kind (sql/health_catalog.sql): the unit as people write it and its decimals.
ALTER TABLE health.metric_kinds ADD COLUMN display_unit text CHECK (display_unit <> '');
ALTER TABLE health.metric_kinds ADD COLUMN display_precision smallint CHECK (display_precision BETWEEN 0 AND 6);

-- How people read the seeded kinds (docs/dashboard.md, "Units"): the unit in their words, and no
-- more decimals than the measurement carries.
UPDATE health.metric_kinds k SET display_unit = v.display_unit, display_precision = v.display_precision
  FROM (VALUES ('heart_rate', 'bpm', 0), ('resting_heart_rate', 'bpm', 0),
               ('heart_rate_variability_sdnn', 'ms', 0), ('steps', 'steps', 0), ('distance', 'm', 0),
               ('active_energy', 'kcal', 0), ('oxygen_saturation', '%', 0),
               ('respiratory_rate', 'breaths/min', 0), ('body_temperature', '°C', 1),
               ('body_weight', 'kg', 1), ('body_height', 'cm', 0), ('body_mass_index', 'kg/m²', 1),
               ('blood_pressure_systolic', 'mmHg', 0), ('blood_pressure_diastolic', 'mmHg', 0),
               ('blood_glucose', 'mmol/L', 1), ('sleep_duration', 'h', 1))
       AS v (code, display_unit, display_precision)
 WHERE k.code = v.code AND k.seeded;

-- Sharing by email (src/health/invitations.rs): sql/invitations.sql and its functions.
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

CREATE FUNCTION health."invitations"() RETURNS TABLE (
	"id" uuid,
	"direction" TEXT,
	"email" TEXT,
	"kinds" TEXT[],
	"data_from" timestamp with time zone,
	"data_until" timestamp with time zone,
	"expires_at" timestamp with time zone,
	"created_at" timestamp with time zone,
	"valid_until" timestamp with time zone,
	"status" TEXT,
	"share_id" uuid
)
STRICT STABLE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'invitations_wrapper';

CREATE FUNCTION health."revoke_invitation"(
	"invitation" uuid
) RETURNS void
VOLATILE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'revoke_invitation_wrapper';

CREATE FUNCTION health."invite"(
	"email" TEXT,
	"kinds" TEXT[],
	"data_from" timestamp with time zone DEFAULT NULL,
	"data_until" timestamp with time zone DEFAULT NULL,
	"expires_at" timestamp with time zone DEFAULT NULL
) RETURNS uuid
VOLATILE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'invite_wrapper';

CREATE FUNCTION health."accept_invitation"(
	"invitation" uuid
) RETURNS uuid
VOLATILE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'accept_invitation_wrapper';

CREATE FUNCTION health."decline_invitation"(
	"invitation" uuid
) RETURNS void
VOLATILE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'decline_invitation_wrapper';


-- The change feed writes one row per statement and user (src/realtime/changelog.rs): its n rows
-- take seqs seq … seq + n - 1 and keys holds the array of their keys when n > 1. The rows 0.2.0
-- wrote are one change each. (Filled by an UPDATE rather than ADD COLUMN … DEFAULT 1, which
-- would leave the table with a stored "missing value" a fresh install does not have.)
ALTER TABLE health_rls.changes ADD COLUMN n integer;
UPDATE health_rls.changes SET n = 1;
ALTER TABLE health_rls.changes ALTER COLUMN n SET DEFAULT 1, ALTER COLUMN n SET NOT NULL;
-- No CHECK constraints on the feed (sql/realtime.sql): each is parsed and planned again for every
-- statement that inserts a row, ~5 µs of every realtime write.
ALTER TABLE health_rls.changes DROP CONSTRAINT changes_op_check;
