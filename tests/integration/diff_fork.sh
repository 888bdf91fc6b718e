#!/usr/bin/env bash
# diff_fork.sh — `rift diff BRANCH` without OTHER compares with the parent as it was when the
# branch was made: what the parent did since does not show; a branch made from the base is
# compared with the base; the temporary fork-point branch leaves nothing behind.
source "$RIFT_TESTLIB"
export RIFT_STATE=$TEST_TMP/state PATH=$RIFT_BIN:$PATH

rift init >/dev/null || fail "rift init failed"
start_riftd "$RIFT_STATE"
rift create p >/dev/null || fail "create p"
q() { psql -X -q -v ON_ERROR_STOP=1 "$(rift url "$1")" -c "$2" >/dev/null || fail "on $1: $2"; }
q p "create table t (id int primary key, v text); insert into t select i, 'v' || i from generate_series(1, 100) i"
rift create b --from p >/dev/null || fail "create b"
# the child's own changes
q b "update t set v = 'b' where id between 1 and 5; insert into t values (201), (202), (203)"
q b "create index t_v on t (v)"
# the parent moves on afterwards: none of this is b's doing
q p "update t set v = 'p' where id between 50 and 59; delete from t where id > 90"
q p "create table p_only (a int); alter table t add column w int"

rift --json diff b --rows 100 >"$TEST_TMP/f.json" || fail "rift diff b: $(cat "$TEST_TMP/f.json")"
db='.databases[] | select(.name == "demo")'
jq -e '.fork_point and .against == "p"' "$TEST_TMP/f.json" >/dev/null || fail "header: $(jq -c '{branch, against, fork_point}' "$TEST_TMP/f.json")"
jq -e "$db | .tables | length == 1 and .[0].table == \"t\" and .[0].added == 3 and .[0].changed == 5 and .[0].removed == 0" \
	"$TEST_TMP/f.json" >/dev/null || fail "rows against the fork point: $(jq -c "$db | .tables" "$TEST_TMP/f.json")"
jq -e "$db | .schema | (.added | map(.name)) == [\"t_v\"] and (.removed | length) == 0 and (.changed | length) == 0" \
	"$TEST_TMP/f.json" >/dev/null || fail "schema against the fork point: $(jq -c "$db | .schema" "$TEST_TMP/f.json")"
# against p as it is now, p's own changes show too (reversed)
rift --json diff b p >"$TEST_TMP/now.json" || fail "rift diff b p"
jq -e "$db | .schema.removed | map(.name) | index(\"p_only\")" "$TEST_TMP/now.json" >/dev/null ||
	fail "against p now, p_only should show as removed: $(jq -c "$db | .schema" "$TEST_TMP/now.json")"

# a parent with children cannot be deleted, so the fork point stays in the store
expect_status 1 rift delete p
# a branch made from the base: against the base
q main "insert into products (name, price) values ('new', 1)"
rift --json diff main >"$TEST_TMP/m.json" || fail "rift diff main"
jq -e ".against == null and .fork_point and ([$db | .tables[] | select(.table == \"products\") | .added] == [1])" \
	"$TEST_TMP/m.json" >/dev/null || fail "main against the base: $(jq -c "{against, fork_point, t: [$db | .tables[]]}" "$TEST_TMP/m.json")"
rift diff b >"$TEST_TMP/text" || fail "rift diff b (text)"
grep -q '^rift diff b against p as it was when b was made$' "$TEST_TMP/text" || fail "text header: $(head -3 "$TEST_TMP/text")"

# nothing left behind: no hidden branch, mount or socket directory
sleep 1
[ "$(rift --json list | jq '.branches | length')" = 3 ] || fail "branches: $(rift --json list)"
ls "$RIFT_STATE/mnt" "$RIFT_STATE/run/pg" | grep 'rift-warm-fork-' >/dev/null && fail "a fork-point branch's directories remain"
grep -rq 'rift-warm-fork-' "$RIFT_STATE/run/running" 2>/dev/null && fail "a fork-point branch is recorded as running"
curl -s --unix-socket "$RIFT_STATE/run/riftd.sock" http://rift/metrics | grep 'rift-warm-fork-' >/dev/null &&
	fail "a fork-point branch shows in /metrics"
exit 0
