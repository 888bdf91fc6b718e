#!/usr/bin/env bash
# router_clients.sh — psql, pgbench and libpq through the router: branches, db@branch, TLS modes,
# GSSENC, cancel, on-demand start, unknown branches. With --no-splice riftd relays every byte
# itself; by default plaintext connections are handed to the kernel after login.
source "$RIFT_TESTLIB"

splice=1
[ "${1:-}" = --no-splice ] && splice=0
state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
rport=$(free_port)
sed -i -e "s/^listen = 127.0.0.1:6432/listen = 127.0.0.1:$rport/" \
	-e "s/^kernel_splice = .*/kernel_splice = $splice/" "$state/rift.conf"
start_riftd "$state"
export PGPASSWORD
PGPASSWORD=$(demo_password "$state")
rq() { psql -X -At "host=127.0.0.1 port=$rport user=rift $1" -c "$2"; }

api "$state" POST /v1/branches '{"name":"a"}'
api "$state" POST /v1/branches '{"name":"b"}'
# the first connection to a stopped branch waits for it and succeeds
api "$state" GET /v1/branches/a
[ "$(api_field .state)" = stopped ] || fail "a should start stopped"
[ "$(rq "dbname=a" "select count(*) from orders")" = 5000 ] || fail "first query on a failed"
rq "dbname=a" "delete from orders where id > 10" >/dev/null
[ "$(rq "dbname=b" "select count(*) from orders")" = 5000 ] || fail "b sees a's delete"
[ "$(rq "dbname=a" "select count(*) from orders")" = 10 ] || fail "a lost its delete"
[ "$(rq "dbname=postgres@b" "select current_database()")" = postgres ] || fail "db@branch"

# TLS: every sslmode, verify-full against the self-signed certificate; GSSENC refused cleanly
for mode in disable allow prefer require; do
	[ "$(rq "dbname=b sslmode=$mode" "select 1")" = 1 ] || fail "sslmode=$mode failed"
done
[ "$(psql -X -At "host=localhost port=$rport user=rift dbname=b sslmode=verify-full \
	sslrootcert=$state/tls/server.crt" -c "select 1")" = 1 ] || fail "sslmode=verify-full failed"
python3 "$(dirname "$0")/router_direct_tls.py" "$rport" "$state/tls/server.crt" b rift ||
	fail "direct TLS negotiation"
[ "$(rq "dbname=b gssencmode=prefer sslmode=disable" "select 1")" = 1 ] || fail "gssencmode=prefer"
if psql -X "host=127.0.0.1 port=$rport user=rift dbname=b gssencmode=require" -c "select 1" \
	>/dev/null 2>&1; then
	fail "gssencmode=require should be refused (rift does not do GSSAPI encryption)"
fi

# unknown branch: 3D000 with a hint, never a confusing error
psql -X "host=127.0.0.1 port=$rport user=rift dbname=nope sslmode=disable" -c "select 1" \
	>"$TEST_TMP/nope.out" 2>&1 && fail "unknown branch accepted"
grep -q 'database "nope" does not exist' "$TEST_TMP/nope.out" || fail "$(cat "$TEST_TMP/nope.out")"
grep -q 'rift list' "$TEST_TMP/nope.out" || fail "no hint in: $(cat "$TEST_TMP/nope.out")"
psql -X "host=127.0.0.1 port=$rport user=rift dbname=../x sslmode=disable" -c "select 1" \
	>/dev/null 2>&1 && fail "invalid branch name accepted"

# libpq program: query, PQcancel of pg_sleep, connection still usable
"$RIFT_BIN/pq_client" "host=127.0.0.1 port=$rport user=rift dbname=a sslmode=require" \
	>"$TEST_TMP/pq.out" || fail "pq_client failed: $(cat "$TEST_TMP/pq.out")"
grep -q '^cancel=ok$' "$TEST_TMP/pq.out" || fail "cancel through the router failed"
# the cancel reached only that query: another session on the same branch was untouched
rq "dbname=a" "create table canary(x int)" >/dev/null
[ "$(rq "dbname=a" "select count(*) from canary")" = 0 ] || fail "other sessions disturbed"

# pgbench through the router
pgbench -q -i -s 1 "host=127.0.0.1 port=$rport user=rift dbname=b" >/dev/null 2>&1 ||
	fail "pgbench -i through the router"
pgbench -T 3 -c 4 -j 2 "host=127.0.0.1 port=$rport user=rift dbname=b" >"$TEST_TMP/pgb.out" \
	2>&1 || fail "pgbench through the router: $(tail -3 "$TEST_TMP/pgb.out")"
grep -q "number of failed transactions: 0" "$TEST_TMP/pgb.out" || fail "pgbench saw failures"
pgbench -T 3 -c 4 -j 2 -C -S "host=127.0.0.1 port=$rport user=rift dbname=b" \
	>"$TEST_TMP/pgbc.out" 2>&1 || fail "pgbench -C through the router"
grep -q 'routed to branch a' "$TEST_TMP/riftd.log" || fail "no routing log line"
wait_log 'closed (client closed)' || fail "no close log line"
grep -q "$PGPASSWORD" "$TEST_TMP/riftd.log" && fail "a password reached the log"
# plaintext sessions longer than a second are relayed by the kernel (TLS ones never are)
[ "$(psql -q -X -At "host=127.0.0.1 port=$rport user=rift dbname=b sslmode=disable" \
	-c 'do $$ begin perform pg_sleep(1.2); end $$' -c "select count(*) from orders")" = 5000 ] ||
	fail "a plaintext session longer than a second failed"
if [ $splice = 1 ]; then
	wait_log 'kernel-spliced' || fail "no session was spliced in the kernel"
else
	grep -q 'kernel-spliced' "$TEST_TMP/riftd.log" && fail "kernel_splice = 0 was ignored"
fi
exit 0
