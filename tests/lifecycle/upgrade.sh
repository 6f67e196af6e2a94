#!/usr/bin/env bash
# ALTER EXTENSION health_rls UPDATE from every released version (tests/lifecycle/releases):
# build the release from its commit, install it, fill a database through it (accounts, keys, a
# metric table with samples and rejects, owner policies, realtime), install the current build,
# update in place, then check data and behaviour, and compare the schema of the updated
# extension with a fresh install of the current version.
set -uo pipefail
. "$(dirname "$0")/../../scripts/lib/common.sh"
. "$(dirname "$0")/lib.sh"

LIBDIR=$("$PG_CONFIG" --pkglibdir)
EXTDIR=$("$PG_CONFIG" --sharedir)/extension
WORK=$(mktemp -d /tmp/hrls-upgrade.XXXXXX)
chmod 755 "$WORK"

# What the current build installed, put back whatever happens.
mkdir -p "$WORK/current"
cp -p "$LIBDIR/health_rls.so" "$EXTDIR/health_rls.control" "$WORK/current/"
ls "$EXTDIR"/health_rls--*.sql >"$WORK/current/scripts.txt"
restore_current() {
    cleanup_clusters
    install -m 755 "$WORK/current/health_rls.so" "$LIBDIR/health_rls.so"
    install -m 644 "$WORK/current/health_rls.control" "$EXTDIR/health_rls.control"
    for f in "$EXTDIR"/health_rls--*.sql; do
        grep -qxF "$f" "$WORK/current/scripts.txt" || rm -f "$f"
    done
    rm -rf "$WORK"
}
trap restore_current EXIT

current=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$EXTDIR/health_rls.control")
[ -f "$EXTDIR/health_rls--$current.sql" ] || { echo "the current build is not installed (run scripts/setup)"; exit 1; }

as_alice() { # as_alice DB SQL: runs SQL as alice through the authenticated role, prints the last row
    q -d "$1" -c "BEGIN; SET LOCAL ROLE authenticated; SELECT auth.authenticate('$ALICE_TOKEN') IS NOT NULL; $2; COMMIT;" | tail -1
}

# The extension's own objects as pg_upgrade sees them (binary-upgrade mode dumps every member of
# an extension), without what differs by construction: oids, dump ids and pg_dump's random
# \restrict key.
extension_schema() {
    pg_dump -d "$1" --schema-only --binary-upgrade --no-comments 2>/dev/null \
        | grep -v -e '^-- TOC entry' -e '^-- Dependencies' -e 'binary_upgrade_set_next_' -e '^SET ' -e '^SELECT pg_catalog.set_config' \
            -e '^\\restrict ' -e '^\\unrestrict ' \
        | sed -e "s/oid = '[0-9]*'/oid = N/" \
        | sed -e 's/binary_upgrade_create_empty_extension(\(.*\), '"'"'{[0-9,]*}'"'"', '"'"'{[^}]*}'"'"'/binary_upgrade_create_empty_extension(\1, '"'"'{oids}'"'"', '"'"'{conditions: compared below}'"'"'/' \
        | cat -s
}
# Rows the extension script itself writes (the seeded catalog), which a dump does not show, and
# which tables are dumped with which condition (registration order differs between a fresh
# install and an update, so the dump's positional arrays are compared as a sorted list).
extension_data() {
    q -d "$1" -c "SELECT t::regclass::text || ' ' || c FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(t, c) WHERE e.extname = 'health_rls' ORDER BY 1"
    q -d "$1" -c "SELECT code, display, unit, min_value, max_value, molar_mass, loinc, healthkit, health_connect FROM health.metric_kinds WHERE seeded ORDER BY code"
    q -d "$1" -c "SELECT alias, platform, unit FROM health.unit_aliases WHERE seeded ORDER BY alias, platform" 2>/dev/null
}

