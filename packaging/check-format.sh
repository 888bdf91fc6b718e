#!/usr/bin/env bash
# check-format.sh — fails (and shows the diff) when a C file differs from .clang-format's layout.
# Usage: packaging/check-format.sh [--fix]
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t files < <(git ls-files -- '*.c' '*.h')
if [ "${1:-}" = "--fix" ]; then
	clang-format -i "${files[@]}"
	exit 0
fi
bad=0
for f in "${files[@]}"; do
	if ! clang-format "$f" | diff -u "$f" - >/tmp/rift-format.diff; then
		cat /tmp/rift-format.diff
		bad=1
	fi
done
rm -f /tmp/rift-format.diff
if [ "$bad" -ne 0 ]; then
	echo "check-format: files above differ from .clang-format; fix with packaging/check-format.sh --fix" >&2
	exit 1
fi
echo "check-format: ${#files[@]} files formatted correctly"
