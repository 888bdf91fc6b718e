#!/usr/bin/env bash
# base_external.sh — a base whose source keeps WAL and tablespaces elsewhere is self-contained:
# branches write only into their own copies, and the source's files stay byte-identical.
source "$RIFT_TESTLIB"
rift="$RIFT_BIN/rift"

src=$TEST_TMP/src wal=$TEST_TMP/wal ts=$TEST_TMP/ts
chown postgres "$TEST_TMP"
as_postgres "$PG_BIN/initdb -D $src --waldir=$wal -A trust -U postgres" >/dev/null
as_postgres "mkdir $ts"
[ -L "$src/pg_wal" ] || fail "initdb --waldir did not make pg_wal a link"
mkdir -p "$TEST_TMP/sock" "$TEST_TMP/log" && chown postgres "$TEST_TMP/sock" "$TEST_TMP/log"
src_port=$(free_port)
# autovacuum off: the source's files may change only when this test writes to it
src_start() {
	as_postgres "$PG_BIN/pg_ctl -D $src -l $TEST_TMP/log/src.log -w -t 120 -o \
		'-p $src_port -k $TEST_TMP/sock -c listen_addresses=127.0.0.1 -c autovacuum=off' \
		start" >/dev/null || fail "the source cluster did not start"
}
on_exit "as_postgres '$PG_BIN/pg_ctl -D $src -m immediate -w stop' 2>/dev/null"
src_start
psql_at "$src_port" "create tablespace ts location '$ts'"
psql_at "$src_port" "create table t_main (x int); insert into t_main select generate_series(1, 1000);
	create table t_ts (x int) tablespace ts; insert into t_ts select generate_series(1, 500);
	checkpoint"
ts_oid=$(psql_at "$src_port" "select oid from pg_tablespace where spcname = 'ts'")
pg_stop "$src"

# every file of a directory with its hash, every entry with its type and mode
snapshot() {
	(cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum &&
		find . -printf '%p %y %m %s\n' | sort)
}
wal_before=$(snapshot "$wal")
ts_before=$(snapshot "$ts")

# any other link leading out of the data directory is refused, and nothing is left behind
ln -s /etc/hostname "$src/stray_link"
expect_status 1 "$rift" --state "$TEST_TMP/refused" init --pgdata "$src"
expect_output 'stray_link .* is a symbolic link to /etc/hostname.*remove it, then run rift init'
[ -e "$TEST_TMP/refused" ] && fail "a refused init left its state directory behind"
rm "$src/stray_link"
# settings that would send a branch's server outside its data directory are refused
cp -p "$src/postgresql.auto.conf" "$TEST_TMP/auto.conf"
echo "data_directory = '$src'" >>"$src/postgresql.auto.conf"
expect_status 1 "$rift" --state "$TEST_TMP/refused" init --pgdata "$src"
expect_output 'postgresql.auto.conf sets "data_directory'
cp -p "$TEST_TMP/auto.conf" "$src/postgresql.auto.conf"
mv "$src/postgresql.conf" "$TEST_TMP/postgresql.conf"
expect_status 1 "$rift" --state "$TEST_TMP/refused" init --pgdata "$src"
expect_output 'has no postgresql.conf .*give rift init --pgdata the copy'
mv "$TEST_TMP/postgresql.conf" "$src/postgresql.conf"
[ -e "$TEST_TMP/refused" ] && fail "a refused init left its state directory behind"

state=$TEST_TMP/state
expect_status 0 "$rift" --state "$state" init --pgdata "$src"
expect_output "copying pg_wal from $wal into the base"
expect_output "copying pg_tblspc/$ts_oid from $ts into the base"
expect_output '[0-9]+/[0-9]+ MiB|copied [0-9]+ of [0-9]+ MiB'
base=$state/base/1
[ -d "$base/pg_wal" ] && [ ! -L "$base/pg_wal" ] || fail "the base's pg_wal is not a directory"
[ -d "$base/pg_tblspc/$ts_oid" ] && [ ! -L "$base/pg_tblspc/$ts_oid" ] ||
	fail "the base's tablespace is not a directory"
[ -z "$(find "$base" -type l)" ] || fail "the base still holds links: $(find "$base" -type l)"

