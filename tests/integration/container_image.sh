#!/usr/bin/env bash
# container_image.sh — packaging/Dockerfile built and run with podman: a Debian 12 base image made
# from Debian's packages (mmdebstrap; no registry needed), `podman build`, a container run the
# way docs/container.md says against a real Postgres 15 upstream on the host, the health check, a
# branch created, queried, written and deleted through the HTTPS API and the router with the host's
# rift, `podman stop` (SIGTERM: exit 0, nothing left mounted), and a second run on the same volume
# that finds the branch and its data without a new init.
#
# Takes several minutes (a rootfs, a compile of rift inside the build), so it runs only with
# RIFT_CONTAINER_TEST=1 and podman installed; otherwise it skips (77). RIFT_CONTAINER_BASE=IMAGE
# uses an existing Debian 12 image instead of making one (kept afterwards); RIFT_DEBIAN_MIRROR
# is the mirror mmdebstrap uses (default http://deb.debian.org/debian).
source "$RIFT_TESTLIB"

if [ "${RIFT_CONTAINER_TEST:-0}" != 1 ]; then
	echo "SKIP: builds a container image for minutes; run with RIFT_CONTAINER_TEST=1"
	exit 77
fi
command -v podman >/dev/null || { echo "SKIP: no podman (apt-get install podman)"; exit 77; }
if [ -z "${RIFT_CONTAINER_BASE:-}" ] && ! command -v mmdebstrap >/dev/null; then
	echo "SKIP: no mmdebstrap to make the base image (apt-get install mmdebstrap), and no \
RIFT_CONTAINER_BASE"
	exit 77
fi
src=$(cd "$(dirname "$0")/../.." && pwd)
id=rift-ctest-$$-$RANDOM
t0=$SECONDS
stamp() { echo "container_image: $* at $((SECONDS - t0)) s" >&2; }

# ---- podman on this machine ----
# Containers get nofile and nproc limits no higher than the host's hard limits: podman's rootful
# defaults (1048576, 4194304) cannot be set without CAP_SYS_RESOURCE, and in VMs with a small
# pid_max, RLIMIT_NPROC above it is refused too.
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
nproc=$(ulimit -Hu)
[ "$nproc" = unlimited ] && nproc=4194304
pid_max=$(cat /proc/sys/kernel/pid_max)
[ "$nproc" -gt "$pid_max" ] && nproc=$pid_max
runtime=
# crun refuses hybrid cgroups (v1 controllers plus a cgroup2 mount); runc runs there
if [ -d /sys/fs/cgroup/unified ] && command -v runc >/dev/null; then
	runtime='runtime = "runc"'
fi
export CONTAINERS_CONF=$TEST_TMP/containers.conf
cat >"$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
$runtime
CONF

# ---- the base image ----
base=${RIFT_CONTAINER_BASE:-}
if [ -z "$base" ]; then
	base=localhost/$id-base:bookworm
	on_exit "podman rmi -f $base"
	mmdebstrap --variant=minbase bookworm "$TEST_TMP/rootfs.tar" \
		"${RIFT_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$TEST_TMP/mmdebstrap.log" 2>&1 ||
		fail "mmdebstrap failed: $(tail -5 "$TEST_TMP/mmdebstrap.log")"
	podman import "$TEST_TMP/rootfs.tar" "$base" >/dev/null
	rm -f "$TEST_TMP/rootfs.tar"
	stamp "base image $base made"
fi

# ---- the image ----
image=localhost/$id:test
# the build stage stays behind as an untagged image: remove the untagged images that were not
# there before the build (and nothing else: other people's images are not this test's to prune)
dangling() { podman images -q --no-trunc --filter dangling=true | sort; }
dangling >"$TEST_TMP/dangling-before"
remove_new_dangling() {
	dangling | comm -13 "$TEST_TMP/dangling-before" - | xargs -r podman rmi -f
}
on_exit "podman rmi -f $image; remove_new_dangling"
# --format docker: the OCI format has no HEALTHCHECK, and podman would drop it
podman build --format docker --build-arg BASE="$base" -f "$src/packaging/Dockerfile" -t "$image" \
	"$src" >"$TEST_TMP/build.log" 2>&1 || fail "podman build failed: $(tail -20 "$TEST_TMP/build.log")"
stamp "image built"
podman image inspect --format '{{json .Config.Healthcheck}}' "$image" | grep 'rift --state' >/dev/null ||
	fail "the image has no health check"

# ---- the upstream: Postgres 15 on the host ----
upstream_start replicator
up_sql postgres "create role replicator login replication superuser password 'secret';
	alter role postgres password 'pgpw'; create table items as select g as id from
	generate_series(1, 1234) g" >/dev/null
printf 'secret\n' >"$TEST_TMP/replicator.pw"

