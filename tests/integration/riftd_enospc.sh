#!/usr/bin/env bash
# riftd_enospc.sh — one branch filling the disk fails its own writes only; `rift delete` frees it
# without a restart; a branch over --max-size gets ENOSPC; no acknowledged commit is lost.
source "$RIFT_TESTLIB"

# The state directory lives on a 640 MiB ext4 image of its own (a loop mount, root only).
small_disk 640

state=$disk/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
set_conf "$state" reserve_mb 200
start_riftd "$state"
rift() { "$RIFT_BIN/rift" --state "$state" "$@"; }

for b in a b; do
	expect_status 0 rift create $b
	api "$state" POST /v1/branches/$b/start
	[ "$API_STATUS" = 200 ] || fail "start $b: $(cat "$API_OUT")"
done
api "$state" GET /v1/branches/a
port_a=$(api_field .port)
api "$state" GET /v1/branches/b
port_b=$(api_field .port)
demo_psql "$state" "$port_b" "create table acked(i int primary key)"
demo_psql "$state" "$port_a" "create table big(t text)"

# B commits one row at a time in the background and logs each acknowledged commit.
b_writer() {
	local i=0
	while [ ! -e "$TEST_TMP/stop_b" ]; do
		i=$((i + 1))
		if demo_psql "$state" "$port_b" "insert into acked values ($i)" 2>>"$TEST_TMP/b_err.log"; then
			echo "$i" >>"$TEST_TMP/b_acked"
		else
			echo "$i" >>"$TEST_TMP/b_failed"
		fi
		sleep 0.2
	done
}
b_writer &
b_pid=$!
on_exit "touch '$TEST_TMP/stop_b'; kill $b_pid"

# A fills the disk with incompressible rows until the server refuses.
for ((round = 0; round < 400; round++)); do
	if ! demo_psql "$state" "$port_a" "insert into big select string_agg(md5(random()::text), '') \
		from generate_series(1, 64) g, generate_series(1, 2000) r group by r" \
		>>"$TEST_TMP/a_out.log" 2>&1; then
		break
	fi
done
# With the kernel's writeback cache (rift's default) the refused write surfaces at the next
# fsync: Postgres reports it (an ERROR when extending a file, a PANIC and crash recovery when
# WAL or a checkpoint cannot be synced), and the branch's server may stay down while refused.
grep -i "No space left on device" "$TEST_TMP/a_out.log" "$state/log/a.log" | tail -5
grep -qi "No space left on device" "$TEST_TMP/a_out.log" "$state/log/a.log" ||
	fail "A's client and server log do not say 'No space left on device' (round $round)"
df -m "$disk" | tail -1

# B still commits and reads while A is refused.
sleep 3
before=$(wc -l <"$TEST_TMP/b_acked")
sleep 4
after=$(wc -l <"$TEST_TMP/b_acked")
[ "$after" -gt "$before" ] || fail "B stopped committing while A filled the disk ($before -> $after)"
demo_psql "$state" "$port_b" "select count(*) from acked" >/dev/null || fail "B cannot read"
grep -q "below the reserve" "$TEST_TMP/riftd.log" || fail "riftd did not log the reserve refusal"

# Deleting A frees the disk without restarting riftd; A's name can be reused and written.
df -m "$disk" | tail -1
expect_status 0 rift delete a
df -m "$disk" | tail -1
du -sm "$state/db" "$state/base"
expect_status 0 rift create a
api "$state" POST /v1/branches/a/start
[ "$API_STATUS" = 200 ] || fail "start a again: $(cat "$API_OUT")"
port_a=$(api_field .port)
demo_psql "$state" "$port_a" "create table again as select string_agg(md5(random()::text), '') t \
	from generate_series(1, 64) g, generate_series(1, 1000) r group by r" ||
	fail "the new A cannot write after the old one was deleted"

# --max-size: C stops with ENOSPC at 48 MiB of its own ("could not extend file": a branch with
# a limit is written through, so the error is synchronous); its server stays up; B is
# unaffected; dropping the table frees C.
expect_status 0 rift create c --max-size 48M
expect_status 0 rift list
grep -q "48.0 MiB" "$TEST_TMP/out" || fail "rift list does not show c's limit: $(cat "$TEST_TMP/out")"
expect_status 0 rift list --json
[ "$(jq -r '.branches[] | select(.name=="c") | .max_size' "$TEST_TMP/out")" = $((48 << 20)) ] ||
	fail "rift list --json lacks c's max_size"
api "$state" POST /v1/branches/c/start
port_c=$(api_field .port)
demo_psql "$state" "$port_c" "create table big(t text)"
for ((round = 0; round < 100; round++)); do
	if ! demo_psql "$state" "$port_c" "insert into big select string_agg(md5(random()::text), '') \
		from generate_series(1, 64) g, generate_series(1, 1000) r group by r" \
		>>"$TEST_TMP/c_out.log" 2>&1; then
		break
	fi
done
grep -i "No space left on device" "$TEST_TMP/c_out.log" "$state/log/c.log" | tail -5
grep -q "could not extend file.*No space left on device" "$TEST_TMP/c_out.log" ||
	fail "C over its --max-size did not see 'could not extend file ... No space left on device'"
if grep -q PANIC "$state/log/c.log"; then fail "C's server panicked at its size limit"; fi
demo_psql "$state" "$port_b" "insert into acked values (-1)" || fail "B failed because of C's limit"
demo_psql "$state" "$port_c" "drop table big" || fail "C cannot drop its table at the limit"
demo_psql "$state" "$port_c" "create table small as select 1 as x" ||
	fail "C cannot write after dropping its table"

# No acknowledged commit of B is lost across a riftd restart.
touch "$TEST_TMP/stop_b"
wait $b_pid || true
acked=$(wc -l <"$TEST_TMP/b_acked")
stop_riftd_quietly "$RIFTD_PID" "$state" || true
start_riftd "$state"
api "$state" POST /v1/branches/b/start
[ "$API_STATUS" = 200 ] || fail "start b after the restart: $(cat "$API_OUT")"
port_b=$(api_field .port)
present=$(demo_psql "$state" "$port_b" "select count(*) from acked where i > 0")
echo "B: $acked commits acknowledged, $present present, $(wc -l <"$TEST_TMP/b_failed" 2>/dev/null || echo 0) failed"
[ "$present" -ge "$acked" ] || fail "B lost commits: $acked acknowledged, $present present"
