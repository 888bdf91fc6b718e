#!/usr/bin/env bash
# diff_data.sh — `rift diff` rows: random inserts, updates (HOT and not), deletes, TOAST-sized
# values, VACUUM and VACUUM FULL, a table without a primary key; rift's answer must equal a full
# EXCEPT ALL comparison the test computes itself, row for row. Seed: DIFF_SEED (printed).
source "$RIFT_TESTLIB"
export RIFT_STATE=$TEST_TMP/state PATH=$RIFT_BIN:$PATH
seed=${DIFF_SEED:-$RANDOM}
echo "diff_data: seed $seed (rerun with DIFF_SEED=$seed)"

rift init >/dev/null || fail "rift init failed"
start_riftd "$RIFT_STATE"
rift create base1 >/dev/null || fail "create base1"
q() { psql -X -q -v ON_ERROR_STOP=1 "$@" >>"$TEST_TMP/psql.out" 2>&1 || fail "psql $*: $(tail -5 "$TEST_TMP/psql.out")"; }
q "$(rift url base1)" <<'EOF'
create table kv (id int primary key, val text, n int) with (fillfactor = 70);
insert into kv select i, 'v' || i, i % 7 from generate_series(1, 2000) i;
create table big (id int primary key, doc text);
alter table big alter column doc set storage external;
insert into big select i, (select string_agg(md5(i::text || j::text), '') from generate_series(1, 300) j)
  from generate_series(1, 40) i;
create table nopk (a int, b text);
insert into nopk select i % 50, 'b' || (i % 13) from generate_series(1, 600) i;
create table "Odd ""name""" ("key col" int, "x" text, primary key ("key col"));
insert into "Odd ""name""" select i, 'x' from generate_series(1, 30) i;
create table untouched (id int primary key);
insert into untouched select generate_series(1, 100);
EOF
rift create d --from base1 >/dev/null || fail "create d"
rift create d2 --from base1 >/dev/null || fail "create d2"

# random changes on d
python3 - "$seed" >"$TEST_TMP/ops.sql" <<'EOF'
import random, sys
r = random.Random(int(sys.argv[1]))
out = []
next_id = 5000
for step in range(400):
    k = r.random()
    if k < 0.15:
        next_id += 1
        out.append(f"insert into kv values ({next_id}, 'new{step}', {r.randint(0, 9)});")
    elif k < 0.35:  # HOT: no indexed column changes
        out.append(f"update kv set val = 'hot{step}' where id = {r.randint(1, 2100)};")
    elif k < 0.45:  # the key itself moves
        out.append(f"update kv set id = id + 100000 where id = {r.randint(1, 2000)};")
    elif k < 0.55:
        out.append(f"delete from kv where id = {r.randint(1, 2100)};")
    elif k < 0.6:  # an update that changes nothing is no change
        out.append(f"update kv set n = n where id = {r.randint(1, 2000)};")
    elif k < 0.68:
        out.append(f"update big set doc = repeat(md5('{step}'), {r.randint(100, 400)}) where id = {r.randint(1, 40)};")
    elif k < 0.72:
        out.append(f"delete from big where id = {r.randint(1, 40)};")
    elif k < 0.82:
        out.append(f"insert into nopk values ({r.randint(0, 60)}, 'b{r.randint(0, 15)}');")
    elif k < 0.9:
        out.append(f"delete from nopk where ctid = (select ctid from nopk where a = {r.randint(0, 60)} limit 1);")
    elif k < 0.95:
        out.append(f"update \"Odd \"\"name\"\"\" set x = 'y{step}' where \"key col\" = {r.randint(1, 30)};")
    elif k < 0.98:
        out.append("vacuum kv;")
    else:
        out.append("vacuum full nopk;")
out.append("vacuum full kv;")  # a rewrite: a new relfilenode
print("\n".join(out))
EOF
q "$(rift url d)" -f "$TEST_TMP/ops.sql"
# d2: the same changes but the final VACUUM FULL, so kv is read by its changed blocks
head -n -1 "$TEST_TMP/ops.sql" >"$TEST_TMP/ops2.sql"
q "$(rift url d2)" -f "$TEST_TMP/ops2.sql"

rift --json diff d base1 --rows 1000 >"$TEST_TMP/d.json" || fail "rift diff d base1: $(cat "$TEST_TMP/d.json")"

