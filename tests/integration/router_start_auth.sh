#!/usr/bin/env bash
# router_start_auth.sh — [router] start_on_connect = authenticated: a stopped branch starts only
# for a client whose SCRAM proof matches a verifier riftd saw while the branch (or its parent)
# ran; a wrong password or an unknown role leaves it stopped. With "always", any startup
# packet starts it (the behaviour before).
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
set_conf "$state" start_on_connect authenticated
start_riftd "$state"
rport=$(router_port "$state")
pw=$(demo_password "$state")
try() { python3 "$(dirname "$0")/pg_try_login.py" "$rport" "$@"; }
branch_state() {
	api "$state" GET "/v1/branches/$1"
	api_field .state
}
stop_branch() {
	api "$state" POST "/v1/branches/$1/stop"
	[ "$(branch_state "$1")" = stopped ] || fail "branch $1 did not stop"
}
servers_of() { pgrep -f -- "-D $state/mnt/$1( |$)" | wc -l; }
expect_stopped() {
	[ "$(branch_state "$1")" = stopped ] || fail "$2: branch $1 is $(api_field .state)"
	[ "$(servers_of "$1")" = 0 ] || fail "$2: a postgres process runs on branch $1"
}

api "$state" POST /v1/branches '{"name":"p"}'
# never ran: riftd has no verifier for it, so it refuses rather than start it
out=$(try rift p "$pw")
[ "${out%% *}" = 28000 ] || fail "a branch riftd never saw run: $out"
expect_stopped p "no verifier yet"

# an explicit start, one login through the router: riftd keeps rift's verifier
api "$state" POST /v1/branches/p/start
[ "$(PGPASSWORD=$pw psql -X -At "host=127.0.0.1 port=$rport user=rift dbname=p sslmode=disable" \
	-c "select 1")" = 1 ] || fail "login to the running branch"
for _ in $(seq 50); do
	[ -s "$state/run/verifiers/p" ] && break
	sleep 0.1
done
[ -s "$state/run/verifiers/p" ] || fail "riftd kept no verifier for branch p"
[ "$(stat -c %a "$state/run/verifiers" "$state/run/verifiers/p" | tr '\n' ' ')" = "700 600 " ] ||
	fail "verifier files are not private: $(stat -c '%n %a' "$state/run/verifiers"*)"
api "$state" POST /v1/branches '{"name":"q","from":"p"}'
stop_branch p

out=$(try rift p wrong)
[ "${out%% *}" = 28P01 ] || fail "wrong password on a stopped branch: $out"
expect_stopped p "wrong password"
out=$(try nobody p wrong)
[ "${out%% *}" = 28000 ] || fail "unknown role on a stopped branch: $out"
expect_stopped p "unknown role"
out=$(try rift q wrong)
[ "${out%% *}" = 28P01 ] || fail "wrong password on a child made while p ran: $out"
expect_stopped q "wrong password on the child"

# the right password starts it; the session works, with kept sessions on (the default)
[ "$(PGPASSWORD=$pw psql -X -At "host=127.0.0.1 port=$rport user=rift dbname=p" \
	-c "select count(*) from orders")" = 5000 ] || fail "right password on a stopped branch"
[ "$(branch_state p)" = running ] || fail "branch p is $(api_field .state) after a good login"
out=$(try rift q "$pw")
[ "${out%% *}" = ok ] || fail "right password on the stopped child: $out"
first=$(try rift p "$pw")
[ "$(try rift p "$pw")" = "$first" ] || fail "the session was not kept: $first, then another"
grep -q 'password checked by riftd: starting branch p' "$TEST_TMP/riftd.log" ||
	fail "no log line for a checked start"

# always: any startup packet starts the branch (the server then refuses the password)
stop_branch p
kill -TERM "$RIFTD_PID"
wait "$RIFTD_PID" || true
set_conf "$state" start_on_connect always
start_riftd "$state"
out=$(try rift p wrong)
[ "${out%% *}" = 28P01 ] || fail "wrong password with start_on_connect = always: $out"
[ "$(branch_state p)" = running ] || fail "always: the branch did not start"
exit 0
