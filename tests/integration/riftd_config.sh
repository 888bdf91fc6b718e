#!/usr/bin/env bash
# riftd_config.sh — rift.conf is honoured (idle stop, TCP API with a token) and bad keys refused;
# init from a stopped data directory, never from a running one; concurrent starts share one.
source "$RIFT_TESTLIB"

chown postgres "$TEST_TMP"
as_postgres "$PG_BIN/initdb -D $TEST_TMP/pgdata -A trust -U postgres" >/dev/null
mkdir -p "$TEST_TMP/sock" "$TEST_TMP/log" && chown postgres "$TEST_TMP/sock" "$TEST_TMP/log"
port=$(free_port)
as_postgres "$PG_BIN/pg_ctl -D $TEST_TMP/pgdata -l $TEST_TMP/log/src.log -w -o \
	'-p $port -k $TEST_TMP/sock -c listen_addresses=' start" >/dev/null
on_exit "as_postgres '$PG_BIN/pg_ctl -D $TEST_TMP/pgdata -m immediate -w stop' 2>/dev/null"
as_postgres "psql -X -q -h $TEST_TMP/sock -p $port -c 'create table t as select 42 as x' postgres"
state=$TEST_TMP/state
expect_status 1 "$RIFT_BIN/rift" --state "$state" init --pgdata "$TEST_TMP/pgdata"
expect_output 'in use by a running server'
as_postgres "$PG_BIN/pg_ctl -D $TEST_TMP/pgdata -w stop" >/dev/null
expect_status 0 "$RIFT_BIN/rift" --state "$state" init --pgdata "$TEST_TMP/pgdata"

# a bad key is refused with the file and the line
cp "$state/rift.conf" "$TEST_TMP/good.conf"
printf '[instances]\nidle_timout = 3\n' >>"$state/rift.conf"
expect_status 1 "$RIFT_BIN/riftd" --state "$state"
expect_output "rift.conf:[0-9]+: unknown key \"idle_timout\""

# idle stop after 10 s (3 s raced the start on a loaded machine), and the TCP API with a bearer token
api_port=$(free_port)
head -c 32 /dev/urandom | base64 | tr -d '/+=' >"$TEST_TMP/token"
sed -e 's/^idle_timeout = .*/idle_timeout = 10/' \
	-e "s|^listen = $|listen = 127.0.0.1:$api_port|" \
	-e "s|^token_file = .*|token_file = $TEST_TMP/token|" "$TEST_TMP/good.conf" >"$state/rift.conf"
start_riftd "$state"
tcp() { curl -s -o /dev/null -w '%{http_code}' --cacert "$state/tls/server.crt" "$@" "https://127.0.0.1:$api_port/v1/branches"; }
[ "$(tcp)" = 401 ] || fail "TCP API without a token was not refused"
[ "$(tcp -H 'Authorization: Bearer wrong-token-wrong-token')" = 401 ] || fail "bad token accepted"
[ "$(tcp -H "Authorization: Bearer $(cat "$TEST_TMP/token")")" = 200 ] || fail "token refused"

# concurrent first starts share one server
starters=()
for i in 1 2 3; do
	curl -s --unix-socket "$state/run/riftd.sock" -X POST http://rift/v1/branches/main/start \
		>"$TEST_TMP/start$i.json" &
	starters+=($!)
done
wait "${starters[@]}" # not a bare wait: riftd is a background job of this shell too
ports=$(jq -r .port "$TEST_TMP"/start*.json | sort -u)
[ "$(echo "$ports" | wc -l)" = 1 ] && [ "$ports" -gt 0 ] || fail "concurrent starts: ports $ports"
[ "$(pgrep -f -- "-D $state/mnt/main" | wc -l)" = 1 ] || fail "more than one postmaster on main"
[ "$(psql -X -h "$state/run/pg/main" -p "$ports" -U postgres -Atc 'select x from t' postgres)" = 42 ] ||
	fail "the pgdata base lacks its data"
# main_stops WHY: main stops within 60 s, or the test fails saying WHY
main_stops() {
	local i
	for ((i = 0; i < 300; i++)); do
		api "$state" GET /v1/branches/main
		[ "$(api_field .state)" = stopped ] && return 0
		sleep 0.2
	done
	fail "$1"
}
main_stops "main did not stop after idle_timeout"
mountpoint -q "$state/mnt/main" && fail "an idle-stopped branch is still mounted"

# clients that reach the server past the router keep it running, also one that came and went
# between two of riftd's counts, and the stop comes idle_timeout after the last one left, not
# sooner (riftd counts them every 2 s here; the first count follows the start)
api "$state" POST /v1/branches/main/start
port=$(api_field .port)
direct() { psql -X -q -h "$state/run/pg/main" -p "$port" -U postgres -Atc "$1" postgres; }
running() {
	api "$state" GET /v1/branches/main
	[ "$(api_field .state)" = running ] || fail "main stopped $1"
}
sleep 6 # a riftd that missed the next client would stop main 10-12 s after its start
direct 'select 1' >/dev/null || fail "the short direct client failed"
sleep 8
running "8 s after a short direct client left (idle_timeout is 10 s)"
direct 'select pg_sleep(14)' >/dev/null || fail "the long direct client failed"
running "under a direct client"
sleep 5
running "5 s after its direct client left"
main_stops "main did not stop after its direct client left"
exit 0
