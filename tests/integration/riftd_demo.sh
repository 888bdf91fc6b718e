#!/usr/bin/env bash
# riftd_demo.sh — rift init (demo) and riftd's branch lifecycle through the HTTP API.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
expect_output 'store ready'
expect_status 1 "$RIFT_BIN/rift" --state "$state" init
expect_output 'already holds something'
[ "$(stat -c %a "$state/db")" = 700 ] || fail "db/ is not 0700"
grep -q '^idle_timeout = 600' "$state/rift.conf" || fail "rift.conf lacks documented defaults"
start_riftd "$state"
[ "$(stat -c %a "$state/run/riftd.sock")" = 600 ] || fail "API socket is not 0600"

api "$state" GET /v1/status
[ "$(api_field '.base_mode + "/" + .default_database')" = demo/demo ] || fail "status is wrong"
api "$state" POST /v1/branches '{"name":"feat"}'
[ "$API_STATUS" = 201 ] || fail "create answered $API_STATUS: $(cat "$API_OUT")"
[ "$(api_field '.name + " " + .parent + " " + .state')" = "feat main stopped" ] ||
	fail "create returned $(cat "$API_OUT")"

# bad input: each a clear error and no change
api "$state" GET /v1/branches
before=$(api_field '[.branches[].name] | join(",")')
for body in '{"name":"../x"}' '{"name":"A"}' "{\"name\":\"$(printf 'a%.0s' {1..64})\"}" \
	'{"name":"feat"}' '{nope' '[]' '{"name":5}' '{"name":"x","from":"nope"}'; do
	api "$state" POST /v1/branches "$body"
	case "$API_STATUS" in 400 | 404 | 409) ;; *) fail "bad body $body answered $API_STATUS" ;; esac
	[ "$(api_field '.error.message | length')" -gt 20 ] ||
		fail "no actionable message for $body: $(cat "$API_OUT")"
done
api "$state" DELETE /v1/branches/nope
[ "$API_STATUS" = 404 ] || fail "delete of unknown branch answered $API_STATUS"
api "$state" DELETE /v1/branches/main
[ "$API_STATUS" = 409 ] || fail "delete of main (it has children) answered $API_STATUS"
api "$state" GET /v1/branches
after=$(api_field '[.branches[].name] | join(",")')
[ "$before" = "$after" ] || fail "bad input changed the branches: $before -> $after"

# two branches running at once, with different data
api "$state" POST /v1/branches/feat/start
port_f=$(api_field .port)
[ "$API_STATUS" = 200 ] && [ "$port_f" -gt 0 ] || fail "start of feat failed: $(cat "$API_OUT")"
api "$state" POST /v1/branches/main/start
port_m=$(api_field .port)
[ "$port_f" != "$port_m" ] || fail "two branches share a port"
[ "$(demo_psql "$state" "$port_f" "select count(*) from orders")" = 5000 ] || fail "no demo data"
demo_psql "$state" "$port_f" "drop table orders cascade; delete from customers where id > 10"
[ "$(demo_psql "$state" "$port_m" "select count(*) from orders")" = 5000 ] ||
	fail "a write in feat shows in main"
[ "$(demo_psql "$state" "$port_f" "select count(*) from customers")" = 10 ] || fail "feat lost its write"

# riftd counts a server's clients every tenth of idle_timeout (60 s at most), not every 2 s:
# each count is a new session on the server (a fork, and on a FUSE mount a writeback of every
# file it wrote, at its exit). After the first count, which follows a start at once, main's
# server sees in 7 s only the session that read s0.
sleep 3
s0=$(demo_psql "$state" "$port_m" "select sum(sessions) from pg_stat_database")
sleep 7
s1=$(demo_psql "$state" "$port_m" "select sum(sessions) from pg_stat_database")
[ $((s1 - s0)) -le 1 ] || fail "riftd opened $((s1 - s0 - 1)) sessions on an idle server in 7 s"

# a branch of a running branch sees its committed state, and goes its own way
api "$state" POST /v1/branches '{"name":"feat2","from":"feat"}'
[ "$API_STATUS" = 201 ] || fail "branch of a running branch failed"
api "$state" POST /v1/branches/feat2/start
port_2=$(api_field .port)
[ "$(demo_psql "$state" "$port_2" "select count(*) from customers")" = 10 ] ||
	fail "feat2 does not see feat's committed writes"
demo_psql "$state" "$port_2" "create table only2(x int)"
[ "$(demo_psql "$state" "$port_f" "select count(*) from pg_class where relname='only2'")" = 0 ] ||
	fail "feat2's write shows in feat"

# reset: feat2 goes back to feat's current state
demo_psql "$state" "$port_f" "create table after_reset_point(x int)"
api "$state" POST /v1/branches/feat2/reset
[ "$API_STATUS" = 200 ] || fail "reset failed: $(cat "$API_OUT")"
port_2=$(api_field .port)
[ "$(demo_psql "$state" "$port_2" "select count(*) from pg_class where relname in ('only2', 'after_reset_point')")" = 1 ] ||
	fail "reset did not bring feat2 back to feat's state"

# delete gives the space back and stops the server
api "$state" DELETE /v1/branches/feat
[ "$API_STATUS" = 409 ] || fail "delete of a branch with children answered $API_STATUS"
api "$state" DELETE /v1/branches/feat2
[ "$API_STATUS" = 200 ] || fail "delete feat2 failed"
demo_psql "$state" "$port_2" "select 1" 2>/dev/null && fail "feat2's server still answers"
mountpoint -q "$state/mnt/feat2" && fail "feat2 is still mounted"
[ -e "$state/log/feat2.log" ] && fail "feat2's server log outlived it"
[ -e "$state/log/feat.log" ] || fail "feat's server log is gone with feat2's"
api "$state" GET /metrics
grep -q '^rift_create_seconds_count 2$' "$API_OUT" || fail "metrics lack creates"
grep -q '^rift_instances_running 2$' "$API_OUT" || fail "metrics: running count"

# a clean stop leaves no server and no mount behind
kill -TERM "$RIFTD_PID"
wait "$RIFTD_PID" || fail "riftd exited with an error on SIGTERM"
pgrep -f -- "-D $state/mnt/" >/dev/null && fail "a server outlived riftd"
grep -q " $state/mnt/" /proc/self/mountinfo && fail "a mount outlived riftd"
exit 0
