#!/usr/bin/env bash
# supabase-js, unmodified, against the gateway: /auth/v1, /rest/v1, /realtime/v1 (clients/js)
set -euo pipefail
. "$REPO_ROOT/scripts/lib/common.sh"
(cd "$REPO_ROOT" && cargo build -q -p health-rls-gateway)
work=$(mktemp -d /tmp/hrls-js.XXXXXX)
pids=()
finish() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap finish EXIT
# The gateway's login role can do nothing but SET ROLE to anon and authenticated.
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE ROLE gateway_login LOGIN NOINHERIT" -c "GRANT anon, authenticated TO gateway_login"
port=$(free_port 18990)
key="sb_publishable_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
"$(cargo_target_dir)/debug/health-rls-gateway" --database-url "host=127.0.0.1 port=$PGPORT user=gateway_login dbname=postgres" \
    --listen "127.0.0.1:$port" --publishable-key "$key" 2>"$work/gateway.log" & pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
echo "the gateway serves /auth/v1, /rest/v1 and /realtime/v1 on :$port; without the publishable key:"
echo "  $(curl -s "http://127.0.0.1:$port/auth/v1/user")"
echo "the app (clients/js/src/demo.js):"
(cd "$REPO_ROOT/clients/js" && SUPABASE_URL="http://127.0.0.1:$port" SUPABASE_PUBLISHABLE_KEY="$key" node src/demo.js)
