#!/usr/bin/env bash
# diff_budget.sh — a branch answering `rift diff` with more than [diff] max_bytes makes the diff
# fail with a clear message, and riftd keeps serving; a second diff while one runs gets 503.
source "$RIFT_TESTLIB"
export RIFT_STATE=$TEST_TMP/state PATH=$RIFT_BIN:$PATH

rift init >/dev/null || fail "rift init failed"
grep -q '^max_bytes = ' "$RIFT_STATE/rift.conf" || fail "rift.conf has no [diff] max_bytes"
set_conf "$RIFT_STATE" max_bytes 4M
start_riftd "$RIFT_STATE"
q() { psql -X -q -v ON_ERROR_STOP=1 "$(rift url "$1")" -c "$2" >/dev/null || fail "on $1: $2"; }
rift create b1 >/dev/null || fail "create b1"
# 24 rows of 1 MiB (TOASTed): 24 MiB per side, six times the budget
q b1 "create table big (id int primary key, doc text); alter table big alter column doc set storage external"
q b1 "insert into big select i, repeat(md5(i::text), 32768) from generate_series(1, 24) i"
rift create d --from b1 >/dev/null || fail "create d"
q d "update big set doc = 'x' where id = 1"

rss() { awk '/^VmRSS/ {print $2}' "/proc/$RIFTD_PID/status"; }
before=$(rss)
out=$(rift diff d b1 --rows 10 2>&1) && fail "diff over the budget succeeded: $out"
grep -q 'branch .* answered more than 4 MiB' <<<"$out" || fail "no budget message: $out"
grep -q 'max_bytes' <<<"$out" || fail "the message does not say what to change: $out"
kill -0 "$RIFTD_PID" 2>/dev/null || fail "riftd died"
after=$(rss)
echo "riftd RSS before $before kB, after the refused diff $after kB"
# riftd still serves: the API, the router, and a diff within the budget
rift list >/dev/null || fail "rift list after the refused diff"
[ "$(psql -X -At "$(rift url d)" -c 'select count(*) from big')" = 24 ] || fail "router after the refused diff"
q d "truncate big"
q b1 "truncate big"
rift --json diff d b1 >"$TEST_TMP/ok.json" || fail "a diff within the budget failed: $(cat "$TEST_TMP/ok.json")"
jq -e '.branch == "d"' "$TEST_TMP/ok.json" >/dev/null || fail "diff answer: $(head -c 500 "$TEST_TMP/ok.json")"

# one diff at a time: hold the first at its connect (d's postmaster stopped), the second gets 503
pm=$(psql -X -At "$(rift url d)" -c "select split_part(pg_read_file('postmaster.pid'), E'\n', 1)") ||
	fail "postmaster pid of d"
[[ $pm =~ ^[0-9]+$ ]] || fail "postmaster pid: $pm"
kill -STOP "$pm" || fail "cannot stop d's postmaster"
on_exit "kill -CONT $pm 2>/dev/null"
rift diff d b1 >"$TEST_TMP/first.out" 2>&1 &
first=$!
sleep 2
out=$(rift diff b1 d 2>&1) && fail "a second diff ran while one was running: $out"
grep -q 'try again when it finishes' <<<"$out" || fail "second diff: $out"
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$RIFT_STATE/run/riftd.sock" \
	"http://rift/v1/branches/b1/diff?against=d")
[ "$code" = 503 ] || fail "second diff over the API: HTTP $code, expected 503"
kill -CONT "$pm"
wait "$first" || fail "the first diff failed: $(cat "$TEST_TMP/first.out")"
rift diff b1 d >/dev/null || fail "a diff after the first one ended was refused"
echo "diff_budget: ok"