# the expected answer: base1's tables copied into a scratch branch of d, compared there
rift create chk --from d >/dev/null || fail "create chk"
for pair in kv:o_kv big:o_big nopk:o_nopk '"Odd ""name""":o_oddname'; do
	t=${pair%:*} o=${pair##*:}
	psql -X -q "$(rift url base1)" -c "\\copy $t to '$TEST_TMP/$o.copy'" || fail "copy out $t"
	q "$(rift url chk)" -c "create table $o (like $t)" -c "\\copy $o from '$TEST_TMP/$o.copy'"
done
expect() { psql -X -At "$(rift url chk)" -c "$1" || fail "expected-value query failed: $1"; }
got() { jq -r --arg t "$1" ".databases[] | select(.name == \"demo\") | .tables[] | select(.table == \$t) | $2" "$TEST_TMP/d.json"; }
check() { # TABLE KEYEXPR OTHER [NAME]
	local t=$1 key=$2 o=$3 name=${4:-$1} want
	for op in added removed changed; do
		case $op in
		added) want=$(expect "select string_agg(k::text, ',' order by k) from (select $key as k from $t t except select $key from $o t) x") ;;
		removed) want=$(expect "select string_agg(k::text, ',' order by k) from (select $key as k from $o t except select $key from $t t) x") ;;
		changed) want=$(expect "select string_agg(k::text, ',' order by k) from (select $key as k from (select * from $t except select * from $o) t where $key in (select $key from $o t)) x") ;;
		esac
		have=$(got "$name" "[.rows[] | select(.op == \"$op\") | .key | to_entries[0].value] | sort | map(tostring) | join(\",\")")
		[ "$have" = "$want" ] || fail "$t $op: rift says [$have], EXCEPT says [$want]"
		n=0
		[ -z "$want" ] || n=$(echo "$want" | awk -F, '{print NF}')
		[ "$(got "$name" ".$op // 0")" = "$n" ] || fail "$t $op count: $(got "$name" ".$op") != $n"
	done
}
check kv t.id o_kv
check big t.id o_big
check '"Odd ""name"""' 't."key col"' o_oddname 'Odd "name"'
# no primary key: whole rows as multisets, both ways
for dir in added removed; do
	if [ $dir = added ]; then a=nopk b=o_nopk; else a=o_nopk b=nopk; fi
	want=$(expect "select row_to_json(x)::text from (select * from $a except all select * from $b) x" | LC_ALL=C sort)
	have=$(got nopk ".rows[] | select(.op == \"$dir\") | (.new // .old) | tojson" | LC_ALL=C sort)
	[ "$have" = "$want" ] || fail "nopk $dir: rift [$have] vs EXCEPT ALL [$want]"
done
[ -z "$(got untouched .table)" ] || fail "an unchanged table is listed"
for t in kv big nopk; do [ "$(got $t ".added + .removed + .changed")" -gt 0 ] || fail "no change found in $t: the test changed nothing"; done

# narrowed by the store (d2 against its fork point) = whole tables (d2 against base1, which
# changed nothing since: parted at base1's running server, so whole tables are read)
rift --json diff d2 --rows 1000 >"$TEST_TMP/n.json" || fail "rift diff d2: $(cat "$TEST_TMP/n.json")"
rift --json diff d2 base1 --rows 1000 >"$TEST_TMP/w.json" || fail "rift diff d2 base1: $(cat "$TEST_TMP/w.json")"
demo='.databases[] | select(.name == "demo")'
jq -e "$demo | .scan.narrowed and ([.scan.narrowed_tables[].table] | index(\"kv\"))" "$TEST_TMP/n.json" >/dev/null ||
	fail "d2 against its fork point: kv not read by its changed blocks: $(jq -c "$demo | .scan" "$TEST_TMP/n.json")"
jq -e "$demo | .scan.narrowed == false" "$TEST_TMP/w.json" >/dev/null || fail "d2 base1 was narrowed"
jq -e "$demo | .scan.tables_skipped >= 1" "$TEST_TMP/n.json" >/dev/null || fail "untouched was read"
norm() { jq -S "[$demo | .tables[] | {table, key, added, removed, changed, rows: (.rows | sort_by(tojson))}] | sort_by(.table)" "$1"; }
norm "$TEST_TMP/n.json" >"$TEST_TMP/n.norm"
norm "$TEST_TMP/w.json" >"$TEST_TMP/w.norm"
diff -u "$TEST_TMP/w.norm" "$TEST_TMP/n.norm" >"$TEST_TMP/nw.diff" ||
	fail "narrowed and whole-table answers differ (seed $seed): $(head -40 "$TEST_TMP/nw.diff")"
# d, whose kv was rewritten by VACUUM FULL: kv read in full, said so, same answer
rift --json diff d --rows 1000 >"$TEST_TMP/nd.json" || fail "rift diff d"
jq -e "$demo | .scan.full_tables[] | select(.table == \"kv\") | .why == \"rewritten\"" "$TEST_TMP/nd.json" >/dev/null ||
	fail "kv after VACUUM FULL not reported rewritten: $(jq -c "$demo | .scan" "$TEST_TMP/nd.json")"
norm "$TEST_TMP/nd.json" >"$TEST_TMP/nd.norm"
norm "$TEST_TMP/d.json" >"$TEST_TMP/d.norm"
diff -u "$TEST_TMP/d.norm" "$TEST_TMP/nd.norm" >"$TEST_TMP/nd.diff" ||
	fail "d: narrowed and whole-table answers differ (seed $seed): $(head -40 "$TEST_TMP/nd.diff")"

# --summary: counts only; --rows N lists at most N per table
rift diff d base1 --summary >"$TEST_TMP/summary" || fail "--summary"
grep -q '^database demo: schema 0 added, 0 removed, 0 changed; rows [0-9]* added' "$TEST_TMP/summary" ||
	fail "summary: $(cat "$TEST_TMP/summary")"
rift --json diff d base1 --rows 2 | jq -e '[.databases[].tables[].rows | length <= 2] | all' >/dev/null ||
	fail "--rows 2 listed more"
rift diff d base1 --rows 3 >"$TEST_TMP/rows.txt" || fail "--rows 3 (text)"
grep -Eq '^    [-+~] \{"id":[0-9]+\}: \{' "$TEST_TMP/rows.txt" || fail "row listing: $(head -20 "$TEST_TMP/rows.txt")"
