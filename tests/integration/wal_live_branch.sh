#!/usr/bin/env bash
# wal_live_branch.sh — branches of a branch that runs TPC-B while its WAL switches segments and
# checkpoints remove old ones, through riftd (WAL beside the store): every child starts, holds a
# consistent state (pgbench's balances match its history) and passes amcheck. The first child's
# WAL copy waits 1.5 s after the freeze (test hook), so checkpoints remove the segment its
# recovery starts in: riftd must notice and branch again, not hand over a child that cannot start.
source "$RIFT_TESTLIB"

export RIFT_TEST_SLOW_WAL_COPY=c1:1500
riftd_with_branch a
port=$(R --json start a | jq -r .port) || fail "rift start a failed"
export PGPASSWORD # pgbench's
PGPASSWORD=$(demo_password "$state")
a_sql() { demo_psql "$state" "$port" "$1"; }
a_sql "alter system set wal_keep_size = 0" >/dev/null
pgbench -q -h 127.0.0.1 -p "$port" -U rift -i -s 1 demo >/dev/null 2>&1 || fail "pgbench -i"

# load: TPC-B, and a segment switch with a checkpoint every 0.2 s, so old segments go often
pgbench -n -h 127.0.0.1 -p "$port" -U rift -c 2 -T 120 demo >"$TEST_TMP/pgbench.out" 2>&1 &
bench=$!
(while :; do
	a_sql "select pg_switch_wal()" >/dev/null 2>&1
	a_sql "checkpoint" >/dev/null 2>&1
	sleep 0.2
done) &
switcher=$!
on_exit "kill $bench $switcher 2>/dev/null"
sleep 1

children="c1 c2 c3 c4 c5"
for c in $children; do
	expect_status 0 R create "$c" --from a
	sleep 0.3
done
kill "$bench" "$switcher" 2>/dev/null || true
wait "$bench" 2>/dev/null || true
grep -q "redo point on are no longer all there" "$TEST_TMP/riftd.log" ||
	fail "c1's WAL copy was not found short of its redo point (the test raced no checkpoint)"

for c in $children; do
	start=$(R --json start "$c") || fail "$c did not start: $start"
	cport=$(jq -r .port <<<"$start")
	c_sql() { demo_psql "$state" "$cport" "$1"; }
	ok=$(c_sql "select (select sum(abalance) from pgbench_accounts) = h.d and
		(select sum(bbalance) from pgbench_branches) = h.d and
		(select sum(tbalance) from pgbench_tellers) = h.d
		from (select coalesce(sum(delta), 0) as d from pgbench_history) h") ||
		fail "$c: cannot query pgbench's tables"
	[ "$ok" = t ] || fail "$c: balances do not match the history"
	n=$(c_sql "select count(*) from pgbench_history")
	c_sql "create extension if not exists amcheck" >/dev/null
	"$PG_BIN/pg_amcheck" -h "$state/run/pg/$c" -p "$cport" -U postgres --heapallindexed \
		-d demo >/dev/null || fail "pg_amcheck found corruption in $c"
	echo "$c: consistent, $n transactions of the parent's"
	expect_status 0 R stop "$c"
done
