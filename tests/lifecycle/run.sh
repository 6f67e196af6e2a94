#!/usr/bin/env bash
# The ordinary life of a database with health_rls: pg_dump/pg_restore into a fresh database,
# a streaming hot standby, and the ALTER EXTENSION UPDATE path. Real clusters, real roles.
set -uo pipefail
. "$(dirname "$0")/../../scripts/lib/common.sh"
. "$(dirname "$0")/lib.sh"
trap cleanup_clusters EXIT

cluster_start "wal_level=replica" "max_wal_senders=4" "hot_standby=on"
PRIMARY_PORT=$PGPORT

# A database that uses every feature.
q -d postgres -c "CREATE DATABASE source"
q -d source >/dev/null <<SQL
CREATE EXTENSION health_rls;
SELECT auth.create_roles();
SELECT auth.add_key('{"kty":"oct","kid":"k1","alg":"HS256","k":"$K"}');
SELECT auth.sign_up('carol@example.com', 'correct horse battery');
CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id uuid NOT NULL DEFAULT auth.uid(), body text);
SELECT count(*) FROM health_rls.enable_owner_rls('notes', commands => '{all}');
SELECT count(*) FROM health_rls.enable_realtime('notes');
INSERT INTO notes (user_id, body) VALUES ('$ALICE', 'alice 1'), ('$ALICE', 'alice 2'), ('$BOB', 'bob 1');
SQL
# Trends: alice's heart rate in a metric table, summarised once (which stores hourly rollups).
q -d source -c "SELECT health.create_metric_table('public.vitals')" >/dev/null
as_alice() { q -p "$1" -d "$2" -c "BEGIN; SET LOCAL ROLE authenticated; SELECT auth.authenticate('$ALICE_TOKEN') IS NOT NULL; $3; COMMIT;" | tail -1; }
as_alice "$PRIMARY_PORT" source "INSERT INTO vitals (kind, value, unit, recorded_at) SELECT 'heart_rate', 60 + g % 30, '/min', timestamptz '2026-06-01 00:00Z' + g * interval '10 minutes' FROM generate_series(0, 999) g" >/dev/null
# A day's summary and the GROUP BY a user would write, as one line each.
alice_days() { as_alice "$1" "$2" "SELECT string_agg(concat_ws(' ', bucket_start, n, min, round(avg::numeric, 9), max), ',' ORDER BY bucket_start) FROM health.summary('heart_rate', 'day', tz => 'Europe/Berlin')"; }
alice_group_by() { as_alice "$1" "$2" "SELECT string_agg(concat_ws(' ', d, n, lo, round(mean::numeric, 9), hi), ',' ORDER BY d) FROM (SELECT date_trunc('day', recorded_at, 'Europe/Berlin') AS d, count(*) AS n, min(value) AS lo, avg(value) AS mean, max(value) AS hi FROM vitals WHERE kind = 'heart_rate' GROUP BY 1) s"; }
days_before=$(alice_days "$PRIMARY_PORT" source)
check "source: the summary is the GROUP BY" "$(alice_group_by "$PRIMARY_PORT" source)" "$days_before"
check "source: the summary stored rollups" "t" "$(q -d source -c "SELECT count(*) > 0 FROM health_rls.summary_hours")"
[ -f "$REPO_ROOT/tests/lifecycle/extra_features.sql" ] && q -d source -f "$REPO_ROOT/tests/lifecycle/extra_features.sql" >/dev/null
channel_before=$(q -d source -c "SELECT health_rls.channel_for('$ALICE')")

# Reads as alice, through RLS, on a given port/database.
alice_rows() { q -p "$1" -d "$2" -c "BEGIN; SET LOCAL ROLE authenticated; SELECT auth.authenticate('$ALICE_TOKEN') IS NOT NULL; SELECT string_agg(body, ',' ORDER BY id) FROM notes; COMMIT;" | tail -1; }

check "source: alice reads her rows through RLS" "alice 1,alice 2" "$(alice_rows "$PRIMARY_PORT" source)"

