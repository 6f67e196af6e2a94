#!/usr/bin/env bash
# Every function and table CREATE EXTENSION health_rls makes is documented in
# docs/sql-reference.md: each appears there in backticks as `schema.name` (or `schema.name(...)`).
#
# Internal functions (name starting with `_`, e.g. health_rls._once_per_execution) and test-only
# functions (name containing `test`, from a pg_test build) are not checked.
#
# Uses the cluster of the environment (PGHOST/PGPORT/PGUSER/PGDATABASE, as cluster_start in
# scripts/lib/common.sh exports them) with the extension installed; without PGHOST it starts a
# throwaway cluster of its own. Works in a scratch database, dropped at the end.
# Prints each undocumented object on its own line, then `docs: N passed, N failed`.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DOC=$ROOT/docs/sql-reference.md
export PSQLRC=/dev/null

if [ -z "${PGHOST:-}" ]; then
    . "$ROOT/scripts/lib/common.sh"
    trap cleanup_clusters EXIT
    cluster_start || { echo "docs: could not start a cluster"; echo "docs: 0 passed, 1 failed"; exit 1; }
fi

maintenance_db=${PGDATABASE:-postgres}
db=hrls_docs_$$
dropped=0
drop_db() {
    [ "$dropped" = 1 ] && return
    dropped=1
    psql -X -q -d "$maintenance_db" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
}
# An EXIT trap set above (cleanup_clusters) stops the whole cluster; otherwise drop the database.
if [ -z "$(trap -p EXIT)" ]; then trap drop_db EXIT; fi

setup_failed() {
    echo "docs: $1"
    echo "docs: 0 passed, 1 failed"
    drop_db
    exit 1
}

psql -X -q -v ON_ERROR_STOP=1 -d "$maintenance_db" -c "CREATE DATABASE $db" >/dev/null \
    || setup_failed "could not create the scratch database $db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "CREATE EXTENSION health_rls" >/dev/null \
    || setup_failed "CREATE EXTENSION health_rls failed (is the extension installed?)"

# kind <TAB> schema.name, one line per object (overloaded functions once).
objects=$(psql -X -qAt -F $'\t' -v ON_ERROR_STOP=1 -d "$db" <<'SQL'
WITH ext AS (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'health_rls'),
members AS (
    SELECT d.classid, d.objid FROM pg_catalog.pg_depend d, ext
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.refobjid = ext.oid AND d.deptype = 'e'
)
SELECT DISTINCT 'function', n.nspname || '.' || p.proname
  FROM members m
  JOIN pg_catalog.pg_proc p ON m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = m.objid
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE left(p.proname, 1) <> '_' AND strpos(p.proname, 'test') = 0
UNION
SELECT 'table', n.nspname || '.' || c.relname
  FROM members m
  JOIN pg_catalog.pg_class c ON m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.oid = m.objid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
 ORDER BY 1, 2;
SQL
) || setup_failed "could not list the extension's objects"
[ -n "$objects" ] || setup_failed "the extension has no functions or tables (wrong database?)"

passed=0
failed=0
while IFS=$'\t' read -r kind name; do
    [ -n "$name" ] || continue
    if grep -qF -e "\`$name\`" -e "\`$name(" -e "\`$name " "$DOC"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "undocumented $kind $name (not in docs/sql-reference.md as \`$name\`)"
    fi
done <<<"$objects"

drop_db
echo "docs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
