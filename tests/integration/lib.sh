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
	local rc=$? i
	set +e
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
