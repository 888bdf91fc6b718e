#!/usr/bin/env bash
# router_pool_wait.sh — a client that arrives while its kept server session is still being reset
# waits for the reset and gets that session; if the reset hangs, it gets a new backend after
# 5 s; a waiter that gives up leaves the kept session to the next client; a waiter whose branch
# stops meanwhile is answered, not handed the old server's port.
source "$RIFT_TESTLIB"

riftd_with_branch w
rport=$(sed -n 's/^listen = 127.0.0.1:\([0-9]*\)$/\1/p' "$state/rift.conf")
PGPASSWORD=$(sed -n 's/^demo_password=//p' "$state/base.conf")
export PGPASSWORD
router="host=127.0.0.1 port=$rport user=rift dbname=w sslmode=disable connect_timeout=30"
pid() { psql -X -At "$router" -c "select pg_backend_pid()" 2>"$TEST_TMP/pid.err"; }
# another startup packet (application_name), so never one of the sessions under test
other="$router application_name=locker"

# hold_reset SECONDS: a session of its own locks the pg_settings view, which the check after
# every reset reads, so resets block until it lets go; returns once the lock is held
hold_reset() {
	psql -X -At "$other" -c "begin" \
		-c "lock table pg_catalog.pg_settings in access exclusive mode" \
		-c "select pg_sleep($1)" -c "commit" >"$TEST_TMP/locker.out" 2>&1 &
	locker=$!
	on_exit "kill $locker 2>/dev/null"
	local i
	for ((i = 0; i < 200; i++)); do
		[ "$(psql -X -At "$other" -c "select count(*) from pg_locks where
			relation = 'pg_catalog.pg_settings'::regclass and granted and
			mode = 'AccessExclusiveLock'")" = 1 ] && return 0
		sleep 0.05
	done
	fail "the locker never held its lock: $(cat "$TEST_TMP/locker.out")"
}

# a reset that takes seconds: the next client waits for it instead of starting a backend
first=$(pid)
[ -n "$first" ] || fail "no first session: $(cat "$TEST_TMP/pid.err")"
hold_reset 3
first=$(pid)
[ -n "$first" ] || fail "no session while the lock is held: $(cat "$TEST_TMP/pid.err")"
t0=$(date +%s%N)
second=$(pid)
waited=$((($(date +%s%N) - t0) / 1000000))
[ -n "$second" ] || fail "the waiting client failed: $(cat "$TEST_TMP/pid.err")"
[ "$second" = "$first" ] ||
	fail "a client that came during the reset got a new backend ($second, kept $first)"
((waited > 500)) || fail "the second client did not wait for the reset (${waited} ms)"
wait "$locker" || fail "the locker failed: $(cat "$TEST_TMP/locker.out")"
echo "waited ${waited} ms for the kept session's reset"

# a client that gives up while waiting: the session is kept for the one after it
hold_reset 3
first=$(pid)
psql -X -At "$router" -c "select 1" >/dev/null 2>&1 &
quitter=$!
sleep 0.5
kill -KILL "$quitter"
wait "$quitter" 2>/dev/null || true
wait "$locker" || fail "the locker failed: $(cat "$TEST_TMP/locker.out")"
[ "$(pid)" = "$first" ] || fail "a waiter that left took the kept session with it"

# a reset that hangs: after 5 s the session is closed and the waiter gets a new backend
hold_reset 9
first=$(pid)
t0=$(date +%s%N)
second=$(pid)
waited=$((($(date +%s%N) - t0) / 1000000))
[ -n "$second" ] || fail "the waiter of a hung reset failed: $(cat "$TEST_TMP/pid.err")"
[ "$second" != "$first" ] || fail "a hung reset's session was handed over"
((waited >= 4500 && waited < 8000)) || fail "the waiter of a hung reset waited ${waited} ms"
wait_log "closed instead of kept: its reset took longer than 5 s" ||
	fail "no log line for the hung reset"
wait "$locker" || fail "the locker failed: $(cat "$TEST_TMP/locker.out")"
echo "a hung reset gave its waiter a new backend after ${waited} ms"

# the branch stops while a client waits: the client is answered (by the branch started again, or
# with an error if it came during the shutdown), never left hanging, and the router goes on
hold_reset 30
first=$(pid)
psql -X -At "$router" -c "select pg_backend_pid()" >"$TEST_TMP/late.out" 2>&1 &
late=$!
sleep 0.5
expect_status 0 R stop w
for _ in $(seq 150); do kill -0 "$late" 2>/dev/null || break; sleep 0.1; done
kill -0 "$late" 2>/dev/null && fail "a client waiting on a stopped branch's session still hangs"
wait "$late" && { [ "$(cat "$TEST_TMP/late.out")" != "$first" ] ||
	fail "a stopped server's session was handed over"; }
echo "waiter of a stopped branch: $(head -c 200 "$TEST_TMP/late.out")"
wait "$locker" 2>/dev/null || true # the stop ended the locker's session

# nothing is left waiting or half-kept: a plain reuse still works
first=$(pid)
[ -n "$first" ] || fail "no session after the waits: $(cat "$TEST_TMP/pid.err")"
[ "$(pid)" = "$first" ] || fail "no reuse after the waits"
