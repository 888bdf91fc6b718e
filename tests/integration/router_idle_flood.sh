#!/usr/bin/env bash
# router_idle_flood.sh — 5000 connections that never send a startup packet do not keep real
# clients out: the oldest silent ones make room ([router] max_startup_clients), psql and
# pgbench get through with no failures, and riftd's sockets return to what they were.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
# no kept server sessions: riftd's socket count must come back exactly
set_conf "$state" pool_size 0
start_riftd "$state"
rport=$(router_port "$state")
PGPASSWORD=$(demo_password "$state")
export PGPASSWORD
router="host=127.0.0.1 port=$rport user=rift dbname=main sslmode=disable"
[ "$(psql -X -At "$router" -c "select 1")" = 1 ] || fail "router does not serve before the flood"
script=$TEST_TMP/q.sql
echo "select count(*) from orders where id < 50;" >"$script"
# -C: a new connection (SSL-less startup, SCRAM, a server fork) for every transaction
bench() { pgbench -n -C -T 3 -c 4 -j 2 -f "$script" "$router" >"$TEST_TMP/pgb.out" 2>&1; }
bench || fail "pgbench before the flood: $(tail -5 "$TEST_TMP/pgb.out")"
base_lat=$(sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' "$TEST_TMP/pgb.out")
echo "pgbench -C before the flood: latency average $base_lat ms"
sleep 1
before=$(sockets_of "$RIFTD_PID")

python3 "$(dirname "$0")/router_idle_flood.py" "$rport" 5000 "$TEST_TMP/ready" "$TEST_TMP/stop" \
	>"$TEST_TMP/flood.out" 2>&1 &
flood=$!
on_exit "touch $TEST_TMP/stop; wait $flood"
for _ in $(seq 600); do
	[ -e "$TEST_TMP/ready" ] && break
	kill -0 $flood 2>/dev/null || fail "the flood ended early: $(cat "$TEST_TMP/flood.out")"
	sleep 0.1
done
[ -e "$TEST_TMP/ready" ] || fail "5000 connections were not open within 60 s"
cat "$TEST_TMP/flood.out"
echo "riftd sockets with the flood held: $(sockets_of "$RIFTD_PID")"

# sslmode=prefer: SSLRequest first, then TLS, then the packet, all while the flood is held
t0=$(date +%s%N)
out=$(psql -X -At "host=127.0.0.1 port=$rport user=rift dbname=main" -c "select 1" 2>&1) ||
	fail "psql during the flood: $out"
[ "$out" = 1 ] || fail "psql during the flood said: $out"
echo "psql during the flood: $(((($(date +%s%N) - t0)) / 1000000)) ms"
bench || fail "pgbench during the flood: $(tail -5 "$TEST_TMP/pgb.out")"
grep -E "number of (transactions actually processed|failed)|latency average" "$TEST_TMP/pgb.out"
grep -q "number of failed transactions: 0" "$TEST_TMP/pgb.out" || fail "pgbench had failures"
lat=$(sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' "$TEST_TMP/pgb.out")
# generous: the runner's two cores are shared with other tests
awk -v l="$lat" -v b="$base_lat" 'BEGIN { exit !(l < 1000 || l < 4 * b) }' ||
	fail "pgbench latency $lat ms during the flood, $base_lat ms before"
wait_log 'without a startup packet closed to make room' || fail "no eviction was logged"

touch "$TEST_TMP/stop"
wait $flood
for _ in $(seq 100); do
	after=$(sockets_of "$RIFTD_PID")
	[ "$after" -le "$before" ] && break
	sleep 0.1
done
echo "riftd sockets: $before before, $after after"
[ "$after" -le "$before" ] || fail "riftd holds $after sockets after the flood, $before before"
[ "$(psql -X -At "$router" -c "select 1")" = 1 ] || fail "router does not serve after the flood"
exit 0
