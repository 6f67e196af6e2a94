-- health_rls 0.2.0 -> 0.3.0, run by ALTER EXTENSION health_rls UPDATE.
-- Every schema change of 0.3.0 lands here; tests/lifecycle/upgrade.sh checks that a 0.2.0 (and a
-- 0.1.0, through 0.2.0) database updated with this script has exactly the schema of a fresh 0.3.0
-- install.
\echo Use "ALTER EXTENSION health_rls UPDATE" to load this file. \quit

-- The registry of managed tables: the statements of sql/registry.sql ------------------------------
CREATE TABLE health_rls.managed_tables (
    relid            regclass PRIMARY KEY,
    metric_table     boolean NOT NULL DEFAULT false,  -- made by health.create_metric_table
    owner_column     name,                            -- owner-only RLS on this column (NULL: none)
    owner_roles      name[],                          -- the roles its owner policies are for
    realtime_column  name,                            -- realtime announces to this column's user (NULL: off)
    realtime_payload text CHECK (realtime_payload IN ('keys', 'row')),
    registered_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((owner_column IS NULL) = (owner_roles IS NULL)),
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

INSERT INTO health_rls.managed_tables AS m (relid, owner_column, owner_roles)
SELECT DISTINCT ON (p.polrelid) p.polrelid::pg_catalog.regclass, a.attname,
       ARRAY(SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) ANY (p.polroles) ORDER BY r.rolname)
  FROM pg_catalog.pg_policy p
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) p.polrelid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
   AND pg_catalog.quote_ident(a.attname) OPERATOR(pg_catalog.=)
       pg_catalog.substring(pg_catalog.pg_get_expr(coalesce(p.polqual, p.polwithcheck), p.polrelid), '\) = (.+)\)$')
 WHERE p.polname OPERATOR(pg_catalog.~~) 'health\_rls\_owner\_%'
 ORDER BY p.polrelid, p.polname
ON CONFLICT (relid) DO UPDATE SET owner_column = EXCLUDED.owner_column, owner_roles = EXCLUDED.owner_roles;

INSERT INTO health_rls.managed_tables AS m (relid, realtime_column, realtime_payload)
SELECT DISTINCT ON (t.tgrelid) t.tgrelid::pg_catalog.regclass,
       pg_catalog.split_part(pg_catalog.encode(t.tgargs, 'escape'), '\000', 1),
       pg_catalog.split_part(pg_catalog.encode(t.tgargs, 'escape'), '\000', 2)
  FROM pg_catalog.pg_trigger t
  JOIN pg_catalog.pg_proc f ON f.oid OPERATOR(pg_catalog.=) t.tgfoid
 WHERE t.tgname OPERATOR(pg_catalog.~~) 'health\_rls\_realtime\_%' AND f.proname OPERATOR(pg_catalog.=) 'realtime_notify'
 ORDER BY t.tgrelid, t.tgname
ON CONFLICT (relid) DO UPDATE SET realtime_column = EXCLUDED.realtime_column, realtime_payload = EXCLUDED.realtime_payload;
