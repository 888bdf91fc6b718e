#!/usr/bin/env bash
# riftd_crash.sh — kill -9 riftd while pgbench writes: every acknowledged commit survives.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
start_riftd "$state"
api "$state" POST /v1/branches '{"name":"bench"}'
api "$state" POST /v1/branches/bench/start
[ "$API_STATUS" = 200 ] || fail "start: $(cat "$API_OUT")"
port=$(api_field .port)
pw=$(demo_password "$state")
export PGPASSWORD=$pw
pgbench -q -h 127.0.0.1 -p "$port" -U rift -i -s 2 demo >/dev/null 2>&1 || fail "pgbench -i"

# Each client logs every transaction it saw committed (-l); riftd dies in the middle.
mkdir -p "$TEST_TMP/pgb"
(cd "$TEST_TMP/pgb" && pgbench -h 127.0.0.1 -p "$port" -U rift -c 2 -T 30 -l demo \
	>"$TEST_TMP/pgbench.out" 2>&1) &
bench=$!
# kill once the clients are committing for a while (connecting alone can take seconds on a
# loaded machine): 200 commits seen by the server, then 3 s more
for ((i = 0; i < 600; i++)); do
	n=$(psql -X -h 127.0.0.1 -p "$port" -U rift -d demo -Atc \
		'select count(*) from pgbench_history' 2>/dev/null || echo 0)
	[ "$n" -ge 200 ] && break
	sleep 0.2
done
sleep 3
kill -KILL "$RIFTD_PID"
wait "$RIFTD_PID" 2>/dev/null || true
wait $bench || true # the clients see their connections break: expected
acked=$(cat "$TEST_TMP"/pgb/pgbench_log.* | awk '$3 != "-1" && $3 != "" {n++} END {print n+0}')
[ "$acked" -gt 50 ] || fail "pgbench committed only $acked transactions before the kill"

# The next riftd cleans up the dead mount and orphaned server and brings the branch back.
start_riftd "$state"
api "$state" GET /v1/branches/bench
[ "$(api_field .state)" = running ] || fail "bench is not running again: $(cat "$API_OUT")"
port=$(api_field .port)
history=$(psql -X -h 127.0.0.1 -p "$port" -U rift -d demo -Atc "select count(*) from pgbench_history")
echo "pgbench saw $acked commits acknowledged; the branch holds $history"
[ "$history" -ge "$acked" ] || fail "lost commits: $acked acknowledged, $history present"
psql -X -q -h 127.0.0.1 -p "$port" -U rift -d demo -c "create extension if not exists amcheck"
# as root, like riftd: the socket directory is the branch server's own uid's (0700)
"$PG_BIN/pg_amcheck" -h "$state/run/pg/bench" -p "$port" -U postgres --heapallindexed -d demo ||
	fail "pg_amcheck found corruption after the crash"
[ "$(grep -c . "$TEST_TMP/riftd.log")" -gt 0 ] && grep -q "stale mount\|orphaned server" \
	"$TEST_TMP/riftd.log" || fail "the restart did not clean up after the killed riftd"
