#!/usr/bin/env bash
# ci_script.sh — packaging/ci/rift-ci.sh, which the GitHub Action and the GitLab template run,
# against a real riftd over HTTPS with each CI's environment simulated: a job migrates and
# tests through the URL it publishes, and cleanup deletes exactly that pull request's branches.
# Also `rift create --output env` evaluated by a shell, the bare-metal recipe.
source "$RIFT_TESTLIB"
state=$TEST_TMP/state
script=$(cd "$(dirname "$0")/../.." && pwd)/packaging/ci/rift-ci.sh
rift() { env -u RIFT_HOST "$RIFT_BIN/rift" --state "$state" "$@"; } # the local CLI

rift init -q
api_port=$(free_port)
head -c 32 /dev/urandom | base64 | tr -d '/+=' >"$TEST_TMP/token"
sed -i -e "/^\[api\]/,/^\[/ s|^listen = $|listen = 127.0.0.1:$api_port|" \
	-e "s|^token_file = .*|token_file = $TEST_TMP/token|" "$state/rift.conf"
start_riftd "$state"
export RIFT_HOST=https://127.0.0.1:$api_port RIFT_TOKEN RIFT_PIN
RIFT_TOKEN=$(cat "$TEST_TMP/token")
RIFT_PIN=$(rift --json status | jq -r .api_tls_pin)

# branches the cleanup must leave alone: another PR, and PR 7 of another project
rift create other-pr --label pr=8 --label project=42 --label ci=github >/dev/null
rift create elsewhere --label pr=7 --label project=999 --label ci=github >/dev/null

