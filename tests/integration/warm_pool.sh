#!/usr/bin/env bash
# warm_pool.sh — [instances] warm: creates from main get an already started server; a pool made
# before main changed is never handed out; a killed riftd leaves no pool behind.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
"$RIFT_BIN/rift" --state "$state" init >/dev/null || fail "rift init failed"
grep -q '^warm = 0$' "$state/rift.conf" || fail "rift.conf lacks the documented warm key"
set_conf "$state" warm 2
start_riftd "$state"
rift() { "$RIFT_BIN/rift" --state "$state" "$@"; }

# wait_ready N: waits up to 60 s until N warm servers are ready
wait_ready() {
	local i
	for ((i = 0; i < 600; i++)); do
		[ "$(rift --json status | jq .warm.ready)" = "$1" ] && return 0
		sleep 0.1
	done
	rift status >&2
	fail "the warm pool did not reach $1 ready servers"
}
now_ms() { date +%s%3N; }

wait_ready 2
pool=$(ls "$state/mnt" | grep '^rift-warm-' | sort)
[ "$(echo "$pool" | wc -l)" = 2 ] || fail "expected two pool mounts, got: $pool"

# nobody logs in to a pooled server before a create hands it out, not even with main's password
# straight to its port (a job could plant a role there for the next job)
pw=$(demo_password "$state")
for w in $pool; do
	wport=$(pgrep -af -- "-D $state/mnt/$w " | sed -n 's/.* -p \([0-9]*\) .*/\1/p' | head -1)
	[ -n "$wport" ] || fail "no server found for pool branch $w"
	PGPASSWORD=$pw psql -X -h 127.0.0.1 -p "$wport" -U rift -d demo -Atc 'select 1' \
		>"$TEST_TMP/out" 2>&1 && fail "logged in to pooled server $w before it was handed out"
	grep -q 'no pg_hba.conf entry' "$TEST_TMP/out" || { cat "$TEST_TMP/out" >&2; fail "pooled server $w: unexpected error"; }
done

# a create takes a started server: no start before the first query
t0=$(now_ms)
rift create w1 -q >/dev/null
[ "$(psql -X -Atc 'select count(*) from orders' "$(rift url w1)")" = 5000 ] || fail "w1 lacks main's data"
t1=$(now_ms)
wait_log "branch w1 is warm server rift-warm-" || fail "w1 was not served by a warm server"
echo "create to first query with a warm pool: $((t1 - t0)) ms"
[ "$(rift --json list | jq -r '.branches[] | select(.name == "w1") | .state')" = running ] ||
	fail "w1 is not running right after create"

# each pooled server has logged in to the default database once, so the first client does not
# rebuild its relcache init file (removed at every start); the one not taken yet shows it
demo_oid=$(psql -X -Atc "select oid from pg_database where datname = 'demo'" "$(rift url w1)")
for w in $pool; do
	[ -s "$state/mnt/$w/base/$demo_oid/pg_internal.init" ] ||
		fail "pooled server $w has not logged in to database demo (no relcache init file)"
done

# the pool is riftd's own: not listed, not creatable, not routable
rift --json list | jq -e '[.branches[].name | select(startswith("rift-warm-"))] | length == 0' >/dev/null ||
	fail "rift list shows pool branches"
expect_status 1 rift create rift-warm-mine
expect_output 'reserved|riftd.s own'
some=$(ls "$state/mnt" | grep '^rift-warm-' | head -1)
if [ -n "$some" ]; then
	url=$(rift url w1)
	expect_status 2 psql -X -Atc 'select 1' "${url%/w1}/$some"
	expect_output 'does not exist'
fi

# writes stay isolated between branches served by the pool
psql -X -q -c 'create table only_w1 (x int)' "$(rift url w1)"
wait_ready 2
rift create w2 -q >/dev/null
wait_log "branch w2 is warm server rift-warm-" || fail "w2 was not served by a warm server"
[ "$(psql -X -Atc "select count(*) from pg_class where relname = 'only_w1'" "$(rift url w2)")" = 0 ] ||
	fail "w1's table shows in w2"

