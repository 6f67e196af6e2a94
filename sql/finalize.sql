-- Runs last: privileges on functions pgrx generated, triggers that call them.

REVOKE ALL ON FUNCTION auth.add_key(jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.rotate_key() FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.revoke_key(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION health_rls._invalidate_key_cache() FROM PUBLIC;

CREATE FUNCTION auth.keys_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    PERFORM health_rls._invalidate_key_cache();
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION auth.keys_changed() FROM PUBLIC;
CREATE TRIGGER keys_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON auth.keys
    FOR EACH STATEMENT EXECUTE FUNCTION auth.keys_changed();

-- sign_up/sign_in are for the API's anonymous role as well as signed-in users.
GRANT EXECUTE ON FUNCTION auth.sign_up(text, text), auth.sign_in(text, text), auth.sign_out() TO PUBLIC;

-- Run by ALTER EXTENSION UPDATE on the standard tables of earlier versions; not for applications.
REVOKE ALL ON FUNCTION health._upgrade_metric_table(regclass) FROM PUBLIC;

-- The change feed is readable by its owner (sql/realtime.sql made the table).
SELECT pg_catalog.count(*) FROM health_rls.enable_owner_rls('health_rls.changes', 'user_id', '{select}', '{authenticated}');

-- The identity functions are evaluated once per execution, not once per row, even in a policy
-- written without `(select ...)` around them (src/pg/initplan.rs).
REVOKE ALL ON FUNCTION health_rls._once_per_execution(internal) FROM PUBLIC;
ALTER FUNCTION auth.uid() SUPPORT health_rls._once_per_execution;
ALTER FUNCTION auth.jwt() SUPPORT health_rls._once_per_execution;
ALTER FUNCTION auth.role() SUPPORT health_rls._once_per_execution;
ALTER FUNCTION auth.email() SUPPORT health_rls._once_per_execution;
