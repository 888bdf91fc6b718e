#!/usr/bin/env bash
# wal_dir_full.sh — a branch whose WAL directory (beside the store, outside its ENOSPC policy)
# takes the disk below [store] reserve_mb is stopped by riftd's guard; the other branch keeps
# committing, and `rift delete` gives the space back.
source "$RIFT_TESTLIB"

# The state directory lives on a 640 MiB ext4 image of its own (a loop mount, root only).
small_disk 640

state=$disk/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
set_conf "$state" reserve_mb 200
start_riftd "$state"
rift() { "$RIFT_BIN/rift" --state "$state" "$@"; }
for b in a b; do expect_status 0 rift create $b; done
url_a="$(rift -q url a)?sslmode=disable&connect_timeout=90"
url_b="$(rift -q url b)?sslmode=disable&connect_timeout=90"
psql -X -q "$url_b" -c "create table acked (i int primary key)" || fail "create table in b"
psql -X -q "$url_a" -c "select 1" >/dev/null || fail "a does not answer"
free_mb() { df -m --output=avail "$disk" | tail -1 | tr -d ' '; }
before=$(free_mb)

# a's superuser writes 450 MiB into its WAL directory: below the 200 MiB reserve. The guard
# may stop the server (and the COPY with it) before dd is done, on a slow machine.
psql -X -q "$url_a" -c "copy (select 1 where false) to program 'dd if=/dev/zero of=pg_wal/fill bs=1M count=450 conv=fsync status=none'" \
	>"$TEST_TMP/fill.out" 2>&1 || grep -q "terminat" "$TEST_TMP/fill.out" ||
	fail "could not write into a's pg_wal: $(cat "$TEST_TMP/fill.out")"
[ "$(free_mb)" -lt 200 ] || fail "the fill left $(free_mb) MiB free, not under the reserve"
for ((i = 0; i < 100; i++)); do
	grep -q "branch a stopped: its WAL and temporary files (pg_wal, base/pgsql_tmp) grew by" "$TEST_TMP/riftd.log" && break
	sleep 0.1
done
grep -q "branch a stopped: its WAL and temporary files (pg_wal, base/pgsql_tmp) grew by" "$TEST_TMP/riftd.log" ||
	fail "riftd did not stop branch a, whose WAL took the disk below the reserve"
for ((i = 0; i < 100; i++)); do # the line is logged as the stop begins
	api "$state" GET /v1/branches/a
	[ "$(api_field .state)" != running ] && break
	sleep 0.1
done
[ "$(api_field .state)" != running ] || fail "branch a still runs: $(cat "$API_OUT")"
# the other branch still commits
for i in 1 2 3; do
	psql -X -q "$url_b" -c "insert into acked values ($i)" || fail "branch b cannot commit"
done
# a's next client hears why, for a few seconds
out=$(psql -X -At "$url_a" -c "select 1" 2>&1) && fail "branch a started again at once: $out"
grep -q "reserve_mb" <<<"$out" || fail "a's client was not told why: $out"
expect_status 0 rift delete a
[ "$(free_mb)" -ge $((before - 20)) ] || fail "rift delete a left $(free_mb) MiB free, had $before"
[ "$(psql -X -At "$url_b" -c "select count(*) from acked")" = 3 ] || fail "b lost commits"
exit 0
