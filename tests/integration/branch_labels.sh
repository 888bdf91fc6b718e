#!/usr/bin/env bash
# branch_labels.sh — rift create --label, list --label, delete --label (exactly the matching
# branches, children first); labels survive reset and a riftd restart, and show in JSON and the API.
source "$RIFT_TESTLIB"
export RIFT_STATE=$TEST_TMP/state PATH=$RIFT_BIN:$PATH

rift init -q
start_riftd "$RIFT_STATE"
names() { # the branch names of `rift list --json ARGS`, space separated, sorted
	rift --json list "$@" | jq -r '[.branches[].name] | sort | join(" ")'
}
expect_status 0 rift create pr-7 --label pr=7 --label job=lint
expect_status 0 rift create pr-7-b --label pr=7
expect_status 0 rift create pr-7-c --from pr-7 --label pr=7 --label job=test
expect_status 0 rift create pr-70 --label pr=70
expect_status 0 rift create other
expect_status 2 rift create bad --label 'pr=a b'
expect_output "letters, digits"
expect_status 2 rift create bad --label pr
expect_status 2 rift list --label 'pr=1,2'

[ "$(names --label pr=7)" = "pr-7 pr-7-b pr-7-c" ] || fail "list --label pr=7: $(names --label pr=7)"
[ "$(names --label pr=7 --label job=lint)" = "pr-7" ] || fail "two labels: $(names --label pr=7 --label job=lint)"
[ "$(names --label job)" = "pr-7 pr-7-c" ] || fail "a key alone: $(names --label job)"
[ "$(names --label pr=1)" = "" ] || fail "a prefix matched: $(names --label pr=1)"
rift --json list | jq -e '.branches[] | select(.name == "pr-7") | .labels == {"pr": "7", "job": "lint"}' \
	>/dev/null || fail "list --json labels: $(rift --json list)"
rift --json list | jq -e '.branches[] | select(.name == "other") | .labels == {}' >/dev/null ||
	fail "a branch without labels"
api "$RIFT_STATE" GET '/v1/branches?label=pr=7&label=job=test'
[ "$API_STATUS" = 200 ] && [ "$(api_field '[.branches[].name] | join(" ")')" = pr-7-c ] ||
	fail "API selector: $API_STATUS $(cat "$API_OUT")"
api "$RIFT_STATE" GET '/v1/branches?label=pr=a%20b'
[ "$API_STATUS" = 400 ] || fail "a bad selector got $API_STATUS"
api "$RIFT_STATE" POST /v1/branches '{"name":"j","labels":{"pr":7}}'
[ "$API_STATUS" = 400 ] || fail "a number as a label value got $API_STATUS"
rift list | grep -E '^pr-7 .*job=lint,pr=7|^pr-7 .*pr=7,job=lint' >/dev/null || fail "list shows no labels: $(rift list)"

# reset keeps them; so does a restart of riftd (they are in the store's branch record)
expect_status 0 rift reset pr-7-b
[ "$(names --label pr=7)" = "pr-7 pr-7-b pr-7-c" ] || fail "reset lost labels"
stop_riftd_quietly "$RIFTD_PID" "$RIFT_STATE" || true
start_riftd "$RIFT_STATE"
[ "$(names --label pr=7)" = "pr-7 pr-7-b pr-7-c" ] || fail "a restart lost labels"

# delete --label: exactly those, pr-7-c (a child of pr-7) before its parent
expect_status 0 rift delete --label pr=7
for b in pr-7 pr-7-b pr-7-c; do expect_output "deleted branch $b"; done
[ "$(names)" = "main other pr-70" ] || fail "after delete --label: $(names)"
expect_status 0 rift delete --label pr=7
expect_output 'no branch has the labels'
expect_status 2 rift delete pr-70 --label pr=70
# a labelled parent whose child is not labelled the same stays, and rift says why
expect_status 0 rift create kid --from pr-70
expect_status 1 rift delete --label pr=70
expect_output 'could not be deleted'
[ "$(names)" = "kid main other pr-70" ] || fail "after the refused delete: $(names)"
