#!/usr/bin/env bash
# branch_password.sh — rift create --new-password: the branch's login role gets a password of
# its own, in that branch only; `rift url` prints it; the base's password no longer opens it, and
# its password opens neither main nor a sibling; reset keeps it; delete forgets it.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init -q
start_riftd "$state"
base_pw=$(demo_password "$state")
rift() { "$RIFT_BIN/rift" --state "$state" "$@"; }
# can LOGIN PASSWORD BRANCH: does the demo role log in to BRANCH (through the router, which
# checks the branch's own verifier) with PASSWORD?
can() {
	PGPASSWORD=$1 psql -X -At "host=127.0.0.1 port=$ROUTER_PORT user=rift dbname=$2 \
		sslmode=disable connect_timeout=20" -c "select 1" >"$TEST_TMP/login.out" 2>&1
}

expect_status 0 rift create sib
expect_status 0 rift create job --new-password --output env
expect_output '^DATABASE_URL=postgres://rift:[A-Za-z0-9]{24}@'
job_url=$(sed -n 's/^DATABASE_URL=//p' "$TEST_TMP/out")
job_pw=$(sed -n 's|^DATABASE_URL=postgres://rift:\([^@]*\)@.*|\1|p' "$TEST_TMP/out")
[ "$job_pw" != "$base_pw" ] || fail "the new password is the base's"
[ "$(rift url job)" = "$job_url" ] || fail "rift url job differs from what create printed"
[ "$(stat -c '%a %U' "$state/secrets/job")" = "600 root" ] || fail "secrets/job is not 0600 root"
[ "$(stat -c '%a' "$state/secrets")" = 700 ] || fail "secrets/ is not 0700"
grep -rq "$job_pw" "$state/log" "$TEST_TMP/riftd.log" && fail "a log holds the branch's password"

[ "$(psql -X -At "$job_url" -c 'select count(*) from orders')" = 5000 ] ||
	fail "the URL of job does not open it"
can "$job_pw" job || fail "the new password does not open job: $(cat "$TEST_TMP/login.out")"
can "$base_pw" job && fail "the base's password still opens job"
can "$job_pw" main && fail "job's password opens main"
can "$job_pw" sib && fail "job's password opens the sibling branch sib"
can "$base_pw" sib || fail "the base's password no longer opens sib: $(cat "$TEST_TMP/login.out")"
# straight to the branch's own server too, not only through the router
port=$(rift --json list | jq -r '.branches[] | select(.name == "job") | .port')
PGPASSWORD=$base_pw psql -X -At -h 127.0.0.1 -p "$port" -U rift -d demo -c 'select 1' \
	>/dev/null 2>&1 && fail "the base's password opens job's server directly"
PGPASSWORD=$job_pw psql -X -At -h 127.0.0.1 -p "$port" -U rift -d demo -c 'select 1' \
	>/dev/null || fail "job's password does not open its server directly"

# the API hands the password out once, in the create answer
api "$state" POST /v1/branches '{"name":"api-job","new_password":true}'
[ "$API_STATUS" = 201 ] || fail "create with new_password answered $API_STATUS"
api_pw=$(api_field .password)
[ ${#api_pw} = 24 ] || fail "no password in the create answer: $(cat "$API_OUT")"
api "$state" GET /v1/branches/api-job
[ "$(api_field '.password // "none"')" = none ] || fail "GET shows the password"
can "$api_pw" api-job || fail "the API's password does not open api-job"
api "$state" POST /v1/branches '{"name":"x","new_password":"yes"}'
[ "$API_STATUS" = 400 ] || fail "new_password \"yes\" answered $API_STATUS"

# a child of job has job's pg_authid: its URL carries job's password; reset keeps the password
expect_status 0 rift create job-child --from job
[ "$(rift url job-child)" = "${job_url%/job}/job-child" ] || fail "rift url job-child: $(rift url job-child)"
expect_status 0 rift delete job-child
expect_status 0 rift reset job
can "$job_pw" job || fail "job's password stopped working after reset"
can "$base_pw" job && fail "reset gave job the base's password back"

# delete forgets it; a new branch of the same name is the base's again
expect_status 0 rift delete job
[ -e "$state/secrets/job" ] && fail "delete left secrets/job"
expect_status 0 rift create job
rift url job | grep "rift:$base_pw@" >/dev/null || fail "a new job got the old job's password"
