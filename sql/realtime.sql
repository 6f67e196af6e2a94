-- Realtime (DESIGN.md §5): the channel secret and the statement-level trigger function.

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

-- Trigger arguments: owner column, payload mode ('keys' | 'row'), then the key columns (the
-- first names the row). They are only ever used as quoted identifiers, never as SQL.
CREATE FUNCTION health_rls.realtime_notify() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    owner_col text := TG_ARGV[0];
    mode      text := TG_ARGV[1];
    id_col    text := TG_ARGV[2];
    item      text;
    src       text;
    i         int;
BEGIN
    -- The standard table (health.create_metric_table) in keys mode: static SQL, so PL/pgSQL
    -- plans it once per table and keeps the plan, instead of planning an EXECUTE per statement.
    IF mode = 'keys' AND owner_col = 'user_id' AND TG_NARGS = 5
       AND TG_ARGV[2] = 'id' AND TG_ARGV[3] = 'kind' AND TG_ARGV[4] = 'recorded_at' THEN
        src := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
        IF TG_OP = 'INSERT' THEN
            PERFORM health_rls._realtime_send(r.user_id, src, TG_OP, 'id',
                        array_agg(jsonb_build_object('id', r.id, 'kind', r.kind, 'recorded_at', r.recorded_at)::text))
               FROM new_rows r GROUP BY r.user_id;
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM health_rls._realtime_send(r.user_id, src, TG_OP, 'id',
                        array_agg(jsonb_build_object('id', r.id, 'kind', r.kind, 'recorded_at', r.recorded_at)::text))
               FROM old_rows r GROUP BY r.user_id;
        ELSE
            PERFORM health_rls._realtime_send(s.o, src, TG_OP, 'id', array_agg(s.item))
               FROM (SELECT r.user_id AS o, jsonb_build_object('id', r.id, 'kind', r.kind, 'recorded_at', r.recorded_at)::text AS item
                       FROM new_rows r
                     UNION ALL
                     SELECT r.user_id, jsonb_build_object('id', r.id, 'kind', r.kind, 'recorded_at', r.recorded_at)::text
                       FROM old_rows r
                      WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = r.id AND n.user_id IS NOT DISTINCT FROM r.user_id)) s
              GROUP BY s.o;
        END IF;
        RETURN NULL;
    END IF;
    IF mode = 'row' THEN
        item := 'to_jsonb(r)::text';
    ELSE
        item := 'jsonb_build_object(';
        FOR i IN 2 .. TG_NARGS - 1 LOOP
            item := item || CASE WHEN i > 2 THEN ', ' ELSE '' END || format('%L, r.%I', TG_ARGV[i], TG_ARGV[i]);
        END LOOP;
        item := item || ')::text';
    END IF;
    IF TG_OP = 'INSERT' THEN
        src := format('SELECT r.%I AS o, %s AS item FROM new_rows r', owner_col, item);
    ELSIF TG_OP = 'DELETE' THEN
        src := format('SELECT r.%I AS o, %s AS item FROM old_rows r', owner_col, item);
    ELSE
        -- New owners hear the new rows; an old owner whose row moved away hears the old row.
        src := format('SELECT r.%1$I AS o, %2$s AS item FROM new_rows r
                       UNION ALL
                       SELECT r.%1$I, %2$s FROM old_rows r
                        WHERE NOT EXISTS (SELECT 1 FROM new_rows n
                                           WHERE n.%3$I = r.%3$I AND n.%1$I IS NOT DISTINCT FROM r.%1$I)',
                      owner_col, item, id_col);
    END IF;
    EXECUTE format('SELECT count(*) FROM (SELECT health_rls._realtime_send(o, $1, $2, $3, array_agg(item)) FROM (%s) s GROUP BY o) sent', src)
        USING format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME), TG_OP, id_col;
    RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION health_rls.realtime_notify() FROM PUBLIC;