# ---- GitHub: pull_request event of PR 7 in repository 42 ----
gh_env() {
	env GITHUB_ACTIONS=true GITHUB_EVENT_PATH="$TEST_TMP/event.json" \
		GITHUB_OUTPUT="$TEST_TMP/gh_output" GITHUB_REPOSITORY_ID=42 "$@"
}
echo '{"action":"opened","number":7,"pull_request":{"number":7}}' >"$TEST_TMP/event.json"
expect_status 0 gh_env RIFT_CI_TTL=2h RIFT_CI_LABELS="job=test, suite=unit" "$script" create
url=$(sed -n 's/^database-url=//p' "$TEST_TMP/gh_output")
[[ "$url" =~ ^postgres://rift:[A-Za-z0-9]{24}@127\.0\.0\.1:$ROUTER_PORT/pr-7$ ]] ||
	fail "GITHUB_OUTPUT database-url: $(cat "$TEST_TMP/gh_output")"
grep -qx 'branch=pr-7' "$TEST_TMP/gh_output" || fail "GITHUB_OUTPUT branch: $(cat "$TEST_TMP/gh_output")"
pw=${url#postgres://rift:}
pw=${pw%%@*}
grep -qx "::add-mask::$pw" "$TEST_TMP/out" || fail "the password was not masked: $(cat "$TEST_TMP/out")"
grep -qx "::add-mask::$url" "$TEST_TMP/out" || fail "the URL was not masked"
[ "$(grep -c "$pw" "$TEST_TMP/out")" = 2 ] || fail "the password shows outside the masks"
# the job: a migration and a test against the output URL
psql -X -q "$url" -c 'create table widgets (id int primary key, name text);
	insert into widgets select g, g::text from generate_series(1, 100) g' ||
	fail "the migration failed on $url"
[ "$(psql -X -At "$url" -c 'select count(*) from widgets join products on products.id = widgets.id')" = 100 ] ||
	fail "the test query failed"
rift --json list | jq -e '.branches[] | select(.name == "pr-7") |
	.labels == {"pr": "7", "project": "42", "ci": "github", "job": "test", "suite": "unit"} and
	.expires != null' >/dev/null || fail "pr-7's labels or expiry: $(rift --json list)"
# a re-run reuses the branch, data included; a second job makes its own branch of the same PR
: >"$TEST_TMP/gh_output"
expect_status 0 gh_env "$script" create
expect_output 'exists \(a re-run\)'
[ "$(sed -n 's/^database-url=//p' "$TEST_TMP/gh_output")" = "$url" ] || fail "a re-run changed the URL"
[ "$(psql -X -At "$url" -c 'select count(*) from widgets')" = 100 ] || fail "a re-run lost the data"
expect_status 0 gh_env RIFT_CI_BRANCH=pr-7-lint RIFT_CI_NEW_PASSWORD=false "$script" create
expect_status 0 gh_env RIFT_CI_BRANCH=pr-7-child RIFT_CI_FROM=pr-7 "$script" create
# its own password opens only its branch
PGCONNECT_TIMEOUT=20 psql -X -At "${url%/pr-7}/pr-7-lint" -c 'select 1' >/dev/null 2>&1 &&
	fail "pr-7's password opens pr-7-lint"
# wrong token: a clear failure
expect_status 1 gh_env RIFT_TOKEN=wrong-token-wrong-token "$script" create
expect_output 'refused the token'
# pull_request closed: cleanup deletes exactly PR 7's branches of this repository
echo '{"action":"closed","number":7,"pull_request":{"number":7}}' >"$TEST_TMP/event.json"
expect_status 0 gh_env "$script" cleanup
expect_output '3 branch\(es\) of pull request 7 deleted'
[ "$(rift --json list | jq -r '[.branches[].name] | join(" ")')" = "elsewhere main other-pr" ] ||
	fail "after GitHub cleanup: $(rift list)"

# ---- GitLab: merge request 9 of project 42 ----
gl_env() {
	env GITLAB_CI=true CI_MERGE_REQUEST_IID=9 CI_PROJECT_ID=42 \
		RIFT_CI_DOTENV="$TEST_TMP/rift.env" "$@"
}
expect_status 0 gl_env "$script" create
[ "$(stat -c %a "$TEST_TMP/rift.env")" = 600 ] || fail "the dotenv report is not 0600"
grep -q "$RIFT_TOKEN" "$TEST_TMP/out" && fail "the token shows in the log"
set -a
source "$TEST_TMP/rift.env"
set +a
[ "$RIFT_BRANCH" = pr-9 ] || fail "dotenv RIFT_BRANCH=$RIFT_BRANCH"
psql -X -q "$DATABASE_URL" -c 'create table t (x int); insert into t values (1)' || fail "GitLab migration"
[ "$(psql -X -At "$DATABASE_URL" -c 'select x from t')" = 1 ] || fail "GitLab test query"
expect_status 0 gl_env "$script" cleanup
[ "$(rift --json list | jq -r '[.branches[].name] | join(" ")')" = "elsewhere main other-pr" ] ||
	fail "after GitLab cleanup: $(rift list)"
# no merge request: cleanup refuses rather than guess
expect_status 1 env GITLAB_CI=true CI_PROJECT_ID=42 "$script" cleanup
expect_output 'cleanup needs the pull request'

# ---- a bare-metal runner: shell-evaluable lines ----
eval "$(RIFT_CI_BRANCH=bare-1 "$script" create 2>/dev/null)"
[ "$RIFT_BRANCH" = bare-1 ] && [ "$(psql -X -At "$DATABASE_URL" -c 'select 1')" = 1 ] ||
	fail "rift-ci.sh on a plain runner"
unset DATABASE_URL RIFT_BRANCH
# and the CLI's own --output env, locally and remotely
set -a
eval "$(rift create bare-2 --ttl 1h --new-password --output env)"
set +a
[ "$RIFT_BRANCH" = bare-2 ] || fail "--output env RIFT_BRANCH=$RIFT_BRANCH"
[ "$(bash -c 'psql -X -At "$DATABASE_URL" -c "select count(*) from products"')" = 200 ] ||
	fail "--output env DATABASE_URL does not connect from a child process"
out=$(env RIFT_STATE=/nonexistent "$RIFT_BIN/rift" create bare-3 --output env)
[[ "$out" == "DATABASE_URL=postgres://rift:"*"@127.0.0.1:$ROUTER_PORT/bare-3"$'\n'"RIFT_BRANCH=bare-3" ]] ||
	fail "remote --output env printed: $out"
