#!/usr/bin/env bash
# pg_on_branch.sh — initdb, pgbench and a restart on a mounted branch leave Postgres intact.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
mnt=$TEST_TMP/mnt
mkdir -p "$TEST_TMP/empty"
make_store "$state" "$TEST_TMP/empty"
"$RIFT_BIN/store_admin" "$state" create a
mount_branch "$state" a "$mnt"
pid=$MOUNT_PID
chown postgres:postgres "$mnt"
chmod 700 "$mnt"
as_postgres "$PG_BIN/initdb -D $mnt/data -A trust -U postgres" >"$TEST_TMP/initdb.log" ||
	{ tail "$TEST_TMP/initdb.log" >&2; fail "initdb onto the branch failed"; }

port=$(free_port)
pg_start "$mnt/data" "$port"
as_postgres "$PG_BIN/pgbench -q -h $TEST_TMP/sock -p $port -i -s 10 postgres" >/dev/null 2>&1 ||
	fail "pgbench -i failed"
as_postgres "$PG_BIN/pgbench -h $TEST_TMP/sock -p $port -T 20 -c 2 -j 2 postgres" \
	>"$TEST_TMP/pgbench.out" 2>&1 || { cat "$TEST_TMP/pgbench.out" >&2; fail "pgbench failed"; }
done_tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' \
	"$TEST_TMP/pgbench.out")
[ -n "$done_tx" ] && [ "$done_tx" -gt 0 ] || fail "pgbench processed no transactions"
echo "pgbench committed $done_tx transactions: $(grep -E '^tps' "$TEST_TMP/pgbench.out")"
pg_stop "$mnt/data"
unmount_branch "$mnt" "$pid"

mount_branch "$state" a "$mnt"
pg_start "$mnt/data" "$port"
psql_at "$port" "create extension amcheck" >/dev/null
as_postgres "$PG_BIN/pg_amcheck -h $TEST_TMP/sock -p $port --heapallindexed --parent-check \
	-d postgres" || fail "pg_amcheck found corruption after remount"
[ "$(psql_at "$port" "select count(*) from pgbench_accounts")" = 1000000 ] ||
	fail "pgbench_accounts lost rows"
history=$(psql_at "$port" "select count(*) from pgbench_history")
[ "$history" = "$done_tx" ] || fail "pgbench_history has $history rows, pgbench committed $done_tx"
[ "$(psql_at "$port" "select sum(abalance) from pgbench_accounts")" = \
	"$(psql_at "$port" "select sum(delta) from pgbench_history")" ] ||
	fail "balances do not add up to the history"
