#!/usr/bin/env bash
# router_dup_params.sh — startup packets that name a parameter twice are refused (08P01) before
# any server sees them: Postgres takes the last "user", so a router reading the first would
# vouch for the wrong role and hand that role's kept session to a client with no password.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
start_riftd "$state"
rport=$(router_port "$state")
pw=$(demo_password "$state")
api "$state" POST /v1/branches '{"name":"p"}'
[ "$API_STATUS" = 201 ] || fail "create p: $API_STATUS $(cat "$API_OUT")"
router="host=127.0.0.1 port=$rport user=rift dbname=p sslmode=disable"

# a role the server trusts from loopback, as a CI base may well have
PGPASSWORD=$pw psql -X -q "$router" -c "create role trustme login" ||
	fail "cannot create role trustme"
hba=$state/mnt/p/pg_hba.conf
{ echo "host all trustme 127.0.0.1/32 trust"; cat "$hba"; } >"$TEST_TMP/hba"
cat "$TEST_TMP/hba" >"$hba"
# riftd reads a branch's pg_hba.conf when its server starts (docs/security.md)
api "$state" POST /v1/branches/p/stop
api "$state" POST /v1/branches/p/start
[ "$API_STATUS" = 200 ] || fail "restart p: $API_STATUS $(cat "$API_OUT")"
[ "$(psql -X -At "host=127.0.0.1 port=$rport user=trustme dbname=p sslmode=disable" \
	-c "select current_user")" = trustme ] || fail "trustme is not trusted"

python3 "$(dirname "$0")/router_dup_params.py" "$rport" "$pw" p || fail "router_dup_params.py"
grep -q 'duplicate startup parameter' "$TEST_TMP/riftd.log" ||
	fail "riftd did not log the refusal"
exit 0
