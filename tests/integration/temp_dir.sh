#!/usr/bin/env bash
# temp_dir.sh — a running branch's temporary files (sort and hash spills) live beside the store in
# <state>/wal/t-<id> (wal_dir.h): the view's base/pgsql_tmp links there, its server's uid owns it
# while it runs, a stop or riftd's next start removes it, a size-limited branch spills into its view.
# A branch superuser who plants links, FIFOs, a 200-level tree or a process that keeps adding
# files, or points pgsql_tmp elsewhere, makes root follow nothing, and everything goes at the stop.
source "$RIFT_TESTLIB"

riftd_with_branch a
wal=$state/wal

# ---- the layout ----
q "select 1" >/dev/null || fail "branch a does not answer"
tdir=$(readlink "$state/mnt/a/base/pgsql_tmp") || fail "base/pgsql_tmp of branch a is not a link"
case "$tdir" in "$wal"/t-*) ;; *) fail "base/pgsql_tmp of a points at $tdir, not under $wal" ;; esac
uid=$(stat -c %u "$state/mnt/a") # the view shows the running server's uid as owner
[ "$(stat -c '%u %a' "$tdir")" = "$uid 700" ] || fail "$tdir is $(stat -c '%u %a' "$tdir"), not $uid 700"

# ---- a sort that spills writes there, not into the store ----
# the row leaves the sort while its tapes are still open; the sleep holds them for the check
spill="set work_mem = '64kB'; select s.g, pg_sleep(3) from (select g from
	generate_series(1, 400000) g order by g desc offset 399999) s"
psql -X -q "$url" -c "$spill" >/dev/null 2>"$TEST_TMP/spill.err" &
spiller=$!
on_exit "kill $spiller 2>/dev/null"
seen=0
for _ in $(seq 100); do
	seen=$(find "$tdir" -type f -size +64k 2>/dev/null | wc -l)
	[ "$seen" -gt 0 ] && break
	sleep 0.1
done
[ "$seen" -gt 0 ] || fail "a spilling sort left no file in $tdir"
# Postgres's own listing of its temporary files is that directory
q "select count(*) >= 0 from pg_ls_tmpdir()" >/dev/null || fail "pg_ls_tmpdir() failed"
wait "$spiller" || fail "the spilling sort failed: $(cat "$TEST_TMP/spill.err")"
[ -z "$(ls -A "$tdir")" ] || fail "Postgres left temporary files in $tdir: $(ls -A "$tdir")"

# ---- stopped, the directory goes; started, a fresh one comes ----
expect_status 0 R stop a
[ ! -e "$tdir" ] || fail "stopped, branch a still has $tdir"
q "select 1" >/dev/null || fail "branch a did not start again"
[ "$(stat -c '%u %a' "$tdir")" = "$(stat -c %u "$state/mnt/a") 700" ] ||
	fail "restarted, $tdir is missing or not the server's"

# ---- the attack: junk, links, FIFOs and a tree too deep to remove; pgsql_tmp pointed away ----
victim_tree
victim_snapshot >"$TEST_TMP/victim.before"
# a tree deeper than riftd's removal descends (cut and removed in parts), and a process of the
# uid that outlives the server and keeps adding files while the stop removes them
branch_sh "cd base/pgsql_tmp && ln -s $victim/v600 v && ln -s $victim/dir d && ln -s $victim/fifo f &&
	mkfifo p && mkdir -p \$(printf 'x/%.0s' \$(seq 200)) && head -c 100000 /dev/urandom >junk"
