# Health metrics after pg_dump/pg_restore (sourced by run.sh, which provides check, q, q_err).
check "restore: metric kinds = 27 seeded + the DBA's kind, seed not duplicated" "28|1" \
    "$(q -d restored -c "SELECT count(*), count(*) FILTER (WHERE NOT seeded) FROM health.metric_kinds")"
check "restore: samples and rejected samples restored" "waist_circumference 81.28 cm|1" \
    "$(q -d restored -c "SELECT (SELECT string_agg(kind || ' ' || value || ' ' || unit, ',') FROM health_metrics), (SELECT count(*) FROM health.rejected_samples)")"
check "restore: the validation trigger still refuses an out-of-range value" "22003" \
    "$(q_err restored "INSERT INTO health_metrics (user_id, kind, value, unit, recorded_at) VALUES ('$ALICE', 'heart_rate', 500, '/min', now())")"
check "restore: the restored DBA kind validates and converts" "81.28" \
    "$(q -d restored -c "SELECT health.normalize('waist_circumference', 32, '[in_i]')")"
check "restore: a re-sent batch is all duplicate or rejected, nothing new" "duplicate:1,rejected:1|1|1" \
    "$(q -d restored -c "BEGIN; SET LOCAL ROLE authenticated; SELECT auth.authenticate('$ALICE_TOKEN') IS NOT NULL; SELECT (SELECT string_agg(status || ':' || n, ',' ORDER BY status) FROM (SELECT status, count(*) n FROM health.ingest('health_metrics', '[{\"kind\": \"waist_circumference\", \"value\": 32, \"unit\": \"[in_i]\", \"recorded_at\": \"2026-11-24T08:00:00Z\"}, {\"kind\": \"heart_rate\", \"value\": 500, \"unit\": \"/min\", \"recorded_at\": \"2026-11-24T08:00:00Z\"}]') GROUP BY status) s), (SELECT count(*) FROM health_metrics), (SELECT count(*) FROM health.rejected_samples); COMMIT;" | tail -1)"
aliases="SELECT count(*) FILTER (WHERE NOT seeded) || '|' || count(*) FILTER (WHERE seeded) FROM health.unit_aliases"
check "restore: the DBA's unit alias came back once, the seeded ones not duplicated" "$(q -d source -c "$aliases")" "$(q -d restored -c "$aliases")"
check "restore: the DBA's alias converts" "81.28" \
    "$(q -d restored -c "SELECT health.normalize('waist_circumference', 32, 'inches')")"
# The registry of managed tables is dumped by name (regclass) and points at the restored tables;
# the extension's own tables are written once, by CREATE EXTENSION.
registry="SELECT string_agg(relid::text || ':' || metric_table || ':' || coalesce(owner_column, '-') || ':' || coalesce(realtime_column, '-'), ',' ORDER BY relid::text) FROM health_rls.managed_tables"
check "restore: the registry of managed tables restored, pointing at the restored tables" "$(q -d source -c "$registry")" "$(q -d restored -c "$registry")"
check "restore: every registry entry names an existing table, none twice" "0|0" \
    "$(q -d restored -c "SELECT (SELECT count(*) FROM health_rls.managed_tables m WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = m.relid)), (SELECT count(*) - count(DISTINCT relid) FROM health_rls.managed_tables)")"
