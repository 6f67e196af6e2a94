# Shared by scripts/*: PostgreSQL location, running as postgres when root, throwaway clusters.
# shellcheck shell=bash
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"

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
        [ -f "$d/data/postmaster.pid" ] && as_pg "$(pg_bindir)/pg_ctl" -D "$d/data" -m immediate stop >/dev/null 2>&1
        rm -rf "$d"
    done
    CLUSTERS=()
}

# cluster_start [extra postgres -c options...]
# Starts a fresh cluster under a new temp dir on a free port and exports PGHOST/PGPORT/PGUSER
# (plus CLUSTER_DIR). Torn down by cleanup_clusters, which callers put in their EXIT trap.
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
    export PGHOST=$dir PGPORT=$port PGUSER=postgres CLUSTER_DIR=$dir
}
