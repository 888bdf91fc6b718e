#!/usr/bin/env bash
# burst_jobs.sh — many CI jobs at once: every branch starts and answers, writes stay isolated,
# and one slow start never holds up routing for other branches.
source "$RIFT_TESTLIB"

JOBS=${BURST_JOBS:-30}
state=$TEST_TMP/state
"$RIFT_BIN/rift" --state "$state" init >/dev/null || fail "rift init failed"
# every start must succeed, however loaded the machine running the tests is (sanitizers, other
# tests in parallel): a job waits as long as it takes rather than failing at the default 60 s
grep -q '^start_timeout = 60$' "$state/rift.conf" || fail "rift.conf lacks start_timeout"
set_conf "$state" start_timeout 900
# the slow-start hook only delays the branch named "slow"
export RIFT_TEST_SLOW_START=slow:40
start_riftd "$state"
rift() { "$RIFT_BIN/rift" --state "$state" "$@"; }

# ---- JOBS jobs at once, each the way a CI job does it: create, connect with rift url, migrate
job() {
	local n=$1 url
	rift create "j$n" -q || return 1
	url=$(rift url "j$n") || return 1
	[ "$(psql -X "$url" -Atc 'select count(*) from orders')" = 5000 ] || return 2
	psql -X -q "$url" -v ON_ERROR_STOP=1 \
		-c "create table job_$n (id int primary key, v text)" \
		-c "insert into job_$n select g, 'x' from generate_series(1, 1000) g" \
		-c "create index on job_$n (v)" || return 3
	[ "$(psql -X "$url" -Atc "select count(*) from pg_class where relname like 'job\\_%' and relkind = 'r'")" = 1 ] ||
		return 4
}
t0=$(date +%s.%N)
pids=()
for ((n = 1; n <= JOBS; n++)); do
	job "$n" >"$TEST_TMP/job$n.out" 2>&1 &
	pids+=($!)
done
failed=0
for ((n = 1; n <= JOBS; n++)); do
	rc=0
	wait "${pids[n - 1]}" || rc=$?
	if [ "$rc" -ne 0 ]; then
		failed=$((failed + 1))
		echo "job $n failed ($rc):" >&2
		cat "$TEST_TMP/job$n.out" >&2
	fi
done
t1=$(date +%s.%N)
echo "$JOBS jobs at once: $failed failed, $(echo "$t1 - $t0" | bc) s in all"
# how long each start took, and how long it waited for a start slot (riftd logs both)
sed -n 's/.*started in \([0-9.]*\) s (after \([0-9.]*\) s waiting.*/\1 \2/p' "$TEST_TMP/riftd.log" |
	sort -n | awk '{s[NR] = $1; w += $2} END {if (NR) printf "starts: %d, median %.2f s, max %.2f s, mean wait for a slot %.2f s\n", NR, s[int((NR + 1) / 2)], s[NR], w / NR}'
[ "$failed" -eq 0 ] || fail "$failed of $JOBS concurrent jobs failed"
grep -q "was taken meanwhile" "$TEST_TMP/riftd.log" && fail "a start lost a port race"
# every job's writes stayed in its own branch, and main has none of them
[ "$(psql -X "$(rift url main)" -Atc "select count(*) from pg_class where relname like 'job\\_%'")" = 0 ] ||
	fail "a job's table shows in main"
if [ "$JOBS" -gt 0 ]; then
	[ "$(psql -X "$(rift url j1)" -Atc 'select count(*) from job_1')" = 1000 ] || fail "j1 lost its rows"
fi

# ---- a slow start (40 s, through the test hook) does not hold up other branches' clients
rift create slow -q
rift create other -q
url_other=$(rift url other)
psql -X "$url_other" -Atc 'select 1' >/dev/null || fail "branch other does not answer"
psql -X "$(rift url slow)" -Atc 'select 42' >"$TEST_TMP/slow1.out" 2>&1 &
slow1=$!
sleep 0.5
psql -X "$(rift url slow)" -Atc 'select 43' >"$TEST_TMP/slow2.out" 2>&1 &
slow2=$!
sleep 0.5
# 1,040 queries on 52 new connections, each routed by the router's loop (which once waited
# for the slow branch's start while routing its second client)
t0=$(date +%s.%N)
seq -f 'select %g;' 20 >"$TEST_TMP/twenty.sql"
pgbench -n -C -c 4 -t 13 -f "$TEST_TMP/twenty.sql" "$url_other" >"$TEST_TMP/pgbench.out" 2>&1 ||
	{ cat "$TEST_TMP/pgbench.out" >&2; fail "pgbench on branch other failed during a slow start"; }
t1=$(date +%s.%N)
took=$(echo "$t1 - $t0" | bc)
echo "1040 queries on 52 routed connections to another branch during a 40 s start: $took s"
grep -q 'number of transactions actually processed: 52/52' "$TEST_TMP/pgbench.out" ||
	fail "not every query on branch other completed"
# the proof: every query on the other branch was answered while the slow start still ran (the
# old router loop waited for it, so pgbench ended only after the slow branch had started)
kill -0 "$slow1" 2>/dev/null || fail "other branches waited for the slow start ($took s)"
wait "$slow1" || { cat "$TEST_TMP/slow1.out" >&2; fail "the first client of the slow branch failed"; }
wait "$slow2" || { cat "$TEST_TMP/slow2.out" >&2; fail "the second client of the slow branch failed"; }
[ "$(cat "$TEST_TMP/slow1.out")" = 42 ] && [ "$(cat "$TEST_TMP/slow2.out")" = 43 ] ||
	fail "the slow branch's clients got wrong answers"
exit 0
