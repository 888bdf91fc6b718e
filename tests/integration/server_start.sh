#!/usr/bin/env bash
# server_start.sh — starting branch servers: the wait for a start slot has its own limit (a
# client queued behind a slow start gets 57P03 after [instances] queue_timeout, and the message
# says which limit; a start that has its slot is not cut short by it; stopping riftd never waits
# out the queue), and a server whose log never says it is ready still starts (riftd learns
# readiness from the server's log and falls back to connecting every 100 ms).
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
"$RIFT_BIN/rift" --state "$state" init >/dev/null || fail "rift init failed"
test_conf "$state"
grep -q '^max_starting = 0$' "$state/rift.conf" && grep -q '^queue_timeout = 600$' "$state/rift.conf" ||
	fail "rift.conf lacks max_starting = 0 or queue_timeout = 600: $(grep -E 'max_starting|queue_timeout' "$state/rift.conf")"
set_conf "$state" max_starting 1
set_conf "$state" queue_timeout 3
# the hook holds the one start slot for 8 s whenever "slow" starts
export RIFT_TEST_SLOW_START=slow:8
start_riftd "$state"
rift() { "$RIFT_BIN/rift" --state "$state" "$@"; }
rift create slow -q && rift create other -q || fail "create"

# ---- other queues behind slow's start: refused after 3 s in the queue, saying so
psql -X "$(rift url slow)" -Atc 'select 42' >"$TEST_TMP/slow.out" 2>&1 &
slow=$!
sleep 0.5
t0=$(date +%s%N)
# a second client of other waits behind the first's start: it shares its answer, rather than
# queueing for another queue_timeout
psql -X "$(rift url other)" -Atc 'select 1' >"$TEST_TMP/other_b.out" 2>&1 &
other_b=$!
# libpq shows the refusal's text only: a raw client reads its SQLSTATE
rport=$(router_port "$state")
"$(dirname "$RIFT_TESTLIB")/startup_sqlstate.py" 127.0.0.1 "$rport" rift other \
	>"$TEST_TMP/other_code.out" 2>&1 &
other_code=$!
# while slow holds the one slot and other waits for it, rift status counts both
for _ in $(seq 50); do
	rift --json status >"$TEST_TMP/status.json" || fail "rift status failed"
	[ "$(jq -r '.starting' "$TEST_TMP/status.json")" = 1 ] &&
		[ "$(jq -r '.start_queue' "$TEST_TMP/status.json")" = 1 ] && break
	sleep 0.05
done
[ "$(jq -r '[.starting, .start_queue, .max_starting, .running] | @csv' "$TEST_TMP/status.json")" = 1,1,1,0 ] ||
	fail "rift status during a held start and a queued one: $(cat "$TEST_TMP/status.json")"
rift status | grep 'starting: 1 (of 1 at once), waiting to start: 1' >/dev/null ||
	fail "rift status does not say what starts: $(rift status)"
psql -X "$(rift url other)" -Atc 'select 1' >"$TEST_TMP/other.out" 2>&1 && fail "other answered while the only slot was taken"
waited=$((($(date +%s%N) - t0) / 1000000))
wait "$other_b" && fail "other's second client got an answer while the only slot was taken"
waited_b=$((($(date +%s%N) - t0) / 1000000))
# queueing again would add another queue_timeout (3 s) after the first client's answer; on a
# loaded machine both answers come late, so compare them rather than a fixed bound
[ $((waited_b - waited)) -lt 2500 ] ||
	fail "other's second client waited $waited_b ms, $((waited_b - waited)) ms after the first: it queued again"
grep -q 'start slots' "$TEST_TMP/other_b.out" || fail "other's second client: $(cat "$TEST_TMP/other_b.out")"
wait "$other_code" || fail "the raw client got no answer: $(cat "$TEST_TMP/other_code.out")"
[ "$(cat "$TEST_TMP/other_code.out")" = 57P03 ] ||
	fail "a start refused after queue_timeout answered $(cat "$TEST_TMP/other_code.out"), not 57P03"
grep -q 'waited 3 s for one of the 1 start slots' "$TEST_TMP/other.out" ||
	fail "no queue_timeout message: $(cat "$TEST_TMP/other.out")"
grep -q 'queue_timeout' "$TEST_TMP/other.out" || fail "the message does not name queue_timeout: $(cat "$TEST_TMP/other.out")"
[ "$waited" -ge 2500 ] && [ "$waited" -lt 7500 ] || fail "other was refused after $waited ms, not after about 3 s"
# slow held its slot for 8 s, past queue_timeout: its start is not cut short
wait "$slow" || fail "slow's client failed: $(cat "$TEST_TMP/slow.out")"
[ "$(cat "$TEST_TMP/slow.out")" = 42 ] || fail "slow: $(cat "$TEST_TMP/slow.out")"
[ "$(psql -X "$(rift url other)" -Atc 'select 1' 2>&1)" = 1 ] || fail "other does not start once the slot is free"

# ---- stopping riftd with a start queued for long: the queued start gives up at once
# (both stopped first: a restarted riftd starts again what was running when it stopped)
rift stop slow -q && rift stop other -q || fail "stop slow and other"
kill -TERM "$RIFTD_PID" && wait "$RIFTD_PID" 2>/dev/null
set_conf "$state" queue_timeout 300
start_riftd "$state"
# (plaintext clients: a TLS session whose start is still pending when the router's loop has
# stopped leaves its bufferevent to libevent's finalizers, which LeakSanitizer reported once as
# ~1 KB lost at exit; seen only on this path, noted in the issue, not hidden elsewhere)
PGSSLMODE=disable psql -X "$(rift url slow)" -Atc 'select 42' >"$TEST_TMP/slow2.out" 2>&1 &
slow=$!
sleep 0.5
PGSSLMODE=disable psql -X "$(rift url other)" -Atc 'select 1' >"$TEST_TMP/other2.out" 2>&1 &
queued=$!
sleep 1
t0=$(date +%s)
kill -TERM "$RIFTD_PID"
wait "$RIFTD_PID" 2>/dev/null
took=$(($(date +%s) - t0))
wait "$queued" && fail "the queued client got an answer from a stopping riftd: $(cat "$TEST_TMP/other2.out")"
wait "$slow" || true
# what is left to wait for is slow's start (the 8 s hook and the start itself), not 300 s
[ "$took" -lt 60 ] || fail "riftd took $took s to stop with a start queued"
grep -q 'riftd is stopping; branch "other" was not started' "$TEST_TMP/riftd.log" ||
	fail "the queued start did not give up: $(grep -i 'other' "$TEST_TMP/riftd.log" | tail -5)"

# ---- readiness: the log's line makes riftd connect once; without it, it asks every 100 ms
unset RIFT_TEST_SLOW_START
start_riftd "$state"
[ "$(psql -X "$(rift url other)" -Atc 'select 1' 2>&1)" = 1 ] || fail "other does not start"
grep -q 'database system is ready to accept connections' "$state/log/other.log" ||
	fail "the server's log lacks the line riftd waits for: $(tail -5 "$state/log/other.log")"
psql -X -q "$(rift url other)" -c 'alter system set log_min_messages = fatal' || fail "alter system"
rift stop other -q || fail "stop other"
lines=$(wc -l <"$state/log/other.log")
[ "$(psql -X "$(rift url other)" -Atc 'select 2' 2>&1)" = 2 ] || fail "other does not start without its ready line"
tail -n +$((lines + 1)) "$state/log/other.log" | grep 'ready to accept connections' >/dev/null &&
	fail "log_min_messages = fatal did not silence the ready line; the fallback was not tested"
exit 0
