#!/usr/bin/env bash
# router_fd_limit.sh — riftd under a hard open-file limit it cannot raise (256): it says so at
# start, and running out of descriptors on accept is never sticky: 400 idle connections neither
# make it spin (libevent leaves a failing listener on) nor keep psql out, during or after.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
test_conf "$state"
rport=$ROUTER_PORT
set_conf "$state" pool_size 0
prlimit --nofile=256:256 "$RIFT_BIN/riftd" --state "$state" >>"$TEST_TMP/riftd.log" 2>&1 &
RIFTD_PID=$!
on_exit "stop_riftd_quietly $RIFTD_PID $state"
for _ in $(seq 200); do
	curl -s --unix-socket "$state/run/riftd.sock" http://rift/v1/status >/dev/null 2>&1 && break
	kill -0 $RIFTD_PID 2>/dev/null || fail "riftd exited at start"
	sleep 0.05
done
wait_log 'open-file limit 256 (hard limit 256) is below' ||
	fail "riftd did not say its open-file limit is too low"
PGPASSWORD=$(demo_password "$state")
export PGPASSWORD
router="host=127.0.0.1 port=$rport user=rift dbname=main sslmode=disable"
[ "$(psql -X -At "$router" -c "select 1")" = 1 ] || fail "router does not serve before"
cpu() { awk '{print $14 + $15}' "/proc/$RIFTD_PID/stat"; } # clock ticks, user + system
hz=$(getconf CLK_TCK)

cpu0=$(cpu)
python3 "$(dirname "$0")/router_idle_flood.py" "$rport" 400 "$TEST_TMP/ready" "$TEST_TMP/stop" \
	>"$TEST_TMP/flood.out" 2>&1 &
flood=$!
on_exit "touch $TEST_TMP/stop; wait $flood"
for _ in $(seq 300); do
	[ -e "$TEST_TMP/ready" ] && break
	kill -0 $flood 2>/dev/null || fail "the flood ended early: $(cat "$TEST_TMP/flood.out")"
	sleep 0.1
done
[ -e "$TEST_TMP/ready" ] || fail "400 connections were not open within 30 s"
cat "$TEST_TMP/flood.out"
echo "riftd sockets with 400 connections held: $(sockets_of "$RIFTD_PID")"
sleep 4 # held: a listener left on after EMFILE would spin now
out=$(psql -X -At "$router" -c "select 1" 2>&1) || fail "psql while 400 connections are held: $out"
touch "$TEST_TMP/stop"
wait $flood
used=$(($(cpu) - cpu0))
echo "riftd CPU while 400 connections came and were held ~5 s: $used ticks ($hz per second)"
[ "$used" -lt "$hz" ] || fail "riftd used $used ticks of CPU: a busy loop on accept errors?"

sleep 1
[ "$(psql -X -At "$router" -c "select 1")" = 1 ] || fail "router does not serve after the flood"
# that session was spliced: riftd keeps the pair until the kernel has passed on every byte (at
# most 5 s), so its sockets may outlive the psql by a moment, longer under the sanitizers
for ((i = 0; i < 100; i++)); do
	n=$(sockets_of "$RIFTD_PID")
	[ "$n" -le 4 ] && break
	sleep 0.1
done
[ "$n" -le 4 ] || fail "riftd holds $n sockets 10 s after the flood"
exit 0
