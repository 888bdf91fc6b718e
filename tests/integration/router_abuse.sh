#!/usr/bin/env bash
# router_abuse.sh — broken and hostile clients: the router answers or drops them, keeps serving
# everyone else, and leaks no file descriptors or memory.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
rport=$(free_port)
sed -i -e "s/^listen = 127.0.0.1:6432/listen = 127.0.0.1:$rport/" \
	-e 's/^login_timeout = .*/login_timeout = 2/' "$state/rift.conf"
# under AddressSanitizer freed memory waits in a quarantine (256 MiB by default) and counts in
# RSS; a small one keeps the growth check about leaks (ignored by builds without ASan)
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4
start_riftd "$state"
PGPASSWORD=$(demo_password "$state")
export PGPASSWORD
q() { psql -X -At "host=127.0.0.1 port=$rport user=rift dbname=main sslmode=disable" -c "$1"; }
[ "$(q "select 1")" = 1 ] || fail "router does not serve before the abuse"
# sockets, not files: the store keeps base files open in a bounded cache on purpose
sockets() { sockets_of "$RIFTD_PID"; }
fds_before=$(sockets)
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$RIFTD_PID/status")

python3 "$(dirname "$0")/router_abuse.py" "$rport" || fail "router_abuse.py failed"
kill -0 "$RIFTD_PID" || fail "riftd died under abuse"
[ "$(q "select count(*) from orders")" = 5000 ] || fail "router stopped serving after the abuse"

sleep 3 # login timeouts of the last half-open clients
fds_after=$(sockets)
rss_after=$(awk '/VmRSS/ {print $2}' "/proc/$RIFTD_PID/status")
echo "riftd sockets: $fds_before -> $fds_after; RSS KiB: $rss_before -> $rss_after"
[ "$fds_after" -le $((fds_before + 2)) ] || fail "sockets leaked: $fds_before -> $fds_after"
[ "$rss_after" -le $((rss_before + 30000)) ] || fail "memory grew: $rss_before -> $rss_after KiB"
