#!/usr/bin/env bash
# router_splice.sh — sessions the kernel relays after login: big and slowly read results arrive
# intact, every close is clean on both sides, final server errors reach the client, nothing leaks.
source "$RIFT_TESTLIB"

# usage: router_splice.sh [--between-sockets]: kernel_splice = 1 instead of the default 2
mode=2
how="kernel-spliced to the server's socket"
if [ "${1:-}" = --between-sockets ]; then
	mode=1
	how="kernel-spliced$"
fi
state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
# no kept sessions here: every session is spliced right after login (router_pool covers both)
sed -i -e 's/^pool_size = .*/pool_size = 0/' -e "s/^kernel_splice = .*/kernel_splice = $mode/" \
	"$state/rift.conf"
start_riftd "$state"
wait_log 'spliced in the kernel' ||
	fail "riftd did not enable kernel splicing: $(grep router "$TEST_TMP/riftd.log")"
rport=$(router_port "$state")
PGPASSWORD=$(demo_password "$state")
export PGPASSWORD
router="host=127.0.0.1 port=$rport user=rift dbname=s sslmode=disable"
api "$state" POST /v1/branches '{"name":"s"}'
api "$state" POST /v1/branches/s/start ''
direct="host=127.0.0.1 port=$(api_field .port) user=rift dbname=demo sslmode=disable"
sockets() { sockets_of "$RIFTD_PID"; }
[ "$(psql -X -At "$router" -c "select 1")" = 1 ] || fail "no first query through the router"
sockets_before=$(sockets)
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$RIFTD_PID/status")

# ~150 MB of rows, read at full speed and by a reader that stalls: same bytes as direct
big="select i, repeat(md5(i::text), 30) from generate_series(1, 150000) i"
want=$(psql -X -At "$direct" -c "$big" | md5sum)
got=$(psql -X -At "$router" -c "$big" | md5sum)
[ "$got" = "$want" ] || fail "a big result changed on its way through the kernel splice"
got=$(psql -X -At "$router" -c "$big" | (sleep 3 && md5sum))
[ "$got" = "$want" ] || fail "a slowly read big result changed on its way"
rss_after=$(awk '/VmRSS/ {print $2}' "/proc/$RIFTD_PID/status")
# a userspace relay would hold at most 1 MiB per direction; 100 MB would mean no backpressure
[ "$rss_after" -le $((rss_before + 100000)) ] ||
	fail "riftd buffered a slow reader's result itself: RSS $rss_before -> $rss_after KiB"
grep -E -q "closed \(client closed\) after .*, [0-9]{9,} out, $how" "$TEST_TMP/riftd.log" ||
	fail "no close line with the spliced bytes, ending \"$how\""

# many short sessions: each ends with Terminate, which must reach the server before the close
echo "select count(*) from orders where id < 100;" >"$TEST_TMP/one.sql"
pgbench -n -C -f "$TEST_TMP/one.sql" -T 3 -c 4 -j 2 "$router" >"$TEST_TMP/pgb.out" 2>&1 ||
	fail "pgbench -C: $(tail -3 "$TEST_TMP/pgb.out")"
grep -q "number of failed transactions: 0" "$TEST_TMP/pgb.out" || fail "pgbench -C failures"
# a server that terminates a session: its last words reach the client before the close
psql -X -At "$router" -c "select pg_sleep(30)" >"$TEST_TMP/victim.out" 2>&1 &
victim=$!
for _ in $(seq 50); do
	n=$(psql -X -At "$direct" -c "select count(*) from pg_stat_activity
		where query = 'select pg_sleep(30)' and pid <> pg_backend_pid()")
	[ "$n" = 1 ] && break
	sleep 0.1
done
psql -X -At "$direct" -c "select pg_terminate_backend(pid) from pg_stat_activity
	where query = 'select pg_sleep(30)'" >/dev/null
wait $victim && fail "the terminated session did not fail"
grep -q 'terminating connection due to administrator command' "$TEST_TMP/victim.out" ||
	fail "the server's last message was lost: $(cat "$TEST_TMP/victim.out")"
# a client killed in the middle of a query: riftd lets go of both sockets
psql -X -At "$router" -c "select pg_sleep(2)" >/dev/null 2>&1 &
killer=$!
sleep 0.5
kill -9 $killer
wait $killer 2>/dev/null || true
sleep 3 # the query ends, the server sees the EOF
grep -q 'could not receive data from client\|unexpected EOF on client connection' \
	"$state/log/s.log" && fail "a session ended uncleanly: $(grep -m3 'client' "$state/log/s.log")"
sockets_after=$(sockets)
echo "riftd sockets: $sockets_before -> $sockets_after; RSS KiB: $rss_before -> $rss_after"
[ "$sockets_after" -le $((sockets_before + 1)) ] ||
	fail "spliced sockets leaked: $sockets_before -> $sockets_after"

# stopping the branch under an idle spliced session: the client is told, riftd closes the pair
psql -X "$router" -f - >"$TEST_TMP/idle.out" 2>&1 <<'SQL' &
select 1;
select pg_sleep(4);
SQL
idle=$!
sleep 1
api "$state" POST /v1/branches/s/stop ''
wait $idle && fail "a session outlived its branch's server"
grep -q 'terminating connection\|server closed the connection' "$TEST_TMP/idle.out" ||
	fail "the client was not told its server stopped: $(cat "$TEST_TMP/idle.out")"
# every routed session got its close line (which side hung up first is a race)
all_closed() {
	[ "$(grep -c 'routed to branch' "$TEST_TMP/riftd.log")" = \
		"$(grep -c 'branch s closed' "$TEST_TMP/riftd.log")" ]
}
for _ in $(seq 30); do
	all_closed && break
	sleep 0.1
done
all_closed || fail "a session was never closed"
exit 0
