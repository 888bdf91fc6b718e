#!/usr/bin/env bash
# wal_dir.sh — a branch's pg_wal lives beside the store (<state>/wal/b-<id>, wal_dir.h): the view
# links to it, its server's uid owns it only while it runs, a branch of a live branch gets the
# WAL its data needs (and its fork point one for rift diff), delete gives it back. A branch
# superuser who plants links, FIFOs and junk in its WAL directory, or points pg_wal elsewhere,
# makes root follow nothing and copy nothing of them.
source "$RIFT_TESTLIB"

riftd_with_branch a
wal=$state/wal

# ---- the layout ----
q "create table t (id bigserial primary key, a int not null, b int not null)" >/dev/null ||
	fail "create table failed"
q "insert into t (a, b) select i, -i from generate_series(1, 1000) i" >/dev/null
bdir=$(readlink "$state/mnt/a/pg_wal") || fail "pg_wal of branch a is not a link"
case "$bdir" in "$wal"/b-*) ;; *) fail "pg_wal of a points at $bdir, not under $wal" ;; esac
[ "$(stat -c '%U %a' "$wal")" = "root 711" ] || fail "$wal is $(stat -c '%U %a' "$wal")"
uid=$(stat -c %u "$state/mnt/a") # the view shows the running server's uid as owner
[ "$(stat -c '%u %a' "$bdir")" = "$uid 700" ] || fail "$bdir is $(stat -c '%u %a' "$bdir"), not $uid 700"
lsn_file=$(q "select pg_walfile_name(pg_current_wal_insert_lsn())")
[ -f "$bdir/$lsn_file" ] || fail "the current segment $lsn_file is not in $bdir"
# the store holds no WAL of the branch any more: Postgres's listing is the directory's
diff <(q "select name from pg_ls_waldir() order by 1") <(cd "$bdir" && ls | grep -v archive_status | sort) >&2 ||
	fail "pg_ls_waldir() and $bdir differ"

# stopped, the directory is root's: its uid may serve another branch next
expect_status 0 R stop a
[ "$(stat -c '%U %a' "$bdir")" = "root 700" ] || fail "stopped, $bdir is $(stat -c '%U %a' "$bdir")"
[ "$(q "select count(*) from t")" = 1000 ] || fail "rows lost across a restart"

