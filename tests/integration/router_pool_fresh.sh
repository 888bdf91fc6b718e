#!/usr/bin/env bash
# router_pool_fresh.sh — a kept server session cannot be told from a new backend: one script of
# client sessions (each leaving state behind for the next to look at) gives the same output with
# [router] pool_size = 100 as with pool_size = 0, including the issue-14 PREPARE TRANSACTION case.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
start_riftd "$state"
rport=$(router_port "$state")
PGPASSWORD=$(demo_password "$state")
export PGPASSWORD

# session BRANCH SQL: one client session through the router; everything it prints, errors too.
# The pause lets the router finish resetting the session it keeps before the next one asks.
session() {
	psql -X -At -v VERBOSITY=terse -P null='(null)' \
		"host=127.0.0.1 port=$rport user=rift dbname=$1 sslmode=disable" 2>&1 <<<"$2" |
		sed -e 's/^psql:<stdin>:/line /'
	sleep 0.3
}

# run_script BRANCH: each "leave" session changes something a client could notice later; each
# "look" session after it prints what a new backend would show
run_script() {
	local b=$1
	session "$b" "create role other; grant create on schema public to other;" >/dev/null
	echo "== temp schema, then PREPARE TRANSACTION (issue 14)"
	session "$b" "create temp table tt(x int); insert into tt values (1);"
	# the temp schema's number is the backend's slot (pg_temp_1, pg_temp_3, ...), which
	# depends on what else is connected: only whether it is one is compared
	session "$b" "begin; set search_path to pg_temp; select current_schema() like 'pg\_temp\_%';
prepare transaction 'x'; select pg_my_temp_schema() = 0;"
	echo "== temp table only in a transaction"
	session "$b" "begin; create temp table t2(x int) on commit drop; commit;"
	session "$b" "select pg_my_temp_schema() = 0, count(*) from pg_class where relname = 't2';"
	echo "== prepared transaction"
	session "$b" "begin; create table pt(x int); prepare transaction 'p1'; select 1;"
	session "$b" "select count(*) from pg_prepared_xacts; select count(*) from pg_class where relname = 'pt';"
	echo "== SET SESSION AUTHORIZATION and SET ROLE"
	session "$b" "set session authorization other; select session_user, current_user;"
	session "$b" "select session_user, current_user; create table owned_by(x int);
select pg_get_userbyid(relowner) from pg_class where relname = 'owned_by';"
	session "$b" "set role other; select current_user;"
	session "$b" "select session_user, current_user;"
	echo "== advisory locks"
	session "$b" "select pg_advisory_lock(42); select pg_advisory_lock_shared(43);"
	session "$b" "select count(*) from pg_locks where locktype = 'advisory'; select pg_try_advisory_lock(42); select pg_advisory_unlock_all();"
	echo "== LISTEN"
	session "$b" "listen chan1; listen chan2;"
	session "$b" "select count(*) from pg_listening_channels(); notify chan1;"
	echo "== GUCs"
	session "$b" "set work_mem = '7MB'; set search_path = nowhere; set application_name = 'changed';
set timezone = 'Asia/Tokyo'; set statement_timeout = 1234; select set_config('datestyle', 'SQL, DMY', false);"
	session "$b" "show work_mem; show search_path; show application_name; show statement_timeout;
select current_setting('datestyle'); select now()::text = (now() at time zone current_setting('timezone'))::text is not null;"
	echo "== prepared statements, cursors, sequences, plans"
	session "$b" "prepare leftover(int) as select \$1 + 1; declare c cursor with hold for select 1;
create sequence sq; select nextval('sq');"
	session "$b" "execute leftover(1); fetch c; select count(*) from pg_prepared_statements;
select count(*) from pg_cursors; select currval('sq'); select lastval();"
	echo "== an open transaction left behind"
	session "$b" "begin; insert into owned_by values (1);"
	session "$b" "select count(*) from owned_by;"
	echo "== pid-independent session facts"
	session "$b" "select current_database(), current_user, inet_client_addr() is not null,
pg_is_in_recovery(), (select count(*) from pg_stat_activity where pid = pg_backend_pid());"
}

api "$state" POST /v1/branches '{"name":"pool-on"}'
[ "$API_STATUS" = 201 ] || fail "create pool-on: $(cat "$API_OUT")"
api "$state" POST /v1/branches '{"name":"pool-off"}'
[ "$API_STATUS" = 201 ] || fail "create pool-off: $(cat "$API_OUT")"
run_script pool-on >"$TEST_TMP/on.out"

# the pool did its work in that run: sessions were reused, and dirty ones closed instead
grep -q 'reused server session' "$TEST_TMP/riftd.log" || fail "no session was reused with the pool on"
grep -q 'closed instead of kept: it has a temporary schema' "$TEST_TMP/riftd.log" ||
	fail "a session with a temporary schema was not refused by the check"
# a clean session is still reused (the check does not throw every session away); a login is
# vouched for 10 s, so a pair may straddle that window: a few pairs, one must share
pid() { psql -X -At "host=127.0.0.1 port=$rport user=rift dbname=pool-on sslmode=disable" -c "select pg_backend_pid()"; }
for _ in 1 2 3; do
	first=$(pid)
	sleep 0.3
	second=$(pid)
	[ "$second" = "$first" ] && break
	sleep 0.3
done
[ "$second" = "$first" ] || fail "a clean session was not reused ($first, then $second)"

stop_riftd_quietly "$RIFTD_PID" "$state" || true
log_lines=$(wc -l <"$TEST_TMP/riftd.log")
set_conf "$state" pool_size 0
grep -q '^pool_size = 0$' "$state/rift.conf" || fail "rift.conf lacks the pool_size key"
start_riftd "$state"
run_script pool-off >"$TEST_TMP/off.out"
tail -n +"$((log_lines + 1))" "$TEST_TMP/riftd.log" | grep 'reused server session' >/dev/null &&
	fail "a session was reused with pool_size = 0"

if ! diff -u "$TEST_TMP/off.out" "$TEST_TMP/on.out" >"$TEST_TMP/diff.txt"; then
	cat "$TEST_TMP/diff.txt" >&2
	fail "pool on and pool off gave different output (diff above: - pool off, + pool on)"
fi
grep -q 'cannot PREPARE a transaction that has operated on temporary objects' "$TEST_TMP/on.out" ||
	fail "the issue-14 case did not run as on a new backend: $(cat "$TEST_TMP/on.out")"
exit 0
