#!/usr/bin/env bash
# container_entrypoint.sh — packaging/docker/rift-entrypoint.sh run on the host the way the image
# runs it (its environment, rift and riftd on PATH, a volume directory): first start inits from
# RIFT_UPSTREAM (physical; logical with RIFT_LOGICAL=1), the API answers over HTTPS with
# RIFT_TOKEN and a branch's URL connects through the router, the HEALTHCHECK command passes,
# SIGTERM stops riftd cleanly, and a second start reuses the volume.
source "$RIFT_TESTLIB"
entry=$(cd "$(dirname "$0")/../.." && pwd)/packaging/docker/rift-entrypoint.sh

upstream_start replicator
up_sql postgres "create role replicator login replication superuser password 'secret';
	alter role postgres password 'pgpw'; create table items as select g as id from
	generate_series(1, 1234) g" >/dev/null

token=$(head -c 32 /dev/urandom | base64 | tr -d '/+=')
uid_base=$((1900065536 + (RANDOM * 32768 + RANDOM) % 900000 * 256))
# run_container VOLUME LOG [ENV...]: the entrypoint in the background, as the image's ENTRYPOINT
run_container() {
	local vol=$1 log=$2
	shift 2
	env -i PATH="$RIFT_BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		RIFT_DATA="$vol" RIFT_TOKEN="$token" RIFT_ROUTER_PORT="$router_port" \
		RIFT_API_PORT="$api_port" RIFT_SET="instances.uid_base=$uid_base instances.uid_count=256" \
		"$@" "$entry" >>"$log" 2>&1 &
	CPID=$!
	on_exit "kill -TERM $CPID; wait $CPID; stop_riftd_quietly none $vol/store"
}
# healthy VOLUME: the image's HEALTHCHECK command, retried like docker would for up to 120 s
healthy() {
	local i
	for ((i = 0; i < 600; i++)); do
		"$RIFT_BIN/rift" --state "$1/store" status -q >/dev/null 2>&1 && return 0
		kill -0 "$CPID" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}
remote() { "$RIFT_BIN/rift" --host "https://127.0.0.1:$api_port" --cacert "$vol/store/tls/server.crt" "$@"; }
stop_container() { # docker stop: SIGTERM, then the exit status and nothing left behind
	local rc=0
	kill -TERM "$CPID"
	wait "$CPID" || rc=$?
	[ "$rc" = 0 ] || fail "the container exited $rc on SIGTERM: $(tail -5 "$1")"
	grep -q "stopping: servers, mounts, store" "$1" || fail "riftd did not say it stopped"
	pgrep -f -- "-D $vol/store/mnt/" >/dev/null && fail "a branch server outlived the container"
	grep -q " $vol/store/mnt/" /proc/self/mountinfo && fail "a mount outlived the container"
	return 0
}

# ---- physical, first start ----
vol=$TEST_TMP/volume router_port=$(free_port) api_port=$(free_port)
mkdir "$vol" # docker makes the volume's directory
expect_status 1 env -i PATH="$RIFT_BIN:/usr/bin:/bin" RIFT_DATA="$vol" "$entry"
expect_output 'set RIFT_TOKEN'
run_container "$vol" "$TEST_TMP/c1.log" RIFT_UPSTREAM="postgres://replicator:secret@127.0.0.1:$up_port/postgres"
healthy "$vol" || { wait $CPID; fail "the container never became healthy (exit $?): $(tail -20 "$TEST_TMP/c1.log")"; }
grep -q 'first start: copying upstream' "$TEST_TMP/c1.log" || fail "no init on first start"
grep -q "secret" "$vol/store/base.conf" && fail "base.conf holds upstream's password"
[ "$(stat -c %a "$vol/store/api-token")" = 600 ] || fail "the token file is not 0600"
expect_status 1 "$RIFT_BIN/rift" --host "https://127.0.0.1:$api_port" --cacert "$vol/store/tls/server.crt" list
expect_output 'refused the API token'
export RIFT_TOKEN=$token PGPASSWORD=pgpw # the bootstrap superuser the URL names
expect_status 0 remote create pr-1 --label pr=1
url=$(remote url pr-1)
[[ "$url" == "postgres://postgres@127.0.0.1:$router_port/pr-1" ]] || fail "url: $url"
[ "$(psql -X -At "$url" -c 'select count(*) from items')" = 1234 ] || fail "the branch has no upstream data"
stop_container "$TEST_TMP/c1.log"

# ---- second start on the same volume: no init, the branch is still there ----
run_container "$vol" "$TEST_TMP/c2.log" RIFT_UPSTREAM="postgres://replicator:secret@127.0.0.1:$up_port/postgres"
healthy "$vol" || fail "the second start never became healthy: $(tail -20 "$TEST_TMP/c2.log")"
grep -q 'first start' "$TEST_TMP/c2.log" && fail "the second start ran init again"
remote list | grep '^pr-1 ' >/dev/null || fail "pr-1 is gone after a restart"
stop_container "$TEST_TMP/c2.log"

# ---- logical ----
vol=$TEST_TMP/volume-logical router_port=$(free_port) api_port=$(free_port)
mkdir "$vol"
run_container "$vol" "$TEST_TMP/c3.log" RIFT_LOGICAL=1 \
	RIFT_UPSTREAM="postgres://replicator:secret@127.0.0.1:$up_port/postgres"
healthy "$vol" || fail "the logical container never became healthy: $(tail -20 "$TEST_TMP/c3.log")"
grep -q '^mode=logical$' "$vol/store/base.conf" || fail "not a logical base"
remote create l1 >/dev/null
[ "$(psql -X -At "$(remote url l1)" -c 'select count(*) from items')" = 1234 ] || fail "logical data"
stop_container "$TEST_TMP/c3.log"
