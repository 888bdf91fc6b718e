#!/usr/bin/env bash
# router_pool.sh — server sessions kept between clients: reused only for the same branch,
# database, user and options, after the router itself checked the password (SCRAM) or the
# server trusts the login; reset so nothing of one client reaches the next; long sessions are
# still handed to the kernel; kept sessions neither leak nor keep an idle branch running.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
set_conf "$state" idle_timeout 6
start_riftd "$state"
rport=$(router_port "$state")
PGPASSWORD=$(demo_password "$state")
export PGPASSWORD
api "$state" POST /v1/branches '{"name":"p"}'
api "$state" POST /v1/branches '{"name":"q"}'
router="host=127.0.0.1 port=$rport user=rift dbname=p sslmode=disable"
pid() { psql -X -At "${2:-$router}" -c "select pg_backend_pid()" 2>"$TEST_TMP/pid.err"; }
first=$(pid)
[ -n "$first" ] || fail "no first session: $(cat "$TEST_TMP/pid.err")"
[ "$(pid)" = "$first" ] || fail "the second session did not reuse the first one's server session"
wait_log 'server session kept' || fail "no close line for a kept session"
wait_log 'reused server session' || fail "no close line for a reuse"

# the router checks the password itself on reuse; the kept session stays for the right one
PGPASSWORD=wrong psql -X -At "$router" -c "select 1" >"$TEST_TMP/wrong.out" 2>&1 &&
	fail "a wrong password was accepted on a reused session"
grep -q 'password authentication failed for user "rift"' "$TEST_TMP/wrong.out" ||
	fail "wrong password: $(cat "$TEST_TMP/wrong.out")"
[ "$(pid)" = "$first" ] || fail "a failed login used up the kept session"

# a session that made a temp table keeps its temp schema through DISCARD ALL: not kept
psql -X -At "$router" -c "create temp table scratch(x int)" >/dev/null
[ "$(pid)" != "$first" ] || fail "a session with a temporary schema was kept"
wait_log 'closed instead of kept: it has a temporary schema' ||
	fail "no log line for a session closed instead of kept"
first=$(pid)
# nothing of one client reaches the next: settings, prepared statements, locks, LISTEN, an
# open transaction's writes
psql -X -At "$router" >/dev/null <<'SQL' || fail "session setup failed"
set work_mem = '7MB';
prepare leftover as select 1;
select pg_advisory_lock(4242);
listen somewhere;
SQL
out=$(psql -X -At "$router" -c "select (select count(*) from pg_class where relname = 'scratch'),
	current_setting('work_mem'), (select count(*) from pg_prepared_statements),
	(select count(*) from pg_locks where locktype = 'advisory'),
	(select count(*) from pg_listening_channels()), pg_backend_pid()")
[ "$out" = "0|4MB|0|0|0|$first" ] || fail "state leaked into a reused session: $out"
psql -X -At "$router" -c "create table kept(x int)" >/dev/null
psql -X "$router" >/dev/null 2>&1 <<'SQL'
begin;
insert into kept values (1);
SQL
[ "$(psql -X -At "$router" -c "select count(*) from kept")" = 0 ] ||
	fail "a transaction left open by a client that quit was committed"

# only the same branch, database, user and options share a session
[ "$(pid "host=127.0.0.1 port=$rport user=rift dbname=q sslmode=disable")" != "$first" ] ||
	fail "branch q got branch p's session"
[ "$(pid "host=127.0.0.1 port=$rport user=rift dbname=postgres@p sslmode=disable")" != "$first" ] ||
	fail "database postgres got database demo's session"
[ "$(pid "$router options='-c search_path=other'")" != "$first" ] ||
	fail "different startup options shared a session"

# protocols and reuse under load: simple, extended and prepared, a new session each time
for mode in simple extended prepared; do
	pgbench -n -C -M $mode -f <(echo "select count(*) from orders where id < 50;") -T 2 \
		-c 4 -j 2 "$router" >"$TEST_TMP/pgb.out" 2>&1 ||
		fail "pgbench -C -M $mode: $(tail -3 "$TEST_TMP/pgb.out")"
	grep -q "number of failed transactions: 0" "$TEST_TMP/pgb.out" ||
		fail "pgbench -C -M $mode had failures"
done
# a cancel reaches a reused session's query
"$RIFT_BIN/pq_client" "$router" >"$TEST_TMP/pq.out" || fail "pq_client: $(cat "$TEST_TMP/pq.out")"
grep -q '^cancel=ok$' "$TEST_TMP/pq.out" || fail "cancel on a reused session failed"
# the client that left a kept session cannot cancel the next client's query
"$RIFT_BIN/pq_client" "$router" --stale-cancel >"$TEST_TMP/stale.out" 2>&1 ||
	fail "stale cancel: $(cat "$TEST_TMP/stale.out")"

# a session older than a second is handed to the kernel at its next ReadyForQuery
big="select i, repeat(md5(i::text), 30) from generate_series(1, 50000) i"
want=$(psql -X -At "host=127.0.0.1 port=$rport user=rift dbname=q sslmode=disable" -c "$big" | md5sum)
got=$(psql -q -X -At "$router" -c 'do $$ begin perform pg_sleep(1.2); end $$' -c "$big" | md5sum)
[ "$got" = "$want" ] || fail "a result changed when its session was handed to the kernel"
wait_log 'kernel-spliced' || fail "a long session was not spliced"

# a password change reaches reused logins once the last approval is stale (10 s)
psql -X -At "$router" -c "alter role rift password 'changed'" >/dev/null
sleep 11
PGPASSWORD=$PGPASSWORD psql -X -At "$router" -c "select 1" >/dev/null 2>&1 &&
	fail "the old password still works 11 s after it was changed"
[ "$(PGPASSWORD=changed psql -X -At "$router" -c "select 1")" = 1 ] ||
	fail "the new password does not work"
PGPASSWORD=changed psql -X -At "$router" -c "alter role rift password '$PGPASSWORD'" >/dev/null

# kept sessions do not keep an idle branch running, and go when it stops
for _ in $(seq 40); do
	api "$state" GET /v1/branches/p
	[ "$(api_field .state)" = stopped ] && break
	sleep 0.5
done
[ "$(api_field .state)" = stopped ] || fail "kept sessions kept branch p running past idle_timeout"
sleep 1
n=$(sockets_of "$RIFTD_PID")
[ "$n" -le 4 ] || fail "riftd still holds $n sockets after the branches stopped"
[ "$(pid)" != "$first" ] || fail "a stopped server's session was reused"
exit 0