grep -v '^#' "$REPO_ROOT/tests/lifecycle/releases" | while read -r version commit; do
    [ -n "$version" ] || continue
    say "upgrade from $version ($commit)"
    # ---- build the release from its commit ------------------------------------------------
    src=$WORK/src-$version
    mkdir -p "$src"
    if ! git -C "$REPO_ROOT" archive "$commit" | tar -x -C "$src"; then
        check "build $version: commit $commit is in this clone" "yes" "no"; continue
    fi
    # Debug profile (quick to build), in a target dir of its own per release: the current
    # checkout's and the other releases' target dirs hold binaries of the same name
    # (pgrx_embed_health_rls) that cargo would take for this release's, and the install script
    # would then be another version's. Kept between runs, so only the first run pays the build.
    if ! (cd "$src" && CARGO_TARGET_DIR="$REPO_ROOT/target/releases/$version" cargo pgrx package --debug --pg-config "$PG_CONFIG" \
            --out-dir "$WORK/pkg-$version" >"$WORK/build-$version.log" 2>&1); then
        tail -30 "$WORK/build-$version.log"; check "build $version" "built" "failed"; continue
    fi
    pkg_lib=$(find "$WORK/pkg-$version" -name health_rls.so | head -1)
    pkg_ext=$(dirname "$(find "$WORK/pkg-$version" -name health_rls.control | head -1)")
    check "build $version: install script for $version" "yes" "$([ -f "$pkg_ext/health_rls--$version.sql" ] && echo yes)"

    # ---- install the release and fill databases through it ---------------------------------
    install -m 755 "$pkg_lib" "$LIBDIR/health_rls.so"
    install -m 644 "$pkg_ext/health_rls.control" "$EXTDIR/health_rls.control"
    install -m 644 "$pkg_ext/health_rls--$version.sql" "$EXTDIR/health_rls--$version.sql"
    cluster_start >/dev/null
    q -c "CREATE DATABASE filled" -c "CREATE DATABASE empty"
    q -d empty -c "CREATE EXTENSION health_rls"
    q -d filled >/dev/null <<SQL