# ---- a branch of a live branch, taken while the parent writes ----
# segments are switched every 200 commits, so branches land beside a segment switch too
(psql -X -q "$url" -c "do \$\$ begin for i in 1..20000 loop
	insert into t (a, b) values (i, -i); commit;
	if i % 200 = 0 then perform pg_switch_wal(); end if; end loop; end \$\$" >/dev/null 2>&1) &
writer=$!
on_exit "kill $writer 2>/dev/null"
sleep 1
expect_status 0 R create c --from a
sleep 0.5
expect_status 0 R create d --from a
wait "$writer" || fail "the writer in a failed"
for child in c d; do
	curl="$(R -q url $child)?sslmode=disable&connect_timeout=90"
	out=$(psql -X -At "$curl" -c "select count(*) > 1000, sum(a + b) from t") ||
		fail "branch $child of a live branch does not answer"
	[ "$out" = "t|0" ] || fail "branch $child of a live branch: $out (rows torn or missing)"
	cdir=$(readlink "$state/mnt/$child/pg_wal")
	[ "$cdir" != "$bdir" ] && [ -d "$cdir" ] || fail "branch $child has no WAL directory of its own ($cdir)"
done
[ "$(ls -d "$wal"/l-* | wc -l)" -ge 1 ] || fail "no fork-point WAL (l-) directory after branching a"
# rift diff starts a server on the fork point of c: it needs the layer's WAL
R diff c >"$TEST_TMP/diff.out" 2>&1 || fail "rift diff c failed: $(cat "$TEST_TMP/diff.out")"
grep -q "rows .* added" "$TEST_TMP/diff.out" || fail "rift diff c printed no row counts"

# ---- the attack: junk and links in the WAL directory, pg_wal pointed elsewhere ----
victim_tree
victim_snapshot >"$TEST_TMP/victim.before"
branch_sh "cd pg_wal && ln -s $victim/v600 0000000100000000000000F0 &&
	ln -s $victim/fifo 0000000100000000000000F1 && mkfifo 0000000100000000000000F2 &&
	ln -s $victim/dir archive_status.x && ln -s $victim 00000009.history &&
	head -c 1000 /dev/urandom >junk"
timeout 60 "$RIFT_BIN/rift" --state "$state" create e --from a ||
	fail "branching a parent with planted links and FIFOs failed or hung"
copied=$(find "$wal" -mindepth 2 -name '0000000100000000000000F*' -path '*/b-*' \
	-not -path "$bdir/*" -print)
[ -z "$copied" ] || fail "planted entries were copied: $copied"
grep -rqF -- "$(cat "$victim/v600")" "$wal" 2>/dev/null && fail "the victim's content was copied"
[ "$(psql -X -At "$(R -q url e)?sslmode=disable" -c "select sum(a + b) from t")" = 0 ] ||
	fail "branch e of the planted parent is not consistent"
# pg_wal itself as a link to a root directory: riftd puts its own link back and follows none
branch_sh "rm -f pg_wal/0000000100000000000000F* pg_wal/00000009.history pg_wal/junk pg_wal/archive_status.x"
q "checkpoint" >/dev/null
branch_sh "ln -sfn $victim/dir pg_wal.new && mv -T pg_wal.new pg_wal"
expect_status 0 R stop a
[ "$(readlink "$state/mnt/a/pg_wal")" = "$bdir" ] || true # the link is fixed at the next start
[ "$(q "select count(*) > 1000 from t")" = t ] || fail "a did not come back after pg_wal was relinked"
[ "$(readlink "$state/mnt/a/pg_wal")" = "$bdir" ] ||
	fail "pg_wal of a is $(readlink "$state/mnt/a/pg_wal") after the restart, not $bdir"
victim_snapshot >"$TEST_TMP/victim.after"
diff "$TEST_TMP/victim.before" "$TEST_TMP/victim.after" >&2 ||
	fail "a root-owned file outside the store changed"

# ---- a size-limited branch keeps its WAL in the store, where its limit counts it ----
nb=$(find "$wal" -maxdepth 1 -name 'b-*' | wc -l)
expect_status 0 R create lim --from a --max-size 1G
[ "$(psql -X -At "$(R -q url lim)?sslmode=disable" -c "select sum(a + b) from t")" = 0 ] ||
	fail "size-limited branch lim does not answer"
[ -d "$state/mnt/lim/pg_wal" ] && [ ! -L "$state/mnt/lim/pg_wal" ] ||
	fail "the size-limited branch's pg_wal is not a directory in its view"
[ "$(find "$wal" -maxdepth 1 -name 'b-*' | wc -l)" = "$nb" ] ||
	fail "a WAL directory was left for the size-limited branch"
expect_status 0 R delete lim

# ---- a killed riftd's successor: what it left goes, stopped branches' WAL is root's ----
q "insert into t (a, b) values (7, -7)" >/dev/null
kill -KILL "$RIFTD_PID"
wait "$RIFTD_PID" 2>/dev/null || true
mkdir -p "$wal/b-00000000deadbeef/archive_status" "$wal/l-00000000deadbeef" "$bdir.tmp"
start_riftd "$state"
for d in "$wal/b-00000000deadbeef" "$wal/l-00000000deadbeef" "$bdir.tmp"; do
	[ ! -e "$d" ] || fail "riftd's start left $d, which no branch or layer has"
done
[ "$(q "select count(*) from t where a = 7 and b = -7") " != "0 " ] ||
	fail "a commit acknowledged before riftd was killed is missing"
for b in a c d e; do expect_status 0 R stop $b; done
for d in "$wal"/b-*; do
	[ "$(stat -c '%U %a' "$d")" = "root 700" ] || fail "stopped, $d is $(stat -c '%U %a' "$d")"
done
for b in c d e; do expect_status 0 R delete $b; done
expect_status 0 R delete a
left=$(ls "$wal")
[ -z "$left" ] || fail "WAL directories left after every branch was deleted: $left"
exit 0
