#!/usr/bin/env bash
# cli_thin.sh — rift is a thin client: its binary needs none of the store's or the daemon's
# libraries, and rift init hands its work, its arguments (never on a command line) and its exit
# status to the riftd beside it, else to the one on PATH.
source "$RIFT_TESTLIB"
rift="$RIFT_BIN/rift"

# what rift itself NEEDs: none of the store's or daemon's libraries, and not libcurl either (it is
# loaded only for --host: every CI job runs rift several times, and loading libcurl with its TLS,
# LDAP and Kerberos libraries cost more than the request to the local riftd)
readelf -d "$rift" >"$TEST_TMP/dynamic" || fail "readelf -d $rift failed"
grep -q NEEDED "$TEST_TMP/dynamic" || fail "readelf shows no NEEDED entry: is $rift dynamic?"
if grep -E 'NEEDED.*\[lib(rocksdb|fuse|event|microhttpd|ssl|crypto|pq|systemd|curl)' \
	"$TEST_TMP/dynamic"; then
	fail "rift links a library it must not (above): the CLI links only rift_common and" \
		"jansson, loads libcurl for --host, and leaves store work to riftd (docs/architecture.md)"
fi

# a rift alone, with neither riftd beside it nor on PATH: client commands still start, init
# says what is missing
alone=$TEST_TMP/alone
mkdir "$alone"
cp "$rift" "$alone/rift"
export RIFT_STATE=$TEST_TMP/state
PATH=/usr/bin:/bin expect_status 0 "$alone/rift" --help
PATH=/usr/bin:/bin expect_status 1 "$alone/rift" init
expect_output "riftd is neither beside rift \\(in $alone\\) nor on PATH"

# a stand-in riftd beside rift: records its arguments and what came on --args-fd, exits 7
secret="pw-$RANDOM$RANDOM"
cat >"$alone/riftd" <<STUB
#!/usr/bin/env bash
printf '%s\n' "\$@" >"$TEST_TMP/argv"
while [ \$# -gt 0 ]; do
	if [ "\$1" = --args-fd ]; then tr '\0' '\n' <&"\$2" >"$TEST_TMP/args"; fi
	shift
done
exit 7
STUB
chmod +x "$alone/riftd"
PATH=/usr/bin:/bin expect_status 7 "$alone/rift" --json init --upstream \
	"postgres://rep:$secret@db.example:5432/app" --logical
grep -q "$secret" "$TEST_TMP/argv" && fail "riftd init got the password on its command line"
[ "$(head -n 2 "$TEST_TMP/argv" | tr '\n' ' ')" = "init --state " ] ||
	fail "riftd ran as: $(tr '\n' ' ' <"$TEST_TMP/argv")"
grep -qx -- --json "$TEST_TMP/argv" || fail "--json did not reach riftd init"
[ "$(tr '\n' ' ' <"$TEST_TMP/args")" = \
	"--upstream postgres://rep:$secret@db.example:5432/app --logical " ] ||
	fail "riftd init read these arguments: $(tr '\n' ' ' <"$TEST_TMP/args")"

# the real riftd init beside the build's rift answers for rift init
expect_status 0 "$rift" init --help
expect_output '^usage: rift init'
expect_status 2 "$rift" init --pgdata /nonexistent --upstream postgres://x@y/z
expect_output 'use either --upstream URL'