CREATE EXTENSION health_rls;
SELECT auth.create_roles();
SELECT auth.add_key('{"kty":"oct","kid":"k1","alg":"HS256","k":"$K"}');
SELECT auth.sign_up('carol@example.com', 'correct horse battery');
INSERT INTO health.metric_kinds (code, display, unit, min_value, max_value) VALUES ('waist_circumference', 'Waist', 'cm', 30, 300);
SELECT health.create_metric_table('public.health_metrics');
CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id uuid NOT NULL DEFAULT auth.uid(), body text);
SELECT count(*) FROM health_rls.enable_owner_rls('notes', commands => '{all}');
SELECT count(*) FROM health_rls.enable_realtime('notes');
INSERT INTO notes (user_id, body) VALUES ('$ALICE', 'alice 1'), ('$BOB', 'bob 1');
SQL
    as_alice filled "SELECT string_agg(status, ',' ORDER BY ord) FROM health.ingest('health_metrics', '[
        {\"kind\": \"heart_rate\", \"value\": 61, \"unit\": \"/min\", \"recorded_at\": \"2026-11-24T08:00:00Z\"},
        {\"kind\": \"waist_circumference\", \"value\": 32, \"unit\": \"[in_i]\", \"recorded_at\": \"2026-11-24T08:00:00Z\"},
        {\"kind\": \"heart_rate\", \"value\": 500, \"unit\": \"/min\", \"recorded_at\": \"2026-11-24T08:01:00Z\"}]')" >/dev/null
    check "$version: extension installed" "$version" "$(q -d filled -c "SELECT extversion FROM pg_extension WHERE extname = 'health_rls'")"
    channel_before=$(q -d filled -c "SELECT health_rls.channel_for('$ALICE')")
    samples_before=$(q -d filled -c "SELECT string_agg(user_id || ' ' || kind || ' ' || value || ' ' || unit, ',' ORDER BY id) FROM health_metrics")
    policies_before=$(q -d filled -c "SELECT string_agg(c.relname || '.' || p.polname, ',' ORDER BY 1) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relname IN ('notes', 'health_metrics')")
    # No backend may keep the old library mapped while it is replaced.
    as_pg "$(pg_bindir)/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null

    # ---- install the current build and update in place ---------------------------------------
    install -m 755 "$WORK/current/health_rls.so" "$LIBDIR/health_rls.so"
    install -m 644 "$WORK/current/health_rls.control" "$EXTDIR/health_rls.control"
    as_pg env -u RUST_BACKTRACE "$(pg_bindir)/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" \
        -o "-p $PGPORT -k $CLUSTER_DIR -c listen_addresses=127.0.0.1 -c fsync=off" -w start >/dev/null
    for db in filled empty; do
        q -d "$db" -c "ALTER EXTENSION health_rls UPDATE" 2>"$WORK/update-$db.err"
        check "$version -> $current ($db): ALTER EXTENSION UPDATE without error" "" "$(head -3 "$WORK/update-$db.err")"
        check "$version -> $current ($db): extension version" "$current" "$(q -d "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'health_rls'")"
    done

    # Data and behaviour survive.
    check "updated: samples unchanged" "$samples_before" "$(q -d filled -c "SELECT string_agg(user_id || ' ' || kind || ' ' || value || ' ' || unit, ',' ORDER BY id) FROM health_metrics")"
    check "updated: owner policies of user tables unchanged" "$policies_before" "$(q -d filled -c "SELECT string_agg(c.relname || '.' || p.polname, ',' ORDER BY 1) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relname IN ('notes', 'health_metrics')")"
    check "updated: the old token verifies (keys kept), RLS shows alice her rows only" "alice 1|2" \
        "$(as_alice filled "SELECT (SELECT string_agg(body, ',') FROM notes), (SELECT count(*) FROM health_metrics)")"
    check "updated: rejected samples kept and readable by their owner" "1" "$(as_alice filled "SELECT count(*) FROM health.rejected_samples")"
    check "updated: accounts kept, sign-in works" "t" "$(q -d filled -c "SELECT auth.sign_in('carol@example.com', 'correct horse battery') LIKE 'eyJ%'")"
    check "updated: channel names unchanged" "$channel_before" "$(q -d filled -c "SELECT health_rls.channel_for('$ALICE')")"
    check "updated: DBA's kind kept and converting" "81.28" "$(q -d filled -c "SELECT health.normalize('waist_circumference', 32, '[in_i]')")"
    check "updated: ingest works, a re-sent batch is duplicate/rejected only" "inserted,duplicate,rejected" \
        "$(as_alice filled "SELECT string_agg(status, ',' ORDER BY ord) FROM health.ingest('health_metrics', '[
            {\"kind\": \"heart_rate\", \"value\": 62, \"unit\": \"/min\", \"recorded_at\": \"2026-11-24T09:00:00Z\"},
            {\"kind\": \"heart_rate\", \"value\": 61, \"unit\": \"/min\", \"recorded_at\": \"2026-11-24T08:00:00Z\"},
            {\"kind\": \"heart_rate\", \"value\": 500, \"unit\": \"/min\", \"recorded_at\": \"2026-11-24T08:01:00Z\"}]')")"
    check "updated: a forged owner is refused (42501)" "42501" \
        "$(psql -X -qAt -v VERBOSITY=sqlstate -d filled -c "BEGIN; SET LOCAL ROLE authenticated; SELECT auth.authenticate('$ALICE_TOKEN'); INSERT INTO notes (user_id, body) VALUES ('$BOB', 'forged');" 2>&1 >/dev/null | sed -n 's/^.*ERROR:  \([0-9A-Z]\{5\}\).*/\1/p' | head -1)"
    # A standard table made by the old version takes a HealthKit payload: interval, sync version,
    # a blood-pressure pair (the update added the columns).
    first=$(as_alice filled "SELECT string_agg(status, ',' ORDER BY ord) FROM health.ingest('health_metrics', '[
        {\"kind\": \"HKQuantityTypeIdentifierStepCount\", \"value\": 611, \"unit\": \"count\", \"start\": \"2021-11-30 07:47:59 +0200\", \"end\": \"2021-11-30 07:55:00 +0200\", \"sync_id\": \"s1\", \"sync_version\": 1},
        {\"correlation\": \"HKCorrelationTypeIdentifierBloodPressure\", \"start\": \"2021-11-30 08:00:00 +0200\", \"systolic\": {\"value\": 120, \"unit\": \"mmHg\"}, \"diastolic\": {\"value\": 80, \"unit\": \"mmHg\"}}]')")
    second=$(as_alice filled "SELECT string_agg(status, ',' ORDER BY ord) FROM health.ingest('health_metrics', '[
        {\"kind\": \"HKQuantityTypeIdentifierStepCount\", \"value\": 612, \"unit\": \"count\", \"start\": \"2021-11-30 07:47:59 +0200\", \"end\": \"2021-11-30 07:55:00 +0200\", \"sync_id\": \"s1\", \"sync_version\": 2}]')")
    check "updated: a 0.1.0 metric table takes HealthKit intervals, sync versions and pairs" "inserted,inserted|updated" "$first|$second"
    # 0.1.0's foreign key on kind is gone (the trigger checks kinds); a kind in use still cannot go.
    check "updated: the 0.1.0 table's foreign key on kind is dropped" "0" \
        "$(q -d filled -c "SELECT count(*) FROM pg_constraint WHERE conrelid = 'health_metrics'::regclass AND contype = 'f'")"
    check "updated: deleting a kind its samples use is refused (23503)" "23503" \
        "$(q -d filled -v VERBOSITY=verbose -c "DELETE FROM health.metric_kinds WHERE code = (SELECT kind FROM health_metrics LIMIT 1)" 2>&1 | sed -n "s/^ERROR: *\([0-9A-Z]\{5\}\):.*/\1/p")"
    # The realtime trigger of a table enabled under the old version still announces, on the
    # same channel (psql prints notifications to its own session at commit).
    heard=$(q -d filled -c "LISTEN \"$channel_before\"" -c "INSERT INTO notes (user_id, body) VALUES ('$ALICE', 'after update')" 2>&1 | grep -c "Asynchronous notification \"$channel_before\"")
    check "updated: realtime on a table enabled under $version still announces" "1" "$heard"

    # The registry of managed tables was filled from what the old version made.
    check "updated: the registry records the old version's tables" \
        "health_metrics:true:user_id:{select,insert,update,delete}:user_id|notes:false:user_id:{select,insert,update,delete}:user_id" \
        "$(q -d filled -c "SELECT string_agg(relid::text || ':' || metric_table || ':' || owner_column || ':' || owner_commands::text || ':' || coalesce(realtime_column, '-'), '|' ORDER BY relid::text) FROM health_rls.managed_tables WHERE relid::text IN ('health_metrics', 'notes')")"
    check "updated: the export reads the old metric table through the registry" "1" \
        "$(as_alice filled "SELECT count(*) FROM jsonb_array_elements(health.fhir_observations(kinds => '{heart_rate}')->'entry') e WHERE e->'resource'->'valueQuantity'->>'value' = '61'")"

    # The updated extension is the fresh one.
    q -c "CREATE DATABASE fresh"
    q -d fresh -c "CREATE EXTENSION health_rls"
    extension_schema empty >"$WORK/schema-updated.sql"
    extension_schema fresh >"$WORK/schema-fresh.sql"
    # The comparison covers the extension's members, not just CREATE EXTENSION.
    check "the compared dump lists the extension's functions, tables and policies" "yes" \
        "$(grep -q 'ALTER EXTENSION health_rls ADD FUNCTION health_rls.enable_realtime' "$WORK/schema-fresh.sql" \
           && grep -q 'CREATE POLICY health_rls_owner_select ON health.rejected_samples' "$WORK/schema-fresh.sql" \
           && grep -q 'CREATE TABLE auth.keys' "$WORK/schema-fresh.sql" && echo yes)"
    if diff -u "$WORK/schema-fresh.sql" "$WORK/schema-updated.sql" >"$WORK/schema.diff"; then
        check "updated schema equals a fresh $current install (pg_dump --binary-upgrade, $(grep -c . "$WORK/schema-fresh.sql") lines)" same same
    else
        head -80 "$WORK/schema.diff"; check "updated schema equals a fresh $current install" same different
    fi
    check "updated seed rows equal a fresh $current install" "$(extension_data fresh | md5sum)" "$(extension_data empty | md5sum)"
    cleanup_clusters
    rm -f "$EXTDIR/health_rls--$version.sql"
    echo "upgrade: $pass passed, $fail failed" >"$WORK/counts"
done
counts=$(cat "$WORK/counts" 2>/dev/null || echo "upgrade: 0 passed, 1 failed")
echo "$counts"
[[ "$counts" == *", 0 failed" ]]
