#!/usr/bin/env bash
# secrets_argv.sh — no password in any process's arguments (which every local user can read in
# /proc/<pid>/cmdline) while rift init copies a password-protected upstream or rift psql runs.
source "$RIFT_TESTLIB"
rift="$RIFT_BIN/rift"

secret="Sekr1t-$RANDOM$RANDOM-pw"
upstream_start rep
psql_at "$up_port" "create role rep login replication superuser password '$secret'"
psql_at "$up_port" "create database app"
# a filler table: long enough a copy that the watcher surely sees the tools run
as_postgres "psql -X -q -h $TEST_TMP/sock -p $up_port -d app -c \
	'create table items as select i from generate_series(1, 50000) i;
	create table filler as select i, repeat(md5(i::text), 4) as t from generate_series(1, 100000) i'"

# under PID ANCESTOR: whether PID is ANCESTOR or descends from it (bash builtins only)
under() {
	local p=$1 stat
	while [ -n "$p" ] && [ "$p" -gt 1 ] 2>/dev/null; do
		[ "$p" = "$2" ] && return 0
		read -r stat <"/proc/$p/stat" 2>/dev/null || return 1
		stat=${stat##*) } # "S PPID ...", after the command name
		stat=${stat#* }
		p=${stat%% *}
	done
	return 1
}

# watch SECRET TOOLS...: in the background until $TEST_TMP/stop exists, reads the arguments and
# environment of every process (with bash builtins only: a grep would hold the secret in its own
# arguments) and writes to $TEST_TMP/hits each process that holds SECRET, except this test's rift
# (its --state is under $TEST_TMP) until it execs `riftd init` (a URL typed to it is in its
# arguments until then; riftd init gets it on a descriptor). That rift is checked like any
# process, and again each time one of TOOLS is seen running, when it is surely riftd init; notes
# in $TEST_TMP/seen which TOOLS it saw. Only tools this test started count (they descend from
# this script): ctest runs other tests at once, and their pg_basebackup is no sign that ours has
# exec'd, nor proof that ours ran.
watch() {
	local secret=$1 f pid args env tool riftpid=
	shift
	rm -f "$TEST_TMP/stop" "$TEST_TMP/hits" "$TEST_TMP/seen"
	touch "$TEST_TMP/hits" "$TEST_TMP/seen"
	(
		while [ ! -e "$TEST_TMP/stop" ]; do
			for f in /proc/[0-9]*; do
				pid=${f#/proc/}
				args=() env=()
				mapfile -d '' args <"$f/cmdline" 2>/dev/null || continue
				[ "${#args[@]}" -gt 0 ] || continue
				if [ "${args[0]}" = "$RIFT_BIN/rift" ]; then
					[[ "${args[*]}" == *"$TEST_TMP"* ]] && riftpid=$pid
					continue
				fi
				if [[ "${args[*]}" == *"$secret"* ]]; then
					echo "$pid argv: ${args[*]}" >>"$TEST_TMP/hits"
				fi
				if [ "${ENV_TOO:-1}" = 1 ]; then
					mapfile -d '' env <"$f/environ" 2>/dev/null || true
					[[ "${env[*]}" == *"$secret"* ]] &&
						echo "$pid environ: ${args[*]}" >>"$TEST_TMP/hits"
				fi
				for tool in "$@"; do
					[[ "${args[0]}" == *"$tool" ]] || continue
					under "$pid" "$$" || continue
					echo "$tool" >>"$TEST_TMP/seen"
					[ -n "$riftpid" ] || continue
					mapfile -d '' args <"/proc/$riftpid/cmdline" 2>/dev/null || true
					[[ "${args[*]}" == *"$secret"* ]] &&
						echo "$riftpid (rift) argv: ${args[*]}" >>"$TEST_TMP/hits"
				done
			done
		done
	) &
	WATCH_PID=$!
	on_exit "touch $TEST_TMP/stop; kill $WATCH_PID"
}
# unwatch TOOLS...: stops watching; fails on any hit, or when a tool was never seen running
unwatch() {
	local tool
	touch "$TEST_TMP/stop"
	wait "$WATCH_PID" || true
	[ ! -s "$TEST_TMP/hits" ] || fail "the password showed in: $(sort -u "$TEST_TMP/hits")"
	for tool in "$@"; do
		grep -q "$tool" "$TEST_TMP/seen" || fail "never saw $tool run: the check proved nothing"
	done
}

# physical, password typed in the URL
state=$TEST_TMP/phys
watch "$secret" pg_basebackup
"$rift" --state "$state" init --upstream "postgres://rep:$secret@127.0.0.1:$up_port/app" \
	>"$TEST_TMP/init.log" 2>&1 || fail "rift init --upstream failed: $(cat "$TEST_TMP/init.log")"
unwatch pg_basebackup
grep -rqa "$secret" "$state" && fail "the password was written somewhere under $state"
[ ! -e "$state/run/init-secret" ] || fail "the passfile's directory was left behind"
grep -q "^upstream=postgres://rep@127.0.0.1:$up_port/app$" "$state/base.conf" ||
	fail "base.conf does not record the upstream without its password"

# logical, password from a file; pg_dump | pg_restore run in a shell that must not see it either
lstate=$TEST_TMP/logical
printf '%s\n' "$secret" >"$TEST_TMP/pw"
chmod 600 "$TEST_TMP/pw"
watch "$secret" pg_dump pg_restore
"$rift" --state "$lstate" init --upstream "postgres://rep@127.0.0.1:$up_port/app" --logical \
	--upstream-password-file "$TEST_TMP/pw" >"$TEST_TMP/init.log" 2>&1 || fail "rift init --logical failed: $(cat "$TEST_TMP/init.log")"
unwatch pg_dump pg_restore
grep -rqa "$secret" "$lstate" && fail "the password was written somewhere under $lstate"

# a wrong password from PGPASSWORD is used, and said to be wrong
PGPASSWORD=wrong expect_status 1 "$rift" --state "$TEST_TMP/bad" init --upstream \
	"postgres://rep@127.0.0.1:$up_port/app"
expect_output 'refused the login'

# rift psql: the demo password of the logical base goes in psql's environment, not its argv
start_riftd "$lstate"
demo_pw=$(demo_password "$lstate")
[ -n "$demo_pw" ] || fail "the logical base has no password for rift"
ENV_TOO=0 watch "$demo_pw" psql
"$rift" --state "$lstate" psql main -- -Atc 'select count(*) from items, pg_sleep(3)' \
	>"$TEST_TMP/psql.log" 2>&1 || fail "rift psql failed: $(cat "$TEST_TMP/psql.log")"
unwatch psql
[ "$(cat "$TEST_TMP/psql.log")" = 50000 ] || fail "rift psql printed $(cat "$TEST_TMP/psql.log")"
