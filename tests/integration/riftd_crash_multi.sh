#!/usr/bin/env bash
# riftd_crash_multi.sh — kill -9 riftd while four branches run pgbench at once: every commit
# acknowledged in any branch survives, and every branch is undamaged.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
branches="w0 w1 w2 w3"
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
start_riftd "$state"
pw=$(demo_password "$state")
export PGPASSWORD=$pw

# w0 gets the pgbench tables; w1..w3 are branched from it while it runs.
api "$state" POST /v1/branches '{"name":"w0"}'
api "$state" POST /v1/branches/w0/start
[ "$API_STATUS" = 200 ] || fail "start w0: $(cat "$API_OUT")"
port=$(api_field .port)
pgbench -q -h 127.0.0.1 -p "$port" -U rift -i -s 1 demo >/dev/null 2>&1 || fail "pgbench -i"
declare -A ports
for b in w1 w2 w3; do
	api "$state" POST /v1/branches "{\"name\":\"$b\",\"from\":\"w0\"}"
	[ "$API_STATUS" = 201 ] || [ "$API_STATUS" = 200 ] || fail "create $b: $(cat "$API_OUT")"
done
for b in $branches; do
	api "$state" POST "/v1/branches/$b/start"
	[ "$API_STATUS" = 200 ] || fail "start $b: $(cat "$API_OUT")"
	ports[$b]=$(api_field .port)
done

# Each client logs every transaction it saw committed (-l); riftd dies while all four write.
pids=()
for b in $branches; do
	mkdir -p "$TEST_TMP/pgb-$b"
	(cd "$TEST_TMP/pgb-$b" && pgbench -h 127.0.0.1 -p "${ports[$b]}" -U rift -c 2 -T 40 -l demo \
		>"$TEST_TMP/pgbench-$b.out" 2>&1) &
	pids+=($!)
done
sleep 10
kill -KILL "$RIFTD_PID"
wait "$RIFTD_PID" 2>/dev/null || true
for p in "${pids[@]}"; do wait "$p" || true; done # broken connections: expected

declare -A acked
for b in $branches; do
	acked[$b]=$(cat "$TEST_TMP/pgb-$b"/pgbench_log.* 2>/dev/null |
		awk '$3 != "-1" && $3 != "" {n++} END {print n+0}')
	[ "${acked[$b]}" -gt 10 ] || fail "$b committed only ${acked[$b]} transactions before the kill"
done

start_riftd "$state"
for b in $branches; do
	api "$state" POST "/v1/branches/$b/start"
	[ "$API_STATUS" = 200 ] || fail "$b did not start again: $(cat "$API_OUT")"
	port=$(api_field .port)
	history=$(psql -X -h 127.0.0.1 -p "$port" -U rift -d demo -Atc \
		"select count(*) from pgbench_history")
	echo "$b: pgbench saw ${acked[$b]} commits acknowledged; the branch holds $history"
	[ "$history" -ge "${acked[$b]}" ] ||
		fail "$b lost commits: ${acked[$b]} acknowledged, $history present"
	[ "$(psql -X -h 127.0.0.1 -p "$port" -U rift -d demo -Atc \
		"select sum(abalance) = (select coalesce(sum(delta), 0) from pgbench_history)
		 from pgbench_accounts")" = t ] || fail "$b: balances do not match the history"
	psql -X -q -h 127.0.0.1 -p "$port" -U rift -d demo -c \
		"create extension if not exists amcheck" >/dev/null
	"$PG_BIN/pg_amcheck" -h "$state/run/pg/$b" -p "$port" -U postgres --heapallindexed \
		-d demo >/dev/null || fail "pg_amcheck found corruption in $b after the crash"
done
