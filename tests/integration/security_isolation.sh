#!/usr/bin/env bash
# security_isolation.sh — a branch's superuser gets a shell (COPY ... FROM PROGRAM) as its
# server's OS user; from there it must reach nothing of another branch (files, processes, unix
# socket, shared memory), nor write the base, nor keep processes alive past its server.
# `security_isolation.sh --no-isolation` runs the same attacks with [instances] uid_count = 0
# (every server as the postgres user, as rift did before) and expects every one of them to
# succeed: the proof that each check can fail.
source "$RIFT_TESTLIB"

isolated=true
[ "${1:-}" = --no-isolation ] && isolated=false
state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init -q
$isolated || set_conf "$state" uid_count 0
start_riftd "$state"
for b in a b; do
	api "$state" POST /v1/branches "{\"name\":\"$b\"}"
	api "$state" POST /v1/branches/$b/start
	[ "$API_STATUS" = 200 ] || fail "start of $b: $(cat "$API_OUT")"
done
port_a=$(curl -s --unix-socket "$state/run/riftd.sock" http://rift/v1/branches/a | jq .port)
port_b=$(curl -s --unix-socket "$state/run/riftd.sock" http://rift/v1/branches/b | jq .port)
pid_b=$(head -1 "$state/mnt/b/postmaster.pid")

# sh PORT CMD: runs CMD with sh as the OS user of that branch's server, prints its output (one
# line per output line, joined by spaces). CMD always ends in echo, so COPY never fails.
sh_in() {
	local q=${2//\'/\'\'}
	demo_psql "$state" "$1" "create temp table o(l text); copy o from program '$q';
		select coalesce(string_agg(l, ' '), '') from o"
}

# The attacks. Isolated, each must answer "denied"; with --no-isolation, each must get through
# (print something else): otherwise the check could not fail and proves nothing.
problems=()
attack() { # attack [--state] WHAT CMD: CMD prints "denied" when the attack failed
	local got always=false
	[ "$1" = --state ] && { always=true; shift; } # held by the state dir's modes, uids or not
	got=$(sh_in "$port_a" "$2" 2>&1) || got="(error: $got)"
	if { $isolated || $always; } && [ "$got" != denied ]; then
		problems+=("$1: $got")
	elif ! $isolated && ! $always && [ "$got" = denied ]; then
		problems+=("$1 was denied even without isolation: the check proves nothing")
	fi
}

uid_a=$(sh_in "$port_a" "id -u")
uid_b=$(sh_in "$port_b" "id -u")
pg_uid=$(id -u postgres)
echo "server uids: a=$uid_a b=$uid_b (postgres is $pg_uid)"
if $isolated; then
	[ -n "$uid_a" ] && [ -n "$uid_b" ] || fail "no uid from the servers"
	[ "$uid_a" != "$uid_b" ] || problems+=("a and b run as the same uid $uid_a")
	[ "$uid_a" != "$pg_uid" ] && [ "$uid_a" != 0 ] || problems+=("a runs as uid $uid_a")
	[ "$(stat -c '%u %a' "$state/mnt/a")" = "$uid_a 700" ] ||
		problems+=("a's mount root shows $(stat -c '%u %a' "$state/mnt/a"), not $uid_a 700")
	[ "$(stat -c '%u %a' "$state/mnt/a/PG_VERSION" | cut -d' ' -f1)" = "$uid_a" ] ||
		problems+=("a's files do not show as a's")
	[ "$(stat -c '%u %a' "$state/run/pg/a")" = "$uid_a 700" ] ||
		problems+=("a's socket dir is $(stat -c '%u %a' "$state/run/pg/a")")
	[ "$(sh_in "$port_a" "grep -c 'NoNewPrivs:.1' /proc/self/status; true")" = 1 ] ||
		problems+=("a's shell may gain privileges (no_new_privs is off): su, sudo would work")
	sh_in "$port_a" "env" | grep RIFT >/dev/null && problems+=("a's server has riftd's environment")
	# owners are shown, not stored: chown to the branch's own ids is fine, to others refused
	[ "$(sh_in "$port_a" "chown $uid_a:$uid_a PG_VERSION && echo ok || echo no")" = ok ] ||
		problems+=("a cannot chown its own file to itself")
	chown 0:0 "$state/mnt/a/PG_VERSION" 2>/dev/null && problems+=("chown to root worked on a's mount")
	[ "$(stat -c %u "$state/mnt/a/PG_VERSION")" = "$uid_a" ] || problems+=("a's file changed owner")
else
	[ "$uid_a" = "$uid_b" ] || problems+=("without isolation a and b differ in uid")
fi

mb=$state/mnt/b
attack "read a file of b's mount" "cat $mb/PG_VERSION >/dev/null 2>&1 && echo read || echo denied"
attack "list b's mount" "ls $mb/base >/dev/null 2>&1 && echo listed || echo denied"
attack "write into b's mount" "touch $mb/evil 2>/dev/null && echo wrote || echo denied"
attack "append to b's config" \
	"echo 'shared_preload_libraries=x' 2>/dev/null >>$mb/postgresql.auto.conf && echo wrote || echo denied"
attack "signal b's postmaster" "kill -0 $pid_b 2>/dev/null && echo reached || echo denied"
attack "read b's environment" "cat /proc/$pid_b/environ >/dev/null 2>&1 && echo read || echo denied"
attack "log in on b's unix socket (riftd's trust line)" \
	"psql -X -h $state/run/pg/b -p $port_b -U postgres -d postgres -Atc 'select 1' 2>/dev/null && echo in || echo denied"
for seg in $(grep -o '/dev/shm/PostgreSQL\.[0-9]*' "/proc/$pid_b/maps" | sort -u); do
	attack "read b's shared memory $seg" "cat $seg >/dev/null 2>&1 && echo read || echo denied"
done
attack --state "write the base on disk" \
	"touch $state/base/1/evil 2>/dev/null && echo wrote || echo denied"
attack --state "append to a base file on disk" \
	"echo x 2>/dev/null >>$state/base/1/PG_VERSION && echo wrote || echo denied"
attack --state "read riftd's store" "ls $state/db >/dev/null 2>&1 && echo listed || echo denied"
attack --state "read the branch passwords" "ls $state/secrets >/dev/null 2>&1 && echo listed || echo denied"
attack --state "read riftd's TLS key" "cat $state/tls/server.key >/dev/null 2>&1 && echo read || echo denied"
attack --state "list the mounts" "ls $state/mnt >/dev/null 2>&1 && echo listed || echo denied"
attack "kill -9 b's postmaster" "kill -9 $pid_b 2>/dev/null && echo killed || echo denied"
[ -e "$mb/evil" ] && $isolated && problems+=("b's mount has the file a wrote")
if $isolated; then
	[ -z "$(find "$state/base" ! -user root -print -quit)" ] ||
		problems+=("base files on disk are not root's: $(find "$state/base" ! -user root -print -quit)")
fi

sleep 1
if demo_psql "$state" "$port_b" "select 1" >/dev/null 2>&1; then
	$isolated || problems+=("b survived a's kill -9 even without isolation")
else
	$isolated && problems+=("b died of a's kill -9")
fi

# live_of UID [COMM]: processes of UID (named COMM), zombies aside (they hold nothing; whether
# they are reaped soon depends on this machine's init)
live_of() {
	ps -o stat=,comm= -u "$1" | awk -v c="${2:-}" '$1 !~ /^Z/ && (c == "" || $2 == c)' | grep -c . || true
}

# Only with a uid of a's own (never as postgres, whatever the build under test does): as
# postgres, kill -9 -1 would kill every Postgres server on this machine, and a daemon left in the
# mount would keep a riftd without the sweep from ever unmounting it.
if $isolated && [ "$uid_a" != "$pg_uid" ] && [ "$uid_a" != 0 ]; then
	# a shell that kills everything it may (kill -9 -1) takes down its own server only
	sh_in "$port_a" "kill -9 -1; echo x" >/dev/null 2>&1 || true
	sleep 1
	demo_psql "$state" "$port_b" "select 1" >/dev/null 2>&1 || problems+=("b died of kill -9 -1")
	# a daemon a job leaves behind dies with its server: the uid is clean for its next holder
	api "$state" POST /v1/branches/a/start
	port_a=$(api_field .port)
	uid_a=$(sh_in "$port_a" "id -u")
	sh_in "$port_a" "setsid sleep 900 </dev/null >/dev/null 2>&1 & echo started" >/dev/null
	[ "$(live_of "$uid_a" sleep)" = 1 ] || fail "the test's daemon did not start"
	api "$state" POST /v1/branches/a/stop
	[ "$(live_of "$uid_a")" = 0 ] || problems+=("a process of uid $uid_a outlived a's server")
	# and after riftd itself was killed, the next riftd ends them before giving out uids
	uid_b=$(sh_in "$port_b" "id -u")
	sh_in "$port_b" "setsid sleep 900 </dev/null >/dev/null 2>&1 & echo started" >/dev/null
	kill -KILL "$RIFTD_PID"
	wait "$RIFTD_PID" 2>/dev/null || true
	start_riftd "$state"
	[ "$(live_of "$uid_b" sleep)" = 0 ] || problems+=("a daemon of uid $uid_b outlived riftd's crash")
	api "$state" POST /v1/branches/b/start
	[ "$API_STATUS" = 200 ] || problems+=("b does not start after riftd's crash: $(cat "$API_OUT")")
	[ "$(demo_psql "$state" "$(api_field .port)" "select count(*) from orders")" = 5000 ] ||
		problems+=("b has lost its data after riftd's crash")
fi

if [ ${#problems[@]} -gt 0 ]; then
	printf '  %s\n' "${problems[@]}" >&2
	fail "${#problems[@]} isolation problems"
fi
