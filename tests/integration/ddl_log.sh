#!/usr/bin/env bash
# ddl_log.sh — `rift log`: a migration's DDL in order with role and database, no DML, failed
# statements marked; kept across a riftd restart; none from before the branch (reset, a child);
# hostile bytes in the server log give valid JSON and no raw control bytes on a terminal.
source "$RIFT_TESTLIB"
export RIFT_STATE=$TEST_TMP/state PATH=$RIFT_BIN:$PATH

rift init >/dev/null || fail "rift init failed"
start_riftd "$RIFT_STATE"
rift create x >/dev/null || fail "create x"
url=$(rift url x)
q() { psql -X -q -v ON_ERROR_STOP=0 "$url" "$@" >>"$TEST_TMP/psql.out" 2>&1; }

# a migration, as psql -f sends it (one statement per query), with DML in between
cat >"$TEST_TMP/migration.sql" <<'EOF'
create table accounts (id int primary key, email text);
insert into accounts values (1, 'a@example.com');
alter table accounts add column created timestamptz default now();
update accounts set email = 'b@example.com';
create index accounts_email on accounts (email);
create view v_accounts as
  select id,
         email
    from accounts;
grant select on accounts to public;
delete from accounts;
create table accounts (id int);
drop index accounts_email;
EOF
q -f "$TEST_TMP/migration.sql"
# extended protocol (pgbench -M extended sends Parse/Bind/Execute)
echo 'create sequence seq_ext' >"$TEST_TMP/ext.sql"
pgbench -n -M extended -t 1 -f "$TEST_TMP/ext.sql" "$url" >>"$TEST_TMP/psql.out" 2>&1 ||
	fail "extended-protocol DDL failed: $(cat "$TEST_TMP/psql.out")"
# what is documented as not captured: DDL inside DO, and a session that turned logging off
q -c "do \$\$ begin execute 'create table in_do (a int)'; end \$\$"
q -c "set log_statement = none" -c "create table hidden (a int)"

rift --json log x >"$TEST_TMP/log.json" || fail "rift log x failed"
jq -r '.entries[].statement | rtrimstr("\n")' "$TEST_TMP/log.json" >"$TEST_TMP/stmts"
cat >"$TEST_TMP/want" <<'EOF'
create table accounts (id int primary key, email text);
alter table accounts add column created timestamptz default now();
create index accounts_email on accounts (email);
create view v_accounts as
  select id,
         email
    from accounts;
grant select on accounts to public;
create table accounts (id int);
drop index accounts_email;
create sequence seq_ext
EOF
diff -u "$TEST_TMP/want" "$TEST_TMP/stmts" || fail "rift log did not list the migration's DDL in order"
jq -e '[.entries[] | select(.role == "rift" and .database == "demo")] | length == 8' \
	"$TEST_TMP/log.json" >/dev/null || fail "role/database wrong: $(cat "$TEST_TMP/log.json")"
jq -e '[.entries[] | select(.failed)] | map(.statement) == ["create table accounts (id int);"]' \
	"$TEST_TMP/log.json" >/dev/null || fail "the failed create is not marked: $(cat "$TEST_TMP/log.json")"
jq -e '[.entries[].time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$")] | all' \
	"$TEST_TMP/log.json" >/dev/null || fail "times are not ISO 8601 UTC"
grep -qiE 'insert|update|delete from|in_do|hidden' "$TEST_TMP/stmts" && fail "DML or uncaptured DDL listed"
# the maintenance connection's own ALTER ROLE is never in it (riftd turns logging off for it)
grep -qi 'alter role' "$TEST_TMP/stmts" && fail "riftd's own statement listed"

# human output: one header line per statement, statement indented
rift log x >"$TEST_TMP/human" || fail "rift log x (text) failed"
grep -q '^[0-9-]*T[0-9:.]*Z  rift@demo  (failed)$' "$TEST_TMP/human" || fail "no failed marker: $(cat "$TEST_TMP/human")"
grep -q '^    alter table accounts add column' "$TEST_TMP/human" || fail "text output: $(cat "$TEST_TMP/human")"

# through the API, the same document
api "$RIFT_STATE" GET /v1/branches/x/log
[ "$API_STATUS" = 200 ] || fail "GET /v1/branches/x/log: $API_STATUS"
jq -e '.branch == "x" and (.entries | length) == 8' "$API_OUT" >/dev/null || fail "API: $(cat "$API_OUT")"
api "$RIFT_STATE" GET /v1/branches/nope/log
[ "$API_STATUS" = 404 ] || fail "unknown branch: $API_STATUS"
expect_status 1 rift log nope
expect_output 'does not exist'

# kept across a riftd restart (the server's log is riftd's file under log/)
kill -TERM "$RIFTD_PID"
wait "$RIFTD_PID" 2>/dev/null || true
start_riftd "$RIFT_STATE"
rift --json log x | jq -r '.entries[].statement | rtrimstr("\n")' >"$TEST_TMP/stmts2" || fail "rift log after restart"
diff -u "$TEST_TMP/want" "$TEST_TMP/stmts2" || fail "the log changed across a riftd restart"

# a child made now lists nothing of its parent's past; a reset branch starts empty
rift create y --from x >/dev/null || fail "create y"
psql -X -q "$(rift url y)" -c 'create table only_y (a int)' || fail "ddl on y"
[ "$(rift --json log y | jq -r '.entries[].statement')" = "create table only_y (a int)" ] ||
	fail "y's log: $(rift --json log y)"
rift delete y >/dev/null || fail "delete y"
rift reset x >/dev/null || fail "reset x"
[ "$(rift --json log x | jq '.entries | length')" = 0 ] || fail "x's log after reset: $(rift --json log x)"

# hostile bytes: the branch superuser writes to the server's stderr (the log) directly; a forged
# entry may appear (the log is advisory; printf of sh, octal escapes) but the JSON stays valid and a terminal gets no escapes
now=$(date -u '+%Y-%m-%d %H:%M:%S.999 UTC')
cat >"$TEST_TMP/forge.sh" <<EOF
printf '$now [4242] evil\377\376@demo LOG:  statement: drop \033[2J\000 everything\303\n' >&2
printf '$now [4243] x@y LOG:  statement: $(head -c 200000 /dev/zero | tr '\0' 'a')\n' >&2
printf '\t\033]0;title\007\n' >&2
EOF
chmod 644 "$TEST_TMP/forge.sh"
psql -X -q "$(rift url x)" -c "copy (select 1 where false) to program 'sh $TEST_TMP/forge.sh'" ||
	fail "the forging COPY failed"
rift --json log x >"$TEST_TMP/hostile.json" || fail "rift log with hostile bytes failed"
jq -e '.entries | length == 2 and .[0].role == "evil??" and .[1].truncated' \
	"$TEST_TMP/hostile.json" >/dev/null || fail "hostile log: $(head -c 2000 "$TEST_TMP/hostile.json")"
rift log x >"$TEST_TMP/hostile.txt" || fail "rift log (text) with hostile bytes failed"
if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$TEST_TMP/hostile.txt"; then
	fail "raw control bytes reached the terminal output"
fi
grep -q 'drop \\x1b\[2J' "$TEST_TMP/hostile.txt" || fail "escaped text missing: $(head -c 500 "$TEST_TMP/hostile.txt")"
