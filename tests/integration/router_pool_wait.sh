#!/usr/bin/env bash
# router_pool_wait.sh — a client that arrives while its kept server session is still being reset
# waits for the reset and gets that session; if the reset hangs, it gets a new backend after
# 5 s; a waiter that gives up leaves the kept session to the next client; a waiter whose branch
# stops meanwhile is answered, not handed the old server's port.
source "$RIFT_TESTLIB"

riftd_with_branch w
rport=$(router_port "$state")
PGPASSWORD=$(demo_password "$state")
export PGPASSWORD
router="host=127.0.0.1 port=$rport user=rift dbname=w sslmode=disable connect_timeout=30"
pid() { psql -X -At "$router" -c "select pg_backend_pid()" 2>"$TEST_TMP/pid.err"; }
# another startup packet (application_name), so never one of the sessions under test
other="$router application_name=locker"
# straight to the server for probes, so their own sessions are never kept (and reset) either
sport=$(R --json start w | jq -r .port) || fail "rift start w failed"

# hold_reset: a session of its own locks the pg_settings view, which the check after every reset
# reads, so resets block until release_reset; returns once the lock is held
hold_reset() {
	psql -X -At "$other" -c "begin" \
		-c "lock table pg_catalog.pg_settings in access exclusive mode" \
		-c "select pg_sleep(120)" -c "commit" >"$TEST_TMP/locker.out" 2>&1 &
	locker=$!
	on_exit "kill $locker 2>/dev/null"
	local i
	for ((i = 0; i < 400; i++)); do
		[ "$(demo_psql "$state" "$sport" "select count(*) from pg_locks where
			relation = 'pg_catalog.pg_settings'::regclass and granted and
			mode = 'AccessExclusiveLock'")" = 1 ] && return 0
		sleep 0.05
	done
	fail "the locker never held its lock: $(cat "$TEST_TMP/locker.out")"
}
# release_reset: the locker's sleep is cancelled, so its transaction ends and resets go on
release_reset() {
	demo_psql "$state" "$sport" "select pg_cancel_backend(pid) from pg_stat_activity
		where pid <> pg_backend_pid() and query = 'select pg_sleep(120)'" >/dev/null ||
		fail "cannot cancel the locker"
	wait "$locker" 2>/dev/null || true
}
# waiting PID: true while client PID still runs after a second (it waits for the reset)
waiting() {
	sleep 1
	kill -0 "$1" 2>/dev/null
}

# a reset that takes long: the next client waits for it instead of starting a backend
first=$(pid)
[ -n "$first" ] || fail "no first session: $(cat "$TEST_TMP/pid.err")"
hold_reset
first=$(pid)
[ -n "$first" ] || fail "no session while the lock is held: $(cat "$TEST_TMP/pid.err")"
pid >"$TEST_TMP/second.out" &
second_client=$!
waiting "$second_client" || fail "the second client did not wait for the reset: $(cat "$TEST_TMP/second.out")"
release_reset
wait "$second_client" || fail "the waiting client failed: $(cat "$TEST_TMP/pid.err")"
second=$(cat "$TEST_TMP/second.out")
[ "$second" = "$first" ] ||
	fail "a client that came during the reset got a new backend ($second, kept $first)"

# a client that gives up while waiting: the session is kept for the one after it
hold_reset
first=$(pid)
psql -X -At "$router" -c "select 1" >/dev/null 2>&1 &
quitter=$!
waiting "$quitter" || fail "the quitter did not wait for the reset"
kill -KILL "$quitter"
wait "$quitter" 2>/dev/null || true
release_reset
[ "$(pid)" = "$first" ] || fail "a waiter that left took the kept session with it"

# a reset that hangs: after 5 s the session is closed and the waiter gets a new backend
hold_reset
first=$(pid)
t0=$(date +%s%N)
second=$(pid)
waited=$((($(date +%s%N) - t0) / 1000000))
[ -n "$second" ] || fail "the waiter of a hung reset failed: $(cat "$TEST_TMP/pid.err")"
[ "$second" != "$first" ] || fail "a hung reset's session was handed over"
((waited >= 4000)) || fail "the waiter of a hung reset got a backend after ${waited} ms, not 5 s"
wait_log "closed instead of kept: its reset took longer than 5 s" ||
	fail "no log line for the hung reset"
release_reset
echo "a hung reset gave its waiter a new backend after ${waited} ms"

# the branch stops while a client waits: the client is answered (by the branch started again, or
# with an error if it came during the shutdown), never left hanging, and the router goes on
hold_reset
first=$(pid)
psql -X -At "$router" -c "select pg_backend_pid()" >"$TEST_TMP/late.out" 2>&1 &
late=$!
waiting "$late" || fail "the client did not wait for the reset: $(cat "$TEST_TMP/late.out")"
expect_status 0 R stop w
for _ in $(seq 300); do kill -0 "$late" 2>/dev/null || break; sleep 0.1; done
kill -0 "$late" 2>/dev/null && fail "a client waiting on a stopped branch's session still hangs"
wait "$late" && { [ "$(cat "$TEST_TMP/late.out")" != "$first" ] ||
	fail "a stopped server's session was handed over"; }
echo "waiter of a stopped branch: $(head -c 200 "$TEST_TMP/late.out")"
wait "$locker" 2>/dev/null || true # the stop ended the locker's session

# nothing is left waiting or half-kept: a plain reuse still works
first=$(pid)
[ -n "$first" ] || fail "no session after the waits: $(cat "$TEST_TMP/pid.err")"
[ "$(pid)" = "$first" ] || fail "no reuse after the waits"