# ---- pg_dump / pg_restore into a fresh database --------------------------------------------
dump=$CLUSTER_DIR/source.dump
pg_dump -Fc -d source -f "$dump"
q -d postgres -c "CREATE DATABASE restored"
pg_restore -d restored --exit-on-error "$dump" 2>"$CLUSTER_DIR/restore.err"
check "restore: pg_restore reports no error" "" "$(grep -v '^$' "$CLUSTER_DIR/restore.err" | head -3)"
check "restore: the old token still verifies (keys restored)" "alice 1,alice 2" "$(alice_rows "$PRIMARY_PORT" restored)"
check "restore: policies and FORCE came back" "4|t|t" "$(q -d restored -c "SELECT count(*), bool_and(c.relrowsecurity), bool_and(c.relforcerowsecurity) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relname = 'notes'" | tr -d ' ')"
check "restore: realtime triggers came back" "3" "$(q -d restored -c "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'notes'::regclass AND NOT tgisinternal")"
check "restore: channel names unchanged (secret restored)" "$channel_before" "$(q -d restored -c "SELECT health_rls.channel_for('$ALICE')")"
check "restore: accounts restored, sign-in works" "t" "$(q -d restored -c "SELECT auth.sign_in('carol@example.com', 'correct horse battery') LIKE 'eyJ%'")"
check "restore: a forged owner is still refused" "42501" "$(q_err restored "BEGIN; SET LOCAL ROLE authenticated; SELECT auth.authenticate('$ALICE_TOKEN'); INSERT INTO notes (user_id, body) VALUES ('$BOB', 'forged');")"
check "restore: rollups are not dumped" "0" "$(q -d restored -c "SELECT count(*) FROM health_rls.summary_hours")"
check "restore: the summary is the same (rollups rebuilt)" "$days_before" "$(alice_days "$PRIMARY_PORT" restored)"
[ -f "$REPO_ROOT/tests/lifecycle/extra_checks.sh" ] && . "$REPO_ROOT/tests/lifecycle/extra_checks.sh"

# ---- hot standby ------------------------------------------------------------------------------
sdir=$(mktemp -d /tmp/hrls-standby.XXXXXX); chmod 755 "$sdir"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$sdir"
CLUSTERS+=("$sdir")
as_pg "$(pg_bindir)/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$sdir/data" -R -X stream -c fast >/dev/null 2>&1
SPORT=$(free_port $((PRIMARY_PORT + 10)))
as_pg env -u RUST_BACKTRACE "$(pg_bindir)/pg_ctl" -D "$sdir/data" -l "$sdir/server.log" \
    -o "-p $SPORT -k $sdir -c listen_addresses=127.0.0.1" -w start >/dev/null
q -d source -c "INSERT INTO notes (user_id, body) VALUES ('$ALICE', 'alice 3')"
for i in $(seq 50); do
    [ "$(q -h 127.0.0.1 -p "$SPORT" -d source -c "SELECT count(*) FROM notes" 2>/dev/null)" = "4" ] && break; sleep 0.2
done
check "standby: in recovery" "t" "$(q -h 127.0.0.1 -p "$SPORT" -d source -c "SELECT pg_is_in_recovery()")"
check "standby: authenticate and RLS reads work" "alice 1,alice 2,alice 3" "$(q -h 127.0.0.1 -p "$SPORT" -d source -c "BEGIN; SET LOCAL ROLE authenticated; SELECT auth.authenticate('$ALICE_TOKEN') IS NOT NULL; SELECT string_agg(body, ',' ORDER BY id) FROM notes; COMMIT;" | tail -1)"
# A sample written on the primary after its rollups were built: the standby cannot bring them up
# to date, so it summarises the samples, and says the same as the GROUP BY.
as_alice "$PRIMARY_PORT" source "INSERT INTO vitals (kind, value, unit, recorded_at) VALUES ('heart_rate', 150, '/min', '2026-06-02 12:34Z')" >/dev/null
for i in $(seq 50); do
    [ "$(q -h 127.0.0.1 -p "$SPORT" -d source -c "SELECT count(*) FROM vitals")" = "1001" ] && break; sleep 0.2
done
check "standby: the summary reads the new sample" "$(PGHOST=127.0.0.1 alice_group_by "$SPORT" source)" "$(PGHOST=127.0.0.1 alice_days "$SPORT" source)"
check "standby: the new sample is in it" "t" "$(PGHOST=127.0.0.1 as_alice "$SPORT" source "SELECT max(max) = 150 FROM health.summary('heart_rate')")"
check "standby: writes fail with 25006" "25006" "$(PGHOST=127.0.0.1 PGPORT=$SPORT q_err source "BEGIN; SET LOCAL ROLE authenticated; SELECT auth.authenticate('$ALICE_TOKEN'); INSERT INTO notes (body) VALUES ('x');")"

# ---- the installed version ---------------------------------------------------------------------
# Updates from earlier releases, built from their commits, are tests/lifecycle/upgrade.sh.
current=$(q -d postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'health_rls'")
check "the current version is what CREATE EXTENSION installs" "$current" "$(q -d source -c "SELECT extversion FROM pg_extension WHERE extname = 'health_rls'")"

echo "lifecycle: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
