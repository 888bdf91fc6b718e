#!/usr/bin/env bash
# diff_narrow.sh — `rift diff` against the fork point reads only what the store saw change: an
# untouched big table is skipped, a touched one reads only its changed blocks, a table rewritten
# wholesale (ALTER TABLE ... TYPE, VACUUM FULL) is compared in full and said so with its size,
# a truncated tail is read, an unlogged table (whose pages CHECKPOINT leaves in memory) is read in
# full, a change made with fsync = off is seen, a server allowing prepared transactions is not
# narrowed; and the narrowed answer equals the full comparison's, row for row.
source "$RIFT_TESTLIB"
export RIFT_STATE=$TEST_TMP/state PATH=$RIFT_BIN:$PATH

rift init >/dev/null || fail "rift init failed"
start_riftd "$RIFT_STATE"
rift create p >/dev/null || fail "create p"
q() { psql -X -q -v ON_ERROR_STOP=1 "$(rift url "$1")" >>"$TEST_TMP/psql.out" 2>&1 || fail "psql on $1: $(tail -5 "$TEST_TMP/psql.out")"; }
q p <<'EOF'
create table cold (id int primary key, pad text);
insert into cold select i, repeat('c', 200) from generate_series(1, 20000) i;
create table warm (id int primary key, v text, n int);
insert into warm select i, repeat('w', 100), 0 from generate_series(1, 20000) i;
create table bag (a int, b text);
insert into bag select i % 100, repeat('b', 100) from generate_series(1, 20000) i;
create table retyped (id int primary key, v int);
insert into retyped select i, i from generate_series(1, 3000) i;
create table shrunk (id int primary key, pad text);
insert into shrunk select i, repeat('s', 200) from generate_series(1, 5000) i;
create table toasty (id int primary key, doc text);
alter table toasty alter column doc set storage external;
insert into toasty select i, repeat(md5(i::text), 300) from generate_series(1, 50) i;
-- as a loaded database is: hint bits and visibility set, so reads on b dirty no page
vacuum (freeze);
checkpoint;
EOF
rift create b --from p >/dev/null || fail "create b"
q b <<'EOF'
update warm set n = n + 1 where id in (7, 9000, 19999);
update warm set id = 100007 where id = 500;
delete from warm where id = 12345;
insert into warm values (30001, 'new', 1);
delete from bag where ctid in (select ctid from bag where a = 3 limit 2);
insert into bag values (3, 'again'), (3, 'again');
update retyped set id = -id where id in (10, 11);
alter table retyped alter column v type bigint;
delete from shrunk where id > 4500;
vacuum shrunk;
update toasty set doc = repeat('x', 9000) where id = 3;
EOF
# the parent moves on: none of it may show against the fork point
q p <<<"update cold set pad = 'parent' where id < 100; delete from warm where id < 50"

rift --json diff b --rows 1000 >"$TEST_TMP/n.json" || fail "rift diff b: $(cat "$TEST_TMP/n.json")"
db='.databases[] | select(.name == "demo")'
scan() { jq -c "$db | .scan | $1" "$TEST_TMP/n.json"; }
[ "$(scan .narrowed)" = true ] || fail "not narrowed: $(scan .)"
# cold: no block changed on b, skipped
[ "$(scan '[.narrowed_tables[], .full_tables[] | select(.table == "cold")] | length')" = 0 ] ||
	fail "cold was read: $(scan .)"
[ "$(scan .tables_skipped)" -ge 1 ] || fail "nothing skipped: $(scan .)"
# warm: a handful of blocks of a few hundred
warm=$(scan '.narrowed_tables[] | select(.table == "warm")')
[ -n "$warm" ] || fail "warm not narrowed: $(scan .)"
[ "$(jq .blocks <<<"$warm")" -le 20 ] && [ "$(jq .of <<<"$warm")" -ge 200 ] ||
	fail "warm read too much: $warm"
# retyped: a new relfilenode, compared in full and said so with its size
rt=$(scan '.full_tables[] | select(.table == "retyped")')
[ "$(jq -r .why <<<"$rt")" = rewritten ] && [ "$(jq .bytes <<<"$rt")" -gt 0 ] ||
	fail "retyped not reported as rewritten: $(scan .)"

# shrunk: VACUUM cut its tail; the changed blocks and the tail past the shorter side are read
sh=$(scan '.narrowed_tables[] | select(.table == "shrunk")')
[ -n "$sh" ] && [ "$(jq '.blocks < .of / 2' <<<"$sh")" = true ] || fail "shrunk not narrowed: $(scan .)"

# the same answer as a full comparison: b against a copy of p's old rows, made from the
# fork point's own data (a branch of b whose tables are refilled from the parent's state)
rift create chk --from b >/dev/null || fail "create chk"
rift create old --from p >/dev/null || fail "create old"
# old = p now; undo p's later changes there so old equals the fork point for these tables
q old <<<"update cold set pad = repeat('c', 200) where id < 100; insert into warm select i, repeat('w', 100), 0 from generate_series(1, 49) i"
rift --json diff b old --rows 1000 >"$TEST_TMP/full.json" || fail "rift diff b old"
jq -e "$db | .scan.narrowed == false" "$TEST_TMP/full.json" >/dev/null ||
	fail "b against old should compare whole tables: $(jq -c "$db | .scan" "$TEST_TMP/full.json")"
