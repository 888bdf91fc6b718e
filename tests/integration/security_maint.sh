#!/usr/bin/env bash
# security_maint.sh — a branch superuser cannot hang riftd's own queries on its server (trap
# views on the search_path, a stopped postmaster): idle stops of every branch keep working.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
"$RIFT_BIN/rift" --state "$state" init >/dev/null || fail "rift init failed"
set_conf "$state" idle_timeout 6
start_riftd "$state"
rift() { "$RIFT_BIN/rift" --state "$state" "$@"; }
state_of() { rift --json list | jq -r ".branches[] | select(.name == \"$1\") | .state"; }

rift create evil -q
rift create victim -q
# in database postgres, where riftd's own connections go
url_evil=$(rift url evil)
psql -X -q -v ON_ERROR_STOP=1 "${url_evil%/evil}/postgres@evil" <<'SQL' || fail "could not set the trap"
create schema trap;
create function trap.slow_activity() returns setof pg_catalog.pg_stat_activity
	language plpgsql as $$
begin
	perform pg_catalog.pg_sleep(100000);
	return query select * from pg_catalog.pg_stat_activity;
end $$;
create view trap.pg_stat_activity as select * from trap.slow_activity();
create function trap.count(anyelement) returns bigint language sql as 'select pg_sleep(100000)::text::bigint';
alter role postgres set search_path = trap, pg_catalog;
alter role postgres set statement_timeout = 0;
SQL
psql -X -Atc 'select 1' "$(rift url victim)" >/dev/null || fail "victim does not answer"
[ "$(state_of evil)" = running ] && [ "$(state_of victim)" = running ] || fail "branches not running"

# riftd's idle check runs every 2 s and must stop both within idle_timeout plus a margin
for ((i = 0; i < 300; i++)); do
	[ "$(state_of victim)" = stopped ] && [ "$(state_of evil)" = stopped ] && break
	sleep 0.1
done
[ "$(state_of victim)" = stopped ] || fail "victim did not stop when idle: riftd hangs on evil's trap"
[ "$(state_of evil)" = stopped ] || fail "evil did not stop when idle"

# a stopped postmaster: riftd's connection attempts give up, other branches still stop when idle
psql -X -Atc 'select 1' "$(rift url victim)" >/dev/null || fail "victim does not answer"
psql -X -q "$(rift url evil)" -c "copy (select 1 where false) to program 'kill -STOP \$(head -1 postmaster.pid)'" ||
	fail "could not stop evil's postmaster"
for ((i = 0; i < 400; i++)); do
	[ "$(state_of victim)" = stopped ] && break
	sleep 0.1
done
[ "$(state_of victim)" = stopped ] || fail "victim did not stop when idle while evil's postmaster was stopped"
pkill -CONT -f -- "-D $state/mnt/evil" || true
exit 0
