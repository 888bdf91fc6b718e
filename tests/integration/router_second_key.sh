#!/usr/bin/env bash
# router_second_key.sh — a branch server that sends BackendKeyData again and again (code its
# superuser loaded) gets its session closed with 08P01 at the second one: riftd neither aborts
# nor leaks a cancel slot per message, so cancels keep working for every other branch.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
start_riftd "$state"
rport=$(router_port "$state")
pw=$(demo_password "$state")
for b in evil good; do
	api "$state" POST /v1/branches "{\"name\":\"$b\"}"
	[ "$API_STATUS" = 201 ] || fail "create $b: $API_STATUS $(cat "$API_OUT")"
done

# the hostile library, where the branch's server uid can read it
lib=$(mktemp -d /tmp/rift-second-key.XXXXXX)
on_exit "rm -rf $lib"
chmod 755 "$lib"
cc -O2 -shared -fPIC -o "$lib/second_key.so" "$(dirname "$0")/second_keydata.c" ||
	fail "cannot build second_keydata.c"
chmod 755 "$lib/second_key.so"
# as the branch's superuser would: every new backend of "evil" loads it; a role of its own, so
# no session the router kept from before is handed out instead of a new login
PGPASSWORD=$pw psql -X -q "host=127.0.0.1 port=$rport user=rift dbname=evil sslmode=disable" \
	-c "create role victim login password 'victim'" \
	-c "alter system set session_preload_libraries = '$lib/second_key.so'" \
	-c "select pg_reload_conf()" >/dev/null || fail "cannot load the library on evil"

python3 "$(dirname "$0")/router_second_key.py" "$rport" "$pw" || fail "router_second_key.py"
kill -0 "$RIFTD_PID" 2>/dev/null || fail "riftd died: $(tail -5 "$TEST_TMP/riftd.log")"
grep -q 'evil: its server sent a second BackendKeyData; session closed' "$TEST_TMP/riftd.log" ||
	fail "riftd did not log the protocol violation"
exit 0
