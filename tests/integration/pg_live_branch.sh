#!/usr/bin/env bash
# pg_live_branch.sh — branching a database while pgbench writes to it gives a consistent copy.
# With the argument `walswitch`, WAL segments are switched over and over while the branch is
# taken, so that it lands in the middle of a segment switch (new segment created and renamed
# into place, pg_control and the old segment being written).
source "$RIFT_TESTLIB"
mode=${1:-plain}

state=$TEST_TMP/state
chown postgres "$TEST_TMP"
as_postgres "$PG_BIN/initdb -D $TEST_TMP/src -A trust -U postgres" >/dev/null
make_store "$state" "$TEST_TMP/src"
"$RIFT_BIN/store_admin" "$state" create a
mkdir -p "$TEST_TMP/a" "$TEST_TMP/b"
ready=$TEST_TMP/ready
"$RIFT_BIN/branch_live" "$state" a "$TEST_TMP/a" b "$TEST_TMP/b" "$ready" \
	2>"$TEST_TMP/branch_live.log" &
helper=$!
on_exit "kill $helper 2>/dev/null; wait $helper; umount -l $TEST_TMP/a $TEST_TMP/b 2>/dev/null"
wait_for() {
	for ((i = 0; i < 300; i++)); do
		[ "$(cat "$ready" 2>/dev/null)" = "$1" ] && return 0
		kill -0 $helper || break
		sleep 0.1
	done
	cat "$TEST_TMP/branch_live.log" >&2
	fail "branch_live never reported $1"
}
wait_for mounted

port_a=$(free_port)
pg_start "$TEST_TMP/a" "$port_a"
as_postgres "$PG_BIN/pgbench -q -h $TEST_TMP/sock -p $port_a -i -s 5 postgres" >/dev/null 2>&1
as_postgres "$PG_BIN/pgbench -h $TEST_TMP/sock -p $port_a -T 12 -c 2 -j 2 postgres" \
	>"$TEST_TMP/pgbench.out" 2>&1 &
bench=$!
sleep 5
psql_at "$port_a" "checkpoint" # what riftd does before branching a running branch
switcher=""
if [ "$mode" = walswitch ]; then
	# a switch needs WAL written since the last one: pgbench supplies it
	(while :; do psql_at "$port_a" "select pg_switch_wal()" >/dev/null 2>&1 || true; done) &
	switcher=$!
	on_exit "kill $switcher 2>/dev/null"
	sleep 1
fi
kill -USR1 $helper
wait_for branched
if [ -n "$switcher" ]; then
	sleep 1
	kill $switcher
	wait $switcher 2>/dev/null || true
	segs=$(find "$TEST_TMP/b/pg_wal" -maxdepth 1 -name '0*' | wc -l)
	echo "the branch holds $segs WAL segments"
fi
wait $bench || { cat "$TEST_TMP/pgbench.out" >&2; fail "pgbench on a failed during the branch"; }

port_b=$(free_port)
pg_start "$TEST_TMP/b" "$port_b"
psql_at "$port_b" "create extension if not exists amcheck" >/dev/null
as_postgres "$PG_BIN/pg_amcheck -h $TEST_TMP/sock -p $port_b --heapallindexed -d postgres" ||
	fail "pg_amcheck found corruption in the branch"
for db in a b; do
	port=$([ $db = a ] && echo "$port_a" || echo "$port_b")
	[ "$(psql_at "$port" "select sum(abalance) from pgbench_accounts")" = \
		"$(psql_at "$port" "select coalesce(sum(delta), 0) from pgbench_history")" ] ||
		fail "branch $db is not a consistent state: balances differ from the history"
done
hist_a=$(psql_at "$port_a" "select count(*) from pgbench_history")
hist_b=$(psql_at "$port_b" "select count(*) from pgbench_history")
echo "history rows: a=$hist_a b=$hist_b"
[ "$hist_b" -gt 0 ] && [ "$hist_b" -lt "$hist_a" ] ||
	fail "b should hold a past state of a (b=$hist_b, a=$hist_a)"

psql_at "$port_b" "create table only_b(x int); insert into only_b values (1)"
psql_at "$port_a" "create table only_a(x int)"
[ "$(psql_at "$port_a" "select count(*) from pg_class where relname = 'only_b'")" = 0 ] ||
	fail "a write to b shows in a"
[ "$(psql_at "$port_b" "select count(*) from pg_class where relname = 'only_a'")" = 0 ] ||
	fail "a write to a after the branch shows in b"
pg_stop "$TEST_TMP/b"
pg_stop "$TEST_TMP/a"