norm() { jq -S "[$db | .tables[] | {table, key, added, removed, changed, rows: (.rows | sort_by(tojson))}] | sort_by(.table)" "$1"; }
norm "$TEST_TMP/n.json" >"$TEST_TMP/n.norm"
norm "$TEST_TMP/full.json" >"$TEST_TMP/full.norm"
diff -u "$TEST_TMP/full.norm" "$TEST_TMP/n.norm" >"$TEST_TMP/norm.diff" ||
	fail "narrowed and full answers differ: $(head -40 "$TEST_TMP/norm.diff")"
for t in warm bag retyped shrunk toasty; do
	jq -e --arg t $t "[$db | .tables[] | select(.table == \$t)] | length == 1" "$TEST_TMP/n.json" >/dev/null ||
		fail "$t shows no change: $(jq -c "[$db | .tables[] | {table, added, removed, changed}]" "$TEST_TMP/n.json")"
done
jq -e "$db | .tables[] | select(.table == \"warm\") | .added == 2 and .removed == 2 and .changed == 3" \
	"$TEST_TMP/n.json" >/dev/null || fail "warm counts: $(jq -c "$db | .tables[] | select(.table == \"warm\") | {added, removed, changed}" "$TEST_TMP/n.json")"
jq -e "$db | .tables[] | select(.table == \"shrunk\") | .removed == 500" "$TEST_TMP/n.json" >/dev/null ||
	fail "shrunk: $(jq -c "$db | .tables[] | select(.table == \"shrunk\") | {added, removed, changed}" "$TEST_TMP/n.json")"
grep -Eq 'diff: database [0-9]+: 9 tables compared, [0-9]+ skipped .* in full \(1 rewritten\)' "$TEST_TMP/riftd.log" ||
	fail "no log line counting the rewritten table: $(grep 'diff:' "$TEST_TMP/riftd.log")"

# an unlogged table: made from a stopped parent (a clean shutdown wrote its pages), the child's
# server keeps it and shares its file; the child's update stays in its buffers, as CHECKPOINT
# writes only permanent relations, so the store sees no changed block and must not be believed
q p <<'EOF'
create unlogged table ul (id int primary key, v int);
insert into ul select i, 0 from generate_series(1, 1000) i;
EOF
rift stop p >/dev/null || fail "stop p"
rift create u --from p >/dev/null || fail "create u"
q u <<<"update ul set v = 1 where id in (5, 500)"
rift --json diff u --rows 10 >"$TEST_TMP/u.json" || fail "rift diff u: $(cat "$TEST_TMP/u.json")"
jq -e "$db | .tables[] | select(.table == \"ul\") | .changed == 2 and .added == 0" \
	"$TEST_TMP/u.json" >/dev/null ||
	fail "the unlogged table's change was missed: $(jq -c "$db | .tables, .scan" "$TEST_TMP/u.json")"
jq -e "$db | .scan.full_tables[] | select(.table == \"ul\") | .why == \"unlogged\"" \
	"$TEST_TMP/u.json" >/dev/null || fail "ul not read in full as unlogged: $(jq -c "$db | .scan" "$TEST_TMP/u.json")"

# fsync = off (common in CI): CHECKPOINT leaves its writes in the kernel's page cache, which
# holds a mount's writes back from the store until riftd syncs the mount (here the checkpointer
# closing its files after the checkpoint also flushes them, in a race with CHECKPOINT's answer;
# pages a backend evicted and still holds open are flushed by nothing else)
rift create nf --from p >/dev/null || fail "create nf"
q nf <<<"alter system set fsync = off; select pg_reload_conf()"
[ "$(psql -X -At "$(rift url nf)" -c 'show fsync')" = off ] || fail "fsync is not off on nf"
q nf <<<"update warm set n = n + 100 where id = 9000"
rift --json diff nf --rows 10 >"$TEST_TMP/nf.json" || fail "rift diff nf: $(cat "$TEST_TMP/nf.json")"
jq -e "$db | .tables[] | select(.table == \"warm\") | .changed == 1" "$TEST_TMP/nf.json" >/dev/null ||
	fail "a change made with fsync = off was missed: $(jq -c "$db | .tables, .scan" "$TEST_TMP/nf.json")"

# prepared transactions allowed on a side: one pending when the chains parted could have ended
# differently on each side with only pg_xact changed, so whole tables are compared
rift create tp --from p >/dev/null || fail "create tp"
q tp <<<"alter system set max_prepared_transactions = 2"
rift stop tp >/dev/null || fail "stop tp"
q tp <<<"update warm set n = n + 1 where id = 9000"
rift --json diff tp >"$TEST_TMP/tp.json" || fail "rift diff tp: $(cat "$TEST_TMP/tp.json")"
jq -e "$db | .scan.narrowed == false and (.scan.why_not | test(\"max_prepared_transactions\"))" \
	"$TEST_TMP/tp.json" >/dev/null || fail "narrowed with prepared transactions allowed: $(jq -c "$db | .scan" "$TEST_TMP/tp.json")"
jq -e "$db | .tables[] | select(.table == \"warm\") | .changed == 1" "$TEST_TMP/tp.json" >/dev/null ||
	fail "tp's change: $(jq -c "$db | .tables" "$TEST_TMP/tp.json")"
exit 0
