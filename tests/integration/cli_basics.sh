#!/usr/bin/env bash
# cli_basics.sh — every command has --help (exit 0), wrong usage exits 2, no riftd is a clear
# error, and --json output is valid JSON.
source "$RIFT_TESTLIB"
rift="$RIFT_BIN/rift"
export RIFT_STATE=$TEST_TMP/none

expect_status 0 "$rift" --help
expect_output '^usage: rift'
expect_status 0 "$rift" --version
expect_output '^rift [0-9]+\.[0-9]+\.[0-9]+$'
expect_status 0 "$rift" version --json
jq -e .version "$TEST_TMP/out" >/dev/null || fail "version --json is not JSON"
for cmd in init serve create delete list ls status url psql reset start stop mount; do
	expect_status 0 "$rift" "$cmd" --help
	expect_output "usage: rift $cmd"
done
expect_status 2 "$rift"
expect_status 2 "$rift" no-such-command
expect_output 'unknown command "no-such-command"'
expect_status 2 "$rift" create
expect_status 2 "$rift" create a b
expect_status 2 "$rift" create x --ttl soon
expect_output 'duration'
expect_status 2 "$rift" create x --output yaml
expect_status 2 "$rift" delete
expect_status 2 "$rift" list extra
expect_status 2 "$rift" mount onlyname
expect_status 2 "$rift" init --logical
expect_status 2 "$rift" init --upstream-password-file /dev/null
expect_status 2 "$rift" --state
expect_status 1 "$rift" delete ../x
expect_output 'not a valid branch name'
for cmd in "list" "status" "create x" "delete x" "start x" "stop x" "reset x"; do
	expect_status 1 "$rift" $cmd
	expect_output 'riftd is not running for .* \(start it with `rift serve`'
done
expect_status 1 "$rift" --json list
expect_status 1 "$rift" url x
expect_output 'base.conf'