branch_sh "setsid bash -c 'while :; do mkdir -p base/pgsql_tmp/r/\$RANDOM; done' </dev/null >/dev/null 2>&1 &"
sleep 0.5
timeout 60 "$RIFT_BIN/rift" --state "$state" stop a || fail "stopping a with a planted pgsql_tmp failed or hung"
left=$(find "$wal" -maxdepth 1 -name "$(basename "$tdir")*")
[ -z "$left" ] || fail "stopped, the temporary directory of a is still there: $left"
q "select 1" >/dev/null || fail "a did not start after its temporary directory was removed"
[ -z "$(ls -A "$tdir")" ] || fail "restarted, $tdir is not empty: $(ls -A "$tdir")"
# base/pgsql_tmp itself as a link to a root directory: riftd puts its own link back
branch_sh "ln -sfn $victim/dir base/pgsql_tmp.new && mv -T base/pgsql_tmp.new base/pgsql_tmp"
expect_status 0 R stop a
q "select 1" >/dev/null || fail "a did not start after base/pgsql_tmp was relinked"
[ "$(readlink "$state/mnt/a/base/pgsql_tmp")" = "$tdir" ] ||
	fail "base/pgsql_tmp of a is $(readlink "$state/mnt/a/base/pgsql_tmp") after a restart, not $tdir"
victim_snapshot >"$TEST_TMP/victim.after"
diff "$TEST_TMP/victim.before" "$TEST_TMP/victim.after" >&2 ||
	fail "a root-owned file outside the store changed"

# ---- a branch of a running branch links to its own directory ----
expect_status 0 R create c --from a
psql -X -At "$(R -q url c)?sslmode=disable" -c "select 1" >/dev/null || fail "branch c does not answer"
cdir=$(readlink "$state/mnt/c/base/pgsql_tmp")
[ "$cdir" != "$tdir" ] && [ -d "$cdir" ] || fail "branch c has no temporary directory of its own ($cdir)"

# ---- a size-limited branch spills into its view, where its limit counts it ----
nt=$(find "$wal" -maxdepth 1 -name 't-*' | wc -l)
expect_status 0 R create lim --from a --max-size 1G
psql -X -At "$(R -q url lim)?sslmode=disable" -c "$spill" >/dev/null || fail "a spilling sort failed in lim"
[ ! -L "$state/mnt/lim/base/pgsql_tmp" ] || fail "the size-limited branch's base/pgsql_tmp is a link"
[ "$(find "$wal" -maxdepth 1 -name 't-*' | wc -l)" = "$nt" ] ||
	fail "a temporary directory was made for the size-limited branch"
expect_status 0 R delete lim

# ---- a branch that buried its own pgsql_tmp too deep to replace still starts, spilling in its view ----
expect_status 0 R create deep --from a
durl="$(R -q url deep)?sslmode=disable"
psql -X -At "$durl" -c "copy (select 1 where false) to program \$\$rm base/pgsql_tmp && mkdir -p base/pgsql_tmp/\$(printf 'y/%.0s' \$(seq 12))\$\$" >/dev/null ||
	fail "planting a deep base/pgsql_tmp in branch deep failed"
expect_status 0 R stop deep
psql -X -At "$durl" -c "$spill" >/dev/null || fail "branch deep does not start, or cannot spill, after its pgsql_tmp was buried"
[ -d "$state/mnt/deep/base/pgsql_tmp" ] && [ ! -L "$state/mnt/deep/base/pgsql_tmp" ] ||
	fail "branch deep's base/pgsql_tmp is not its own directory"
grep -q 'cannot link base/pgsql_tmp of branch "deep"' "$TEST_TMP/riftd.log" ||
	fail "riftd did not say why branch deep spills into its view"
expect_status 0 R delete deep

# ---- a killed riftd's successor empties every temporary directory ----
branch_sh "head -c 100000 /dev/urandom >base/pgsql_tmp/left-by-a"
[ -f "$tdir/left-by-a" ] || fail "a file written to base/pgsql_tmp is not in $tdir"
kill -KILL "$RIFTD_PID"
wait "$RIFTD_PID" 2>/dev/null || true
start_riftd "$state" # it starts a and c again: they were running
[ ! -e "$tdir/left-by-a" ] || fail "riftd's start kept a killed server's temporary file"
expect_status 0 R delete c
expect_status 0 R delete a
left=$(ls "$wal")
[ -z "$left" ] || fail "directories left after every branch was deleted: $left"
exit 0
