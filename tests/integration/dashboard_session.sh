#!/usr/bin/env bash
# dashboard_session.sh — a dashboard session works only through the `rift dashboard` that
# logged it in: its cookie is refused (401) through a new forwarder once that one exited, and
# through any other process (a direct client of dashboard.sock) while it runs.
source "$RIFT_TESTLIB"
export RIFT_STATE=$TEST_TMP/state PATH=$RIFT_BIN:$PATH

rift init >/dev/null || fail "rift init failed"
start_riftd "$RIFT_STATE"

# starts a forwarder; sets FWD_PID, FWD_PORT, FWD_TICKET
forwarder() {
	local out=$TEST_TMP/fwd.$1 i
	rift --json dashboard >"$out" 2>"$out.err" &
	FWD_PID=$!
	on_exit "kill $FWD_PID 2>/dev/null"
	for ((i = 0; i < 100; i++)); do
		grep -q '"url"' "$out" 2>/dev/null && break
		sleep 0.05
	done
	FWD_PORT=$(jq -r '.address' "$out" | cut -d: -f2) || fail "forwarder $1: $(cat "$out" "$out.err")"
	FWD_TICKET=$(jq -r '.url' "$out" | sed 's/.*#ticket=//')
	[[ $FWD_TICKET =~ ^[0-9a-f]{64}$ ]] || fail "forwarder $1 printed no ticket: $(cat "$out")"
}
status() { # PORT PATH [CURL ARGS...]: the HTTP status with the session cookie
	local port=$1 path=$2
	shift 2
	curl -s -o /dev/null -w '%{http_code}' -b "$TEST_TMP/jar" "$@" "http://127.0.0.1:$port$path"
}

forwarder 1
first=$FWD_PID port1=$FWD_PORT
code=$(curl -s -o "$TEST_TMP/login.json" -w '%{http_code}' -c "$TEST_TMP/jar" -H 'Content-Type: application/json' \
	-d "{\"ticket\":\"$FWD_TICKET\"}" "http://127.0.0.1:$port1/v1/dashboard/login")
[ "$code" = 200 ] || fail "login through forwarder 1: HTTP $code $(cat "$TEST_TMP/login.json")"
grep -q rift_session "$TEST_TMP/jar" || fail "no session cookie after login"
[ "$(status "$port1" /v1/branches)" = 200 ] || fail "the session does not work through its own forwarder"

# another process presenting the cookie straight to dashboard.sock: refused
sid=$(awk '$6 == "rift_session" {print $7}' "$TEST_TMP/jar")
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$RIFT_STATE/run/dashboard.sock" \
	-H "Cookie: rift_session=$sid" http://rift/v1/dashboard/session)
[ "$code" = 401 ] || fail "the cookie worked from another process on dashboard.sock: HTTP $code"
[ "$(status "$port1" /v1/branches)" = 200 ] || fail "a refused stranger ended the session"

# forwarder 1 exits; a new one (what the user starts next) must not honour the old cookie
kill -TERM "$first"
wait "$first" 2>/dev/null || true # killed by us: status 143
forwarder 2
code=$(status "$FWD_PORT" /v1/dashboard/session)
[ "$code" = 401 ] || fail "the old cookie through a new forwarder: HTTP $code, expected 401"
code=$(status "$FWD_PORT" /v1/branches)
[ "$code" = 401 ] || fail "the old cookie listed branches through a new forwarder: HTTP $code"
# while the new forwarder's own login works
code=$(curl -s -o /dev/null -w '%{http_code}' -c "$TEST_TMP/jar2" -H 'Content-Type: application/json' \
	-d "{\"ticket\":\"$FWD_TICKET\"}" "http://127.0.0.1:$FWD_PORT/v1/dashboard/login")
[ "$code" = 200 ] || fail "login through forwarder 2: HTTP $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$TEST_TMP/jar2" "http://127.0.0.1:$FWD_PORT/v1/branches")
[ "$code" = 200 ] || fail "the new session through its forwarder: HTTP $code"
kill -TERM "$FWD_PID"
echo "dashboard_session: ok"
