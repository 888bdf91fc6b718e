# lib.sh — shared helpers for rift's integration tests: temp dirs, cleanup on any exit, assertions.
# Source it first thing: `source "$RIFT_TESTLIB"`. Every test gets its own temp dir and ports, so
# tests can run in parallel; everything registered with on_exit runs even when the test fails.

set -euo pipefail

: "${RIFT_BIN:?RIFT_BIN must point at the bin directory of the build, as ctest sets it}"
TEST_NAME=$(basename "$0" .sh)
TEST_TMP=$(mktemp -d "/tmp/rift-test-${TEST_NAME}.XXXXXX")
chmod 755 "$TEST_TMP" # the postgres user must be able to reach dirs below it
_cleanups=()

# on_exit CMD...: run CMD (as one string) when the test exits, newest first.
on_exit() {
	_cleanups+=("$*")
}

_run_cleanups() {
	local rc=$? i f
	set +e
	if [ "$rc" -ne 0 ]; then
		# the logs say why; they vanish with the temp dir
		for f in "$TEST_TMP"/*.log "$TEST_TMP"/log/*.log; do
			[ -s "$f" ] || continue
			echo "---- last lines of $f" >&2
			tail -n 40 "$f" >&2
		done
	fi
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${_cleanups[i]}" >/dev/null 2>&1
	done
	rm -rf "$TEST_TMP"
	if [ "$rc" -eq 0 ]; then
		echo "PASS $TEST_NAME"
	else
		echo "FAIL $TEST_NAME (exit $rc)"
	fi
	exit "$rc"
}
trap _run_cleanups EXIT
trap 'exit 130' INT TERM

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# expect_status WANT CMD...: run CMD, fail unless it exits with WANT. Output goes to $TEST_TMP/out.
expect_status() {
	local want=$1 got=0
	shift
	"$@" >"$TEST_TMP/out" 2>&1 || got=$?
	if [ "$got" -ne "$want" ]; then
		cat "$TEST_TMP/out" >&2
		fail "'$*' exited $got, expected $want"
	fi
}

# expect_output PATTERN: the last expect_status output must match the extended regex PATTERN.
expect_output() {
	grep -Eq -- "$1" "$TEST_TMP/out" || {
		cat "$TEST_TMP/out" >&2
		fail "output does not match /$1/"
	}
}

# free_port: a TCP port on 127.0.0.1 nobody listens on now (tests pick their own, never fixed ones).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- rift stores and mounts ----

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

# make_store STATE SRC_DIR: a store at STATE whose base generation 1 is a copy of SRC_DIR.
make_store() {
	"$RIFT_BIN/store_admin" "$1" import "$2" >/dev/null
}

# mount_branch STATE BRANCH MOUNTPOINT: runs rift-fs in the foreground of a background job and
# waits until the mount is there; unmounted and stopped when the test exits.
mount_branch() {
	local state=$1 branch=$2 mnt=$3 pid i
	mkdir -p "$mnt"
	"$RIFT_BIN/rift-fs" -f --state "$state" "$branch" "$mnt" 2>>"$TEST_TMP/rift-fs.log" &
	pid=$!
	on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null; umount -l '$mnt' 2>/dev/null"
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$mnt" && {
			MOUNT_PID=$pid
			return 0
		}
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$TEST_TMP/rift-fs.log" >&2
	fail "rift-fs did not mount $branch at $mnt"
}

# unmount_branch MOUNTPOINT PID: stops a mount started by mount_branch, and checks it went.
unmount_branch() {
	kill "$2"
	wait "$2" || fail "rift-fs exited with an error when stopped"
	mountpoint -q "$1" && fail "$1 is still mounted after rift-fs stopped"
	return 0
}

# as_postgres CMD...: runs a shell command as the postgres user (never as root).
as_postgres() {
	su postgres -s /bin/bash -c "$*"
}

# pg_start DATADIR PORT: starts a server on DATADIR (socket in $TEST_TMP), stopped at exit.
pg_start() {
	local data=$1 port=$2
	mkdir -p "$TEST_TMP/sock" "$TEST_TMP/log"
	chown postgres "$TEST_TMP/sock" "$TEST_TMP/log"
	on_exit "as_postgres '$PG_BIN/pg_ctl -D $data -m immediate -w stop' 2>/dev/null"
	as_postgres "$PG_BIN/pg_ctl -D $data -l $TEST_TMP/log/pg-$port.log -w -t 120 -o \
		'-p $port -k $TEST_TMP/sock -c listen_addresses= -c wal_init_zero=off \
		-c wal_recycle=off -c shared_buffers=32MB -c fsync=on' start" >/dev/null ||
		{ tail -20 "$TEST_TMP/log/pg-$port.log" >&2; fail "postgres did not start on $data"; }
}

# upstream_start REPLICATION_ROLE: an upstream Postgres 15 for rift init to copy, in $up on
# 127.0.0.1:$up_port: SCRAM over TCP, replication only for that role, trust on its socket in
# $TEST_TMP/sock (for up_sql); stopped at exit.
upstream_start() {
	up=$TEST_TMP/upstream
	up_port=$(free_port)
	chown postgres "$TEST_TMP"
	as_postgres "$PG_BIN/initdb -D $up -A trust -U postgres" >/dev/null ||
		fail "initdb of the upstream failed"
	cat >"$up/pg_hba.conf" <<HBA
local all all trust
host replication $1 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
HBA
	mkdir -p "$TEST_TMP/sock" "$TEST_TMP/log" && chown postgres "$TEST_TMP/sock" "$TEST_TMP/log"
	on_exit "as_postgres '$PG_BIN/pg_ctl -D $up -m immediate -w stop' 2>/dev/null"
	as_postgres "$PG_BIN/pg_ctl -D $up -l $TEST_TMP/log/upstream.log -w -o \
		'-p $up_port -k $TEST_TMP/sock -c listen_addresses=127.0.0.1' start" >/dev/null ||
		fail "the upstream did not start: $(tail -5 "$TEST_TMP/log/upstream.log")"
}

# up_sql DB SQL: runs SQL as postgres on the upstream, prints unaligned tuples.
up_sql() {
	as_postgres "psql -X -q -h $TEST_TMP/sock -p $up_port -Atc \"$2\" $1"
}

pg_stop() {
	as_postgres "$PG_BIN/pg_ctl -D $1 -w -t 120 stop" >/dev/null
}

# psql_at PORT SQL: runs SQL as postgres on the server at PORT, prints unaligned tuples.
psql_at() {
	as_postgres "psql -X -q -h $TEST_TMP/sock -p $1 -Atc \"$2\" postgres"
}

# ---- riftd ----

# set_conf STATE KEY VALUE: sets KEY in STATE/rift.conf to VALUE. A sed alone does nothing when
# the line differs from its pattern (a changed default, a renamed key) and the test then runs
# on the default; this fails instead. KEY must be on exactly one line.
set_conf() {
	local conf=$1/rift.conf n
	n=$(grep -c "^$2 = " "$conf") || true
	[ "$n" = 1 ] || fail "rift.conf has $n lines for key $2; set_conf needs exactly one"
	sed -i "s|^$2 = .*|$2 = $3|" "$conf"
}

# start_riftd STATE: runs riftd in the background until the test ends; waits for its API socket.
# test_conf STATE: gives a store's rift.conf what tests running in parallel need: a router port
# and a uid range of its own, and room for slow starts. Sets ROUTER_PORT when it picks one.
test_conf() {
	local state=$1
	# every test its own router port (tests run in parallel; 6432 may be taken)
	if grep -q '^listen = 127.0.0.1:6432$' "$state/rift.conf"; then
		ROUTER_PORT=$(free_port)
		sed -i "s/^listen = 127.0.0.1:6432$/listen = 127.0.0.1:$ROUTER_PORT/" "$state/rift.conf"
	fi
	# and its own 256 uids for branch servers: riftds running at once must not share uids
	if grep -q '^uid_base = 1900000000$' "$state/rift.conf"; then
		sed -i -e "s/^uid_base = 1900000000$/uid_base = $((1900065536 + \
			(RANDOM * 32768 + RANDOM) % 900000 * 256))/" \
			-e 's/^uid_count = 65536$/uid_count = 256/' "$state/rift.conf"
	fi
	# starts and crash recoveries may take minutes on a loaded machine (sanitizers, tests in
	# parallel); no test here is about the default's 60 s, and one that is sets its own value
	sed -i 's/^start_timeout = 60$/start_timeout = 600/' "$state/rift.conf"
}

start_riftd() {
	local state=$1 i
	test_conf "$state"
	"$RIFT_BIN/riftd" --state "$state" >>"$TEST_TMP/riftd.log" 2>&1 &
	RIFTD_PID=$!
	on_exit "stop_riftd_quietly $RIFTD_PID $state"
	for ((i = 0; i < 200; i++)); do
		curl -s --unix-socket "$state/run/riftd.sock" http://rift/v1/status >/dev/null 2>&1 &&
			return 0
		kill -0 $RIFTD_PID 2>/dev/null || break
		sleep 0.05
	done
	fail "riftd did not start serving its API"
}

# small_disk MIB: an ext4 image of its own, loop-mounted at $TEST_TMP/disk (root only; exits 77,
# a skip, otherwise) and unmounted at exit; sets $disk. For tests of full disks.
small_disk() {
	local img=$TEST_TMP/disk.img
	[ "$(id -u)" = 0 ] || { echo "SKIP: needs root for a loop mount"; exit 77; }
	disk=$TEST_TMP/disk
	truncate -s "$1M" "$img"
	mkfs.ext4 -q -F -m 0 "$img"
	mkdir "$disk"
	mount -o loop "$img" "$disk" || fail "cannot loop-mount an ext4 image"
	on_exit "umount '$disk' || umount -l '$disk'"
	chmod 755 "$disk"
}

# victim_tree: root's files a hostile branch aims links at ($victim: a 0600 file, a directory, a
# FIFO whose opening would hang whoever follows it), and victim_snapshot, their state to compare
# before and after the attack. A writer to the FIFO is opened at exit so nothing stays blocked.
victim_tree() {
	victim=$TEST_TMP/victim
	mkdir -p "$victim/dir"
	echo "victim-600-$RANDOM$RANDOM" >"$victim/v600"
	chmod 600 "$victim/v600"
	mkfifo -m 666 "$victim/fifo"
	chown -R root:root "$victim"
	chmod 755 "$victim" "$victim/dir"
	on_exit "timeout 5 bash -c 'exec 3<>$victim/fifo' 2>/dev/null"
}
victim_snapshot() {
	(cd "$victim" && find . -printf '%p %y %m %U:%G %s\n' | sort && sha256sum v600)
}

# riftd_with_branch NAME: a store in $state with riftd serving it, branch NAME created, and
# $url its URL without TLS and with a long connect timeout (the first connect starts the server);
# R runs rift on that store, q SQL runs one statement on $url and prints the rows unaligned.
riftd_with_branch() {
	state=$TEST_TMP/state
	expect_status 0 "$RIFT_BIN/rift" --state "$state" init
	start_riftd "$state"
	R() { "$RIFT_BIN/rift" --state "$state" "$@"; }
	q() { psql -X -At "$url" -c "$1"; }
	expect_status 0 R create "$1"
	url="$(R -q url "$1")?sslmode=disable&connect_timeout=90" || fail "rift url $1 failed"
}

# branch_sh CMD: runs CMD through COPY TO PROGRAM on $url, so as the branch's OS user in its data
# directory (the server's working directory), as a hostile superuser would. No row is copied: a
# CMD that never reads its stdin (cp) could exit before Postgres writes one, and Postgres would
# then fail the COPY with "Broken pipe".
branch_sh() {
	psql -X -At "$url" -c "copy (select 1 where false) to program \$\$$1\$\$" >/dev/null ||
		fail "COPY TO PROGRAM: $1"
}

# Stops a riftd and whatever a killed one may have left: servers on its mounts, the mounts.
stop_riftd_quietly() {
	local pid=$1 state=$2 m
	kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	pkill -KILL -f -- "-D $state/mnt/" 2>/dev/null
	for m in $(awk -v p="$state/mnt/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo); do
		umount -l "$m" 2>/dev/null
	done
}

# sockets_of PID: how many sockets PID holds open (its fds come and go while this reads them)
sockets_of() {
	{ find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null || true; } | wc -l
}

# wait_log PATTERN: waits up to 5 s for riftd's log to hold a line matching the basic regex
# PATTERN (riftd's threads log as they come up, after its API already answers); 1 if it never does.
wait_log() {
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q -- "$1" "$TEST_TMP/riftd.log" && return 0
		sleep 0.05
	done
	return 1
}

# api STATE METHOD PATH [JSON]: calls riftd's API; the body lands in $TEST_TMP/api.json (read it
# with `jq ... "$API_OUT"`) and the HTTP status in API_STATUS. Runs in this shell, not a subshell.
API_OUT=$TEST_TMP/api.json
api() {
	local state=$1 method=$2 path=$3 body=${4:-}
	API_STATUS=$(curl -s -o "$API_OUT" -w '%{http_code}' --unix-socket "$state/run/riftd.sock" \
		-X "$method" ${body:+-H 'Content-Type: application/json' --data "$body"} \
		"http://rift$path")
}

# api_field JQ: a field of the last API answer.
api_field() {
	jq -r "$1" "$API_OUT"
}

# demo_password STATE: the password rift init gave the demo base's role rift.
demo_password() {
	sed -n 's/^demo_password=//p' "$1/base.conf"
}

# router_port STATE: the port the store's router listens on, from its rift.conf.
router_port() {
	sed -n 's/^listen = 127.0.0.1:\([0-9]*\)$/\1/p' "$1/rift.conf"
}

# demo_psql STATE PORT SQL: runs SQL on a demo branch server over TCP with the demo password.
demo_psql() {
	PGPASSWORD=$(demo_password "$1") psql -X -q -h 127.0.0.1 -p "$2" -U rift -d demo -Atc "$3"
}
