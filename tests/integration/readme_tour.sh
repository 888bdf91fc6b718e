#!/usr/bin/env bash
# readme_tour.sh — runs the README's two-minute tour exactly as written, then checks its effects.
source "$RIFT_TESTLIB"

readme=$(dirname "$0")/../../README.md
awk '/^## A two-minute tour/ {t = 1} t && /^```sh$/ {c = 1; next} c && /^```$/ {exit} c' \
	"$readme" >"$TEST_TMP/tour.sh"
[ "$(grep -c '^rift\|^psql' "$TEST_TMP/tour.sh")" -ge 6 ] || fail "could not find the tour"
export RIFT_STATE=$TEST_TMP/state PATH=$RIFT_BIN:$PATH
on_exit "pkill -TERM -f 'riftd --state $RIFT_STATE'; sleep 1; \
	pkill -KILL -f -- '-D $RIFT_STATE/mnt/'; \
	for m in \$(awk -v p='$RIFT_STATE/mnt/' 'index(\$5, p) == 1 {print \$5}' /proc/self/mountinfo); \
	do umount -l \$m; done"
ss -ltn | grep ':6432 ' >/dev/null && fail "port 6432 is taken: the tour needs the default port"
(cd "$TEST_TMP" && bash -ex tour.sh) >"$TEST_TMP/tour.out" 2>&1 ||
	{ cat "$TEST_TMP/tour.out" >&2; fail "the README tour failed"; }
cat "$TEST_TMP/tour.out"
grep -q '^DROP TABLE$' "$TEST_TMP/tour.out" || fail "DROP TABLE did not run in the branch"
grep -q '^5000$' "$TEST_TMP/tour.out" || fail "main lost its orders after the branch dropped them"
grep -q '^deleted branch feature-auth$' "$TEST_TMP/tour.out" || fail "delete did not run"
rift list --json | jq -e '[.branches[].name] == ["main"]' >/dev/null ||
	fail "feature-auth still listed after delete"
