#!/usr/bin/env bash
# cli_basics.sh — the rift binary answers --help/--version, and refuses bad usage with exit 2.
source "$RIFT_TESTLIB"
rift="$RIFT_BIN/rift"

expect_status 0 "$rift" --help
expect_output '^usage: rift'
expect_status 0 "$rift" --version
expect_output '^rift [0-9]+\.[0-9]+\.[0-9]+$'
expect_status 2 "$rift"
expect_status 2 "$rift" no-such-command
expect_output 'unknown command "no-such-command"'
expect_status 0 "$rift" check-name feature-x
expect_status 1 "$rift" check-name ../x
expect_output 'not a valid branch name'
expect_status 1 "$rift" check-name "$(printf 'a%.0s' {1..64})"
expect_output 'at most 63'
expect_status 2 "$rift" check-name
