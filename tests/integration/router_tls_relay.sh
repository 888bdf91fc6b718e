#!/usr/bin/env bash
# router_tls_relay.sh — TLS sessions (libpq's default sslmode=prefer, as `rift url` prints) leave
# the router's loop for a relay thread once logged in: a 100 MB result arrives with the same
# checksum as straight from the server, concurrent sessions and short ones run without errors,
# and kept sessions still work over TLS.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
start_riftd "$state"
rift() { "$RIFT_BIN/rift" --state "$state" "$@"; }
PGPASSWORD=$(demo_password "$state")
export PGPASSWORD
api "$state" POST /v1/branches '{"name":"t"}'
[ "$API_STATUS" = 201 ] || fail "create t: $(cat "$API_OUT")"
api "$state" POST /v1/branches/t/start
dport=$(api_field .port)
# what riftd holds with t running and no client: listeners, API, FUSE, the log pipe...
sockets_base=$(sockets_of "$RIFTD_PID")
url=$(rift url t)
[ "$(psql -X -At "$url" -c "select ssl from pg_stat_ssl where pid = pg_backend_pid()")" = f ] ||
	fail "the server itself speaks TLS: the test would prove nothing"
[ "$(psql -X -At "$url" -c "show ssl" 2>/dev/null)" != "" ] || true

# ~106 MB of rows; the pause makes the session old enough to leave a keepable login's loop
big="select i, repeat(md5(i::text), 30) from generate_series(1, 110000) i"
want=$(psql -q -X -At "host=127.0.0.1 port=$dport user=rift dbname=demo sslmode=disable" -c "select pg_sleep(0)" -c "$big" | md5sum)
got=$(psql -q -X -At "$url" -c "select pg_sleep(1.2)" -c "$big" | md5sum)
[ "$got" = "$want" ] || fail "a 100 MB result through the TLS relay thread changed ($got vs $want)"
wait_log 'TLS relayed by a relay thread' || fail "the TLS session was not handed to a relay thread"
n=$(psql -q -X -At "$url" -c "select pg_sleep(1.2)" -c "$big" | wc -c)
[ "$n" -gt 100000000 ] || fail "the result was only $n bytes"

# a slow reader: the relay holds at most its buffers, the server waits, nothing is lost
got=$(psql -q -X -At "$url" -c "select pg_sleep(1.2)" -c "$big" | (sleep 2; md5sum))
[ "$got" = "$want" ] || fail "a slow reader's result changed"

# many TLS sessions at once, long and short, simple and extended protocol
echo "select count(*) from orders where id < 50;" >"$TEST_TMP/q.sql"
for mode in simple extended; do
	pgbench -n -M $mode -f "$TEST_TMP/q.sql" -c 6 -j 2 -T 3 "$url" >"$TEST_TMP/pgb.out" 2>&1 ||
		fail "pgbench -M $mode over TLS: $(tail -3 "$TEST_TMP/pgb.out")"
	grep -q "number of failed transactions: 0" "$TEST_TMP/pgb.out" ||
		fail "pgbench -M $mode over TLS had failures"
done
pgbench -n -C -f "$TEST_TMP/q.sql" -c 4 -j 2 -T 3 "$url" >"$TEST_TMP/pgbc.out" 2>&1 ||
	fail "pgbench -C over TLS: $(tail -3 "$TEST_TMP/pgbc.out")"
# fairness: a session that always has more to relay does not hold up the others on its thread.
# The flood's client drains its socket raw, without decrypting, so the relay is always the slowest
# party (any client can do that). One pgbench client per relay thread, handed over after the
# flood's, so one of them shares its thread (round robin).
python3 "$(dirname "$0")/router_tls_flood.py" "$ROUTER_PORT" t rift "$PGPASSWORD" \
	>"$TEST_TMP/flood.out" 2>&1 &
flood_pid=$!
for _ in $(seq 100); do grep -q flooding "$TEST_TMP/flood.out" && break; sleep 0.1; done
grep -q flooding "$TEST_TMP/flood.out" || fail "the flood did not start: $(cat "$TEST_TMP/flood.out")"
sleep 0.5
threads=$(nproc)
[ "$threads" -gt 8 ] && threads=8
echo "select 1;" >"$TEST_TMP/one.sql"
(cd "$TEST_TMP" && pgbench -n -f one.sql -c "$threads" -j 1 -T 4 -l --log-prefix=lat "$url") \
	>"$TEST_TMP/fair.out" 2>&1 || fail "pgbench beside the flood: $(tail -3 "$TEST_TMP/fair.out")"
kill -0 "$flood_pid" 2>/dev/null ||
	fail "the flood ended before pgbench did, the test proves nothing: $(cat "$TEST_TMP/flood.out")"
kill "$flood_pid"
wait "$flood_pid" 2>/dev/null || true # killed: its status is 143
worst=$(cat "$TEST_TMP"/lat.* | awk '$3 > m { m = $3 } END { print m + 0 }')
[ "$worst" -lt 2000000 ] ||
	fail "a query waited $((worst / 1000)) ms beside a flooding session on its relay thread"
rm -f "$TEST_TMP"/lat.*

# a cancel reaches a query of a session a relay thread carries
out=$(psql -X -At "$url" -c "select pg_sleep(1.2)" -c "select pg_sleep(30)" 2>&1 &
	sleep 3
	psql -X -At "host=127.0.0.1 port=$dport user=rift dbname=demo sslmode=disable" \
		-c "select pg_cancel_backend(pid) from pg_stat_activity where query = 'select pg_sleep(30)'" >/dev/null
	wait)
grep -q 'canceling statement due to user request' <<<"$out" || fail "cancel: $out"
# riftd holds no socket of finished TLS sessions
sleep 1
# server sessions the pool keeps hold one socket each; one more for a maintenance query that may
# be under way
pooled=$(rift --json list | jq '.branches[] | select(.name == "t") | .pooled')
n=$(sockets_of "$RIFTD_PID")
[ "$n" -le $((sockets_base + pooled + 1)) ] ||
	fail "riftd holds $n sockets after the TLS sessions ended (base $sockets_base, $pooled kept server sessions)"
exit 0
