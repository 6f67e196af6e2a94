-- health_rls 0.1.0 -> 0.2.0, run by ALTER EXTENSION health_rls UPDATE.
-- Every schema change of 0.2.0 lands here; tests/lifecycle/upgrade.sh checks that a 0.1.0
-- database updated with this script has exactly the schema of a fresh 0.2.0 install.
\echo Use "ALTER EXTENSION health_rls UPDATE" to load this file. \quit

-- enable_realtime takes the key columns to announce (default: the primary key), so realtime no
-- longer knows metric tables. Triggers created by 0.1.0 keep their arguments and keep working.
DROP FUNCTION health_rls.enable_realtime(regclass, text, text);
CREATE FUNCTION health_rls.enable_realtime(
    "tbl" regclass,
    "owner_column" TEXT DEFAULT 'user_id',
    "payload" TEXT DEFAULT 'keys',
    "key_columns" TEXT[] DEFAULT NULL
) RETURNS SETOF TEXT
VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', 'enable_realtime_wrapper';

-- health.rejected_samples gets its owner policies from the generator, like every owner table.
DROP POLICY rejected_samples_owner_select ON health.rejected_samples;
DROP POLICY rejected_samples_owner_insert ON health.rejected_samples;
SELECT pg_catalog.count(*) FROM health_rls.enable_owner_rls('health.rejected_samples', 'user_id', '{select,insert}', '{authenticated}');