# ---- first run ----
vol=$id-data
router_port=$(free_port) api_port=$(free_port)
token=$(head -c 32 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$token" >"$TEST_TMP/token"
chmod 600 "$TEST_TMP/token"
on_exit "podman volume rm -f $vol"
on_exit "podman rm -f -t 5 $id"
# the run line of docs/container.md, with host networking (the upstream is on the host's
# loopback, and the ports are free ones) and the upstream's password as a file
run() {
	podman run -d --name "$id" \
		--device /dev/fuse --cap-add SYS_ADMIN --security-opt apparmor=unconfined \
		--stop-timeout 120 --network host \
		-e RIFT_UPSTREAM="postgres://replicator@127.0.0.1:$up_port/postgres" \
		-e RIFT_UPSTREAM_PASSWORD_FILE=/run/secrets/replicator \
		-e RIFT_TOKEN="$token" -e RIFT_ROUTER_PORT="$router_port" -e RIFT_API_PORT="$api_port" \
		-v "$vol:/var/lib/rift" -v "$TEST_TMP/replicator.pw:/run/secrets/replicator:ro" \
		"$image" >/dev/null 2>>"$TEST_TMP/podman.log" ||
		fail "podman run failed: $(tail -5 "$TEST_TMP/podman.log")"
}
# healthy: podman runs health checks from systemd timers (and, where systemd is not PID 1, says
# so on stderr at every run, stop and rm: that goes to podman.log): run the image's HEALTHCHECK
# by hand every 2 s, for up to 600 s (the image's start period)
healthy() {
	local i
	for ((i = 0; i < 300; i++)); do
		podman healthcheck run "$id" >/dev/null 2>&1 && return 0
		[ "$(podman inspect --format '{{.State.Running}}' "$id")" = true ] || return 1
		sleep 2
	done
	return 1
}
logs() { podman logs "$id" 2>&1 | tail -"${1:-30}"; }
pin=
remote() {
	"$RIFT_BIN/rift" --host "https://127.0.0.1:$api_port" --token-file "$TEST_TMP/token" \
		--pin "$pin" "$@"
}
# stop_container: podman stop sends SIGTERM; riftd must be done well inside the timeout, exit 0
# (tini passes riftd's status on), and leave no mount behind on the volume
stop_container() {
	local t=$SECONDS rc vpath
	podman stop -t 120 "$id" >/dev/null 2>>"$TEST_TMP/podman.log" || fail "podman stop failed"
	rc=$(podman inspect --format '{{.State.ExitCode}}' "$id")
	logs 200 >"$TEST_TMP/$1.log"
	[ "$rc" = 0 ] || fail "the container exited $rc on SIGTERM: $(tail -10 "$TEST_TMP/$1.log")"
	grep -q "stopping: servers, mounts, store" "$TEST_TMP/$1.log" || fail "riftd did not say it stopped"
	vpath=$(podman volume inspect --format '{{.Mountpoint}}' "$vol")
	grep -q " $vpath/" /proc/self/mountinfo && fail "a mount below the volume outlived the container"
	podman rm "$id" >/dev/null 2>>"$TEST_TMP/podman.log"
	stamp "stopped in $((SECONDS - t)) s, exit $rc"
}

run
healthy || fail "the container never became healthy: $(logs)"
stamp "first run healthy"
[ "$(podman inspect --format '{{.State.Health.Status}}' "$id")" = healthy ] ||
	fail "podman does not report the container healthy"
logs | grep 'first start: copying upstream' >/dev/null || fail "no init on the first start: $(logs)"
pin=$(podman exec "$id" rift --state /var/lib/rift/store status --json | jq -r .api_tls_pin) ||
	fail "rift status in the container failed: $(logs)"
[ -n "$pin" ] && [ "$pin" != null ] || fail "no TLS pin from rift status"
expect_status 0 remote create pr-1
expect_status 0 remote create pr-2
export PGPASSWORD=pgpw # the upstream's postgres role, which the branch servers carry
url=$(remote url pr-1)
[[ "$url" == "postgres://postgres@127.0.0.1:$router_port/pr-1" ]] || fail "url: $url"
n=$(psql -X -At "$url" -c 'select count(*) from items') || fail "psql on pr-1 through the router failed"
echo "container_image: select count(*) from items on pr-1: $n" >&2
[ "$n" = 1234 ] || fail "pr-1 does not have the upstream's 1234 rows: $n"
psql -X -q "$url" -c 'insert into items select g from generate_series(1235, 1300) g;
	create table note as select $$written in pr-1$$ as t' || fail "writing in pr-1 failed"
[ "$(psql -X -At "$(remote url pr-2)" -c 'select count(*) from items')" = 1234 ] ||
	fail "pr-2 sees pr-1's write"
expect_status 0 remote delete pr-2
remote list | grep '^pr-2 ' >/dev/null && fail "pr-2 is still listed after delete"
stop_container run1

# ---- second run on the same volume ----
run
healthy || fail "the second run never became healthy: $(logs)"
stamp "second run healthy"
logs | grep 'first start' >/dev/null && fail "the second run ran init again"
remote list | grep '^pr-1 ' >/dev/null || fail "pr-1 is gone after a restart"
url=$(remote url pr-1)
[ "$(psql -X -At "$url" -c 'select count(*) from items')" = 1300 ] || fail "pr-1 lost its rows"
[ "$(psql -X -At "$url" -c 'select t from note')" = "written in pr-1" ] || fail "pr-1 lost its table"
expect_status 0 remote delete pr-1
stop_container run2
stamp "done"
