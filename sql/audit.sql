-- health_rls.audit(): the RLS lints of docs/sql-reference.md. Splinter's RLS checks, plus the ones
-- splinter lacks (RLS not FORCEd, owner column without index, nullable owner column).
-- An "owner column" is a uuid column named user_id or owner_id, or any column with a
-- foreign key to auth.users(id).
CREATE FUNCTION health_rls.audit()
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
