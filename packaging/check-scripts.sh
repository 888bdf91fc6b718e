#!/usr/bin/env bash
# check-scripts.sh — fails on shell pipelines that end in `grep -q`, which flake under pipefail.
# grep -q leaves at its first match; a writer still writing then dies of SIGPIPE, and pipefail
# turns that into a failed pipeline: a false "not found" (bash's echo writes line by line, so
# even echoing a variable into grep -q races). Read a variable with `grep -q PAT <<<"$out"`, a
# command's output with `cmd | grep PAT >/dev/null`, which reads to the end.
# Usage: packaging/check-scripts.sh
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t files < <(git ls-files -- '*.sh' .ci/run)
# a `|` (not `||`) then grep with q among its flags, on one line or after a line ending in `|`
bad=$(grep -nP '(?<!\|)\|(?!\|)\s*grep\s+-[A-Za-z]*q' "${files[@]}" || true)
bad+=$(awk 'FNR == 1 { prev = "" }
	prev ~ /[^|]\|[ \t]*\\?$/ && $0 ~ /^[ \t]*grep[ \t]+-[A-Za-z]*q/ { print FILENAME ":" FNR ":" $0 }
	{ prev = $0 }' "${files[@]}")
if [ -n "$bad" ]; then
	echo "$bad"
	echo "check-scripts: the pipelines above end in grep -q, which fails at random under pipefail;" \
		"use grep -q PAT <<<\"\$var\" or cmd | grep PAT >/dev/null" >&2
	exit 1
fi
echo "check-scripts: ${#files[@]} scripts have no pipeline ending in grep -q"
