-- The tables the extension manages (docs/sql-reference.md, "health_rls.managed_tables"): written by
-- health.create_metric_table, health_rls.enable_owner_rls / disable_owner_rls and
-- enable_realtime / disable_realtime; read by export, FHIR, sharing and erasure. Recorded by the
-- table's oid (a regclass: a rename or a move to another schema keeps the entry, and pg_dump writes
-- it as the table's name, so a restore points it at the restored table), never inferred from a
-- comment or from policy text.
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

-- The column whose user realtime announces a table's changes to (NULL: not registered, or
-- realtime off). A gateway reads it to give deletes their owner; what is announced where is no
-- secret (the table's realtime triggers show it to anyone who can read the catalog).
CREATE FUNCTION health_rls.realtime_column(tbl regclass) RETURNS name
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT m.realtime_column FROM health_rls.managed_tables m WHERE m.relid = tbl
$$;