# a create from another parent takes nothing from main's pool, and sees its own parent
wait_ready 2
rift create f1 --from w1 -q >/dev/null || fail "rift create f1 --from w1 failed"
[ "$(psql -X -Atc "select count(*) from pg_class where relname = 'only_w1'" "$(rift url f1)")" = 1 ] ||
	fail "f1 does not see its parent w1's table"
grep -q "branch f1 is warm server" "$TEST_TMP/riftd.log" && fail "a create from w1 took a server of main's pool"
[ "$(rift --json status | jq .warm.ready)" = 2 ] || fail "a create from w1 used up main's pool"
rift delete f1 >/dev/null || fail "rift delete f1 failed"

# main changes: every pooled server made before is dropped, never handed out
wait_ready 2
psql -X -q -c 'create table after_pool (x int)' "$(rift url main)"
rift stop main -q
rift create w3 -q >/dev/null
[ "$(psql -X -Atc "select count(*) from pg_class where relname = 'after_pool'" "$(rift url w3)")" = 1 ] ||
	fail "w3 was handed a server made before main changed"
wait_log "main changed since it was made" || fail "the stale pool was not dropped"
wait_ready 2
rift create w4 -q >/dev/null
wait_log "branch w4 is warm server rift-warm-" || fail "w4 was not served by the refilled pool"
[ "$(psql -X -Atc "select count(*) from pg_class where relname = 'after_pool'" "$(rift url w4)")" = 1 ] ||
	fail "the refilled pool does not hold main's change"

# a killed riftd with a full pool: the next one leaves nothing of that pool behind
wait_ready 2
old_pool=$(ls "$state/mnt" | grep '^rift-warm-' | sort)
kill -9 "$RIFTD_PID"
wait "$RIFTD_PID" 2>/dev/null || true
start_riftd "$state"
# (the list holds the two pool servers and the pool paths taken branches ran on)
wait_log "deleted warm branch rift-warm-" || fail "the old pool's branches were not deleted"
[ "$(grep -c 'deleted warm branch rift-warm-[^ ]* left by the previous riftd$' "$TEST_TMP/riftd.log")" = 2 ] ||
	fail "not exactly the two pooled branches were deleted after the restart"
! grep -q 'cannot delete warm branch' "$TEST_TMP/riftd.log" ||
	fail "a pooled branch could not be deleted: $(grep 'cannot delete warm branch' "$TEST_TMP/riftd.log")"
for w in $old_pool; do
	grep -q " $state/mnt/$w " /proc/self/mountinfo && fail "pool mount $w survived a restart"
	[ -e "$state/mnt/$w" ] && fail "pool mount point $w survived a restart"
	pgrep -f -- "-D $state/mnt/$w" >/dev/null && fail "a pool server of $w survived a restart"
done
[ "$(psql -X -Atc 'select count(*) from pg_class where relname = '"'only_w1'" "$(rift url w1)")" = 1 ] ||
	fail "w1 lost its table across the restart"

# a clean stop removes the pool
wait_ready 2
kill -TERM "$RIFTD_PID"
wait "$RIFTD_PID" || fail "riftd exited with an error on SIGTERM"
ls "$state/mnt" | grep '^rift-warm-' >/dev/null && fail "pool mount points outlived riftd"
grep -q " $state/mnt/" /proc/self/mountinfo && fail "a mount outlived riftd"
# nothing of any pool is left in the store, or beside it: no branch, WAL directory of a branch
# the store no longer has, server log or hba file
"$RIFT_BIN/store_admin" "$state" list >"$TEST_TMP/branches" || fail "store_admin list failed"
grep -q '^rift-warm-' "$TEST_TMP/branches" && fail "pool branches outlived riftd: $(cat "$TEST_TMP/branches")"
for d in "$state"/wal/b-*; do
	[ -e "$d" ] || continue
	grep -q " ${d##*/b-}\$" "$TEST_TMP/branches" || fail "WAL directory $d belongs to no branch"
done
for f in "$state"/log/rift-warm-* "$state"/run/hba/rift-warm-*; do
	[ -e "$f" ] && fail "a pool server's file outlived riftd: $f"
done
exit 0
