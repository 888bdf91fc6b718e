#!/usr/bin/env bash
# security_idle_stall.sh — branches whose servers do not answer riftd (a branch superuser stopped
# its postmaster) hold up only their own idle work: another branch is still counted every 2 s,
# and an expired branch is still deleted on time.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
"$RIFT_BIN/rift" --state "$state" init >/dev/null || fail "rift init failed"
# riftd counts a server's clients every tenth of idle_timeout, at least every 2 s; at 20 s
# nothing stops for idleness while the test looks
set_conf "$state" idle_timeout 20
start_riftd "$state"
rift() { "$RIFT_BIN/rift" --state "$state" "$@"; }
listed() { rift --json list | jq -e --arg n "$1" '.branches[] | select(.name == $n)' >/dev/null; }

stalled=(stall1 stall2 stall3)
for b in "${stalled[@]}" victim; do
	rift create "$b" -q || fail "rift create $b failed"
done
# cleanups run newest first: this one before riftd's stop, which would otherwise wait
# stop_timeout for each stopped postmaster
on_exit "pkill -CONT -f -- '-D $state/mnt/stall'"
psql -X -q "$(rift url victim)" -c "alter system set log_connections = on" \
	-c "select pg_reload_conf()" >/dev/null || fail "could not turn on victim's log_connections"
for b in "${stalled[@]}"; do
	# a connection to a stopped postmaster waits for its connect timeout (5 s): one pass over
	# the three cost a loop that asked them in turn 15 s
	psql -X -q "$(rift url "$b")" \
		-c "copy (select 1 where false) to program 'kill -STOP \$(head -1 postmaster.pid)'" ||
		fail "could not stop $b's postmaster"
done

# victim's counts go on every 2 s: each is a connection of riftd's over its socket directory
log=$state/log/victim.log
lines=$(wc -l <"$log")
sleep 10
counts=$(tail -n +"$((lines + 1))" "$log" | grep -c 'connection authorized: user=postgres database=postgres') ||
	true
echo "riftd counted victim's clients $counts times in 10 s"
[ "$counts" -ge 3 ] ||
	fail "riftd counted victim's clients $counts times in 10 s (about 5 expected) while three servers did not answer"

# an expired branch goes within a tick or two of its --ttl
rift create short --ttl 3s -q || fail "rift create short --ttl 3s failed"
t0=$(date +%s.%N)
for ((i = 0; i < 200; i++)); do
	listed short || break
	sleep 0.1
done
listed short && fail "branch short is still listed 20 s after its 3 s --ttl"
took=$(echo "$(date +%s.%N) - $t0" | bc)
echo "short was deleted ${took} s after its create (--ttl 3s)"
# expiry, up to a tick, the delete, a poll: about 5 s; a loop held up by the three took 17 s
[ "$(echo "$took <= 9" | bc)" = 1 ] || fail "short was deleted ${took} s after its create, --ttl 3s"

exit 0
