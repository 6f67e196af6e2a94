# Shared by the lifecycle suites (run.sh, upgrade.sh): the check helper, psql shorthands and the
# fixed test identities. Sourced after scripts/lib/common.sh.
# shellcheck shell=bash

pass=0; fail=0
check() { # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then pass=$((pass + 1)); echo "ok      $1"
    else fail=$((fail + 1)); echo "FAILED  $1: expected [$2], got [$3]"; fi
}
q() { psql -X -qAt -v ON_ERROR_STOP=1 "$@"; }
# q_err DB SQL: the SQLSTATE of the error SQL raises ('' when none)
q_err() { psql -X -qAt -v VERBOSITY=sqlstate -d "$1" -c "$2" 2>&1 >/dev/null | sed -n 's/^.*ERROR:  \([0-9A-Z]\{5\}\).*/\1/p' | head -1; }

ALICE=11111111-1111-4111-8111-111111111111
BOB=22222222-2222-4222-8222-222222222222
# The HS256 key k1 and a token for alice signed with it (exp 2100-01-01).
K='aGVhbHRoX3JscyByZWdyZXNzaW9uIHNlY3JldCwgMzIrIGJ5dGVzIGxvbmchIQ'
ALICE_TOKEN=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiIxMTExMTExMS0xMTExLTQxMTEtODExMS0xMTExMTExMTExMTEiLCJyb2xlIjoiYXV0aGVudGljYXRlZCIsImF1ZCI6ImF1dGhlbnRpY2F0ZWQiLCJlbWFpbCI6ImFsaWNlQGV4YW1wbGUuY29tIiwiZXhwIjo0MTAyNDQ0ODAwfQ.Da4Wn161a_DDXT_4tILZcy9O0UlLe9w2s6Y8dLYbbJM
