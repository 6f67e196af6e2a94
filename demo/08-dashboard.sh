#!/usr/bin/env bash
# The page a person looks at: the gateway serves the live dashboard (DEMO_KEEP=1 keeps it up)
set -euo pipefail
. "$REPO_ROOT/scripts/lib/common.sh"
(cd "$REPO_ROOT" && cargo build -q -p health-rls-gateway -p health-rls-wearable)
TARGET=$(cargo_target_dir)
DSN="host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres"
work=$(mktemp -d /tmp/hrls-page.XXXXXX)
pids=()
finish() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap finish EXIT
trap 'exit 130' INT TERM
sql() { psql -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }

email=dana@example.com password='dashboard demo 1'
sql "SELECT auth.sign_up('$email', '$password')" >/dev/null
echo "an hour of Dana's watch (heart rate, steps, SpO2), synced by the wearable simulator:"
"$TARGET/debug/health-rls-wearable" --dsn "$DSN" --email "$email" --password "$password" \
    --state-dir "$work/watch" --batches 3 --batch-size 20 --device "dana-watch" | sed 's/^/  /'

host=${DEMO_HOST:-127.0.0.1}
port=$(free_port 18880)
"$TARGET/debug/health-rls-gateway" "$DSN" "$host:$port" --table public.health_metrics 2>"$work/gateway.log" & pids+=($!)
for _ in $(seq 50); do curl -fs "http://$host:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
url="http://$host:$port/"
echo "the gateway serves the page at $url (sign in as $email / $password)"

echo "what the page is served with:"
curl -sI "$url" | grep -iE '^(content-security-policy|x-frame-options|referrer-policy):' | sed 's/^/  /'
page=(-H 'Content-Type: application/json' -H 'X-Requested-With: health-rls' -H "Origin: http://$host:$port")
echo "a sign-in from another site is refused: HTTP $(curl -s -o /dev/null -w '%{http_code}' -X POST "${page[@]:0:4}" \
    -H 'Origin: https://evil.example' -d "{\"email\":\"$email\",\"password\":\"$password\"}" "${url}api/session/signin")"
echo "the page's own sign-in sets two HttpOnly cookies (tokens never reach the page's script):"
curl -s -D "$work/head" -c "$work/jar" -o "$work/body" -X POST "${page[@]}" \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" "${url}api/session/signin"
# The cookie values are tokens: the transcript shows their names and attributes, never a byte of them.
grep -i '^set-cookie:' "$work/head" | sed -E 's/=[^;]*;/=(token, not shown);/; s/^/  /'
echo "  body: $(cat "$work/body")"
echo "what the dashboard reads as Dana (RLS filters, the gateway does not):"
curl -s -b "$work/jar" "${url}api/dashboard" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print("  %d heart-rate samples in the last hour; change feed at seq %d" % (len(d["heart_rate"]), d["after_seq"]))
for s in d["latest"]:
    print("  latest %s: %g %s" % (s["kind"], s["value"], s["unit"]))'

if [ -z "${DEMO_KEEP:-}" ]; then
    echo "(DEMO_KEEP=1 scripts/demo keeps the cluster and the page up, with a new heart-rate sample every 5 s)"
    exit 0
fi
minutes=${DEMO_KEEP_MINUTES:-60}
say "The dashboard stays up (at most $minutes min, or until Ctrl-C): open $url"
echo "  sign in as $email / $password — or create an account and share with Dana"
echo "  (from another machine: DEMO_HOST=0.0.0.0, and an SSH tunnel or a TLS proxy with --secure-cookies)"
token=""
for i in $(seq $((minutes * 12))); do
    # A fresh access token every 50 minutes (they last an hour).
    if [ $(((i - 1) % 600)) = 0 ]; then
        token=$(sql "SELECT auth.start_session('$email', '$password')->>'access_token'")
    fi
    psql -X -qAt -v ON_ERROR_STOP=1 -v tok="$token" >/dev/null <<'SQL'
BEGIN;
SET LOCAL ROLE authenticated;
SELECT auth.authenticate(:'tok');
INSERT INTO health_metrics (kind, value, unit, recorded_at, source)
VALUES ('heart_rate', 64 + floor(random() * 30), '/min', now(), 'dana-watch');
COMMIT;
SQL
    sleep 5
done
