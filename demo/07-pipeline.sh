#!/usr/bin/env bash
# The whole pipeline: two wearables sync, each owner's app hears only its own events (relay + SSE)
set -euo pipefail
. "$REPO_ROOT/scripts/lib/common.sh"
(cd "$REPO_ROOT" && cargo build -q -p health-rls-gateway -p health-rls-wearable)
TARGET=$(cargo_target_dir)
DSN="host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres"
work=$(mktemp -d /tmp/hrls-demo.XXXXXX)
pids=()
finish() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap finish EXIT
sql() { psql -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }

# public.health_metrics exists since chapter 03 (health.create_metric_table: validation, owner RLS, realtime).
sql "SELECT auth.sign_up('runner@example.com', 'runner password 1'), auth.sign_up('swimmer@example.com', 'swimmer password 1')" >/dev/null
runner_token=$(sql "SELECT auth.sign_in('runner@example.com', 'runner password 1')")
swimmer_token=$(sql "SELECT auth.sign_in('swimmer@example.com', 'swimmer password 1')")

port=$(free_port 18787)
"$TARGET/debug/health-rls-gateway" "$DSN" "127.0.0.1:$port" 2>"$work/relay.log" & pids+=($!)
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
echo "relay up on :$port (one database connection for every subscriber)"
curl -sN -H "Authorization: Bearer $runner_token" "http://127.0.0.1:$port/events" >"$work/runner.sse" & pids+=($!)
curl -sN -H "Authorization: Bearer $swimmer_token" "http://127.0.0.1:$port/events" >"$work/swimmer.sse" & pids+=($!)
echo "bad token -> HTTP $(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer not.a.token' "http://127.0.0.1:$port/events")"
sleep 0.5
echo "relay: $(curl -s "http://127.0.0.1:$port/healthz")"

echo "two wearables sync at once:"
"$TARGET/debug/health-rls-wearable" --dsn "$DSN" --email runner@example.com --password 'runner password 1' \
    --state-dir "$work/runner" --batches 3 --batch-size 10 --device "runner-watch" & w1=$!
"$TARGET/debug/health-rls-wearable" --dsn "$DSN" --email swimmer@example.com --password 'swimmer password 1' \
    --state-dir "$work/swimmer" --batches 3 --batch-size 10 --device "swimmer-ring" & w2=$!
wait $w1 $w2
echo "a second run of the runner reuses its sealed access token:"
"$TARGET/debug/health-rls-wearable" --dsn "$DSN" --email runner@example.com --password 'runner password 1' \
    --state-dir "$work/runner" --batches 1 --batch-size 3 --device "runner-watch"
echo "a third run refreshes the session with its sealed refresh token (no password needed):"
"$TARGET/debug/health-rls-wearable" --dsn "$DSN" --email runner@example.com --password 'wrong password on purpose' \
    --state-dir "$work/runner" --batches 1 --batch-size 3 --device "runner-watch" --refresh
sleep 1

for who in runner swimmer; do
    events=$(grep -c '^event: change' "$work/$who.sse" || true)
    ids=$(grep '^data: ' "$work/$who.sse" | sed 's/^data: //' | grep -o '"id": *[0-9]*' | sed 's/.*: *//' | paste -sd, -)
    owners=$(sql "SELECT string_agg(DISTINCT split_part(u.email, '@', 1), ',') FROM health_metrics m JOIN auth.users u ON u.id = m.user_id WHERE m.id IN (${ids:-0})")
    echo "$who's app: $events events, $(echo "$ids" | tr ',' '\n' | grep -c . || true) rows announced, rows belong to: ${owners:-nobody}"
done
echo "the runner's stream opened with a ready event (the seq it resumes after), then its first change:"
grep -m1 -A2 '^event: ready' "$work/runner.sse" | grep '^data: ' | cut -c1-200
grep -m1 -A2 '^event: change' "$work/runner.sse" | grep -E '^(id|data): ' | cut -c1-200
echo "cross-user read (runner asks for the swimmer's rows through RLS):"
psql -X -q -c "BEGIN; SET LOCAL ROLE authenticated; SELECT auth.authenticate('$runner_token') IS NOT NULL AS runner;
  SELECT count(*) AS swimmer_rows_visible FROM health_metrics WHERE source = 'swimmer-ring';
  SELECT count(*) AS own_rows_visible FROM health_metrics; COMMIT;" | sed 's/^/  /'