start_riftd "$state"
br_sql() { psql -X -q -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atc "$2"; }
start_branch() { # NAME: starts it, prints its port
	api "$state" POST "/v1/branches/$1/start"
	[ "$API_STATUS" = 200 ] || fail "start $1: $(cat "$API_OUT"; tail -n 20 "$state/log/$1.log")"
	api_field .port
}
for b in b1 b2; do
	api "$state" POST /v1/branches "{\"name\":\"$b\"}"
	[ "$API_STATUS" = 201 ] || fail "create $b: $(cat "$API_OUT")"
	port=$(start_branch $b)
	# riftd's own WAL directory for the branch (wal_dir.h), never the source's
	case "$(readlink "$state/mnt/$b/pg_wal")" in
	"$state"/wal/b-*) ;;
	*) fail "the mount of $b shows pg_wal as $(readlink "$state/mnt/$b/pg_wal"), not riftd's" ;;
	esac
	[ "$(stat -c %F "$state/mnt/$b/pg_tblspc/$ts_oid")" = directory ] ||
		fail "the mount of $b shows the tablespace as a link"
	[ "$(br_sql "$port" "select pg_tablespace_location($ts_oid)")" = "pg_tblspc/$ts_oid" ] ||
		fail "pg_tablespace_location in $b: $(br_sql "$port" "select pg_tablespace_location($ts_oid)")"
	br_sql "$port" "insert into t_main select generate_series(1, 100);
		insert into t_ts select generate_series(1, 200); create table t_$b (x int) tablespace ts;
		insert into t_$b values (1); checkpoint"
done
# both come back after a restart with their own writes (the second one used to find no
# checkpoint record: the first had overwritten the source's WAL)
for b in b1 b2; do
	expect_status 0 "$rift" --state "$state" stop "$b"
	port=$(start_branch $b)
	[ "$(br_sql "$port" "select (select count(*) from t_main) || ' ' || (select count(*) from t_ts) || ' ' || (select count(*) from t_$b)")" = "1100 700 1" ] ||
		fail "$b lost its writes after a restart"
done
# pg_dump of a database is as with the source; pg_dumpall shows the in-place location
"$PG_BIN/pg_dump" -h 127.0.0.1 -p "$port" -U postgres postgres >"$TEST_TMP/dump.sql" ||
	fail "pg_dump of a branch failed"
grep -q "^SET default_tablespace = ts;" "$TEST_TMP/dump.sql" || fail "pg_dump lost the tablespace"
"$PG_BIN/pg_dumpall" -g -h 127.0.0.1 -p "$port" -U postgres >"$TEST_TMP/globals.sql"
grep -q "CREATE TABLESPACE ts OWNER postgres LOCATION 'pg_tblspc/$ts_oid';" "$TEST_TMP/globals.sql" ||
	fail "pg_dumpall -g wrote $(grep TABLESPACE "$TEST_TMP/globals.sql")"
# dropping a tablespace works on the copy
br_sql "$port" "drop table t_ts, t_b2"
br_sql "$port" "drop tablespace ts"
[ ! -e "$state/mnt/b2/pg_tblspc/$ts_oid" ] || fail "DROP TABLESPACE left pg_tblspc/$ts_oid"

[ "$(snapshot "$wal")" = "$wal_before" ] || fail "branches changed the source's WAL directory"
[ "$(snapshot "$ts")" = "$ts_before" ] || fail "branches changed the source's tablespace"
src_start
[ "$(psql_at "$src_port" "select (select count(*) from t_main) || ' ' || (select count(*) from t_ts)")" = "1000 500" ] ||
	fail "the source cluster lost its data"

# physical: pg_basebackup of a running server with a tablespace maps it into the base
pstate=$TEST_TMP/phys
expect_status 0 "$rift" --state "$pstate" init --upstream \
	"postgres://postgres@127.0.0.1:$src_port/postgres"
expect_output "tablespace $ts_oid \\($ts upstream\\) goes into the base"
pbase=$pstate/base/1
[ -d "$pbase/pg_tblspc/$ts_oid" ] && [ ! -L "$pbase/pg_tblspc/$ts_oid" ] ||
	fail "the physical base's tablespace is not a directory"
[ -z "$(find "$pbase" -type l)" ] || fail "the physical base holds links"
[ ! -e "$pstate/staging.tblspc" ] || fail "init left staging.tblspc behind"
psql_at "$src_port" "checkpoint"
ts_before=$(snapshot "$ts")
kill -TERM "$RIFTD_PID" && wait "$RIFTD_PID" || fail "riftd did not stop cleanly"
start_riftd "$pstate"
state=$pstate
port=$(start_branch main)
br_sql "$port" "insert into t_ts select generate_series(1, 300); checkpoint"
[ "$(br_sql "$port" "select count(*) from t_ts")" = 800 ] || fail "physical branch lacks data"
[ "$(snapshot "$ts")" = "$ts_before" ] || fail "a physical branch changed upstream's tablespace"
[ "$(psql_at "$src_port" "select count(*) from t_ts")" = 500 ] || fail "a branch write reached upstream"

# logical: pg_restore puts upstream's tablespace tables in the default tablespace
expect_status 0 "$rift" --state "$TEST_TMP/logical" init --logical --upstream \
	"postgres://postgres@127.0.0.1:$src_port/postgres"
