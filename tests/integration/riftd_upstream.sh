#!/usr/bin/env bash
# riftd_upstream.sh — rift init from a real upstream server, physically and logically.
source "$RIFT_TESTLIB"

upstream_start replicator
up_sql postgres "create role replicator login replication password 'secret';
	create role app login password 'secret'; create role norepl login password 'secret'"
up_sql postgres "create database app owner app"
up_sql app "set role app; create table items (id int primary key, name text);
	insert into items select i, 'item ' || i from generate_series(1, 10000) i"
url="postgres://replicator:secret@127.0.0.1:$up_port/app"

# clear errors, and nothing left behind by a failed init
bad_init() { # STATE WANT ARGS...
	local st=$1 want=$2
	shift 2
	expect_status 1 "$RIFT_BIN/rift" --state "$st" init "$@"
	expect_output "$want"
	[ -e "$st" ] && fail "a failed init left $st behind"
	return 0
}
bad_init "$TEST_TMP/s1" 'cannot reach upstream' --upstream "postgres://replicator:secret@127.0.0.1:1/app"
bad_init "$TEST_TMP/s2" 'refused the login' --upstream "postgres://replicator:wrong@127.0.0.1:$up_port/app"
bad_init "$TEST_TMP/s3" 'add this line to upstream' \
	--upstream "postgres://norepl:secret@127.0.0.1:$up_port/app"
up_sql postgres "alter role norepl nologin"
echo "host replication norepl 127.0.0.1/32 scram-sha-256" >>"$up/pg_hba.conf"
up_sql postgres "alter role norepl login; select pg_reload_conf()" >/dev/null
bad_init "$TEST_TMP/s4" 'REPLICATION' --upstream "postgres://norepl:secret@127.0.0.1:$up_port/app"
expect_status 2 "$RIFT_BIN/rift" init --logical
expect_status 2 "$RIFT_BIN/rift" init --upstream "$url" --pgdata /tmp

# physical
state=$TEST_TMP/phys
expect_status 0 "$RIFT_BIN/rift" --state "$state" init --upstream "$url"
grep -q '^default_db=app$' "$state/base.conf" || fail "default database not recorded"
grep -q secret "$state/base.conf" && fail "the upstream password was written to base.conf"
start_riftd "$state"
api "$state" POST /v1/branches '{"name":"b1"}'
[ "$API_STATUS" = 201 ] || fail "create: $(cat "$API_OUT")"
api "$state" POST /v1/branches/b1/start
[ "$API_STATUS" = 200 ] || fail "start: $(cat "$API_OUT")"
port=$(api_field .port)
br_sql() { PGPASSWORD=secret psql -X -q -h 127.0.0.1 -p "$1" -U app -d app -Atc "$2"; }
[ "$(br_sql "$port" "select count(*) from items")" = 10000 ] || fail "branch lacks upstream data"
br_sql "$port" "delete from items where id > 100; insert into items values (0, 'branch only')"
[ "$(up_sql app "select count(*) from items")" = 10000 ] || fail "a branch write reached upstream"
[ "$(br_sql "$port" "select pg_is_in_recovery()")" = f ] || fail "branch is not a writable primary"

# logical
lstate=$TEST_TMP/logical
expect_status 0 "$RIFT_BIN/rift" --state "$lstate" init --upstream \
	"postgres://app:secret@127.0.0.1:$up_port/app" --logical
grep -q '^default_db=app$' "$lstate/base.conf" || fail "logical: default database not recorded"
pid_phys=$RIFTD_PID
start_riftd "$lstate"
api "$lstate" POST /v1/branches/main/start
[ "$API_STATUS" = 200 ] || fail "logical start: $(cat "$API_OUT")"
lport=$(api_field .port)
pw=$(demo_password "$lstate")
[ "$(PGPASSWORD=$pw psql -X -h 127.0.0.1 -p "$lport" -U rift -d app -Atc \
	"select count(*) from items")" = 10000 ] || fail "logical base lacks the data"
kill -TERM "$RIFTD_PID" "$pid_phys"
wait "$RIFTD_PID" "$pid_phys" || fail "riftd failed to stop cleanly"
